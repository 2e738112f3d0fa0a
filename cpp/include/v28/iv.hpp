// Implied volatility of European options under Black (1976) and Black-Scholes-Merton, by
// P. Jäckel, "Let's Be Rational", Wilmott (2015) 2015(75), pp. 40-53: the normalised Black
// function b(x, s) evaluated to full relative precision in four regions (asymptotic expansion,
// small-t Taylor expansion, normal CDF, erfcx), a rational cubic initial guess in four
// branches (on transformed objectives in the lowest and highest branches) and two
// Householder(3) steps. Accuracy: the implied vol reproduces the price to machine precision
// wherever the price carries information (|vol error| ~1e-15 at normal prices; see
// tests/test_implied_vol.py for the asserted grid).
//
// Units: price per unit of underlying (discounted, as quoted), spot/forward/strike in the same
// currency, t in years, rate/div continuously compounded, result an annualised vol.
//
// No-arbitrage bounds. A call is worth between D max(F - K, 0) and D F, a put between
// D max(K - F, 0) and D K (D the discount factor, F the forward). A price on the lower bound
// gives vol 0; outside [lower, upper) no volatility exists. The vectorised functions return
// NaN for such an element (one stale quote must not abort a whole chain; NaN marks "no implied
// vol" and propagates visibly), or throw std::domain_error when `strict`. The scalar
// `*_checked` functions always throw std::domain_error naming the price and the bounds.
// Invalid arguments (NaN price, non-positive spot/forward/strike/t/discount, non-finite
// rate/div) throw std::invalid_argument naming the argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace v28::bsm {

// Normalised Black call b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2) with
// x = ln(F/K) and s = vol sqrt(t): the undiscounted call price divided by sqrt(F K)
// (Jäckel 2015, eq. 2.3), accurate to a few ulp relative in every region.
double normalised_black_call(double x, double s);

// Implied vol from the normalised price beta (OTM or ITM; theta = +1 call, -1 put) per Jäckel;
// NaN when beta is outside (intrinsic, upper bound); 0 on the intrinsic value.
double normalised_implied_vol(double beta, double x, bool call);

// Scalar Black (1976) and BSM implied vols: NaN outside the no-arbitrage bounds, invalid
// arguments throw std::invalid_argument. These are the entries other models call (e.g. to
// quote a Heston or SVI price as a BSM vol).
double black_implied_vol(double price, double forward, double strike, double t, bool call,
                         double discount = 1.0);
double implied_vol(double price, double spot, double strike, double t, double rate, double div,
                   bool call);

// As above but a price outside the bounds throws std::domain_error naming it and the bounds.
double black_implied_vol_checked(double price, double forward, double strike, double t,
                                 bool call, double discount = 1.0);
double implied_vol_checked(double price, double spot, double strike, double t, double rate,
                           double div, bool call);

// Vectorised over equal-length spans (`call` 1 = call, 0 = put). Every argument is validated
// first; out-of-bounds prices give NaN, or std::domain_error with the index when `strict`.
// On AVX-512 (AVX2 + FMA) CPUs the options are solved 8 (4) at a time in vector lanes, the
// remainder by the scalar code; the two agree to ~2e-15 relative wherever one ulp of the price
// moves the vol by <= 1e-15 relative (tests/test_implied_vol_lanes.py).
void implied_vol(std::span<const double> price, std::span<const double> spot,
                 std::span<const double> strike, std::span<const double> t,
                 std::span<const double> rate, std::span<const double> div,
                 std::span<const std::uint8_t> call, std::span<double> out, bool strict = false);

void black_implied_vol(std::span<const double> price, std::span<const double> forward,
                       std::span<const double> strike, std::span<const double> t,
                       std::span<const std::uint8_t> call, std::span<const double> discount,
                       std::span<double> out, bool strict = false);

}  // namespace v28::bsm
