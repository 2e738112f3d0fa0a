#include "v28/normal.hpp"

#include <limits>

namespace v28 {

// Acklam's approximation and a Halley step (normal.hpp) on the libm functions.
double norm_inv(double p) {
    if (!(p >= 0.0 && p <= 1.0)) return std::numeric_limits<double>::quiet_NaN();
    if (p == 0.0) return -std::numeric_limits<double>::infinity();
    if (p == 1.0) return std::numeric_limits<double>::infinity();
    return detail::acklam_inverse(
        p, [](double v) { return std::log(v); }, [](double v) { return std::exp(v); }, norm_cdf);
}

}  // namespace v28
