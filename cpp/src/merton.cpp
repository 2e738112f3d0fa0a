#include "v28/merton.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "v28/bsm.hpp"
#include "v28/check.hpp"
#include "v28/normal.hpp"

namespace v28::merton {

namespace {

// Per-term factors of the series for one (t, rate, div, params). With w_n the Poisson(lam' t)
// weights and p_n the Poisson(lam t) weights, w_n e^{-r_n t} = e^{-rate t} p_n, so a call term is
// w_n spot e^{-div t} N(d1) - p_n strike e^{-rate t} N(d1 - sd_n), d1 = (ln(spot/strike) + drift_n)
// / sd_n + sd_n / 2, and the put term is mirrored. Both weights are formed in log space
// (ln p_n = -m + n ln m - ln n!) and the sum runs outward from the modes, so no factor under- or
// overflows however large lam t or mu_j is (e^{-lam t} alone is 0 once lam t > 745).
struct Series {
    std::vector<double> w, p, sd, drift;  // drift_n = (r_n - div) t
    double dq = 1.0, df = 1.0;

    // Index range [lo, hi) outside which Poisson(m) has mass below `tol` on each side:
    // P[X > n] <= p_{n+1} / (1 - m / (n + 2)) once n + 2 > m, P[X < n] <= p_{n-1} / (1 - (n-1)/m)
    // once n - 1 < m (ratios of consecutive weights bounded by a geometric series).
    static void poisson_range(double m, double tol, long& lo, long& hi) {
        const long mode = static_cast<long>(std::floor(m));
        auto lp = [m](long k) { return log_poisson(m, k); };
        hi = mode + 1;
        while (!(hi + 1 > m && std::exp(lp(hi)) / (1.0 - m / (hi + 1)) <= tol)) ++hi;
        lo = mode;
        while (lo > 0 && !(lo - 1 < m && std::exp(lp(lo - 1)) / (1.0 - (lo - 1) / m) <= tol)) --lo;
    }

    static double log_poisson(double m, long k) {
        if (m == 0.0) return k == 0 ? 0.0 : -INFINITY;
        return -m + k * std::log(m) - std::lgamma(k + 1.0);
    }

    void build(double t, double rate, double div, const Params& prm) {
        w.clear();
        p.clear();
        sd.clear();
        drift.clear();
        dq = std::exp(-div * t);
        df = std::exp(-rate * t);
        const double log1k = prm.mu_j + 0.5 * prm.delta_j * prm.delta_j;  // ln(1 + kbar)
        const double kbar = std::expm1(log1k);
        const double lt = prm.lam * t, lpt = lt * std::exp(log1k);
        if (!std::isfinite(lpt)) {
            throw std::domain_error("Merton series cannot be summed: lam * t * e^(mu_j + delta_j^2 "
                                    "/ 2) overflows (lam " + std::to_string(prm.lam) + ", t " +
                                    std::to_string(t) + ", mu_j " + std::to_string(prm.mu_j) + ")");
        }
        // About 16 sqrt(m) + 40 terms reach the tolerance; refuse before looping past max_terms.
        if (16.0 * std::sqrt(std::max(lt, lpt)) + 40.0 > static_cast<double>(max_terms)) {
            throw std::domain_error("Merton series needs more than " + std::to_string(max_terms) +
                                    " terms: lam * t = " + std::to_string(lt) +
                                    ", lam' * t = " + std::to_string(lpt));
        }
        // Remainder bounds (see header): call terms are at most spot e^{-div t}, put terms at
        // most strike e^{-rate t}, so each weight's neglected mass is held below the tolerance.
        const double tol = series_tolerance;
        long lo_w, hi_w, lo_p, hi_p;
        poisson_range(lpt, tol, lo_w, hi_w);
        poisson_range(lt, tol, lo_p, hi_p);
        const long lo = std::min(lo_w, lo_p), hi = std::max(hi_w, hi_p);
        if (hi - lo > max_terms) {
            throw std::domain_error("Merton series needs " + std::to_string(hi - lo) +
                                    " terms (more than " + std::to_string(max_terms) +
                                    "): lam * t = " + std::to_string(lt) +
                                    ", lam' * t = " + std::to_string(lpt));
        }
        for (long n = lo; n < hi; ++n) {
            w.push_back(std::exp(log_poisson(lpt, n)));
            p.push_back(std::exp(log_poisson(lt, n)));
            sd.push_back(std::sqrt(prm.vol * prm.vol * t + n * prm.delta_j * prm.delta_j));
            drift.push_back(rate * t - lt * kbar + n * log1k - div * t);
        }
    }

