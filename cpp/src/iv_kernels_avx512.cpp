// Implied vol in AVX-512 (F, DQ, VL, BW) lanes (8 options per register); chosen at run time
// by iv.cpp.
#include "iv_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx512.hpp"  // last: the rest of the unit is built for this level

#include "iv_kernels.ipp"

static_assert(V28_SIMD_BYTES == 64, "simd_target_avx512.hpp selects the 64-byte build");

namespace v28::bsm::detail {
std::size_t iv_lanes_avx512(const IvInputs& in, double* out) { return avx512::iv_lanes(in, out); }
}  // namespace v28::bsm::detail
#endif
