"""Fixes to the ML stack, each with the test that failed before it.

* ``latest_rows`` never hands a stale row from an earlier date as today's;
* the continuous learner labels a trade by its side and the realised move, not by the sign of
  its P&L;
* the drift test keeps its false-alarm rate on stationary autocorrelated features (AR(1), measured
  here) and a retrain sees the full history;
* purge and calibration gaps follow from the label horizon, and the date order of rows is checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from v28quant.ml.continuous_learner import (
    ContinuousLearner,
    ContinuousLearnerConfig,
    DriftDetector,
    TradeOutcome,
)
from v28quant.ml.features import latest_rows
from v28quant.ml.gradient_boost_ensemble import EnsembleConfig, XGBoostModel
from v28quant.ml.stacked_ensemble import StackedEnsemble


def _panel(dates: list[str], symbols: list[str]) -> pd.DataFrame:
    idx = pd.MultiIndex.from_product([pd.to_datetime(dates), symbols], names=["date", "symbol"])
    return pd.DataFrame({"x": np.arange(len(idx), dtype=float)}, index=idx)


def test_latest_rows_leaves_out_a_symbol_whose_last_row_is_stale() -> None:
    f = _panel(["2024-03-04", "2024-03-05"], ["AAA", "BBB"])
    f = f.drop(index=(pd.Timestamp("2024-03-05"), "BBB"))  # BBB has no row today
    last = latest_rows(f)
    assert list(last.index) == ["AAA"]
    assert last.loc["AAA", "x"] == 2.0
    # an explicit as-of date: rows of that date only
    assert list(latest_rows(f, as_of="2024-03-04").index) == ["AAA", "BBB"]
    assert latest_rows(f, as_of="2024-03-06").empty


def test_a_profitable_short_is_labelled_down() -> None:
    x = np.zeros(2)
    assert TradeOutcome("AAA", x, 0.3, pnl=50.0, side="short").direction == 0
    assert TradeOutcome("AAA", x, 0.3, pnl=-50.0, side="short").direction == 1
    assert TradeOutcome("AAA", x, 0.7, pnl=50.0, side="long").direction == 1
    # the realised move of the price decides when it is known (a long that lost on costs
    # while the price rose is still "up")
    assert TradeOutcome("AAA", x, 0.7, pnl=-1.0, side="long", move=0.004).direction == 1
    with pytest.raises(ValueError, match="side"):
        TradeOutcome("AAA", x, 0.5, pnl=1.0, side="flat")


def _ar1(rng: np.random.Generator, phi: float, n: int, k: int) -> np.ndarray:
    """Stationary AR(1) with unit variance, ``k`` independent columns."""
    e = rng.normal(size=(n, k)) * np.sqrt(1 - phi**2)
    x = np.empty((n, k))
    x[0] = rng.normal(size=k)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


@pytest.mark.parametrize("phi", [0.9, 0.98])
def test_false_alarm_rate_on_autocorrelated_stationary_features(phi: float) -> None:
    # Nothing changes: the next 100 rows of the same stationary AR(1) process. A KS test that
    # treats them as independent rejects 70-97 % of the time; the level asked for is 5 %.
    rng = np.random.default_rng(11)
    trials, alarms, naive = 200, 0, 0
    for _ in range(trials):
        x = _ar1(rng, phi, 600, 3)
        ref, cur = x[:500], x[500:]
        alarms += DriftDetector(ref, alpha=0.05).test(cur).drift
        p = [stats.ks_2samp(ref[:, j], cur[:, j]).pvalue for j in range(3)]
        naive += min(p) * 3 < 0.05
    print(f"phi {phi}: false alarms {alarms / trials:.3f} (naive KS: {naive / trials:.3f})")
    assert naive / trials > 0.5  # the problem is real on this data
    assert alarms <= stats.binom.ppf(0.999, trials, 0.05), alarms


def test_a_real_shift_in_autocorrelated_features_is_still_found() -> None:
    rng = np.random.default_rng(12)
    hits = 0
    for _ in range(50):
        x = _ar1(rng, 0.9, 600, 3)
        x[500:, 1] += 3.0  # three stationary standard deviations
        hits += DriftDetector(x[:500], alpha=0.05).test(x[500:]).drifted == ("x1",)
    assert hits >= 40, hits


def test_drift_is_tested_on_a_schedule_and_a_retrain_sees_the_full_history() -> None:
    rng = np.random.default_rng(13)
    seen: list[int] = []

    def retrain(X: np.ndarray, y: np.ndarray) -> dict[str, object]:
        seen.append(len(X))
        assert len(y) == len(X)
        return {}

    cfg = ContinuousLearnerConfig(window=100, min_trades=50, cooldown=50, test_every=25)
    learner = ContinuousLearner({}, DriftDetector(rng.normal(size=(300, 2))), retrain, cfg)
    tested = []
    for i in range(260):
        x = rng.normal(size=2) + (4.0 if i >= 150 else 0.0)
        rep = learner.record_trade(TradeOutcome("AAA", x, 0.5, pnl=rng.normal()))
        if rep is not None:
            tested.append(i + 1)
        if learner.pending is not None:
            learner.pending.result(30)
    learner.close()
    assert tested[:4] == [50, 75, 100, 125]
    assert all((n - 50) % 25 == 0 for n in tested)
    assert seen, "the shift after 150 trades must trigger a retrain"
    assert seen[0] > 150, seen  # every trade so far, not the last 100


def _ordered_panel(n_dates: int, n_sym: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-01", periods=n_dates)
    idx = pd.MultiIndex.from_product(
        [dates, [f"S{i}" for i in range(n_sym)]], names=["date", "symbol"]
    )
    X = pd.DataFrame(rng.normal(size=(len(idx), 3)), index=idx, columns=["a", "b", "c"])
    y = pd.Series((X["a"] + rng.normal(size=len(X)) > 0).astype(int), index=idx)
    return X, y


def test_rows_out_of_date_order_are_refused() -> None:
    X, y = _ordered_panel(200, 4, 0)
    shuffled = X.sample(frac=1.0, random_state=0)
    with pytest.raises(ValueError, match="date order"):
        XGBoostModel(EnsembleConfig(n_estimators=10)).fit(shuffled, y.loc[shuffled.index])
    with pytest.raises(ValueError, match="date order"):
        StackedEnsemble(n_folds=3).fit(shuffled, y.loc[shuffled.index])


def test_calibration_gap_and_purge_follow_the_label_horizon() -> None:
    # 4 symbols per date and 5-day labels: the last 5 dates before a held-out block (20 rows)
    # carry labels that end inside it, so they must not be trained on.
    X, y = _ordered_panel(200, 4, 1)
    xgb = XGBoostModel(EnsembleConfig(n_estimators=10, label_horizon=5))
    xgb.fit(X, y)
    assert xgb.split_["gap"] == 20
    assert xgb.split_["fit"] + 20 + xgb.split_["calibration"] == len(X)
    st = StackedEnsemble(n_folds=3, label_horizon=5)
    st.fit(X, y)
    assert st.purge_rows == 20
    for train, test in st.fold_indices(len(X)):
        gaps = np.abs(train[:, None] - test[None, :]).min(axis=1)
        assert gaps.min() > 20
    # plain arrays carry no dates: one row per date is assumed
    arr = XGBoostModel(EnsembleConfig(n_estimators=10, label_horizon=5))
    arr.fit(X.to_numpy(), y.to_numpy())
    assert arr.split_["gap"] == 5
