// Monte Carlo pricing of European and arithmetic-average Asian options under geometric Brownian
// motion, with antithetic variates and control variates; Heston (Andersen QE) and Merton
// jump-diffusion Monte Carlo as independent checks of the transform and series prices.
//
// Units: spot and strike per unit of underlying; t in years; rate and div continuously
// compounded per year; vol annualised. Prices are discounted at `rate`.
//
// Method (P. Glasserman (2004), "Monte Carlo Methods in Financial Engineering", sections 3.2
// (exact GBM log step), 4.1 (control variates, estimated coefficient b*), 4.2 (antithetic
// variates)). An antithetic pair (Z, -Z) is one sample unit; its payoff is the pair average.
// Control variates: the discounted terminal spot (expectation S e^{-div t}) for Europeans; the
// discretely monitored geometric-average Asian, priced in closed form (A. Kemna, A. Vorst (1990),
// J. Banking Finance 14; discrete-monitoring version, Glasserman eq. 4.12-4.13), for the
// arithmetic Asian.
//
// Randomness: Philox4x32-10 keyed by the seed (see rng.hpp); the counter names the sample unit,
// so sample unit i is the same whatever thread runs it. Units are summed in fixed chunks of
// `chunk_units` and the chunk sums are added in chunk order, so the result is bit-identical for
// every thread count. The GBM loops run on SIMD kernels built for AVX-512, AVX2 + FMA and the
// baseline and chosen at run time (mc_kernels.hpp); each build gives the same result for every
// thread count, and the builds agree with each other to rounding.
#pragma once

#include <cstdint>

#include "v28/heston.hpp"
#include "v28/merton.hpp"

namespace v28::mc {

inline constexpr std::uint64_t chunk_units = 4096;

struct Result {
    double price = 0.0;
    double std_error = 0.0;           // standard error of `price`
    double plain_std_error = 0.0;     // standard error plain MC would have with the same paths
    double variance_reduction = 1.0;  // (plain_std_error / std_error)^2
    std::uint64_t paths = 0;          // payoff evaluations (an antithetic pair counts 2)
};

struct Options {
    std::uint64_t paths = 100000;  // rounded up to an even count when antithetic
    std::uint64_t seed = 0;
    bool antithetic = true;
    bool control_variate = true;
    unsigned threads = 0;  // 0: parallel::default_threads()
};

struct Gbm {
    double spot, strike, t, rate, div, vol;
    bool call;
};

// European option by one exact log step per path.
Result european(const Gbm& g, const Options& o);

// Arithmetic-average Asian option averaging S at t_i = i t / steps, i = 1..steps.
Result asian(const Gbm& g, int steps, const Options& o);

// Closed-form price of the discretely monitored geometric-average Asian (the control variate).
double geometric_asian(const Gbm& g, int steps);

// A European option on a stock with a continuous dividend yield, and its market; the model and
// its parameters come separately (defined and checked once, in heston.hpp / merton.hpp).
struct Vanilla {
    double spot, strike, t, rate, div;
    bool call;
};

// Heston European option by Andersen's QE scheme (L. Andersen (2008), "Simple and efficient
// simulation of the Heston stochastic volatility model", J. Comput. Finance 11(3)), psi_c = 1.5,
// gamma1 = gamma2 = 1/2, with the martingale correction of section 3.2.3. `steps` time steps.
// Antithetic variates are not used (ignored); the control variate is the discounted terminal spot.
Result heston_european(const Vanilla& opt, const heston::Params& model, int steps,
                       const Options& o);

// Merton (1976) jump diffusion, European, simulated exactly at t: N ~ Poisson(lam t) jumps with
// log sizes N(mu_j, delta_j^2), compensated drift rate - div - lam (e^{mu_j + delta_j^2/2} - 1).
Result merton_european(const Vanilla& opt, const merton::Params& model, const Options& o);

}  // namespace v28::mc
