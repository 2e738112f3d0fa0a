// The BSM loop built for AVX-512 (F, DQ, VL, BW); chosen at run time by bsm_kernels.cpp.
#include "bsm_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx512.hpp"  // last: the rest of the unit is built for this level

#include "bsm_kernels.ipp"

static_assert(V28_SIMD_BYTES == 64, "simd_target_avx512.hpp selects the 64-byte build");

namespace v28::bsm::detail {
bool run_avx512(const Inputs& in, const Outputs& out) { return avx512::run_simd(in, out); }
}  // namespace v28::bsm::detail
#endif
