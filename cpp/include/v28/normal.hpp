// The standard normal distribution: density, CDF and its inverse (double precision).
#pragma once

#include <cmath>
#include <numbers>

namespace v28 {

inline constexpr double inv_sqrt_2pi = 0.3989422804014326779399460599343819;  // 1/sqrt(2 pi)
inline constexpr double sqrt_2pi = 2.50662827463100050241576528481104525300698674061;

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

// N^{-1}(p) for p in (0, 1): Acklam's approximation, then one Halley step on N(x) - p, which
// brings it to machine precision. The logarithm, exponential and CDF are the caller's, so the
// library (std::) and the implied-vol solver (its inline SIMD functions) share one body.
template <class Log, class Exp, class Cdf>
inline double acklam_inverse(double p, Log log, Exp exp, Cdf cdf) {
    const auto& a = acklam_a;
    const auto& b = acklam_b;
    const auto& c = acklam_c;
    const auto& d = acklam_d;
    double x;
    if (p < acklam_p_low || p > 1.0 - acklam_p_low) {
        // 1 - p is exact for p > 1/2 (Sterbenz), so the upper tail loses nothing to it.
        const double q = std::sqrt(-2.0 * log(p < 0.5 ? p : 1.0 - p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
        if (p > 0.5) x = -x;
    } else {
        const double q = p - 0.5;
        const double r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    }
    // In the upper tail (1 - p) - N(-x) is N(x) - p computed without cancellation.
    const double e = (p > 0.5) ? (1.0 - p) - cdf(-x) : cdf(x) - p;
    const double u = e * sqrt_2pi * exp(0.5 * x * x);
    return x - u / (1.0 + 0.5 * x * u);
}
}  // namespace detail

// n(x) = exp(-x^2/2) / sqrt(2 pi)
inline double norm_pdf(double x) { return inv_sqrt_2pi * std::exp(-0.5 * x * x); }

// N(x) via erfc, accurate in both tails (relative accuracy near 1 ulp for x << 0).
inline double norm_cdf(double x) { return 0.5 * std::erfc(-x * std::numbers::sqrt2 / 2.0); }

// N^{-1}(p), Acklam's rational approximation refined by one Halley step on erfc:
// relative error below 1e-15 over (0, 1). Returns -inf / +inf at 0 / 1 and NaN outside [0, 1].
double norm_inv(double p);

}  // namespace v28
