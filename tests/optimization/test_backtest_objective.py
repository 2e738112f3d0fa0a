"""The backtest objective: parameters reach the runner's configuration; returns are sliced."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from v28quant.backtest import BacktestResult
from v28quant.optimization import backtest_objective
from v28quant.optimization.backtest_objective import BacktestEvaluator


def test_space_covers_the_shipped_weight_table() -> None:
    text = resources.files("v28quant").joinpath("aggregator_weights.toml").read_text()
    table = tomllib.loads(text)["weights"]
    space = backtest_objective.backtest_space()
    for regime, models in table.items():
        if regime == "default":
            continue
        for model, w in models.items():
            assert space[f"weights.{regime}.{model}"].default == w


def test_parameters_become_the_run_config() -> None:
    ev = BacktestEvaluator()
    p = ev.space.defaults()
    p["weights.crisis.garch"] = 2.5
    p["aggregator.min_confidence"] = 0.25
    p["equity.screen_keep"] = 7
    cfg, equity = ev._run_config(ev.space.validate(p))
    assert cfg.aggregator.weights["crisis"]["garch"] == 2.5
    assert cfg.aggregator.min_confidence == 0.25
    assert equity["screen_keep"] == 7
    assert set(equity) == {
        "target_vol",
        "max_weight",
        "min_trade_weight",
        "ml_veto_confidence",
        "screen_keep",
    }


def test_returns_are_the_equity_curve_sliced(monkeypatch: pytest.MonkeyPatch) -> None:
    ev = BacktestEvaluator()
    d = ev.dates()
    train, test = d[:60], d[65:90]
    equity = pd.Series(100_000 * np.cumprod(1 + 0.001 * np.sin(np.arange(90))), index=d[:90])
    seen: dict[str, Any] = {}

    def fake_run_backtest(cfg: Any, start: Any, end: Any, **kw: Any) -> BacktestResult:
        seen.update(start=start, end=end, **kw)
        curve = equity.copy()
        curve.index = [x.date() for x in curve.index]
        return BacktestResult(curve, pd.DataFrame(), {}, Path("j"), None)

    monkeypatch.setattr("v28quant.backtest.run_backtest", fake_run_backtest)
    r = ev.evaluate(ev.space.defaults(), train, test, seed=0)
    assert (seen["start"], seen["end"]) == (d[0].date(), d[89].date())
    expected = equity.pct_change().fillna(0.0)
    np.testing.assert_allclose(r.train.to_numpy(), expected.loc[train].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(r.test.to_numpy(), expected.loc[test].to_numpy(), rtol=1e-12)


def test_a_backtest_stopped_early_is_no_score(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop signal ends a backtest after its session in flight, with exit 0 and a short curve.

    Scored, the missing sessions would count as flat days and the trial would enter the study
    with a made-up Sharpe ratio. Reference: the window's last test date against the curve's.
    """
    ev = BacktestEvaluator()
    d = ev.dates()
    train, test = d[:60], d[65:90]
    stopped = pd.Series(100_000.0 * (1 + 0.001 * np.arange(30)), index=[x.date() for x in d[:30]])

    def fake_run_backtest(cfg: Any, start: Any, end: Any, **kw: Any) -> BacktestResult:
        return BacktestResult(stopped, pd.DataFrame(), {}, Path("j"), None)

    monkeypatch.setattr("v28quant.backtest.run_backtest", fake_run_backtest)
    with pytest.raises(
        RuntimeError, match=rf"stopped at {d[29]:%Y-%m-%d}, before {d[89]:%Y-%m-%d}"
    ):
        ev.evaluate(ev.space.defaults(), train, test, seed=0)


def test_scope_names_the_universe_and_the_toml(tmp_path: Path) -> None:
    """Reference: hashlib over the TOML bytes, the universe sorted, the installed version."""
    import hashlib
    from importlib.metadata import version

    toml = tmp_path / "v28.toml"
    toml.write_text("[paper]\nmin_confidence = 0.1\n")
    ev = BacktestEvaluator(universe=("MSFT", "AAPL"), config=toml)
    digest = hashlib.sha256(toml.read_bytes()).hexdigest()
    assert ev.scope() == {
        "universe": ["AAPL", "MSFT"],
        "config_sha256": digest,
        "code_version": version("v28quant"),
    }
