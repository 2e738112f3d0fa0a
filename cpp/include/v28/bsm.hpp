// Black-Scholes-Merton (1973) European option prices and Greeks with a continuous dividend
// yield (implied volatility: v28/iv.hpp). The vectorised functions run SIMD kernels
// (cpp/src/bsm_kernels.ipp compiled per instruction set: AVX-512 or AVX2+FMA picked at run
// time by cpp/src/bsm_kernels.cpp, scalar <cmath> otherwise).
//
// Units: spot and strike in currency per unit of underlying; t in years; rate and div
// continuously compounded per year; vol annualised (0.2 = 20 %). Greeks: delta dV/dS, gamma
// d2V/dS2, vega dV/dvol per 1.00 of vol, theta dV/dt per year of calendar time (= -dV/dT),
// rho dV/drate per 1.00 of rate.
//
// Degenerate cases are limits, not errors: t = 0 or vol = 0 gives the discounted intrinsic
// value of the forward, max(+-(S e^{-qT} - K e^{-rT}), 0), with zero gamma and vega.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "v28/normal.hpp"

namespace v28::bsm {

struct Greeks {
    double delta = 0.0;
    double gamma = 0.0;
    double vega = 0.0;
    double theta = 0.0;
    double rho = 0.0;
};

// Price of one option. Inputs are assumed valid (see check_inputs); used on hot paths.
inline double price(double spot, double strike, double t, double rate, double div, double vol,
                    bool call) {
    const double df_r = std::exp(-rate * t);
    const double df_q = std::exp(-div * t);
    const double sd = vol * std::sqrt(t);
    const double w = call ? 1.0 : -1.0;
    if (!(sd > 0.0)) {
        const double intrinsic = w * (spot * df_q - strike * df_r);
        return intrinsic > 0.0 ? intrinsic : 0.0;
    }
    const double d1 = (std::log(spot / strike) + (rate - div) * t) / sd + 0.5 * sd;
    const double d2 = d1 - sd;
    return w * (spot * df_q * norm_cdf(w * d1) - strike * df_r * norm_cdf(w * d2));
}

// Price and the five Greeks of one option; returns the price.
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
