"""The per-cycle option analysis on the real SPY chain of 2023-09-14.

Checked against independent computations: implied vols re-inverted with scipy's brentq on the
textbook BSM formula, the early-exercise premium against QuantLib's CRR binomial engine (the
American minus the European price at the same vol), the surface's fit against the quotes it
was fitted to, and the signals' edges recomputed from the candidate table.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import norm
from v28quant.data.snapshots import load_chain_snapshot
from v28quant.options.signals import (
    AnalysisSettings,
    ChainAnalysis,
    OptionsAnalyser,
    snapshot_id,
    vol_symbol,
)


def _bsm(s: float, k: float, t: float, r: float, q: float, v: float, call: bool) -> float:
    d1 = (math.log(s / k) + (r - q + 0.5 * v * v) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    if call:
        return s * math.exp(-q * t) * norm.cdf(d1) - k * math.exp(-r * t) * norm.cdf(d2)
    return k * math.exp(-r * t) * norm.cdf(-d2) - s * math.exp(-q * t) * norm.cdf(-d1)


@pytest.fixture(scope="module")
def analysis(shared_data: Path) -> ChainAnalysis:
    """Analyse the SPY chain once, with two years of real closes."""
    chain = load_chain_snapshot(shared_data / "options" / "SPY_2023-09-14_cboe.csv")
    spy = pd.read_csv(shared_data / "equities" / "yahoo_raw_2019_2023" / "SPY.csv")
    closes = spy[spy["date"] <= "2023-09-14"]["close"].to_numpy(float)
    return OptionsAnalyser().analyse("SPY", chain, now=chain.attrs["as_of"], daily_closes=closes)


def _ql_eep(
    ql: Any, s: float, k: float, days: int, r: float, q: float, vol: float, call: bool
) -> float:
    """Return QuantLib's CRR (150 steps) American minus European price."""
    today = ql.Date(14, 9, 2023)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    maturity = today + days

    def flat(x: float) -> Any:
        return ql.YieldTermStructureHandle(ql.FlatForward(today, x, dc))

    vts = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc))
    proc = ql.BlackScholesMertonProcess(ql.QuoteHandle(ql.SimpleQuote(s)), flat(q), flat(r), vts)
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k)
    amer = ql.VanillaOption(payoff, ql.AmericanExercise(today, maturity))
    euro = ql.VanillaOption(payoff, ql.EuropeanExercise(maturity))
    for o in (amer, euro):
        o.setPricingEngine(ql.BinomialVanillaEngine(proc, "crr", 150))
    return max(float(amer.NPV()) - float(euro.NPV()), 0.0)


def test_market_vols_and_early_exercise_premia(analysis: ChainAnalysis) -> None:
    """Market IV = brentq inversion of (mid - eep); eep = QuantLib CRR American - European."""
    ql = pytest.importorskip("QuantLib")
    c = analysis.candidates
    assert len(c) >= 10
    r, s = AnalysisSettings().rate, analysis.spot
    for row in c.head(8).itertuples():
        call = row.type == "call"
        k, t, q, target = float(row.strike), float(row.t), float(row.div), row.mid - row.eep
        iv = brentq(partial(_gap, s, k, t, r, q, call, target), 1e-4, 3.0)
        assert row.market_iv == pytest.approx(iv, abs=1e-6)
        days = round(t * 365)
        assert days == pytest.approx(t * 365, abs=1e-6)  # quotes at 16:00, expiry at 16:00
        want = _ql_eep(ql, s, k, days, r, q, float(row.model_iv), call)
        assert row.eep == pytest.approx(want, abs=1e-6)


def _gap(
    s: float, k: float, t: float, r: float, q: float, call: bool, target: float, v: float
) -> float:
    return _bsm(s, k, t, r, q, v, call) - target


def test_surface_fits_the_quotes_and_signals_match_their_table(
    analysis: ChainAnalysis,
) -> None:
    """SVI within a vol point on SPY; each signal's edge is the table's mean; bounds hold."""
    info = analysis.surface.fit_info
    assert info is not None
    assert float(info["rmse_vol_pts"].max()) < 1.5
    assert 0.05 < analysis.atm_iv_30d < 0.25
    assert analysis.heston is not None
    assert analysis.heston.rmse_vol_points < 3.0
    c = analysis.candidates
    by = {s.model: s for s in analysis.signals}
    assert set(by) >= {"options_surface", "options_heston", "options_iv_rank"}
    for s in analysis.signals:
        assert s.symbol == vol_symbol("SPY")
        assert -1.0 <= s.value <= 1.0
        assert 0.0 <= s.confidence <= 1.0
        assert s.ts == analysis.as_of
    e = 100 * (c["market_iv"] - c["model_iv"])
    ok = np.isfinite(e)
    assert by["options_surface"].reasoning["edge_vol_pts"] == pytest.approx(
        float(e[ok].mean()), abs=1e-3
    )
    rank = by["options_iv_rank"].reasoning
    assert rank["history"] == "realised_vol_proxy"  # a fresh journal
    assert 0.0 <= rank["iv_rank"] <= 1.0


def test_snapshot_id_changes_with_a_quote(shared_data: Path) -> None:
    """Same quotes, same id; one bid moved, another id."""
    chain = load_chain_snapshot(shared_data / "options" / "SPY_2023-09-14_cboe.csv")
    a = snapshot_id(chain)
    assert snapshot_id(chain.copy()) == a
    moved = chain.copy()
    moved.loc[100, "bid"] = moved.loc[100, "bid"] + 0.01
    assert snapshot_id(moved) != a
