#include "v28/normal.hpp"

#include <limits>

namespace v28 {

// Acklam's rational approximation (normal.hpp), then one Halley step against the exact CDF,
// which brings the error to machine precision.
double norm_inv(double p) {
    if (!(p >= 0.0 && p <= 1.0)) return std::numeric_limits<double>::quiet_NaN();
    if (p == 0.0) return -std::numeric_limits<double>::infinity();
    if (p == 1.0) return std::numeric_limits<double>::infinity();

    const auto& a = detail::acklam_a;
    const auto& b = detail::acklam_b;
    const auto& c = detail::acklam_c;
    const auto& d = detail::acklam_d;
    constexpr double p_low = detail::acklam_p_low;

    double x;
    if (p < p_low) {
        const double q = std::sqrt(-2.0 * std::log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    } else if (p <= 1.0 - p_low) {
        const double q = p - 0.5;
        const double r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    } else {
        const double q = std::sqrt(-2.0 * std::log1p(-p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    // Halley step on N(x) - p; in the upper tail (1-p) - N(-x) is the same quantity, computed
    // without cancellation.
    const double e = (p > 0.5) ? (1.0 - p) - norm_cdf(-x) : norm_cdf(x) - p;
    const double u = e * std::sqrt(2.0 * std::numbers::pi) * std::exp(0.5 * x * x);
    return x - u / (1.0 + 0.5 * x * u);
}

}  // namespace v28
