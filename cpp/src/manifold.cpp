#include "v28/manifold.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "v28/check.hpp"

namespace v28::manifold {

void christoffel_from_jet(const Jet& j, Christoffel& G) {
    const double det = j.g[0][0] * j.g[1][1] - j.g[0][1] * j.g[1][0];
    const double inv[2][2] = {{j.g[1][1] / det, -j.g[0][1] / det},
                              {-j.g[1][0] / det, j.g[0][0] / det}};
    // First-kind symbols Gamma_lij = 1/2 (d_i g_lj + d_j g_li - d_l g_ij).
    double first[2][2][2];
    for (int l = 0; l < 2; ++l)
        for (int i = 0; i < 2; ++i)
            for (int k = 0; k < 2; ++k)
                first[l][i][k] = 0.5 * (j.dg[i][l][k] + j.dg[k][l][i] - j.dg[l][i][k]);
    for (int k = 0; k < 2; ++k)
        for (int i = 0; i < 2; ++i)
            for (int m = 0; m < 2; ++m)
                G[k][i][m] = inv[k][0] * first[0][i][m] + inv[k][1] * first[1][i][m];
}

double brioschi_curvature(const Jet& j) {
    const double E = j.g[0][0], F = j.g[0][1], G = j.g[1][1];
    const double Eu = j.dg[0][0][0], Ev = j.dg[1][0][0];
    const double Fu = j.dg[0][0][1], Fv = j.dg[1][0][1];
    const double Gu = j.dg[0][1][1], Gv = j.dg[1][1][1];
    const double Evv = j.ddg[1][1][0][0], Fuv = j.ddg[0][1][0][1], Guu = j.ddg[0][0][1][1];
    Eigen::Matrix3d m1, m2;
    m1 << -0.5 * Evv + Fuv - 0.5 * Guu, 0.5 * Eu, Fu - 0.5 * Ev,
        Fv - 0.5 * Gu, E, F,
        0.5 * Gv, F, G;
    m2 << 0.0, 0.5 * Ev, 0.5 * Gu,
        0.5 * Ev, E, F,
        0.5 * Gu, F, G;
    const double det = E * G - F * F;
    return (m1.determinant() - m2.determinant()) / (det * det);
}

namespace {

[[noreturn]] void outside(const char* what, const Point& p) {
    std::ostringstream msg;
    msg << what << ", got point (" << p[0] << ", " << p[1] << ")";
    throw std::domain_error(msg.str());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Fisher-Rao metric of N(mu, sigma^2): E = 1/sigma^2, F = 0, G = 2/sigma^2.

void FisherNormal::jet(const Point& p, Jet& j, bool second) const {
    const double s = p[1];
    if (!(s > 0.0) || !std::isfinite(p[0]) || !std::isfinite(s)) {
        outside("the Fisher normal metric needs sigma > 0 and finite mu", p);
    }
    j = Jet{};
    const double s2 = 1.0 / (s * s), s3 = s2 / s;
    j.g[0][0] = s2;
    j.g[1][1] = 2.0 * s2;
    j.dg[1][0][0] = -2.0 * s3;
    j.dg[1][1][1] = -4.0 * s3;
    if (second) {
        const double s4 = s3 / s;
        j.ddg[1][1][0][0] = 6.0 * s4;
        j.ddg[1][1][1][1] = 12.0 * s4;
    }
}

void FisherNormal::christoffel(const Point& p, Christoffel& G) const {
    // Closed form of christoffel_from_jet for this metric (the geodesic right-hand side):
    // Gamma^mu_{mu sigma} = -1/sigma, Gamma^sigma_{mu mu} = 1/(2 sigma), Gamma^sigma_{sigma sigma}
    // = -1/sigma, the rest 0.
    const double s = p[1];
    if (!(s > 0.0) || !std::isfinite(p[0]) || !std::isfinite(s)) {
        outside("the Fisher normal metric needs sigma > 0 and finite mu", p);
    }
    const double inv = 1.0 / s;
    G[0][0][0] = 0.0;
    G[0][0][1] = G[0][1][0] = -inv;
    G[0][1][1] = 0.0;
    G[1][0][0] = 0.5 * inv;
    G[1][0][1] = G[1][1][0] = 0.0;
    G[1][1][1] = -inv;
}

double FisherNormal::gaussian_curvature(const Point& p) const {
    Jet j;
    jet(p, j, true);
    return brioschi_curvature(j);
}

// ---------------------------------------------------------------------------------------------
// Height field: tensor-product not-a-knot cubic spline.

namespace {

// S with M = S f: the spline's second derivatives at the nodes from the values, not-a-knot
// ends (third derivative continuous at x_1 and x_{n-2}).
Eigen::MatrixXd second_derivative_operator(std::span<const double> x) {
    const auto n = static_cast<Eigen::Index>(x.size());
    Eigen::MatrixXd A = Eigen::MatrixXd::Zero(n, n), B = Eigen::MatrixXd::Zero(n, n);
    auto h = [&](Eigen::Index i) { return x[static_cast<std::size_t>(i + 1)] - x[static_cast<std::size_t>(i)]; };
    for (Eigen::Index i = 1; i + 1 < n; ++i) {
        A(i, i - 1) = h(i - 1);
        A(i, i) = 2.0 * (h(i - 1) + h(i));
        A(i, i + 1) = h(i);
        B(i, i - 1) = 6.0 / h(i - 1);
        B(i, i) = -6.0 / h(i - 1) - 6.0 / h(i);
        B(i, i + 1) = 6.0 / h(i);
    }
    A(0, 0) = h(1);
    A(0, 1) = -(h(0) + h(1));
    A(0, 2) = h(0);
    A(n - 1, n - 3) = h(n - 2);
    A(n - 1, n - 2) = -(h(n - 3) + h(n - 2));
    A(n - 1, n - 1) = h(n - 3);
    return A.partialPivLu().solve(B);
}

// Cubic-spline basis on [x_i, x_i + h] at x: values (A, B, C, D) and first, second and third
// derivatives; C and D multiply the second derivatives at the cell's ends.
struct Basis {
    double v[4], d1[4], d2[4];
};

Basis basis(double xl, double hh, double x) {
    const double A = (xl + hh - x) / hh, B = 1.0 - A;
    Basis b;
    b.v[0] = A;
    b.v[1] = B;
    b.v[2] = (A * A * A - A) * hh * hh / 6.0;
    b.v[3] = (B * B * B - B) * hh * hh / 6.0;
    b.d1[0] = -1.0 / hh;
    b.d1[1] = 1.0 / hh;
    b.d1[2] = -(3.0 * A * A - 1.0) * hh / 6.0;
    b.d1[3] = (3.0 * B * B - 1.0) * hh / 6.0;
    b.d2[0] = 0.0;
    b.d2[1] = 0.0;
    b.d2[2] = A;
    b.d2[3] = B;
    return b;
}

std::size_t cell(const std::vector<double>& g, double x) {
    const auto it = std::upper_bound(g.begin(), g.end(), x);
    const auto i = static_cast<std::size_t>(it - g.begin());
    return std::clamp<std::size_t>(i == 0 ? 0 : i - 1, 0, g.size() - 2);
}

}  // namespace

HeightField::HeightField(std::span<const double> x, std::span<const double> y,
                         std::span<const double> z) {
    const std::size_t nx = x.size(), ny = y.size();
    if (nx < 4 || ny < 4) {
        throw std::invalid_argument("a height field needs at least 4 x 4 grid points, got " +
                                    std::to_string(nx) + " x " + std::to_string(ny));
    }
    require_same_size("z, len(x) * len(y)", z.size(), nx * ny);
    require_finite("x", x);
    require_finite("y", y);
    require_finite("z", z);
    for (std::size_t i = 1; i < nx; ++i)
        if (!(x[i] > x[i - 1])) fail_arg("x", "strictly increasing", x[i], i);
    for (std::size_t i = 1; i < ny; ++i)
        if (!(y[i] > y[i - 1])) fail_arg("y", "strictly increasing", y[i], i);
    x_.assign(x.begin(), x.end());
    y_.assign(y.begin(), y.end());
    z_.assign(z.begin(), z.end());
    using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const RowMat> Z(z.data(), static_cast<Eigen::Index>(nx), static_cast<Eigen::Index>(ny));
    const Eigen::MatrixXd Sx = second_derivative_operator(x), Sy = second_derivative_operator(y);
    const RowMat Mx = Sx * Z, My = Z * Sy.transpose(), Mxy = Mx * Sy.transpose();
    mx_.assign(Mx.data(), Mx.data() + nx * ny);
    my_.assign(My.data(), My.data() + nx * ny);
    mxy_.assign(Mxy.data(), Mxy.data() + nx * ny);
}

HeightField::Derivs HeightField::eval(const Point& p) const {
    const double tol = 1e-12;
    const double xs = tol * (x_.back() - x_.front()), ys = tol * (y_.back() - y_.front());
    if (!(p[0] >= x_.front() - xs && p[0] <= x_.back() + xs && p[1] >= y_.front() - ys &&
          p[1] <= y_.back() + ys)) {
        outside("the height field is defined on its grid's rectangle only", p);
    }
    const std::size_t i = cell(x_, p[0]), j = cell(y_, p[1]), ny = y_.size();
    const Basis bx = basis(x_[i], x_[i + 1] - x_[i], p[0]);
    const Basis by = basis(y_[j], y_[j + 1] - y_[j], p[1]);
    Derivs d{0, 0, 0, 0, 0, 0};
    for (int a = 0; a < 4; ++a) {
        const std::size_t ii = i + static_cast<std::size_t>(a & 1);
        for (int b = 0; b < 4; ++b) {
            const std::size_t jj = j + static_cast<std::size_t>(b & 1);
            const std::size_t at = ii * ny + jj;
            const double c = a < 2 ? (b < 2 ? z_[at] : my_[at]) : (b < 2 ? mx_[at] : mxy_[at]);
            d.f += c * bx.v[a] * by.v[b];
            d.fx += c * bx.d1[a] * by.v[b];
            d.fy += c * bx.v[a] * by.d1[b];
            d.fxx += c * bx.d2[a] * by.v[b];
            d.fxy += c * bx.d1[a] * by.d1[b];
            d.fyy += c * bx.v[a] * by.d2[b];
        }
    }
    return d;
}

void HeightField::derivatives(std::span<const double> points, std::span<double> out) const {
    if (points.size() % 2 != 0) throw std::invalid_argument("points must have shape (n, 2)");
    require_same_size("out, 3 * len(points)", out.size(), 3 * points.size());
    for (std::size_t i = 0; i < points.size() / 2; ++i) {
        const Derivs d = eval({points[2 * i], points[2 * i + 1]});
        const double row[6] = {d.f, d.fx, d.fy, d.fxx, d.fxy, d.fyy};
        std::copy(row, row + 6, out.begin() + static_cast<std::ptrdiff_t>(6 * i));
    }
}

void HeightField::jet(const Point& p, Jet& j, bool /*second*/) const {
    const Derivs d = eval(p);
    const double f1[2] = {d.fx, d.fy};
    const double f2[2][2] = {{d.fxx, d.fxy}, {d.fxy, d.fyy}};
    j = Jet{};
    for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b) {
            j.g[a][b] = (a == b ? 1.0 : 0.0) + f1[a] * f1[b];
            for (int k = 0; k < 2; ++k) j.dg[k][a][b] = f2[a][k] * f1[b] + f1[a] * f2[b][k];
        }
}

void HeightField::christoffel(const Point& p, Christoffel& G) const {
    Jet j;
    jet(p, j, false);
    christoffel_from_jet(j, G);
}

double HeightField::gaussian_curvature(const Point& p) const {
    const Derivs d = eval(p);
    const double q = 1.0 + d.fx * d.fx + d.fy * d.fy;
    return (d.fxx * d.fyy - d.fxy * d.fxy) / (q * q);
}

// ---------------------------------------------------------------------------------------------
// Vectorised evaluation, geodesics and shooting.

namespace {

void check_points(std::span<const double> points, std::size_t per_point, std::size_t n_out) {
    if (points.size() % 2 != 0) throw std::invalid_argument("points must have shape (n, 2)");
    require_same_size("out, points", n_out, points.size() / 2 * per_point);
    require_finite("points", points);
}

}  // namespace

template <class M>
void metric_tensor(const M& m, std::span<const double> points, std::span<double> out) {
    check_points(points, 4, out.size());
    for (std::size_t i = 0; i < points.size() / 2; ++i) {
        Jet j;
        m.jet({points[2 * i], points[2 * i + 1]}, j, false);
        for (int a = 0; a < 4; ++a) out[4 * i + static_cast<std::size_t>(a)] = j.g[a / 2][a % 2];
    }
}

template <class M>
void christoffel(const M& m, std::span<const double> points, std::span<double> out) {
    check_points(points, 8, out.size());
    for (std::size_t i = 0; i < points.size() / 2; ++i) {
        Christoffel G;
        m.christoffel({points[2 * i], points[2 * i + 1]}, G);
        std::copy(&G[0][0][0], &G[0][0][0] + 8, out.begin() + static_cast<std::ptrdiff_t>(8 * i));
    }
}

template <class M>
void gaussian_curvature(const M& m, std::span<const double> points, std::span<double> out) {
    check_points(points, 1, out.size());
    for (std::size_t i = 0; i < points.size() / 2; ++i) {
        out[i] = m.gaussian_curvature({points[2 * i], points[2 * i + 1]});
    }
}

namespace {

template <class M>
auto geodesic_rhs(const M& m) {
    return [&m](double, const std::array<double, 4>& y, std::array<double, 4>& dy) {
        Christoffel G;
        m.christoffel({y[0], y[1]}, G);
        dy[0] = y[2];
        dy[1] = y[3];
        for (int k = 0; k < 2; ++k) {
            dy[2 + k] = -(G[k][0][0] * y[2] * y[2] + 2.0 * G[k][0][1] * y[2] * y[3] +
                          G[k][1][1] * y[3] * y[3]);
        }
    };
}

}  // namespace

template <class M>
ode::Stats geodesic(const M& m, const Point& x0, const Point& v0, double t_end,
                    std::size_t n_points, double rtol, double atol, std::span<double> t,
                    std::span<double> x, std::span<double> v) {
    require_positive("t_end", t_end);
    if (n_points < 2) fail_arg("n_points", ">= 2", static_cast<double>(n_points));
    require_positive("rtol", rtol);
    require_positive("atol", atol);
    require_same_size("t, n_points", t.size(), n_points);
    require_same_size("x, 2 n_points", x.size(), 2 * n_points);
    require_same_size("v, 2 n_points", v.size(), 2 * n_points);
    require_finite("x0", std::span<const double>(x0));
    require_finite("v0", std::span<const double>(v0));
    for (std::size_t i = 0; i < n_points; ++i) {
        t[i] = i + 1 == n_points ? t_end : t_end * static_cast<double>(i) / static_cast<double>(n_points - 1);
    }
    std::vector<double> states(4 * n_points);
    const ode::Stats st = ode::dopri5<4>(geodesic_rhs(m), 0.0, {x0[0], x0[1], v0[0], v0[1]}, t,
                                         states, {rtol, atol});
    for (std::size_t i = 0; i < n_points; ++i) {
        x[2 * i] = states[4 * i];
        x[2 * i + 1] = states[4 * i + 1];
        v[2 * i] = states[4 * i + 2];
        v[2 * i + 1] = states[4 * i + 3];
    }
    return st;
}

namespace {

// x(1) of the geodesic from a with velocity v; false when it leaves the metric's domain.
template <class M>
bool endpoint(const M& m, const Point& a, const Point& v, double rtol, Point& xe) {
    const double t1[1] = {1.0};
    std::array<double, 4> y1{};
    try {
        ode::dopri5<4>(geodesic_rhs(m), 0.0, {a[0], a[1], v[0], v[1]}, t1, y1, {rtol, rtol});
    } catch (const std::domain_error&) {
        return false;
    }
    xe = {y1[0], y1[1]};
    return std::isfinite(xe[0]) && std::isfinite(xe[1]);
}

template <class M>
bool newton(const M& m, const Point& a, const Point& target, double rtol, double tol, Point& v,
            int& iters) {
    Point xe;
    if (!endpoint(m, a, v, rtol, xe)) return false;
    Eigen::Vector2d F(xe[0] - target[0], xe[1] - target[1]);
    for (int it = 0; it < 60; ++it) {
        ++iters;
        if (F.norm() <= tol) return true;
        Eigen::Matrix2d J;
        for (int c = 0; c < 2; ++c) {
            Point vp = v;
            const double eps = 1e-6 * std::max(1.0, std::hypot(v[0], v[1]));
            vp[c] += eps;
            Point xp;
            if (!endpoint(m, a, vp, rtol, xp)) {
                vp[c] = v[c] - eps;
                if (!endpoint(m, a, vp, rtol, xp)) return false;
                J(0, c) = (xe[0] - xp[0]) / eps;
                J(1, c) = (xe[1] - xp[1]) / eps;
            } else {
                J(0, c) = (xp[0] - xe[0]) / eps;
                J(1, c) = (xp[1] - xe[1]) / eps;
            }
        }
        const Eigen::Vector2d dv = J.fullPivLu().solve(-F);
        if (!dv.allFinite()) return false;
        double alpha = 1.0;
        bool moved = false;
        while (alpha > 1e-4) {
            const Point vt{v[0] + alpha * dv(0), v[1] + alpha * dv(1)};
            Point xt;
            if (endpoint(m, a, vt, rtol, xt)) {
                const Eigen::Vector2d Ft(xt[0] - target[0], xt[1] - target[1]);
                if (Ft.norm() < (1.0 - 1e-4 * alpha) * F.norm()) {
                    v = vt;
                    xe = xt;
                    F = Ft;
                    moved = true;
                    break;
                }
            }
            alpha *= 0.5;
        }
        if (!moved) return F.norm() <= 10.0 * tol;
    }
    return F.norm() <= tol;
}

}  // namespace

template <class M>
ShootingResult geodesic_distance(const M& m, const Point& a, const Point& b, double rtol) {
    require_positive("rtol", rtol);
    require_finite("a", std::span<const double>(a));
    require_finite("b", std::span<const double>(b));
    Jet ja, jb;
    m.jet(b, jb, false);  // both ends must lie in the metric's domain
    m.jet(a, ja, false);
    ShootingResult r;
    const double tol = std::max(1e-13, 10.0 * rtol) * (1.0 + std::max(std::abs(b[0]), std::abs(b[1])));
    Point v{b[0] - a[0], b[1] - a[1]};
    if (!(v[0] == 0.0 && v[1] == 0.0) && !newton(m, a, b, rtol, tol, v, r.iterations)) {
        // Continuation: move the target from a towards b, warm-starting each Newton solve.
        double lam = 0.0, step = 0.25;
        Point vc{0.0, 0.0};
        while (lam < 1.0) {
            const double lt = std::min(1.0, lam + step);
            Point tgt{a[0] + lt * (b[0] - a[0]), a[1] + lt * (b[1] - a[1])};
            Point vt = lam > 0.0 ? Point{vc[0] * lt / lam, vc[1] * lt / lam}
                                 : Point{tgt[0] - a[0], tgt[1] - a[1]};
            if (newton(m, a, tgt, rtol, tol, vt, r.iterations)) {
                lam = lt;
                vc = vt;
                step = std::min(0.5, 1.5 * step);
            } else {
                step *= 0.5;
                if (step < 1e-4) throw std::domain_error("geodesic_distance: shooting did not converge");
            }
        }
        v = vc;
    }
    Point xe{a};
    if (!(v[0] == 0.0 && v[1] == 0.0)) endpoint(m, a, v, rtol, xe);
    r.v0 = v;
    r.residual = std::hypot(xe[0] - b[0], xe[1] - b[1]);
    const double q = ja.g[0][0] * v[0] * v[0] + 2.0 * ja.g[0][1] * v[0] * v[1] + ja.g[1][1] * v[1] * v[1];
    r.distance = std::sqrt(std::max(q, 0.0));
    return r;
}

#define V28_MANIFOLD_INSTANTIATE(M)                                                              \
    template void metric_tensor<M>(const M&, std::span<const double>, std::span<double>);         \
    template void christoffel<M>(const M&, std::span<const double>, std::span<double>);           \
    template void gaussian_curvature<M>(const M&, std::span<const double>, std::span<double>);    \
    template ode::Stats geodesic<M>(const M&, const Point&, const Point&, double, std::size_t,    \
                                    double, double, std::span<double>, std::span<double>,         \
                                    std::span<double>);                                           \
    template ShootingResult geodesic_distance<M>(const M&, const Point&, const Point&, double);

V28_MANIFOLD_INSTANTIATE(FisherNormal)
V28_MANIFOLD_INSTANTIATE(HeightField)

}  // namespace v28::manifold
