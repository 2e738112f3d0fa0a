"""Fisher-Rao geometry of the normal family, vectorised, for the manifold regime detector.

In ``(mu, sigma)`` the Fisher information metric of ``N(mu, sigma^2)`` is
``ds^2 = (dmu^2 + 2 dsigma^2) / sigma^2``; with ``u = mu / sqrt 2`` it is twice the Poincare
half-plane metric, so the geodesic distance has the closed form

``d = sqrt 2 * arccosh(1 + ((mu1 - mu2)^2 / 2 + (sigma1 - sigma2)^2) / (2 sigma1 sigma2))``.

The metric tensor and Christoffel symbols come from the compiled core
(:class:`v28quant.geometry.FisherNormalMetric`); the tests check the closed form against the
core's geodesic shooting (:func:`v28quant.geometry.geodesic_distance`).

References
----------
S. Amari, H. Nagaoka (2000), "Methods of Information Geometry", AMS, sec. 2.3.
S. I. R. Costa, S. A. Santos, J. E. Strapasson (2015), "Fisher information distance: a geometrical
reading", Discrete Applied Mathematics 197, eq. (9).
J. M. Lee (1997), "Riemannian Manifolds", ch. 8 (geodesic curvature).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from v28quant.geometry import FisherNormalMetric

_METRIC = FisherNormalMetric()


def fisher_rao_distance(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Geodesic distance between ``N(a)`` and ``N(b)``, points ``(..., 2)`` = (mu, sigma).

    Broadcasts over leading dimensions; ``sigma`` must be > 0 (``ValueError`` otherwise).
    """
    p = np.asarray(a, dtype=np.float64)
    q = np.asarray(b, dtype=np.float64)
    if p.shape[-1] != 2 or q.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {p.shape} and {q.shape}")
    if (p[..., 1] <= 0).any() or (q[..., 1] <= 0).any():
        raise ValueError("sigma must be > 0 in every point")
    num = 0.5 * (p[..., 0] - q[..., 0]) ** 2 + (p[..., 1] - q[..., 1]) ** 2
    arg = 1.0 + num / (2.0 * p[..., 1] * q[..., 1])
    out: NDArray[np.float64] = np.sqrt(2.0) * np.arccosh(np.maximum(arg, 1.0))
    return out


def geodesic_curvature(x: ArrayLike, v: ArrayLike, acc: ArrayLike) -> NDArray[np.float64]:
    """Signed geodesic curvature in the Fisher metric of curves through ``x``.

    ``v`` is the coordinate velocity and ``acc`` the coordinate acceleration, each ``(..., 2)``.

    ``kappa = sqrt(det g) (v^1 A^2 - v^2 A^1) / |v|_g^3`` with the covariant acceleration
    ``A^k = acc^k + Gamma^k_ij v^i v^j`` (Lee 1997, ch. 8). Zero along a geodesic; positive when
    the curve turns counter-clockwise in the (mu, sigma) chart. NaN where the speed is 0.
    """
    xx = np.asarray(x, dtype=np.float64)
    vv = np.asarray(v, dtype=np.float64)
    aa = np.asarray(acc, dtype=np.float64)
    g = _METRIC.metric(xx)
    gam = _METRIC.christoffel(xx)
    cov = aa + np.einsum("...kij,...i,...j->...k", gam, vv, vv)
    speed = np.sqrt(np.einsum("...i,...ij,...j->...", vv, g, vv))
    cross = vv[..., 0] * cov[..., 1] - vv[..., 1] * cov[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.sqrt(np.linalg.det(g)) * cross / speed**3
    out: NDArray[np.float64] = np.where(speed > 0, k, np.nan)
    return out
