"""The backtest objective on the real engines: its value is the OOS Sharpe of the equity curve.

One tuning trial of :class:`BacktestEvaluator` over a short rolling window (3 training sessions,
the 5-session purge/embargo, 5 test sessions; three stocks) runs the runner's engines through
``run_backtest``. The objective the tuner records, and the deflated Sharpe ratio of its closing
walk-forward, are recomputed here from the backtests' own daily equity curves with numpy and
scipy: daily returns ``E_t / E_(t-1) - 1`` on the XNYS test sessions, Sharpe ratio
``mean / sd(ddof=1) * sqrt(252)``, and for one trial (no selection) the DSR is the probabilistic
Sharpe ratio against 0 (Bailey & López de Prado 2012, eq. 11).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import exchange_calendars as xc
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from v28quant.optimization.backtest_objective import BacktestEvaluator
from v28quant.optimization.tuner import BayesianTuner, TunerConfig
from v28quant.optimization.windows import WindowScheme

START, END = "2022-11-01", "2022-11-17"
UNIVERSE = ("AAPL", "JPM", "XOM")


@pytest.mark.slow
def test_objective_and_dsr_are_recomputed_from_the_equity_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import v28quant.backtest

    cfg = tmp_path / "v28.toml"
    cfg.write_text(
        f'[runner]\nmodel_dir = "{tmp_path / "models"}"\nruns_dir = "{tmp_path / "runs"}"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("V28_CONFIG", raising=False)
    curves: list[pd.Series] = []
    real = v28quant.backtest.run_backtest

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        curves.append(result.equity_curve.astype(float))
        return result

    monkeypatch.setattr(v28quant.backtest, "run_backtest", recording)
    ev = BacktestEvaluator(START, END, universe=UNIVERSE, config=cfg)
    scheme = WindowScheme("rolling", n_windows=1, train_dates=3, label_horizon=5)
    config = TunerConfig(
        n_trials=1,
        batch_size=1,
        n_startup_trials=1,
        storage=f"sqlite:///{tmp_path / 'study.sqlite'}",
        study_name="short",
    )
    tuner = BayesianTuner(ev, config, scheme)
    params = ev.space.validate(
        {"aggregator.min_confidence": 0.0, "equity.min_trade_weight": 0.0}
    )  # every other parameter at its default: the engines trade
    tuner.study().enqueue_trial(params)
    result = tuner.optimize()

    # one backtest for the trial, one for the closing walk-forward: the same deterministic run
    # (the second reads the models the first stored, never ones fitted on later data)
    assert len(curves) == 2
    pd.testing.assert_series_equal(curves[0], curves[1])
    sessions = xc.get_calendar("XNYS").sessions_in_range(START, END)
    test_days = sessions[3 + 5 :]  # after 3 training sessions and the 5-session gap
    trial, closing = (_test_returns(c, sessions, test_days) for c in curves)
    assert trial.std(ddof=1) > 0, "the engines did not trade"
    assert result.best_value == pytest.approx(_annual_sharpe(trial), rel=1e-12)
    assert result.walk_forward.oos_sharpe == pytest.approx(_annual_sharpe(closing), rel=1e-12)

    r = closing
    sr = float(r.mean() / r.std(ddof=1))
    g3 = stats.skew(r, bias=False)
    g4 = stats.kurtosis(r, fisher=False, bias=False)
    psr = stats.norm.cdf(sr * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))
    dsr = result.walk_forward.dsr
    assert dsr.n_trials == result.n_trials == 1
    assert dsr.n == len(r) == len(test_days)
    assert dsr.sharpe == pytest.approx(sr, rel=1e-12)
    assert dsr.dsr == pytest.approx(psr, rel=1e-9)


def _test_returns(
    curve: pd.Series, sessions: pd.DatetimeIndex, test_days: pd.DatetimeIndex
) -> np.ndarray:
    """Daily returns ``E_t / E_(t-1) - 1`` of a backtest's equity curve on the test sessions."""
    assert [pd.Timestamp(d) for d in curve.index] == list(sessions[: len(curve)])
    equity = curve.to_numpy()
    daily = pd.Series(equity[1:] / equity[:-1] - 1.0, index=sessions[1 : len(equity)])
    return daily.loc[test_days].to_numpy()


def _annual_sharpe(r: np.ndarray) -> float:
    return float(r.mean() / r.std(ddof=1) * math.sqrt(252))
