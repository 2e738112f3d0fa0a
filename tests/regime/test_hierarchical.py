"""HierarchicalRegimeController: its stated rules, the POMDP risk scale and real history.

The combination rules on hand-computed cases, the POMDP wired as a risk scale through its
observation model, and a run on real 2000-2012 history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from v28quant.ml.adaptive_allocator import AdaptiveAllocator
from v28quant.regime.hierarchical import HierarchicalRegimeController, combine
from v28quant.regime.risk import PomdpRiskScale, capital_split

LABELS = ("bull_quiet", "sideways", "bear_volatile")


def test_combination_rules_by_hand() -> None:
    same = {"bull_quiet": 0.7, "sideways": 0.2, "bear_volatile": 0.1}
    p, a = combine(same, same, LABELS)
    assert a == pytest.approx(1.0)
    assert p == pytest.approx(same)
    # disjoint opinions: agreement 0, nothing known
    p, a = combine(
        {**dict.fromkeys(LABELS, 0.0), "bull_quiet": 1.0},
        {**dict.fromkeys(LABELS, 0.0), "bear_volatile": 1.0},
        LABELS,
    )
    assert a == 0.0
    assert p == pytest.approx(dict.fromkeys(LABELS, 1 / 3))
    # partial: a = 0.5 + 0.2 + 0.1 = 0.8; p = 0.8 * pool + 0.2 / 3
    h = {"bull_quiet": 0.6, "sideways": 0.3, "bear_volatile": 0.1}
    m = {"bull_quiet": 0.5, "sideways": 0.2, "bear_volatile": 0.3}
    p, a = combine(h, m, LABELS)
    assert a == pytest.approx(0.8)
    assert p["bull_quiet"] == pytest.approx(0.8 * 0.55 + 0.2 / 3)
    assert p["bull_quiet"] < combine(h, h, LABELS)[0]["bull_quiet"]  # disagreement lowers it


@pytest.fixture(scope="module")
def risk_scale() -> PomdpRiskScale:
    return PomdpRiskScale(LABELS, (0.0008, 0.0002, -0.0017), (0.007, 0.012, 0.025))


def test_posteriors_enter_through_the_observation_model(risk_scale: PomdpRiskScale) -> None:
    q = {"bull_quiet": 0.2, "sideways": 0.3, "bear_volatile": 0.5}
    z = risk_scale.controller.pomdp.Z[0]  # 0.8 on the diagonal, 0.1 elsewhere
    expected = z @ np.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(risk_scale.likelihood(q), expected, rtol=1e-12)
    # soft evidence is flatter than the posterior itself: not counted as a likelihood
    assert np.ptp(expected) < np.ptp([0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="lacks regimes"):
        risk_scale.likelihood({"bull_quiet": 1.0})


def test_one_belief_update_per_data_time(risk_scale: PomdpRiskScale) -> None:
    t = datetime(2008, 10, 10, 20, tzinfo=UTC)
    stressed = {"bull_quiet": 0.0, "sideways": 0.05, "bear_volatile": 0.95}
    first = risk_scale.update(stressed, t)
    belief = risk_scale.controller.belief.copy()
    again = risk_scale.update(stressed, t)
    assert again is first
    np.testing.assert_array_equal(risk_scale.controller.belief, belief)
    for _ in range(5):
        t = t.replace(day=t.day + 1)
        d = risk_scale.update(stressed, t)
    assert d.action == "risk_off"
    assert d.exposure_scale == pytest.approx(0.1)


def test_capital_split_scales_the_allocators_engine_weights() -> None:
    alloc = AdaptiveAllocator(["equity/momentum", "options/iron_condor"])
    split = capital_split(alloc, 0.5)
    assert sum(split.values()) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="risk_multiplier"):
        capital_split(alloc, 0.0)


def _returns(shared: Path, sym: str) -> pd.Series:
    df = pd.read_csv(shared / "equities" / "yahoo_2000_2012" / f"{sym}.csv", parse_dates=["date"])
    return np.log(df.set_index("date")["adj_close"]).diff().dropna()


def test_market_on_top_symbols_below_on_real_history(shared_data: Path) -> None:
    spy = _returns(shared_data, "SPY")
    syms = {s: _returns(shared_data, s) for s in ("JPM", "XOM")}
    broken = pd.Series(np.nan, index=spy.index[:300])
    ctl = HierarchicalRegimeController(n_starts=2).fit(
        spy[:"2007-12-31"], {**{s: r[:"2007-12-31"] for s, r in syms.items()}, "BAD": broken}
    )
    assert "BAD" in ctl.failed
    calm = ctl.assess(spy[:"2006-12-29"], {s: r[:"2006-12-29"] for s, r in syms.items()})
    crash = ctl.assess(spy[:"2008-10-10"], {s: r[:"2008-10-10"] for s, r in syms.items()})
    print(f"2006-12-29: {calm.state.label} x{calm.risk_multiplier:.3f} {calm.reasoning}")
    print(f"2008-10-10: {crash.state.label} x{crash.risk_multiplier:.3f} {crash.reasoning}")
    assert crash.state.label == "bear_volatile"
    assert calm.state.label != "bear_volatile"
    assert 0.0 < crash.risk_multiplier < calm.risk_multiplier <= 1.0
    assert crash.state.source == "hierarchical"
    assert crash.state.ts.date().isoformat() == "2008-10-10"
    assert set(crash.per_symbol) == {"JPM", "XOM"}
    assert crash.per_symbol["JPM"].label == "bear_volatile"
    assert sum(crash.per_symbol["XOM"].probabilities.values()) == pytest.approx(1.0)
