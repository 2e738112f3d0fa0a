"""The runner's backtest as the objective: the live engines on the simulated exchange.

:class:`BacktestEvaluator` runs :func:`v28quant.backtest.run_backtest` (the same engines, risk
gate and execution service as live trading, on ``SimBroker`` with commissions, spread and
slippage) from a window's first training session to its last test session, and returns the
daily returns of the equity curve on the training and the test dates. The engines are causal
(each pre-market job refits on the history known that morning), so the training dates are the
in-sample record and the test dates the out-of-sample one; nothing is fitted across the boundary.

The search space is built from the shipped aggregator table (``aggregator_weights.toml``): a
weight per regime and model, defaults the shipped values, plus the ``[aggregator]`` threshold and
the ``[equity]`` sizing and gating keys.
"""

from __future__ import annotations

import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from v28quant.optimization.evaluation import WindowReturns
from v28quant.optimization.space import Param, SearchSpace

#: Sessions a decision of the equity engine is held before it is revisited, with margin
#: (positions change only beyond ``min_trade_weight``).
BACKTEST_LABEL_HORIZON = 5


def _shipped_weights() -> dict[str, dict[str, float]]:
    text = resources.files("v28quant").joinpath("aggregator_weights.toml").read_text()
    table = tomllib.loads(text)["weights"]
    return {r: {m: float(w) for m, w in ms.items()} for r, ms in table.items() if r != "default"}


def backtest_space() -> SearchSpace:
    """Return the search space of the runner's engines (weights from the shipped table)."""
    weights = tuple(
        Param(f"weights.{r}.{m}", 0.0, 3.0, w, doc=f"aggregator weight of {m} in {r}")
        for r, ms in _shipped_weights().items()
        for m, w in ms.items()
    )
    return SearchSpace(
        (
            *weights,
            Param("aggregator.min_confidence", 0.0, 0.9, 0.6, doc="threshold to trade"),
            Param("equity.target_vol", 0.05, 0.40, 0.15, "log", doc="vol target per position"),
            Param("equity.max_weight", 0.02, 0.30, 0.10, doc="cap on one symbol's weight"),
            Param("equity.min_trade_weight", 0.0, 0.05, 0.01, doc="smallest weight change traded"),
            Param("equity.ml_veto_confidence", 0.5, 0.95, 0.55, doc="ML ensemble veto level"),
            Param("equity.screen_keep", 3, 20, 15, "int", doc="symbols kept by the CAPM screen"),
        )
    )


class BacktestEvaluator:
    """Evaluator over :func:`v28quant.backtest.run_backtest`.

    Parameters
    ----------
    start, end : str
        Sessions the walk-forward windows are cut from (bundled history).
    universe : sequence of str, optional
        Symbols traded (default: the runner's).
    config : str or Path, optional
        A TOML configuration the parameters are applied over (default: the shipped defaults).
    market : str
        Symbol whose sessions define the calendar of the windows.
    """

    name = "backtest"
    label_horizon = BACKTEST_LABEL_HORIZON

    def __init__(
        self,
        start: str = "2019-01-02",
        end: str = "2022-12-30",
        universe: Sequence[str] | None = None,
        config: str | Path | None = None,
        market: str = "SP500",
    ) -> None:
        from v28quant.data.samples import sp500_stocks

        bars = sp500_stocks().bars
        stamps = pd.DatetimeIndex(bars.loc[bars["symbol"] == market, "timestamp"])
        days = stamps.tz_convert("America/New_York").tz_localize(None).normalize()
        self._dates = days[(days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))]
        if len(self._dates) < 2:
            raise ValueError(f"only {len(self._dates)} sessions of {market} in {start}..{end}")
        self.space = backtest_space()
        self.universe = tuple(universe) if universe else None
        self.config = config

    def dates(self) -> pd.DatetimeIndex:
        """Return the sessions that windows are cut from."""
        return self._dates

    def scope(self) -> dict[str, Any]:
        """Return what its results hold for: the universe and the TOML the parameters go over.

        ``universe`` is sorted, the default one named too (:func:`v28quant.venue.
        keyless_universe`, what the backtests trade): a runner given another must not take the
        set for its own; ``config_sha256`` is the SHA-256 of the TOML file's bytes, None for
        the shipped defaults (:func:`~v28quant.optimization.apply.config_digest`);
        ``code_version`` the v28quant release whose engines ran the backtests.
        """
        from v28quant.config import load_config
        from v28quant.optimization.apply import code_version, config_digest
        from v28quant.venue import keyless_universe

        settings, cfg = load_config(self.config)
        return {
            "universe": sorted(self.universe or keyless_universe(settings)),
            "config_sha256": config_digest(cfg.source),
            "code_version": code_version(),
        }

    def _run_config(self, p: Mapping[str, float]) -> tuple[Any, dict[str, Any]]:
        from v28quant.config import load_config
        from v28quant.optimization.apply import apply_params

        _, cfg = load_config(self.config)
        return apply_params(cfg, p)

    def evaluate(
        self,
        params: Mapping[str, float],
        train: pd.DatetimeIndex,
        test: pd.DatetimeIndex,
        seed: int,
    ) -> WindowReturns:
        """Backtest from the first training to the last test session; slice the returns.

        ``seed`` is unused: the engines seed their own models from the configuration, so a
        backtest is a deterministic function of its parameters and dates.

        Raises
        ------
        RuntimeError
            The backtest stopped before the window's last session (a stop signal).
        """
        from v28quant.backtest import run_backtest

        p = self.space.validate(params)
        cfg, equity = self._run_config(p)
        last = test[-1] if len(test) else train[-1]
        with tempfile.TemporaryDirectory(prefix="v28-trial-") as tmp:
            result = run_backtest(
                cfg,
                start=train[0].date(),
                end=last.date(),
                universe=list(self.universe) if self.universe else None,
                params=equity,
                journal=Path(tmp) / "journal.sqlite",
                report_dir=Path(tmp) / "report",
            )
        curve = result.equity_curve.astype(np.float64)
        curve.index = pd.DatetimeIndex(pd.to_datetime(curve.index))
        if curve.empty or curve.index[-1] < last:
            # a stop signal ends the backtest after its session in flight, exit 0: the missing
            # sessions would score as flat days, a made-up Sharpe ratio in the study
            ended = f"{curve.index[-1]:%Y-%m-%d}" if len(curve) else "its start"
            raise RuntimeError(
                f"backtest {train[0]:%Y-%m-%d}..{last:%Y-%m-%d} stopped at {ended}, before "
                f"{last:%Y-%m-%d}: a partial window is no score"
            )
        rets = curve.pct_change().fillna(0.0)
        return WindowReturns(
            train=rets.reindex(train, fill_value=0.0),
            test=rets.reindex(test, fill_value=0.0),
            test_costs=float("nan"),
            test_turnover=float("nan"),
        )
