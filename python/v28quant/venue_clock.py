"""The runner's two clocks besides ``WallClock`` and ``SimClock``.

``VenueClock`` follows the venue: in live and paper trading "now" is Alpaca's ``/v2/clock``
timestamp, re-read every cycle, advanced by the host's monotonic clock in between. A host whose
wall clock is minutes off therefore still opens and closes the trading window on the exchange's
time, and a jump of the host clock (NTP step, suspend) moves nothing. One read far from the
time extrapolated since the last trusted one (a bad answer an hour ahead would otherwise stamp
every cycle until the venue caught up) is logged and not adopted, unless the next read confirms
it (a host that slept: its monotonic clock stood still while the venue's went on). The first
read, with no earlier one to judge it by, is judged by the host's wall clock: one far from it is
adopted only when a second read, at once, confirms it.

``LockstepClock`` drives several engine loops on one clock whose time the run moves itself: a
``SimClock``, or a ``VenueClock`` whose venue's time is driven (a test's fake exchange). Time only
moves when every loop is waiting, to the earliest time any of them waits for. Without it the
first loop to sleep would move the shared clock while another was still computing its cycle, and
that cycle would read prices from the future.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time as _time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from v28quant.broker.base import BrokerError, MarketClock
from v28quant.clock import SimClock

log = logging.getLogger(__name__)

#: Host clock skew from the venue's, seconds, within which nothing is said (network latency).
SKEW_TOLERANCE_S = 2.0
#: How far a venue clock read may be from the time extrapolated since the last trusted read
#: and still be adopted at once; a read further off waits for the next read to confirm it.
JUMP_TOLERANCE = timedelta(seconds=30)


class FirstReadsDisagree(BrokerError):
    """The venue clock's first two reads disagree: the venue answers, its time is unsure."""


class VenueClock:
    """Now as the venue says, monotonic in between reads.

    Parameters
    ----------
    fetch : callable
        Async function returning the venue's ``MarketClock`` (``broker.clock``).
    monotonic : callable
        Seconds from a monotonic source (``time.monotonic``).
    wait : callable, optional
        ``await wait(when)`` returns once the venue's time has reached ``when``; by default an
        ``asyncio.sleep`` on the monotonic clock. A venue whose time is driven (a test's fake
        exchange) passes the function that moves it.
    wall : callable
        The host's wall clock, timezone-aware (``datetime.now(UTC)``): what a first read is
        judged by, and the skew warned of.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[MarketClock]],
        monotonic: Callable[[], float] = _time.monotonic,
        wait: Callable[[datetime], Awaitable[None]] | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fetch = fetch
        self._mono = monotonic
        self._wait = wait
        self._wall = wall
        self._anchor: datetime | None = None
        self._anchor_mono = 0.0
        self._last: datetime | None = None
        self._skew_said: float | None = None  # the host clock's skew last warned of, seconds
        self._suspect: tuple[datetime, float] | None = None  # a far read: (its time, monotonic)
        self.last_market: MarketClock | None = None

    @property
    def driven(self) -> bool:
        """Whether the venue's time moves only when ``sleep_until`` moves it (a ``wait``)."""
        return self._wait is not None

    async def refresh(self) -> MarketClock:
        """Re-read the venue's clock and return its answer.

        ``now`` never goes back even if the venue's does; a read far from the extrapolated
        time moves nothing unless the next read confirms it (see the module docstring).
        """
        market = await self._fetch()
        ts, mono = market.ts.astimezone(UTC), self._mono()
        if self._anchor is None and not self.driven:
            market, ts, mono = await self._confirm_first(market, ts, mono)
        if self._trusted(ts, mono):
            self._anchor, self._anchor_mono = ts, mono
            self.last_market = market
            self._say_skew((market.ts - self._wall()).total_seconds())
        return market

    async def _confirm_first(
        self, market: MarketClock, ts: datetime, mono: float
    ) -> tuple[MarketClock, datetime, float]:
        """Return the first read to adopt: ``market`` (``ts``, read at ``mono``), or the next.

        ``market`` itself when ``ts`` is near the host clock; the next read, taken at once, when
        it confirms a ``ts`` far from the host clock. With no earlier read to judge it by, a
        first read far from the host clock may be a bad answer as well as a host clock that is
        wrong: only a second read that agrees tells.

        Raises
        ------
        FirstReadsDisagree
            The second read does not agree with the first: the runner waits and reads again.
        """
        host = self._wall()
        if abs(ts - host) <= JUMP_TOLERANCE:
            return market, ts, mono
        log.warning(
            "venue clock's first read %s is %+.0f s from the host clock: read again to confirm it",
            ts.isoformat(),
            (ts - host).total_seconds(),
        )
        again = await self._fetch()
        ts2, mono2 = again.ts.astimezone(UTC), self._mono()
        if abs(ts2 - _extrapolate(ts, mono, mono2)) > JUMP_TOLERANCE:
            raise FirstReadsDisagree(
                f"the venue clock's first reads disagree ({ts.isoformat()}, then "
                f"{ts2.isoformat()}; the host clock says {host.isoformat()}): neither adopted"
            )
        return again, ts2, mono2

    def _trusted(self, ts: datetime, mono: float) -> bool:
        """Whether the venue's time ``ts``, read at monotonic ``mono``, may be adopted.

        A driven venue's time is moved by the run itself: its jumps are expected.
        """
        if self._anchor is None or self.driven:
            return True
        expected = _extrapolate(self._anchor, self._anchor_mono, mono)
        if abs(ts - expected) <= JUMP_TOLERANCE:
            self._suspect = None
            return True
        earlier, self._suspect = self._suspect, (ts, mono)
        jump = (ts - expected).total_seconds()
        if earlier is not None and abs(ts - _extrapolate(*earlier, mono)) <= JUMP_TOLERANCE:
            log.warning("venue clock moved %+.0f s from ours, confirmed by two reads", jump)
            self._suspect = None
            return True
        log.warning(
            "venue clock read %s is %+.0f s from the expected %s: not adopted unless the "
            "next read confirms it",
            ts.isoformat(),
            jump,
            expected.isoformat(),
        )
        return False

    def _say_skew(self, skew: float) -> None:
        """Warn when the host clock's skew from the venue's appears or changes, not every read.

        The clock is read at every cycle and every wake-up: a steady skew said each time would
        bury the log's other warnings.
        """
        said = self._skew_said
        if abs(skew) <= SKEW_TOLERANCE_S:
            if said is not None:
                log.info("venue clock agrees with the host clock again (%+.1f s)", skew)
            self._skew_said = None
        elif said is None or abs(skew - said) > SKEW_TOLERANCE_S:
            log.warning("venue clock differs from the host clock by %+.1f s", skew)
            self._skew_said = skew

    def now(self) -> datetime:
        """Return the venue time (``refresh`` must have run once)."""
        if self._anchor is None:
            raise RuntimeError("VenueClock.now before the first refresh()")
        t = _extrapolate(self._anchor, self._anchor_mono, self._mono())
        if self._last is not None and t < self._last:
            t = self._last  # a refresh that reads an earlier venue time never turns time back
        self._last = t
        return t

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until ``when`` in venue time, then re-read the venue's clock."""
        delay = (when - self.now()).total_seconds()
        if delay <= 0:
            return
        if self._wait is not None:
            await self._wait(when)
        else:
            await asyncio.sleep(delay)
        await self.refresh()


