"""The runner's configuration: the shipped ``defaults.toml`` overlaid with the user's TOML file.

``load_config(path)`` reads ``v28quant/defaults.toml`` (every default, documented there), then
the user's file (``--config FILE`` or ``V28_CONFIG``) key by key on top, and returns the
``Settings`` (environment, ``.env``, ``[risk]`` and the top-level keys) with a frozen
``RunConfig`` for the sections the runner and the engines read: ``[aggregator]``, ``[paper]``,
``[equity]``, ``[backtest]``, ``[runner]`` and ``[offhours]``. An unknown key is an error
naming it, so a typo never silently leaves a default in force.
"""

from __future__ import annotations

import logging
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from v28quant.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AggregatorConfig:
    """``[aggregator]``: the threshold, and any weight or lifetime overrides.

    ``weights`` (regime -> model -> weight) and ``lifetime_minutes`` (model -> minutes) go to
    ``SignalAggregator.from_settings`` over its shipped table (``aggregator_weights.toml``).
    """

    min_confidence: float
    weights: Mapping[str, Any] = field(default_factory=dict)
    lifetime_minutes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PaperConfig:
    """``[paper]``: paper-mode thresholds, keyless session count and simulated cadence."""

    min_confidence: float
    options_min_confidence: float
    days: int
    sim_cycle_minutes: int


@dataclass(frozen=True, slots=True)
class EquityConfig:
    """``[equity]``: sizing and gating of the equity engine (see ``defaults.toml``)."""

    target_vol: float
    max_weight: float
    screen_keep: int
    min_trade_weight: float
    ml_veto_confidence: float
    allow_short: bool
    lookback_sessions: int
    market_symbol: str
    rf_annual: float


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """``[backtest]``: simulated costs, cadence and the trial count for the deflated Sharpe."""

    cash: float
    commission_per_share: float
    slippage_bps: float
    spread_bps: float
    cycle_minutes: int
    trials: int


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """``[runner]``: cycle spacing, the time a keyed venue's cycle may take, and log files."""

    cycle_minutes: int
    cycle_limit_seconds: float
    log_dir: str
    model_dir: str
    runs_dir: str
    log_max_bytes: int
    log_backups: int


