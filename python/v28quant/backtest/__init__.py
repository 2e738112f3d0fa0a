"""Backtests: the runner's own code path on the simulated exchange over replay history.

``run_backtest`` runs the same engines, risk gate and execution service as live trading, on
``SimBroker`` with commissions, spread and slippage, over the bundled sample history, one cycle
per session by default (``[backtest] cycle_minutes``), and writes the report folder
(``v28quant.backtest.report``). The optimisation code calls it once per trial.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from v28quant.config import RunConfig, load_config
from v28quant.journal import Journal
from v28quant.runner_args import RunArgs
from v28quant.settings import load_settings


@dataclass(frozen=True)
class BacktestResult:
    """A finished backtest.

    Attributes
    ----------
    equity_curve : pandas.Series
        Equity (USD) at each session's close, indexed by session date.
    fills : pandas.DataFrame
        Every fill from the journal (symbol, side, qty, price, ts, client_order_id).
    metrics : dict
        As written to ``metrics.json`` (Sharpe, Sortino, max drawdown, deflated Sharpe, per-engine
        dollar P&L, ...).
    journal_path : Path
        The run's journal.
    report_dir : Path or None
        The report folder.
    """

    equity_curve: pd.Series
    fills: pd.DataFrame
    metrics: dict[str, Any]
    journal_path: Path
    report_dir: Path | None


def _day(x: date | str | None) -> date | None:
    if x is None or isinstance(x, date):
        return x
    return date.fromisoformat(x)


def run_backtest(
    config: RunConfig | str | Path | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    universe: list[str] | tuple[str, ...] | None = None,
    params: dict[str, Any] | None = None,
    *,
    journal: Path | None = None,
    report_dir: Path | None = None,
) -> BacktestResult:
    """Backtest the engines from ``start`` to ``end`` and return the result.

    Parameters
    ----------
    config : RunConfig, path or None
        A loaded configuration, a TOML file, or None for the defaults (and ``V28_CONFIG``).
    start, end : date or ISO string, optional
        First and last session (default: the last year of the bundled history).
    universe : list of str, optional
        Symbols (default: the bundled sample's stocks).
    params : dict, optional
        Overrides of ``[equity]`` keys, plus ``min_confidence`` and ``trials``.
    journal, report_dir : Path, optional
        Where the journal and the report go (default: a new folder under ``runs/``).

    Raises
    ------
    SettingsError
        A bad date, symbol or parameter, named in one line.
    """
    from v28quant.runner_setup import run_with

    if isinstance(config, RunConfig):
        settings, cfg = load_settings(), config
    else:
        settings, cfg = load_config(config)
    params = dict(params or {})
    if "min_confidence" in params:
        agg = dataclasses.replace(
            cfg.aggregator, min_confidence=float(params.pop("min_confidence"))
        )
        cfg = dataclasses.replace(cfg, aggregator=agg)
    if "trials" in params:
        cfg = dataclasses.replace(
            cfg, backtest=dataclasses.replace(cfg.backtest, trials=int(params.pop("trials")))
        )
    args = RunArgs(
        mode="backtest",
        config=None,
        universe=tuple(s.upper() for s in universe) if universe else None,
        journal=journal,
        start=_day(start),
        end=_day(end),
        days=None,
        once=False,
        log_level="WARNING",
        report_dir=report_dir,
    )
    outcome = run_with(args, settings, cfg, params=params, configure_logging=False)
    curve = pd.Series(
        [float(e) for _, e, _ in outcome.equity],
        index=pd.Index([d for d, _, _ in outcome.equity], name="date"),
        name="equity",
    )
    with Journal(outcome.journal_path) as j:
        fills = pd.DataFrame(j.fills())
    return BacktestResult(curve, fills, outcome.metrics, outcome.journal_path, outcome.report_dir)


__all__ = ["BacktestResult", "run_backtest"]
