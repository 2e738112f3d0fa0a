#include "v28/surface.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "v28/check.hpp"
#include "v28/normal.hpp"

namespace v28::surface {

namespace {
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
}

double Svi::w(double y) const {
    const double d = y - m;
    return a + b * (rho * d + std::sqrt(d * d + sigma * sigma));
}

void Svi::w_derivs(double y, double& w0, double& w1, double& w2) const {
    const double d = y - m;
    const double r = std::sqrt(d * d + sigma * sigma);
    w0 = a + b * (rho * d + r);
    w1 = b * (rho + d / r);
    w2 = b * sigma * sigma / (r * r * r);
}

void check_svi(const Svi& s, std::size_t index) {
    require_finite("a", s.a, index);
    require_nonnegative("b", s.b, index);
    if (!(std::abs(s.rho) < 1.0)) fail_arg("rho", "in (-1, 1)", s.rho, index);
    require_finite("m", s.m, index);
    require_positive("sigma", s.sigma, index);
    const double min_w = s.a + s.b * s.sigma * std::sqrt(1.0 - s.rho * s.rho);
    if (min_w < 0.0) fail_arg("a + b sigma sqrt(1 - rho^2) (minimum total variance)", ">= 0", min_w, index);
}

double butterfly_g(const Svi& s, double y) {
    double w, w1, w2;
    s.w_derivs(y, w, w1, w2);
    if (!(w > 0.0)) return nan;
    const double u = 1.0 - y * w1 / (2.0 * w);
    return u * u - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2;
}

void slice_eval(const Svi& s, std::span<const double> y, std::span<double> w,
                std::span<double> w1, std::span<double> w2, std::span<double> g) {
    const std::size_t n = y.size();
    require_same_size("y, w", n, w.size());
    require_same_size("y, w1", n, w1.size());
    require_same_size("y, w2", n, w2.size());
    require_same_size("y, g", n, g.size());
    check_svi(s, no_index);
    require_finite("y", y);
    for (std::size_t i = 0; i < n; ++i) {
        s.w_derivs(y[i], w[i], w1[i], w2[i]);
        g[i] = butterfly_g(s, y[i]);
    }
}

SviSurface::SviSurface(std::span<const double> expiries, std::span<const double> params,
                       std::span<const double> forwards, double spot) {
    const std::size_t n = expiries.size();
    if (n == 0) throw std::invalid_argument("expiries must not be empty");
    require_same_size("expiries, params rows", n, params.size() / 5);
    if (params.size() != 5 * n) {
        throw std::invalid_argument("params must have shape (n_expiries, 5), got " +
                                    std::to_string(params.size()) + " values for " +
                                    std::to_string(n) + " expiries");
    }
    require_same_size("expiries, forwards", n, forwards.size());
    require_positive("expiries", expiries);
    require_positive("forwards", forwards);
    for (std::size_t i = 1; i < n; ++i) {
        if (!(expiries[i] > expiries[i - 1])) {
            fail_arg("expiries", "strictly increasing", expiries[i], i);
        }
    }
    expiries_.assign(expiries.begin(), expiries.end());
    slices_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        slices_[i] = Svi{params[5 * i], params[5 * i + 1], params[5 * i + 2], params[5 * i + 3],
                         params[5 * i + 4]};
        check_svi(slices_[i], i);
    }
    if (spot > 0.0) {
        require_finite("spot", spot);
        fwd_t_.push_back(0.0);
        fwd_log_.push_back(std::log(spot));
    }
    for (std::size_t i = 0; i < n; ++i) {
        fwd_t_.push_back(expiries[i]);
        fwd_log_.push_back(std::log(forwards[i]));
    }
}

