"""What the options engine sees of the runner, and what it reports back per cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class OptionsContext(Protocol):
    """What the engine uses of the runner's context (``v28quant.engines.EngineContext``)."""

    mode: str
    broker: Any
    feed: Any
    journal: Any
    executor: Any
    aggregator: Any
    notifier: Any
    universe: tuple[str, ...]
    config: Any
    regime: Any
    risk: Any

    @property
    def now(self) -> datetime:
        """The venue's (or simulated) time."""
        ...


@dataclass
class OptionsCycle:
    """What one options cycle did so far (becomes the runner's ``CycleReport``)."""

    engine: str
    at: datetime
    signals: int = 0
    orders: int = 0
    denied: int = 0
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)
