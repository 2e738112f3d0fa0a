"""Clocks: the one notion of "now" that engines, brokers and data feeds share.

Live and paper trading use ``WallClock``; backtests and the keyless simulated mode use
``SimClock``, which the runner steps through trading days and 5-minute cycles. Every time is a
timezone-aware ``datetime`` (UTC inside; convert to US/Eastern for display and schedules).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Source of the current time."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Wait until ``when`` (returns at once if it has passed)."""
        ...


class WallClock:
    """The real time."""

    def now(self) -> datetime:
        """Return the wall-clock time in UTC."""
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        """Sleep on the event loop until ``when`` (at once if it has passed)."""
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class SimClock:
    """A simulated clock that only moves when told to.

    ``sleep_until`` jumps straight to the target time, so a backtest runs as fast as the
    computation allows. Time never moves backwards.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """Return the simulated time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Move to ``when``; raises ``ValueError`` if that is in the past or naive."""
        if when.tzinfo is None:
            raise ValueError("SimClock.set needs a timezone-aware datetime")
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValueError(f"SimClock cannot move backwards from {self._now} to {when}")
        self._now = when

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta`` (>= 0)."""
        if delta < timedelta(0):
            raise ValueError(f"SimClock.advance needs a non-negative delta, got {delta}")
        self._now += delta

    async def sleep_until(self, when: datetime) -> None:
        """Jump the simulated time to ``when`` (if later) and yield to other tasks once."""
        if when > self._now:
            self.set(when)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would
