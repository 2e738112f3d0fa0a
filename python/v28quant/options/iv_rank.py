"""Implied-vol rank and percentile, and the realised-vol history that stands in for IV history.

IV rank is where today's at-the-money implied vol sits in its past range
(``(iv - min) / (max - min)``); IV percentile the share of past values below it. Traders sell
premium when both are high. A fresh journal has no IV history yet, so trailing realised vol
(times a variance-risk-premium factor) from daily closes serves until it has.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def iv_rank(current: float, history: Sequence[float]) -> tuple[float, float]:
    """Return (rank, percentile) of ``current`` in ``history``.

    Rank is ``(iv - min) / (max - min)`` clipped to [0, 1]; percentile the share of history
    strictly below ``current``. Both 0.5 with fewer than two distinct values.
    """
    h = np.asarray([x for x in history if math.isfinite(x)], dtype=float)
    if len(h) < 2 or float(h.max() - h.min()) <= 0.0:
        return 0.5, 0.5
    rank = (current - h.min()) / (h.max() - h.min())
    return float(np.clip(rank, 0.0, 1.0)), float(np.mean(h < current))


def realised_vol_history(closes: np.ndarray, window: int = 21) -> np.ndarray:
    """Return rolling annualised realised vol (sqrt(252) x std of daily log returns)."""
    r = np.diff(np.log(np.asarray(closes, dtype=float)))
    if len(r) < window:
        return np.empty(0)
    win = np.lib.stride_tricks.sliding_window_view(r, window)
    return np.asarray(win.std(axis=1, ddof=1) * math.sqrt(252.0))
