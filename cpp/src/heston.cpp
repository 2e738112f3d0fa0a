#include "v28/heston.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <tuple>

#include "heston_kernels.hpp"
#include "v28/bsm.hpp"
#include "v28/iv.hpp"
#include "v28/check.hpp"
#include "v28/simd_dispatch.hpp"

namespace v28::heston {

using cplx = std::complex<double>;

void check_params(const Params& p, std::size_t index) {
    require_nonnegative("v0", p.v0, index);
    require_positive("kappa", p.kappa, index);
    require_nonnegative("theta", p.theta, index);
    require_positive("sigma", p.sigma, index);
    if (!(p.rho > -1.0 && p.rho < 1.0)) fail_arg("rho", "in (-1, 1)", p.rho, index);
}

namespace {

// log(1 + y) without cancellation for small |y|.
cplx log1p_c(cplx y) {
    const double a = y.real(), b = y.imag();
    return {0.5 * std::log1p(2.0 * a + a * a + b * b), std::atan2(b, 1.0 + a)};
}

// ln psi(w) for w with i w = iw and i w + w^2 = q (q is u^2 + 1/4 on the Lewis contour).
cplx log_cf_parts(cplx iw, cplx q, double t, const Params& p) {
    const double s2 = p.sigma * p.sigma;
    const cplx beta = p.kappa - p.rho * p.sigma * iw;
    const cplx d = std::sqrt(beta * beta + s2 * q);
    const cplx bd = beta + d;
    const cplx dt = -q / bd;         // (beta - d) / sigma^2
    const cplx g = s2 * dt / bd;     // (beta - d) / (beta + d)
    const cplx e = std::exp(-d * t);
    const cplx one_m_e = 1.0 - e;
    const cplx dd = dt * one_m_e / (1.0 - g * e);
    const cplx y = g * one_m_e / (1.0 - g);
    const cplx c = p.kappa * p.theta * (dt * t - 2.0 * log1p_c(y) / s2);
    return c + dd * p.v0;
}

// 16-point Gauss-Legendre nodes and weights on [-1, 1] (Newton on P_16, to machine precision).
struct GaussLegendre16 {
    std::array<double, 16> x{}, w{};
    GaussLegendre16() {
        constexpr int n = 16;
        for (int i = 0; i < n; ++i) {
            double z = std::cos(std::numbers::pi * (i + 0.75) / (n + 0.5));
            double dp = 0.0;
            for (int it = 0; it < 100; ++it) {
                double p0 = 1.0, p1 = 0.0;
                for (int k = 1; k <= n; ++k) {
                    const double p2 = p1;
                    p1 = p0;
                    p0 = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p2) / k;
                }
                dp = n * (z * p0 - p1) / (z * z - 1.0);
                const double dz = p0 / dp;
                z -= dz;
                if (std::abs(dz) < 1e-16) break;
            }
            x[i] = z;
            w[i] = 2.0 / ((1.0 - z * z) * dp * dp);
        }
    }
};

const GaussLegendre16& gl16() {
    static const GaussLegendre16 rule;
    return rule;
}

// Per-expiry integral: nodes u_k and the weighted integrand coefficients
// c_k = w_k (psi(u_k - i/2) - psi_BS(u_k - i/2)) / (u_k^2 + 1/4).
struct Integral {
    std::vector<double> u, weight, re, im;
    double vol_cv = 0.0;
    void clear() {
        u.clear();
        weight.clear();
        re.clear();
        im.clear();
    }
};

double average_variance(double t, const Params& p) {
    const double kt = p.kappa * t;
    const double frac = kt > 1e-8 ? -std::expm1(-kt) / kt : 1.0 - 0.5 * kt;
    return std::max(p.theta + (p.v0 - p.theta) * frac, 1e-8);
}

// Coefficients on the given nodes (used alone when the nodes are frozen during calibration).
void fill_coefficients(double t, const Params& p, Integral& in, std::size_t from) {
    const double half_var_t = 0.5 * in.vol_cv * in.vol_cv * t;
    in.re.resize(in.u.size());
    in.im.resize(in.u.size());
    for (std::size_t k = from; k < in.u.size(); ++k) {
        const double u = in.u[k];
        const double q = u * u + 0.25;
        const cplx psi = std::exp(log_cf_parts(cplx(0.5, u), cplx(q, 0.0), t, p));
        const double bs = std::exp(-half_var_t * q);
        const double scale = in.weight[k] / q;
        in.re[k] = (psi.real() - bs) * scale;
        in.im[k] = psi.imag() * scale;
    }
}

constexpr int max_panels = 512;

// Adds Gauss-Legendre panels until the integrand and its tail are negligible (see header).
// Returns false when max_panels panels did not get there.
bool build_adaptive(double t, const Params& p, double xmax, Integral& in) {
    in.clear();
    in.vol_cv = std::sqrt(average_variance(t, p));
    const double width_cf = 4.0 / std::sqrt(in.vol_cv * in.vol_cv * t);
    const double width_osc = 5.0 * std::numbers::pi / std::max(xmax, 1e-3);
    const double h_max = std::min(width_cf, width_osc);
    constexpr double tol = 1e-13;  // relative to sqrt(F K) / pi, per unit of u
    const auto& gl = gl16();
    double env_prev = 0.0, a = 0.0, h = 0.0;
    for (int panel = 0; panel < max_panels; ++panel, a += h) {
        // Panels graded away from u = 0: psi(u - i/2) has singularities (moment explosions) on
        // the imaginary axis at distance >= 1/2 from the contour, so a panel [a, a + h] keeps
        // them outside its Bernstein ellipse when h <= max(1/2, 2 a).
        h = std::min(h_max, std::max(0.5, 2.0 * a));
        const std::size_t from = in.u.size();
        for (int i = 0; i < 16; ++i) {
            in.u.push_back(a + 0.5 * h * (gl.x[i] + 1.0));
            in.weight.push_back(0.5 * h * gl.w[i]);
        }
        fill_coefficients(t, p, in, from);
        double env = 0.0;
        for (std::size_t k = from; k < in.u.size(); ++k) {
            env = std::max(env, std::hypot(in.re[k], in.im[k]) / in.weight[k]);
        }
        // Tail beyond this panel for an envelope decaying at least exponentially.
        if (panel > 0 && env < env_prev) {
            const double rate = std::log(env_prev / std::max(env, 1e-300)) / h;
            if (env / rate < tol && env * h < tol) return true;
        }
        env_prev = env;
    }
    return false;
}

// sum_k re_k cos(u_k x) - im_k sin(u_k x), in vector lanes (heston_kernels.ipp).
double lewis_sum(const double* u, const double* re, const double* im, std::size_t n, double x) {
    switch (simd::level()) {
#if V28_SIMD_X86
        case simd::Level::avx512:
            return detail::lewis_sum_avx512(u, re, im, n, x);
        case simd::Level::avx2:
            return detail::lewis_sum_avx2(u, re, im, n, x);
#endif
        default:
            return detail::lewis_sum_base(u, re, im, n, x);
    }
}

// Price of one option from the expiry's integral.
double price_from(const Integral& in, double spot, double strike, double t, double rate,
                  double div, bool call) {
    const double fwd = spot * std::exp((rate - div) * t);
    const double df = std::exp(-rate * t);
    const double x = std::log(fwd / strike);
    const double sum = lewis_sum(in.u.data(), in.re.data(), in.im.data(), in.u.size(), x);
    const double c = bsm::price(spot, strike, t, rate, div, in.vol_cv, true) -
                     df * std::sqrt(fwd * strike) / std::numbers::pi * sum;
    // The quadrature error (about 1e-13 of the forward) can put a price a hair outside the
    // no-arbitrage bounds max(F - K, 0) df <= C <= F df (puts by parity); clamp it back in.
    const double fwd_df = df * fwd, k_df = df * strike;
    const double call_price = std::clamp(c, std::max(fwd_df - k_df, 0.0), fwd_df);
    return call ? call_price : std::clamp(call_price - (fwd_df - k_df), std::max(k_df - fwd_df, 0.0), k_df);
}

double max_log_moneyness(double spot, double t, double rate, double div,
                         std::span<const double> strike) {
    const double fwd = spot * std::exp((rate - div) * t);
    double xmax = 0.0;
    for (double k : strike) xmax = std::max(xmax, std::abs(std::log(fwd / k)));
    return xmax;
}

}  // namespace

