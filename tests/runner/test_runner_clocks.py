"""The runner's clocks: venue time and simulated time.

Venue time ignores a skewed host clock and never goes back; simulated time, and the time of a
venue the run drives (a test's fake exchange), only moves when every engine loop waits.

Independent reference: the venue's own timestamps (a fixed ``MarketClock`` sequence) and the
order of events that a discrete-event simulation must respect.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from v28quant.broker.base import BrokerError, MarketClock
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
    clock = VenueClock(venue.clock, monotonic=mono, wall=lambda: T0)
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
async def test_one_venue_clock_read_far_ahead_is_distrusted_until_the_next_confirms(
    caplog: pytest.LogCaptureFixture,
) -> None:
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    reads = [T0, T0 + 5 * minute + hour, T0 + 10 * minute, T0 + 15 * minute + hour]
    venue, mono = _Venue([*reads, T0 + 20 * minute + hour]), _Mono()
    clock = VenueClock(venue.clock, monotonic=mono, wall=lambda: T0)
    await clock.refresh()
    mono.t += 300.0
    await clock.refresh()  # a bad answer, an hour ahead
    assert clock.now() == T0 + 5 * minute  # the monotonic extrapolation holds
    assert "not adopted" in caplog.text
    mono.t += 300.0
    await clock.refresh()  # the venue agrees with the extrapolation again
    assert clock.now() == T0 + 10 * minute
    # a jump the next read confirms is real (the host slept: its monotonic time stood still)
    mono.t += 300.0
    await clock.refresh()
    assert clock.now() == T0 + 15 * minute
    mono.t += 300.0
    await clock.refresh()  # 5 minutes after the jump, as the jump foretold: adopted
    assert clock.now() == T0 + 20 * minute + hour


@pytest.mark.asyncio
async def test_a_first_venue_clock_read_far_from_the_host_waits_for_a_second_to_confirm(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the host says T0; the venue's first answer is 3 hours ahead, with nothing before it to
    # judge it by but the host clock: it is read again at once, not adopted on its own
    far = T0 + timedelta(hours=3)
    bad = _Venue([far, T0 + timedelta(seconds=1)])
    clock = VenueClock(bad.clock, monotonic=_Mono(), wall=lambda: T0)
    with pytest.raises(BrokerError, match="first reads disagree"):
        await clock.refresh()  # the second read has the venue back at the host's time
    with pytest.raises(RuntimeError, match="before the first refresh"):
        clock.now()  # nothing adopted: the trading window has no time to rely on yet
    assert bad.reads == 2
    # a host clock 3 hours wrong: the venue's two reads agree, so the venue's time is taken
    good, mono = _Venue([far, far + timedelta(seconds=2)]), _Mono()

    async def two_seconds_apart() -> MarketClock:
        answer = await good.clock()
        mono.t += 2.0
        return answer

    clock = VenueClock(two_seconds_apart, monotonic=mono, wall=lambda: T0)
    await clock.refresh()
    assert good.reads == 2
    assert clock.now() == far + timedelta(seconds=2)
    assert "first read" in caplog.text
    # a first read near the host clock is taken at once
    near = _Venue([T0 + timedelta(seconds=10), T0 + timedelta(hours=1)])
    clock = VenueClock(near.clock, monotonic=_Mono(), wall=lambda: T0)
    await clock.refresh()
    assert (near.reads, clock.now()) == (1, T0 + timedelta(seconds=10))


@pytest.mark.asyncio
async def test_one_venue_clock_read_far_behind_does_not_stop_the_clock() -> None:
    venue, mono = _Venue([T0, T0 - timedelta(hours=1)]), _Mono()
    clock = VenueClock(venue.clock, monotonic=mono, wall=lambda: T0)
    await clock.refresh()
    mono.t += 300.0
    assert clock.now() == T0 + timedelta(seconds=300)
    await clock.refresh()  # a bad answer, an hour behind
    mono.t += 60.0
    assert clock.now() == T0 + timedelta(seconds=360)


class _SkewedVenue:
    """A venue whose clock reads the host's time plus ``skew`` seconds."""

    def __init__(self) -> None:
        self.skew = 0.0

    async def clock(self) -> MarketClock:
        ts = datetime.now(UTC) + timedelta(seconds=self.skew)
        return MarketClock(ts, True, ts + timedelta(days=1), ts + timedelta(hours=2))


@pytest.mark.asyncio
async def test_a_steady_host_clock_skew_is_warned_once_not_at_every_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    venue = _SkewedVenue()
    clock = VenueClock(venue.clock)

    async def warnings_over(reads: int) -> list[str]:
        caplog.clear()
        for _ in range(reads):  # a session re-reads the venue clock hundreds of times
            await clock.refresh()
        # a skew that changes at once is a jump of the venue's time as well, warned on its own
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        return [m for m in warned if "host clock" in m]

    venue.skew = 30.0
    (first,) = await warnings_over(50)
    assert "+30" in first
    assert await warnings_over(50) == []  # the same skew, said once already
    venue.skew = 0.0
    assert await warnings_over(5) == []  # the host agrees again
    venue.skew = -40.0
    (again,) = await warnings_over(50)
    assert "-40" in again


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


