// Internal: the two series of "Let's Be Rational" (P. Jäckel, Wilmott 2015, section 3) for the
// scalar solver (iv_scalar.ipp, T = double) and the vector lanes (iv_kernels.ipp, T = a
// register), defined once. Included from those bodies after the unit's target header, so the
// templates live in the level's namespace (vmath.hpp).
#pragma once

#include "iv_kernels.hpp"
#include "v28/vmath.hpp"

namespace v28::bsm::detail {
inline namespace V28_SIMD_ISA {

// Eq. (3.5): term k of the asymptotic expansion (3.4) is (-1)^k (2k-1)!! q^k P_k(e) with
// P_k(e) = 2 sum_j C(2k+1, 2j+1) e^j (Abramowitz & Stegun 26.2.12 applied to Y(z) = N(z)/n(z)).
// Returns P_k(e) / 2 by Horner's rule.
template <class T>
V28_VINLINE T asymptotic_poly(int k, T e) {
    T p{};
#pragma GCC unroll 18
    for (int j = k; j >= 0; --j) p = simd::fma(p, e, simd::bc<T>(kBinom.c[2 * k + 1][2 * j + 1]));
    return p;
}

// Eq. (3.8): n(h) e^{-t^2/2} [Y(h+t) - Y(h-t)] by its Taylor expansion to order t^13, given
// ex = e^{-(h^2 + t^2)/2} and a = 1 + h Y(h); accurate for t < 2 eps^(1/16). Unclamped.
template <class T>
V28_VINLINE T small_t_series(T h, T t, T ex, T a) {
    const T w = t * t;
    const T h2 = h * h;
    const T c6 = (-1.0 + 3.0 * a + a * h2) * (1.0 / 6.0);
    const T c120 = (-7.0 + 15.0 * a + h2 * (-1.0 + 10.0 * a + a * h2)) * (1.0 / 120.0);
    const T c5040 =
        (-57.0 + 105.0 * a + h2 * (-18.0 + 105.0 * a + h2 * (-1.0 + 21.0 * a + a * h2))) *
        (1.0 / 5040.0);
    const T c362880 =
        (-561.0 + 945.0 * a +
         h2 * (-285.0 + 1260.0 * a + h2 * (-33.0 + 378.0 * a + h2 * (-1.0 + 36.0 * a + a * h2)))) *
        (1.0 / 362880.0);
    const T c39916800 =
        (-6555.0 + 10395.0 * a +
         h2 * (-4680.0 + 17325.0 * a +
               h2 * (-840.0 + 6930.0 * a +
                     h2 * (-52.0 + 990.0 * a + h2 * (-1.0 + 55.0 * a + a * h2))))) *
        (1.0 / 39916800.0);
    const T c6227020800 =
        (-89055.0 + 135135.0 * a +
         h2 * (-82845.0 + 270270.0 * a +
               h2 * (-20370.0 + 135135.0 * a +
                     h2 * (-1926.0 + 25740.0 * a +
                           h2 * (-75.0 + 2145.0 * a + h2 * (-1.0 + 78.0 * a + a * h2)))))) *
        (1.0 / 6227020800.0);
    const T expansion =
        2.0 * t *
        (a + w * (c6 + w * (c120 + w * (c5040 + w * (c362880 + w * (c39916800 + w * c6227020800))))));
    return kInvSqrt2Pi * ex * expansion;
}

}  // namespace V28_SIMD_ISA
}  // namespace v28::bsm::detail
