// Branch-free double-precision exp, log, erfcx and the normal CDF, written so that a loop
// calling them auto-vectorises (no table look-ups, no branches, no libm calls: selects compile
// to blends, integer work is 64-bit shifts and adds). Compile the calling loop for a target
// with FMA (e.g. `target("arch=x86-64-v3")`); without hardware FMA, std::fma is a slow libm
// call, so baseline code paths should use <cmath> instead.
//
// Accuracy (against long-double libm in BM_vecmath_accuracy of benchmarks/cpp/bench_bsm.cpp,
// and against mpmath through the BSM prices in tests/test_black_scholes.py): exp and log
// within 1 ulp over their normal range; erfcx within 7 ulp; norm_cdf within 7 ulp relative
// in the lower tail down to the underflow threshold (x ~ -38; glibc's 0.5 erfc(-x / sqrt 2)
// is off by up to ~1700 ulp there, from the rounding of x / sqrt 2) and within 1 ulp
// absolute above.
//
// References: exp by Cody-Waite reduction k = round(x / ln 2), r = x - k ln 2, and a degree-13
// Taylor polynomial (|r| <= ln2/2, truncation < 4e-18); log as in fdlibm's e_log.c
// (s = f / (2 + f) and its Remez polynomial Lg1..Lg7); erfcx from (1 + 2x) erfcx(x) as a
// smooth function of t = (x - k) / (x + k), k = 3.75 (Shepherd & Laframboise 1981, Math.
// Comp. 36, "Chebyshev approximation of (1 + 2x) exp(x^2) erfc x in 0 <= x < inf"), with our
// own Chebyshev fits computed with mpmath at 50 digits.
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
    // e^r = sum r^n / n!, n <= 13, in Estrin's scheme (short dependency chains: scalar
    // callers are latency-bound); the final 1 + r (...) keeps the last rounding small.
    const double r2 = r * r, r4 = r2 * r2;
    const double a23 = std::fma(1.0 / 6.0, r, 0.5);
    const double a45 = std::fma(1.0 / 120.0, r, 1.0 / 24.0);
    const double a67 = std::fma(1.0 / 5040.0, r, 1.0 / 720.0);
    const double a89 = std::fma(1.0 / 362880.0, r, 1.0 / 40320.0);
    const double a1011 = std::fma(1.0 / 39916800.0, r, 1.0 / 3628800.0);
    const double a1213 = std::fma(1.0 / 6227020800.0, r, 1.0 / 479001600.0);
    const double b2 = std::fma(a45, r2, a23);      // terms 2..5
    const double b6 = std::fma(a89, r2, a67);      // terms 6..9
    const double b10 = std::fma(a1213, r2, a1011);  // terms 10..13
    const double c2 = std::fma(std::fma(b10, r4, b6), r4, b2);  // terms 2..13 over r^2
    const double p = std::fma(r2, c2, r) + 1.0;
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

// y(t) = (1 + 2x) erfcx(x), x = k (1 + t) / (1 - t), k = 3.75, as one degree-24 polynomial in t
// on [-1, 1] (from a 25-term Chebyshev fit, mpmath, 50 digits; sum |a_i| = 1.43 max |y|, so the
// monomial form is well conditioned and Horner costs one FMA per term).
inline constexpr double erfcx_k = 3.75;
inline constexpr double erfcx_poly[] = {
    1.2375126308378275796, -1.4024059858554696245e-1, 3.585415485464429369e-3,
    8.2276738490145207683e-2, -1.0880393014174885723e-1, 9.230432116037747776e-2,
    -5.8693398589636774061e-2, 2.8362277418956404286e-2, -9.7465795580292755337e-3,
    1.7556258528952953569e-3, 2.9371366559134481992e-4, -2.9015408054084171105e-4,
    5.1649098892682403449e-5, 2.238423915508222982e-5, -1.1444146237700523373e-5,
    -9.7355989673677493407e-7, 1.7516376488490621431e-6, -5.7218230603224087501e-8,
    -2.5866850716155885443e-7, 2.3263508708859123732e-8, 3.8675334242222356816e-8,
    -3.7442100809620186444e-9, -5.1739902140113096269e-9, 3.1114333809799251993e-10,
    4.2514714447963897761e-10,
};

// erfcx(x) = exp(x^2) erfc(x) for x >= 0, branch-free for SIMD loops. The two divisions
// (t and 1 / (1 + 2x)) share one: 1 / ((x + k)(1 + 2x)). x is clamped at 1e150 (where
// erfcx ~ 4e-151), which keeps that product finite.
inline double erfcx_nonneg(double x) {
    x = x > 1e150 ? 1e150 : x;
    const double one_2x = std::fma(2.0, x, 1.0);
    const double xpk = x + erfcx_k;
    const double inv = 1.0 / (xpk * one_2x);
    const double t = (x - erfcx_k) * one_2x * inv;
    // Even and odd halves by Horner in t^2 (two independent chains of 12 FMAs instead of one
    // of 24, so that the loop is less bound by FMA latency; as accurate as plain Horner).
    constexpr int n = sizeof(erfcx_poly) / sizeof(double);
    static_assert(n % 2 == 1);
    const double t2 = t * t;
    double even = erfcx_poly[n - 1];
    double odd = erfcx_poly[n - 2];
#pragma GCC unroll 16
    for (int k = (n - 3) / 2; k >= 0; --k) even = std::fma(even, t2, erfcx_poly[2 * k]);
#pragma GCC unroll 16
    for (int k = (n - 5) / 2; k >= 0; --k) odd = std::fma(odd, t2, erfcx_poly[2 * k + 1]);
    return std::fma(odd, t, even) * xpk * inv;
}

