"""The per-cycle option analysis on the real SPY chain of 2023-09-14.

Checked against independent computations: implied vols re-inverted with scipy's brentq on the
textbook BSM formula, the early-exercise premium against QuantLib's CRR binomial engine (the
American minus the European price at the same vol), the surface's fit against the quotes it
was fitted to, and the signals' edges recomputed from the candidate table.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from fakes.options_world import spy_history
from scipy.optimize import brentq
from scipy.stats import norm
from v28quant.clock import SimClock
from v28quant.data.replay import ReplayFeed
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
    e = 100 * (c["fit_iv"] - c["model_iv"])  # the surface was fitted to raw mids
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


@pytest.mark.asyncio
async def test_european_quotes_read_no_put_discount(shared_data: Path) -> None:
    """On Black-Scholes quotes (no early exercise) puts and calls show the same surface edge.

    The synthetic replay chain quotes European prices at known vols (its ``iv`` column, the
    independent truth). The surface is fitted to raw mids, so its edge is measured on raw mids:
    the early-exercise premium, removed only for the European comparison with Merton, must not
    read as puts priced below the surface (it did by about 0.05 vol points on every put).
    """
    now = datetime(2023, 9, 14, 11, 0, tzinfo=ZoneInfo("America/New_York"))
    feed = ReplayFeed(spy_history(shared_data), SimClock(now), dividend_yield=0.015)
    chain = await feed.option_chain("SPY", now.date(), now.date() + timedelta(days=180))
    spy = pd.read_csv(shared_data / "equities" / "yahoo_raw_2019_2023" / "SPY.csv")
    closes = spy[spy["date"] < "2023-09-14"]["close"].to_numpy(float)
    a = OptionsAnalyser().analyse("SPY", chain, now=now, daily_closes=closes)
    v = a.candidates.merge(chain[["symbol", "iv"]], on="symbol")
    puts, calls = v[v["type"] == "put"], v[v["type"] == "call"]
    assert len(puts) >= 5
    assert len(calls) >= 5
    # raw-mid vols within 0.02 vol points of the quoted vols (tick rounding of bid and ask)
    assert float((100 * (v["fit_iv"] - v["iv"])).abs().mean()) < 0.02
    # the European-equivalent vol of a put sits below its quote by its early-exercise premium
    assert float((puts["market_iv"] - puts["iv"]).mean()) < 0.0
    surface_edge = {
        kind: float((100 * (x["fit_iv"] - x["model_iv"])).mean())
        for kind, x in (("put", puts), ("call", calls))
    }
    assert surface_edge["put"] == pytest.approx(surface_edge["call"], abs=0.02), surface_edge


def test_next_cycle_refits_from_the_last_surface(shared_data: Path, monkeypatch) -> None:
    """The analyser hands each underlying's last surface to the next fit as its warm start."""
    from v28quant.options.surface import SviSurface

    chain = load_chain_snapshot(shared_data / "options" / "SPX_2023-12-08_cboe.csv")
    fit = SviSurface.fit.__func__
    seen: list[Any] = []

    def recording_fit(cls: type, rows: pd.DataFrame, **kw: Any) -> SviSurface:
        seen.append(kw.get("warm_start"))
        return fit(cls, rows, **kw)

    monkeypatch.setattr(SviSurface, "fit", classmethod(recording_fit))
    an = OptionsAnalyser()
    first = an.analyse("SPX", chain, now=chain.attrs["as_of"])
    second = an.analyse("SPX", chain, now=chain.attrs["as_of"])
    an.analyse("NDX", chain, now=chain.attrs["as_of"])
    assert seen[0] is None
    assert seen[1] is first.surface
    assert seen[2] is None  # another underlying starts cold
    assert second.surface.arbitrage_report().free


def test_quotes_without_an_implied_vol_stay_out_of_the_surface(shared_data: Path) -> None:
    """Alpaca gives no IV for most far strikes of this one-expiry snapshot (no real market).

    Fitted to every quote, thinning picks strikes spread over the range and too few of them
    invert: the slice cannot be fitted. Only the quotes with an IV are fitted.
    """
    chain = load_chain_snapshot(shared_data / "options" / "NVDA_2025-07-08_alpaca_snapshot.csv")
    assert chain["iv"].isna().mean() > 0.3
    a = OptionsAnalyser().analyse("NVDA", chain, now=chain.attrs["as_of"])
    assert len(a.surface.expiries) == 1
    with_iv = chain[np.isfinite(chain["iv"]) & (chain["iv"] > 0)]
    assert a.surface.fit_info["n_quotes"].sum() <= len(with_iv)
    assert a.surface.fit_info["rmse_vol_pts"].max() < 5.0