double SviSurface::log_forward(double t) const {
    const std::size_t n = fwd_t_.size();
    if (n == 1) return fwd_log_[0];
    // Segment [i, i+1] containing t, the end segments extended linearly.
    std::size_t i;
    if (t <= fwd_t_[0]) {
        i = 0;
    } else if (t >= fwd_t_[n - 1]) {
        i = n - 2;
    } else {
        i = static_cast<std::size_t>(std::upper_bound(fwd_t_.begin(), fwd_t_.end(), t) -
                                     fwd_t_.begin()) - 1;
    }
    const double slope = (fwd_log_[i + 1] - fwd_log_[i]) / (fwd_t_[i + 1] - fwd_t_[i]);
    return fwd_log_[i] + slope * (t - fwd_t_[i]);
}

double SviSurface::forward(double t) const { return std::exp(log_forward(t)); }

SviSurface::Weights SviSurface::weights(double t) const {
    const std::size_t n = expiries_.size();
    Weights k;
    if (t < expiries_[0]) {
        k.lo = k.hi = 0;
        k.c_lo = t / expiries_[0];
        k.d_lo = 1.0 / expiries_[0];
    } else if (t >= expiries_[n - 1]) {
        k.lo = k.hi = n - 1;
        k.c_lo = t / expiries_[n - 1];
        k.d_lo = 1.0 / expiries_[n - 1];
    } else {
        const auto it = std::upper_bound(expiries_.begin(), expiries_.end(), t);
        k.hi = static_cast<std::size_t>(it - expiries_.begin());
        k.lo = k.hi - 1;
        const double dt = expiries_[k.hi] - expiries_[k.lo];
        k.c_hi = (t - expiries_[k.lo]) / dt;
        k.c_lo = 1.0 - k.c_hi;
        k.d_hi = 1.0 / dt;
        k.d_lo = -k.d_hi;
    }
    return k;
}

double SviSurface::total_variance(double y, double t) const {
    const Weights k = weights(t);
    double w = k.c_lo * slices_[k.lo].w(y);
    if (k.c_hi != 0.0) w += k.c_hi * slices_[k.hi].w(y);
    return w;
}

void SviSurface::derivs(double y, double t, double& w, double& wy, double& wyy, double& wt) const {
    const Weights k = weights(t);
    double u0, u1, u2;
    slices_[k.lo].w_derivs(y, u0, u1, u2);
    w = k.c_lo * u0;
    wy = k.c_lo * u1;
    wyy = k.c_lo * u2;
    wt = k.d_lo * u0;
    if (k.hi != k.lo) {
        slices_[k.hi].w_derivs(y, u0, u1, u2);
        w += k.c_hi * u0;
        wy += k.c_hi * u1;
        wyy += k.c_hi * u2;
        wt += k.d_hi * u0;
    }
}

double SviSurface::local_variance(double y, double t) const {
    double den, wt;
    if (t < expiries_[0]) {
        // w = lam u(y) with lam = t / t_1: Gatheral's denominator rewritten in u so that the
        // limit t -> 0 is finite and exact.
        double u, u1, u2;
        slices_[0].w_derivs(y, u, u1, u2);
        const double lam = t / expiries_[0];
        wt = u / expiries_[0];
        den = 1.0 - y * u1 / u +
              0.25 * (-0.25 * lam * lam * u1 * u1 - lam * u1 * u1 / u + y * y * u1 * u1 / (u * u)) +
              0.5 * lam * u2;
    } else {
        double w, wy, wyy;
        derivs(y, t, w, wy, wyy, wt);
        den = 1.0 - y * wy / w + 0.25 * (-0.25 - 1.0 / w + y * y / (w * w)) * wy * wy + 0.5 * wyy;
    }
    if (!(den > 0.0) || !(wt >= 0.0)) return nan;
    return wt / den;
}

void total_variance(const SviSurface& s, std::span<const double> y, std::span<const double> t,
                    std::span<double> out) {
    require_same_size("y, t", y.size(), t.size());
    require_same_size("y, out", y.size(), out.size());
    require_finite("y", y);
    require_nonnegative("t", t);
    for (std::size_t i = 0; i < y.size(); ++i) out[i] = s.total_variance(y[i], t[i]);
}

