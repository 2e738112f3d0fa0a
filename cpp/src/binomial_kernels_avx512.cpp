// The CRR loop built for AVX-512 (F, DQ, VL, BW; 512-bit vectors preferred); chosen at run
// time by binomial.cpp.
#include "binomial_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx512.hpp"  // last: the rest of the unit is built for this level
#pragma GCC target("prefer-vector-width=512")  // GCC tunes for 256 bits by default
#include "binomial_kernels.ipp"

namespace v28::binomial::detail {
void run_batch_avx512(const Batch& b) { avx512::run_batch(b); }
}  // namespace v28::binomial::detail
#endif
