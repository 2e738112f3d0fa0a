// Two-dimensional Riemannian metrics, their Christoffel symbols and Gaussian curvature,
// geodesics (initial-value problem, Dormand-Prince 5(4)) and geodesic distance (shooting).
//
// Metrics:
//  * FisherNormal: the Fisher-Rao metric of the normal family N(mu, sigma^2) in (mu, sigma),
//    ds^2 = (dmu^2 + 2 dsigma^2) / sigma^2 (Amari & Nagaoka 2000, "Methods of Information
//    Geometry", sec. 2.3). With mu' = mu / sqrt(2) it is 2 (dmu'^2 + dsigma^2) / sigma^2, twice
//    the Poincare half-plane: geodesics are half-circles centred on sigma = 0 and K = -1/2.
//  * HeightField: the metric induced on the graph z = f(x, y) by the Euclidean metric,
//    g = I + grad f grad f^T, with f a tensor-product not-a-knot cubic spline through values on
//    a rectilinear grid (de Boor 1978, "A Practical Guide to Splines", ch. IV and XVII); the
//    spline reproduces cubic polynomials exactly and has continuous second derivatives.
//
// Christoffel symbols Gamma^k_ij = 1/2 g^{kl} (d_i g_lj + d_j g_li - d_l g_ij) (do Carmo 1992,
// "Riemannian Geometry", ch. 2), stored as G[k][i][j]. Gaussian curvature by Brioschi's formula
// from the metric and its first and second derivatives, and for graphs by Gauss's formula
// K = (f_xx f_yy - f_xy^2) / (1 + f_x^2 + f_y^2)^2 (do Carmo 1976, "Differential Geometry of
// Curves and Surfaces", sec. 3.3, ex. 5).
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <vector>

#include "v28/ode.hpp"

namespace v28::manifold {

using Point = std::array<double, 2>;

// Metric g_ij, derivatives dg[k][i][j] = d_k g_ij and ddg[k][l][i][j] = d_k d_l g_ij.
struct Jet {
    double g[2][2]{};
    double dg[2][2][2]{};
    double ddg[2][2][2][2]{};
};

using Christoffel = double[2][2][2];

// Gamma^k_ij from a jet (uses g and dg only).
void christoffel_from_jet(const Jet& j, Christoffel& G);
// Brioschi's formula (uses g, dg, ddg).
double brioschi_curvature(const Jet& j);

class FisherNormal {
public:
    // Throws std::domain_error unless sigma = p[1] > 0.
    void jet(const Point& p, Jet& j, bool second) const;
    void christoffel(const Point& p, Christoffel& G) const;
    double gaussian_curvature(const Point& p) const;
};

class HeightField {
public:
    // x (nx), y (ny) strictly increasing with nx, ny >= 4; z row-major (nx, ny): z[i*ny + j] =
    // f(x_i, y_j).
    HeightField(std::span<const double> x, std::span<const double> y, std::span<const double> z);

    // f and its derivatives at p (std::domain_error outside the grid's rectangle).
    struct Derivs {
        double f, fx, fy, fxx, fxy, fyy;
    };
    Derivs eval(const Point& p) const;
    // Vectorised: flat (n, 2) points -> flat (n, 6) rows (f, fx, fy, fxx, fxy, fyy).
    void derivatives(std::span<const double> points, std::span<double> out) const;

    void jet(const Point& p, Jet& j, bool second) const;  // second derivatives not provided
    void christoffel(const Point& p, Christoffel& G) const;
    double gaussian_curvature(const Point& p) const;

private:
    std::vector<double> x_, y_, z_, mx_, my_, mxy_;  // values and spline second derivatives
};

// Vectorised over points (flat (n, 2)): metric (n, 2, 2), Christoffel (n, 2, 2, 2) as [k, i, j],
// Gaussian curvature (n).
template <class M>
void metric_tensor(const M& m, std::span<const double> points, std::span<double> out);
template <class M>
void christoffel(const M& m, std::span<const double> points, std::span<double> out);
template <class M>
void gaussian_curvature(const M& m, std::span<const double> points, std::span<double> out);

// Geodesic x'' = -Gamma(x)(x', x') from x(0) = x0, x'(0) = v0 on [0, t_end] sampled at
// n_points equally spaced times (dense output): t (n), x (n, 2), v (n, 2).
template <class M>
ode::Stats geodesic(const M& m, const Point& x0, const Point& v0, double t_end,
                    std::size_t n_points, double rtol, double atol, std::span<double> t,
                    std::span<double> x, std::span<double> v);

struct ShootingResult {
    double distance = 0.0;
    Point v0{};             // initial velocity of the geodesic a -> b on t in [0, 1]
    double residual = 0.0;  // Euclidean |x(1) - b| in coordinates
    int iterations = 0;
};

// Geodesic distance between a and b: Newton (finite-difference Jacobian, backtracking) on the
// initial velocity of the geodesic x(0) = a with target x(1) = b, with continuation in the
// target when Newton from the straight-line guess fails. distance = sqrt(v0' g(a) v0).
// Throws std::domain_error when no geodesic is found.
template <class M>
ShootingResult geodesic_distance(const M& m, const Point& a, const Point& b, double rtol);

}  // namespace v28::manifold
