// Implied vol in AVX2 + FMA lanes (4 options per register); chosen at run time by iv.cpp.
// Standard and intrinsic headers come before the target pragma so that their inline
// functions keep the default target (vmath.hpp explains the namespaces).
#include <cstddef>
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "iv_kernels.hpp"

#define V28_SIMD_TARGET_AVX2  // the pragma below does not set the ISA macros
#pragma GCC target("avx2,fma")

#include "iv_kernels.ipp"

static_assert(V28_SIMD_BYTES == 32, "V28_SIMD_TARGET_AVX2 selects the 32-byte build");

namespace v28::bsm::detail {
std::size_t iv_lanes_avx2(const IvInputs& in, double* out) { return avx2::iv_lanes(in, out); }
}  // namespace v28::bsm::detail
#endif
