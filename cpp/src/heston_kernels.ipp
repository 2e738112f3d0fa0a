// Body of the Heston transform's inner sum, included by heston_kernels_<level>.cpp after that
// unit's target header (vmath.hpp names the namespace after the level).
#include "heston_kernels.hpp"
#include "v28/vmath.hpp"

namespace v28::heston::detail {
inline namespace V28_SIMD_ISA {

// A register of nodes at a time, the remainder one by one; the lanes are added in a fixed
// order, so a build's result does not depend on anything but its inputs.
inline double lewis_sum(const double* u, const double* re, const double* im, std::size_t n,
                        double x) {
    using simd::vd;
    vd acc{};
    std::size_t k = 0;
    for (; k + simd::lanes <= n; k += simd::lanes) {
        vd s, c;
        simd::sincos(simd::loadu(u + k) * x, s, c);
        acc += simd::loadu(re + k) * c - simd::loadu(im + k) * s;
    }
    double total = simd::sum(acc);
    for (; k < n; ++k) {
        double s, c;
        simd::sincos(u[k] * x, s, c);
        total += re[k] * c - im[k] * s;
    }
    return total;
}

}  // namespace V28_SIMD_ISA
}  // namespace v28::heston::detail
