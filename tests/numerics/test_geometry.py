"""Riemannian geometry: Christoffel symbols, curvature, geodesics and geodesic distance.

Independent sources: symbolic Christoffel symbols from sympy (Gamma^k_ij = 1/2 g^kl (d_i g_lj +
d_j g_li - d_l g_ij) applied to the metric's formula), the Poincare half-plane's closed-form
geodesics and distance, the sphere's great circles, and Gauss's curvature of a graph.

The Fisher metric of N(mu, sigma^2) is ds^2 = (dmu^2 + 2 dsigma^2) / sigma^2. With u = mu / sqrt2
it is 2 (du^2 + dsigma^2) / sigma^2: twice the Poincare metric (du^2 + dsigma^2) / sigma^2 of
curvature -1. Scaling a metric by c scales curvature by 1/c, so K = -1/2; lengths scale by
sqrt(c) = sqrt(2), and geodesics (as curves) are the half-plane's: half-circles centred on the
axis sigma = 0 in (u, sigma), traversed with hyperbolic arc length s = |v|_g t / sqrt(2):
u = c + R tanh(s + s0), sigma = R / cosh(s + s0).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from v28quant.geometry import (
    FisherNormalMetric,
    HeightFieldMetric,
    geodesic,
    geodesic_distance,
)


def sympy_christoffel(g, coords):
    """Gamma[k][i][j] of a 2x2 sympy metric, by the textbook formula."""
    ginv = g.inv()
    return [
        [
            [
                sp.simplify(
                    sum(
                        ginv[k, m]
                        * (
                            sp.diff(g[m, j], coords[i])
                            + sp.diff(g[m, i], coords[j])
                            - sp.diff(g[i, j], coords[m])
                        )
                        for m in range(2)
                    )
                    / 2
                )
                for j in range(2)
            ]
            for i in range(2)
        ]
        for k in range(2)
    ]


def test_fisher_christoffel_against_sympy():
    mu, s = sp.symbols("mu sigma", positive=True)
    g = sp.Matrix([[1 / s**2, 0], [0, 2 / s**2]])
    gam = sp.lambdify((mu, s), sympy_christoffel(g, (mu, s)))
    pts = np.array([[0.0, 1.0], [0.3, 0.2], [-2.0, 3.5], [5.0, 0.05]])
    got = FisherNormalMetric().christoffel(pts)
    assert got.shape == (4, 2, 2, 2)
    for p, gp in zip(pts, got, strict=True):
        np.testing.assert_allclose(
            gp, np.array(gam(*p), dtype=float), rtol=1e-14, atol=1e-14, err_msg=f"point {p}"
        )


def test_fisher_curvature_is_minus_half():
    # Derivation in the module docstring: twice the Poincare metric, K = -1 / 2.
    pts = np.array([[0.0, 1.0], [1.5, 0.1], [-3.0, 7.0]])
    np.testing.assert_allclose(FisherNormalMetric().gaussian_curvature(pts), -0.5, rtol=1e-13)
    assert FisherNormalMetric().gaussian_curvature([0.2, 0.4]) == pytest.approx(-0.5, rel=1e-13)


@pytest.mark.parametrize(
    ("x0", "v0", "t_end"), [((0.0, 1.0), (1.0, 0.5), 3.0), ((1.0, 0.3), (-0.4, -0.2), 2.5)]
)
def test_fisher_geodesic_is_semicircle(x0, v0, t_end):
    # Source: exact half-plane geodesic (module docstring). Tolerance 1e-9 absolute (the issue's
    # target at rtol = 1e-10).
    m = FisherNormalMetric()
    geo = geodesic(m, x0, v0, t_end, n_points=1000, rtol=1e-10)
    u0, s0 = x0[0] / np.sqrt(2), x0[1]
    du, ds = v0[0] / np.sqrt(2), v0[1]
    c = u0 + s0 * ds / du  # centre: the normal to the tangent meets sigma = 0
    R = np.hypot(u0 - c, s0)
    speed = np.hypot(du, ds) / s0  # hyperbolic arc length per unit t
    sgn = np.sign(du)
    a0 = np.arctanh((u0 - c) / R)
    arg = a0 + sgn * speed * geo.t
    exact_u, exact_s = c + R * np.tanh(arg), R / np.cosh(arg)
    err = max(
        np.max(np.abs(geo.x[:, 0] / np.sqrt(2) - exact_u)), np.max(np.abs(geo.x[:, 1] - exact_s))
    )
    assert err < 1e-9, f"x0={x0} v0={v0}: max error {err}"
    assert geo.t.shape == (1000,)
    assert geo.x.shape == (1000, 2)
    assert geo.v.shape == (1000, 2)
    # Affine parametrisation: constant speed |v|_g.
    g = m.metric(geo.x)
    sp2 = np.einsum("ni,nij,nj->n", geo.v, g, geo.v)
    np.testing.assert_allclose(sp2, sp2[0], rtol=1e-8)


def test_fisher_vertical_geodesic():
    # mu fixed: sigma(t) = sigma0 exp(|v|_g t / sqrt 2) (closed form of the half-plane).
    geo = geodesic(FisherNormalMetric(), (0.5, 0.2), (0.0, 0.3), 2.0, n_points=50)
    lam = (0.3 / 0.2) * np.sqrt(2) / np.sqrt(2)
    np.testing.assert_allclose(geo.x[:, 1], 0.2 * np.exp(lam * geo.t), rtol=1e-9)
    np.testing.assert_allclose(geo.x[:, 0], 0.5, atol=1e-14)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((0.0, 1.0), (3.0, 2.0)),
        ((0.0, 1.0), (30.0, 1.0)),
        ((-1.0, 0.1), (2.0, 0.5)),
        ((0.0, 1.0), (0.0, 4.0)),
    ],
)
def test_fisher_distance_closed_form(a, b):
    # Fisher-Rao distance of normals (Atkinson & Mitchell 1981; Costa et al. 2015, eq. 11):
    # sqrt2 arccosh(1 + ((mu1 - mu2)^2 / 2 + (s1 - s2)^2) / (2 s1 s2)). Relative 1e-9.
    exact = np.sqrt(2) * np.arccosh(
        1 + ((a[0] - b[0]) ** 2 / 2 + (a[1] - b[1]) ** 2) / (2 * a[1] * b[1])
    )
    got = geodesic_distance(FisherNormalMetric(), a, b)
    assert got == pytest.approx(exact, rel=1e-9), f"a={a} b={b}"


def _paraboloid():
    x, y = sp.symbols("x y", real=True)
    f = sp.Rational(1, 2) * x**2 + sp.Rational(1, 4) * y**2 + sp.Rational(1, 5) * x * y
    grid_x, grid_y = np.linspace(-1.0, 1.0, 21), np.linspace(-1.5, 1.2, 19)
    fz = sp.lambdify((x, y), f)
    z = fz(grid_x[:, None], grid_y[None, :])
    return x, y, f, HeightFieldMetric(grid_x, grid_y, z)


def test_paraboloid_christoffel_and_curvature_against_sympy():
    # The not-a-knot bicubic spline reproduces a quadratic exactly, so the induced metric's
    # symbols match sympy's to rounding (absolute 1e-10), at nodes and between them.
    x, y, f, metric = _paraboloid()
    fx, fy = sp.diff(f, x), sp.diff(f, y)
    g = sp.Matrix([[1 + fx**2, fx * fy], [fx * fy, 1 + fy**2]])
    gam = sp.lambdify((x, y), sympy_christoffel(g, (x, y)))
    k_gauss = sp.lambdify(
        (x, y),
        (sp.diff(f, x, 2) * sp.diff(f, y, 2) - sp.diff(f, x, y) ** 2) / (1 + fx**2 + fy**2) ** 2,
    )
    pts = np.array([[0.0, 0.0], [0.37, -0.81], [-0.93, 1.1], [0.5, 0.5], [0.999, -1.49]])
    got = metric.christoffel(pts)
    for p, gp in zip(pts, got, strict=True):
        np.testing.assert_allclose(gp, np.array(gam(*p), dtype=float), atol=1e-10, err_msg=f"{p}")
    np.testing.assert_allclose(
        metric.gaussian_curvature(pts), [k_gauss(*p) for p in pts], atol=1e-10
    )


def _sphere(radius=2.0, n=81, half=0.6):
    g = np.linspace(-half * radius, half * radius, n)
    z = np.sqrt(radius**2 - g[:, None] ** 2 - g[None, :] ** 2)
    return HeightFieldMetric(g, g, z)


def _lift(p, radius):
    return np.array([p[0], p[1], np.sqrt(radius**2 - p[0] ** 2 - p[1] ** 2)])


def test_sphere_curvature():
    # Source: a sphere of radius R has K = 1 / R^2. The spline's second derivatives are accurate
    # to O(h^2) (h = 0.015 R, h^2 = 2e-4 relative): relative tolerance 5e-4.
    radius = 2.0
    m = _sphere(radius)
    pts = np.array([[0.0, 0.0], [0.31, -0.52], [-0.8, 0.77], [0.5, 0.11]])
    np.testing.assert_allclose(m.gaussian_curvature(pts), 1 / radius**2, rtol=5e-4)


def test_sphere_geodesic_is_great_circle():
    # The geodesic stays in the plane through the centre spanned by the start point and the
    # lifted initial velocity; its distance matches the great-circle distance R arccos(pa.pb/R^2).
    # Tolerances: 1e-6 (spline of the hemisphere on an 81 x 81 grid).
    radius = 2.0
    m = _sphere(radius)
    x0, v0 = np.array([-0.6, -0.4]), np.array([0.5, 0.35])
    geo = geodesic(m, x0, v0, 2.0, n_points=200)
    p0 = _lift(x0, radius)
    dz = -(x0 @ v0) / p0[2]
    normal = np.cross(p0, np.array([v0[0], v0[1], dz]))
    normal /= np.linalg.norm(normal)
    off = np.array([normal @ _lift(p, radius) for p in geo.x])
    assert np.max(np.abs(off)) < 1e-6 * radius, f"max distance from the great-circle plane {off}"

    for a, b in [((-0.6, -0.4), (0.7, 0.5)), ((0.0, 0.0), (0.9, -0.3)), ((-1.0, 0.8), (0.6, -1.1))]:
        pa, pb = _lift(a, radius), _lift(b, radius)
        exact = radius * np.arccos(np.clip(pa @ pb / radius**2, -1, 1))
        got = geodesic_distance(m, a, b)
        assert got == pytest.approx(exact, rel=1e-6), f"a={a} b={b}"


def test_bad_input():
    m = FisherNormalMetric()
    with pytest.raises(ValueError, match="sigma > 0"):
        m.christoffel([0.0, -1.0])
    with pytest.raises(ValueError, match="points must have shape"):
        m.christoffel([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="t_end must be > 0"):
        geodesic(m, (0.0, 1.0), (1.0, 0.0), -1.0)
    hf = _sphere()
    with pytest.raises(ValueError, match="grid's rectangle"):
        hf.gaussian_curvature([5.0, 0.0])
    with pytest.raises(ValueError, match="z must have shape"):
        HeightFieldMetric([0, 1, 2, 3], [0, 1, 2, 3], np.zeros((4, 3)))
    with pytest.raises(ValueError, match="at least 4 x 4"):
        HeightFieldMetric([0, 1, 2], [0, 1, 2, 3], np.zeros((3, 4)))
    with pytest.raises(ValueError, match="x must be strictly increasing"):
        HeightFieldMetric([0, 1, 1, 3], [0, 1, 2, 3], np.zeros((4, 4)))


def test_points_of_the_wrong_size_name_the_argument() -> None:
    # A wrong-size x0 once gave a bare numpy reshape error.
    from v28quant.geometry import FisherNormalMetric, geodesic, geodesic_distance

    m = FisherNormalMetric()
    with pytest.raises(ValueError, match=r"^x0 must have 2 coordinates, got shape \(3,\)"):
        geodesic(m, [0.0, 1.0, 2.0], [1.0, 0.0], 1.0)
    with pytest.raises(ValueError, match=r"^v0 must have 2 coordinates"):
        geodesic(m, [0.0, 1.0], [1.0], 1.0)
    with pytest.raises(ValueError, match=r"^b must have 2 coordinates"):
        geodesic_distance(m, [0.0, 1.0], [[1.0, 2.0], [3.0, 4.0]])
