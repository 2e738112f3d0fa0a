// The Heston transform's inner sum built for AVX2 + FMA; chosen at run time by heston.cpp.
#include "heston_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx2.hpp"  // last: the rest of the unit is built for this level

#include "heston_kernels.ipp"

static_assert(V28_SIMD_BYTES == 32, "simd_target_avx2.hpp selects the 32-byte build");

namespace v28::heston::detail {
double lewis_sum_avx2(const double* u, const double* re, const double* im, std::size_t n,
                      double x) {
    return avx2::lewis_sum(u, re, im, n, x);
}
}  // namespace v28::heston::detail
#endif