def _extrapolate(anchor: datetime, anchor_mono: float, mono: float) -> datetime:
    """Return the venue time at monotonic ``mono``, from ``anchor`` read at ``anchor_mono``."""
    return anchor + timedelta(seconds=mono - anchor_mono)


class LockstepClock:
    """A clock shared by ``participants`` loops that advance it together.

    Each loop calls ``sleep_until``; when all active loops are asleep the clock moves to the
    earliest wake-up time and those loops resume. A loop that finishes calls ``leave``.

    Parameters
    ----------
    clock : SimClock or VenueClock
        A ``SimClock`` is set to the wake-up time at once; a driven ``VenueClock`` (see
        ``VenueClock.driven``) is moved by awaiting its ``sleep_until``, one move at a time.
    participants : int
        Loops sharing the clock (>= 1).

    Raises
    ------
    ValueError
        ``participants`` below 1, or a ``VenueClock`` that is not driven (its time passes on
        its own, so no loop can hold it back).
    """

    def __init__(self, clock: SimClock | VenueClock, participants: int) -> None:
        if participants < 1:
            raise ValueError(f"participants must be >= 1, got {participants}")
        if isinstance(clock, VenueClock) and not clock.driven:
            raise ValueError("LockstepClock needs a SimClock or a driven VenueClock")
        self._clock = clock
        self._active = participants
        self._waiting: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._moving: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        """Return the shared clock's time."""
        return self._clock.now()

    async def sleep_until(self, when: datetime) -> None:
        """Wait until every loop waits, then until the clock reaches ``when``."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (when, next(self._seq), fut))
        self._release()
        try:
            await fut
        except asyncio.CancelledError:
            self._waiting = [w for w in self._waiting if w[2] is not fut]
            heapq.heapify(self._waiting)
            if not self._waiting and self._moving is not None:
                self._moving.cancel()  # nobody left to wake (a stop): the move is moot
            raise

    def leave(self) -> None:
        """Withdraw one loop (it finished); the others may move on without it."""
        self._active -= 1
        self._release()

    def _release(self) -> None:
        if self._moving is not None:
            return  # a move is in flight; its end releases the loops
        if not self._waiting or len(self._waiting) < self._active:
            return
        first = self._waiting[0][0]
        if first > self._clock.now():
            if isinstance(self._clock, VenueClock):
                self._moving = asyncio.ensure_future(self._clock.sleep_until(first))
                self._moving.add_done_callback(lambda task: self._moved(task, first))
                return
            self._clock.set(first)
        self._wake(self._clock.now())

    def _moved(self, task: asyncio.Task[None], first: datetime) -> None:
        """Wake the loops due once the driven venue's move to ``first`` has ended."""
        self._moving = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # the loops due see the failure, as a direct sleep would show it
            self._wake(first, exc)
        else:
            self._wake(max(first, self._clock.now()))
        self._release()

    def _wake(self, until: datetime, exc: BaseException | None = None) -> None:
        """Resume every loop waiting for ``until`` or earlier (with ``exc`` when given)."""
        while self._waiting and self._waiting[0][0] <= until:
            _, _, fut = heapq.heappop(self._waiting)
            if not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)
