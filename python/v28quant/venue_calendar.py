"""The venue's calendar over the installed one: closures announced after its release.

exchange_calendars ships the NYSE's published holidays and early closes; an unscheduled closure
(a national day of mourning, announced days ahead) or early close reaches it only in a later
release. A keyed runner therefore reads the venue's calendar (Alpaca's ``/v2/calendar``) once a
day for the weeks ahead and follows it where the two differ: that day's pre-market job and
cycles move with it, and every engine sees the same sessions (they share the calendar). A
difference is logged, notified and journaled (a ``runner``/``calendar`` decision listing the
changed days). A venue that does not answer (or holds the read past the runner's limit) leaves
the installed calendar in force, with a warning, and is asked again at the runner's next
wake-up.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from v28quant.broker.errors import BrokerError
from v28quant.engines import EngineContext
from v28quant.premarket import in_limit

log = logging.getLogger(__name__)

#: Days before and after today that the venue's calendar is read for.
BEHIND, AHEAD = timedelta(days=7), timedelta(days=45)


async def follow_venue_calendar(
    ctx: EngineContext, today: date, *, limit_s: float | None = None
) -> bool:
    """Take the venue's sessions around ``today`` into ``ctx.calendar``; False if unread.

    The read is cut at ``limit_s`` seconds (None: no limit): one that hangs would hold the
    day's session.
    """
    lo, hi = today - BEHIND, today + AHEAD
    try:
        days = await in_limit("venue calendar", ctx.broker.calendar(lo, hi), limit_s)
        changes = ctx.calendar.adopt_venue_sessions(
            ((d.date, d.open, d.close) for d in days), lo, hi
        )
    except (BrokerError, ValueError) as exc:
        log.warning("venue calendar unread (%s): the installed exchange calendar is followed", exc)
        return False
    if changes:
        what = "; ".join(changes)
        log.warning("the venue's calendar differs from the installed one, followed: %s", what)
        ctx.notifier.notify(f"venue calendar followed over the installed one: {what}")
        ctx.journal.record_decision(
            f"calendar-{today}-{what}",
            "runner",
            "runner",
            "*",
            "calendar",
            {"changes": changes, "from": lo.isoformat(), "to": hi.isoformat()},
            ctx.now,
        )
    return True
