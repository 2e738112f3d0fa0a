"""One symbol's daily history as arrays, with the session times replay steps through."""

from __future__ import annotations

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

    def minutes(self, i: int) -> int:
        """Return the length of session ``i`` in whole minutes."""
        return int((self.closes[i] - self.opens[i]).total_seconds() // 60)