// The same y(t) on 8 pieces of width 1/4 in t, each a degree-11 polynomial in the local
// u = 8 (t - centre) (from 12-term Chebyshev fits, mpmath, 50 digits; sum |a_i| ~ |y|, so the
// monomial form loses nothing). Evaluated in Estrin's scheme: a short dependency chain for
// latency-bound scalar code such as the implied-vol iteration (the table look-up does not
// vectorise well; SIMD loops use erfcx_nonneg).
inline constexpr double erfcx_pieces[8][12] = {
    {1.1555198215964951159, 1.1356913483119258291e-1, -3.5777643443238801044e-2, 5.5720998454331078364e-3, -5.6103469870685455974e-4, 3.8211899788794389076e-5, -1.6641917890197624836e-6, 3.3425369818183301086e-8, 6.8697987931571110793e-10, -5.2140813352071714629e-11, -3.3284834736161530959e-14, 6.3545041442486987877e-14},
    {1.2762684613024313811, 2.2123634446526300469e-2, -1.3128877141080040432e-2, 2.3656986747016264262e-3, -2.6884671571520516771e-4, 2.1253559327782735345e-5, -1.1535276385777772984e-6, 3.7201289944511746837e-8, -1.7779969413557036295e-10, -3.9956470700588822755e-11, 1.1410850140379698815e-12, 3.5694198996889177981e-14},
    {1.2832352487355276439, -9.111379214463223643e-3, -3.9390575563963876361e-3, 9.0082108363455820561e-4, -1.1545000377991661441e-4, 1.0386021755104762358e-5, -6.7521625442389084416e-7, 2.9838968633002315979e-8, -6.6024463856645282723e-10, -1.2933907892253876154e-11, 1.3572787001298280704e-12, -1.5434685092696358393e-14},
    {1.2549084126438295245, -1.7038247616096185788e-2, -6.1727714218814573033e-4, 3.0010452665355006499e-4, -4.4522036049316935498e-5, 4.4783933354732463713e-6, -3.3585831083236977117e-7, 1.8598126146103050573e-8, -6.804704084202527326e-10, 8.3556747808655213268e-12, 6.8061223571011213337e-13, -3.8509863288026933902e-14},
    {1.2201753173903034046, -1.7029362884451869929e-2, 4.038104276069543031e-4, 7.8575949251785516664e-5, -1.5403025550086953649e-5, 1.7266963774298725141e-6, -1.443532395233306485e-7, 9.3698863133985426113e-9, -4.5606853181604134026e-10, 1.4147208093027631125e-11, -3.6294753374322342248e-14, -2.2526251910046915118e-14},
    {1.1881610979476098467, -1.4849923849119477366e-2, 6.1462790930089764964e-4, 5.8275643163741253235e-6, -4.6287895156180248964e-6, 6.048523380944150628e-7, -5.5151791374039742899e-8, 3.9792218062153606926e-9, -2.3020645250670620991e-10, 1.0158305000049319541e-11, -2.7793563739912011722e-13, 0.0},
    {1.1609086026527300413, -1.2430234721133032082e-2, 5.7595921676477388389e-4, -1.3966768396491068488e-5, -9.9579477884634097397e-7, 1.9239933587789861515e-7, -1.9325587662619376649e-8, 1.4963887401786581449e-9, -9.5639916391776519678e-11, 5.0454152378557866605e-12, -2.0800614295155003127e-13, 5.4080473055818621367e-15},
    {1.1382293925903194336, -1.0313600006140505633e-2, 4.7986852970359207948e-4, -1.6638498162057320299e-5, 9.8311759536758660432e-8, 5.1996401390113033436e-8, -6.3164217413783394204e-9, 5.2135865791173956841e-10, -3.5241721364277042581e-11, 2.0317319768971351867e-12, -9.9661734735758074839e-14, 3.9189413932133864752e-15}
};

inline double erfcx_nonneg_scalar(double x) {
    x = x > 1e300 ? 1e300 : x;
    const double t = (x - erfcx_k) / (x + erfcx_k);
    int piece = static_cast<int>((t + 1.0) * 4.0);
    piece = piece < 0 ? 0 : (piece > 7 ? 7 : piece);
    const double u = 8.0 * (t - (-1.0 + 0.25 * piece + 0.125));
    const double* a = erfcx_pieces[piece];
    const double u2 = u * u, u4 = u2 * u2, u8 = u4 * u4;
    const double p01 = std::fma(a[1], u, a[0]), p23 = std::fma(a[3], u, a[2]);
    const double p45 = std::fma(a[5], u, a[4]), p67 = std::fma(a[7], u, a[6]);
    const double p89 = std::fma(a[9], u, a[8]), p1011 = std::fma(a[11], u, a[10]);
    const double q0 = std::fma(p23, u2, p01), q1 = std::fma(p67, u2, p45);
    const double q2 = std::fma(p1011, u2, p89);
    const double y = std::fma(q2, u8, std::fma(q1, u4, q0));
    return y / std::fma(2.0, x, 1.0);
}

// erfcx(x) for any x (scalar code); for x < 0, erfcx(x) = 2 exp(x^2) - erfcx(-x) (overflows
// below ~-26.6).
inline double erfcx(double x) {
    const double pos = erfcx_nonneg_scalar(std::fabs(x));
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