    double price(double spot, double strike, bool call) const {
        const double lsk = std::log(spot / strike);
        const double s_q = spot * dq, k_r = strike * df;
        double sum = 0.0;
        for (std::size_t n = 0; n < w.size(); ++n) {
            double term;
            if (sd[n] > 0.0) {
                const double d1 = (lsk + drift[n]) / sd[n] + 0.5 * sd[n];
                const double d2 = d1 - sd[n];
                term = call ? w[n] * s_q * norm_cdf(d1) - p[n] * k_r * norm_cdf(d2)
                            : p[n] * k_r * norm_cdf(-d2) - w[n] * s_q * norm_cdf(-d1);
            } else {
                // Deterministic given n jumps: S_t = spot e^{drift_n}.
                const double fwd_value = (call ? 1.0 : -1.0) * (w[n] * s_q - p[n] * k_r);
                term = fwd_value > 0.0 ? fwd_value : 0.0;
            }
            sum += term;
        }
        // Rounding can leave the sum a few ulps outside the no-arbitrage bounds.
        const double lower = std::max(call ? s_q - k_r : k_r - s_q, 0.0);
        const double upper = call ? s_q : k_r;
        return std::clamp(sum, lower, upper);
    }
};

}  // namespace

void check_params(const Params& p, std::size_t i) {
    require_nonnegative("vol", p.vol, i);
    require_nonnegative("lam", p.lam, i);
    require_finite("mu_j", p.mu_j, i);
    require_nonnegative("delta_j", p.delta_j, i);
}

double price(double spot, double strike, double t, double rate, double div, const Params& p,
             bool call) {
    if (p.lam == 0.0 || t == 0.0) return bsm::price(spot, strike, t, rate, div, p.vol, call);
    Series s;
    s.build(t, rate, div, p);
    return s.price(spot, strike, call);
}

void price(std::span<const double> spot, std::span<const double> strike,
           std::span<const double> t, std::span<const double> rate, std::span<const double> div,
           std::span<const double> vol, std::span<const double> lam,
           std::span<const double> mu_j, std::span<const double> delta_j,
           std::span<const std::uint8_t> call, std::span<double> out) {
    const std::size_t n = spot.size();
    for (auto [name, m] : {std::pair{"strike", strike.size()}, {"t", t.size()},
                           {"rate", rate.size()}, {"div", div.size()}, {"vol", vol.size()},
                           {"lam", lam.size()}, {"mu_j", mu_j.size()},
                           {"delta_j", delta_j.size()}, {"call", call.size()},
                           {"out", out.size()}}) {
        require_same_size((std::string("spot, ") + name).c_str(), n, m);
    }
    for (std::size_t i = 0; i < n; ++i) {
        bsm::check_inputs(spot[i], strike[i], t[i], rate[i], div[i], vol[i], i);
        check_params({vol[i], lam[i], mu_j[i], delta_j[i]}, i);
    }
    Series s;
    bool have = false;
    for (std::size_t i = 0; i < n; ++i) {
        const Params p{vol[i], lam[i], mu_j[i], delta_j[i]};
        if (p.lam == 0.0 || t[i] == 0.0) {
            // No jumps: the vectorised BSM kernel itself, so the result is BSM's to the bit.
            bsm::price(spot.subspan(i, 1), strike.subspan(i, 1), t.subspan(i, 1),
                       rate.subspan(i, 1), div.subspan(i, 1), vol.subspan(i, 1),
                       call.subspan(i, 1), out.subspan(i, 1));
            continue;
        }
        const bool same = have && i > 0 && t[i] == t[i - 1] && rate[i] == rate[i - 1] &&
                          div[i] == div[i - 1] && vol[i] == vol[i - 1] && lam[i] == lam[i - 1] &&
                          mu_j[i] == mu_j[i - 1] && delta_j[i] == delta_j[i - 1];
        if (!same) {
            s.build(t[i], rate[i], div[i], p);
            have = true;
        }
        out[i] = s.price(spot[i], strike[i], call[i] != 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Moment calibration

namespace {

// E|Y| for Y ~ N(m, v): the folded-normal mean.
double folded_mean(double m, double v) {
    const double s = std::sqrt(v);
    if (s == 0.0) return std::abs(m);
    return s * std::sqrt(2.0 / std::numbers::pi) * std::exp(-0.5 * m * m / v) +
           m * (1.0 - 2.0 * norm_cdf(-m / s));
}

struct Sample {
    double c2, c3, k4, mad;  // central moments, fourth cumulant, mean absolute deviation
};

// Relative residuals of the four moment conditions at x = (ln vol, ln lam, mu_j, ln delta_j).
Eigen::Vector4d moment_residuals(const Eigen::Vector4d& x, double dt, const Sample& s) {
    const double vol = std::exp(x[0]), lam = std::exp(x[1]), mu = x[2], del = std::exp(x[3]);
    const double l = lam * dt, d2 = del * del, m2 = mu * mu;
    const double k2 = vol * vol * dt + l * (m2 + d2);
    const double k3 = l * mu * (m2 + 3.0 * d2);
    const double k4 = l * (m2 * m2 + 6.0 * m2 * d2 + 3.0 * d2 * d2);
    // E|r - E r|: given n jumps, r - E r ~ N(n mu - l mu, vol^2 dt + n delta^2).
    double mad = 0.0, pn = std::exp(-l), cum = 0.0;
    for (int n = 0; n < 1000; ++n) {
        mad += pn * folded_mean((n - l) * mu, vol * vol * dt + n * d2);
        cum += pn;
        if (1.0 - cum < 1e-15 && n > l) break;
        pn *= l / (n + 1);
    }
    const double c2_15 = std::pow(s.c2, 1.5);
    return {k2 / s.c2 - 1.0, (k3 - s.c3) / c2_15, (k4 - s.k4) / (s.c2 * s.c2), mad / s.mad - 1.0};
}

std::string fmt(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", x);
    return buf;
}

}  // namespace

MomentFit calibrate_moments(std::span<const double> returns, double dt) {
    const std::size_t n = returns.size();
    if (n < 20) fail_arg("len(returns)", ">= 20", static_cast<double>(n));
    require_positive("dt", dt);
    require_finite("returns", returns);
    double mean = 0.0;
    for (double r : returns) mean += r;
    mean /= static_cast<double>(n);
    double c2 = 0.0, c3 = 0.0, c4 = 0.0, mad = 0.0;
    for (double r : returns) {
        const double e = r - mean, e2 = e * e;
        c2 += e2;
        c3 += e2 * e;
        c4 += e2 * e2;
        mad += std::abs(e);
    }
    const double nn = static_cast<double>(n);
    c2 /= nn;
    c3 /= nn;
    c4 /= nn;
    mad /= nn;
    if (!(c2 > 0.0)) fail_arg("variance of returns", "> 0", c2);
    MomentFit fit;
    fit.drift = mean / dt;
    fit.variance = c2;
    fit.skewness = c3 / std::pow(c2, 1.5);
    fit.excess_kurtosis = c4 / (c2 * c2) - 3.0;
    fit.mean_abs_deviation = mad;
    if (!(fit.excess_kurtosis > 0.0)) {
        throw std::domain_error("moments admit no Merton solution: excess kurtosis must be > 0, "
                                "got " + fmt(fit.excess_kurtosis));
    }
    const Sample s{c2, c3, c4 - 3.0 * c2 * c2, mad};

    // Start: diffusion variance from bipower variation, jumps from k2, k3, k4 with mu_j small.
    double bv = 0.0;
    for (std::size_t i = 1; i < n; ++i) bv += std::abs(returns[i] - mean) * std::abs(returns[i - 1] - mean);
    bv *= 0.5 * std::numbers::pi / (nn - 1.0);
    const double jump_var = std::max(c2 - bv, 0.2 * c2);
    const double vol_var = std::max(c2 - jump_var, 0.05 * c2);
    const double d2 = s.k4 / (3.0 * jump_var);
    Eigen::Vector4d x{0.5 * std::log(vol_var / dt), std::log(jump_var / d2 / dt),
                      c3 / (3.0 * jump_var), 0.5 * std::log(d2)};

    Eigen::Vector4d r = moment_residuals(x, dt, s);
    double lambda = 1e-3;
    int iter = 0;
    for (; iter < 200 && r.lpNorm<Eigen::Infinity>() > 1e-12; ++iter) {
        Eigen::Matrix4d jac;
        for (int j = 0; j < 4; ++j) {
            const double h = 1e-6 * std::max(1.0, std::abs(x[j]));
            Eigen::Vector4d xp = x, xm = x;
            xp[j] += h;
            xm[j] -= h;
            jac.col(j) = (moment_residuals(xp, dt, s) - moment_residuals(xm, dt, s)) / (2.0 * h);
        }
        const Eigen::Matrix4d jtj = jac.transpose() * jac;
        const Eigen::Vector4d g = jac.transpose() * r;
        bool accepted = false;
        for (int attempt = 0; attempt < 30 && !accepted; ++attempt) {
            Eigen::Matrix4d a = jtj;
            for (int j = 0; j < 4; ++j) a(j, j) += lambda * std::max(jtj(j, j), 1e-12);
            Eigen::Vector4d step = a.ldlt().solve(-g);
            // Keep the log-parameters from jumping by more than a factor e^3 per step.
            step = step.cwiseMax(-3.0).cwiseMin(3.0);
            const Eigen::Vector4d xt = x + step;
            const Eigen::Vector4d rt = moment_residuals(xt, dt, s);
            if (rt.allFinite() && rt.squaredNorm() < r.squaredNorm()) {
                x = xt;
                r = rt;
                lambda = std::max(lambda * 0.2, 1e-12);
                accepted = true;
            } else {
                lambda *= 8.0;
            }
        }
        if (!accepted) break;
    }
    fit.iterations = iter;
    fit.max_residual = r.lpNorm<Eigen::Infinity>();
    fit.params = {std::exp(x[0]), std::exp(x[1]), x[2], std::exp(x[3])};
    if (!(fit.max_residual < 1e-6)) {
        throw std::domain_error(
            "moments admit no Merton solution: closest fit misses a moment by " +
            fmt(fit.max_residual) + " (relative); variance " + fmt(c2) + ", skewness " +
            fmt(fit.skewness) + ", excess kurtosis " + fmt(fit.excess_kurtosis) +
            ", mean absolute deviation " + fmt(mad));
    }
    return fit;
}

}  // namespace v28::merton
