"""Drift detection and the continuous learner (v28quant.ml.continuous_learner).

Independent facts: adjusted p-values agree with statsmodels' multipletests (peer library,
'fdr_bh' and 'holm'); on stationary data the corrected test's false-alarm rate is at most its
level (Benjamini-Hochberg controls the family-wise rate at alpha when every null holds) and a
single KS test rejects at about its level; a known mean shift is detected; retraining runs off
the caller's thread and never blocks ``record_trade``.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from v28quant.ml.continuous_learner import (
    Calibration,
    ContinuousLearner,
    ContinuousLearnerConfig,
    DriftDetector,
    TradeOutcome,
    adjust_pvalues,
)


@pytest.mark.parametrize(("ours", "theirs"), [("benjamini-hochberg", "fdr_bh"), ("holm", "holm")])
def test_adjusted_pvalues_match_statsmodels(ours, theirs):
    p = np.random.default_rng(0).uniform(0, 0.2, 25) ** 2
    np.testing.assert_allclose(
        adjust_pvalues(p, ours), multipletests(p, method=theirs)[1], atol=1e-14
    )


def test_false_alarm_rate_on_stationary_data_is_within_level():
    rng = np.random.default_rng(1)
    trials, alarms, single = 300, 0, 0
    for _ in range(trials):
        ref, cur = rng.normal(size=(200, 5)), rng.normal(size=(100, 5))
        det = DriftDetector(ref, alpha=0.05)
        rep = det.test(cur)
        alarms += rep.drift
        single += rep.p_values[0] < 0.05
    # one-sided: the family-wise rate may not exceed 0.05 beyond binomial noise (99.9 % bound)
    assert alarms <= stats.binom.ppf(0.999, trials, 0.05), alarms
    # a single exact KS test rejects at close to its level (two-sided 99.9 % band)
    lo, hi = stats.binom.ppf([0.0005, 0.9995], trials, 0.05)
    assert lo <= single <= hi, single


def test_known_shift_in_one_feature_is_detected_and_named():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(300, 4))
    cur = rng.normal(size=(150, 4))
    cur[:, 2] += 0.6
    rep = DriftDetector(ref, feature_names=["a", "b", "c", "d"], correction="holm").test(cur)
    assert rep.drift, rep
    assert rep.drifted == ("c",), rep


def test_a_change_of_calibration_is_detected_and_named():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 0.9, 300)
    calibration = Calibration.fit(p, (rng.uniform(size=300) < p).astype(int))
    det = DriftDetector(rng.normal(size=(300, 2)), calibration)
    cur_p = rng.uniform(0.1, 0.9, 150)
    rep = det.test(rng.normal(size=(150, 2)), cur_p, (rng.uniform(size=150) < 1 - cur_p))
    assert rep.drifted == ("calibration",), rep


def test_detector_rejects_bad_arguments():
    with pytest.raises(ValueError, match="correction"):
        DriftDetector(np.zeros((5, 2)), correction="bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="current must be"):
        DriftDetector(np.zeros((5, 2))).test(np.zeros((5, 3)))


class Incremental:
    def __init__(self) -> None:
        self.rows = 0

    def partial_fit(self, X, y):
        self.rows += len(X)
        return self


def test_trades_update_models_and_drift_retrains_off_the_loop():
    rng = np.random.default_rng(4)
    det = DriftDetector(rng.normal(size=(300, 3)), alpha=0.05)
    release, started = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def retrain(X, y):
        seen["thread"] = threading.current_thread().name
        started.set()
        release.wait(30)
        return {"xgb": "new-model"}

    inc = Incremental()
    learner = ContinuousLearner(
        {"xgb": "old-model", "inc": inc},
        det,
        retrain,
        ContinuousLearnerConfig(window=60, min_trades=60, cooldown=60),
    )
    reports = []
    for i in range(80):
        x = rng.normal(size=3) + (2.0 if i >= 20 else 0.0)  # a large shift after 20 trades
        reports.append(learner.record_trade(TradeOutcome("SPY", x, 0.6, rng.normal())))
    assert inc.rows == 80
    assert reports[59] is not None
    assert reports[59].drift
    assert started.wait(30)
    # record_trade returned while the retrain was still blocked: it ran off the caller's thread
    assert learner.retraining
    assert seen["thread"] != threading.current_thread().name
    assert learner.models["xgb"] == "old-model"
    release.set()
    learner.pending.result(30)
    learner.close()
    assert learner.models["xgb"] == "new-model"
    assert learner.retrain_count == 1


async def test_async_record_trade_does_not_block_the_event_loop():
    rng = np.random.default_rng(5)
    learner = ContinuousLearner({}, DriftDetector(rng.normal(size=(50, 2))), lambda X, y: {})
    rep = await learner.arecord_trade(TradeOutcome("SPY", np.zeros(2), 0.5, 1.0))
    assert rep is None  # too few trades to test yet
    learner.close()


def test_xgboost_is_updated_incrementally_from_closed_trades():
    from v28quant.ml.gradient_boost_ensemble import EnsembleConfig, XGBoostModel

    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] > 0).astype(int)
    model = XGBoostModel(EnsembleConfig(n_estimators=20, incremental_batch=10)).fit(X, y)
    rounds = model._clf.get_booster().num_boosted_rounds()
    learner = ContinuousLearner({"xgb": model}, DriftDetector(X), lambda X, y: {})
    for i in range(25):
        x = rng.normal(size=3)
        learner.record_trade(TradeOutcome("SPY", x, 0.5, 1.0 if i % 2 else -1.0))
    learner.close()
    # two full batches of 10 trades -> two updates of incremental_trees rounds each
    assert model._clf.get_booster().num_boosted_rounds() == rounds + 2 * 10
