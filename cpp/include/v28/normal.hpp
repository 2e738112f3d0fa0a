// The standard normal distribution: density, CDF and its inverse (double precision).
#pragma once

#include <cmath>
#include <numbers>

namespace v28 {

inline constexpr double inv_sqrt_2pi = 0.3989422804014326779399460599343819;  // 1/sqrt(2 pi)

namespace detail {
// P. J. Acklam (2003), "An algorithm for computing the inverse normal cumulative distribution
// function": rational approximations with relative error 1.15e-9, central (a / b, |p - 1/2| <=
// 0.47575) and tail (c / d) pieces. The start of norm_inv and of the implied-vol solver's maps.
inline constexpr double acklam_a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                      -2.759285104469687e+02, 1.383577518672690e+02,
                                      -3.066479806614716e+01, 2.506628277459239e+00};
inline constexpr double acklam_b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                      -1.556989798598866e+02, 6.680131188771972e+01,
                                      -1.328068155288572e+01};
inline constexpr double acklam_c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                      -2.400758277161838e+00, -2.549732539343734e+00,
                                      4.374664141464968e+00,  2.938163982698783e+00};
inline constexpr double acklam_d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                      2.445134137142996e+00, 3.754408661907416e+00};
inline constexpr double acklam_p_low = 0.02425;
}  // namespace detail

// n(x) = exp(-x^2/2) / sqrt(2 pi)
inline double norm_pdf(double x) { return inv_sqrt_2pi * std::exp(-0.5 * x * x); }

// N(x) via erfc, accurate in both tails (relative accuracy near 1 ulp for x << 0).
inline double norm_cdf(double x) { return 0.5 * std::erfc(-x * std::numbers::sqrt2 / 2.0); }

// N^{-1}(p), Acklam's rational approximation refined by one Halley step on erfc:
// relative error below 1e-15 over (0, 1). Returns -inf / +inf at 0 / 1 and NaN outside [0, 1].
double norm_inv(double p);

}  // namespace v28
