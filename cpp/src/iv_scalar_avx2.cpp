// The scalar implied-vol solver built for AVX2 + FMA (also the AVX-512 level's); chosen at run
// time by iv.cpp. It also gives the vector kernels their rational-cubic guess.
#include <cfloat>
#include <cmath>
#include <limits>

#include "iv_kernels.hpp"
#include "v28/simd_dispatch.hpp"
#if V28_SIMD_X86
#include "simd_target_avx2.hpp"  // last: the rest of the unit is built for this level

#include "iv_scalar.ipp"

static_assert(V28_SIMD_BYTES == 32, "simd_target_avx2.hpp selects the 32-byte build");

namespace v28::bsm::detail {
extern const IvScalar iv_scalar_avx2 = avx2::iv_scalar_table;

IvGuess iv_interpolate_guess(double beta, double b_max, double s_c, double b_c, double v_c,
                             double s_2, double b_2, double v_2, double m_f, double m_fp,
                             double m_fpp) {
    return avx2::scalar_interpolate_guess(beta, b_max, s_c, b_c, v_c, s_2, b_2, v_2, m_f, m_fp,
                                          m_fpp);
}
}  // namespace v28::bsm::detail
#endif
