"""Joint refit of raw SVI slices under the static no-arbitrage conditions.

A slice fitted freely to its quotes can have butterfly arbitrage (the Gatheral-Jacquier density
factor ``g(y) < 0`` somewhere) and a later slice can dip below an earlier one (calendar
arbitrage, ``w_{i+1}(y) < w_i(y)``), most often far beyond the quotes, where nothing pins a
slice's wings. :func:`repair_surface` refits all slices at once, by least squares in total
variance to their own quotes, under:

- butterfly: ``g_i(y) >= 0`` on each slice's checking range;
- calendar: ``w_{i+1}(y) >= w_i(y)`` on the later slice's range, and wing slopes
  ``b (1 +- rho)`` non-decreasing in maturity, so the slices stay ordered beyond the range too;
- Lee's moment bound ``b (1 + |rho|) <= 2`` and ``min_y w = a + b sigma sqrt(1 - rho^2) >= 0``.

Fitting the slices jointly lets a calendar crossing far out be resolved by steepening the
longer slice's unquoted wing instead of bending the shorter slice's quoted smile, which slice by
slice repairs (either way round) cannot do. The conditions at every point of the ranges are
imposed by cutting planes: constraints at the worst points of a dense grid, points added until
the grid shows no arbitrage (a few dozen constraints instead of thousands).

Two phases, each SLSQP under the conditions at the cut points found so far, rounds of cuts
until the grids are free. First only ``(a, b, rho)`` move, each slice's ``(m, sigma)`` held
from its free fit: in the coordinates ``(a, c = b, d = b rho)`` the cost is then quadratic and
every condition but the butterfly one linear, so SLSQP, in coordinates whitened by the cost's
Hessian (one block a slice), reaches an arbitrage-free surface in a few iterations. Where that
refit costs real accuracy (its squared error more than ``POLISH_ABOVE`` times the free fits'
and its error more than ``POLISH_TOL`` of the vol), all five parameters then move from it,
which lets the smiles' shapes return to their quotes.

References
----------
J. Gatheral, A. Jacquier (2014), "Arbitrage-free SVI volatility surfaces", Quant. Finance 14(1),
eq. 2.1 (g), Lemma 2.2 (butterfly), Definition 2.1 and Lemma 5.1 (calendar). R. Lee (2004),
"The moment formula for implied volatility at extreme strikes", Math. Finance 14(3).
Zeliade Systems (2009), "Quasi-explicit calibration of Gatheral's SVI model" (the linear
coordinates). D. Kraft (1988), "A software package for sequential quadratic programming"
(SLSQP).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

from v28quant.options.errors import ChainUnusable

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Margins imposed at the constraint points, so that g and the calendar spread stay >= 0 between
# the points of the checking grid too (far below the fit's accuracy, about 1e-4 in variance).
G_MARGIN = 1e-4
CALENDAR_MARGIN = 1e-5  # relative to the earlier slice's mean quoted total variance
MIN_W_MARGIN = 1e-6  # likewise, for the slice's minimum total variance
RHO_MAX = 0.999
CHECK_POINTS = 2001
REFIT_ROUNDS = 12
REFIT_ITERATIONS = 100
POLISH_ABOVE = 1.1  # polish when the first phase's squared error exceeds the free fits' by this
# ... and its RMS error in relative vol (about half that in total variance) exceeds this: 0.5 %
# of the vol (0.1 vol points at 20 %) is inside any quoted bid-ask spread
POLISH_TOL = 5e-3
FTOL = 1e-6  # SLSQP's stopping tolerance, relative to the cost at the start


def _w(p: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Total variance and its gradient (5 rows) in ``(a, c, d, m, sigma)``.

    The solver's coordinates are ``c = b`` and ``d = b rho``, in which ``w`` is linear for
    fixed ``(m, sigma)`` (Zeliade's quasi-explicit form), so the calendar, Lee and slope
    conditions are linear there. ``p`` holds one parameter row per point (shape (len(y), 5)).
    """
    a, c, d, m, s = p.T
    dy = y - m
    r = np.sqrt(dy * dy + s * s)
    dw = np.stack([np.ones_like(y), r, dy, -(d + c * dy / r), c * s / r])
    return a + d * dy + c * r, dw


