"""The drift test of the predictions: trades' labels against the reference calibration.

A simulated stationary world: the model's P(up) ``p`` and a fixed (mis)calibration
``P(label = 1 | p) = expit(0.7 logit p + 0.05)``, the same on the reference rows and on the
trades. The trades are the confident rows only (``|p - 0.5| > 0.12``), as the engine picks them,
and each trip's own holding-period direction agrees with the model's label 80 % of the time.
Independent facts: with nothing changed, the calibration test rejects at its level (two-sided
binomial 99.9 % band over many seeds); when the calibration changes (the signal reversed, or a
bias), it fires; the incremental updates and the retrain learn the model's label, not the
trip's move.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats
from v28quant.ml.continuous_learner import (
    Calibration,
    ContinuousLearner,
    ContinuousLearnerConfig,
    DriftDetector,
    TradeOutcome,
)

TRADES = 100
CONFIG = ContinuousLearnerConfig(window=TRADES, min_trades=TRADES, cooldown=TRADES)


def _world(rng: np.random.Generator, n: int, slope: float = 0.7, bias: float = 0.05):
    """P(up), the model's labels and the trips' own directions of ``n`` rows."""
    p = special.expit(rng.normal(0, 0.8, n))
    labels = (rng.uniform(size=n) < special.expit(slope * special.logit(p) + bias)).astype(int)
    trip_up = np.where(rng.uniform(size=n) < 0.8, labels, 1 - labels)
    return p, labels, trip_up


def _night(seed: int, slope: float = 0.7, bias: float = 0.05):
    """One drift test of 100 confident trades against a 1000-row reference."""
    rng = np.random.default_rng(seed)
    p, labels, _ = _world(rng, 1000)
    detector = DriftDetector(rng.normal(size=(1000, 2)), Calibration.fit(p, labels))
    learner = ContinuousLearner({}, detector, lambda X, y: {}, CONFIG)
    p, labels, trip_up = _world(rng, 5 * TRADES, slope, bias)
    report = None
    for i in np.flatnonzero(np.abs(p - 0.5) > 0.12)[:TRADES]:
        move = 0.01 if trip_up[i] else -0.01
        outcome = TradeOutcome("SPY", rng.normal(size=2), p[i], 1.0, move=move, label=labels[i])
        report = learner.record_trade(outcome) or report
    learner.close()
    assert report is not None
    return report


def test_calibration_test_rejects_at_its_level_when_nothing_changed() -> None:
    trials = 300
    reports = [_night(s) for s in range(trials)]
    rejections = sum(r.p_values[r.names.index("calibration")] < 0.05 for r in reports)
    lo, hi = stats.binom.ppf([0.0005, 0.9995], trials, 0.05)
    print(f"calibration test, no drift: {rejections}/{trials} rejections at 5 %")
    assert lo <= rejections <= hi, (rejections, lo, hi)


@pytest.mark.parametrize(("slope", "bias"), [(-0.3, 0.05), (0.7, 1.2)], ids=["reversed", "biased"])
def test_a_change_of_calibration_fires(slope: float, bias: float) -> None:
    trials = 50
    hits = sum("calibration" in _night(s, slope, bias).drifted for s in range(trials))
    assert hits >= 45, hits


def test_the_models_learn_the_label_not_the_trips_move() -> None:
    seen: dict[str, list[int]] = {"partial_fit": [], "retrain": []}

    class Incremental:
        def partial_fit(self, X: np.ndarray, y: np.ndarray) -> None:
            seen["partial_fit"].extend(y.tolist())

    def retrain(X: np.ndarray, y: np.ndarray) -> dict[str, object]:
        seen["retrain"] = y.tolist()
        return {}

    rng = np.random.default_rng(0)
    p, labels, _ = _world(rng, 1000)
    detector = DriftDetector(rng.normal(size=(1000, 2)), Calibration.fit(p, labels))
    config = ContinuousLearnerConfig(window=20, min_trades=20, cooldown=20, test_every=20)
    learner = ContinuousLearner({"inc": Incremental()}, detector, retrain, config)
    # the price fell over each trip but rose over the label's sessions; features far off
    for _ in range(20):
        learner.record_trade(TradeOutcome("SPY", rng.normal(5, 1, 2), 0.5, -1.0, label=1))
    assert learner.pending is not None
    learner.pending.result(30)
    learner.close()
    assert seen == {"partial_fit": [1] * 20, "retrain": [1] * 20}
