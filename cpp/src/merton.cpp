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

// Per-term factors of the series for one (t, rate, div, params): term n is
// w_n [spot e^{-div t} N(d1) - strike df_n N(d1 - sd_n)] with d1 = (ln(spot/strike) + drift_n) / sd_n
// + sd_n / 2 (a call), put by the mirrored formula.
struct Series {
    std::vector<double> w, sd, drift, df;  // drift_n = (r_n - div) t, df_n = e^{-r_n t}
    double dq = 1.0;

    void build(double t, double rate, double div, const Params& p) {
        w.clear();
        sd.clear();
        drift.clear();
        df.clear();
        dq = std::exp(-div * t);
        const double kbar = std::expm1(p.mu_j + 0.5 * p.delta_j * p.delta_j);
        const double lt = p.lam * t, lpt = lt * (1.0 + kbar);
        const double log1k = p.mu_j + 0.5 * p.delta_j * p.delta_j;  // ln(1 + kbar)
        // Tail bounds: P[Poisson(m) > n] <= p_{n+1} / (1 - m / (n + 2)) once n + 2 > m.
        const double tol_call = series_tolerance * std::min(1.0, std::exp(div * t));
        const double tol_put = series_tolerance * std::min(1.0, std::exp(rate * t));
        double wn = std::exp(-lpt), pn = std::exp(-lt);  // Poisson(lam' t), Poisson(lam t)
        for (int n = 0; n < 10000; ++n) {
            w.push_back(wn);
            const double var = p.vol * p.vol * t + n * p.delta_j * p.delta_j;
            const double rn_t = rate * t - lt * kbar + n * log1k;
            sd.push_back(std::sqrt(var));
            drift.push_back(rn_t - div * t);
            df.push_back(std::exp(-rn_t));
            const double wnext = wn * lpt / (n + 1), pnext = pn * lt / (n + 1);
            if (n + 2 > lpt && n + 2 > lt) {
                const double tail_call = wnext / (1.0 - lpt / (n + 2));
                const double tail_put = pnext / (1.0 - lt / (n + 2));
                if (tail_call <= tol_call && tail_put <= tol_put) break;
            }
            wn = wnext;
            pn = pnext;
        }
    }

    double price(double spot, double strike, bool call) const {
        const double lsk = std::log(spot / strike);
        const double s_q = spot * dq;
        double sum = 0.0;
        for (std::size_t n = 0; n < w.size(); ++n) {
            double term;
            if (sd[n] > 0.0) {
                const double d1 = (lsk + drift[n]) / sd[n] + 0.5 * sd[n];
                const double d2 = d1 - sd[n];
                term = call ? s_q * norm_cdf(d1) - strike * df[n] * norm_cdf(d2)
                            : strike * df[n] * norm_cdf(-d2) - s_q * norm_cdf(-d1);
            } else {
                const double fwd_value = (call ? 1.0 : -1.0) * (s_q - strike * df[n]);
                term = fwd_value > 0.0 ? fwd_value : 0.0;
            }
            sum += w[n] * term;
        }
        return sum;
    }
};

void check_params(const Params& p, std::size_t i) {
    require_nonnegative("vol", p.vol, i);
    require_nonnegative("lam", p.lam, i);
    require_finite("mu_j", p.mu_j, i);
    require_nonnegative("delta_j", p.delta_j, i);
}

}  // namespace

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
        if (lam[i] * t[i] > 500.0) fail_arg("lam * t", "<= 500", lam[i] * t[i], i);
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
