"""Exchange calendar and the runner's windows.

Independent source: NYSE's published holiday and early-close schedules for 2025 and 2026
(nyse.com/markets/hours-calendars), the US DST rules (second Sunday of March, first Sunday of
November), and Cboe's option trading hours (ETF options 16:15, expiring series 16:00).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from v28quant.calendar import ET, ExchangeCalendar, default_calendar

NYSE_HOLIDAYS = {
    2025: [
        "2025-01-01",
        "2025-01-09",
        "2025-01-20",
        "2025-02-17",
        "2025-04-18",
        "2025-05-26",
        "2025-06-19",
        "2025-07-04",
        "2025-09-01",
        "2025-11-27",
        "2025-12-25",
    ],
    2026: [
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-04-03",
        "2026-05-25",
        "2026-06-19",
        "2026-07-03",
        "2026-09-07",
        "2026-11-26",
        "2026-12-25",
    ],
}
NYSE_EARLY_CLOSES = {
    2025: ["2025-07-03", "2025-11-28", "2025-12-24"],
    2026: ["2026-11-27", "2026-12-24"],
}


@pytest.fixture(scope="module")
def cal():
    return default_calendar()


@pytest.mark.parametrize("year", [2025, 2026])
def test_holidays_match_nyse(cal, year: int) -> None:
    got = [d.isoformat() for d in cal.holidays(f"{year}-01-01", f"{year}-12-31")]
    assert got == NYSE_HOLIDAYS[year], f"{year}: got {got}"


@pytest.mark.parametrize("year", [2025, 2026])
def test_early_closes_match_nyse(cal, year: int) -> None:
    got = [d.isoformat() for d in cal.early_closes(f"{year}-01-01", f"{year}-12-31")]
    assert got == NYSE_EARLY_CLOSES[year]
    for d in got:
        assert cal.session(d).close.time() == time(13, 0), d


def test_day_after_thanksgiving_2026(cal) -> None:
    s = cal.session("2026-11-27")
    assert s.early_close
    assert s.close == datetime(2026, 11, 27, 13, 0, tzinfo=ET)
    w = cal.windows("2026-11-27")
    # the trading window ends 15 minutes before the early close
    assert w.trading_end == datetime(2026, 11, 27, 12, 45, tzinfo=ET)
    assert w.cycles[0].time() == time(9, 45)
    assert w.cycles[-1].time() == time(12, 45)
    assert len(w.cycles) == 37  # 09:45..12:45 every 5 min: 3 h * 12 + 1
    assert cal.option_close("SPY", "2026-11-27") == datetime(2026, 11, 27, 13, 15, tzinfo=ET)
    assert cal.option_close("AAPL", "2026-11-27") == datetime(2026, 11, 27, 13, 0, tzinfo=ET)
    assert w.after_close == datetime(2026, 11, 27, 13, 30, tzinfo=ET)


def test_full_day_windows(cal) -> None:
    w = cal.windows(date(2026, 3, 4))
    assert w.premarket == datetime(2026, 3, 4, 9, 0, tzinfo=ET)
    assert (w.trading_start.time(), w.trading_end.time()) == (time(9, 45), time(15, 45))
    assert len(w.cycles) == 73  # 6 h * 12 + 1
    gaps = {(b - a).total_seconds() for a, b in zip(w.cycles[:-1], w.cycles[1:], strict=True)}
    assert gaps == {300.0}
    assert w.after_close.time() == time(16, 30)


def test_july_3rd_and_good_friday(cal) -> None:
    assert cal.session("2025-07-03").close.time() == time(13, 0)
    assert not cal.is_session("2026-07-03")  # Independence Day observed (July 4 is a Saturday)
    assert not cal.is_session("2026-04-03")  # Good Friday
    assert cal.previous_session("2026-04-06") == date(2026, 4, 2)
    assert cal.next_session("2026-04-02") == date(2026, 4, 6)
    # 2025-04-18 is both Good Friday and the April monthly expiry: it moves to Thursday
    assert cal.expiry_session("2025-04-18") == date(2025, 4, 17)
    assert cal.expiry_session("2025-05-16") == date(2025, 5, 16)
    with pytest.raises(ValueError, match="not a trading session"):
        cal.session("2026-04-03")
    with pytest.raises(ValueError, match="not a trading session"):
        cal.windows("2026-07-04")


@pytest.mark.parametrize(
    ("day", "open_utc"),
    [
        ("2026-03-06", 14),
        ("2026-03-09", 13),  # DST starts Sunday 2026-03-08
        ("2026-10-30", 13),
        ("2026-11-02", 14),  # DST ends Sunday 2026-11-01
    ],
)
def test_dst(cal, day: str, open_utc: int) -> None:
    s = cal.session(day)
    assert s.open.time() == time(9, 30)
    assert s.open.astimezone(UTC).hour == open_utc
    assert s.open.astimezone(UTC).minute == 30
    assert cal.windows(day).cycles[0].astimezone(UTC).hour == open_utc


def test_option_cutoffs(cal) -> None:
    d = "2026-03-04"
    assert cal.option_close("SPY", d).time() == time(16, 15)
    assert cal.option_close("qqq", d).time() == time(16, 15)
    assert cal.option_close("AAPL", d).time() == time(16, 0)
    # expiring series stop with the equities, even on a late-close ETF
    assert cal.option_close("SPY", d, expiry=date(2026, 3, 4)).time() == time(16, 0)
    assert cal.option_close("SPY", d, expiry=date(2026, 3, 6)).time() == time(16, 15)


def test_is_open(cal) -> None:
    assert cal.is_open(datetime(2026, 3, 4, 9, 30, tzinfo=ET))
    assert not cal.is_open(datetime(2026, 3, 4, 9, 29, tzinfo=ET))
    assert not cal.is_open(datetime(2026, 3, 4, 16, 0, tzinfo=ET))
    assert not cal.is_open(datetime(2026, 11, 27, 13, 30, tzinfo=ET))
    assert not cal.is_open(datetime(2026, 11, 26, 12, 0, tzinfo=ET))
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_open(datetime(2026, 3, 4, 12))


def test_sessions_range(cal) -> None:
    days = cal.sessions("2026-03-30", "2026-04-10")
    assert date(2026, 4, 3) not in days
    assert len(days) == 9
    with pytest.raises(ValueError, match="outside the calendar"):
        cal.session("1980-01-02")


def test_next_open_next_close_and_closes_between(cal) -> None:
    """NYSE 2025: Thanksgiving Thu 27 Nov closed, Fri 28 Nov closes at 13:00, then Mon 1 Dec."""
    wed = datetime(2025, 11, 26, 15, 0, tzinfo=ET)
    assert cal.next_close(wed) == datetime(2025, 11, 26, 16, 0, tzinfo=ET)
    assert cal.next_open(wed) == datetime(2025, 11, 28, 9, 30, tzinfo=ET)
    fri_close = datetime(2025, 11, 28, 13, 0, tzinfo=ET)
    assert cal.next_close(fri_close) == datetime(2025, 12, 1, 16, 0, tzinfo=ET)  # strictly after
    got = cal.closes_between(wed, datetime(2025, 12, 1, 16, 0, tzinfo=ET))
    assert got == [
        (date(2025, 11, 26), datetime(2025, 11, 26, 16, 0, tzinfo=ET)),
        (date(2025, 11, 28), fri_close),
        (date(2025, 12, 1), datetime(2025, 12, 1, 16, 0, tzinfo=ET)),
    ], got
    assert cal.closes_between(fri_close, fri_close) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.next_open(datetime(2025, 11, 26, 15, 0))


def test_last_close(cal) -> None:
    """NYSE 2025: the history a job may use ends at the last close, Thanksgiving skipped."""
    wed_close = datetime(2025, 11, 26, 16, 0, tzinfo=ET)
    fri_close = datetime(2025, 11, 28, 13, 0, tzinfo=ET)
    assert cal.last_close(datetime(2025, 11, 28, 10, 0, tzinfo=ET)) == wed_close  # Fri open
    assert cal.last_close(fri_close) == fri_close  # at the close, today's bar is complete
    assert cal.last_close(datetime(2025, 11, 29, 12, 0, tzinfo=UTC)) == fri_close  # Saturday
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.last_close(datetime(2025, 11, 26, 15, 0))


def _venue(cal: ExchangeCalendar, lo: str, hi: str) -> list[tuple[date, datetime, datetime]]:
    return [(d, cal.session(d).open, cal.session(d).close) for d in cal.sessions(lo, hi)]


def test_the_venue_calendar_is_followed_where_it_differs() -> None:
    """A closure, an early close and an extra session of the venue's replace the installed ones.

    Washington's funeral-day style closure on a Wednesday, a 13:00 close on a Tuesday, and a
    Saturday session (hypothetical) the installed calendar cannot know; days outside the
    span read are left alone.
    """
    cal = ExchangeCalendar("2027-01-01", "2027-12-31")
    venue = [v for v in _venue(cal, "2027-03-01", "2027-03-31") if v[0] != date(2027, 3, 10)]
    tue = next(i for i, v in enumerate(venue) if v[0] == date(2027, 3, 16))
    venue[tue] = (venue[tue][0], venue[tue][1], datetime(2027, 3, 16, 13, 0, tzinfo=ET))
    venue.append(
        (
            date(2027, 3, 20),
            datetime(2027, 3, 20, 9, 30, tzinfo=ET),
            datetime(2027, 3, 20, 16, 0, tzinfo=ET),
        )
    )
    before = cal.sessions("2027-02-01", "2027-04-30")
    changes = cal.adopt_venue_sessions(sorted(venue), date(2027, 3, 1), date(2027, 3, 31))
    assert changes == [
        "2027-03-10: closed (the installed calendar has a session 09:30-16:00)",
        "2027-03-16: a session 09:30-13:00 (the installed calendar: 09:30-16:00)",
        "2027-03-20: a session 09:30-16:00 (the installed calendar has none)",
    ]
    assert not cal.is_session("2027-03-10")
    assert cal.next_session("2027-03-09") == date(2027, 3, 11)
    assert cal.session("2027-03-16").early_close
    assert cal.windows("2027-03-16").cycles[-1] == datetime(2027, 3, 16, 12, 45, tzinfo=ET)
    assert cal.is_session("2027-03-20")
    after = cal.sessions("2027-02-01", "2027-04-30")
    assert set(before) ^ set(after) == {date(2027, 3, 10), date(2027, 3, 20)}
    assert cal.last_close(datetime(2027, 3, 10, 20, tzinfo=ET)).date() == date(2027, 3, 9)
    # the same answer again changes nothing
    assert cal.adopt_venue_sessions(sorted(venue), date(2027, 3, 1), date(2027, 3, 31)) == []


def test_an_empty_venue_calendar_is_refused() -> None:
    cal = ExchangeCalendar("2027-01-01", "2027-12-31")
    with pytest.raises(ValueError, match="no session from 2027-03-01 to 2027-04-15"):
        cal.adopt_venue_sessions([], date(2027, 3, 1), date(2027, 4, 15))
    assert cal.is_session("2027-03-10")
