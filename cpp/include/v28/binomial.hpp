// Cox-Ross-Rubinstein (1979) binomial tree for European and American options on a stock with
// a continuous dividend yield: N steps of dt = t / N, up and down factors u = e^{vol sqrt(dt)},
// d = 1/u, risk-neutral up-probability p = (e^{(rate - div) dt} - d) / (u - d), discounting
// e^{-rate dt} per step (the textbook tree, Hull, "Options, Futures and Other Derivatives",
// ch. 13 and 21). Backward induction in O(N) memory and O(N^2) time; an American option
// takes the larger of continuation and exercise value at every node.
//
// Greeks from the tree (Hull ch. 21.1): delta = (f_11 - f_10) / (S u - S d),
// gamma = [(f_22 - f_21) / (S u^2 - S) - (f_21 - f_20) / (S - S d^2)] / ((S u^2 - S d^2) / 2),
// theta = (f_21 - f_00) / (2 dt) per year (f_ij: value at step i, node j counted from the
// bottom). Greeks need steps >= 2.
//
// Units as in v28/bsm.hpp: t in years, rate and div continuously compounded, vol annualised.
// p must lie in [0, 1]: that needs steps >= t (rate - div)^2 / vol^2; fewer steps throw
// std::domain_error saying how many are needed. t = 0 gives the intrinsic value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace v28::binomial {

inline constexpr long long max_steps = 10000000;

struct CrrGreeks {
    double price = 0.0;
    double delta = 0.0;
    double gamma = 0.0;
    double theta = 0.0;
};

// Throws std::invalid_argument naming a bad argument (spot > 0; strike, vol, t >= 0; rate,
// div finite; 1 <= steps <= max_steps) and std::domain_error when p falls outside [0, 1].
// vol = 0 is priced exactly (the deterministic forward, exercised at the best date); strike = 0
// needs nothing special (the tree prices S e^{-div tau} exactly).
void check_inputs(double spot, double strike, double t, double rate, double div, double vol,
                  long long steps, std::size_t index);

double crr_price(double spot, double strike, double t, double rate, double div, double vol,
                 bool call, bool american, long long steps);

CrrGreeks crr_greeks(double spot, double strike, double t, double rate, double div, double vol,
                     bool call, bool american, long long steps);

// Vectorised over equal-length spans (call/american: 1 or 0), one step count for all.
void crr_price(std::span<const double> spot, std::span<const double> strike,
               std::span<const double> t, std::span<const double> rate,
               std::span<const double> div, std::span<const double> vol,
               std::span<const std::uint8_t> call, std::span<const std::uint8_t> american,
               long long steps, std::span<double> out);

void crr_greeks(std::span<const double> spot, std::span<const double> strike,
                std::span<const double> t, std::span<const double> rate,
                std::span<const double> div, std::span<const double> vol,
                std::span<const std::uint8_t> call, std::span<const std::uint8_t> american,
                long long steps, std::span<double> price, std::span<double> delta,
                std::span<double> gamma, std::span<double> theta);

}  // namespace v28::binomial
