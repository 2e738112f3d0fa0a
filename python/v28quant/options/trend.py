"""The underlying's trend, for debit verticals bought with it when premium is cheap.

The trend is the drift of daily log returns over the last ``days`` sessions (the current price
counting as the last close) measured in standard errors::

    t = mean(r) / (std(r) / sqrt(n)) = sum(r) / (std(r) sqrt(n))

Up when ``t >= min_t``, down when ``t <= -min_t``, none in between: a drift less than
``min_t`` standard errors from zero is not told apart from noise. The sign of past returns as
the trend signal is time-series momentum (T. Moskowitz, Y. Ooi and L. Pedersen, "Time series
momentum", Journal of Financial Economics 104(2), 2012); scaling by the standard error makes
one threshold serve quiet and volatile names alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True, slots=True)
class Trend:
    """The trend of one underlying: direction (None: no trend), t-statistic, sessions used."""

    direction: Literal["up", "down"] | None
    t_stat: float
    days: int

    def describe(self) -> dict[str, object]:
        """Return the JSON-ready numbers for the journal."""
        t = round(self.t_stat, 3) if math.isfinite(self.t_stat) else None
        return {"direction": self.direction, "t_stat": t, "days": self.days}


def trend_of(closes: np.ndarray | None, spot: float, days: int, min_t: float) -> Trend:
    """Return the trend of daily ``closes`` followed by the current ``spot`` (module docstring).

    Parameters
    ----------
    closes : ndarray or None
        Daily closes, oldest first, up to the previous session.
    spot : float
        The underlying's price now (> 0).
    days : int
        Returns used (>= 2).
    min_t : float
        Standard errors of drift that make a trend (>= 0).

    Raises
    ------
    ValueError
        When ``days < 2``, ``min_t < 0`` or ``spot`` is not > 0.
    """
    if days < 2:
        raise ValueError(f"days must be >= 2, got {days}")
    if not min_t >= 0:
        raise ValueError(f"min_t must be >= 0, got {min_t}")
    if not spot > 0:
        raise ValueError(f"spot must be > 0, got {spot}")
    px = np.append(np.asarray(closes if closes is not None else [], dtype=float), spot)
    px = px[np.isfinite(px) & (px > 0)][-(days + 1) :]
    r = np.diff(np.log(px))
    if len(r) < days:
        return Trend(None, math.nan, len(r))
    sd = float(np.std(r, ddof=1))
    if sd <= 0.0:
        return Trend(None, math.nan, len(r))
    t = float(np.sum(r) / (sd * math.sqrt(len(r))))
    direction: Literal["up", "down"] | None = (
        "up" if t >= min_t else "down" if t <= -min_t else None
    )
    return Trend(direction, t, len(r))
