"""Synthetic intraday price paths between the points a daily bar pins down.

A daily bar fixes the open, high, low and close, not the path between them. Replay fills the
minutes with a piecewise Brownian bridge in log price through those four anchors, clipped to
[low, high]. The path is synthetic: anything computed from it (an intraday quote, a minute bar,
a fill) is labelled so, since its shape between the anchors is invented.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray


def intraday_path(
    o: float, h: float, lo: float, c: float, n: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Return a price path of ``n + 1`` minutes from open ``o`` to close ``c``.

    Minute 0 is the open and minute ``n`` the close; the path touches ``h`` and ``lo`` exactly
    and stays within [lo, h].

    Piecewise Brownian bridges in log price between the anchors (open, high, low, close; the
    high and low at random interior minutes in random order unless the open or close already
    is the high / low), clipped to [log lo, log h].
    """
    if n < 3:
        raise ValueError(f"intraday path needs at least 3 minutes, got {n}")
    if not (lo <= min(o, c) and h >= max(o, c) and lo > 0):
        raise ValueError(f"bar does not bracket open/close: o={o} h={h} l={lo} c={c}")
    if h - lo <= 1e-12 * h:
        return np.full(n + 1, o)
    tol = 1e-12 * h
    anchors: dict[int, float] = {0: o, n: c}
    need = []
    if abs(o - h) > tol and abs(c - h) > tol:
        need.append(h)
    if abs(o - lo) > tol and abs(c - lo) > tol:
        need.append(lo)
    if need:
        idx = np.sort(rng.choice(np.arange(1, n), size=len(need), replace=False))
        order = rng.permutation(len(need))
        for i, j in zip(idx, order, strict=True):
            anchors[int(i)] = need[int(j)]
    xs = sorted(anchors)
    log_lo, log_hi = math.log(lo), math.log(h)
    sigma_step = (log_hi - log_lo) / math.sqrt(n)  # range ~ sd of the day's path
    x = np.empty(n + 1)
    for a, b in itertools.pairwise(xs):
        m = b - a
        ya, yb = math.log(anchors[a]), math.log(anchors[b])
        w = np.concatenate([[0.0], np.cumsum(rng.standard_normal(m) * sigma_step)])
        t = np.arange(m + 1) / m
        x[a : b + 1] = ya + (yb - ya) * t + w - t * w[-1]
    p = np.clip(np.exp(x), lo, h)  # clip after exp: exp(log h) may round above h
    for i, v in anchors.items():  # exact anchors, no exp/log round-off
        p[i] = v
    return p


def volume_profile(n: int) -> NDArray[np.float64]:
    """Return the cumulative fraction of a day's volume by minute (U-shaped intraday volume)."""
    u = (np.arange(n) + 0.5) / n
    w = 1.0 + 3.0 * (2.0 * u - 1.0) ** 2
    return np.concatenate([[0.0], np.cumsum(w) / w.sum()])


def session_bars(
    symbol: str,
    path: NDArray[np.float64],
    session_open: datetime,
    day_volume: float,
    minutes: int,
    lo: datetime,
    hi: datetime,
    now: datetime,
) -> list[tuple[datetime, str, float, float, float, float, float]]:
    """Return the ``minutes``-minute bars of one session's path that have ended by ``now``.

    Rows are ``(start, symbol, open, high, low, close, volume)`` for bars starting within
    [``lo``, ``hi``], aligned to the session open, the last one cut at the close. A bar whose
    end is after ``now`` is not returned: it has not happened yet. Volume is ``day_volume``
    spread by ``volume_profile``.
    """
    n = len(path) - 1
    cum = volume_profile(n)
    out = []
    for a in range(0, n, minutes):
        b = min(a + minutes, n)
        t0 = session_open + timedelta(minutes=a)
        t1 = session_open + timedelta(minutes=b)
        if t1 > now:
            break
        if t0 < lo or t0 > hi:
            continue
        seg = path[a : b + 1]
        out.append(
            (
                t0.astimezone(UTC),
                symbol,
                float(seg[0]),
                float(seg.max()),
                float(seg.min()),
                float(seg[-1]),
                float(np.floor(day_volume * (cum[b] - cum[a]))),
            )
        )
    return out
