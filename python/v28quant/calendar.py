"""The exchange calendar and the runner's daily windows, in US/Eastern.

Sessions, holidays and early closes come from ``exchange_calendars`` (XNYS), never from a
hard-coded list; a keyed runner lays the venue's calendar of the coming weeks over them
(``adopt_venue_sessions``, ``v28quant.venue_calendar``). On top of it this module knows the
option cut-offs and the runner's schedule:

* Equity options stop trading at the equity close (16:00 ET, 13:00 on an early-close day).
* Options on a few broad index ETFs (``LATE_CLOSE_ETFS``: SPY, QQQ, IWM, DIA, ...) trade 15
  minutes longer, to 16:15 (13:15 on an early-close day [verify: the half-day late close is not
  confirmed in Alpaca's docs]).
* Expiry day: a series stops trading on its last day at the equity close, even on a late-close
  ETF (Cboe rule: expiring ETF / PM-settled series close at 16:00, the non-expiring ones at 16:15).
* The runner: 09:00 pre-market analysis; trading cycles every 5 minutes from 09:45 to 15 minutes
  before the close (09:45-15:45 on a full day; 09:45-12:45 on a 13:00 early close), both ends
  included; after-close jobs 15 minutes after the last option close (16:30, or 13:30).

Every datetime returned is timezone-aware in ``America/New_York``.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pandas as pd

ET = ZoneInfo("America/New_York")

#: Underlyings whose (non-expiring) options trade until 16:15 ET.
LATE_CLOSE_ETFS = frozenset(
    {
        "SPY",
        "QQQ",
        "IWM",
        "DIA",
        "MDY",
        "EEM",
        "EFA",
        "GLD",
        "SLV",
        "TLT",
        "XLE",
        "XLF",
        "XLK",
        "VXX",
        "USO",
        "FXI",
        "GDX",
    }
)
OPTION_LATE_CLOSE = timedelta(minutes=15)

PREMARKET = time(9, 0)
TRADING_START = time(9, 45)
CYCLE = timedelta(minutes=5)
TRADING_END_BEFORE_CLOSE = timedelta(minutes=15)
AFTER_CLOSE_DELAY = timedelta(minutes=15)
REGULAR_CLOSE = time(16, 0)


def regular_close(day: date) -> datetime:
    """Return 16:00 New York on ``day``: the time a daily bar's data is complete.

    Daily bars carry the session date only; early closes (``Session.close``) are not applied.
    """
    return datetime.combine(day, REGULAR_CLOSE, ET)


def _day(d: date | datetime | str | pd.Timestamp) -> date:
    """Return a session date: datetimes are read in US/Eastern (naive ones taken as Eastern)."""
    if isinstance(d, str):
        d = pd.Timestamp(d)
    if isinstance(d, pd.Timestamp):
        d = d.to_pydatetime()
    if isinstance(d, datetime):
        return (d if d.tzinfo is None else d.astimezone(ET)).date()
    if isinstance(d, date):
        return d
    raise TypeError(f"expected a date or datetime, got {d!r}")


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session: its date, open and close (US/Eastern), whether it closes early."""

    day: date
    open: datetime
    close: datetime
    early_close: bool


@dataclass(frozen=True, slots=True)
class TradingWindows:
    """The runner's schedule for one session (all US/Eastern).

    ``cycles`` are the 5-minute trading cycle times from ``trading_start`` to ``trading_end``
    inclusive; ``trading_end`` is 15 minutes before the equity close (15:45 on a full day,
    12:45 on a 13:00 early close).
    """

    session: Session
    premarket: datetime
    trading_start: datetime
    trading_end: datetime
    cycles: tuple[datetime, ...]
    after_close: datetime


