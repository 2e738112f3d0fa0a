"""SignalAggregator: its stated properties by hypothesis, and the stale and settings rules.

Properties are checked on random signal sets; the stale / look-ahead / settings rules on
hand-made cases.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from v28quant.signals import (
    Aggregate,
    RegimeState,
    Signal,
    SignalAggregator,
    combine_confidence,
    default_settings,
    record_from_pvalue,
    support_from_z,
)

T0 = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)
Votes = dict[str, tuple[float, float]]
Weights = dict[str, float]
MODELS = ("garch", "capm", "xgboost", "hmm", "manifold", "sac")
REGIMES = ("bull_quiet", "sideways", "bear_volatile")


def regime(label: str = "sideways") -> RegimeState:
    return RegimeState(label, {r: float(r == label) for r in REGIMES}, "hmm", T0)


unit = st.floats(0.0, 1.0, allow_nan=False)
signed = st.floats(-1.0, 1.0, allow_nan=False)
votes = st.dictionaries(st.sampled_from(MODELS), st.tuples(signed, unit), min_size=1)
weights = st.dictionaries(st.sampled_from(MODELS), st.floats(0.0, 5.0), min_size=len(MODELS))


def table(w: dict[str, float]) -> dict[str, dict[str, float]]:
    full = dict.fromkeys(MODELS, 1.0) | w
    return {r: full for r in (*REGIMES, "default")}


def run(agg: SignalAggregator, v: Votes, label: str = "sideways") -> Aggregate:
    sigs = [Signal(m, "AAA", x, c, {}, T0) for m, (x, c) in v.items()]
    return agg.aggregate(sigs, regime(label), now=T0)["AAA"]


@settings(max_examples=300, deadline=None)
@given(v=votes, w=weights)
def test_value_and_confidence_stay_in_range(v: Votes, w: Weights) -> None:
    a = run(SignalAggregator(table(w)), v)
    assert -1.0 <= a.value <= 1.0, (v, w, a)
    assert 0.0 <= a.confidence <= 1.0, (v, w, a)


@settings(max_examples=300, deadline=None)
@given(v=votes, w=weights, data=st.data())
def test_raising_one_value_never_lowers_the_aggregate(
    v: Votes, w: Weights, data: st.DataObject
) -> None:
    agg = SignalAggregator(table(w))
    m = data.draw(st.sampled_from(sorted(v)))
    old, c = v[m]
    new = data.draw(st.floats(old, 1.0))
    lo, hi = run(agg, v), run(agg, v | {m: (new, c)})
    assert hi.value >= lo.value - 1e-12, (v, w, m, new, lo.value, hi.value)


@settings(max_examples=300, deadline=None)
@given(v=votes, w=weights, data=st.data())
def test_a_model_with_weight_zero_changes_nothing(
    v: Votes, w: Weights, data: st.DataObject
) -> None:
    m = data.draw(st.sampled_from(MODELS))
    agg = SignalAggregator(table(w | {m: 0.0}))
    x, c = data.draw(signed), data.draw(unit)
    without = {k: vc for k, vc in v.items() if k != m}
    a, b = run(agg, v | {m: (x, c)}), (run(agg, without) if without else None)
    if b is None:  # the zero-weight model alone: no view at all
        assert (a.value, a.confidence, a.tradable) == (0.0, 0.0, False)
    else:
        assert math.isclose(a.value, b.value, abs_tol=1e-12), (v, m, a, b)
        assert math.isclose(a.confidence, b.confidence, abs_tol=1e-12), (v, m, a, b)
        assert a.tradable == b.tradable
    assert m not in a.contributions


@settings(max_examples=300, deadline=None)
@given(v=votes, w=weights, data=st.data())
def test_disagreement_lowers_confidence(v: Votes, w: Weights, data: st.DataObject) -> None:
    # all models on one side; flipping any one of them to the other side never raises confidence
    agg = SignalAggregator(table(w))
    same = {m: (abs(x), c) for m, (x, c) in v.items()}
    m = data.draw(st.sampled_from(sorted(same)))
    flipped = same | {m: (-same[m][0], same[m][1])}
    assert run(agg, flipped).confidence <= run(agg, same).confidence + 1e-12


def test_opposite_votes_of_equal_mass_give_no_confidence() -> None:
    a = run(SignalAggregator(table({})), {"garch": (1.0, 0.9), "capm": (-1.0, 0.9)})
    assert a.value == pytest.approx(0.0, abs=1e-15)
    assert a.confidence == pytest.approx(0.0, abs=1e-15)
    agree = run(SignalAggregator(table({})), {"garch": (1.0, 0.9), "capm": (1.0, 0.9)})
    assert agree.confidence == pytest.approx(0.9)


@settings(max_examples=200, deadline=None)
@given(v=votes, w=weights, threshold=unit)
def test_tradable_is_false_below_min_confidence(v: Votes, w: Weights, threshold: float) -> None:
    a = run(SignalAggregator(table(w), min_confidence=threshold), v)
    assert a.tradable == (a.confidence >= threshold)


@settings(max_examples=200, deadline=None)
@given(v=votes, w=weights)
def test_missing_models_renormalise_rather_than_count_as_zero(v: Votes, w: Weights) -> None:
    # the aggregate of the models present equals the one where the absent ones weigh nothing
    agg = SignalAggregator(table(w))
    absent = {m: 0.0 for m in MODELS if m not in v}
    zeroed = SignalAggregator(table(w | absent))
    a, b = run(agg, v), run(zeroed, v)
    assert math.isclose(a.value, b.value, abs_tol=1e-12)
    assert math.isclose(a.confidence, b.confidence, abs_tol=1e-12)


def test_a_lone_model_keeps_its_value_when_the_others_are_missing() -> None:
    a = run(SignalAggregator(table({})), {"xgboost": (0.4, 0.8)})
    assert a.value == pytest.approx(0.4)
    assert a.confidence == pytest.approx(0.8)
    assert a.contributions == {"xgboost": (0.4, 0.8, 1.0)}


def test_weights_follow_the_regime() -> None:
    w = {"bull_quiet": {"capm": 3.0, "garch": 1.0}, "bear_volatile": {"capm": 1.0, "garch": 3.0}}
    agg = SignalAggregator(w)
    v = {"capm": (1.0, 1.0), "garch": (-1.0, 1.0)}
    assert run(agg, v, "bull_quiet").value == pytest.approx(0.5)
    assert run(agg, v, "bear_volatile").value == pytest.approx(-0.5)
    mixed = RegimeState("bull_quiet", {"bull_quiet": 0.5, "bear_volatile": 0.5}, "hmm", T0)
    assert agg.weight("capm", mixed) == pytest.approx(2.0)


def test_stale_and_future_signals_are_dropped_and_named() -> None:
    agg = SignalAggregator(table({}), lifetimes={"garch": timedelta(hours=1)})
    sigs = [
        Signal("garch", "AAA", 1.0, 1.0, {}, T0 - timedelta(hours=2)),
        Signal("capm", "AAA", -0.5, 0.7, {}, T0 - timedelta(hours=2)),
        Signal("xgboost", "AAA", 1.0, 1.0, {}, T0 + timedelta(minutes=1)),
        Signal("sac", "AAA", 0.2, 0.5, {}, T0, lifetime=timedelta(seconds=1)),
    ]
    a = agg.aggregate(sigs, regime(), now=T0)["AAA"]
    assert set(a.contributions) == {"capm", "sac"}
    assert "stale" in a.reasoning["dropped"]["garch"]
    assert "look-ahead" in a.reasoning["dropped"]["xgboost"]
    assert a.ts == T0


def test_now_defaults_to_data_time_not_the_wall_clock() -> None:
    old = datetime(2008, 10, 10, 20, 0, tzinfo=UTC)
    sigs = [Signal("capm", "AAA", 0.5, 0.9, {}, old)]
    reg = RegimeState("sideways", {"sideways": 1.0}, "hmm", old)
    a = SignalAggregator(table({})).aggregate(sigs, reg)["AAA"]
    assert a.contributions
    assert a.ts == old


def test_the_latest_fresh_signal_of_a_model_counts() -> None:
    sigs = [
        Signal("capm", "AAA", -1.0, 0.9, {}, T0 - timedelta(minutes=5)),
        Signal("capm", "AAA", 0.3, 0.9, {}, T0),
    ]
    a = SignalAggregator(table({})).aggregate(sigs, regime(), now=T0)["AAA"]
    assert a.value == pytest.approx(0.3)


def test_unknown_models_count_nothing_and_are_named() -> None:
    sigs = [Signal("astrology", "AAA", 1.0, 1.0, {}, T0), Signal("capm", "AAA", -0.2, 0.9, {}, T0)]
    a = SignalAggregator().aggregate(sigs, regime(), now=T0)["AAA"]
    assert a.value == pytest.approx(-0.2)
    assert a.reasoning["unweighted"] == ["astrology"]


def test_shipped_defaults_and_settings_override() -> None:
    d = default_settings()
    assert d["min_confidence"] == 0.6
    assert "default" in d["weights"]
    agg = SignalAggregator.from_settings(
        {"aggregator": {"min_confidence": 0.4, "weights": {"crisis": {"capm": 0.0}}}}
    )
    assert agg.min_confidence == 0.4
    assert agg.weights["crisis"]["capm"] == 0.0
    assert agg.weights["crisis"]["garch"] == d["weights"]["crisis"]["garch"]
    with pytest.raises(ValueError, match="unknown"):
        SignalAggregator.from_settings({"min_confidance": 0.5})
    with pytest.raises(ValueError, match=r"weights\['crisis'\]\['capm'\]"):
        SignalAggregator({"crisis": {"capm": -1.0}})
    with pytest.raises(ValueError, match="min_confidence"):
        SignalAggregator(min_confidence=1.5)


def test_confidence_helpers_against_the_normal_distribution() -> None:
    # 2 Phi(1.96) - 1 = 0.9500042 (standard normal table)
    assert support_from_z(1.959963984540054) == pytest.approx(0.95, abs=1e-12)
    assert support_from_z(-1.959963984540054) == pytest.approx(0.95, abs=1e-12)
    assert support_from_z(float("nan")) == 0.0
    assert record_from_pvalue(0.5) == 0.0
    assert record_from_pvalue(0.01) == pytest.approx(0.98)
    assert combine_confidence(0.5, 0.8) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="support"):
        combine_confidence(0.5, 1.2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": ""}, r"Signal\.model must be a non-empty string"),
        ({"symbol": ""}, r"Signal\.symbol must be a non-empty string"),
        ({"value": 1.5}, r"Signal\.value must be in \[-1, 1\], got 1\.5"),
        ({"value": float("nan")}, r"Signal\.value must be in \[-1, 1\], got nan"),
        ({"confidence": -0.1}, r"Signal\.confidence must be in \[0, 1\], got -0\.1"),
        ({"ts": datetime(2024, 6, 3, 16)}, r"Signal\.ts must be timezone-aware"),
        ({"lifetime": timedelta(0)}, r"Signal\.lifetime must be positive"),
    ],
)
def test_signal_refuses_out_of_range_fields(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {
        "model": "garch",
        "symbol": "SPY",
        "value": 0.5,
        "confidence": 0.5,
        "ts": datetime(2024, 6, 3, 20, tzinfo=UTC),
    }
    Signal(**base)  # the base itself is valid
    with pytest.raises(ValueError, match=message):
        Signal(**(base | kwargs))


def test_regime_state_checks_label_probabilities_and_time() -> None:
    ts = datetime(2024, 6, 3, 20, tzinfo=UTC)
    state = RegimeState("bull", {"bull": 0.7, "bear": 0.3}, "hmm", ts)
    assert state.probabilities["bull"] == 0.7
    with pytest.raises(ValueError, match="label 'calm' is not among its probabilities"):
        RegimeState("calm", {"bull": 0.7, "bear": 0.3}, "hmm", ts)
    with pytest.raises(ValueError, match=r"must sum to 1, got 0\.8"):
        RegimeState("bull", {"bull": 0.5, "bear": 0.3}, "hmm", ts)
    with pytest.raises(ValueError, match="must be timezone-aware"):
        RegimeState("bull", {"bull": 1.0}, "hmm", datetime(2024, 6, 3, 16))
