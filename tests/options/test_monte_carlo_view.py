"""The options engine's Monte Carlo vote on implied vol, against a hand-priced chain.

Closes follow a geometric Brownian motion at 25 % a year, so the GARCH forecast is near 25 %.
The chain is priced with the Black-Scholes formula written out here (scipy's normal CDF) at an
implied vol of 40 % (rich) or 12 % (cheap): the vote must say rich (+) or cheap (-), and its
reported gap (market IV - simulated model IV) must match 100 x (IV - the GARCH vol over the
options' life) within the simulation's noise.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from v28quant.calendar import ET
from v28quant.options.monte_carlo_view import MonteCarloView

SPOT, RATE, EXPIRY = 100.0, 0.03, date(2024, 7, 19)
NOW = datetime.combine(date(2024, 6, 3), time(10), ET)


def _bs(k: float, t: float, vol: float, call: bool) -> float:
    d1 = (math.log(SPOT / k) + (RATE + 0.5 * vol * vol) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    if call:
        return SPOT * norm.cdf(d1) - k * math.exp(-RATE * t) * norm.cdf(d2)
    return k * math.exp(-RATE * t) * norm.cdf(-d2) - SPOT * norm.cdf(-d1)


def _chain(vol: float) -> pd.DataFrame:
    t = (EXPIRY - NOW.date()).days / 365.0
    rows = []
    for k in (90.0, 95.0, 100.0, 105.0, 110.0):
        for call in (True, False):
            p = _bs(k, t, vol, call)
            kind = "C" if call else "P"
            rows.append(
                {
                    "symbol": f"XYZ240719{kind}{int(k * 1000):08d}",
                    "strike": k,
                    "expiry": pd.Timestamp(EXPIRY),
                    "type": "call" if call else "put",
                    "bid": p - 0.01,
                    "ask": p + 0.01,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def view() -> MonteCarloView:
    rng = np.random.default_rng(7)
    r = rng.normal(0.0, 0.25 / math.sqrt(252), 1000)
    v = MonteCarloView(max_contracts=6, paths=20_000)
    v.fit("XYZ", 100.0 * np.exp(np.cumsum(r)))
    return v


@pytest.mark.parametrize(("iv", "sign"), [(0.40, 1.0), (0.12, -1.0)])
def test_rich_and_cheap_chains(view: MonteCarloView, iv: float, sign: float) -> None:
    s = view.signal("XYZ", _chain(iv), SPOT, NOW, RATE)
    assert s is not None
    assert s.model == "monte_carlo"
    assert s.symbol == "XYZ:IV"
    assert np.sign(s.value) == sign
    assert 0.0 < s.confidence <= 1.0
    g = view.fits["XYZ"]
    t_days = (EXPIRY - NOW.date()).days / 365.0 * 252.0
    model_vol = float(np.asarray(g.vol_term_structure(np.array([t_days])))[0])
    assert 0.18 < model_vol < 0.32  # GARCH on 25 % GBM returns
    gap = s.reasoning["market_minus_model_vol_pts"]
    assert gap == pytest.approx(100.0 * (iv - model_vol), abs=1.0)


def test_no_fit_no_vote() -> None:
    v = MonteCarloView()
    v.fit("BAD", np.array([100.0, 101.0]))  # far too short for a GARCH fit
    assert v.signal("BAD", _chain(0.3), SPOT, NOW, RATE) is None
