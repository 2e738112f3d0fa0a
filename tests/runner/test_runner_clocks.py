"""The runner's clocks: venue time and simulated time.

Venue time ignores a skewed host clock and never goes back; simulated time only moves when
every engine loop waits.

Independent reference: the venue's own timestamps (a fixed ``MarketClock`` sequence) and the
order of events that a discrete-event simulation must respect.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from v28quant.broker.base import MarketClock
from v28quant.clock import SimClock
from v28quant.venue_clock import LockstepClock, VenueClock

T0 = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)


class _Venue:
    def __init__(self, stamps: list[datetime]) -> None:
        self.stamps = stamps
        self.reads = 0

    async def clock(self) -> MarketClock:
        ts = self.stamps[min(self.reads, len(self.stamps) - 1)]
        self.reads += 1
        return MarketClock(ts, True, ts + timedelta(days=1), ts + timedelta(hours=2))


class _Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.asyncio
async def test_venue_clock_follows_the_venue_and_never_goes_back() -> None:
    venue, mono = _Venue([T0, T0 + timedelta(seconds=299), T0]), _Mono()
    clock = VenueClock(venue.clock, monotonic=mono)
    with pytest.raises(RuntimeError, match="before the first refresh"):
        clock.now()
    await clock.refresh()
    assert clock.now() == T0  # the venue's time, whatever the host's wall clock says
    mono.t += 300.0
    assert clock.now() == T0 + timedelta(seconds=300)  # monotonic time in between
    await clock.refresh()  # the venue says 299 s: a second behind our estimate
    assert clock.now() == T0 + timedelta(seconds=300)
    mono.t += 1.0
    assert clock.now() == T0 + timedelta(seconds=300)  # 299 + 1: caught up, not ahead
    await clock.refresh()  # a venue clock read that jumps back 5 minutes
    assert clock.now() == T0 + timedelta(seconds=300)


@pytest.mark.asyncio
async def test_venue_clock_sleep_rereads_the_venue() -> None:
    venue = _Venue([T0, T0 + timedelta(minutes=5)])
    moved: list[datetime] = []

    async def wait(when: datetime) -> None:
        moved.append(when)

    clock = VenueClock(venue.clock, monotonic=_Mono(), wait=wait)
    await clock.refresh()
    await clock.sleep_until(T0 + timedelta(minutes=5))
    assert moved == [T0 + timedelta(minutes=5)]
    assert venue.reads == 2
    assert clock.now() == T0 + timedelta(minutes=5)
    await clock.sleep_until(T0)  # in the past: returns at once, no read
    assert venue.reads == 2


@pytest.mark.asyncio
async def test_lockstep_clock_waits_for_every_loop() -> None:
    sim = SimClock(T0)
    lock = LockstepClock(sim, participants=2)
    seen: list[tuple[str, datetime, datetime]] = []

    async def loop(name: str, work: int) -> None:
        for k in range(3):
            slot = T0 + timedelta(minutes=5 * k)
            await lock.sleep_until(slot)
            for _ in range(work):  # a slow cycle: yields many times to the event loop
                await asyncio.sleep(0)
            seen.append((name, slot, sim.now()))
        lock.leave()

    await asyncio.gather(loop("fast", 1), loop("slow", 50))
    # every cycle ran with the clock at its own slot: the fast loop never pulled time forward
    assert all(slot == now for _, slot, now in seen), seen
    assert sorted(s for _, s, _ in seen) == [
        T0 + timedelta(minutes=5 * k) for k in (0, 0, 1, 1, 2, 2)
    ]
    with pytest.raises(ValueError, match="participants must be >= 1"):
        LockstepClock(sim, 0)