cplx log_cf(cplx u, double t, const Params& p) {
    const cplx iu = cplx(0.0, 1.0) * u;
    return log_cf_parts(iu, iu + u * u, t, p);
}

void price_expiry(double spot, double t, double rate, double div, const Params& p,
                  std::span<const double> strike, std::span<const std::uint8_t> call,
                  std::span<double> out) {
    require_same_size("strike, call", strike.size(), call.size());
    require_same_size("strike, out", strike.size(), out.size());
    require_positive("spot", spot);
    require_nonnegative("t", t);
    require_finite("rate", rate);
    require_finite("div", div);
    check_params(p, no_index);
    require_positive("strike", strike);
    if (t == 0.0) {
        for (std::size_t i = 0; i < strike.size(); ++i) {
            out[i] = bsm::price(spot, strike[i], 0.0, rate, div, 0.0, call[i] != 0);
        }
        return;
    }
    Integral in;
    if (!build_adaptive(t, p, max_log_moneyness(spot, t, rate, div, strike), in)) {
        throw std::domain_error(
            "Heston quadrature did not converge in " + std::to_string(max_panels) +
            " panels (t " + std::to_string(t) + ", v0 " + std::to_string(p.v0) + ", kappa " +
            std::to_string(p.kappa) + ", theta " + std::to_string(p.theta) + ", sigma " +
            std::to_string(p.sigma) + ", rho " + std::to_string(p.rho) + ")");
    }
    for (std::size_t i = 0; i < strike.size(); ++i) {
        out[i] = price_from(in, spot, strike[i], t, rate, div, call[i] != 0);
    }
}

