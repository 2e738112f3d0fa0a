// The standard normal distribution: density, CDF and its inverse (double precision).
#pragma once

#include <cmath>
#include <numbers>

namespace v28 {

inline constexpr double inv_sqrt_2pi = 0.3989422804014326779399460599343819;  // 1/sqrt(2 pi)

// n(x) = exp(-x^2/2) / sqrt(2 pi)
inline double norm_pdf(double x) { return inv_sqrt_2pi * std::exp(-0.5 * x * x); }

// N(x) via erfc, accurate in both tails (relative accuracy near 1 ulp for x << 0).
inline double norm_cdf(double x) { return 0.5 * std::erfc(-x * std::numbers::sqrt2 / 2.0); }

// N^{-1}(p), Acklam's rational approximation refined by one Halley step on erfc:
// relative error below 1e-15 over (0, 1). Returns -inf / +inf at 0 / 1 and NaN outside [0, 1].
double norm_inv(double p);

}  // namespace v28