def _w_terms(
    p: FloatArray, y: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """``w, w', w''`` at ``y`` and their gradients (rows) in ``(a, c, d, m, sigma)``."""
    w, dw = _w(p, y)
    _, c, _, m, s = p.T
    dy = y - m
    r = np.sqrt(dy * dy + s * s)
    r3 = r**3
    r5 = r3 * r * r
    w1 = -dw[3]  # w depends on y - m only: dw/dy = -dw/dm
    w2 = c * s * s / r3
    one, zero = np.ones_like(y), np.zeros_like(y)
    dw1 = np.stack([zero, dy / r, one, -c * s * s / r3, -c * dy * s / r3])
    dw2 = np.stack(
        [zero, s * s / r3, zero, 3.0 * c * s * s * dy / r5, c * s * (2.0 / r3 - 3.0 * s * s / r5)]
    )
    return w, w1, w2, dw, dw1, dw2


def _g_raw(
    y: FloatArray, w: FloatArray, w1: FloatArray, w2: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``g`` from ``w, w', w''`` and its term ``u = 1 - y w'/2w`` (not finite where w = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        u = 1.0 - y * w1 / (2.0 * w)
        return u * u - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2, u


def _g(p: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Gatheral-Jacquier ``g(y) = (1 - y w'/2w)^2 - w'^2/4 (1/w + 1/4) + w''/2`` and gradient.

    ``g`` is ``-1`` where ``w <= 0`` (no density there: arbitrage).
    """
    w, w1, w2, dw, dw1, dw2 = _w_terms(p, y)
    g, u = _g_raw(y, w, w1, w2)
    with np.errstate(divide="ignore", invalid="ignore"):
        g_w = u * y * w1 / (w * w) + w1 * w1 / (4.0 * w * w)
        g_w1 = -u * y / w - 0.5 * w1 * (1.0 / w + 0.25)
    bad = ~(w > 0.0) | ~np.isfinite(g)
    return np.where(bad, -1.0, g), np.where(bad, 0.0, g_w * dw + g_w1 * dw1 + 0.5 * dw2)


def _w_value(p: FloatArray, y: FloatArray) -> FloatArray:
    """Total variance alone; ``p``'s last axis holds ``(a, c, d, m, sigma)``, broadcast to y."""
    a, c, d, m, s = np.moveaxis(p, -1, 0)
    dy = y - m
    w: FloatArray = a + d * dy + c * np.sqrt(dy * dy + s * s)
    return w


def _g_value(p: FloatArray, y: FloatArray) -> FloatArray:
    """``g`` alone (the checking grids need no gradient), ``-1`` where ``w <= 0``; as _w_value."""
    a, c, d, m, s = np.moveaxis(p, -1, 0)
    dy = y - m
    r = np.sqrt(dy * dy + s * s)
    w = a + d * dy + c * r
    g, _ = _g_raw(y, w, d + c * dy / r, c * s * s / r**3)
    return np.where(~(w > 0.0) | ~np.isfinite(g), -1.0, g)


def _local_worst(values: FloatArray, grid: FloatArray, below: float, k: int = 8) -> FloatArray:
    """Up to ``k`` grid points at the lowest local minima of ``values`` that are < ``below``."""
    v = np.concatenate(([np.inf], values, [np.inf]))
    is_min = (v[1:-1] <= v[:-2]) & (v[1:-1] <= v[2:]) & (values < below)
    idx = np.flatnonzero(is_min)
    return np.asarray(grid[idx[np.argsort(values[idx])][:k]], dtype=np.float64)


@dataclass
class _Problem:
    """The slices' quotes, scales and checking grids; ``(a, c, d, m, sigma) = x * scale``."""

    ys: list[FloatArray]
    ws: list[FloatArray]
    half: FloatArray
    level: FloatArray  # mean quoted total variance per slice
    scale: FloatArray  # (n, 5): a in units of the level, c and d of level / sd, m and sigma of sd

    @property
    def n(self) -> int:
        return len(self.ys)

    def __post_init__(self) -> None:
        self.y = np.concatenate(self.ys)
        self.wq = np.concatenate(self.ws)
        self.qi = np.concatenate([np.full(len(y), i) for i, y in enumerate(self.ys)])
        counts = np.array([len(y) for y in self.ys], dtype=np.float64)
        # each slice's mean squared error in units of its level: the free fit's own objective
        self.qwt = np.sqrt(1.0 / (counts * self.level**2))[self.qi]
        self.grid = np.stack([np.linspace(-h, h, CHECK_POINTS) for h in self.half])

    def params(self, x: FloatArray) -> FloatArray:
        return x.reshape(self.n, 5) * self.scale

    def residuals(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Weighted fit residuals and their Jacobian (len(quotes) x 5n, block sparse)."""
        w, dw = _w(self.params(x)[self.qi], self.y)
        jac = np.zeros((self.y.size, 5 * self.n))
        rows = np.arange(self.y.size)
        for k in range(5):
            jac[rows, 5 * self.qi + k] = dw[k] * self.qwt * self.scale[self.qi, k]
        return (w - self.wq) * self.qwt, jac

    def cost(self, x: FloatArray) -> float:
        """Return the refit's objective: the sum of the slices' weighted squared errors."""
        w, _ = _w(self.params(x)[self.qi], self.y)
        return float(np.sum(((w - self.wq) * self.qwt) ** 2))

    def violations(self, x: FloatArray) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Return new cut points: local minima of g and of calendar spreads below margin."""
        p = self.params(x)[:, None, :]  # one row a slice, broadcast along its grid
        n = self.n
        g = _g_value(p, self.grid)
        new_g = [
            (i, float(v)) for i in range(n) for v in _local_worst(g[i], self.grid[i], G_MARGIN / 2)
        ]
        new_c: list[tuple[int, float]] = []
        if n > 1:
            later = self.grid[1:]
            spread = (_w_value(p[1:], later) - _w_value(p[:-1], later)) / self.level[:-1, None]
            new_c = [
                (i, float(v))
                for i in range(n - 1)
                for v in _local_worst(spread[i], self.grid[i + 1], CALENDAR_MARGIN / 2)
            ]
        return new_g, new_c

    @functools.cached_property
    def linear_constraints(self) -> tuple[FloatArray, FloatArray]:
        """The conditions linear in ``x``, as ``(A, b)`` with ``A x + b >= 0``.

        ``|rho| <= RHO_MAX`` (``RHO_MAX c -+ d >= 0``, so ``b = c >= 0``), ``sigma >= 1e-3``
        ATM standard deviations, Lee's ``c +- d <= 2``, and wing slopes ``c +- d``
        non-decreasing in maturity (in units of the later slice's ``c`` scale).
        """
        n, nv = self.n, 5 * self.n
        sc = self.scale.ravel()
        rows: list[FloatArray] = []
        offsets: list[float] = []

        def row(entries: dict[int, float], offset: float = 0.0) -> None:
            r = np.zeros(nv)
            for col, v in entries.items():
                r[col] = v * sc[col]  # d/dx = d/dp * scale
            rows.append(r)
            offsets.append(offset)

        for i in range(n):
            ic, idd, cs = 5 * i + 1, 5 * i + 2, self.scale[i, 1]
            for sign in (1.0, -1.0):
                row({ic: RHO_MAX / cs, idd: -sign / cs})
                row({ic: -1.0, idd: -sign}, 2.0)
            row({5 * i + 4: 1.0 / self.scale[i, 4]}, -1e-3)
        for i in range(n - 1):
            bs = self.scale[i + 1, 1]
            for sign in (1.0, -1.0):
                later_c, later_d, c, d = 5 * i + 6, 5 * i + 7, 5 * i + 1, 5 * i + 2
                row({later_c: 1.0 / bs, later_d: sign / bs, c: -1.0 / bs, d: -sign / bs})
        return np.array(rows), np.array(offsets)

    def first_failure(self, x: FloatArray) -> str | None:
        """Return the first static-arbitrage condition ``x`` breaks on the grids, or None."""
        p = self.params(x)
        a, c, d, _, s = p.T
        for i in range(self.n):
            if c[i] + abs(d[i]) > 2.0 or abs(d[i]) > c[i]:
                return f"slice {i} breaks Lee's bound or has |rho| >= 1"
            if a[i] + s[i] * np.sqrt(c[i] ** 2 - d[i] ** 2) < 0.0:
                return f"slice {i} has negative total variance"
            g = _g_value(p[i], self.grid[i])
            if np.min(g) < 0.0:
                return f"slice {i} has butterfly arbitrage at y = {self.grid[i][np.argmin(g)]:.4f}"
            if i > 0:
                spread = _w_value(p[i], self.grid[i]) - _w_value(p[i - 1], self.grid[i])
                if np.min(spread) < 0.0:
                    y = self.grid[i][np.argmin(spread)]
                    return f"slice {i} lies below slice {i - 1} at y = {y:.4f} (calendar)"
        return None

    def free(self, x: FloatArray) -> bool:
        return self.first_failure(x) is None


@dataclass
class _Cuts:
    """Constraint points: butterfly at (slice gi, y gy), calendar at (pair ci, y cy)."""

    gi: IntArray
    gy: FloatArray
    ci: IntArray
    cy: FloatArray

    def add(self, new_g: list[tuple[int, float]], new_c: list[tuple[int, float]]) -> None:
        if new_g:
            self.gi = np.r_[self.gi, [i for i, _ in new_g]].astype(np.int64)
            self.gy = np.r_[self.gy, [y for _, y in new_g]]
        if new_c:
            self.ci = np.r_[self.ci, [i for i, _ in new_c]].astype(np.int64)
            self.cy = np.r_[self.cy, [y for _, y in new_c]]


def _constraints(x: FloatArray, pb: _Problem, cuts: _Cuts) -> tuple[FloatArray, FloatArray]:
    """All constraints ``c(x) >= 0`` and their Jacobian in ``x`` (rows x 5n).

    The linear ones (:attr:`_Problem.linear_constraints`) first, then the minimum variance
    and the butterfly and calendar conditions at the cut points.
    """
    n, nv = pb.n, 5 * pb.n
    p = pb.params(x)
    a, c, d, _, s = p.T
    sc = pb.scale.ravel()
    lin_a, lin_b = pb.linear_constraints
    vals: list[FloatArray] = [lin_a @ x + lin_b]
    jacs: list[FloatArray] = [lin_a]

    def add(val: FloatArray, cols_vals: Sequence[tuple[Any, FloatArray | float]]) -> None:
        # cols_vals: derivatives in the parameters, by column; the Jacobian is kept in x
        jac = np.zeros((val.size, nv))
        rows = np.arange(val.size)
        for col, v in cols_vals:
            jac[rows, col] = v * sc[col]
        vals.append(val)
        jacs.append(jac)

    at = np.arange(n)
    ia, ic, idd, isg = 5 * at, 5 * at + 1, 5 * at + 2, 5 * at + 4
    # minimum total variance a + sigma sqrt(c^2 - d^2) >= 0 (with a margin)
    q = np.sqrt(np.maximum(c * c - d * d, 1e-300))
    lev = pb.level
    add(
        (a + s * q) / lev - MIN_W_MARGIN,
        [(ia, 1.0 / lev), (ic, s * c / q / lev), (idd, -s * d / q / lev), (isg, q / lev)],
    )
    if cuts.gy.size:
        g, dg = _g(p[cuts.gi], cuts.gy)
        add(g - G_MARGIN, [(5 * cuts.gi + k, dg[k]) for k in range(5)])
    if cuts.cy.size:
        i = cuts.ci
        w2, d2 = _w(p[i + 1], cuts.cy)
        w1, d1 = _w(p[i], cuts.cy)
        add(
            (w2 - w1) / lev[i] - CALENDAR_MARGIN,
            [(5 * (i + 1) + k, d2[k] / lev[i]) for k in range(5)]
            + [(5 * i + k, -d1[k] / lev[i]) for k in range(5)],
        )
    return np.concatenate(vals), np.vstack(jacs)


def _refit(
    x: FloatArray, pb: _Problem, cuts: _Cuts, k: int, unit_rows: bool = True
) -> FloatArray | None:
    """SLSQP from ``x`` under the constraints, adding cuts until the grids show no arbitrage.

    Only the first ``k`` of each slice's coordinates ``(a, c, d, m, sigma)`` move (``k = 3``:
    ``(m, sigma)`` held, where the cost is quadratic and all but the butterfly and minimum-
    variance conditions are linear). SLSQP runs in coordinates whitened by the Gauss-Newton
    matrix at ``x`` (exact for ``k = 3``), so its identity start is a good Hessian. Returns
    the best iterate free of arbitrage on the checking grids (None if none was).

    With ``unit_rows`` the constraints are scaled to unit gradient at each round's start
    (the same half-spaces; g's gradient grows like ``1 / w^2``). Which scaling lets SLSQP
    reach a better arbitrage-free point depends on the chain, so the polish tries the other
    when the first finds nothing better.
    """
    n = pb.n
    _, jac = pb.residuals(x)
    t = np.zeros((5 * n, k * n))
    for i in range(n):
        cols = slice(5 * i, 5 * i + k)
        h = jac[:, cols].T @ jac[:, cols]
        # the ridge bounds the whitening where the quotes barely pin a parameter down
        h += (1e-6 * np.trace(h) + 1e-12) * np.eye(k)
        t[cols, k * i : k * i + k] = np.linalg.inv(np.linalg.cholesky(h).T)
    cache: dict[bytes, tuple[FloatArray, FloatArray]] = {}

    def at(z: FloatArray) -> tuple[FloatArray, FloatArray]:
        # SLSQP asks for the constraints and their Jacobian at the same point: build them once
        key = z.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = _constraints(x + t @ z, pb, cuts)
        return cache[key]

    def cost(z: FloatArray) -> tuple[float, FloatArray]:
        r, jac = pb.residuals(x + t @ z)
        return float(r @ r), 2.0 * (jac.T @ r) @ t

    best: FloatArray | None = x if pb.free(x) else None
    cost0 = cost(np.zeros(k * n))[0]
    best_cost = cost0 if best is not None else np.inf
    z = np.zeros(k * n)
    retried = False
    for _ in range(REFIT_ROUNDS):
        rn = np.ones(at(z)[0].size)
        if unit_rows:
            rn = np.maximum(np.linalg.norm(at(z)[1] @ t, axis=1), 1e-12)
        res = minimize(
            cost,
            z,
            jac=True,
            method="SLSQP",
            constraints=[
                {
                    "type": "ineq",
                    "fun": lambda z, rn=rn: at(z)[0] / rn,
                    "jac": lambda z, rn=rn: (at(z)[1] @ t) / rn[:, None],
                }
            ],
            options={"maxiter": REFIT_ITERATIONS, "ftol": FTOL * cost0},
        )
        if res.status not in (0, 9) or not np.isfinite(res.fun):
            # SLSQP lost its way (inconsistent linearisation): once, go on from the best
            # arbitrage-free point with the cuts found since; then keep the best
            if retried or best is None:
                break
            retried = True
            z = np.asarray(np.linalg.lstsq(t, best - x, rcond=None)[0], dtype=np.float64)
            cache.clear()
            continue
        z = res.x
        cache.clear()  # the cuts change below
        xz = x + t @ z
        if res.fun < best_cost and pb.free(xz):
            best, best_cost = xz, float(res.fun)
        new_g, new_c = pb.violations(xz)
        if not new_g and not new_c:
            break
        cuts.add(new_g, new_c)
    return best


def repair_surface(
    params: FloatArray,
    ys: list[FloatArray],
    ws: list[FloatArray],
    half: FloatArray,
    *,
    start: FloatArray | None = None,
) -> FloatArray:
    """Closest arbitrage-free surface to the quotes, by joint least squares under the conditions.

    Parameters
    ----------
    params : ndarray, shape (n, 5)
        Raw SVI ``(a, b, rho, m, sigma)`` per slice from the free fits, by increasing maturity
        (the start).
    ys, ws : list of ndarray
        Each slice's quotes: log-moneyness and total implied variance (years * vol^2).
    half : ndarray, shape (n,)
        Slice i's butterfly condition, and the calendar condition of the pair (i - 1, i), are
        held on ``|y| <= half[i]`` (checked on ``CHECK_POINTS`` points).
    start : ndarray, shape (n, 5), optional
        Raw SVI slices to start from instead of the free fits, such as the previous cycle's
        refitted surface of the same expiries: quotes that moved a little are then refitted
        in a few iterations (the first phase from ``start``, with its ``(m, sigma)`` held).
        A start free of arbitrage on the grids and as close to the quotes as a refit is asked
        to come (the polish's threshold: ``POLISH_ABOVE`` times the free fits' squared error,
        or ``POLISH_TOL`` of the vol) is returned as it is. Where no arbitrage-free point is
        reached from it, the refit starts from the free fits.

    Returns
    -------
    ndarray, shape (n, 5)
        The refitted raw SVI slices, free of butterfly and calendar arbitrage on the checking
        grids, with wing slopes ordered in maturity and within Lee's bound.

    Raises
    ------
    ValueError
        A bad argument (shapes, non-finite values).
    ChainUnusable
        A ``ValueError`` for quotes from which no arbitrage-free surface was reached (its
        ``detail`` says which condition still fails).

    Notes
    -----
    Two phases (module notes): first only ``(a, b, rho)`` move with each slice's
    ``(m, sigma)`` held, which reaches an arbitrage-free surface from the free fits in a few
    SLSQP iterations (from a point between the free fits and flat slices where it does not);
    then, where that refit's squared error exceeds the free fits' by more than
    ``POLISH_ABOVE`` and its RMS error is above ``POLISH_TOL`` of the vol (a fraction of any
    bid-ask spread), all five parameters move from there. Called on the main thread, it holds
    the BLAS libraries to one thread while it runs.
    """
    # SLSQP's small dense factorisations otherwise wake OpenBLAS's thread pool, whose spinning
    # workers cost more CPU than the refit itself. threadpoolctl lets one thread at a time set
    # the process-wide limit, so only a refit on the main thread sets it; on worker threads the
    # process's policy applies (the runner holds BLAS to one thread: v28quant.threads).
    if threading.current_thread() is not threading.main_thread():
        return _repair_surface(params, ys, ws, half, start)
    with _blas_controller().limit(limits=1, user_api="blas"):
        return _repair_surface(params, ys, ws, half, start)


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _repair_surface(
    params: FloatArray,
    ys: list[FloatArray],
    ws: list[FloatArray],
    half: FloatArray,
    start_params: FloatArray | None,
) -> FloatArray:
    p0 = np.array(params, dtype=np.float64)
    if p0.ndim != 2 or p0.shape[1] != 5:
        raise ValueError(f"params must have shape (n, 5) of raw SVI slices, got {p0.shape}")
    n = len(p0)
    if not len(ys) == len(ws) == len(half) == n:
        raise ValueError(
            f"one quote array each of ys and ws and one half-width per slice: {n} slices, "
            f"{len(ys)} ys, {len(ws)} ws, {len(half)} half-widths"
        )
    if not np.all(np.isfinite(p0)):
        raise ValueError("params must be finite")
    for i, (y, w) in enumerate(zip(ys, ws, strict=True)):
        if np.shape(y) != np.shape(w) or np.size(y) == 0:
            raise ValueError(f"ys[{i}] and ws[{i}] must be non-empty and of one shape")
        if not (np.all(np.isfinite(y)) and np.all(np.isfinite(w)) and np.all(np.asarray(w) > 0)):
            raise ValueError(f"ys[{i}] must be finite and ws[{i}] finite and > 0")
    if not np.all(np.isfinite(half) & (np.asarray(half) > 0)):
        raise ValueError("half must be finite and > 0")
    if start_params is not None:
        start_params = np.asarray(start_params, dtype=np.float64)
        if start_params.shape != p0.shape or not np.all(np.isfinite(start_params)):
            raise ValueError(
                f"start must be finite raw SVI slices of the shape of params {p0.shape}, "
                f"got {start_params.shape}"
            )
    level = np.array([float(np.mean(w)) for w in ws])
    w0 = p0[:, 0] + p0[:, 1] * (-p0[:, 2] * p0[:, 3] + np.hypot(p0[:, 3], p0[:, 4]))
    sd = np.sqrt(np.maximum(w0, 1e-8))
    scale = np.stack([level, level / sd, level / sd, sd, sd], axis=1)
    pb = _Problem(list(ys), list(ws), np.asarray(half, dtype=np.float64), level, scale)
    start = _coordinates(p0, sd)
    x = (start / scale).ravel()
    cuts = _Cuts(np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64), np.empty(0))
    # the squared error no refit needs to go below: the polish's threshold (see below)
    enough = max(POLISH_ABOVE * pb.cost(x), 4.0 * n * POLISH_TOL**2)
    best = None
    if start_params is not None:
        x_warm = (_coordinates(start_params, sd) / scale).ravel()
        if pb.cost(x_warm) <= enough and pb.free(x_warm):
            # the last surface still fits the quotes as closely as a refit is asked to
            return _raw(pb.params(x_warm))
        cuts.add(*pb.violations(x_warm))
        best = _refit(x_warm, pb, cuts, 3)
    if best is None:
        cuts.add(*pb.violations(x))
        best = _refit(x, pb, cuts, 3)
    if best is None:
        best = _refit(x, pb, cuts, 3, unit_rows=False)
    if best is None:
        # From the free fits SLSQP found no arbitrage-free point: start it from one, the
        # first on the way from the free fits to flat slices (w_i = the running maximum of
        # the ATM variances: g = 1, ordered) that the grids find free.
        zero = np.zeros(n)
        m, s = p0[:, 3], p0[:, 4]
        flat = np.stack([np.maximum.accumulate(w0 + 1e-3 * level), zero, zero, m, s], 1)
        for lam in np.linspace(0.1, 1.0, 10):
            x_lam = (((1.0 - lam) * start + lam * flat) / scale).ravel()
            if pb.free(x_lam):
                best = _refit(x_lam, pb, cuts, 3)
                break
    if best is None:
        raise ChainUnusable(
            "SVI refit: no arbitrage-free surface reached", pb.first_failure(x) or ""
        )
    # Polish only where holding (m, sigma) cost real accuracy: most surfaces with arbitrage
    # (noisy quotes, a crossing far out) are within a few per cent of the free fits already,
    # or within a small fraction of a spread of the quotes. The cost is the slices' mean
    # squared error in total variance relative to the level, about 4x that in relative vol.
    for unit_rows in (True, False):
        if pb.cost(best) <= enough:
            break
        polished = _refit(best, pb, cuts, 5, unit_rows)
        if polished is not None and not np.array_equal(polished, best):
            best = polished
            break
    return _raw(pb.params(best))


def _raw(p: FloatArray) -> FloatArray:
    """Convert the solver's rows ``(a, c, d, m, sigma)`` to raw SVI ``(a, b, rho, m, sigma)``."""
    a, c, d, m, s = p.T
    c = np.maximum(c, 0.0)  # SLSQP meets c >= |d| / RHO_MAX to rounding
    rho = np.clip(np.divide(d, c, out=np.zeros_like(c), where=c > 0.0), -RHO_MAX, RHO_MAX)
    return np.stack([a, c, rho, m, s], axis=1)


def _coordinates(p: FloatArray, sd: FloatArray) -> FloatArray:
    """Raw SVI rows ``(a, b, rho, m, sigma)`` -> the solver's ``(a, c = b, d = b rho, m, sigma)``.

    ``rho`` and ``b`` are clipped into the region the linear conditions allow (``|rho| <
    RHO_MAX``, Lee's bound) and ``sigma`` to at least 1 % of the slice's ATM standard
    deviation ``sd``, so SLSQP starts from a point it can linearise.
    """
    a, b, rho, m, s = p.T
    rho = np.clip(rho, -0.99, 0.99)
    b = np.clip(b, 0.0, 1.99 / (1.0 + np.abs(rho)))
    return np.stack([a, b, b * rho, m, np.maximum(s, 1e-2 * sd)], axis=1)
