// The BSM loop built for AVX2 + FMA; chosen at run time by bsm_kernels.cpp.
#include "bsm_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx2.hpp"  // last: the rest of the unit is built for this level

#include "bsm_kernels.ipp"

static_assert(V28_SIMD_BYTES == 32, "simd_target_avx2.hpp selects the 32-byte build");

namespace v28::bsm::detail {
bool run_avx2(const Inputs& in, const Outputs& out) { return avx2::run_simd(in, out); }
}  // namespace v28::bsm::detail
#endif
