"""The production runner: one process that trades every engine through the exchange's day.

``python run_v28_production.py --mode live|paper|backtest`` ends up in ``main``. The day, on the
exchange calendar (US/Eastern): the pre-market job at 09:00 (reconcile with the broker, the
account watch, the hierarchical regime, each engine's refits and screens), then from 09:45 to
15:45 a cycle every 5 minutes for each engine, the engines side by side under one
``asyncio.TaskGroup``, then the end-of-day roll-up; off-hours jobs (drift checks, tuning:
``v28quant.offhours``) run after the close and never overlap trading. Started mid-session it
runs the pre-market job at once and joins the cycle schedule; an engine whose cycle at a slot
is in the journal already (a restart after a stop) does not run that slot again. Cycles further
apart than 5 minutes (a daily backtest) leave slots between them: at those an engine with orders
resting follows them (``Engine``'s ``follow``), as its cycles would in live trading, and a run
restarted between two cycles does so from the next such slot. Started after
the last cycle on a day the journal holds no roll-up of, it trades nothing and does that roll-up
(at 16:01, or at once until the off-hours jobs begin).

Isolation: an exception in one engine's cycle is logged, journaled and notified, and that engine
and the others carry on. A cycle that overruns its slot is logged and the slots it ran into are
skipped, never stacked. With a keyed venue a cycle, or a follow between cycles, still running
at ``[runner] cycle_limit_seconds`` (a call that hangs) is cancelled, and logged, notified and
journaled as that slot's error; the engine goes on at its next slot. The end of day's looks at
a keyed venue (orders, account, positions) have the same limit, as has each look at the venue
or the feed in the pre-market job: a cut there fails the job (no trading, journaled), which is
tried again as after a venue that did not answer; in an engine's own pre-market job a cut
read fails that job as the venue's error would. So has each step of the per-slot account
watch, which every engine's cycle waits on: a cut there is journaled as the slot's watch error
and the cycles go on, as after a watch that failed. SIGTERM or SIGINT lets the cycles in flight
finish, waits (bounded) for an engine's background work to journal its outcome (a drift check's
retrain), then persists, closes the sessions and exits 0; a second signal exits at once (the
journal commits each row on its own, so nothing half-written survives).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from v28quant.broker.base import Position
from v28quant.broker.errors import AuthenticationError, BrokerError
from v28quant.calendar import ET, ExchangeCalendar
from v28quant.clock import Clock, SimClock
from v28quant.engines import Engine, EngineContext
from v28quant.memory import release_memory
from v28quant.offhours import OffHoursJobs, off_hours_window, plan_for
from v28quant.premarket import ENGINE_READ_LIMIT_S, PremarketReadTimeout, in_limit
from v28quant.venue import Venue
from v28quant.venue_calendar import follow_venue_calendar
from v28quant.venue_clock import FirstReadsDisagree, LockstepClock, VenueClock

log = logging.getLogger("v28quant.runner")

T = TypeVar("T")

#: A cycle may start this late after its slot; later than that the slot counts as missed.
SLOT_GRACE = timedelta(seconds=60)
#: First and longest pause between reads of a venue that does not answer, seconds.
VENUE_RETRY_S = (5.0, 300.0)


class _VenueWait(NamedTuple):
    """How the runner words a wait for the venue's time: its start, what ends it, its end."""

    start: str  # formatted with the error (``exc``) and its class name (``kind``)
    until: str
    end: str


#: The venue does not answer (5xx, timeouts, a refusal).
_VENUE_DOWN = _VenueWait(
    "venue unavailable ({kind}: {exc})", "until it answers", "venue answers again"
)
#: The venue answers, but its clock's first reads disagree: no time of its is adopted yet.
_CLOCK_UNSURE = _VenueWait(
    "venue time not adopted yet: {exc}", "until its clock's reads agree", "venue time adopted"
)


@dataclass
class RunState:
    """What a run accumulates for its report: the equity at each session's close."""

    equity: list[tuple[date, Decimal, Decimal]] = field(default_factory=list)
    cycles: int = 0
    errors: int = 0
    skipped: int = 0


