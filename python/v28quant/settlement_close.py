"""The underlying's close an option settlement was decided on, for activities that lack it.

Alpaca's expiry, assignment and exercise activities (OPEXP, OPASN, OPEXC) name the contract,
not the underlying's price; the simulated exchange journals it in ``raw["underlying_close"]``.
The round trips (:func:`v28quant.round_trips.settlement_trades`) close an assigned or exercised
option at its intrinsic value on that close and book the shares at it, so an assigned put's
loss past the strike counts on its settlement's session, not when the shares are sold. Before
activities are journaled, :class:`SettlementCloses` adds the close from the data feed to each
settlement without one.

Which session's close: an expiry (OPEXP, or an assignment or exercise dated on or after the
contract's expiration date, which Alpaca may date the next day) was decided on the last session
at or before the expiration date; an early assignment or exercise on the close of the session
before the activity's date. Alpaca dates an early assignment after the session it was decided
on (its documented example is dated a Saturday), so one decided on the session before expiry is
dated the expiration date, as the expiry's own may be: seen before the expiry session closed,
it cannot be the expiry's, and is taken as early. Where the feed has no close (down, no bar),
the activity is journaled as it came, with one warning naming the underlying: its settlement
then books the shares at the strike, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from v28quant.broker.base import Activity
from v28quant.calendar import ET, ExchangeCalendar
from v28quant.occ import is_occ, parse_occ
from v28quant.quotes import QuoteSource

log = logging.getLogger(__name__)

#: Activities whose contract settled on the underlying's close.
SETTLED_ON_CLOSE = frozenset({"OPASN", "OPEXC", "OPEXP"})


def settlement_session(activity: Activity, calendar: ExchangeCalendar, seen: datetime) -> date:
    """Return the session on whose close the contract of ``activity`` settled.

    ``seen``: when the activity was first read from the venue (see the module docstring).
    """
    expiry = parse_occ(activity.symbol).expiry
    dated = activity.ts.astimezone(ET).date()
    last = calendar.expiry_session(expiry)
    if activity.type == "OPEXP" or (dated >= expiry and seen >= calendar.session(last).close):
        return last
    return calendar.previous_session(dated)


def needs_close(activity: Activity) -> bool:
    """Whether ``activity`` is an option settlement journaled without the underlying's close."""
    return (
        activity.type in SETTLED_ON_CLOSE
        and is_occ(activity.symbol)
        and "underlying_close" not in activity.raw
    )


class SettlementCloses:
    """Adds the underlying's close to option settlements, read from ``quotes`` (the data feed)."""

    def __init__(self, quotes: QuoteSource, calendar: ExchangeCalendar) -> None:
        self._quotes = quotes
        self._calendar = calendar

    async def annotate(self, activities: Sequence[Activity], *, seen: datetime) -> list[Activity]:
        """Return ``activities`` with ``raw["underlying_close"]`` set on each settlement lacking it.

        ``seen``: when they were read from the venue. One look-up per underlying and session;
        any other activity is returned as it came.
        """
        closes: dict[tuple[str, date], Decimal | None] = {}
        out = []
        for a in activities:
            if needs_close(a):
                key = (parse_occ(a.symbol).underlying, settlement_session(a, self._calendar, seen))
                if key not in closes:
                    closes[key] = await self._close(*key)
                close = closes[key]
                if close is not None:
                    a = replace(a, raw={**a.raw, "underlying_close": str(close)})
            out.append(a)
        return out

    async def _close(self, underlying: str, session: date) -> Decimal | None:
        try:
            when = self._calendar.session(session).close
            return await self._quotes.closing_price(underlying, when)
        except (KeyError, ValueError, RuntimeError, OSError) as exc:  # no bar, feed down
            log.warning(
                "no close of %s on %s for its option settlements (%s): the shares they move "
                "are booked at the strike",
                underlying,
                session,
                exc,
            )
            return None


__all__ = ["SETTLED_ON_CLOSE", "SettlementCloses", "needs_close", "settlement_session"]
