// Branch-free double-precision exp, log, erfcx and the normal CDF, written so that a loop
// calling them auto-vectorises (no table look-ups, no branches, no libm calls: selects compile
// to blends, integer work is 64-bit shifts and adds). Compile the calling loop for a target
// with FMA (e.g. `target("arch=x86-64-v3")`); without hardware FMA, std::fma is a slow libm
// call, so baseline code paths should use <cmath> instead.
//
// Accuracy (checked against mpmath in tests/test_black_scholes.py through the BSM kernel and
// directly in benchmarks/cpp/bench_bsm.cpp): exp and log within 1 ulp of correctly rounded
// results over their normal range; norm_cdf within 6 ulp relative in the lower tail down to
// the underflow threshold (x ~ -38; glibc's 0.5 erfc(-x / sqrt 2) is off by up to ~1700 ulp
// there, from the rounding of x / sqrt 2) and within 1 ulp absolute above.
//
// References: exp by Cody-Waite reduction k = round(x / ln 2), r = x - k ln 2, and a degree-13
// Taylor polynomial (|r| <= ln2/2, truncation < 4e-18); log as in fdlibm's e_log.c
// (s = f / (2 + f) and its Remez polynomial Lg1..Lg7); erfcx by the Chebyshev expansion of
// (1 + 2x) erfcx(x) in t = (x - k) / (x + k), k = 3.75 (Shepherd & Laframboise 1981, Math.
// Comp. 36, "Chebyshev approximation of (1 + 2x) exp(x^2) erfc x in 0 <= x < inf"), with our
// own coefficients computed with mpmath at 40 digits.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace v28::vm {

inline std::uint64_t bits(double x) { return std::bit_cast<std::uint64_t>(x); }
inline double from_bits(std::uint64_t u) { return std::bit_cast<double>(u); }

// 2^k for an integer-valued double k in [-1022, 1023].
inline double pow2_int(double k) {
    return from_bits(bits(k + (0x1p52 + 1023.0)) << 52);
}

// sqrt(x) for x >= 0, within 1 ulp. std::sqrt would be one instruction, but without
// -fno-math-errno (a whole-file flag) GCC keeps its errno call and will not vectorise the
// loop. Reciprocal square root from the bit-pattern estimate (relative error < 3.5 %) and
// four Newton steps (error squares each time, to < 1e-20), then one Newton step on the root.
// x below 2^-1000 (subnormal-ish) returns 0.
inline double sqrt(double x) {
    double y = from_bits(0x5FE6EB50C7B537A9ULL - (bits(x) >> 1));
    const double hx = 0.5 * x;
    for (int i = 0; i < 4; ++i) y = y * std::fma(-hx * y, y, 1.5);
    const double r = x * y;
    const double root = std::fma(0.5 * y, std::fma(-r, r, x), r);
    return x < 0x1p-1000 ? 0.0 * x : root;  // 0 (or NaN) keeps its sign/NaN-ness
}

// e^x. Overflows to +inf above ~709.78, underflows gracefully (subnormals, then 0); NaN in,
// NaN out.
inline double exp(double x) {
    constexpr double log2e = 1.4426950408889634074;
    constexpr double ln2_hi = 0.6931471805599453094;   // nearest double to ln 2
    constexpr double ln2_lo = 2.3190468138462996e-17;  // ln 2 - ln2_hi
    constexpr double shifter = 0x1.8p52;
    // Clamp so that the two-factor scaling below stays in range; NaN passes (comparisons false).
    x = x < -746.0 ? -746.0 : x;
    x = x > 710.0 ? 710.0 : x;
    const double k = std::fma(x, log2e, shifter) - shifter;  // round(x / ln 2)
    double r = std::fma(-k, ln2_hi, x);
    r = std::fma(-k, ln2_lo, r);
    // e^r = sum r^n / n!, n <= 13.
    double p = 1.0 / 6227020800.0;
    p = std::fma(p, r, 1.0 / 479001600.0);
    p = std::fma(p, r, 1.0 / 39916800.0);
    p = std::fma(p, r, 1.0 / 3628800.0);
    p = std::fma(p, r, 1.0 / 362880.0);
    p = std::fma(p, r, 1.0 / 40320.0);
    p = std::fma(p, r, 1.0 / 5040.0);
    p = std::fma(p, r, 1.0 / 720.0);
    p = std::fma(p, r, 1.0 / 120.0);
    p = std::fma(p, r, 1.0 / 24.0);
    p = std::fma(p, r, 1.0 / 6.0);
    p = std::fma(p, r, 0.5);
    p = std::fma(p, r, 1.0);
    p = std::fma(p, r, 1.0);
    // 2^k as 2^k1 * 2^k2 so that k in [-1077, 1025] never leaves the exponent range of a
    // factor; the first product is exact, the second rounds once (also into subnormals).
    const double k1 = (0.5 * k + shifter) - shifter;  // about k/2 (std::floor does not vectorise)
    return (p * pow2_int(k1)) * pow2_int(k - k1);
}

