// Dupire local volatility: from an SVI surface (Gatheral's formula in total implied variance),
// from a grid of call prices (Dupire's formula by finite differences), and a local-volatility
// Monte Carlo pricer of vanillas used to check that a surface reprices its own options.
//
// References: B. Dupire (1994), "Pricing with a Smile", Risk 7(1); J. Gatheral (2006), "The
// Volatility Surface", Wiley, eq. 1.10 (local variance in w(y, T), y = ln(K / F_T)).
// Units: t in years, strikes and prices in currency per unit of underlying, vols annualised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "v28/surface.hpp"

namespace v28::dupire {

// sigma_loc(t_i, strike_i) of the surface for equal-length spans (one vectorised pass; a
// (t, K) grid is passed flattened). t >= 0, strike > 0. NaN where the surface has arbitrage
// (non-positive Gatheral denominator or negative dw/dt).
void local_vol(const surface::SviSurface& s, std::span<const double> t,
               std::span<const double> strike, std::span<double> out);

// Dupire's formula on a grid of discounted call prices C(t_i, K_j) (row-major, n_t x n_k),
// strictly increasing t and K (non-uniform allowed), constant rate and dividend yield:
//     sigma^2 = (dC/dT + (r - q) K dC/dK + q C) / (0.5 K^2 d2C/dK2).
// Derivatives by three-point (second-order on a uniform grid) differences on the non-uniform
// grid, one-sided at the edges (first order there). NaN where the variance is not positive.
void local_vol_from_prices(std::span<const double> t, std::span<const double> strike,
                           std::span<const double> calls, double rate, double div,
                           std::span<double> out);

struct McSettings {
    std::size_t paths = 100000;   // antithetic pairs count as two paths
    int steps_per_year = 200;     // Euler steps per year (at least one per maturity interval)
    std::uint64_t seed = 0;
    int threads = 1;
};

// Undiscounted prices E[(S_T - K)^+] (call) or E[(K - S_T)^+] (put) under the local-vol
// dynamics of the surface, and their Monte Carlo standard errors. The simulated state is
// x = ln(S_t / F(t)), dx = -sigma_loc^2/2 dt + sigma_loc dW, by Euler steps in x with
// antithetic normals; sigma_loc^2 is clamped at 0 where the surface has arbitrage. Random
// numbers are the project's Philox4x32-10 normals (rng.hpp), one counter stream per antithetic
// pair, so results depend only on the seed, never on the thread count.
void local_vol_mc(const surface::SviSurface& s, std::span<const double> t,
                  std::span<const double> strike, std::span<const std::uint8_t> call,
                  const McSettings& cfg, std::span<double> price, std::span<double> stderr_out);

}  // namespace v28::dupire