void price(std::span<const double> spot, std::span<const double> strike,
           std::span<const double> t, std::span<const double> rate, std::span<const double> div,
           std::span<const double> v0, std::span<const double> kappa,
           std::span<const double> theta, std::span<const double> sigma,
           std::span<const double> rho, std::span<const std::uint8_t> call,
           std::span<double> out) {
    const std::size_t n = spot.size();
    for (auto [name, m] : {std::pair{"strike", strike.size()}, {"t", t.size()},
                           {"rate", rate.size()}, {"div", div.size()}, {"v0", v0.size()},
                           {"kappa", kappa.size()}, {"theta", theta.size()},
                           {"sigma", sigma.size()}, {"rho", rho.size()}, {"call", call.size()},
                           {"out", out.size()}}) {
        require_same_size((std::string("spot, ") + name).c_str(), n, m);
    }
    for (std::size_t i = 0; i < n; ++i) {
        bsm::check_inputs(spot[i], strike[i], t[i], rate[i], div[i], 0.0, i);
        check_params({v0[i], kappa[i], theta[i], sigma[i], rho[i]}, i);
    }
    auto key = [&](std::size_t i) {
        return std::tuple(spot[i], t[i], rate[i], div[i], v0[i], kappa[i], theta[i], sigma[i],
                          rho[i]);
    };
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
    std::vector<double> ks, vals;
    std::vector<std::uint8_t> cs;
    for (std::size_t g = 0; g < n;) {
        std::size_t e = g + 1;
        while (e < n && key(order[e]) == key(order[g])) ++e;
        ks.clear();
        cs.clear();
        for (std::size_t j = g; j < e; ++j) {
            ks.push_back(strike[order[j]]);
            cs.push_back(call[order[j]]);
        }
        vals.assign(ks.size(), 0.0);
        const std::size_t i = order[g];
        price_expiry(spot[i], t[i], rate[i], div[i], {v0[i], kappa[i], theta[i], sigma[i], rho[i]},
                     ks, cs, vals);
        for (std::size_t j = g; j < e; ++j) out[order[j]] = vals[j - g];
        g = e;
    }
}

// ---------------------------------------------------------------------------------------------
// Calibration

namespace {

using Vec5 = Eigen::Matrix<double, 5, 1>;

Vec5 to_vec(const Params& p) { return {p.v0, p.kappa, p.theta, p.sigma, p.rho}; }
Params to_params(const Vec5& v) { return {v[0], v[1], v[2], v[3], v[4]}; }

const char* const param_names[5] = {"v0", "kappa", "theta", "sigma", "rho"};

void check_bounds(const Bounds& b, const Params& initial) {
    const Vec5 lo = to_vec(b.lower), hi = to_vec(b.upper), x = to_vec(initial);
    check_params(b.lower, no_index);
    check_params(b.upper, no_index);
    for (int j = 0; j < 5; ++j) {
        if (!(lo[j] < hi[j])) {
            throw std::invalid_argument(std::string("bounds: lower.") + param_names[j] + " = " +
                                        std::to_string(lo[j]) + " must be < upper." +
                                        param_names[j] + " = " + std::to_string(hi[j]));
        }
        if (!(x[j] >= lo[j] && x[j] <= hi[j])) {
            throw std::invalid_argument(std::string("initial.") + param_names[j] + " = " +
                                        std::to_string(x[j]) + " must lie in [" +
                                        std::to_string(lo[j]) + ", " + std::to_string(hi[j]) + "]");
        }
    }
}

// First-order optimality on the box: every gradient component that could still move the point
// inward changes the cost by under gradient_tolerance (relative) per relative parameter step.
bool stationary(const Vec5& p, const Vec5& grad, double cost, const Vec5& lo, const Vec5& hi) {
    for (int j = 0; j < 5; ++j) {
        const bool blocked = (p[j] <= lo[j] && grad[j] > 0.0) || (p[j] >= hi[j] && grad[j] < 0.0);
        if (blocked) continue;
        const double rel = std::abs(grad[j]) * std::max(std::abs(p[j]), 1e-3) /
                           std::max(cost, 1e-300);
        if (!(rel <= gradient_tolerance) && cost > 1e-28) return false;
    }
    return true;
}

// Quotes grouped by expiry (t, rate, div), each group with its own integral.
struct Problem {
    double spot;
    std::span<const double> strike, t, rate, div, market;
    std::span<const std::uint8_t> call;
    std::vector<double> weight;
    std::vector<std::vector<std::size_t>> groups;
    std::vector<double> group_xmax;
    std::vector<Integral> integrals;
    int evaluations = 0;

