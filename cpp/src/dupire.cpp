#include "v28/dupire.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "v28/check.hpp"
#include "v28/parallel.hpp"
#include "v28/rng.hpp"
#include "v28/vmath.hpp"

namespace v28::dupire {

void local_vol(const surface::SviSurface& s, std::span<const double> t,
               std::span<const double> strike, std::span<double> out) {
    require_same_size("t, strike", t.size(), strike.size());
    require_same_size("t, out", t.size(), out.size());
    require_nonnegative("t", t);
    require_positive("strike", strike);
    // Grids repeat t across strikes: reuse ln F(t) while t is unchanged.
    double t_prev = std::numeric_limits<double>::quiet_NaN(), logf = 0.0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (t[i] != t_prev) {
            t_prev = t[i];
            logf = s.log_forward(t[i]);
        }
        out[i] = std::sqrt(s.local_variance(std::log(strike[i]) - logf, t[i]));
    }
}

namespace {

// First and second derivative at x[i] from the three points x[j-1], x[j], x[j+1]
// (Lagrange interpolation on a non-uniform grid), j = clamp(i, 1, n-2).
void three_point(const double* x, const double* f, std::size_t stride, std::size_t n,
                 std::size_t i, double& d1, double& d2) {
    const std::size_t j = std::clamp<std::size_t>(i, 1, n - 2);
    const double x0 = x[j - 1], x1 = x[j], x2 = x[j + 1];
    const double f0 = f[(j - 1) * stride], f1 = f[j * stride], f2 = f[(j + 1) * stride];
    const double xi = x[i];
    // Derivatives of the Lagrange basis polynomials at xi.
    const double l0 = ((xi - x1) + (xi - x2)) / ((x0 - x1) * (x0 - x2));
    const double l1 = ((xi - x0) + (xi - x2)) / ((x1 - x0) * (x1 - x2));
    const double l2 = ((xi - x0) + (xi - x1)) / ((x2 - x0) * (x2 - x1));
    d1 = l0 * f0 + l1 * f1 + l2 * f2;
    d2 = 2.0 * (f0 / ((x0 - x1) * (x0 - x2)) + f1 / ((x1 - x0) * (x1 - x2)) +
                f2 / ((x2 - x0) * (x2 - x1)));
}

void check_increasing(const char* name, std::span<const double> x) {
    for (std::size_t i = 1; i < x.size(); ++i) {
        if (!(x[i] > x[i - 1])) fail_arg(name, "strictly increasing", x[i], i);
    }
}

}  // namespace

