// The Monte Carlo kernels built for AVX2 + FMA; chosen at run time by mc_kernels.cpp.
#include "v28/mc_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx2.hpp"  // last: the rest of the unit is built for this level

#include "mc_kernels.ipp"

static_assert(V28_SIMD_BYTES == 32, "simd_target_avx2.hpp selects the 32-byte build");

namespace v28::mc::kernels {
extern const Table avx2_table{"avx2", &avx2::european, &avx2::asian, &avx2::normals};
}  // namespace v28::mc::kernels
#endif
