// The CRR loop built for AVX2 + FMA; chosen at run time by binomial.cpp.
#include "binomial_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx2.hpp"  // last: the rest of the unit is built for this level

#include "binomial_kernels.ipp"

namespace v28::binomial::detail {
void run_batch_avx2(const Batch& b) { avx2::run_batch(b); }
}  // namespace v28::binomial::detail
#endif
