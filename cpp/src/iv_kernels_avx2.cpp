// Implied vol in AVX2 + FMA lanes (4 options per register); chosen at run time by iv.cpp.
#include "iv_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx2.hpp"  // last: the rest of the unit is built for this level

#include "iv_kernels.ipp"

static_assert(V28_SIMD_BYTES == 32, "simd_target_avx2.hpp selects the 32-byte build");

namespace v28::bsm::detail {
std::size_t iv_lanes_avx2(const IvInputs& in, double* out) { return avx2::iv_lanes(in, out); }
}  // namespace v28::bsm::detail
#endif
