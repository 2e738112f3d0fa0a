"""The NYSE session calendar (exchange_calendars "XNYS") for the simulated exchange.

Kept tiny and private: the trading schedule proper lives in ``v28quant.calendar``. Options are
assumed to close with the equity session (the 16:15 late close of some ETF options is ignored).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime

import pandas as pd


@functools.cache
def _cal():  # type: ignore[no-untyped-def]
    import exchange_calendars as xc

    return xc.get_calendar("XNYS")


def _ts(when: datetime) -> pd.Timestamp:
    if when.tzinfo is None:
        raise ValueError(f"need a timezone-aware time, got {when!r}")
    return pd.Timestamp(when).tz_convert(UTC)


def is_open(when: datetime) -> bool:
    """True during a regular session (open inclusive, close exclusive)."""
    return bool(_cal().is_open_on_minute(_ts(when).floor("min")))


def next_open(when: datetime) -> datetime:
    return _cal().next_open(_ts(when).floor("min")).to_pydatetime()


def next_close(when: datetime) -> datetime:
    """The first session close strictly after ``when``."""
    return _cal().next_close(_ts(when).floor("min")).to_pydatetime()


def closes_between(after: datetime, upto: datetime) -> list[tuple[date, datetime]]:
    """(session date, close time) of every session closing in ``(after, upto]``."""
    sched = _cal().schedule
    lo, hi = _ts(after), _ts(upto)
    hit = sched[(sched["close"] > lo) & (sched["close"] <= hi)]
    return [(d.date(), c.to_pydatetime()) for d, c in zip(hit.index, hit["close"], strict=True)]


def sessions(start: date, end: date) -> list[tuple[date, datetime, datetime]]:
    """(date, open, close) of each session from ``start`` to ``end`` inclusive."""
    sched = _cal().schedule.loc[str(start):str(end)]
    return [(d.date(), o.to_pydatetime(), c.to_pydatetime())
            for d, o, c in zip(sched.index, sched["open"], sched["close"], strict=True)]
