"""One symbol's daily history as arrays, with the session times replay steps through."""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, time

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from v28quant.calendar import ET, ExchangeCalendar


class DailySeries:
    """One symbol's daily bars as arrays, with each session's open and close times."""

    def __init__(self, symbol: str, frame: pd.DataFrame, cal: ExchangeCalendar) -> None:
        self.symbol = symbol
        days = frame["timestamp"].dt.tz_convert(ET).dt.date.to_list()
        self.days: list[date] = days
        #: Midnight New York of each session, in UTC (the daily bars' timestamps).
        self.day_stamps = pd.DatetimeIndex(
            [datetime.combine(d, time(0), ET) for d in days], tz=ET
        ).tz_convert("UTC")
        col: dict[str, NDArray[np.float64]] = {
            k: frame[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")
        }
        self.o, self.h, self.l = col["open"], col["high"], col["low"]
        self.c, self.v = col["close"], col["volume"]
        self.opens: list[datetime] = []
        self.closes: list[datetime] = []
        for d in days:
            times = cal.session_times(d)
            if times is None:  # outside the calendar or not a session there: regular hours
                op = datetime.combine(d, time(9, 30), ET)
                cl = datetime.combine(d, time(16, 0), ET)
            else:
                op, cl = times
            self.opens.append(op)
            self.closes.append(cl)
        self.close_utc = [x.astimezone(UTC) for x in self.closes]
        # The history has ended (its last close is stale) once the next session has opened.
        self.ended_by: datetime | None = None
        if days:
            try:
                after = cal.session_times(cal.next_session(days[-1]))
            except ValueError:  # past the calendar's range: nothing to compare with
                after = None
            self.ended_by = None if after is None else after[0]

    def minutes(self, i: int) -> int:
        """Return the length of session ``i`` in whole minutes."""
        return int((self.closes[i] - self.opens[i]).total_seconds() // 60)

    def locate(self, now: datetime) -> int:
        """Return the index of the last session dated on or before ``now`` in New York (-1)."""
        return bisect.bisect_right(self.days, now.astimezone(ET).date()) - 1

    def completed_closes(self, now: datetime) -> NDArray[np.float64]:
        """Return the closes of the sessions that have closed by ``now``."""
        return self.c[: bisect.bisect_right(self.close_utc, now)]

    def in_progress(self, now: datetime) -> int | None:
        """Return the index of the session open at ``now``, or None between sessions."""
        j = bisect.bisect_right(self.close_utc, now)
        return j if j < len(self.days) and self.opens[j] <= now < self.closes[j] else None

    def day_stamp(self, i: int) -> pd.Timestamp:
        """Return the timestamp of session ``i``'s daily bar (midnight New York, in UTC)."""
        return pd.Timestamp(datetime.combine(self.days[i], time(0), ET)).tz_convert("UTC")
