"""Repair of raw SVI slices that admit static arbitrage.

A slice fitted freely to quotes can have butterfly arbitrage (the Gatheral-Jacquier density
factor ``g(y) < 0`` somewhere) and a later slice can dip below an earlier one (calendar
arbitrage, ``w_i(y) < w_{i-1}(y)``). :func:`repair_slice` refits a slice by least squares in
total variance under those conditions, against the already repaired slice of the next longer
maturity (slices are repaired from the longest, whose quotes span the widest range of strikes,
so a short slice's wings, which no quote pins down, are held below the long ones'), with
Lee's moment bound ``b (1 + |rho|) <= 2`` for the wings. The conditions are imposed by
cutting planes: SLSQP with constraints at the worst points of a dense grid, points added until
the grid shows no arbitrage (a few dozen constraints instead of thousands). A slice that
already satisfies them is returned unchanged.

References
----------
J. Gatheral, A. Jacquier (2014), "Arbitrage-free SVI volatility surfaces", Quant. Finance 14(1),
eq. 2.1 (g), Lemma 2.2 (butterfly), Definition 2.1 (calendar). R. Lee (2004), "The moment
formula for implied volatility at extreme strikes", Math. Finance 14(3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

FloatArray = NDArray[np.float64]

# Margins imposed at the constraint points, so that g and the calendar spread stay >= 0 between
# the points of the checking grid too (far below the fit's accuracy, about 1e-4 in variance).
G_MARGIN = 1e-4
CALENDAR_MARGIN = 1e-5  # relative to the quotes' mean total variance
CHECK_POINTS = 4001


def svi_total_variance(p: FloatArray, y: FloatArray) -> FloatArray:
    """Raw SVI ``w(y) = a + b (rho (y - m) + sqrt((y - m)^2 + sigma^2))`` (Gatheral 2004)."""
    a, b, rho, m, sigma = p
    d = y - m
    return np.asarray(a + b * (rho * d + np.sqrt(d * d + sigma * sigma)), dtype=np.float64)


def svi_g(p: FloatArray, y: FloatArray) -> FloatArray:
    """Gatheral-Jacquier ``g(y) = (1 - y w' / 2w)^2 - w'^2 / 4 (1/w + 1/4) + w'' / 2``."""
    _, b, rho, m, sigma = p
    d = y - m
    r = np.sqrt(d * d + sigma * sigma)
    w = svi_total_variance(p, y)
    w1 = b * (rho + d / r)
    w2 = b * sigma * sigma / r**3
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1.0 - y * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
    return np.asarray(np.where(w > 0.0, g, -1.0), dtype=np.float64)


def arbitrage_free(p: FloatArray, grid: FloatArray, later: FloatArray | None) -> bool:
    """Return whether g >= 0, w <= w_later and w >= 0 on ``grid`` and Lee's bound hold."""
    ok = bool(np.all(svi_g(p, grid) >= 0.0)) and p[1] * (1.0 + abs(p[2])) <= 2.0
    ok = ok and p[0] + p[1] * p[4] * np.sqrt(1.0 - p[2] ** 2) >= 0.0  # w >= 0 everywhere
    if later is not None:
        spread = svi_total_variance(later, grid) - svi_total_variance(p, grid)
        ok = ok and bool(np.all(spread >= 0.0))
    return ok


def _worst(values: FloatArray, grid: FloatArray, below: float, k: int = 8) -> list[float]:
    """Up to ``k`` grid points at the lowest local minima of ``values`` that are < ``below``."""
    v = np.concatenate(([np.inf], values, [np.inf]))
    is_min = (v[1:-1] <= v[:-2]) & (v[1:-1] <= v[2:]) & (values < below)
    idx = np.flatnonzero(is_min)
    return [float(x) for x in grid[idx[np.argsort(values[idx])][:k]]]


def repair_slice(
    params: FloatArray,
    y: FloatArray,
    w: FloatArray,
    later: FloatArray | None,
    half: float,
) -> tuple[FloatArray, bool]:
    """Closest arbitrage-free slice to the quotes, by least squares under the conditions.

    Parameters
    ----------
    params : ndarray, shape (5,)
        Raw SVI ``(a, b, rho, m, sigma)`` from the unconstrained fit (the start).
    y, w : ndarray
        The quotes: log-moneyness and total implied variance (years * vol^2).
    later : ndarray, shape (5,), optional
        The (already repaired) slice of the next longer expiry, which must lie above.
    half : float
        The conditions hold on ``|y| <= half`` (checked on ``CHECK_POINTS`` points).

    Returns
    -------
    params : ndarray, shape (5,)
        The repaired slice (``params`` itself when it was already free of arbitrage).
    repaired : bool
        Whether the slice was changed.

    Raises
    ------
    ValueError
        When no arbitrage-free slice was found near the quotes.
    """
    p0 = np.asarray(params, dtype=np.float64)
    grid = np.linspace(-half, half, CHECK_POINTS)
    if arbitrage_free(p0, grid, later):
        return p0, False
    # SLSQP works on parameters scaled to order one (a and b in units of the quotes' variance).
    level = float(np.mean(w))
    scale = np.array([level, 10.0 * level, 1.0, 0.1, 0.1])
    bounds = [(None, None), (0.0, 2.0 / scale[1]), (-0.999, 0.999), (None, None), (1e-3, None)]

    def cost(x: FloatArray) -> float:
        return float(np.mean((svi_total_variance(x * scale, y) - w) ** 2)) / level**2

    def lee(x: FloatArray) -> FloatArray:
        # Lee's wing bounds, and the minimum total variance a + b sigma sqrt(1 - rho^2) >= 0.
        a, b, rho, _, sigma = x * scale
        min_w = (a + b * sigma * np.sqrt(max(1.0 - rho * rho, 0.0))) / level
        return np.array([2.0 - b * (1.0 + rho), 2.0 - b * (1.0 - rho), min_w])

    g_pts: list[float] = []
    cal_pts: list[float] = []
    best: FloatArray | None = None
    for start in _starts(p0, y, w, later, grid):
        p = start
        for _ in range(20):
            # Keep the best iterate that is free of arbitrage on the whole grid (the flat start
            # always is, so a repair always exists; its fit error is reported by the caller).
            if arbitrage_free(p, grid, later) and (
                best is None or cost(p / scale) < cost(best / scale)
            ):
                best = p
            new_g = _worst(svi_g(p, grid), grid, G_MARGIN / 2)
            new_c: list[float] = []
            if later is not None:
                spread = (svi_total_variance(later, grid) - svi_total_variance(p, grid)) / level
                new_c = _worst(spread, grid, CALENDAR_MARGIN / 2)
            if p is not start and not (new_g or new_c):
                break
            g_pts = sorted(set(g_pts + new_g))
            cal_pts = sorted(set(cal_pts + new_c))
            p = _solve(
                cost,
                lee,
                p / scale,
                scale,
                bounds,
                np.array(g_pts),
                np.array(cal_pts),
                later,
                level,
            )
    if best is None:
        raise ValueError(f"no arbitrage-free SVI slice found near the quotes (start {p0.tolist()})")
    return best, True


def _solve(
    cost: Any,
    lee: Any,
    x0: FloatArray,
    scale: FloatArray,
    bounds: list[tuple[float | None, float | None]],
    g_pts: FloatArray,
    cal_pts: FloatArray,
    later: FloatArray | None,
    level: float,
) -> FloatArray:
    cons: list[dict[str, Any]] = [{"type": "ineq", "fun": lee, "jac": _fd(lee)}]
    if g_pts.size:

        def butterfly(x: FloatArray) -> FloatArray:
            return svi_g(x * scale, g_pts) - G_MARGIN

        cons.append({"type": "ineq", "fun": butterfly, "jac": _fd(butterfly)})
    if later is not None and cal_pts.size:
        w_later = svi_total_variance(later, cal_pts)

        def calendar(x: FloatArray) -> FloatArray:
            return (w_later - svi_total_variance(x * scale, cal_pts)) / level - CALENDAR_MARGIN

        cons.append({"type": "ineq", "fun": calendar, "jac": _fd(calendar)})
    res = minimize(
        cost,
        x0,
        jac=_fd(cost),
        method="SLSQP",
        bounds=bounds,
        constraints=cons,
        options={"maxiter": 300, "ftol": 1e-12},
    )
    return np.asarray(res.x * scale, dtype=np.float64)


def _fd(f: Any) -> Any:
    """Forward-difference Jacobian of ``f`` (scipy's generic one costs more than ``f``)."""

    def jac(x: FloatArray) -> FloatArray:
        h = 1e-7 * np.maximum(1.0, np.abs(x))
        f0 = np.asarray(f(x))
        cols = []
        for j in range(x.size):
            e = np.zeros_like(x)
            e[j] = h[j]
            cols.append((np.asarray(f(x + e)) - f0) / h[j])
        return np.asarray(np.stack(cols, axis=-1), dtype=np.float64)

    return jac


def _starts(
    p0: FloatArray, y: FloatArray, w: FloatArray, later: FloatArray | None, grid: FloatArray
) -> list[FloatArray]:
    """Return the starting slices of the constrained refit.

    The free fit pulled inside the bounds; the later slice scaled down to the quotes' level
    (below it by construction); a nearly flat slice below the later one, free of arbitrage by
    construction (g close to 1).
    """
    clipped = p0.copy()
    clipped[2] = np.clip(clipped[2], -0.99, 0.99)
    clipped[1] = min(clipped[1], 1.9 / (1.0 + abs(clipped[2])))
    clipped[4] = max(clipped[4], 1e-2)
    level = float(np.mean(w))
    starts = [clipped]
    if later is not None:
        c = min(level / float(np.mean(svi_total_variance(later, y))), 1.0 - 4.0 * CALENDAR_MARGIN)
        scaled = later.copy()
        scaled[:2] *= c
        starts.append(scaled)
        level = min(level, float(np.min(svi_total_variance(later, grid))) * (1.0 - 1e-3))
    flat = np.array([level, 1e-6, 0.0, 0.0, 0.1])
    return [*starts, flat]