void implied_vol(const SviSurface& s, std::span<const double> strike, std::span<const double> t,
                 std::span<double> out) {
    require_same_size("strike, t", strike.size(), t.size());
    require_same_size("strike, out", strike.size(), out.size());
    require_positive("strike", strike);
    require_positive("t", t);
    for (std::size_t i = 0; i < strike.size(); ++i) {
        const double y = std::log(strike[i]) - s.log_forward(t[i]);
        out[i] = std::sqrt(s.total_variance(y, t[i]) / t[i]);
    }
}

void forward(const SviSurface& s, std::span<const double> t, std::span<double> out) {
    require_same_size("t, out", t.size(), out.size());
    require_nonnegative("t", t);
    for (std::size_t i = 0; i < t.size(); ++i) out[i] = s.forward(t[i]);
}

// ---------------------------------------------------------------------------------------------
// Quasi-explicit fit.

namespace {

// Least squares in x = (a, d, c) over the Zeliade polytope {A x >= lb}: the objective is the
// convex quadratic x'Gx - 2h'x, so the minimiser lies in the relative interior of one face.
// Faces of codimension 1..3 are tried in turn by their KKT systems; the first feasible point
// whose multipliers are all non-negative satisfies the KKT conditions of the convex problem and
// is the minimiser, so the search stops there (most calls end within the six codimension-1
// faces). Should rounding leave no face with clean multipliers, the best feasible point wins.
struct InnerProblem {
    Eigen::Matrix3d G;
    Eigen::Vector3d h;
    double wsum = 0.0, yy = 0.0;
};

constexpr int n_cons = 6;
using KktMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, 6, 6>;
using KktVector = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, 6, 1>;

double inner_solve(const InnerProblem& p, double sigma, double a_max, Eigen::Vector3d& best) {
    Eigen::Matrix<double, n_cons, 3> A;
    Eigen::Matrix<double, n_cons, 1> lb;
    const double cap = 4.0 * sigma;
    A << 0, -1, 1,   // c - d >= 0
        0, 1, 1,     // c + d >= 0
        0, -1, -1,   // c + d <= 4 sigma
        0, 1, -1,    // c - d <= 4 sigma
        1, 0, 0,     // a >= 0
        -1, 0, 0;    // a <= max w
    lb << 0, 0, -cap, -cap, 0, -a_max;
    const double scale = std::max({1.0, a_max, cap});
    auto feasible = [&](const Eigen::Vector3d& x) {
        return ((A * x - lb).array() >= -1e-12 * scale).all();
    };
    auto objective = [&](const Eigen::Vector3d& x) { return x.dot(p.G * x) - 2.0 * p.h.dot(x); };

    double best_f = std::numeric_limits<double>::infinity();
    Eigen::LDLT<Eigen::Matrix3d> ldlt(p.G);
    if (ldlt.info() == Eigen::Success) {
        const Eigen::Vector3d x = ldlt.solve(p.h);
        if (x.allFinite() && feasible(x)) {
            best = x;
            return objective(x);
        }
    }
    // Active sets of size 1..3.
    std::array<int, 3> idx{};
    for (int k = 1; k <= 3; ++k) {
        // Enumerate combinations idx[0] < ... < idx[k-1].
        for (int i = 0; i < k; ++i) idx[i] = i;
        while (true) {
            const int m = 3 + k;
            // Fixed capacity: the KKT system lives on the stack (this runs ~10^5 times a surface).
            KktMatrix K = KktMatrix::Zero(m, m);
            KktVector rhs = KktVector::Zero(m);
            K.topLeftCorner<3, 3>() = 2.0 * p.G;
            rhs.head<3>() = 2.0 * p.h;
            for (int i = 0; i < k; ++i) {
                K.block<1, 3>(3 + i, 0) = A.row(idx[i]);
                K.block<3, 1>(0, 3 + i) = -A.row(idx[i]).transpose();
                rhs(3 + i) = lb(idx[i]);
            }
            const Eigen::FullPivLU<KktMatrix> lu(K);
            if (lu.rank() == m) {
                const KktVector sol = lu.solve(rhs);
                const Eigen::Vector3d x = sol.head<3>();
                if (x.allFinite() && feasible(x)) {
                    const double f = objective(x);
                    const auto lambda = sol.tail(k);
                    if (lambda.minCoeff() >= -1e-12 * std::max(1.0, lambda.cwiseAbs().maxCoeff())) {
                        best = x;
                        return f;
                    }
                    if (f < best_f) {
                        best_f = f;
                        best = x;
                    }
                }
            }
            int j = k - 1;
            while (j >= 0 && idx[j] == n_cons - k + j) --j;
            if (j < 0) break;
            ++idx[j];
            for (int i = j + 1; i < k; ++i) idx[i] = idx[i - 1] + 1;
        }
    }
    return best_f;
}

struct SliceData {
    std::span<const double> y, w, wt;
    double a_max = 0.0, wsum = 0.0, ww = 0.0;
};

// Weighted sum of squared residuals at (m, sigma) with the optimal (a, d, c); fills x.
double outer_objective(const SliceData& d, double m, double sigma, Eigen::Vector3d& x) {
    InnerProblem p;
    p.G.setZero();
    p.h.setZero();
    for (std::size_t i = 0; i < d.y.size(); ++i) {
        const double z = (d.y[i] - m) / sigma;
        const Eigen::Vector3d row(1.0, z, std::sqrt(z * z + 1.0));
        const double wi = d.wt.empty() ? 1.0 : d.wt[i];
        p.G.noalias() += wi * row * row.transpose();
        p.h += wi * d.w[i] * row;
    }
    const double f = inner_solve(p, sigma, d.a_max, x);
    return std::max(f + d.ww, 0.0);
}

}  // namespace

