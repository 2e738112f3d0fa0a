// The BSM loop built for AVX-512 (F, DQ, VL, BW); chosen at run time by bsm_kernels.cpp.
// Standard and intrinsic headers come before the target pragma so that their inline
// functions keep the default target (vmath.hpp explains the namespaces).
#include <cstddef>
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "bsm_kernels.hpp"

#define V28_SIMD_TARGET_AVX512  // the pragma below does not set the ISA macros
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")

#include "bsm_kernels.ipp"

static_assert(V28_SIMD_BYTES == 64, "V28_SIMD_TARGET_AVX512 selects the 64-byte build");

namespace v28::bsm::detail {
bool run_avx512(const Inputs& in, const Outputs& out) { return avx512::run_simd(in, out); }
}  // namespace v28::bsm::detail
#endif