void local_vol_from_prices(std::span<const double> t, std::span<const double> strike,
                           std::span<const double> calls, double rate, double div,
                           std::span<double> out) {
    const std::size_t nt = t.size(), nk = strike.size();
    if (nt < 3 || nk < 3) {
        throw std::invalid_argument("the price grid needs at least 3 expiries and 3 strikes, got " +
                                    std::to_string(nt) + " x " + std::to_string(nk));
    }
    require_same_size("calls, t x strike", calls.size(), nt * nk);
    require_same_size("out, t x strike", out.size(), nt * nk);
    require_positive("t", t);
    require_positive("strike", strike);
    require_finite("calls", calls);
    require_finite("rate", rate);
    require_finite("div", div);
    check_increasing("t", t);
    check_increasing("strike", strike);
    for (std::size_t i = 0; i < nt; ++i) {
        for (std::size_t j = 0; j < nk; ++j) {
            double c_t, c_tt, c_k, c_kk;
            three_point(t.data(), calls.data() + j, nk, nt, i, c_t, c_tt);
            three_point(strike.data(), calls.data() + i * nk, 1, nk, j, c_k, c_kk);
            const double k = strike[j];
            const double num = c_t + (rate - div) * k * c_k + div * calls[i * nk + j];
            const double var = num / (0.5 * k * k * c_kk);
            out[i * nk + j] = var > 0.0 ? std::sqrt(var) : std::numeric_limits<double>::quiet_NaN();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Local-volatility Monte Carlo.

namespace {

// Philox counter tag of the local-volatility paths (1, 2: GBM in mc_kernels.hpp; 3, 4: Heston and
// Merton in mc.cpp).
constexpr std::uint32_t tag_local_vol = 5;

// The normals of one antithetic path pair: stream `pair` under tag 5 (rng.hpp), normal j being
// word j % 4 of the Philox block at counter (j / 4, 5, pair lo, pair hi), Box-Muller paired,
// as rng::normals gives them.
class NormalStream {
public:
    NormalStream(std::uint64_t seed, std::uint64_t pair)
        : key_{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)},
          pair_lo_(static_cast<std::uint32_t>(pair)),
          pair_hi_(static_cast<std::uint32_t>(pair >> 32)) {}
    double next() {
        if (used_ == 4) refill();
        return z_[used_++];
    }

private:
    void refill() {
        const std::uint32_t counter[4] = {block_++, tag_local_vol, pair_lo_, pair_hi_};
        std::uint32_t w[4];
        rng::philox4x32_10(counter, key_, w);
        simd::box_muller(w[0], w[1], z_[0], z_[1]);
        simd::box_muller(w[2], w[3], z_[2], z_[3]);
        used_ = 0;
    }
    std::uint32_t key_[2];
    std::uint32_t pair_lo_, pair_hi_;
    std::uint32_t block_ = 0;
    double z_[4] = {};
    int used_ = 4;
};

constexpr std::size_t pairs_per_block = 512;

}  // namespace

void local_vol_mc(const surface::SviSurface& s, std::span<const double> t,
                  std::span<const double> strike, std::span<const std::uint8_t> call,
                  const McSettings& cfg, std::span<double> price, std::span<double> stderr_out) {
    const std::size_t n = t.size();
    require_same_size("t, strike", n, strike.size());
    require_same_size("t, call", n, call.size());
    require_same_size("t, price", n, price.size());
    require_same_size("t, stderr", n, stderr_out.size());
    require_positive("t", t);
    require_positive("strike", strike);
    if (cfg.paths < 2) fail_arg("paths", ">= 2", static_cast<double>(cfg.paths));
    if (cfg.steps_per_year < 1) fail_arg("steps_per_year", ">= 1", cfg.steps_per_year);
    if (cfg.threads < 1) fail_arg("threads", ">= 1", cfg.threads);
    if (n == 0) return;

    // Time grid: every maturity is a grid point; uniform sub-steps in between.
    std::vector<double> mats(t.begin(), t.end());
    std::sort(mats.begin(), mats.end());
    mats.erase(std::unique(mats.begin(), mats.end()), mats.end());
    std::vector<double> grid{0.0};
    std::vector<std::size_t> mat_step;  // grid index of each maturity
    for (double m : mats) {
        const double t0 = grid.back();
        const auto k = static_cast<std::size_t>(
            std::max(1.0, std::ceil((m - t0) * cfg.steps_per_year - 1e-9)));
        for (std::size_t j = 1; j <= k; ++j) grid.push_back(j == k ? m : t0 + (m - t0) * j / k);
        mat_step.push_back(grid.size() - 1);
    }
    // Options grouped by maturity index; the forward at each maturity.
    std::vector<std::vector<std::size_t>> by_mat(mats.size());
    for (std::size_t i = 0; i < n; ++i) {
        const auto m = std::lower_bound(mats.begin(), mats.end(), t[i]) - mats.begin();
        by_mat[static_cast<std::size_t>(m)].push_back(i);
    }
    std::vector<double> fwd(mats.size());
    for (std::size_t m = 0; m < mats.size(); ++m) fwd[m] = s.forward(mats[m]);
    std::vector<double> dt(grid.size() - 1), sqdt(grid.size() - 1);
    for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
        dt[k] = grid[k + 1] - grid[k];
        sqdt[k] = std::sqrt(dt[k]);
    }

    const std::size_t pairs = (cfg.paths + 1) / 2;
    const std::size_t n_blocks = (pairs + pairs_per_block - 1) / pairs_per_block;
    std::vector<double> sums(n_blocks * n, 0.0), sq(n_blocks * n, 0.0);

    auto run_block = [&](std::size_t b) {
        double* sum = sums.data() + b * n;
        double* ssq = sq.data() + b * n;
        std::vector<double> pay(n);
        const std::size_t p_end = std::min(pairs, (b + 1) * pairs_per_block);
        for (std::size_t p = b * pairs_per_block; p < p_end; ++p) {
            NormalStream rng(cfg.seed, p);
            std::fill(pay.begin(), pay.end(), 0.0);
            double x[2] = {0.0, 0.0};
            std::size_t next_mat = 0;
            for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
                const double z = rng.next();
                for (int a = 0; a < 2; ++a) {
                    double v = s.local_variance(x[a], grid[k]);
                    if (!(v > 0.0)) v = 0.0;
                    const double sd = std::sqrt(v) * sqdt[k];
                    x[a] += -0.5 * v * dt[k] + (a == 0 ? sd * z : -sd * z);
                }
                if (k + 1 == mat_step[next_mat]) {
                    for (std::size_t i : by_mat[next_mat]) {
                        for (int a = 0; a < 2; ++a) {
                            const double st = fwd[next_mat] * std::exp(x[a]);
                            pay[i] += 0.5 * std::max(call[i] ? st - strike[i] : strike[i] - st, 0.0);
                        }
                    }
                    ++next_mat;
                }
            }
            for (std::size_t i = 0; i < n; ++i) {
                sum[i] += pay[i];
                ssq[i] += pay[i] * pay[i];
            }
        }
    };

    parallel::parallel_for(n_blocks, static_cast<unsigned>(cfg.threads), run_block);
    // Reduce in block order so the sum is the same whatever the thread count.
    const double np = static_cast<double>(pairs);
    for (std::size_t i = 0; i < n; ++i) {
        double s1 = 0.0, s2 = 0.0;
        for (std::size_t b = 0; b < n_blocks; ++b) {
            s1 += sums[b * n + i];
            s2 += sq[b * n + i];
        }
        const double mean = s1 / np;
        const double var = std::max(s2 / np - mean * mean, 0.0) * np / std::max(np - 1.0, 1.0);
        price[i] = mean;
        stderr_out[i] = std::sqrt(var / np);
    }
}

}  // namespace v28::dupire
