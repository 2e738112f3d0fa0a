// Implied vol in AVX-512 lanes (8 options per register); chosen at run time by iv.cpp.
// Standard and intrinsic headers come before the target pragma so that their inline
// functions keep the default target (vmath.hpp explains the namespaces).
#include <cstddef>
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "iv_kernels.hpp"

#define V28_SIMD_TARGET_AVX512  // the pragma below does not set the ISA macros
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")

#include "iv_kernels.ipp"

static_assert(V28_SIMD_BYTES == 64, "V28_SIMD_TARGET_AVX512 selects the 64-byte build");

namespace v28::bsm::detail {
std::size_t iv_lanes_avx512(const IvInputs& in, double* out) { return avx512::iv_lanes(in, out); }
}  // namespace v28::bsm::detail
#endif
