"""Riemannian geometry of two-dimensional metrics (compiled core).

Two metrics: the Fisher-Rao metric of the normal family in ``(mu, sigma)``,
``ds^2 = (dmu^2 + 2 dsigma^2) / sigma^2`` (twice the Poincare half-plane in ``(mu / sqrt 2,
sigma)``, Gaussian curvature -1/2), and the metric induced on a height field ``z = f(x, y)``
given on a grid, ``g = I + grad f grad f^T`` with ``f`` a not-a-knot bicubic spline. For both:
the metric tensor, Christoffel symbols ``Gamma^k_ij`` (array index ``[..., k, i, j]``) and the
Gaussian curvature; geodesics by the adaptive Dormand-Prince 5(4) method with dense output and
geodesic distance by shooting.

References
----------
S. Amari, H. Nagaoka (2000), "Methods of Information Geometry", AMS, sec. 2.3.
M. P. do Carmo (1976), "Differential Geometry of Curves and Surfaces", sec. 3.3 and 4.3.
E. Hairer, S. P. Norsett, G. Wanner (1993), "Solving ODEs I", sec. II.4-II.6.
"""

from __future__ import annotations

from typing import NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from v28quant import _core
from v28quant._typing import FloatArray

__all__ = [
    "FisherNormalMetric",
    "Geodesic",
    "HeightFieldMetric",
    "geodesic",
    "geodesic_distance",
]


def _points(points: ArrayLike) -> tuple[NDArray[np.float64], tuple[int, ...]]:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {p.shape}")
    return np.ascontiguousarray(p).reshape(-1), p.shape[:-1]


class _Metric:
    _core_metric: _core.FisherNormalCore | _core.HeightFieldCore

    def metric(self, points: ArrayLike) -> NDArray[np.float64]:
        """Metric tensor ``g_ij`` at ``points`` (..., 2) -> (..., 2, 2)."""
        flat, lead = _points(points)
        return np.asarray(_core.geometry_metric(self._core_metric, flat)).reshape(*lead, 2, 2)

    def christoffel(self, points: ArrayLike) -> NDArray[np.float64]:
        """Christoffel symbols at ``points`` (..., 2) -> (..., 2, 2, 2); [k, i, j] = Gamma^k_ij."""
        flat, lead = _points(points)
        out = _core.geometry_christoffel(self._core_metric, flat)
        return np.asarray(out).reshape(*lead, 2, 2, 2)

    @overload
    def gaussian_curvature(self, points: tuple[float, float]) -> float: ...

    @overload
    def gaussian_curvature(self, points: ArrayLike) -> float | FloatArray: ...

    def gaussian_curvature(self, points: ArrayLike) -> float | FloatArray:
        """Gaussian curvature at ``points`` (..., 2) -> (...); a float for a single point."""
        flat, lead = _points(points)
        out = np.asarray(_core.geometry_gaussian_curvature(self._core_metric, flat))
        return float(out[0]) if lead == () else out.reshape(lead)


class FisherNormalMetric(_Metric):
    """Fisher-Rao metric of ``N(mu, sigma^2)`` in ``(mu, sigma)``.

    ``ds^2 = (dmu^2 + 2 dsigma^2) / sigma^2``; defined for ``sigma > 0``.
    """

    def __init__(self) -> None:
        self._core_metric = _core.FisherNormalCore()


class HeightFieldMetric(_Metric):
    """Metric induced on the graph ``z = f(x, y)`` by the Euclidean metric of R^3.

    Parameters
    ----------
    x : array_like, shape (nx,)
        Strictly increasing grid in the first coordinate (nx >= 4).
    y : array_like, shape (ny,)
        Strictly increasing grid in the second coordinate (ny >= 4).
    z : array_like, shape (nx, ny)
        Heights ``z[i, j] = f(x[i], y[j])`` (``indexing="ij"``).

    Notes
    -----
    ``f`` is the tensor-product not-a-knot cubic spline through the grid values: twice
    continuously differentiable, exact for cubic polynomials. Points outside the grid's rectangle
    raise ``ValueError``.
    """

    def __init__(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> None:
        xx = np.ascontiguousarray(x, dtype=np.float64).ravel()
        yy = np.ascontiguousarray(y, dtype=np.float64).ravel()
        zz = np.ascontiguousarray(z, dtype=np.float64)
        if zz.shape != (xx.size, yy.size):
            raise ValueError(
                f"z must have shape (len(x), len(y)) = {(xx.size, yy.size)}, got {zz.shape}"
            )
        self._height_field = _core.HeightFieldCore(xx, yy, zz.ravel())
        self._core_metric = self._height_field

    def derivatives(self, points: ArrayLike) -> NDArray[np.float64]:
        """Spline ``(f, f_x, f_y, f_xx, f_xy, f_yy)`` at ``points`` (..., 2) -> (..., 6)."""
        flat, lead = _points(points)
        return np.asarray(self._height_field.derivatives(flat)).reshape(*lead, 6)


class Geodesic(NamedTuple):
    """A sampled geodesic: times ``t`` (n,), positions ``x`` (n, 2), velocities ``v`` (n, 2)."""

    t: NDArray[np.float64]
    x: NDArray[np.float64]
    v: NDArray[np.float64]


def _point(name: str, value: ArrayLike) -> NDArray[np.float64]:
    """``value`` as two coordinates, else a ``ValueError`` naming ``name``."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != 2:
        raise ValueError(f"{name} must have 2 coordinates, got shape {arr.shape}")
    return arr.reshape(2)


def geodesic(
    metric: FisherNormalMetric | HeightFieldMetric,
    x0: ArrayLike,
    v0: ArrayLike,
    t_end: float,
    n_points: int = 1000,
    rtol: float = 1e-10,
    atol: float | None = None,
) -> Geodesic:
    """Geodesic ``x'' = -Gamma(x)(x', x')`` from ``x(0) = x0``, ``x'(0) = v0`` on ``[0, t_end]``.

    Integrated by the adaptive Dormand-Prince 5(4) method (PI step control, error per step
    ``<= atol + rtol |y|`` in RMS norm) and sampled at ``n_points`` equally spaced times by its
    fourth-order dense output. ``atol`` defaults to ``rtol``. The parameter ``t`` is affine:
    the speed ``sqrt(v' g v)`` is constant along the curve.
    """
    p0 = _point("x0", x0)
    q0 = _point("v0", v0)
    at = rtol if atol is None else atol
    t, x, v, *_ = _core.geometry_geodesic(
        metric._core_metric,
        p0[0],
        p0[1],
        q0[0],
        q0[1],
        float(t_end),
        int(n_points),
        float(rtol),
        float(at),
    )
    return Geodesic(t, x, v)


def geodesic_distance(
    metric: FisherNormalMetric | HeightFieldMetric, a: ArrayLike, b: ArrayLike, rtol: float = 1e-11
) -> float:
    """Length of the geodesic from ``a`` to ``b`` found by shooting.

    Newton's method (finite-difference Jacobian, backtracking, continuation in the target when
    needed) on the initial velocity ``v`` of the geodesic with ``x(0) = a`` and ``x(1) = b``; the
    distance is ``sqrt(v' g(a) v)``. This is the length of *a* geodesic joining the points: the
    minimising one when the straight-line guess lies in its basin, as for the half-plane.
    Raises ``ValueError`` when the shooting does not converge.
    """
    pa = _point("a", a)
    pb = _point("b", b)
    d, *_ = _core.geometry_distance(metric._core_metric, pa[0], pa[1], pb[0], pb[1], float(rtol))
    return float(d)
