// Merton (1976) jump diffusion: European prices by the Poisson-weighted Black-Scholes series and
// calibration of the jump parameters from historical log returns by moment matching.
//
// Model: dS/S = (rate - div - lam kbar) dt + vol dW + (J - 1) dN, N Poisson with intensity lam
// per year, ln J ~ N(mu_j, delta_j^2), kbar = E[J - 1] = exp(mu_j + delta_j^2 / 2) - 1.
// Units: t in years; rate/div continuously compounded; vol annualised; lam jumps per year;
// mu_j, delta_j mean and standard deviation of the log jump (dimensionless).
//
// Price (R. C. Merton (1976), "Option pricing when underlying stock returns are discontinuous",
// J. Financial Economics 3, eq. (19); E. G. Haug (2007), "Complete Guide", sec. 6.10.1):
//     V = sum_n e^{-lam' t} (lam' t)^n / n!  BSM(spot, strike, t, r_n, div, vol_n),
//     lam' = lam (1 + kbar), vol_n^2 = vol^2 + n delta_j^2 / t, r_n = rate - lam kbar +
//     n ln(1 + kbar) / t.
// Truncation: a call term is at most spot e^{-div t} and a put term at most strike e^{-r_n t}, so
// the remainder after term N is bounded by spot e^{-div t} P[Poisson(lam' t) > N] (calls) or
// strike e^{-rate t} P[Poisson(lam t) > N] (puts). Terms are added until that bound is below
// series_tolerance times spot e^{-div t} or strike e^{-rate t}; lam = 0 gives the BSM price
// itself (one term). The Poisson weights are formed in log space and summed outward from their
// modes, so any lam t and mu_j whose series needs at most max_terms terms is priced; beyond that
// (or when lam t e^{mu_j + delta_j^2/2} overflows) std::domain_error says so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace v28::merton {

inline constexpr double series_tolerance = 1e-14;
inline constexpr long max_terms = 1000000;

struct Params {
    double vol, lam, mu_j, delta_j;
};

// Throws std::invalid_argument naming the first bad parameter: vol, lam, delta_j >= 0; mu_j
// finite. `index` is reported in the message (no_index for scalars).
void check_params(const Params& p, std::size_t index);

// One option; inputs assumed valid.
double price(double spot, double strike, double t, double rate, double div, const Params& p,
             bool call);

// Vectorised over equal-length spans (validated first); consecutive options sharing
// (t, rate, div, parameters) reuse the series' per-term factors.
void price(std::span<const double> spot, std::span<const double> strike,
           std::span<const double> t, std::span<const double> rate, std::span<const double> div,
           std::span<const double> vol, std::span<const double> lam,
           std::span<const double> mu_j, std::span<const double> delta_j,
           std::span<const std::uint8_t> call, std::span<double> out);

// Cumulants of the log return over dt: k2 = vol^2 dt + lam dt (mu^2 + delta^2),
// k3 = lam dt (mu^3 + 3 mu delta^2), k4 = lam dt (mu^4 + 6 mu^2 delta^2 + 3 delta^4)
// (the jump part is compound Poisson: k_n = lam dt E[Y^n]).
struct MomentFit {
    Params params{};
    double drift = 0.0;          // annual drift of the log price, mean / dt
    double variance = 0.0;       // sample moments that were matched (per dt)
    double skewness = 0.0;
    double excess_kurtosis = 0.0;
    double mean_abs_deviation = 0.0;
    double max_residual = 0.0;   // largest relative moment mismatch at the solution
    int iterations = 0;
};

// Four sample moments, four unknowns (vol, lam, mu_j, delta_j): variance, skewness, excess
// kurtosis and the mean absolute deviation E|r - E r| (a Poisson mixture of folded normals, which
// separates the diffusion from the jumps: O. E. Barndorff-Nielsen, N. Shephard (2004) use the
// same absolute-moment idea in bipower variation). Solved by Levenberg-Marquardt in
// (ln vol, ln lam, mu_j, ln delta_j). Throws std::domain_error when the moments admit no Merton
// solution: excess kurtosis <= 0, or no parameters reproduce the moments to 1e-6.
MomentFit calibrate_moments(std::span<const double> returns, double dt);

}  // namespace v28::merton
