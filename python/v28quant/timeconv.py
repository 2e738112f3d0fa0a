"""Instants in UTC from the dates and datetimes callers pass to data queries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from v28quant.calendar import ET


def to_utc(x: datetime | date, *, end: bool) -> datetime:
    """Return the UTC instant a query bound ``x`` stands for.

    Parameters
    ----------
    x : datetime or date
        A timezone-aware datetime (converted as is), or a plain date, read as a New York
        calendar day: its first second when ``end`` is False, its last when True.
    end : bool
        Whether ``x`` closes a range (inclusive end of its day).

    Returns
    -------
    datetime
        Timezone-aware, in UTC.

    Raises
    ------
    ValueError
        A naive datetime (its zone would be a guess) or something that is not a date.
    """
    if isinstance(x, datetime):
        if x.tzinfo is None:
            raise ValueError(f"expected a timezone-aware datetime, got naive {x!r}")
        return x.astimezone(UTC)
    if isinstance(x, date):
        t = time(23, 59, 59) if end else time(0)
        return datetime.combine(x, t, ET).astimezone(UTC)
    raise ValueError(f"expected a date or datetime, got {x!r}")
