"""What the runner hands an engine, and what an engine hands back.

An engine (equity, options, ...) implements ``Engine``: a name, a pre-market job, a cycle and an
end-of-day job, all async (and may offer ``announces_fill``, see ``fills_announced_by``, and
``follow``, see ``Engine``). The runner calls them on the exchange's schedule with an
``EngineContext`` that carries everything the engine may touch: the clock (venue or simulated),
the broker and data feed, the journal, the execution service, the signal aggregator, the regime
assessment of the day, the risk gate and the settings. Engines never build any of these
themselves, so the same engine code runs live, in paper, keyless and in backtests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from v28quant.broker.base import Broker, OrderTag
from v28quant.calendar import ExchangeCalendar
from v28quant.clock import Clock
from v28quant.config import RunConfig
from v28quant.data.base import DataFeed
from v28quant.journal import Journal
from v28quant.notify import Notifier
from v28quant.risk import RiskGate
from v28quant.settings import Settings

Mode = Literal["live", "paper", "backtest"]


@dataclass
class EngineContext:
    """Everything an engine may use, built once by the runner.

    Attributes
    ----------
    mode : str
        ``live``, ``paper`` or ``backtest``.
    clock : Clock
        The venue's clock in keyed modes, a simulated one otherwise; ``now`` reads it.
    broker, feed, journal, executor, aggregator, risk, notifier
        The shared services (``executor`` is ``v28quant.execution.Executor``, ``aggregator``
        ``v28quant.signals.SignalAggregator``).
    regime : Any
        The hierarchical regime assessment of the session (set by the pre-market job).
    settings, config : Settings, RunConfig
        Environment settings and the runner's TOML sections.
    universe : tuple of str
        Symbols the equity engine considers; the options engine trades their options.
    calendar : ExchangeCalendar
        Sessions and windows.
    model_dir : Path
        The model store's root (trained models are reused across runs).
    synthetic : bool
        Prices between daily bars come from a synthetic intraday path (keyless and backtest).
    shared : dict
        What the runner's pre-market job computed for every engine (market returns, the CAPM
        screen, the allocator's capital split).
    """

    mode: Mode
    clock: Clock
    broker: Broker
    feed: DataFeed
    journal: Journal
    executor: Any
    aggregator: Any
    risk: RiskGate
    settings: Settings
    config: RunConfig
    notifier: Notifier
    universe: tuple[str, ...]
    calendar: ExchangeCalendar
    model_dir: Path
    synthetic: bool = False
    regime: Any = None
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        """Return the current time on the runner's clock."""
        return self.clock.now()


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one engine did in one cycle (logged, and journaled as the cycle's decision).

    Attributes
    ----------
    engine : str
        The engine's name.
    at : datetime
        The cycle's scheduled time.
    signals : int
        Signals journaled this cycle.
    orders : int
        Orders sent to the execution service.
    denied : int
        Orders the risk gate refused (each journaled with its reason).
    note : str
        A short human line (e.g. why nothing traded).
    details : Mapping[str, Any]
        The equity engine's word on each symbol it judged (the screened and the held), the
        options engine's book (Greeks, held, pending, errors); journaled as the cycle
        decision's ``details``, which the operator's ``why`` reads.
    """

    engine: str
    at: datetime
    signals: int = 0
    orders: int = 0
    denied: int = 0
    note: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """A trading engine the runner drives (see the module docstring).

    An engine whose orders rest between its cycles (limit orders walked towards the natural
    price) may offer ``async follow(ctx) -> bool``: follow those orders without a new analysis
    and return whether any still rests. When its cycles are further apart than 5 minutes (a
    daily backtest), the runner calls it at the 5-minute slots in between while it returns
    True, so its orders are followed on the live cadence. It may also offer
    ``extra_cycle_slots(ctx, grid) -> list[datetime]``, read after its pre-market job: the
    slots of the session's 5-minute ``grid`` where it needs a cycle of its own between those
    cycles (the options engine's expiry-day close). An engine with work running in the
    background may offer ``async aclose()``, awaited when the run ends (stopped or done), before
    the journal closes: it waits, bounded, for that work to journal its outcome.
    """

    name: str

    async def premarket(self, ctx: EngineContext) -> None:
        """Prepare the session: refits, screens, anything that needs the day's history."""
        ...

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        """Run one 5-minute decision cycle at ``ctx.now``."""
        ...

    async def end_of_day(self, ctx: EngineContext) -> None:
        """Close the session: roll-ups, learner updates."""
        ...


def fills_announced_by(engines: Sequence[object]) -> Callable[[OrderTag], bool]:
    """Return whether one of ``engines`` announces the fills of an order with this tag itself.

    An engine that sends its own fill notice (the options engine: strategy, units, net price)
    offers ``announces_fill(tag) -> bool``; the execution service leaves those fills to it, so
    that each fill is announced once.
    """
    own = [hook for e in engines if (hook := getattr(e, "announces_fill", None)) is not None]
    return lambda tag: any(hook(tag) for hook in own)
