#include "v28/mc.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "v28/check.hpp"
#include "v28/mc_kernels.hpp"
#include "v28/normal.hpp"
#include "v28/parallel.hpp"
#include "v28/rng.hpp"
#include "v28/vmath.hpp"

namespace v28::mc {

namespace {

using Acc = kernels::Sums;

void add(Acc& a, const Acc& o) {
    a.n += o.n;
    a.sy += o.sy;
    a.syy += o.syy;
    a.sx += o.sx;
    a.sxx += o.sxx;
    a.sxy += o.sxy;
    a.nf += o.nf;
    a.sf += o.sf;
    a.sff += o.sff;
}

// Runs chunk_fn(begin, end) -> Acc over [0, units) in chunks of chunk_units on the thread pool
// (each thread claims the next chunk; see parallel.hpp) and adds the chunk results in chunk
// order, so the sum is bit-identical for every thread count.
template <class ChunkFn>
Acc run_chunks(std::uint64_t units, unsigned threads, const ChunkFn& chunk_fn) {
    const std::uint64_t chunks = (units + chunk_units - 1) / chunk_units;
    std::vector<Acc> parts(chunks);
    parallel::parallel_for(chunks, threads, [&](std::size_t c) {
        parts[c] = chunk_fn(c * chunk_units, std::min(units, (c + 1) * chunk_units));
    });
    Acc total;
    for (const Acc& p : parts) add(total, p);
    return total;
}

// Price, standard error and variance reduction from the sums (Glasserman 4.1: b estimated by
// least squares, residual variance with n - 2 degrees of freedom).
Result finish(const Acc& a, bool cv, double control_mean) {
    Result r;
    const double n = a.n;
    const double ybar = a.sy / n;
    const double syy = a.syy - a.sy * ybar;
    double var_unit;
    if (cv) {
        const double xbar = a.sx / n;
        const double sxx = a.sxx - a.sx * xbar;
        const double sxy = a.sxy - a.sx * ybar;
        const double b = sxx > 0.0 ? sxy / sxx : 0.0;
        r.price = ybar - b * (xbar - control_mean);
        var_unit = std::max(syy - b * sxy, 0.0) / std::max(n - 2.0, 1.0);
    } else {
        r.price = ybar;
        var_unit = std::max(syy, 0.0) / std::max(n - 1.0, 1.0);
    }
    r.std_error = std::sqrt(var_unit / n);
    const double fbar = a.sf / a.nf;
    const double var_f = std::max(a.sff - a.sf * fbar, 0.0) / std::max(a.nf - 1.0, 1.0);
    r.plain_std_error = std::sqrt(var_f / a.nf);
    r.variance_reduction = r.std_error > 0.0
                               ? (r.plain_std_error * r.plain_std_error) / (r.std_error * r.std_error)
                               : 1.0;
    r.paths = static_cast<std::uint64_t>(a.nf);
    return r;
}

void check_vanilla(const Vanilla& v) {
    require_positive("spot", v.spot);
    require_positive("strike", v.strike);
    require_positive("t", v.t);
    require_finite("rate", v.rate);
    require_finite("div", v.div);
}

void check_gbm(const Gbm& g) {
    check_vanilla({g.spot, g.strike, g.t, g.rate, g.div, g.call});
    require_positive("vol", g.vol);
}

std::uint64_t units_for(const Options& o) {
    if (o.paths < 4) fail_arg("paths", ">= 4", static_cast<double>(o.paths));
    return o.antithetic ? (o.paths + 1) / 2 : o.paths;
}

// Philox counter tags of the streams (tags 1 and 2, the GBM ones, are in mc_kernels.hpp).
constexpr std::uint32_t tag_heston = 3, tag_merton = 4;

// One scalar Philox block for unit `unit`, draw `draw` of a stream `tag`.
[[gnu::always_inline]] inline void philox_unit(std::uint64_t seed, std::uint32_t tag,
                                               std::uint64_t unit, std::uint32_t draw,
                                               std::uint32_t out[4]) {
    const std::uint32_t ctr[4] = {draw, tag, static_cast<std::uint32_t>(unit),
                                  static_cast<std::uint32_t>(unit >> 32)};
    const std::uint32_t key[2] = {static_cast<std::uint32_t>(seed),
                                  static_cast<std::uint32_t>(seed >> 32)};
    rng::philox4x32_10(ctr, key, out);
}

}  // namespace

Result european(const Gbm& g, const Options& o) {
    check_gbm(g);
    const std::uint64_t units = units_for(o);
    const kernels::EuParams p{g.spot * std::exp((g.rate - g.div - 0.5 * g.vol * g.vol) * g.t),
                              g.strike,
                              g.vol * std::sqrt(g.t),
                              std::exp(-g.rate * g.t),
                              g.call ? 1.0 : -1.0,
                              o.antithetic};
    const auto& k = kernels::table();
    const Acc a = run_chunks(units, o.threads, [&](std::uint64_t b, std::uint64_t e) {
        return k.european(p, o.seed, b, e);
    });
    return finish(a, o.control_variate, g.spot * std::exp(-g.div * g.t));
}

double geometric_asian(const Gbm& g, int steps) {
    check_gbm(g);
    if (steps < 1) fail_arg("steps", ">= 1", steps);
    const double m = steps;
    const double mean = std::log(g.spot) +
                        (g.rate - g.div - 0.5 * g.vol * g.vol) * g.t * (m + 1.0) / (2.0 * m);
    const double var = g.vol * g.vol * g.t * (m + 1.0) * (2.0 * m + 1.0) / (6.0 * m * m);
    const double sd = std::sqrt(var);
    const double d1 = (mean - std::log(g.strike) + var) / sd;
    const double d2 = d1 - sd;
    const double fwd = std::exp(mean + 0.5 * var);
    const double df = std::exp(-g.rate * g.t);
    return g.call ? df * (fwd * norm_cdf(d1) - g.strike * norm_cdf(d2))
                  : df * (g.strike * norm_cdf(-d2) - fwd * norm_cdf(-d1));
}

Result asian(const Gbm& g, int steps, const Options& o) {
    check_gbm(g);
    if (steps < 1) fail_arg("steps", ">= 1", steps);
    const std::uint64_t units = units_for(o);
    const double dt = g.t / steps;
    const double mu = (g.rate - g.div - 0.5 * g.vol * g.vol) * dt;
    const kernels::AsParams p{g.spot,
                              g.strike,
                              std::exp(mu),
                              g.spot * std::exp(0.5 * mu * (steps + 1.0)),
                              g.vol * std::sqrt(dt),
                              std::exp(-g.rate * g.t),
                              g.call ? 1.0 : -1.0,
                              steps,
                              o.antithetic};
    const auto& k = kernels::table();
    const Acc a = run_chunks(units, o.threads, [&](std::uint64_t b, std::uint64_t e) {
        return k.asian(p, o.seed, b, e);
    });
    return finish(a, o.control_variate, geometric_asian(g, steps));
}

Result heston_european(const Vanilla& h, const heston::Params& p, int steps, const Options& o) {
    check_vanilla(h);
    heston::check_params(p, no_index);
    if (steps < 1) fail_arg("steps", ">= 1", steps);
    if (o.paths < 4) fail_arg("paths", ">= 4", static_cast<double>(o.paths));

    const double dt = h.t / steps;
    const double ek = std::exp(-p.kappa * dt);
    const double s2 = p.sigma * p.sigma;
    const double k0 = -p.rho * p.kappa * p.theta * dt / p.sigma;
    const double k1 = 0.5 * dt * (p.kappa * p.rho / p.sigma - 0.5) - p.rho / p.sigma;
    const double k2 = 0.5 * dt * (p.kappa * p.rho / p.sigma - 0.5) + p.rho / p.sigma;
    const double k3 = 0.5 * dt * (1.0 - p.rho * p.rho);
    const double a_mc = k2 + 0.5 * k3;  // A of Andersen eq. (34); k4 = k3
    const double df = std::exp(-h.rate * h.t);
    const double w = h.call ? 1.0 : -1.0;
    const double log_drift = (h.rate - h.div) * dt;
    const double x0 = std::log(h.spot);

    const Acc a = run_chunks(o.paths, o.threads, [&](std::uint64_t b, std::uint64_t e) {
        Acc acc;
        for (std::uint64_t i = b; i < e; ++i) {
            double v = p.v0, x = x0;
            for (int s = 0; s < steps; ++s) {
                std::uint32_t r[4];
                philox_unit(o.seed, tag_heston, i, static_cast<std::uint32_t>(s), r);
                const double uv = simd::uniform_open(r[0]);
                double zx, unused;
                simd::box_muller(r[2], r[3], zx, unused);
                // Moments of v(t + dt) given v(t) (Andersen eq. 17-18).
                const double m = p.theta + (v - p.theta) * ek;
                const double ss = v * s2 * ek * (1.0 - ek) / p.kappa +
                                  p.theta * s2 * (1.0 - ek) * (1.0 - ek) / (2.0 * p.kappa);
                const double psi = ss / (m * m);
                double v_next, k0_star;
                if (!(m > 0.0)) {
                    // v = theta = 0: the variance stays at 0 (psi would be 0/0).
                    v_next = 0.0;
                    k0_star = k0;
                } else if (psi <= 1.5) {
                    const double inv = 2.0 / psi;
                    const double b2 = inv - 1.0 + std::sqrt(inv) * std::sqrt(inv - 1.0);
                    const double aa = m / (1.0 + b2);
                    const double zv = norm_inv(uv);
                    const double bb = std::sqrt(b2);
                    v_next = aa * (bb + zv) * (bb + zv);
                    const double den = 1.0 - 2.0 * a_mc * aa;
                    k0_star = den > 0.0 ? -(a_mc * b2 * aa / den) + 0.5 * std::log(den) -
                                              (k1 + 0.5 * k3) * v
                                        : k0;
                } else {
                    const double pp = (psi - 1.0) / (psi + 1.0);
                    const double beta = (1.0 - pp) / m;
                    v_next = uv <= pp ? 0.0 : std::log((1.0 - pp) / (1.0 - uv)) / beta;
                    k0_star = beta > a_mc ? -std::log(pp + beta * (1.0 - pp) / (beta - a_mc)) -
                                                (k1 + 0.5 * k3) * v
                                          : k0;
                }
                x += log_drift + k0_star + k1 * v + k2 * v_next +
                     std::sqrt(k3 * (v + v_next)) * zx;
                v = v_next;
            }
            const double st = std::exp(x);
            const double f = df * std::max(w * (st - h.strike), 0.0);
            const double xc = df * st;
            acc.sy += f;
            acc.syy += f * f;
            acc.sx += xc;
            acc.sxx += xc * xc;
            acc.sxy += xc * f;
            acc.sf += f;
            acc.sff += f * f;
        }
        acc.n = acc.nf = static_cast<double>(e - b);
        return acc;
    });
    return finish(a, o.control_variate, h.spot * std::exp(-h.div * h.t));
}

Result merton_european(const Vanilla& m, const merton::Params& p, const Options& o) {
    check_vanilla(m);
    merton::check_params(p, no_index);
    const std::uint64_t units = units_for(o);

    const double kbar = std::exp(p.mu_j + 0.5 * p.delta_j * p.delta_j) - 1.0;
    const double drift =
        std::log(m.spot) + (m.rate - m.div - p.lam * kbar - 0.5 * p.vol * p.vol) * m.t;
    const double sd = p.vol * std::sqrt(m.t);
    const double lt = p.lam * m.t;
    if (lt > 1e6) fail_arg("lam * t", "<= 1e6", lt);
    const int pieces = std::max(1, static_cast<int>(std::ceil(lt / 256.0)));
    const double lt_piece = lt / pieces;
    const double p0 = std::exp(-lt_piece);
    // Inversion stops here: P[Poisson(256) > 1024] < 1e-200.
    constexpr int max_count = 1024;
    const double df = std::exp(-m.rate * m.t);
    const double w = m.call ? 1.0 : -1.0;

    const Acc a = run_chunks(units, o.threads, [&](std::uint64_t b, std::uint64_t e) {
        Acc acc;
        for (std::uint64_t i = b; i < e; ++i) {
            std::uint32_t r[4];
            philox_unit(o.seed, tag_merton, i, 0, r);
            double z1, z2;
            simd::box_muller(r[0], r[1], z1, z2);
            // Poisson(lam t) count as a sum of Poisson(lam t / pieces) counts, each by inversion
            // of one uniform from e^{-lam t / pieces} >= e^{-256} (a single inversion from
            // e^{-lam t} would start from 0 once lam t > 745 and put every path at its cap).
            int n = 0;
            for (int piece = 0; piece < pieces; ++piece) {
                double u;
                if (piece == 0) {
                    u = simd::uniform_open(r[2]);
                } else {
                    std::uint32_t q[4];
                    philox_unit(o.seed, tag_merton, i, static_cast<std::uint32_t>(piece), q);
                    u = simd::uniform_open(q[0]);
                }
                int k = 0;
                double pk = p0, cdf = p0;
                while (u > cdf && k < max_count) {
                    ++k;
                    pk *= lt_piece / k;
                    cdf += pk;
                }
                n += k;
            }
            const double jump_mean = n * p.mu_j, jump_sd = std::sqrt(n) * p.delta_j;
            const double sa = std::exp(drift + sd * z1 + jump_mean + jump_sd * z2);
            const double fa = df * std::max(w * (sa - m.strike), 0.0);
            double fb = 0.0, sb = 0.0;
            if (o.antithetic) {
                sb = std::exp(drift - sd * z1 + jump_mean - jump_sd * z2);
                fb = df * std::max(w * (sb - m.strike), 0.0);
            }
            const double y = o.antithetic ? 0.5 * (fa + fb) : fa;
            const double x = o.antithetic ? 0.5 * df * (sa + sb) : df * sa;
            acc.sy += y;
            acc.syy += y * y;
            acc.sx += x;
            acc.sxx += x * x;
            acc.sxy += x * y;
            acc.sf += fa + fb;
            acc.sff += fa * fa + fb * fb;
        }
        acc.n = static_cast<double>(e - b);
        acc.nf = acc.n * (o.antithetic ? 2.0 : 1.0);
        return acc;
    });
    return finish(a, o.control_variate, m.spot * std::exp(-m.div * m.t));
}

}  // namespace v28::mc