class ExchangeCalendar:
    """NYSE sessions from ``exchange_calendars`` plus option cut-offs and the runner's windows.

    Parameters
    ----------
    start, end : date-like, optional
        Range the calendar covers (default 1990-01-01 to five years from today); asking outside
        it raises ``ValueError``.
    """

    def __init__(self, start: date | str | None = None, end: date | str | None = None) -> None:
        import exchange_calendars as xc

        lo = pd.Timestamp(start or "1990-01-01")
        hi = pd.Timestamp(end or (pd.Timestamp.today().normalize() + pd.DateOffset(years=5)))
        with warnings.catch_warnings():  # exchange_calendars' own pandas deprecations
            warnings.simplefilter("ignore")
            sched = xc.get_calendar("XNYS", start=lo, end=hi).schedule
        self._days: list[date] = [ts.date() for ts in sched.index]
        self._open_list = [t.to_pydatetime() for t in sched["open"].dt.tz_convert(ET)]
        self._close_list: list[datetime] = [
            t.to_pydatetime() for t in sched["close"].dt.tz_convert(ET)
        ]
        self._index = {d: i for i, d in enumerate(self._days)}
        self._first, self._last = self._days[0], self._days[-1]

    def _check(self, d: date) -> None:
        if not self._first <= d <= self._last:
            raise ValueError(
                f"date {d} is outside the calendar's range {self._first}..{self._last}"
            )

    # -- sessions ---------------------------------------------------------------------------

    def is_session(self, d: date | datetime | str) -> bool:
        """Whether d is a trading session; ``ValueError`` outside the calendar's range."""
        day = _day(d)
        self._check(day)
        return day in self._index

    def session(self, d: date | datetime | str) -> Session:
        """Return the session on ``d``; ``ValueError`` if the exchange is closed that day."""
        day = _day(d)
        self._check(day)
        i = self._index.get(day)
        if i is None:
            raise ValueError(f"{day} is not a trading session (weekend or holiday)")
        op, cl = self._open_list[i], self._close_list[i]
        return Session(day, op, cl, early_close=cl.time() < time(16, 0))

    def session_times(self, d: date) -> tuple[datetime, datetime] | None:
        """Return (open, close) of session ``d``, or None if it is no session or out of range.

        The fast path for callers that look up many dates.
        """
        i = self._index.get(d)
        return None if i is None else (self._open_list[i], self._close_list[i])

    def sessions(self, start: date | str, end: date | str) -> list[date]:
        """Session dates from ``start`` to ``end`` inclusive."""
        lo, hi = _day(start), _day(end)
        self._check(lo)
        self._check(hi)
        return [d for d in self._days[self._bisect(lo) :] if d <= hi]

    def _bisect(self, d: date) -> int:
        return bisect.bisect_left(self._days, d)

    def next_session(self, d: date | datetime | str) -> date:
        """Return the first session strictly after ``d``."""
        day = _day(d)
        self._check(day)
        i = self._bisect(day + timedelta(days=1))
        if i >= len(self._days):
            raise ValueError(f"no session after {day} within the calendar's range")
        return self._days[i]

    def previous_session(self, d: date | datetime | str) -> date:
        """Return the last session strictly before ``d``."""
        day = _day(d)
        self._check(day)
        i = self._bisect(day) - 1
        if i < 0:
            raise ValueError(f"no session before {day} within the calendar's range")
        return self._days[i]

    def holidays(self, start: date | str, end: date | str) -> list[date]:
        """Weekdays from ``start`` to ``end`` on which the exchange is closed."""
        lo, hi = _day(start), _day(end)
        self._check(lo)
        self._check(hi)
        out, d = [], lo
        while d <= hi:
            if d.weekday() < 5 and d not in self._index:
                out.append(d)
            d += timedelta(days=1)
        return out

    def early_closes(self, start: date | str, end: date | str) -> list[date]:
        """Return the sessions from ``start`` to ``end`` (inclusive) that close early."""
        return [d for d in self.sessions(start, end) if self.session(d).early_close]

    def is_open(self, when: datetime) -> bool:
        """Whether the equity market is open at ``when`` (timezone-aware)."""
        if when.tzinfo is None:
            raise ValueError("is_open needs a timezone-aware datetime")
        day = _day(when)
        if day not in self._index:
            return False
        s = self.session(day)
        return s.open <= when < s.close

    def next_open(self, when: datetime) -> datetime:
        """Return the first session open strictly after ``when`` (timezone-aware)."""
        return self._after(self._open_list, when, "open")

    def next_close(self, when: datetime) -> datetime:
        """Return the first session close strictly after ``when`` (timezone-aware)."""
        return self._after(self._close_list, when, "close")

    def last_close(self, when: datetime) -> datetime:
        """Return the last session close at or before ``when`` (timezone-aware).

        The end of the daily history a job at ``when`` may use: a session still open has no
        daily bar yet, only a partial one.
        """
        if when.tzinfo is None:
            raise ValueError("last_close needs a timezone-aware datetime")
        i = bisect.bisect_right(self._close_list, when)
        if i == 0:
            raise ValueError(f"no session close before {when} within the calendar's range")
        return self._close_list[i - 1]

    def closes_between(self, after: datetime, upto: datetime) -> list[tuple[date, datetime]]:
        """(session date, close) of every session closing in ``(after, upto]``."""
        lo = bisect.bisect_right(self._close_list, after)
        hi = bisect.bisect_right(self._close_list, upto)
        return [(self._days[i], self._close_list[i]) for i in range(lo, hi)]

    def _after(self, times: list[datetime], when: datetime, what: str) -> datetime:
        if when.tzinfo is None:
            raise ValueError(f"next_{what} needs a timezone-aware datetime")
        i = bisect.bisect_right(times, when)
        if i >= len(times):
            raise ValueError(f"no session {what} after {when} within the calendar's range")
        return times[i]

    # -- options ----------------------------------------------------------------------------

    def option_close(
        self, underlying: str, d: date | datetime | str, expiry: date | None = None
    ) -> datetime:
        """When options on ``underlying`` stop trading on session ``d``.

        ``expiry`` is the series' expiration date: on that day the series closes with the
        equities (16:00, or the early close), even on a late-close ETF.
        """
        s = self.session(d)
        if underlying.upper() in LATE_CLOSE_ETFS and (expiry is None or expiry != s.day):
            return s.close + OPTION_LATE_CLOSE
        return s.close

    def expiry_session(self, d: date | str) -> date:
        """Return the last trading day of a series nominally expiring on ``d``.

        That is ``d`` itself, or the session before it when ``d`` is a holiday (e.g. Good Friday
        moves expiry to Thursday).
        """
        day = _day(d)
        return day if self.is_session(day) else self.previous_session(day)

    def adopt_venue_sessions(
        self, sessions: Iterable[tuple[date, datetime, datetime]], start: date, end: date
    ) -> list[str]:
        """Follow the venue's sessions from ``start`` to ``end`` (inclusive); say what changed.

        The venue's calendar (Alpaca's ``/v2/calendar``) knows closures and early closes
        announced after the installed exchange_calendars release was published (a national
        day of mourning is announced days ahead). ``sessions`` are (day, open, close), the
        times timezone-aware. Returns one line per day that differs, e.g. ``"2025-01-09:
        closed (the installed calendar has a session 09:30-16:00)"``; an empty answer is
        refused (``ValueError``), as no six weeks pass without a session.
        """
        lo, hi = _day(start), _day(end)
        self._check(lo)
        self._check(hi)
        venue = {
            d: (op.astimezone(ET), cl.astimezone(ET)) for d, op, cl in sessions if lo <= d <= hi
        }
        if not venue:
            raise ValueError(f"the venue's calendar has no session from {lo} to {hi}")
        i, j = self._bisect(lo), bisect.bisect_right(self._days, hi)
        mine = {self._days[k]: (self._open_list[k], self._close_list[k]) for k in range(i, j)}
        changes = [
            _calendar_change(d, mine.get(d), venue.get(d))
            for d in sorted(mine.keys() | venue.keys())
            if mine.get(d) != venue.get(d)
        ]
        if changes:
            days = sorted(venue)
            self._days[i:j] = days
            self._open_list[i:j] = [venue[d][0] for d in days]
            self._close_list[i:j] = [venue[d][1] for d in days]
            self._index = {d: k for k, d in enumerate(self._days)}
        return changes

    # -- the runner's day -------------------------------------------------------------------

    def windows(self, d: date | datetime | str) -> TradingWindows:
        """Return the runner's schedule on session ``d`` (see the module docstring)."""
        s = self.session(d)
        start = datetime.combine(s.day, TRADING_START, ET)
        end = s.close - TRADING_END_BEFORE_CLOSE
        cycles = []
        t = start
        while t <= end:
            cycles.append(t)
            t += CYCLE
        last_option_close = max(s.close, s.close + OPTION_LATE_CLOSE)
        return TradingWindows(
            session=s,
            premarket=datetime.combine(s.day, PREMARKET, ET),
            trading_start=start,
            trading_end=end,
            cycles=tuple(cycles),
            after_close=last_option_close + AFTER_CLOSE_DELAY,
        )


def _calendar_change(
    day: date, mine: tuple[datetime, datetime] | None, venue: tuple[datetime, datetime] | None
) -> str:
    """One line saying how the venue's session ``day`` differs from the installed one."""

    def hours(s: tuple[datetime, datetime]) -> str:
        return f"{s[0]:%H:%M}-{s[1]:%H:%M}"

    if venue is None:
        assert mine is not None
        return f"{day}: closed (the installed calendar has a session {hours(mine)})"
    if mine is None:
        return f"{day}: a session {hours(venue)} (the installed calendar has none)"
    return f"{day}: a session {hours(venue)} (the installed calendar: {hours(mine)})"


@lru_cache(maxsize=4)
def default_calendar() -> ExchangeCalendar:
    """Return a shared NYSE calendar from 1990 to five years ahead (built once, ~1 s)."""
    return ExchangeCalendar()
