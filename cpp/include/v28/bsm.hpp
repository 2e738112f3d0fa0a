// Black-Scholes-Merton (1973) European option prices and Greeks with a continuous dividend
// yield (implied volatility: v28/iv.hpp). Every function runs one SIMD kernel
// (cpp/src/bsm_kernels.ipp compiled per level, AVX-512, AVX2 + FMA or the baseline, picked at
// run time by v28::simd::level()); out of the money it prices without cancellation, so the deep
// tails keep their relative accuracy on every level.
//
// Units: spot and strike in currency per unit of underlying; t in years; rate and div
// continuously compounded per year; vol annualised (0.2 = 20 %). Greeks: delta dV/dS, gamma
// d2V/dS2, vega dV/dvol per 1.00 of vol, theta dV/dt per year of calendar time (= -dV/dT),
// rho dV/drate per 1.00 of rate.
//
// Degenerate cases are limits, not errors: t = 0 or vol = 0 gives the discounted intrinsic
// value of the forward, max(+-(S e^{-qT} - K e^{-rT}), 0), with zero gamma and vega.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>


namespace v28::bsm {

struct Greeks {
    double delta = 0.0;
    double gamma = 0.0;
    double vega = 0.0;
    double theta = 0.0;
    double rho = 0.0;
};

// Price of one option, and price and the five Greeks (returned: the price); the same kernel
// and accuracy as the vectorised functions below. Inputs are assumed valid (see check_inputs):
// on invalid ones the results are meaningless.
double price(double spot, double strike, double t, double rate, double div, double vol,
             bool call);
double price_greeks(double spot, double strike, double t, double rate, double div, double vol,
                    bool call, Greeks& g);

// Throws std::invalid_argument naming the first bad argument: spot, strike > 0; t, vol >= 0;
// rate, div finite. `index` is reported in the message (no_index for scalars).
void check_inputs(double spot, double strike, double t, double rate, double div, double vol,
                  std::size_t index);

// Vectorised over equal-length spans; `call` holds 0 (put) or 1 (call). Validates every
// element first, then computes.
void price(std::span<const double> spot, std::span<const double> strike,
           std::span<const double> t, std::span<const double> rate, std::span<const double> div,
           std::span<const double> vol, std::span<const std::uint8_t> call, std::span<double> out);

void greeks(std::span<const double> spot, std::span<const double> strike,
            std::span<const double> t, std::span<const double> rate, std::span<const double> div,
            std::span<const double> vol, std::span<const std::uint8_t> call,
            std::span<double> price, std::span<double> delta, std::span<double> gamma,
            std::span<double> vega, std::span<double> theta, std::span<double> rho);

}  // namespace v28::bsm
