// The Monte Carlo kernels built for AVX2 + FMA; chosen at run time by mc_kernels.cpp.
// Standard and intrinsic headers come before the target pragma so that their inline
// functions keep the default target (vmath.hpp explains the namespaces).
#include <cstddef>
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "v28/mc_kernels.hpp"

#define V28_SIMD_TARGET_AVX2  // the pragma below does not set the ISA macros
#pragma GCC target("avx2,fma")

#include "mc_kernels.ipp"

static_assert(V28_SIMD_BYTES == 32, "V28_SIMD_TARGET_AVX2 selects the 32-byte build");

namespace v28::mc::kernels {
extern const Table avx2_table{"avx2", &avx2::european, &avx2::asian, &avx2::normals};
}  // namespace v28::mc::kernels