// Natural logarithm. log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, NaN -> NaN.
inline double log(double x) {
    constexpr double ln2_hi = 6.93147180369123816490e-01;  // 32 bits: k * ln2_hi is exact
    constexpr double ln2_lo = 1.90821492927058770002e-10;
    constexpr double lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01,
                     lg3 = 2.857142874366239149e-01, lg4 = 2.222219843214978396e-01,
                     lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01,
                     lg7 = 1.479819860511658591e-01;
    const bool sub = x < 0x1p-1022;  // subnormal (or zero/negative, fixed up at the end)
    // Pick the scaled value with a bit mask: with the default -ftrapping-math GCC will not
    // if-convert (and so not vectorise) a multiply that only one arm of a select needs.
    const std::uint64_t mask = sub ? ~0ULL : 0ULL;
    const double xs = from_bits((bits(x * 0x1p54) & mask) | (bits(x) & ~mask));
    // Split xs = 2^e * m with m in [sqrt(1/2), sqrt(2)): offset the bits so that the exponent
    // field rolls over at sqrt(2) instead of 2.
    const std::uint64_t ix = bits(xs) + (0x3FF0000000000000ULL - 0x3FE6A09E667F3BCDULL);
    const double e = from_bits((ix >> 52) | 0x4330000000000000ULL) - (0x1p52 + 1023.0) -
                     (sub ? 54.0 : 0.0);
    const double m = from_bits((ix & 0x000FFFFFFFFFFFFFULL) + 0x3FE6A09E667F3BCDULL);
    const double f = m - 1.0;
    const double hfsq = 0.5 * f * f;
    const double s = f / (2.0 + f);
    const double z = s * s;
    const double w = z * z;
    const double t1 = w * std::fma(w, std::fma(w, lg6, lg4), lg2);
    const double t2 = z * std::fma(w, std::fma(w, std::fma(w, lg7, lg5), lg3), lg1);
    const double r = t2 + t1;
    const double y = s * (hfsq + r) + e * ln2_lo - hfsq + f + e * ln2_hi;
    const double special = x == 0.0 ? -HUGE_VAL : (x == HUGE_VAL ? x : NAN);
    return (x > 0.0 && x < HUGE_VAL) ? y : special;
}

// Chebyshev coefficients of y(t) = (1 + 2x) erfcx(x), x = k (1 + t) / (1 - t), k = 3.75.
inline constexpr double erfcx_k = 3.75;
inline constexpr double erfcx_cheb[] = {
    1.17757893456740175408,    -4.59005458064647733085e-3, -8.42491333665179155835e-2,
    5.92099399981918904981e-2, -2.66586684353057522774e-2, 9.07499767070526509388e-3,
    -2.41316354041760819094e-3, 4.90775836525808632286e-4, -6.9169733025012063671e-5,
    4.13902798607301016753e-6, 7.74038306619849066863e-7,  -2.18864010492343956615e-7,
    1.07649994656709103771e-8, 4.52195981121828689793e-9,  -7.75440020883135110647e-10,
    -6.31808834088668449439e-11, 2.86879501093066989814e-11, 1.94558685457773472295e-13,
    -9.65469674843343890586e-13, 3.25254814814873984149e-14, 3.34781194828680538778e-14,
    -1.86456288041931310204e-15, -1.25079505306886470902e-15, 7.41823525662404341449e-17,
    5.06814890479611126857e-17, -2.23705665943600007631e-18, -2.18734294430301814043e-18,
};

// erfcx(x) = exp(x^2) erfc(x) for x >= 0 (x = +inf gives 0).
inline double erfcx_nonneg(double x) {
    x = x > 1e300 ? 1e300 : x;  // keeps t finite at +inf
    const double t = (x - erfcx_k) / (x + erfcx_k);
    // Clenshaw recurrence for sum c_j T_j(t).
    constexpr int n = sizeof(erfcx_cheb) / sizeof(double);
    const double t2 = 2.0 * t;
    double b1 = 0.0, b2 = 0.0;
#pragma GCC unroll 32
    for (int j = n - 1; j >= 1; --j) {
        const double b0 = std::fma(t2, b1, erfcx_cheb[j] - b2);
        b2 = b1;
        b1 = b0;
    }
    const double y = std::fma(t, b1, erfcx_cheb[0] - b2);
    return y / std::fma(2.0, x, 1.0);
}

// erfcx(x) for any x; for x < 0, erfcx(x) = 2 exp(x^2) - erfcx(-x) (overflows below ~-26.6).
inline double erfcx(double x) {
    const double pos = erfcx_nonneg(std::fabs(x));
    return x >= 0.0 ? pos : 2.0 * exp(x * x) - pos;
}

// exp(-x^2 / 2) with x^2 split exactly (x*x = hi + lo), so the result keeps full relative
// accuracy even where x^2 / 2 is ~700.
inline double exp_neg_half_sq(double x) {
    x = x < -1e10 ? -1e10 : x;  // keeps lo finite at +-inf; NaN passes
    x = x > 1e10 ? 1e10 : x;
    const double hi = x * x;
    const double lo = std::fma(x, x, -hi);
    return exp(-0.5 * hi) * (1.0 - 0.5 * lo);
}

// Phi(x) from e = exp(-x^2 / 2) (shared with the density in the BSM Greeks):
// Phi(x) = e/2 * erfcx(|x| / sqrt 2) for x <= 0, 1 - that for x > 0.
inline double norm_cdf_from(double x, double e) {
    constexpr double inv_sqrt2 = 0.70710678118654752440;
    const double tail = 0.5 * e * erfcx_nonneg(std::fabs(x) * inv_sqrt2);
    return std::fma(x > 0.0 ? -1.0 : 1.0, tail, x > 0.0 ? 1.0 : 0.0);  // 1 - tail or tail
}

inline double norm_cdf(double x) { return norm_cdf_from(x, exp_neg_half_sq(x)); }

}  // namespace v28::vm
