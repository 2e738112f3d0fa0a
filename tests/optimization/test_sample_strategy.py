"""The built-in strategy evaluator: no look-ahead, costs, covered calls at Black-Scholes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from v28quant.data.samples import sample_history
from v28quant.optimization.costs import CostModel
from v28quant.optimization.strategy import SampleStrategy


@pytest.fixture(scope="module")
def history():  # type: ignore[no-untyped-def]
    return sample_history()


def _params(ev: SampleStrategy) -> dict[str, float]:
    p = ev.space.defaults()
    p["aggregator.min_confidence"] = 0.1
    return p


def test_no_look_ahead_when_later_history_is_cut(history) -> None:  # type: ignore[no-untyped-def]
    # Returns up to a date must not change when the history after it is removed.
    full = SampleStrategy(history, end="2018-12-31")
    cut = SampleStrategy(history, end="2017-06-30")
    d = cut.dates()
    train, test = d[:504], d[514:]
    a = full.evaluate(_params(full), train, test, seed=4)
    b = cut.evaluate(_params(cut), train, test, seed=4)
    pd.testing.assert_series_equal(a.train, b.train, rtol=1e-12, atol=1e-15)
    pd.testing.assert_series_equal(a.test, b.test, rtol=1e-12, atol=1e-15)


def test_costs_are_charged_on_turnover(history) -> None:  # type: ignore[no-untyped-def]
    free = SampleStrategy(history, costs=CostModel(0.0, 0.0, 0.0, 0.0, 0.0))
    costly = SampleStrategy(history, costs=CostModel(1.0, 4.0, 2.0, 0.05, 0.65))
    d = free.dates()
    p = _params(free)
    p["options.overlay_weight"] = 0.0  # stock costs only: a closed form below
    g = free.evaluate(p, d[:504], d[514:700], seed=1)
    n = costly.evaluate(p, d[:504], d[514:700], seed=1)
    assert g.test_costs == 0.0
    assert n.test_turnover == pytest.approx(g.test_turnover, rel=1e-12)
    # each unit of turnover costs commission + half spread + slippage = 1 + 2 + 2 = 5 bp
    expected = 5e-4 * g.test_turnover * len(g.test)
    assert n.test_costs == pytest.approx(expected, rel=1e-9)
    assert (g.test - n.test).sum() == pytest.approx(expected, rel=1e-9)


def test_covered_call_sleeve_pays_the_black_scholes_premium(history) -> None:  # type: ignore[no-untyped-def]
    # With every aggregator weight zero no stock is held and the return is half the covered-call
    # sleeve's (overlay weight 0.5); over one tenor
    # its P&L is S_T - S_0 - (max(S_T - K, 0) - C_0), C_0 the Black-Scholes call at the VIX.
    from scipy.stats import norm

    ev = SampleStrategy(history, costs=CostModel(0.0, 0.0, 0.0, 0.0, 0.0))
    p = ev.space.defaults()
    p.update({"aggregator.min_confidence": 0.9, "options.overlay_weight": 0.5})
    p.update({"options.tenor_days": 21, "options.call_moneyness": 0.02})
    p.update({k: 0.0 for k in p if k.startswith("weights.")})
    d = ev.dates()
    r = ev.evaluate(p, d[:504], d[514:600], seed=2)
    closes = history.bars[history.bars["symbol"].isin(["SPX", "VIX"])].pivot_table(
        index="timestamp", columns="symbol", values="close"
    )
    closes.index = closes.index.tz_convert("America/New_York").tz_localize(None)
    first = d[0]
    s0, vix0 = closes.loc[first, "SPX"], closes.loc[first, "VIX"] / 100
    k, t = s0 * 1.02, 21 / 252
    d1 = (np.log(s0 / k) + (0.0 - 0.02 + vix0**2 / 2) * t) / (vix0 * np.sqrt(t))
    c0 = s0 * np.exp(-0.02 * t) * norm.cdf(d1) - k * norm.cdf(d1 - vix0 * np.sqrt(t))
    s_t = closes.loc[d[21], "SPX"]
    pnl = s_t - s0 - (max(s_t - k, 0.0) - c0)
    # daily sleeve returns are P&L over the previous index level: they sum back to the P&L
    daily = 2.0 * r.train.iloc[1:22].to_numpy()
    levels = closes.loc[d[0:21], "SPX"].to_numpy()
    assert float((daily * levels).sum()) == pytest.approx(pnl, rel=1e-9, abs=1e-9)


def test_bad_dates_are_refused(history) -> None:  # type: ignore[no-untyped-def]
    ev = SampleStrategy(history)
    d = ev.dates()
    with pytest.raises(ValueError, match="follow the training"):
        ev.evaluate(ev.space.defaults(), d[100:200], d[50:60], 0)
    with pytest.raises(ValueError, match="not in the history"):
        SampleStrategy(history, universe=("NOPE",))
