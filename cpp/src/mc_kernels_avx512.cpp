// The Monte Carlo kernels built for AVX-512 (F, DQ, VL, BW); chosen at run time by mc_kernels.cpp.
#include "v28/mc_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx512.hpp"  // last: the rest of the unit is built for this level

#include "mc_kernels.ipp"

static_assert(V28_SIMD_BYTES == 64, "simd_target_avx512.hpp selects the 64-byte build");

namespace v28::mc::kernels {
extern const Table avx512_table{"avx512", &avx512::european, &avx512::asian, &avx512::normals};
}  // namespace v28::mc::kernels
#endif
