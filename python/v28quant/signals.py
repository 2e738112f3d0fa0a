"""The vocabulary every model speaks: ``Signal`` and ``RegimeState``.

Each model (ML, regime detectors, GARCH, CAPM, option mispricing, ...) emits ``Signal`` objects;
the signal aggregator combines them with regime-dependent weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Signal:
    """One model's view on one symbol.

    Parameters
    ----------
    model : str
        Name of the model that produced it (e.g. ``"xgboost"``, ``"garch"``).
    symbol : str
        The instrument it is about.
    value : float
        Direction and strength in [-1, 1]: -1 fully short, 0 flat, +1 fully long.
    confidence : float
        How much the model trusts it, in [0, 1].
    reasoning : Mapping[str, Any]
        The small set of numbers that produced it, logged and journaled as JSON.
    ts : datetime
        When it was produced (timezone-aware; UTC by default).
    """

    model: str
    symbol: str
    value: float
    confidence: float
    reasoning: Mapping[str, Any] = field(default_factory=dict)
    ts: datetime = field(default_factory=_utcnow)

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("Signal.model must be a non-empty string")
        if not self.symbol:
            raise ValueError("Signal.symbol must be a non-empty string")
        if not (math.isfinite(self.value) and -1.0 <= self.value <= 1.0):
            raise ValueError(f"Signal.value must be in [-1, 1], got {self.value!r}")
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"Signal.confidence must be in [0, 1], got {self.confidence!r}")
        if self.ts.tzinfo is None:
            raise ValueError("Signal.ts must be timezone-aware")


@dataclass(frozen=True, slots=True)
class RegimeState:
    """A regime detector's reading of the market.

    Parameters
    ----------
    label : str
        The most likely regime (e.g. ``"bull_quiet"``, ``"bear_volatile"``).
    probabilities : Mapping[str, float]
        Probability of each regime label; sums to 1.
    source : str
        Which detector produced it (``"hmm"``, ``"manifold"``, ``"hierarchical"``).
    """

    label: str
    probabilities: Mapping[str, float]
    source: str
    ts: datetime = field(default_factory=_utcnow)

    def __post_init__(self) -> None:
        if self.label not in self.probabilities:
            raise ValueError(f"RegimeState.label {self.label!r} is not among its probabilities")
        total = sum(self.probabilities.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"RegimeState.probabilities must sum to 1, got {total}")