    // Rebuild each group's adaptive nodes at p (kept for the Jacobian and the trial steps);
    // false when some expiry's quadrature did not converge.
    bool build_nodes(const Params& p) {
        bool ok = true;
        for (std::size_t g = 0; g < groups.size(); ++g) {
            const std::size_t i0 = groups[g][0];
            ok = build_adaptive(t[i0], p, group_xmax[g], integrals[g]) && ok;
        }
        return ok;
    }

    // Model prices on the frozen nodes.
    void model(const Params& p, Eigen::VectorXd& out) {
        ++evaluations;
        for (std::size_t g = 0; g < groups.size(); ++g) {
            Integral& in = integrals[g];
            const std::size_t i0 = groups[g][0];
            in.vol_cv = std::sqrt(average_variance(t[i0], p));
            fill_coefficients(t[i0], p, in, 0);
            for (std::size_t i : groups[g]) {
                out[static_cast<Eigen::Index>(i)] =
                    price_from(in, spot, strike[i], t[i], rate[i], div[i], call[i] != 0);
            }
        }
    }

    void residuals(const Params& p, Eigen::VectorXd& r) {
        model(p, r);
        for (Eigen::Index i = 0; i < r.size(); ++i) {
            const auto k = static_cast<std::size_t>(i);
            r[i] = weight[k] * (r[i] - market[k]);
        }
    }
};

}  // namespace