class Runner:
    """Drives ``engines`` on ``venue`` (see the module docstring).

    Parameters
    ----------
    ctx : EngineContext
        The shared services every engine receives.
    venue : Venue
        Broker, feed, clock and the simulated sessions when keyless.
    engines : sequence of Engine
        Engines run side by side (equity, options, ...).
    cycle_minutes : int
        Spacing of cycles (a multiple of 5).
    once : bool
        Pre-market job and one cycle of each engine at the venue's current time, then stop.
    offhours : OffHoursJobs, optional
        The nightly jobs; default: those ``[offhours]`` plans for the mode (tuning never keyless).
    parameters : mapping, optional
        Where the strategy parameters come from (journaled with the start).
    """

    def __init__(
        self,
        ctx: EngineContext,
        venue: Venue,
        engines: Sequence[Engine],
        *,
        cycle_minutes: int = 5,
        once: bool = False,
        offhours: OffHoursJobs | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        if not engines:
            raise ValueError("Runner needs at least one engine")
        self.ctx = ctx
        self.venue = venue
        self.engines = list(engines)
        self.stride = max(1, cycle_minutes // 5)
        self.once = once
        cfg = ctx.config.offhours
        self.offhours = offhours or OffHoursJobs(
            cfg, plan_for(cfg, ctx.mode, venue.keyless, False), venue.sim_clock is not None
        )
        self.parameters = dict(parameters or {"source": "configured"})
        self.stop = asyncio.Event()
        self.state = RunState()
        self._signals = 0
        self._watch_lock = asyncio.Lock()
        self._watched: datetime | None = None
        self._trading_ok = True
        self._ended: set[date] = set()  # sessions whose end of day this run has run
        self._calendar_read: date | None = None  # the day the venue's calendar was last read

    @property
    def calendar(self) -> ExchangeCalendar:
        """Return the exchange calendar in use."""
        return self.ctx.calendar

    # -- signals ----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: the first stops after the cycles in flight, a second exits now."""
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread (a worker's run has none)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.on_signal, sig)

    def on_signal(self, sig: int) -> None:
        """Handle one stop signal (see ``install_signal_handlers``)."""
        self._signals += 1
        name = signal.Signals(sig).name
        if self._signals == 1:
            log.warning("%s: finishing the cycle in flight, then stopping", name)
            self.stop.set()
            return
        log.error("second %s: exiting now; the journal keeps every committed row", name)
        self.offhours.kill_child()
        logging.shutdown()
        os._exit(128 + int(sig))

    # -- waiting ----------------------------------------------------------------------------

    async def _sleep(self, clock: Clock | LockstepClock, when: datetime) -> bool:
        """Sleep until ``when``; False when a stop was requested first."""
        if self.stop.is_set():
            return False
        sleeper = asyncio.ensure_future(clock.sleep_until(when))
        stopper = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        return not self.stop.is_set()

    async def _venue_up(self) -> bool:
        """Re-read the venue's clock, waiting out an outage; False when stopped (or ``--once``).

        The outage is logged and notified once when it starts and once when it ends; first
        clock reads that disagree (``FirstReadsDisagree``: the venue answers, its time is
        unsure) are waited out the same way, and said to be that. The reads back off from
        ``VENUE_RETRY_S[0]`` to ``VENUE_RETRY_S[1]`` seconds. A ``--once`` run does not wait: it
        says so and stops. Keys the venue refuses (401) are notified and
        raised: ``AuthenticationError`` ends the run. A read that hangs is cut at ``[runner]
        cycle_limit_seconds`` and counts as the venue not answering.
        """
        vc = self.venue.venue_clock
        if vc is None:
            return True
        delay, since, trouble = VENUE_RETRY_S[0], None, _VENUE_DOWN
        while True:
            try:
                await in_limit("venue clock", vc.refresh(), self._read_limit_s())
            except AuthenticationError as exc:  # keys never mend: no outage to wait out
                self.ctx.notifier.error("runner", f"stopping: {exc}")
                raise
            except BrokerError as exc:
                if since is None:
                    since = datetime.now(UTC)
                    trouble = _CLOCK_UNSURE if isinstance(exc, FirstReadsDisagree) else _VENUE_DOWN
                    what = (
                        f"{trouble.start.format(exc=exc, kind=type(exc).__name__)}; no new orders"
                    )
                    log.error("%s%s", what, "" if self.once else f", retrying {trouble.until}")
                    self.ctx.notifier.error("runner", what)
                if self.once or not await self._pause(delay):
                    return False
                delay = min(2 * delay, VENUE_RETRY_S[1])
                continue
            if since is not None:
                what = f"{trouble.end} after {datetime.now(UTC) - since}; trading resumes"
                log.warning(what)
                self.ctx.notifier.notify(what)
            return True

    async def _premarket(self, until: datetime | None = None) -> bool:
        """Run the shared pre-market job; False (no trading this session) when it fails.

        A keyed venue that does not answer is waited out (``_venue_up``) and the job run again
        while ``now`` is before ``until`` (the session's last cycle): a short outage at 09:00
        must not cost the day. Trading waits for the job in the meantime (fail closed). A venue
        or feed read that hangs is cut at ``[runner] cycle_limit_seconds``
        (``PremarketReadTimeout``), journaled, and handled as a venue that did not answer.
        """
        from v28quant.premarket import shared_premarket

        retry = until is not None and self.venue.venue_clock is not None and not self.once
        told = False
        while True:
            try:
                return await shared_premarket(self.ctx, self.venue)
            except BrokerError as exc:  # fail closed, and say so, rather than end the run
                log.error("pre-market job failed, the venue did not answer: %s", exc)
                if isinstance(exc, PremarketReadTimeout):
                    self._record_premarket_cut(exc)
                last = until is None or self.ctx.now >= until
                if not retry or last or isinstance(exc, AuthenticationError):
                    self.ctx.notifier.error("runner", f"pre-market job failed: {exc}; no trading")
                    return False
                if not told:
                    self.ctx.notifier.error(
                        "runner", f"pre-market job failed: {exc}; no trading until it runs again"
                    )
                    told = True
                if not await self._pause(VENUE_RETRY_S[0]) or not await self._venue_up():
                    return False
            except Exception as exc:  # a bug or bad data: this session is lost, the service not
                log.exception("pre-market job failed: no trading this session")
                self.ctx.notifier.error("runner", f"pre-market job failed: {exc!r}; no trading")
                return False

    def _record_premarket_cut(self, cut: PremarketReadTimeout) -> None:
        """Journal a pre-market job cut at a read that hung (no trading until it runs)."""
        now = self.ctx.now
        self.ctx.journal.record_decision(
            f"runner-premarket-error-{now.isoformat()}",
            "runner",
            "runner",
            "*",
            "error",
            {"step": "premarket", "error": f"cut at its time limit: {cut}"},
            now,
        )

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` of wall time; False when a stop was requested first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return not self.stop.is_set()

    # -- the day ----------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until the sessions are done (simulated), a stop signal, or ``--once``.

        Then each engine's background work (``aclose``: a drift check still retraining) gets
        its bounded wait, so its outcome is journaled before the journal closes.
        """
        try:
            return await self._run()
        finally:
            await self._close_engines()

    async def _close_engines(self) -> None:
        for engine in self.engines:
            close = getattr(engine, "aclose", None)
            if close is None:
                continue
            try:
                await close()
            except Exception as exc:  # the other engines and the journal still close
                log.exception("%s: closing failed: %s", engine.name, exc)

    async def _run(self) -> int:
        if not await self._venue_up():
            return 1 if self.once else 0  # --once could not trade; a stop in an outage is clean
        now = self.ctx.now
        self.ctx.journal.record_decision(
            f"runner-start-{now.isoformat()}-{os.getpid()}",
            "runner",
            "runner",
            "*",
            "start",
            {
                "mode": self.ctx.mode,
                "pid": os.getpid(),
                "broker": self.venue.broker_desc,
                "data": self.venue.data_desc,
                "engines": [e.name for e in self.engines],
                "parameters": self.parameters,
                "offhours": {
                    "drift_checks": self.offhours.plan.drift,
                    "tuning": self.offhours.plan.tune or self.offhours.plan.why_no_tune,
                },
            },
            now,
        )
        if self.once:
            await self.run_once()
        elif self.venue.keyless:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            # disable=None: drawn on a terminal only; on a file or pipe (the systemd journal)
            # every log line's redraw would be one more copy of the bar
            bar = tqdm(
                self.venue.sessions,
                desc=self.ctx.mode,
                unit="session",
                file=sys.stderr,
                disable=None,
            )
            # log lines print above the bar, not glued to its end on a shared terminal
            with logging_redirect_tqdm():
                for day in bar:
                    await self.run_session(day)
                    if self.stop.is_set():
                        break
                    await self.off_hours(self.ctx.now)
        else:
            await self.run_forever()
        log.info(
            "runner stopped: %d cycle(s), %d engine error(s), %d slot(s) skipped",
            self.state.cycles,
            self.state.errors,
            self.state.skipped,
        )
        return 0

    async def run_once(self) -> None:
        """Pre-market job and one cycle of each engine at the venue's time."""
        now = self.ctx.now
        self._trading_ok = await self._premarket()
        await self._engines_premarket(now)
        if not self._trading_ok:
            log.error("--once: the pre-market checks failed; no cycle run")
            return
        await self._watch(now)
        async with asyncio.TaskGroup() as tg:
            for engine in self.engines:
                tg.create_task(self._cycle(engine, now))

    async def run_forever(self) -> None:
        """Trade session after session on the venue's clock until stopped."""
        while not self.stop.is_set():
            if not await self._venue_up():
                return
            now = self.ctx.now
            today = now.astimezone(ET).date()
            if self._calendar_read != today and await follow_venue_calendar(
                self.ctx, today, limit_s=self._read_limit_s()
            ):
                self._calendar_read = today
            if self._session_due(today, now):
                await self.run_session(today)
                continue
            await self.off_hours(now)
            nxt = self.calendar.next_session(today)
            log.info("next session %s; waiting for its pre-market job", nxt)
            await self._sleep(self.ctx.clock, self.calendar.windows(nxt).premarket)

    def _session_due(self, day: date, now: datetime) -> bool:
        """Whether session ``day`` still has cycles, or its missing roll-up, ahead at ``now``.

        A run started after the last cycle (a restart after a crash at 15:50, or at 16:10) owes
        the day its end-of-day roll-up until the off-hours jobs begin: the roll-up reads only
        the account and the journal, and without it the equity curve has a hole. Each run ends
        a day at most once, so an account that does not answer is not asked again in a loop.
        """
        if not self.calendar.is_session(day):
            return False
        w = self.calendar.windows(day)
        if now < w.trading_end:
            return True
        return now < w.after_close and day not in self._ended and not self._rolled_up(day)

    def _rolled_up(self, day: date) -> bool:
        """Return whether the journal holds the runner's end-of-day roll-up of ``day``."""
        rows = self.ctx.journal.decisions(
            engine="runner", action="end_of_day", since=self.calendar.windows(day).session.close
        )
        return any(r["decision_id"] == _end_of_day_id(day) for r in rows)

    async def run_session(self, day: date) -> None:
        """One session: pre-market job, the engines' cycles, end of day.

        A restart after the session's last cycle goes straight to its end of day.
        """
        w = self.calendar.windows(day)
        if not await self._sleep(self.ctx.clock, w.premarket):
            return
        slots = list(w.cycles[:: self.stride])
        todo = {engine.name: self._slots_to_run(engine, slots) for engine in self.engines}
        ahead = [s for left in todo.values() for s in left]
        if any(getattr(engine, "follow", None) is not None for engine in self.engines):
            ahead += self._off_cycle(w.cycles)  # a restart's resting orders to follow
        if any(s + SLOT_GRACE >= self.ctx.now for s in ahead):
            await self._trade(day, todo)
            if self.stop.is_set():
                return
        else:
            log.info("session %s: no cycle slot left; its end of day follows", day)
        if not await self._sleep(self.ctx.clock, w.session.close + timedelta(minutes=1)):
            return
        await self.end_of_day(day)

    async def _trade(self, day: date, todo: Mapping[str, list[datetime]]) -> None:
        """Run the pre-market job, then each engine's cycles at its slots in ``todo``."""
        premarket = self.calendar.windows(day).premarket
        log.info("session %s: pre-market job at %s", day, self.ctx.now.astimezone(ET))
        self._trading_ok = await self._premarket(until=self.calendar.windows(day).trading_end)
        await self._engines_premarket(premarket)
        if self.stop.is_set():
            return
        if not self._trading_ok:
            log.error("session %s: pre-market checks failed; no trading today", day)
            return
        grid = list(self.calendar.windows(day).cycles)
        slots = {
            engine.name: self._with_wanted(engine, todo[engine.name], grid)
            for engine in self.engines
        }
        lock = self._lockstep()
        async with asyncio.TaskGroup() as tg:
            for engine in self.engines:
                tg.create_task(self._engine_loop(engine, slots[engine.name], lock, grid))

    async def _engines_premarket(self, at: datetime) -> None:
        """Run each engine's pre-market job in turn; none starts once a stop was requested.

        The jobs refit models and read the venue for minutes: a service being stopped must
        not wait for them (systemd kills it after ``TimeoutStopSec``). Their refits are not
        cut, but each of their venue or feed reads is, at ``[runner] cycle_limit_seconds``
        (``ENGINE_READ_LIMIT_S``): one that hangs would hold the day's cycles.
        """
        self.ctx.shared[ENGINE_READ_LIMIT_S] = self._read_limit_s()
        for engine in self.engines:
            if self.stop.is_set():
                return
            await self._guarded(engine, "premarket", at)

    def _with_wanted(
        self, engine: Engine, slots: list[datetime], grid: Sequence[datetime]
    ) -> list[datetime]:
        """Return ``slots`` and the slots of ``grid`` the engine wants a cycle at (not yet run).

        With cycles further apart than 5 minutes, an engine may ask for cycles between them
        (``Engine``'s ``extra_cycle_slots``: the options engine's expiry-day close); with
        5-minute cycles every slot has its cycle already.
        """
        wanted = getattr(engine, "extra_cycle_slots", None)
        if self.stride == 1 or wanted is None:
            return slots
        try:
            extra = [t for t in wanted(self.ctx, grid) if t in grid and t not in slots]
        except Exception as exc:  # its regular cycles still run
            log.exception("%s: its extra cycle slots could not be read: %s", engine.name, exc)
            return slots
        return sorted(slots + (self._slots_to_run(engine, extra) if extra else []))

    def _slots_to_run(self, engine: Engine, slots: list[datetime]) -> list[datetime]:
        """Return ``slots`` less those whose cycle ``engine`` has journaled (a restart's).

        A cycle's record is written when it ends, stamped with its slot, so a run stopped
        after a cycle goes on at the next slot instead of trading that one again.
        """
        rows = self.ctx.journal.decisions(
            engine=engine.name, action=("cycle", "error"), since=slots[0]
        )
        done = {r["decision_id"] for r in rows}
        return [s for s in slots if not done & set(_cycle_ids(engine, s))]

    def _lockstep(self) -> LockstepClock | None:
        """Return the engines' shared clock where the run moves time itself, else None.

        A simulated clock, or a venue whose time is driven (a test's fake exchange): time then
        moves only when every engine waits. A real venue's time passes on its own.
        """
        vc = self.venue.venue_clock
        shared: SimClock | VenueClock | None = self.venue.sim_clock
        if shared is None and vc is not None and vc.driven:
            shared = vc
        return LockstepClock(shared, len(self.engines)) if shared is not None else None

    async def _engine_loop(
        self,
        engine: Engine,
        slots: list[datetime],
        lock: LockstepClock | None,
        grid: Sequence[datetime],
    ) -> None:
        """Run ``engine``'s cycles at ``slots``, following its resting orders on ``grid`` between.

        ``grid`` is the session's 5-minute cycle grid, of which ``slots`` take every stride-th.
        """
        clock: Clock | LockstepClock = lock or self.ctx.clock
        try:
            await self._follow(engine, clock, self._until_next_cycle(grid, slots, clock.now()))
            i = 0
            while i < len(slots) and not self.stop.is_set():
                now = clock.now()
                if now > slots[i] + SLOT_GRACE:
                    j = next(
                        (k for k in range(i, len(slots)) if slots[k] + SLOT_GRACE >= now), None
                    )
                    missed = (j if j is not None else len(slots)) - i
                    self.state.skipped += missed
                    log.warning(
                        "%s: %d cycle slot(s) from %s skipped (now %s)",
                        engine.name,
                        missed,
                        slots[i].astimezone(ET).strftime("%H:%M"),
                        now.astimezone(ET).strftime("%H:%M:%S"),
                    )
                    if j is None:
                        break
                    i = j
                    continue
                if not await self._sleep(clock, slots[i]):
                    break
                await self._watch(slots[i])
                await self._cycle(engine, slots[i])
                await self._follow(engine, clock, _between(grid, slots, i))
                i += 1
        finally:
            if lock is not None:
                lock.leave()

    def _off_cycle(self, grid: Sequence[datetime]) -> list[datetime]:
        """Return the slots of ``grid`` that hold no cycle at this run's stride."""
        cycles = set(grid[:: self.stride])
        return [t for t in grid if t not in cycles]

    def _until_next_cycle(
        self, grid: Sequence[datetime], slots: Sequence[datetime], now: datetime
    ) -> list[datetime]:
        """Return the slots of ``grid`` between ``now`` and the first of ``slots`` still due.

        A run (re)started inside a session follows the orders its last cycle left resting
        from the next 5-minute slot on, as the unbroken run would have, not only after its
        next cycle (in a daily backtest: never again that session). A fresh start's first
        cycle slot comes first in the grid, so it leaves nothing here.
        """
        due = next((s for s in slots if s + SLOT_GRACE >= now), None)
        return [t for t in self._off_cycle(grid) if due is None or t < due]

    async def _follow(
        self, engine: Engine, clock: Clock | LockstepClock, ticks: Sequence[datetime]
    ) -> None:
        """Let ``engine`` follow its resting orders at ``ticks`` until nothing of it rests.

        No analysis runs and no cycle is journaled, so a restart still runs the next cycle
        slot. A tick the cycle ran into is let go; a failed follow is isolated like a failed
        cycle, and the next tick tries again.
        """
        if getattr(engine, "follow", None) is None:
            return
        for tick in ticks:
            if clock.now() > tick + SLOT_GRACE:
                continue
            if not await self._sleep(clock, tick):
                return
            if await self._in_time(engine, "follow", tick) is False:
                return

    async def _watch(self, slot: datetime) -> None:
        """Once per slot: re-read the venue clock, mark the account, run a pending flatten.

        With a keyed venue each step is cut at ``[runner] cycle_limit_seconds``
        (``watch_account``): every engine's cycle waits on this lock. A failed watch is logged
        and notified, a cut one also journaled as the slot's watch error; the cycles go on,
        the risk gate holding the last mark and halt.
        """
        async with self._watch_lock:
            if self._watched == slot:
                return
            self._watched = slot
            from v28quant.premarket import watch_account

            try:
                await watch_account(self.ctx, self.venue, limit_s=self._read_limit_s())
            except Exception as exc:  # the watch failing must not stop trading checks
                log.exception("account watch failed: %s", exc)
                self.ctx.notifier.error("runner", f"account watch failed: {exc}")
                if isinstance(exc, PremarketReadTimeout):
                    self._record_watch_cut(slot, exc)

    def _read_limit_s(self) -> float | None:
        """Return the seconds a look at a keyed venue may take; None on a simulated one.

        A simulated venue's reads are the machine's speed, not a hang.
        """
        if self.venue.sim_clock is not None:
            return None
        return self.ctx.config.runner.cycle_limit_seconds

    def _record_watch_cut(self, slot: datetime, cut: PremarketReadTimeout) -> None:
        """Journal the account watch of ``slot`` as cut at a step that hung."""
        self.ctx.journal.record_decision(
            f"runner-watch-error-{slot.isoformat()}",
            "runner",
            "runner",
            "*",
            "error",
            {"step": "watch", "error": f"cut at its time limit: {cut}"},
            self.ctx.now,
        )

    async def _cycle(self, engine: Engine, slot: datetime) -> Any:
        started = self.ctx.now
        report = await self._in_time(engine, "cycle", slot)
        self._announce_denials(engine, started)
        self.state.cycles += 1
        if report is not None and hasattr(report, "signals"):
            log.info(
                "%s cycle %s: %d new signal(s), %d order(s), %d denied%s",
                engine.name,
                slot.astimezone(ET).strftime("%Y-%m-%d %H:%M"),
                report.signals,
                report.orders,
                report.denied,
                f"; {report.note}" if report.note else "",
                extra={"engine": engine.name, "details": dict(report.details)},
            )
            self.ctx.journal.record_decision(
                _cycle_ids(engine, slot)[0],
                engine.name,
                "runner",
                "*",
                "cycle",
                {
                    "slot": slot.isoformat(),
                    "signals": report.signals,
                    "orders": report.orders,
                    "denied": report.denied,
                    "note": report.note,
                    # the engine's word on each symbol (why nothing was ordered), for ``why``
                    "details": dict(report.details),
                },
                self.ctx.now,
            )
            return report
        return None

    async def _in_time(self, engine: Engine, step: str, slot: datetime) -> Any:
        """Run ``engine``'s cycle or follow, cancelled at ``[runner] cycle_limit_seconds``.

        A keyed venue's call that hangs would otherwise hold the engine for the day, in a
        cycle or in a follow between two. A send the executor has begun goes on and journals
        the venue's answer (``Executor.place``). On a simulated clock a step's length is the
        machine's speed, not a hang: cutting it would make a backtest's trades depend on the
        machine, so there is no limit there.
        """
        if self.venue.sim_clock is not None:
            return await self._guarded(engine, step, slot)
        limit = self.ctx.config.runner.cycle_limit_seconds
        try:
            async with asyncio.timeout(limit):
                return await self._guarded(engine, step, slot)
        except TimeoutError:
            error = (
                f"{step} cancelled at its time limit of {limit:g} s; the next slot runs as usual"
            )
            log.error("%s %s at %s: %s", engine.name, step, slot, error)
            self._record_failure(engine, step, slot, error)
            return None

    def _announce_denials(self, engine: Engine, since: datetime) -> None:
        """Notify the risk gate's denials of ``engine``'s cycle in one line.

        The same line cycle after cycle (a limit that keeps denying) is held back by the
        notifier, as a repeated error is.
        """
        try:
            summary = self.ctx.risk.denial_summary(engine.name, since)
        except Exception:  # the denials are journaled; a failed read must not stop the engine
            log.exception("%s: reading the cycle's risk denials failed", engine.name)
            return
        if summary is not None:
            self.ctx.notifier.notify_quietly(summary)

    async def _guarded(self, engine: Engine, step: str, at: datetime) -> Any:
        """Run ``engine.<step>(ctx)``; an exception is logged, journaled and notified."""
        try:
            return await getattr(engine, step)(self.ctx)
        except Exception as exc:
            log.exception("%s %s failed at %s: %s", engine.name, step, at, exc)
            self._record_failure(engine, step, at, f"{type(exc).__name__}: {exc}")
            return None

    def _record_failure(self, engine: Engine, step: str, at: datetime, error: str) -> None:
        """Count, notify and journal ``engine``'s failed ``step`` at ``at`` (logged already)."""
        self.state.errors += 1
        self.ctx.notifier.error(f"{engine.name} {step}", error)
        self.ctx.journal.record_decision(
            _error_id(engine, step, at),
            engine.name,
            "runner",
            "*",
            "error",
            {"step": step, "error": error},
            self.ctx.now,
        )

    async def end_of_day(self, day: date) -> None:
        """Run the engines' end-of-day jobs, the roll-up and the session's closing equity and marks.

        Then the session's freed memory goes back to the system (``v28quant.memory``).
        """
        self._ended.add(day)
        try:
            await self._roll_up(day)
        finally:
            release_memory()

    async def _roll_up(self, day: date) -> None:
        for engine in self.engines:
            await self._guarded(engine, "end_of_day", self.ctx.now)
        process = getattr(self.ctx.broker, "process", None)
        if process is not None:
            await process()
        if self.ctx.executor is not None:
            # the day's last look at the venue: expiries settled at the close are journaled
            # now, not at the next pre-market (which a backtest's last session never reaches)
            try:
                await self._venue_read(self.ctx.executor.sync())
            except Exception as exc:  # the day's equity is still rolled up
                log.exception("end of day %s: orders and activities not looked up: %s", day, exc)
                self.ctx.notifier.error("runner", f"end of day {day}: venue not looked up: {exc}")
        try:
            account = await self._venue_read(self.ctx.broker.account())
        except (BrokerError, TimeoutError) as exc:  # an outage at the close must not end the run
            log.error("end of day %s: account unavailable, not marked: %s", day, exc)
            return
        marks: dict[str, str] | None = None
        try:
            marks = _marks(await self._venue_read(self.ctx.broker.positions()))
        except (BrokerError, TimeoutError) as exc:  # the marks value the open lots; equity stands
            log.error("end of day %s: positions unavailable, no marks: %s", day, exc)
        exposure = Decimal(account.long_market_value) + abs(Decimal(account.short_market_value))
        self.state.equity.append((day, Decimal(account.equity), exposure))
        summary = self.ctx.journal.daily_summary(day)
        equity = Decimal(account.equity)
        previous = self._previous_close(day)
        change = ""
        if previous is not None and previous[1] > 0:
            diff = equity - previous[1]
            change = f" ({diff:+,.2f}, {diff / previous[1]:+.2%} on the close of {previous[0]})"
        log.info(
            "end of day %s: equity %s%s, %d signal(s), %d fill(s)",
            day,
            f"{equity:,.2f}",
            change,
            summary["signals"],
            summary["fills"],
            extra={"orders": summary["orders"], "decisions": summary["decisions"]},
        )
        orders = sum(n for by_status in summary["orders"].values() for n in by_status.values())
        self.ctx.notifier.notify(
            f"END OF DAY {day}: equity {equity:,.2f}{change}, {summary['fills']} fill(s), "
            f"{orders} order(s)"
        )
        self.ctx.journal.record_decision(
            _end_of_day_id(day),
            "runner",
            "runner",
            "*",
            "end_of_day",
            {
                "day": day.isoformat(),
                "equity": str(account.equity),
                "exposure": str(exposure),
                "signals": summary["signals"],
                "fills": summary["fills"],
                "orders": summary["orders"],
                "notional": {side: str(v) for side, v in summary["notional"].items()},
                **({"marks": marks} if marks is not None else {}),
            },
            self.ctx.now,
        )

    async def _venue_read(self, read: Awaitable[T]) -> T:
        """Await an end-of-day look at a keyed venue, cut at ``[runner] cycle_limit_seconds``.

        A call that hangs would otherwise hold the runner past its night and next session;
        ``TimeoutError`` then. A simulated venue's reads are the machine's speed: no limit.
        """
        if self.venue.sim_clock is not None:
            return await read
        limit = self.ctx.config.runner.cycle_limit_seconds
        try:
            async with asyncio.timeout(limit):
                return await read
        except TimeoutError as exc:
            raise TimeoutError(f"the venue did not answer within {limit:g} s") from exc

    def _previous_close(self, day: date) -> tuple[date, Decimal] | None:
        """Return the latest session before ``day`` rolled up in the journal, and its equity.

        The day's change against it includes any deposit or withdrawal in between.
        """
        rows = self.ctx.journal.decisions(engine="runner", action="end_of_day")
        before = [r["reasoning"] for r in rows if r["reasoning"]["day"] < day.isoformat()]
        if not before:
            return None
        last = max(before, key=lambda r: str(r["day"]))
        return date.fromisoformat(last["day"]), Decimal(last["equity"])

    async def off_hours(self, now: datetime) -> None:
        """Wait for the close's after time, then run the night's jobs (``v28quant.offhours``)."""
        span = off_hours_window(self.calendar, now, self.offhours.margin)
        if span is None or self.stop.is_set():
            return
        start, until = span
        if not await self._sleep(self.ctx.clock, start):
            return
        try:
            await self.offhours.run(self.ctx, self.engines, until, self.stop)
        except Exception as exc:  # a failed night must not stop the next trading day
            log.exception("off-hours jobs failed: %s", exc)
            self.ctx.notifier.error("off-hours jobs", f"{type(exc).__name__}: {exc}")


def _between(grid: Sequence[datetime], slots: Sequence[datetime], i: int) -> list[datetime]:
    """Return the slots of ``grid`` after the cycle at ``slots[i]`` and before the next one."""
    nxt = slots[i + 1] if i + 1 < len(slots) else None
    return [t for t in grid if t > slots[i] and (nxt is None or t < nxt)]


def _marks(positions: Sequence[Position]) -> dict[str, str]:
    """Return the price (per share) the venue marks each position at, as its equity does.

    The backtest report values the lots each engine still holds at these prices.
    """
    return {p.symbol: str(p.current_price) for p in positions if p.current_price is not None}


def _end_of_day_id(day: date) -> str:
    return f"runner-end-of-day-{day.isoformat()}"


def _error_id(engine: Engine, step: str, at: datetime) -> str:
    return f"{engine.name}-{step}-error-{at.isoformat()}"


def _cycle_ids(engine: Engine, slot: datetime) -> tuple[str, str]:
    """Return the ids of the records that end ``engine``'s cycle at ``slot``: done, failed."""
    return f"{engine.name}-cycle-{slot.isoformat()}", _error_id(engine, "cycle", slot)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the venue and the engines, run, and return the exit status."""
    from v28quant.runner_setup import build_and_run

    try:
        return build_and_run(argv)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
