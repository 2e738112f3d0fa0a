"""The options engine's settings: the shipped ``options_defaults.toml`` under the user's file.

``OptionsConfig.load(path)`` reads the defaults, overlays the ``[options]`` table of the user's
TOML file (``path`` or ``V28_CONFIG``) key by key, and checks every value; an unknown key or a
bad value is a ``SettingsError`` naming it. The regime -> strategy table lives here, not in code.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, cast

from v28quant.options.contracts import DeltaTarget, LiquidityRules
from v28quant.options.lifecycle import ExitRules
from v28quant.options.strategies import StrategyName
from v28quant.regime import REGIME_LABELS
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
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise SettingsError(f"--config: {p} is not valid TOML: {exc}") from None
            if not isinstance(user, dict):
                raise SettingsError(f"[options]: must be a table, got {user!r}")
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
        if isinstance(base.get(key), dict) and not isinstance(value, dict):
            raise SettingsError(f"[{where}] {key}: must be a table, got {value!r}")
        if isinstance(value, dict) and key in base and not isinstance(base[key], dict):
            raise SettingsError(f"[{where}] {key}: must be a value, got a table")
        if isinstance(value, dict) and not free:
            out[key] = _merge(base.get(key, {}), value, name)
        elif isinstance(value, dict):
            out[key] = {**base.get(key, {}), **value}
        else:
            out[key] = value
    return out


_KINDS: dict[str, type] = {"int": int, "float": float, "bool": bool}


def _typed(value: Any, kind: str, where: str) -> Any:
    """Return ``value`` if it is of ``kind`` (``int``, ``float`` or ``bool``), else refuse it.

    int(), float() and bool() would take 2.7 as 2, true as 1 and "no" as True: a setting is
    read as written or refused. An integer is a float (TOML writes 2 for 2.0).
    """
    want = _KINDS[kind]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
        raise SettingsError(f"{where}: must be {kind}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f"{where}: must be a finite number, got {value!r}")
    return value


def _scalars(cls: type[Any], table: Mapping[str, Any], section: str) -> dict[str, Any]:
    """Return the int, float and bool fields of dataclass ``cls`` read from ``table``."""
    named = {f.name: getattr(f.type, "__name__", str(f.type)) for f in fields(cls)}
    kinds = {key: kind for key, kind in named.items() if kind in _KINDS}
    return {key: _typed(table[key], kind, f"[{section}] {key}") for key, kind in kinds.items()}


def _band(v: Any, name: str) -> DeltaTarget:
    if not (isinstance(v, list) and len(v) == 3):
        raise SettingsError(f"[options] {name}: must be [low, high, target], got {v!r}")
    lo, hi, target = (_typed(x, "float", f"[options] {name}") for x in v)
    try:
        return DeltaTarget(lo, hi, target)
    except ValueError as exc:
        raise SettingsError(f"[options] {name}: {exc}") from None


def _symbols(v: Any) -> tuple[str, ...]:
    ok = isinstance(v, list) and all(isinstance(s, str) and s.replace(".", "").isalnum() for s in v)
    if not ok:
        raise SettingsError(f"[options] underlyings: must be a list of ticker symbols, got {v!r}")
    return tuple(dict.fromkeys(s.upper() for s in v))  # once each, in order


def _strategies(table: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    strategies: dict[str, tuple[str, ...]] = {}
    regimes = REGIME_LABELS[max(REGIME_LABELS)]
    for label, names in table.items():
        where = f"[options.strategies] {label}"
        if label not in (*regimes, "default"):  # a misspelt row would never be read
            raise SettingsError(
                f"{where}: not a regime; the regimes are {', '.join(regimes)} "
                "(and default for any other)"
            )
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise SettingsError(f"{where}: must be a list of strategy names, got {names!r}")
        bad = [n for n in names if n not in STRATEGIES]
        if bad:
            raise SettingsError(f"{where}: unknown strategy {bad[0]!r}")
        strategies[str(label)] = tuple(names)
    if "default" not in strategies:
        raise SettingsError("[options.strategies] default: missing")
    return strategies


def _dividend(row: Any, where: str) -> tuple[date, float]:
    if not (isinstance(row, list) and len(row) == 2):
        raise SettingsError(f"{where}: each row must be [ex-date, amount], got {row!r}")
    ex, amount = row
    try:  # a TOML date, or an ISO date in a string (a TOML date-time is neither)
        day = ex if type(ex) is date else date.fromisoformat(ex)
    except (TypeError, ValueError):
        raise SettingsError(f"{where}: ex-date must be a date (YYYY-MM-DD), got {ex!r}") from None
    dollars = _typed(amount, "float", f"{where} amount")
    if dollars <= 0:
        raise SettingsError(f"{where} amount: must be > 0 (dollars per share), got {amount!r}")
    return day, dollars


def _dividends(table: Mapping[str, Any]) -> dict[str, tuple[tuple[date, float], ...]]:
    out: dict[str, tuple[tuple[date, float], ...]] = {}
    for symbol, rows in table.items():
        where = f"[options.dividends] {symbol}"
        if not isinstance(rows, list):
            raise SettingsError(f"{where}: must be a list of [ex-date, amount], got {rows!r}")
        out[str(symbol).upper()] = tuple(_dividend(row, where) for row in rows)
    return out


def _build(m: Mapping[str, Any]) -> OptionsConfig:
    cfg = OptionsConfig(
        **_scalars(OptionsConfig, m, "options"),
        underlyings=_symbols(m["underlyings"]),
        short_delta=_band(m["short_delta"], "short_delta"),
        long_delta=_band(m["long_delta"], "long_delta"),
        liquidity=LiquidityRules(**_scalars(LiquidityRules, m["liquidity"], "options.liquidity")),
        greeks=GreekBudget(**_scalars(GreekBudget, m["greeks"], "options.greeks")),
        exits=ExitRules(**_scalars(ExitRules, m["exits"], "options.exits")),
        strategies=_strategies(m["strategies"]),
        dividends=_dividends(m.get("dividends", {})),
    )
    for section, owner, key, ok, rule in _ranges(cfg):
        if not ok:
            raise SettingsError(f"[{section}] {key}: must be {rule}, got {getattr(owner, key)!r}")
    return cfg


def _ranges(c: OptionsConfig) -> list[tuple[str, object, str, bool, str]]:
    """Return (section, holder, key, whether in range, the range) for every number."""
    liq, g, e = c.liquidity, c.greeks, c.exits
    o, ol, og, oe = "options", "options.liquidity", "options.greeks", "options.exits"
    return [
        # a fraction: 4.5 meaning 4.5 % would price every option at a 450 % rate
        (o, c, "rate", -1 < c.rate < 1, "a fraction in (-1, 1) (0.045 for 4.5 %)"),
        (o, c, "dte_min", 0 <= c.dte_min <= c.dte_max, f"in [0, dte_max {c.dte_max}]"),
        (
            o,
            c,
            "dte_target",
            c.dte_min <= c.dte_target <= c.dte_max,
            f"in [dte_min {c.dte_min}, dte_max {c.dte_max}]",
        ),
        (o, c, "max_width_fraction", 0 < c.max_width_fraction < 1, "in (0, 1)"),
        (o, c, "max_loss_per_structure", c.max_loss_per_structure > 0, "> 0"),
        (o, c, "max_csp_fraction", 0 < c.max_csp_fraction <= 1, "in (0, 1]"),
        (o, c, "max_units", c.max_units >= 1, ">= 1"),
        (o, c, "max_open_structures", c.max_open_structures >= 1, ">= 1"),
        (o, c, "max_per_underlying", c.max_per_underlying >= 1, ">= 1"),
        (o, c, "limit_steps", c.limit_steps >= 1, ">= 1"),
        (o, c, "max_touch_probability", 0 < c.max_touch_probability <= 1, "in (0, 1]"),
        (o, c, "chain_timeout_seconds", c.chain_timeout_seconds > 0, "> 0"),
        (o, c, "trend_days", c.trend_days >= 2, ">= 2"),
        (o, c, "trend_min_t", c.trend_min_t >= 0, ">= 0"),
        (o, c, "reentry_cooldown_minutes", c.reentry_cooldown_minutes >= 0, ">= 0"),
        (ol, liq, "min_bid", liq.min_bid >= 0, ">= 0"),
        (ol, liq, "max_rel_spread", liq.max_rel_spread > 0, "> 0"),
        (ol, liq, "min_open_interest", liq.min_open_interest >= 0, ">= 0"),
        (ol, liq, "min_volume", liq.min_volume >= 0, ">= 0"),
        (og, g, "max_delta_shares", g.max_delta_shares >= 0, ">= 0"),
        (og, g, "max_gamma", g.max_gamma >= 0, ">= 0"),
        (og, g, "max_vega", g.max_vega >= 0, ">= 0"),
        (og, g, "max_theta_per_day", g.max_theta_per_day >= 0, ">= 0"),
        # a credit structure wins at most its credit, a debit one loses at most its debit:
        # beyond 1 these exits could never fire
        (oe, e, "take_profit_credit", 0 < e.take_profit_credit <= 1, "in (0, 1]"),
        (oe, e, "stop_loss_credit", e.stop_loss_credit > 0, "> 0"),
        (oe, e, "take_profit_debit", e.take_profit_debit > 0, "> 0"),
        (oe, e, "stop_loss_debit", 0 < e.stop_loss_debit <= 1, "in (0, 1]"),
        (oe, e, "expiry_close_minutes", e.expiry_close_minutes >= 0, ">= 0"),
        (oe, e, "pin_band", 0 <= e.pin_band < 1, "in [0, 1)"),
        (oe, e, "roll_dte", e.roll_dte >= 0, ">= 0"),
        (oe, e, "roll_delta", 0 < e.roll_delta < 1, "in (0, 1)"),
        (oe, e, "max_rolls", e.max_rolls >= 0, ">= 0"),
    ]


def strategy_name(name: str) -> StrategyName:
    """Return ``name`` as a ``StrategyName``.

    ``close`` and ``debit_vertical`` (a bull call or bear put by the trend) are table entries,
    not structures: ``ValueError``.
    """
    if name not in STRATEGIES or name in ("close", "debit_vertical"):
        raise ValueError(f"not a structure: {name!r}")
    return cast(StrategyName, name)
