"""The options engine's settings: the shipped ``options_defaults.toml`` under the user's file.

``OptionsConfig.load(path)`` reads the defaults, overlays the ``[options]`` table of the user's
TOML file (``path`` or ``V28_CONFIG``) key by key, and checks every value; an unknown key or a
bad value is a ``SettingsError`` naming it. The regime -> strategy table lives here, not in code.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, cast

from v28quant.options.contracts import DeltaTarget, LiquidityRules
from v28quant.options.lifecycle import ExitRules
from v28quant.options.strategies import StrategyName
from v28quant.risk import GreekBudget
from v28quant.settings import SettingsError

__all__ = ["STRATEGIES", "GreekBudget", "OptionsConfig", "strategy_name"]

STRATEGIES: frozenset[str] = frozenset(
    {
        "cash_secured_put",
        "covered_call",
        "bull_put",
        "bear_call",
        "bull_call",
        "bear_put",
        "iron_condor",
        "debit_vertical",
        "close",
    }
)


@dataclass(frozen=True)
class OptionsConfig:
    """Every ``[options]`` setting (documented in ``options_defaults.toml``).

    ``reentry_cooldown_minutes`` is counted in minutes on the venue's clock, not in sessions:
    one value means the same on the 5-minute cycles of live and paper and on a backtest's one
    cycle per session, and a short pause (an hour) can be said. The default, 390 minutes (one
    whole 09:30-16:00 session), shuts the underlying for the rest of the stop's session
    wherever in it the stop fires, and ends before the next session opens.
    """

    underlyings: tuple[str, ...]
    rate: float
    dte_min: int
    dte_max: int
    dte_target: int
    short_delta: DeltaTarget
    long_delta: DeltaTarget
    max_width_fraction: float
    max_loss_per_structure: float
    max_csp_fraction: float
    max_units: int
    max_open_structures: int
    max_per_underlying: int
    limit_steps: int
    max_touch_probability: float
    wheel: bool
    chain_timeout_seconds: float
    trend_days: int
    trend_min_t: float
    reentry_cooldown_minutes: int
    liquidity: LiquidityRules
    greeks: GreekBudget
    exits: ExitRules
    strategies: Mapping[str, tuple[str, ...]]
    dividends: Mapping[str, tuple[tuple[date, float], ...]] = field(default_factory=dict)

    def strategies_for(self, regime: str | None) -> tuple[str, ...]:
        """Return the strategies the table gives ``regime`` (``default`` for others)."""
        return self.strategies.get(regime or "default", self.strategies["default"])

    def next_dividend(self, symbol: str, today: date) -> tuple[date, float] | None:
        """Return the next configured (ex-date, amount) of ``symbol`` on or after ``today``."""
        future = [d for d in self.dividends.get(symbol.upper(), ()) if d[0] >= today]
        return min(future) if future else None

    @classmethod
    def load(
        cls, path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
    ) -> OptionsConfig:
        """Load the defaults and the user's ``[options]`` table (``path`` or ``V28_CONFIG``).

        ``overrides`` (an ``[options]`` table) goes on top of both, checked the same way.
        """
        text = resources.files("v28quant.options").joinpath("options_defaults.toml")
        base = tomllib.loads(text.read_text(encoding="utf-8"))["options"]
        path = path or os.environ.get("V28_CONFIG") or None
        user: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise SettingsError(f"--config: no such file {str(p)!r}")
            try:
                user = tomllib.loads(p.read_text(encoding="utf-8")).get("options", {})
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"--config: {p} is not valid TOML: {exc}") from None
        merged = _merge(base, user, "options")
        return cls.from_mapping(_merge(merged, dict(overrides or {}), "options"))

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> OptionsConfig:
        """Build and check a config from a merged ``[options]`` table."""
        try:
            return _build(m)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SettingsError):
                raise
            raise SettingsError(f"[options] {exc}") from None


def _merge(base: Mapping[str, Any], top: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        name = f"{where}.{key}"
        free = key in ("strategies", "dividends") and where == "options"
        if key not in base and not where.endswith(("strategies", "dividends")):
            raise SettingsError(f"[{where}] {key}: unknown setting")
        if isinstance(value, dict) and not free:
            out[key] = _merge(base.get(key, {}), value, name)
        elif isinstance(value, dict):
            out[key] = {**base.get(key, {}), **value}
        else:
            out[key] = value
    return out


def _band(v: Any, name: str) -> DeltaTarget:
    if not (isinstance(v, list) and len(v) == 3):
        raise SettingsError(f"[options] {name}: must be [low, high, target], got {v!r}")
    lo, hi, target = (float(x) for x in v)
    try:
        return DeltaTarget(lo, hi, target)
    except ValueError as exc:
        raise SettingsError(f"[options] {name}: {exc}") from None


def _minutes(m: Mapping[str, Any], name: str) -> int:
    # int() would take 2.5 as 2 and true as 1: a duration is given in whole minutes or refused
    v = m[name]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise SettingsError(f"[options] {name}: must be a whole number of minutes >= 0, got {v!r}")
    return v


def _build(m: Mapping[str, Any]) -> OptionsConfig:
    strategies: dict[str, tuple[str, ...]] = {}
    for label, names in m["strategies"].items():
        bad = [n for n in names if n not in STRATEGIES]
        if bad:
            raise SettingsError(f"[options.strategies] {label}: unknown strategy {bad[0]!r}")
        strategies[str(label)] = tuple(str(n) for n in names)
    if "default" not in strategies:
        raise SettingsError("[options.strategies] default: missing")
    dividends = {
        str(sym).upper(): tuple((date.fromisoformat(str(d)), float(a)) for d, a in rows)
        for sym, rows in m.get("dividends", {}).items()
    }
    cfg = OptionsConfig(
        underlyings=tuple(str(s).upper() for s in m["underlyings"]),
        rate=float(m["rate"]),
        dte_min=int(m["dte_min"]),
        dte_max=int(m["dte_max"]),
        dte_target=int(m["dte_target"]),
        short_delta=_band(m["short_delta"], "short_delta"),
        long_delta=_band(m["long_delta"], "long_delta"),
        max_width_fraction=float(m["max_width_fraction"]),
        max_loss_per_structure=float(m["max_loss_per_structure"]),
        max_csp_fraction=float(m["max_csp_fraction"]),
        max_units=int(m["max_units"]),
        max_open_structures=int(m["max_open_structures"]),
        max_per_underlying=int(m["max_per_underlying"]),
        limit_steps=int(m["limit_steps"]),
        max_touch_probability=float(m["max_touch_probability"]),
        wheel=bool(m["wheel"]),
        chain_timeout_seconds=float(m["chain_timeout_seconds"]),
        trend_days=int(m["trend_days"]),
        trend_min_t=float(m["trend_min_t"]),
        reentry_cooldown_minutes=_minutes(m, "reentry_cooldown_minutes"),
        liquidity=LiquidityRules(**{k: float(v) for k, v in m["liquidity"].items()}),
        greeks=GreekBudget(**{k: float(v) for k, v in m["greeks"].items()}),
        exits=ExitRules(**cast(dict[str, Any], dict(m["exits"]))),
        strategies=strategies,
        dividends=dividends,
    )
    checks = [
        (0 <= cfg.dte_min <= cfg.dte_target <= cfg.dte_max, "dte_min <= dte_target <= dte_max"),
        (0 < cfg.max_width_fraction < 1, "max_width_fraction in (0, 1)"),
        (cfg.max_loss_per_structure > 0, "max_loss_per_structure > 0"),
        (0 < cfg.max_csp_fraction <= 1, "max_csp_fraction in (0, 1]"),
        (cfg.max_units >= 1, "max_units >= 1"),
        (cfg.limit_steps >= 1, "limit_steps >= 1"),
        (0 < cfg.max_touch_probability <= 1, "max_touch_probability in (0, 1]"),
        (cfg.max_open_structures >= 1, "max_open_structures >= 1"),
        (cfg.trend_days >= 2, "trend_days >= 2"),
        (cfg.trend_min_t >= 0, "trend_min_t >= 0"),
    ]
    for ok, what in checks:
        if not ok:
            raise SettingsError(f"[options] {what.split()[0]}: must satisfy {what}")
    return cfg


def strategy_name(name: str) -> StrategyName:
    """Return ``name`` as a ``StrategyName``.

    ``close`` and ``debit_vertical`` (a bull call or bear put by the trend) are table entries,
    not structures: ``ValueError``.
    """
    if name not in STRATEGIES or name in ("close", "debit_vertical"):
        raise ValueError(f"not a structure: {name!r}")
    return cast(StrategyName, name)