@dataclass(frozen=True, slots=True)
class OffHoursConfig:
    """``[offhours]``: jobs between the close and the next pre-market (``v28quant.offhours``)."""

    drift_checks: bool
    tune: bool
    tune_in_simulation: bool
    tune_trials: int
    tune_batch: int
    tune_windows: int
    tune_train_days: int
    tune_workers: int
    tune_max_minutes: float
    stop_before_premarket_minutes: int


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Every non-secret section the runner reads, frozen."""

    aggregator: AggregatorConfig
    paper: PaperConfig
    equity: EquityConfig
    backtest: BacktestConfig
    runner: RunnerConfig
    offhours: OffHoursConfig
    #: The user's TOML file it was loaded from (its other tables, e.g. ``[options]``, are read
    #: by the engines that own them), or None for the shipped defaults.
    source: Path | None = None

    def min_confidence(self, mode: str) -> float:
        """Return the threshold in force: ``[paper]`` in paper mode, else ``[aggregator]``."""
        return self.paper.min_confidence if mode == "paper" else self.aggregator.min_confidence

    def options_min_confidence(self, mode: str) -> float:
        """Return the options engine's threshold.

        In paper mode ``[paper] options_min_confidence``, never above ``[paper]
        min_confidence``; else ``[aggregator] min_confidence``.
        """
        if mode == "paper":
            return min(self.paper.options_min_confidence, self.paper.min_confidence)
        return self.aggregator.min_confidence

    def aggregator_settings(self, mode: str) -> dict[str, Any]:
        """Return the ``[aggregator]`` table for ``SignalAggregator.from_settings`` in ``mode``."""
        return {
            "min_confidence": self.min_confidence(mode),
            "weights": dict(self.aggregator.weights),
            "lifetime_minutes": dict(self.aggregator.lifetime_minutes),
        }


#: Sections with tables beside their scalar keys: the scalar keys, checked by type.
_SCALARS = {"AggregatorConfig": {"min_confidence"}}


def defaults() -> dict[str, Any]:
    """Return the shipped defaults (``v28quant/defaults.toml``) as a dict."""
    text = resources.files("v28quant").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _merge(base: dict[str, Any], top: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        name = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            if not isinstance(base.get(key, {}), dict):
                raise SettingsError(f"{name}: expected a value, got a table")
            out[key] = _merge(base.get(key, {}), value, name)
        elif isinstance(base.get(key), dict):  # a section given a value would break its readers
            raise SettingsError(f"[{name}]: must be a table, got {value!r}")
        else:
            out[key] = value
    return out


def _section(cls: type[Any], table: dict[str, Any], name: str) -> Any:
    known = {f.name: f for f in fields(cls) if f.name in _SCALARS.get(cls.__name__, {f.name})}
    passthrough = {f.name for f in fields(cls)} - set(known)
    unknown = sorted(set(table) - set(known) - passthrough)
    if unknown:
        raise SettingsError(f"[{name}] {unknown[0]}: unknown setting")
    values = {}
    for key, f in known.items():
        if key not in table:
            raise SettingsError(f"[{name}] {key}: missing (not in defaults.toml either)")
        value = table[key]
        want = {"float": float, "int": int, "bool": bool, "str": str}[str(f.type)]
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise SettingsError(f"[{name}] {key}: must be {want.__name__}, got {value!r}")
        values[key] = value
    for key in passthrough & set(table):
        if not isinstance(table[key], dict):
            raise SettingsError(f"[{name}] {key}: must be a table")
        values[key] = table[key]
    return cls(**values)


def check_config(cfg: RunConfig) -> None:
    """Check every value of ``cfg`` against its valid range (``defaults.toml`` documents them).

    Raises
    ------
    SettingsError
        One line naming the first value out of range, as ``[section] key: must be ...``.
    """
    checks = [
        (0 <= cfg.aggregator.min_confidence <= 1, "[aggregator] min_confidence: must be in [0, 1]"),
        (0 <= cfg.paper.min_confidence <= 1, "[paper] min_confidence: must be in [0, 1]"),
        (
            0 <= cfg.paper.options_min_confidence <= 1,
            "[paper] options_min_confidence: must be in [0, 1]",
        ),
        (cfg.paper.days >= 1, "[paper] days: must be >= 1"),
        (cfg.paper.sim_cycle_minutes % 5 == 0, "[paper] sim_cycle_minutes: a multiple of 5"),
        (cfg.paper.sim_cycle_minutes >= 5, "[paper] sim_cycle_minutes: must be >= 5"),
        (cfg.runner.cycle_minutes % 5 == 0, "[runner] cycle_minutes: a multiple of 5"),
        (cfg.runner.cycle_minutes >= 5, "[runner] cycle_minutes: must be >= 5"),
        (cfg.runner.cycle_limit_seconds > 0, "[runner] cycle_limit_seconds: must be > 0"),
        (cfg.runner.log_max_bytes >= 0, "[runner] log_max_bytes: must be >= 0"),
        (cfg.runner.log_backups >= 0, "[runner] log_backups: must be >= 0"),
        (cfg.backtest.cycle_minutes >= 5, "[backtest] cycle_minutes: must be >= 5"),
        (cfg.backtest.trials >= 1, "[backtest] trials: must be >= 1"),
        # TOML reads inf and nan as floats: every money amount and cost must be finite
        (0 < cfg.backtest.cash < math.inf, "[backtest] cash: must be finite and > 0"),
        (
            0 <= cfg.backtest.commission_per_share < math.inf,
            "[backtest] commission_per_share: must be finite and >= 0",
        ),
        (
            0 <= cfg.backtest.slippage_bps < math.inf,
            "[backtest] slippage_bps: must be finite and >= 0",
        ),
        (0 <= cfg.backtest.spread_bps < math.inf, "[backtest] spread_bps: must be finite and >= 0"),
        (0 < cfg.equity.target_vol <= 2, "[equity] target_vol: must be in (0, 2]"),
        (0 < cfg.equity.max_weight <= 1, "[equity] max_weight: must be in (0, 1]"),
        (0 <= cfg.equity.min_trade_weight <= 1, "[equity] min_trade_weight: must be in [0, 1]"),
        (
            0 <= cfg.equity.ml_veto_confidence <= 1,
            "[equity] ml_veto_confidence: must be in [0, 1]",
        ),
        (-1 < cfg.equity.rf_annual < 1, "[equity] rf_annual: must be a finite rate in (-1, 1)"),
        (cfg.equity.screen_keep >= 1, "[equity] screen_keep: must be >= 1"),
        (cfg.equity.lookback_sessions >= 60, "[equity] lookback_sessions: must be >= 60"),
        (cfg.offhours.tune_trials >= 1, "[offhours] tune_trials: must be >= 1"),
        (cfg.offhours.tune_batch >= 1, "[offhours] tune_batch: must be >= 1"),
        (cfg.offhours.tune_windows >= 1, "[offhours] tune_windows: must be >= 1"),
        (cfg.offhours.tune_train_days >= 2, "[offhours] tune_train_days: must be >= 2"),
        (cfg.offhours.tune_workers >= 0, "[offhours] tune_workers: must be >= 0"),
        (cfg.offhours.tune_max_minutes >= 0, "[offhours] tune_max_minutes: must be >= 0"),
        (
            cfg.offhours.stop_before_premarket_minutes >= 0,
            "[offhours] stop_before_premarket_minutes: must be >= 0",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise SettingsError(message)
    _check_aggregator(cfg)


def _check_aggregator(cfg: RunConfig) -> None:
    """Refuse ``[aggregator]`` weights or lifetimes the aggregator would refuse once running."""
    from v28quant.signals import SignalAggregator

    try:
        SignalAggregator.from_settings(cfg.aggregator_settings("live"))
    except ValueError as exc:
        raise SettingsError(f"[aggregator] {exc}") from None


def load_config(path: str | Path | None = None, **overrides: Any) -> tuple[Settings, RunConfig]:
    """Load settings and run configuration.

    From the shipped defaults, ``path`` (or ``V28_CONFIG``) and the environment; ``overrides``
    are passed to ``load_settings`` (they win over everything).

    Raises
    ------
    SettingsError
        One line naming the bad file, section or key.
    """
    merged = defaults()
    source = "--config" if path else "V28_CONFIG"  # the one the user is told to fix
    path = path or os.environ.get("V28_CONFIG") or None
    if path is not None:
        p = Path(path)
        if p.is_dir():
            raise SettingsError(f"{source}: {p} is a folder; give the TOML file's path")
        if not p.is_file():
            raise SettingsError(f"{source}: no such file {str(p)!r}")
        try:
            user = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{source}: {p} is not valid TOML: {exc}") from None
        # [options] is read by the options engine; the rest are sections here or Settings fields
        known = set(merged) | {"options"} | set(Settings.model_fields)
        unknown = sorted(set(user) - known)
        if unknown:
            raise SettingsError(f"{source}: {p}: {unknown[0]}: unknown setting")
        merged = _merge(merged, user, "")
    settings = load_settings(path, **{"risk": merged["risk"], **overrides})
    cfg = RunConfig(
        aggregator=_section(AggregatorConfig, merged.get("aggregator", {}), "aggregator"),
        paper=_section(PaperConfig, merged.get("paper", {}), "paper"),
        equity=_section(EquityConfig, merged.get("equity", {}), "equity"),
        backtest=_section(BacktestConfig, merged.get("backtest", {}), "backtest"),
        runner=_section(RunnerConfig, merged.get("runner", {}), "runner"),
        offhours=_section(OffHoursConfig, merged.get("offhours", {}), "offhours"),
        source=None if path is None else Path(path).resolve(),
    )
    check_config(cfg)
    paper = cfg.paper
    if paper.options_min_confidence > paper.min_confidence:  # said, not silently lowered
        log.warning(
            "[paper] options_min_confidence %s is above [paper] min_confidence %s: the options "
            "engine uses %s in paper mode",
            paper.options_min_confidence,
            paper.min_confidence,
            paper.min_confidence,
        )
    return settings, cfg


__all__ = [
    "AggregatorConfig",
    "BacktestConfig",
    "EquityConfig",
    "OffHoursConfig",
    "PaperConfig",
    "RunConfig",
    "RunnerConfig",
    "check_config",
    "defaults",
    "load_config",
]