class _DrivenVenue:
    """A venue whose time moves only when ``wait`` moves it, one move at a time."""

    def __init__(self) -> None:
        self.t = T0
        self.moves: list[datetime] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate: asyncio.Event | None = None  # when set, each move waits for it

    async def clock(self) -> MarketClock:
        return MarketClock(self.t, True, self.t + timedelta(days=1), self.t + timedelta(hours=2))

    async def wait(self, when: datetime) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # the move takes event-loop turns, as a request to it would
            if self.gate is not None:
                await self.gate.wait()
            self.moves.append(when)
            self.t = when
        finally:
            self.in_flight -= 1

    def venue_clock(self) -> VenueClock:
        return VenueClock(self.clock, monotonic=lambda: self.t.timestamp(), wait=self.wait)


@pytest.mark.asyncio
async def test_lockstep_moves_a_driven_venue_only_when_every_loop_waits() -> None:
    venue = _DrivenVenue()
    clock = venue.venue_clock()
    assert clock.driven
    assert not VenueClock(venue.clock).driven  # the production clock: time passes on its own
    await clock.refresh()
    lock = LockstepClock(clock, participants=2)
    seen: list[tuple[str, datetime, datetime, datetime]] = []

    async def loop(name: str, work: int, slots: list[datetime]) -> None:
        for slot in slots:
            await lock.sleep_until(slot)
            start = lock.now()
            for _ in range(work):  # a slow cycle: yields many times to the event loop
                await asyncio.sleep(0)
            seen.append((name, slot, start, venue.t))
        lock.leave()

    every_5 = [T0 + timedelta(minutes=5 * k) for k in range(4)]
    every_10 = [T0 + timedelta(minutes=10 * k) for k in range(2)]
    await asyncio.gather(loop("fast", 1, every_5), loop("slow", 80, every_10))
    # each cycle began at its slot and the venue stood still until it ended
    assert all(slot == start == end for _, slot, start, end in seen), seen
    assert sorted(s for _, s, _, _ in seen) == sorted(every_5 + every_10)
    # the venue moved to each earliest wake-up once, in order, one move at a time; the fast
    # loop's 15-minute slot came after the slow loop left, without waiting for it
    assert venue.moves == every_5[1:]
    assert venue.most_in_flight == 1


@pytest.mark.asyncio
async def test_lockstep_starts_no_second_move_while_one_is_in_flight() -> None:
    venue = _DrivenVenue()
    venue.gate = asyncio.Event()
    clock = venue.venue_clock()
    await clock.refresh()
    lock = LockstepClock(clock, participants=2)
    t1, t2 = T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)
    first = asyncio.ensure_future(lock.sleep_until(t1))
    second = asyncio.ensure_future(lock.sleep_until(t2))
    while venue.in_flight == 0:  # both wait: the move to t1 starts
        await asyncio.sleep(0)
    first.cancel()  # the loop waiting for t1 stops and leaves while the move is in flight
    with pytest.raises(asyncio.CancelledError):
        await first
    lock.leave()
    for _ in range(10):
        await asyncio.sleep(0)
    assert venue.most_in_flight == 1  # no move to t2 beside the one in flight
    venue.gate.set()
    await second
    assert venue.moves == [t1, t2]
    assert clock.now() == t2
    assert venue.most_in_flight == 1


@pytest.mark.asyncio
async def test_lockstep_stop_cancels_a_move_nobody_waits_for() -> None:
    venue = _DrivenVenue()
    venue.gate = asyncio.Event()  # never set: the move would hang
    clock = venue.venue_clock()
    await clock.refresh()
    lock = LockstepClock(clock, participants=2)
    waiters = [asyncio.ensure_future(lock.sleep_until(T0 + timedelta(minutes=m))) for m in (5, 10)]
    while venue.in_flight == 0:
        await asyncio.sleep(0)
    for w in waiters:  # a stop signal: the runner cancels every loop's sleep
        w.cancel()
    for w in waiters:
        with pytest.raises(asyncio.CancelledError):
            await w
    for _ in range(10):
        await asyncio.sleep(0)
    assert venue.in_flight == 0  # the move was cancelled, not left pending
    assert venue.moves == []
    assert clock.now() == T0


@pytest.mark.asyncio
async def test_lockstep_hands_a_failed_move_to_the_loops_due() -> None:
    async def down(when: datetime) -> None:
        raise ConnectionError("venue down")

    venue = _DrivenVenue()
    clock = VenueClock(venue.clock, monotonic=lambda: venue.t.timestamp(), wait=down)
    await clock.refresh()
    lock = LockstepClock(clock, participants=1)
    with pytest.raises(ConnectionError, match="venue down"):
        await lock.sleep_until(T0 + timedelta(minutes=5))
    with pytest.raises(ValueError, match="driven VenueClock"):
        LockstepClock(VenueClock(venue.clock), participants=1)