Calibration calibrate(double spot, std::span<const double> strike, std::span<const double> t,
                      std::span<const double> rate, std::span<const double> div,
                      std::span<const std::uint8_t> call, std::span<const double> market_price,
                      std::span<const double> weight, const Params& initial, const Bounds& bounds,
                      int max_iterations) {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t n = strike.size();
    for (auto [name, m] : {std::pair{"t", t.size()}, {"rate", rate.size()}, {"div", div.size()},
                           {"call", call.size()}, {"market_price", market_price.size()}}) {
        require_same_size((std::string("strike, ") + name).c_str(), n, m);
    }
    if (!weight.empty()) require_same_size("strike, weight", n, weight.size());
    if (n < 5) fail_arg("number of quotes", ">= 5 (five parameters)", static_cast<double>(n));
    require_positive("spot", spot);
    for (std::size_t i = 0; i < n; ++i) {
        bsm::check_inputs(spot, strike[i], t[i], rate[i], div[i], 0.0, i);
        require_positive("t", t[i], i);
        require_positive("market_price", market_price[i], i);
        if (!weight.empty()) require_nonnegative("weight", weight[i], i);
    }
    check_params(initial, no_index);
    check_bounds(bounds, initial);

    Problem pb{spot, strike, t, rate, div, market_price, call, {}, {}, {}, {}, 0};
    pb.weight.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (!weight.empty()) {
            pb.weight[i] = weight[i];
            continue;
        }
        const double iv = bsm::implied_vol(market_price[i], spot, strike[i], t[i], rate[i],
                                            div[i], call[i] != 0);
        if (!std::isfinite(iv)) {
            throw std::domain_error("market_price outside the no-arbitrage bounds at index " +
                                    std::to_string(i) + "; no implied volatility for the weight");
        }
        bsm::Greeks g;
        bsm::price_greeks(spot, strike[i], t[i], rate[i], div[i], iv, call[i] != 0, g);
        pb.weight[i] = 1.0 / std::max(g.vega, 1e-8 * spot);
    }
    // Group by expiry.
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    auto key = [&](std::size_t i) { return std::tuple(t[i], rate[i], div[i]); };
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
    for (std::size_t j = 0; j < n; ++j) {
        if (j == 0 || key(order[j]) != key(order[j - 1])) pb.groups.emplace_back();
        pb.groups.back().push_back(order[j]);
    }
    for (const auto& grp : pb.groups) {
        const std::size_t i0 = grp[0];
        const double fwd = spot * std::exp((rate[i0] - div[i0]) * t[i0]);
        double xmax = 0.0;
        for (std::size_t i : grp) xmax = std::max(xmax, std::abs(std::log(fwd / strike[i])));
        pb.group_xmax.push_back(xmax);
    }
    pb.integrals.resize(pb.groups.size());

    const Vec5 lo = to_vec(bounds.lower), hi = to_vec(bounds.upper);
    Vec5 p = to_vec(initial);
    const auto ni = static_cast<Eigen::Index>(n);
    Eigen::VectorXd r(ni), r_try(ni), r_h(ni);
    Eigen::Matrix<double, Eigen::Dynamic, 5> jac(ni, 5);
    double lambda = 1e-3;
    Calibration out;

    bool nodes_ok = pb.build_nodes(to_params(p));
    pb.residuals(to_params(p), r);
    double cost = r.squaredNorm();
    for (int iter = 0; iter < max_iterations; ++iter) {
        // Forward-difference Jacobian on the frozen nodes (step inside the bounds).
        for (int j = 0; j < 5; ++j) {
            double h = 1e-7 * std::max(std::abs(p[j]), 1e-2);
            if (p[j] + h > hi[j]) h = -h;
            Vec5 ph = p;
            ph[j] += h;
            pb.residuals(to_params(ph), r_h);
            jac.col(j) = (r_h - r) / h;
        }
        const Eigen::Matrix<double, 5, 5> jtj = jac.transpose() * jac;
        const Vec5 grad = jac.transpose() * r;
        bool accepted = false;
        double step_norm = 0.0;
        bool flat = false;
        for (int attempt = 0; attempt < 20 && !accepted; ++attempt) {
            Eigen::Matrix<double, 5, 5> a = jtj;
            for (int j = 0; j < 5; ++j) a(j, j) += lambda * std::max(jtj(j, j), 1e-12);
            const Vec5 step = a.ldlt().solve(-grad);
            const Vec5 p_try = (p + step).cwiseMax(lo).cwiseMin(hi);
            pb.residuals(to_params(p_try), r_try);
            const double cost_try = r_try.squaredNorm();
            if (std::isfinite(cost_try) && cost_try < cost) {
                const Vec5 d = p_try - p;
                step_norm = (d.cwiseQuotient(p.cwiseAbs().cwiseMax(1e-3))).norm();
                // MINPACK's ftol test: the step's actual and its Gauss-Newton predicted
                // decrease are both below cost_tolerance of the cost
                const double predicted = -(2.0 * grad.dot(d) + d.dot(jtj * d));
                flat = cost - cost_try <= cost_tolerance * cost &&
                       predicted <= cost_tolerance * cost;
                p = p_try;
                cost = cost_try;
                r = r_try;
                lambda = std::max(lambda * 0.2, 1e-12);
                accepted = true;
            } else {
                lambda *= 8.0;
            }
        }
        if (!accepted) {
            // No downhill step left: converged only if the first-order condition holds, i.e.
            // the projected gradient is negligible, or the Gauss-Newton model itself sees no
            // decrease above the cost's rounding (see header), not merely because LM stalled.
            const double gn_decrease = grad.dot(jtj.ldlt().solve(grad));
            out.converged = stationary(p, grad, cost, lo, hi) ||
                            (std::isfinite(gn_decrease) &&
                             std::abs(gn_decrease) <= model_decrease_tolerance * cost);
            break;
        }
        out.iterations = iter + 1;
        if (step_norm < 1e-10 || cost < 1e-28 || flat) {
            out.converged = true;
            break;
        }
        nodes_ok = pb.build_nodes(to_params(p)) && nodes_ok;
        pb.residuals(to_params(p), r);
        cost = r.squaredNorm();
    }
    out.params = to_params(p);
    // Final prices on fresh adaptive nodes.
    out.model_price.assign(n, 0.0);
    nodes_ok = pb.build_nodes(out.params) && nodes_ok;
    out.converged = out.converged && nodes_ok;
    Eigen::VectorXd final_prices(ni);
    pb.model(out.params, final_prices);
    double ss = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        out.model_price[i] = final_prices[static_cast<Eigen::Index>(i)];
        const double e = pb.weight[i] * (out.model_price[i] - market_price[i]);
        ss += e * e;
    }
    out.weight = pb.weight;
    out.rmse = std::sqrt(ss / static_cast<double>(n));
    out.evaluations = pb.evaluations;
    out.feller = 2.0 * out.params.kappa * out.params.theta >= out.params.sigma * out.params.sigma;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

}  // namespace v28::heston