SviFit fit_slice(std::span<const double> y, std::span<const double> w,
                 std::span<const double> weights, int max_iter) {
    const std::size_t n = y.size();
    require_same_size("y, w", n, w.size());
    if (!weights.empty()) require_same_size("y, weights", n, weights.size());
    if (n < 5) throw std::invalid_argument("an SVI slice needs at least 5 quotes, got " + std::to_string(n));
    require_finite("y", y);
    require_positive("w", w);
    if (!weights.empty()) require_nonnegative("weights", weights);

    SliceData d{y, w, weights};
    double ymin = y[0], ymax = y[0];
    std::size_t i_min = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double wi = weights.empty() ? 1.0 : weights[i];
        d.a_max = std::max(d.a_max, w[i]);
        d.wsum += wi;
        d.ww += wi * w[i] * w[i];
        ymin = std::min(ymin, y[i]);
        ymax = std::max(ymax, y[i]);
        if (w[i] < w[i_min]) i_min = i;
    }
    if (!(d.wsum > 0.0)) throw std::invalid_argument("weights must not all be zero");
    const double span_y = std::max(ymax - ymin, 1e-6);
    const double m_lo = ymin - span_y, m_hi = ymax + span_y;
    const double ls_lo = std::log(1e-4 * span_y), ls_hi = std::log(10.0 * span_y + 1.0);

    int evals = 0;
    Eigen::Vector3d x;
    // Outer objective in (m, ln sigma); outside the box it is +inf so Nelder-Mead stays inside.
    auto f = [&](const Eigen::Vector2d& q) {
        ++evals;
        if (q(0) < m_lo || q(0) > m_hi || q(1) < ls_lo || q(1) > ls_hi) {
            return std::numeric_limits<double>::infinity();
        }
        return outer_objective(d, q(0), std::exp(q(1)), x);
    };

    auto nelder_mead = [&](Eigen::Vector2d start, double step, Eigen::Vector2d& best_q) {
        std::array<Eigen::Vector2d, 3> s{start, start + Eigen::Vector2d(step * span_y, 0.0),
                                         start + Eigen::Vector2d(0.0, 0.5)};
        std::array<double, 3> fs{f(s[0]), f(s[1]), f(s[2])};
        for (int it = 0; it < max_iter; ++it) {
            std::array<int, 3> o{0, 1, 2};
            std::sort(o.begin(), o.end(), [&](int i, int j) { return fs[i] < fs[j]; });
            const auto s0 = s;
            const auto f0 = fs;
            for (int i = 0; i < 3; ++i) {
                s[i] = s0[o[i]];
                fs[i] = f0[o[i]];
            }
            const double spread = std::abs(fs[2] - fs[0]);
            const double size = (s[1] - s[0]).cwiseAbs().maxCoeff() + (s[2] - s[0]).cwiseAbs().maxCoeff();
            if (spread <= 1e-15 * (d.ww + 1e-300) && size < 1e-9) break;
            const Eigen::Vector2d c = 0.5 * (s[0] + s[1]);
            const Eigen::Vector2d r = c + (c - s[2]);
            const double fr = f(r);
            if (fr < fs[0]) {
                const Eigen::Vector2d e = c + 2.0 * (c - s[2]);
                const double fe = f(e);
                if (fe < fr) { s[2] = e; fs[2] = fe; } else { s[2] = r; fs[2] = fr; }
            } else if (fr < fs[1]) {
                s[2] = r;
                fs[2] = fr;
            } else {
                const bool outside = fr < fs[2];
                const Eigen::Vector2d k = outside ? Eigen::Vector2d(c + 0.5 * (r - c))
                                                  : Eigen::Vector2d(c + 0.5 * (s[2] - c));
                const double fk = f(k);
                if (fk < std::min(fr, fs[2])) {
                    s[2] = k;
                    fs[2] = fk;
                } else {
                    for (int i = 1; i < 3; ++i) {
                        s[i] = s[0] + 0.5 * (s[i] - s[0]);
                        fs[i] = f(s[i]);
                    }
                }
            }
        }
        int ib = 0;
        for (int i = 1; i < 3; ++i) if (fs[i] < fs[ib]) ib = i;
        best_q = s[ib];
        return fs[ib];
    };

    // Several starts (vertex near the smallest variance or at the middle; narrow or wide
    // smile), then a restart from the best point to escape a collapsed simplex.
    double best_f = std::numeric_limits<double>::infinity();
    Eigen::Vector2d best_q(y[i_min], std::log(0.1 * span_y));
    for (double m0 : {y[i_min], 0.5 * (ymin + ymax)}) {
        for (double s0 : {0.05, 0.3, 1.0}) {
            Eigen::Vector2d q;
            const double fq = nelder_mead(Eigen::Vector2d(m0, std::log(s0 * span_y)), 0.1, q);
            if (fq < best_f) {
                best_f = fq;
                best_q = q;
            }
        }
    }
    Eigen::Vector2d q;
    const double fq = nelder_mead(best_q, 0.02, q);
    if (fq < best_f) {
        best_f = fq;
        best_q = q;
    }

    const double sigma = std::exp(best_q(1));
    outer_objective(d, best_q(0), sigma, x);
    SviFit out;
    out.params.a = x(0);
    out.params.b = x(2) / sigma;
    out.params.rho = x(2) > 0.0 ? std::clamp(x(1) / x(2), -1.0 + 1e-12, 1.0 - 1e-12) : 0.0;
    out.params.m = best_q(0);
    out.params.sigma = sigma;
    double sse = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double r = out.params.w(y[i]) - w[i];
        sse += (weights.empty() ? 1.0 : weights[i]) * r * r;
    }
    out.rmse = std::sqrt(sse / d.wsum);
    out.evaluations = evals;
    return out;
}

}  // namespace v28::surface
