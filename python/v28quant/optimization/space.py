"""The search space, declared once: every tunable parameter with its range and default.

Optuna draws from :meth:`SearchSpace.distributions`; the walk-forward report, the promote step
and the runner validate parameter sets against the same declaration, so a name or a range is
written in one place only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import optuna

ParamKind = Literal["float", "int", "log"]

#: Regime labels the aggregator weights are keyed by: every label the HMM detector can name
#: (:data:`v28quant.regime.REGIME_LABELS`, 2 to 4 states).
REGIMES = ("bull_quiet", "sideways", "bear_volatile", "crisis")
#: Signal models whose votes the aggregator weighs.
MODELS = ("momentum", "mean_reversion", "trend")


@dataclass(frozen=True, slots=True)
class Param:
    """One tunable parameter.

    Parameters
    ----------
    name : str
        Dotted name, ``group.item`` (e.g. ``"weights.bull_quiet.momentum"``).
    low, high : float
        Inclusive range.
    default : float
        Value used when a parameter set leaves it out.
    kind : {"float", "int", "log"}
        Uniform real, integer, or log-uniform real.
    doc : str
        What it means, with its unit.
    """

    name: str
    low: float
    high: float
    default: float
    kind: ParamKind = "float"
    doc: str = ""

    def __post_init__(self) -> None:
        """Check the fields."""
        if not self.low < self.high:
            raise ValueError(f"{self.name}: low {self.low} must be < high {self.high}")
        if not self.low <= self.default <= self.high:
            raise ValueError(
                f"{self.name}: default {self.default} outside [{self.low}, {self.high}]"
            )
        if self.kind == "log" and self.low <= 0:
            raise ValueError(f"{self.name}: a log-uniform range needs low > 0")
        if self.kind == "int" and not (
            float(self.low).is_integer() and float(self.high).is_integer()
        ):
            raise ValueError(f"{self.name}: an integer range needs integer bounds")

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """Return the Optuna distribution of this parameter."""
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high))
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.kind == "log")

    def unit(self, value: float) -> float:
        """``value`` mapped to [0, 1] over the range (log scale for log parameters)."""
        if self.kind == "log":
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (value - self.low) / (self.high - self.low)


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """An ordered set of :class:`Param` with unique names."""

    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        """Check the fields."""
        names = [p.name for p in self.params]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"search space: duplicate parameter names {sorted(dup)}")
        if not names:
            raise ValueError("search space: no parameters")

    @property
    def names(self) -> list[str]:
        """Parameter names in declaration order."""
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        """Return the parameter called ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"no parameter {name!r} in the search space")

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """Name -> Optuna distribution, for ``study.ask(fixed_distributions)``."""
        return {p.name: p.distribution() for p in self.params}

    def defaults(self) -> dict[str, float]:
        """Every parameter at its default."""
        return {p.name: (int(p.default) if p.kind == "int" else p.default) for p in self.params}

    def validate(self, params: Mapping[str, float], complete: bool = True) -> dict[str, float]:
        """Return a checked copy of ``params``; with ``complete`` missing names take defaults.

        Raises
        ------
        ValueError
            An unknown name, a non-finite or out-of-range value, or a non-integer value for an
            integer parameter.
        """
        unknown = sorted(set(params) - set(self.names))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; known: {self.names}")
        out = self.defaults() if complete else {}
        for name, raw in params.items():
            p = self[name]
            v = float(raw)
            if not math.isfinite(v) or not p.low <= v <= p.high:
                raise ValueError(f"parameter {name}={raw!r} outside [{p.low}, {p.high}]")
            if p.kind == "int":
                if not v.is_integer():
                    raise ValueError(f"parameter {name}={raw!r} must be an integer")
                out[name] = int(v)
            else:
                out[name] = v
        return out


def _weights() -> tuple[Param, ...]:
    # Prior: trend-following leads in a quiet bull market, mean reversion in a sideways one,
    # and in turbulent regimes every vote counts alike.
    prior = {
        "bull_quiet": {"momentum": 1.0, "mean_reversion": 0.3, "trend": 1.0},
        "sideways": {"momentum": 0.5, "mean_reversion": 1.0, "trend": 0.5},
        "bear_volatile": {"momentum": 0.5, "mean_reversion": 0.5, "trend": 0.5},
        "crisis": {"momentum": 0.5, "mean_reversion": 0.5, "trend": 0.5},
    }
    return tuple(
        Param(
            f"weights.{regime}.{model}",
            0.0,
            2.0,
            prior[regime][model],
            doc=f"aggregator weight of the {model} signal in the {regime} regime",
        )
        for regime in REGIMES
        for model in MODELS
    )


#: The search space of the built-in strategy: aggregator weights per regime, the minimum
#: confidence to trade, sizing and risk, the regime detector and the covered-call overlay.
STRATEGY_SPACE = SearchSpace(
    (
        *_weights(),
        Param(
            "aggregator.min_confidence",
            0.0,
            0.9,
            0.3,
            doc="minimum aggregate confidence to hold a position, in [0, 1]",
        ),
        Param(
            "sizing.target_vol",
            0.04,
            0.30,
            0.10,
            "log",
            doc="annualised volatility targeted per position, before the gross cap",
        ),
        Param(
            "sizing.rebalance_days",
            1,
            10,
            5,
            "int",
            doc="sessions between rebalances (the decision's holding period)",
        ),
        Param(
            "risk.max_weight",
            0.05,
            0.40,
            0.20,
            doc="largest absolute weight of one stock, fraction of capital",
        ),
        Param(
            "risk.max_gross",
            0.25,
            1.50,
            1.00,
            doc="largest sum of absolute stock weights, fraction of capital",
        ),
        Param(
            "regime.vol_halflife",
            2.0,
            30.0,
            5.0,
            "log",
            doc="half-life in sessions of the regime HMM's EWMA volatility feature",
        ),
        Param(
            "regime.n_states",
            2,
            4,
            3,
            "int",
            doc="hidden states of the regime HMM (labels from v28quant.regime.REGIME_LABELS)",
        ),
        Param(
            "options.overlay_weight",
            0.0,
            0.5,
            0.2,
            doc="capital in the index covered-call sleeve, fraction of capital",
        ),
        Param(
            "options.call_moneyness",
            0.0,
            0.10,
            0.03,
            doc="strike of the sold call over spot at each roll, K = S (1 + m)",
        ),
        Param(
            "options.tenor_days",
            5,
            42,
            21,
            "int",
            doc="sessions from one call sale to its expiry and the next roll",
        ),
    )
)

#: Longest holding of a decision in :data:`STRATEGY_SPACE` (sessions): the label horizon.
STRATEGY_LABEL_HORIZON = int(STRATEGY_SPACE["sizing.rebalance_days"].high)
