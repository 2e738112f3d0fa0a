// The Monte Carlo kernels built for AVX-512 (F, DQ, VL, BW); chosen at run time by mc_kernels.cpp.
// Standard and intrinsic headers come before the target pragma so that their inline
// functions keep the default target (vmath.hpp explains the namespaces).
#include <cstddef>
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "v28/mc_kernels.hpp"

#define V28_SIMD_TARGET_AVX512  // the pragma below does not set the ISA macros
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")

#include "mc_kernels.ipp"

static_assert(V28_SIMD_BYTES == 64, "V28_SIMD_TARGET_AVX512 selects the 64-byte build");

namespace v28::mc::kernels {
extern const Table avx512_table{"avx512", &avx512::european, &avx512::asian, &avx512::normals};
}  // namespace v28::mc::kernels
