// The one SIMD math header of v28quant: exp, log, sqrt, erfcx and the normal CDF, and the
// Philox/Box-Muller normal generator, on GCC vector types and on plain doubles.
//
// One vector (`vd`, `vu`, `vi`) is one machine register: 8 doubles under AVX-512, 4 under
// AVX2 + FMA, 2 otherwise (SSE2 or any other target). The width follows the target this header
// is compiled for, and everything lives in an inline namespace named after it (avx512, avx2,
// base), so translation units compiled for different targets (`#pragma GCC target` before the
// include, chosen at run time by v28::simd::level(), simd_dispatch.hpp) never share a symbol.
// Every function is always_inline as well: no out-of-line copy exists for the linker (or link-time optimisation)
// to merge across targets, which once left the AVX-512 BSM loop calling a baseline exp. Include
// the standard headers a unit needs BEFORE such a pragma, so their inline functions keep the
// default target; this header itself uses compiler builtins only.
//
// The elementary functions are templates over T = vd (explicit SIMD loops: the BSM and Monte
// Carlo kernels) and T = double (scalar code such as the implied-vol iteration, and loops that
// GCC auto-vectorises inside `target(...)` functions, which inline them). Both spell the same
// operations, so a lane of a vector gives the bits of the scalar call on the same target.
// Multiply-adds are explicit fused operations where the target has FMA (a libm call for scalar
// code without FMA: use <cmath> there); the 16-byte base vectors have no FMA and use a * b + c.
//
// Accuracy with FMA (BM_simd_accuracy in benchmarks/cpp/bench_bsm.cpp against long-double libm;
// tests/test_black_scholes.py against mpmath through the BSM prices): exp and log within 1 ulp
// over their whole range (subnormals, 0, inf and NaN handled); erfcx within 7 ulp; norm_cdf
// within 7 ulp relative in the lower tail down to the underflow threshold (x ~ -38; glibc's
// 0.5 erfc(-x / sqrt 2) is off by up to ~1700 ulp there, from the rounding of x / sqrt 2) and
// within 1 ulp absolute above.
//
// References: exp by Cody-Waite reduction k = round(x / ln 2), r = x - k ln 2 (fdlibm's split
// of ln 2, exact products for |k| < 2^20) and a degree-13 Taylor polynomial (|r| <= ln2/2,
// truncation < 4e-18); log as in fdlibm's e_log.c (s = f / (2 + f) and its Remez polynomial
// Lg1..Lg7); erfcx from (1 + 2x) erfcx(x) as a smooth function of t = (x - k) / (x + k),
// k = 3.75 (Shepherd & Laframboise 1981, Math. Comp. 36, "Chebyshev approximation of
// (1 + 2x) exp(x^2) erfc x in 0 <= x < inf"), with our own Chebyshev fits computed with mpmath
// at 50 digits; sin/cos: fdlibm k_sin.c / k_cos.c on |r| <= pi/4. Philox4x32-10: J. K. Salmon
// et al. (2011), SC'11 (Random123 constants). Box-Muller: G. E. P. Box, M. E. Muller (1958),
// Ann. Math. Statist. 29(2).
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// GCC's C++ front end does not update the ISA macros after `#pragma GCC target`, so the level's
// target header (cpp/src/simd_target_*.hpp) also defines V28_SIMD_TARGET_AVX512 or _AVX2.
#if defined(V28_SIMD_TARGET_AVX512) || \
    (defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512VL__))
#define V28_SIMD_ISA avx512
#define V28_SIMD_BYTES 64
#elif defined(V28_SIMD_TARGET_AVX2) || (defined(__AVX2__) && defined(__FMA__))
#define V28_SIMD_ISA avx2
#define V28_SIMD_BYTES 32
#else
#define V28_SIMD_ISA base
#define V28_SIMD_BYTES 16
#endif

#define V28_VINLINE [[gnu::always_inline]] inline

namespace v28::simd {
inline namespace V28_SIMD_ISA {

typedef double vd __attribute__((vector_size(V28_SIMD_BYTES)));
typedef std::uint64_t vu __attribute__((vector_size(V28_SIMD_BYTES)));
typedef std::int64_t vi __attribute__((vector_size(V28_SIMD_BYTES)));

inline constexpr int lanes = V28_SIMD_BYTES / 8;

V28_VINLINE vd splat(double x) { return vd{} + x; }
V28_VINLINE vu splat_u(std::uint64_t x) { return vu{} + x; }
V28_VINLINE vd load(const double* p) { return *reinterpret_cast<const vd*>(p); }
V28_VINLINE void store(double* p, vd x) { *reinterpret_cast<vd*>(p) = x; }
// Unaligned forms (numpy arrays are 16-byte aligned at best).
V28_VINLINE vd loadu(const double* p) {
    vd x;
    __builtin_memcpy(&x, p, sizeof x);
    return x;
}
V28_VINLINE void storeu(double* p, vd x) { __builtin_memcpy(p, &x, sizeof x); }
// 0, 1, ..., lanes - 1.
V28_VINLINE vu iota() {
    vu r{};
    for (int l = 0; l < lanes; ++l) r[l] = static_cast<std::uint64_t>(l);
    return r;
}
V28_VINLINE vd select(vi mask, vd a, vd b) { return mask ? a : b; }
V28_VINLINE vd max0(vd x) { return x > 0.0 ? x : vd{}; }
V28_VINLINE double sum(vd x) {  // lane 0 first: a fixed order
    double s = 0.0;
    for (int l = 0; l < lanes; ++l) s += x[l];
    return s;
}
// True when every lane of the mask is set.
V28_VINLINE bool all(vi mask) {
    std::int64_t a = -1;
    for (int l = 0; l < lanes; ++l) a &= mask[l];
    return a != 0;
}

// a * b + c, fused where the target has FMA.
V28_VINLINE vd fma(vd a, vd b, vd c) {
#if V28_SIMD_BYTES == 64
    return _mm512_fmadd_pd(a, b, c);
#elif V28_SIMD_BYTES == 32
    return _mm256_fmadd_pd(a, b, c);
#else
    return a * b + c;
#endif
}

V28_VINLINE vd sqrt(vd x) {
#if V28_SIMD_BYTES == 64
    return _mm512_mask_sqrt_pd(x, 0xFF, x);  // the all-lanes mask: no undefined source
#elif V28_SIMD_BYTES == 32
    return _mm256_sqrt_pd(x);
#elif defined(__SSE2__)
    return _mm_sqrt_pd(x);
#else
    vd r;
    for (int l = 0; l < lanes; ++l) r[l] = __builtin_sqrt(x[l]);
    return r;
#endif
}

// (a mod 2^32) * m as a full 64-bit product (vpmuludq; plain 64-bit multiplies are emulated
// with three of them under AVX2).
V28_VINLINE vu mul32(vu a, std::uint32_t m) {
#if V28_SIMD_BYTES == 64
    // Full mask with a defined source: the unmasked intrinsic trips -Wmaybe-uninitialized.
    return (vu)_mm512_mask_mul_epu32((__m512i)a, 0xFF, (__m512i)a, (__m512i)splat_u(m));
#elif V28_SIMD_BYTES == 32
    return (vu)_mm256_mul_epu32((__m256i)a, _mm256_set1_epi64x(m));
#elif defined(__SSE2__)
    return (vu)_mm_mul_epu32((__m128i)a, _mm_set1_epi64x(m));
#else
    return (a & 0xFFFFFFFFull) * m;
#endif
}

// ---- Register pairs ------------------------------------------------------------------------
// vd2 is two registers whose every operation is written as the two halves back to back, so
// two independent dependency chains advance together in program order. The BSM loop body is
// ~450 instructions with a long critical path: under AVX2 one register per step leaves the
// out-of-order window too short to overlap steps, and a pair runs ~15 % faster (under AVX-512
// a pair spills: 32 registers are already in use).
struct vd2 {
    vd a, b;
};
struct vu2 {
    vu a, b;
};
struct vi2 {
    vi a, b;
};
#define V28_PAIR_OPS(P, op)                                                             \
    V28_VINLINE P operator op(P x, P y) { return {x.a op y.a, x.b op y.b}; }            \
    template <class S>                                                                  \
    V28_VINLINE P operator op(P x, S y) { return {x.a op y, x.b op y}; }                \
    template <class S>                                                                  \
    V28_VINLINE P operator op(S x, P y) { return {x op y.a, x op y.b}; }
V28_PAIR_OPS(vd2, +)
V28_PAIR_OPS(vd2, -)
V28_PAIR_OPS(vd2, *)
V28_PAIR_OPS(vd2, /)
V28_PAIR_OPS(vu2, +)
V28_PAIR_OPS(vu2, &)
V28_PAIR_OPS(vu2, |)
V28_PAIR_OPS(vu2, ^)
V28_PAIR_OPS(vi2, &)
V28_PAIR_OPS(vi2, |)
#undef V28_PAIR_OPS
#define V28_PAIR_CMP(op)                                                                \
    V28_VINLINE vi2 operator op(vd2 x, vd2 y) { return {x.a op y.a, x.b op y.b}; }      \
    V28_VINLINE vi2 operator op(vd2 x, double y) { return {x.a op y, x.b op y}; }
V28_PAIR_CMP(<)
V28_PAIR_CMP(>)
V28_PAIR_CMP(<=)
V28_PAIR_CMP(>=)
V28_PAIR_CMP(==)
#undef V28_PAIR_CMP
V28_VINLINE vd2 operator-(vd2 x) { return {-x.a, -x.b}; }
V28_VINLINE vu2 operator~(vu2 x) { return {~x.a, ~x.b}; }
V28_VINLINE vi2 operator~(vi2 x) { return {~x.a, ~x.b}; }
V28_VINLINE vu2 operator<<(vu2 x, int n) { return {x.a << n, x.b << n}; }
V28_VINLINE vu2 operator>>(vu2 x, int n) { return {x.a >> n, x.b >> n}; }
V28_VINLINE vi2& operator&=(vi2& x, vi2 y) { return x = x & y; }
V28_VINLINE vd2 splat2(double x) { return {splat(x), splat(x)}; }
V28_VINLINE vd2 fma(vd2 x, vd2 y, vd2 z) { return {fma(x.a, y.a, z.a), fma(x.b, y.b, z.b)}; }
V28_VINLINE vd2 sqrt(vd2 x) { return {sqrt(x.a), sqrt(x.b)}; }
V28_VINLINE vu2 as_u(vd2 x) { return {(vu)x.a, (vu)x.b}; }
V28_VINLINE vd2 as_d(vu2 u) { return {(vd)u.a, (vd)u.b}; }
V28_VINLINE vd2 sel(vi2 m, vd2 x, vd2 y) { return {m.a ? x.a : y.a, m.b ? x.b : y.b}; }
V28_VINLINE vu2 mask_bits(vi2 m) { return {(vu)m.a, (vu)m.b}; }
V28_VINLINE bool all(vi2 m) { return all(m.a & m.b); }

// ---- One spelling for a lane (double), a register (vd) and a pair (vd2) --------------------

V28_VINLINE double fma(double a, double b, double c) { return __builtin_fma(a, b, c); }
V28_VINLINE std::uint64_t as_u(double x) { return __builtin_bit_cast(std::uint64_t, x); }
V28_VINLINE vu as_u(vd x) { return (vu)x; }
V28_VINLINE double as_d(std::uint64_t u) { return __builtin_bit_cast(double, u); }
V28_VINLINE vd as_d(vu u) { return (vd)u; }
// `mask ? a : b` for a comparison result (bool for double, vi for vd).
V28_VINLINE double sel(bool mask, double a, double b) { return mask ? a : b; }
V28_VINLINE vd sel(vi mask, vd a, vd b) { return mask ? a : b; }
// All-ones bits where the mask is set.
V28_VINLINE std::uint64_t mask_bits(bool mask) { return mask ? ~0ull : 0ull; }
V28_VINLINE vu mask_bits(vi mask) { return (vu)mask; }
// The constant c as a T.
template <class T>
V28_VINLINE T bc(double c) {
    if constexpr (sizeof(T) == sizeof(double)) {
        return c;
    } else if constexpr (sizeof(T) == sizeof(vd)) {
        return splat(c);
    } else {
        return splat2(c);
    }
}
// a * b + c in polynomials that need no exact product (sin/cos, log): fused where the target
// has FMA, a product and a sum on the baseline, for doubles as for its vectors (no library
// call, and a lane gives the bits of the scalar call there too).
template <class T>
V28_VINLINE T madd(T a, T b, T c) {
#if V28_SIMD_BYTES >= 32
    return fma(a, b, c);
#else
    return a * b + c;
#endif
}
template <class T>
V28_VINLINE T abs(T x) {
    return as_d(as_u(x) & 0x7FFFFFFFFFFFFFFFull);
}

namespace detail {
inline constexpr double ln2_hi = 6.93147180369123816490e-01;  // fdlibm split of ln 2: 32 bits
inline constexpr double ln2_lo = 1.90821492927058770002e-10;
inline constexpr double round_shift = 0x1.8p52;  // adding it rounds |x| < 2^51 to an integer
inline constexpr std::int64_t round_shift_bits = 0x4338000000000000ll;
inline constexpr double inf = __builtin_huge_val();

// The integer n in t = n + round_shift (t from adding round_shift), as an int64 per lane.
V28_VINLINE vi rounded_bits(vd t) { return (vi)t - round_shift_bits; }
// 2^n for integer n in [-1022, 1023].
V28_VINLINE vd pow2(vi n) { return (vd)((n + 1023) << 52); }
// 2^k for an integer-valued k in [-1022, 1023].
template <class T>
V28_VINLINE T pow2_int(T k) {
    return as_d(as_u(k + (0x1p52 + 1023.0)) << 52);
}
// p 2^k for an integer-valued k in [-1077, 1025], rounded once (also into subnormals): 2^k as
// 2^k1 2^(k - k1) so that neither factor leaves the exponent range; the first product is exact.
template <class T>
V28_VINLINE T scale_pow2(T p, T k) {
    const T k1 = (0.5 * k + round_shift) - round_shift;  // about k/2
    return (p * pow2_int(k1)) * pow2_int(k - k1);
}
#if V28_SIMD_BYTES == 64
// One instruction on AVX-512 (the all-lanes mask form: no undefined source).
V28_VINLINE vd scale_pow2(vd p, vd k) { return _mm512_mask_scalef_pd(p, 0xFF, p, k); }
V28_VINLINE vd2 scale_pow2(vd2 p, vd2 k) { return {scale_pow2(p.a, k.a), scale_pow2(p.b, k.b)}; }
#endif
}  // namespace detail

// e^x. Overflows to +inf above ~709.78, underflows gracefully (subnormals, then 0); NaN in,
// NaN out.
template <class T>
V28_VINLINE T exp(T x) {
    using namespace detail;
    constexpr double log2e = 1.4426950408889634074;
    // Clamp so that the two-factor scaling below stays in range; NaN passes (comparisons false).
    x = sel(x < -746.0, bc<T>(-746.0), x);
    x = sel(x > 710.0, bc<T>(710.0), x);
    const T k = fma(x, bc<T>(log2e), bc<T>(round_shift)) - round_shift;  // round(x / ln 2)
    const T r = fma(-k, bc<T>(ln2_lo), fma(-k, bc<T>(ln2_hi), x));
    // e^r = sum r^n / n!, n <= 13, in Estrin's scheme (short dependency chains: scalar
    // callers are latency-bound); the final 1 + r (...) keeps the last rounding small.
    const T r2 = r * r, r4 = r2 * r2;
    const T a23 = fma(bc<T>(1.0 / 6.0), r, bc<T>(0.5));
    const T a45 = fma(bc<T>(1.0 / 120.0), r, bc<T>(1.0 / 24.0));
    const T a67 = fma(bc<T>(1.0 / 5040.0), r, bc<T>(1.0 / 720.0));
    const T a89 = fma(bc<T>(1.0 / 362880.0), r, bc<T>(1.0 / 40320.0));
    const T a1011 = fma(bc<T>(1.0 / 39916800.0), r, bc<T>(1.0 / 3628800.0));
    const T a1213 = fma(bc<T>(1.0 / 6227020800.0), r, bc<T>(1.0 / 479001600.0));
    const T b2 = fma(a45, r2, a23);      // terms 2..5
    const T b6 = fma(a89, r2, a67);      // terms 6..9
    const T b10 = fma(a1213, r2, a1011);  // terms 10..13
    const T c2 = fma(fma(b10, r4, b6), r4, b2);  // terms 2..13 over r^2
    const T p = fma(r2, c2, r) + 1.0;
    // 2^k as 2^k1 * 2^k2 so that k in [-1077, 1025] never leaves the exponent range of a
    // factor; the first product is exact, the second rounds once (also into subnormals).
    return scale_pow2(p, k);
}

// e^x and e^-x for |x| <= 708 (clamped outside), sharing one reduction: e^{+-r} = E(r^2) +-
// r O(r^2) from the same degree-13 Taylor polynomial (the Monte Carlo antithetic pairs).
V28_VINLINE void exp_pair(vd x, vd& ep, vd& em) {
    using namespace detail;
    x = x < -708.0 ? splat(-708.0) : x;
    x = x > 708.0 ? splat(708.0) : x;
    const vd t = fma(x, splat(1.44269504088896338700), splat(round_shift));
    const vd n = t - round_shift;
    const vi ni = rounded_bits(t);
    const vd r = fma(n, splat(-ln2_lo), fma(n, splat(-ln2_hi), x));
    const vd z = r * r;
    vd e = splat(1.0 / 479001600.0);  // even terms 1/12! ... 1/2!, 1
    e = fma(e, z, splat(1.0 / 3628800.0));
    e = fma(e, z, splat(1.0 / 40320.0));
    e = fma(e, z, splat(1.0 / 720.0));
    e = fma(e, z, splat(1.0 / 24.0));
    e = fma(e, z, splat(0.5));
    e = fma(e, z, splat(1.0));
    vd o = splat(1.0 / 6227020800.0);  // odd terms 1/13! ... 1/3!, 1
    o = fma(o, z, splat(1.0 / 39916800.0));
    o = fma(o, z, splat(1.0 / 362880.0));
    o = fma(o, z, splat(1.0 / 5040.0));
    o = fma(o, z, splat(1.0 / 120.0));
    o = fma(o, z, splat(1.0 / 6.0));
    o = fma(o, z, splat(1.0));
    const vd ro = r * o;
    ep = (e + ro) * pow2(ni);
    em = (e - ro) * pow2(-ni);
}

namespace detail {
// ln(2^e m) for xs = 2^e m a positive normal double and `e_shift` subtracted from e (54 for an
// input scaled up out of the subnormals).
template <class T>
V28_VINLINE T log_normal(T xs, T e_shift) {
    constexpr double lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01,
                     lg3 = 2.857142874366239149e-01, lg4 = 2.222219843214978396e-01,
                     lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01,
                     lg7 = 1.479819860511658591e-01;
    // Split xs = 2^e * m with m in [sqrt(1/2), sqrt(2)): offset the bits so that the exponent
    // field rolls over at sqrt(2) instead of 2.
    const auto ix = as_u(xs) + (0x3FF0000000000000ULL - 0x3FE6A09E667F3BCDULL);
    const T e = as_d((ix >> 52) | 0x4330000000000000ULL) - (0x1p52 + 1023.0) - e_shift;
    const T m = as_d((ix & 0x000FFFFFFFFFFFFFULL) + 0x3FE6A09E667F3BCDULL);
    const T f = m - 1.0;
    const T hfsq = 0.5 * f * f;
    const T s = f / (2.0 + f);
    const T z = s * s;
    const T w = z * z;
    const T t1 = w * madd(w, madd(w, bc<T>(lg6), bc<T>(lg4)), bc<T>(lg2));
    const T t2 = z * madd(w, madd(w, madd(w, bc<T>(lg7), bc<T>(lg5)), bc<T>(lg3)), bc<T>(lg1));
    const T r = t2 + t1;
    return s * (hfsq + r) + e * ln2_lo - hfsq + f + e * ln2_hi;
}
}  // namespace detail

// Natural logarithm. log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, NaN -> NaN.
template <class T>
V28_VINLINE T log(T x) {
    using namespace detail;
    const auto sub = x < 0x1p-1022;  // subnormal (or zero/negative, fixed up at the end)
    // Pick the scaled value with a bit mask: with the default -ftrapping-math GCC will not
    // if-convert (and so not auto-vectorise) a multiply that only one arm of a select needs.
    const auto mask = mask_bits(sub);
    const T xs = as_d((as_u(x * 0x1p54) & mask) | (as_u(x) & ~mask));
    const T y = log_normal(xs, as_d(as_u(bc<T>(54.0)) & mask));
    const T special = sel(x == 0.0, bc<T>(-inf), sel(x == inf, x, bc<T>(__builtin_nan(""))));
    return sel(x > 0.0, sel(x < inf, y, special), special);
}

// The same for x known to be a positive normal double (no checks): uniforms in (0, 1).
template <class T>
V28_VINLINE T log_positive_normal(T x) {
    return detail::log_normal(x, T{});
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

// erfcx(x) = exp(x^2) erfc(x) for x >= 0, branch-free. The two divisions (t and 1 / (1 + 2x))
// share one: 1 / ((x + k)(1 + 2x)). x is clamped at 1e150 (where erfcx ~ 4e-151), which keeps
// that product finite.
template <class T>
V28_VINLINE T erfcx_nonneg(T x) {
    x = sel(x > 1e150, bc<T>(1e150), x);
    const T one_2x = fma(bc<T>(2.0), x, bc<T>(1.0));
    const T xpk = x + erfcx_k;
    const T inv = 1.0 / (xpk * one_2x);
    const T t = (x - erfcx_k) * one_2x * inv;
    // Even and odd halves by Horner in t^2 (two independent chains of 12 FMAs instead of one
    // of 24, so that the loop is less bound by FMA latency; as accurate as plain Horner).
    constexpr int n = sizeof(erfcx_poly) / sizeof(double);
    static_assert(n % 2 == 1);
    const T t2 = t * t;
    T even = bc<T>(erfcx_poly[n - 1]);
    T odd = bc<T>(erfcx_poly[n - 2]);
#pragma GCC unroll 16
    for (int k = (n - 3) / 2; k >= 0; --k) even = fma(even, t2, bc<T>(erfcx_poly[2 * k]));
#pragma GCC unroll 16
    for (int k = (n - 5) / 2; k >= 0; --k) odd = fma(odd, t2, bc<T>(erfcx_poly[2 * k + 1]));
    return fma(odd, t, even) * xpk * inv;
}

// ---- erfcx in pieces (scalar code; AVX-512 registers below) --------------------------------

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


V28_VINLINE double erfcx_nonneg_scalar(double x) {
    x = x > 1e300 ? 1e300 : x;
    const double t = (x - erfcx_k) / (x + erfcx_k);
    int piece = static_cast<int>((t + 1.0) * 4.0);
    piece = piece < 0 ? 0 : (piece > 7 ? 7 : piece);
    const double u = 8.0 * (t - (-1.0 + 0.25 * piece + 0.125));
    const double* a = erfcx_pieces[piece];
    const double u2 = u * u, u4 = u2 * u2, u8 = u4 * u4;
    const double p01 = fma(a[1], u, a[0]), p23 = fma(a[3], u, a[2]);
    const double p45 = fma(a[5], u, a[4]), p67 = fma(a[7], u, a[6]);
    const double p89 = fma(a[9], u, a[8]), p1011 = fma(a[11], u, a[10]);
    const double q0 = fma(p23, u2, p01), q1 = fma(p67, u2, p45);
    const double q2 = fma(p1011, u2, p89);
    const double y = fma(q2, u8, fma(q1, u4, q0));
    return y / fma(2.0, x, 1.0);
}

// ---- The normal CDF (any T) ----------------------------------------------------------------

// The rounding error lo = x*x - hi of hi = x*x (exact), for |x| <= 1e10. One FMA where the
// target has it; the 16-byte base vectors have none and take Dekker's product (T. J. Dekker
// (1971), Numer. Math. 18, "A floating-point technique for extending the available precision"):
// x split into two 26-bit halves by Veltkamp's 2^27 + 1, whose products are exact.
template <class T>
V28_VINLINE T square_error(T x, T hi) {
#if V28_SIMD_BYTES == 16
    if constexpr (sizeof(T) != sizeof(double)) {
        const T c = x * 134217729.0;
        const T xh = c - (c - x);
        const T xl = x - xh;
        return ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl;
    }
#endif
    return fma(x, x, -hi);
}

// exp(-x^2 / 2) with x^2 split exactly (x*x = hi + lo), so the result keeps full relative
// accuracy even where x^2 / 2 is ~700.
template <class T>
V28_VINLINE T exp_neg_half_sq(T x) {
    x = sel(x < -1e10, bc<T>(-1e10), x);  // keeps lo finite at +-inf; NaN passes
    x = sel(x > 1e10, bc<T>(1e10), x);
    const T hi = x * x;
    const T lo = square_error(x, hi);
    return exp(-0.5 * hi) * (1.0 - 0.5 * lo);
}

// Phi(x) from e = exp(-x^2 / 2) (shared with the density in the BSM Greeks):
// Phi(x) = e/2 * erfcx(|x| / sqrt 2) for x <= 0, 1 - that for x > 0.
// Scalar code takes the piecewise erfcx: a shorter dependency chain for latency-bound callers.
template <class T>
V28_VINLINE T norm_cdf_from(T x, T e) {
    constexpr double inv_sqrt2 = 0.70710678118654752440;
    T ex;
    if constexpr (sizeof(T) == sizeof(double)) {
        ex = erfcx_nonneg_scalar(abs(x) * inv_sqrt2);
    } else {
        ex = erfcx_nonneg(abs(x) * inv_sqrt2);
    }
    const T tail = 0.5 * e * ex;
    const auto pos = x > 0.0;
    return fma(sel(pos, bc<T>(-1.0), bc<T>(1.0)), tail, sel(pos, bc<T>(1.0), bc<T>(0.0)));
}

template <class T>
V28_VINLINE T norm_cdf(T x) {
    return norm_cdf_from(x, exp_neg_half_sq(x));
}

#if V28_SIMD_BYTES == 64
// The pieces as columns (coefficient j of pieces 0..7), one register each.
struct ErfcxColumns {
    alignas(64) double c[12][8];
    constexpr ErfcxColumns() : c{} {
        for (int p = 0; p < 8; ++p) {
            for (int j = 0; j < 12; ++j) c[j][p] = erfcx_pieces[p][j];
        }
    }
};
inline constexpr ErfcxColumns erfcx_columns{};

// erfcx(x), x >= 0, on AVX-512: the 8 pieces above, each coefficient picked per lane by one
// permute (8 doubles fit one register), so a lane costs 11 FMAs in place of 24; the two
// divisions share one as in erfcx_nonneg.
V28_VINLINE vd erfcx_nonneg_pieces(vd x) {
    using namespace detail;
    x = x > 1e150 ? splat(1e150) : x;
    const vd one_2x = fma(splat(2.0), x, splat(1.0));
    const vd xpk = x + erfcx_k;
    const vd inv = 1.0 / (xpk * one_2x);
    const vd t = (x - erfcx_k) * one_2x * inv;
    // piece = floor(4 (t + 1)) in [0, 7] (a tie at a boundary may pick either neighbour: both
    // fits hold there).
    vd piece = (fma(t, splat(4.0), splat(3.5)) + round_shift) - round_shift;
    piece = piece > 7.0 ? splat(7.0) : piece;
    piece = piece < 0.0 ? vd{} : piece;
    const __m512i idx = (__m512i)as_u(piece + round_shift);  // the low 3 bits index the piece
    const vd u = fma(splat(8.0), t, fma(splat(-2.0), piece, splat(7.0)));  // 8 (t - centre)
    // The all-lanes mask form of the permute: no undefined source.
    const auto pick = [&](int j) {
        return vd(_mm512_mask_permutexvar_pd(x, 0xFF, idx, load(erfcx_columns.c[j])));
    };
    vd y = pick(11);
#pragma GCC unroll 11
    for (int j = 10; j >= 0; --j) y = fma(y, u, pick(j));
    return y * xpk * inv;
}
V28_VINLINE vd2 erfcx_nonneg_pieces(vd2 x) {
    return {erfcx_nonneg_pieces(x.a), erfcx_nonneg_pieces(x.b)};
}
#endif

// erfcx(x) for any x (scalar code); for x < 0, erfcx(x) = 2 exp(x^2) - erfcx(-x) (overflows
// below ~-26.6).
V28_VINLINE double erfcx(double x) {
    const double pos = erfcx_nonneg_scalar(abs(x));
    return x >= 0.0 ? pos : 2.0 * exp(x * x) - pos;
}

// ---- Uniforms and normals from Philox words (Monte Carlo; any T) ---------------------------

// Uniform in (0, 1) from the low 32 bits of x (a word or a lane of words): (x + 1/2) / 2^32,
// exact.
template <class U>
V28_VINLINE auto uniform_open(U x) {
    const auto big = as_d((x & 0xFFFFFFFFull) | 0x4330000000000000ull);  // 2^52 + x
    return (big - (0x1p52 - 0.5)) * 0x1p-32;
}
// Uniform in [0, 1) from the low 32 bits: x / 2^32, exact.
template <class U>
V28_VINLINE auto uniform_closed_open(U x) {
    const auto big = as_d((x & 0xFFFFFFFFull) | 0x4330000000000000ull);
    return (big - 0x1p52) * 0x1p-32;
}

// sin r and cos r for |r| <= pi/4 (fdlibm k_sin.c / k_cos.c polynomials).
template <class T>
V28_VINLINE void sincos_kernel(T r, T& s, T& c) {
    const T z = r * r;
    T ps = bc<T>(1.58969099521155010221e-10);
    ps = madd(ps, z, bc<T>(-2.50507602534068634195e-08));
    ps = madd(ps, z, bc<T>(2.75573137070700676789e-06));
    ps = madd(ps, z, bc<T>(-1.98412698298579493134e-04));
    ps = madd(ps, z, bc<T>(8.33333333332248946124e-03));
    ps = madd(ps, z, bc<T>(-1.66666666666666324348e-01));
    T pc = bc<T>(-1.13596475577881948265e-11);
    pc = madd(pc, z, bc<T>(2.08757232129817482790e-09));
    pc = madd(pc, z, bc<T>(-2.75573143513906633035e-07));
    pc = madd(pc, z, bc<T>(2.48015872894767294178e-05));
    pc = madd(pc, z, bc<T>(-1.38888888888741095749e-03));
    pc = madd(pc, z, bc<T>(4.16666666666666019037e-02));
    s = madd(r * z, ps, r);
    c = madd(z * z, pc, madd(bc<T>(-0.5), z, bc<T>(1.0)));
}

namespace detail {
// (sin, cos) of r + q pi/2 from (sin r, cos r): q's low two bits pick the quadrant.
template <class T, class U>
V28_VINLINE void quadrant(U q, T ks, T kc, T& s, T& c) {
    const auto swap = (q & 1) != 0;
    const T ss = sel(swap, kc, ks);
    const T cc = sel(swap, ks, kc);
    s = as_d(as_u(ss) ^ ((q & 2) << 62));        // negate in quadrants 2, 3
    c = as_d(as_u(cc) ^ (((q + 1) & 2) << 62));  // negate in quadrants 1, 2
}
}  // namespace detail

// sin and cos of 2 pi u for u in [0, 1): 2 pi u = q pi/2 + r with q = round(4 u) and
// r = 2 pi (u - q/4), both exact in u, then a rotation by q quarter turns.
template <class T>
V28_VINLINE void sincos_2pi(T u, T& s, T& c) {
    using namespace detail;
    const T t = madd(bc<T>(4.0), u, bc<T>(round_shift));
    const T qd = t - round_shift;
    const T r = madd(bc<T>(-0.25), qd, u) * 6.28318530717958647693;
    T ks, kc;
    sincos_kernel(r, ks, kc);
    quadrant(as_u(t) - as_u(bc<T>(round_shift)), ks, kc, s, c);
}

// sin and cos of x for |x| <= 2^19 pi/2 (fdlibm's three-part Cody-Waite reduction by pi/2;
// a few ulp).
template <class T>
V28_VINLINE void sincos(T x, T& s, T& c) {
    using namespace detail;
    const T t = madd(x, bc<T>(6.36619772367581382433e-01), bc<T>(round_shift));  // x 2/pi
    const T n = t - round_shift;
    T r = madd(n, bc<T>(-1.57079632673412561417e+00), x);
    r = madd(n, bc<T>(-6.07710050630396597660e-11), r);
    r = madd(n, bc<T>(-2.02226624871116645580e-21), r);
    T ks, kc;
    sincos_kernel(r, ks, kc);
    quadrant(as_u(t) - as_u(bc<T>(round_shift)), ks, kc, s, c);
}

V28_VINLINE double sqrt(double x) {
#if defined(__SSE2__)
    return _mm_cvtsd_f64(_mm_sqrt_sd(_mm_setzero_pd(), _mm_set_sd(x)));  // no errno path
#else
    return __builtin_sqrt(x);
#endif
}

// Two standard normals from two 32-bit words (per lane: the low bits of x0, x1):
// z0 = R cos(2 pi u1), z1 = R sin(2 pi u1), R = sqrt(-2 ln u0), u0 in (0, 1), u1 in [0, 1).
template <class U, class T>
V28_VINLINE void box_muller(U x0, U x1, T& z0, T& z1) {
    const T radius = sqrt(-2.0 * log_positive_normal(uniform_open(x0)));
    T s, c;
    sincos_2pi(uniform_closed_open(x1), s, c);
    z0 = radius * c;
    z1 = radius * s;
}

// Philox4x32-10 constants (J. K. Salmon et al. (2011), SC'11; the Random123 reference values).
inline constexpr std::uint32_t philox_m0 = 0xD2511F53u, philox_m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u;  // golden ratio
inline constexpr std::uint32_t philox_w1 = 0xBB67AE85u;  // sqrt(3) - 1

V28_VINLINE std::uint64_t mul32(std::uint64_t a, std::uint32_t m) {
    return (a & 0xFFFFFFFFull) * m;
}

// Philox4x32-10 on one counter (U = std::uint64_t) or one per lane (U = vu): words in the low
// 32 bits of c0..c3, in place. The high halves carry garbage between rounds, which the
// multiplies and the final users ignore.
template <class U>
V28_VINLINE void philox4x32_10(U& c0, U& c1, U& c2, U& c3, std::uint64_t seed) {
    std::uint32_t k0 = static_cast<std::uint32_t>(seed);
    std::uint32_t k1 = static_cast<std::uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const U p0 = mul32(c0, philox_m0);
        const U p1 = mul32(c2, philox_m1);
        c0 = (p1 >> 32) ^ c1 ^ k0;
        c2 = (p0 >> 32) ^ c3 ^ k1;
        c1 = p1;
        c3 = p0;
        k0 += philox_w0;
        k1 += philox_w1;
    }
}

// The four normals of the Philox block at counter (c0, c1, c2, c3) under key = seed, per lane:
// z[0], z[1] from words 0, 1 and z[2], z[3] from words 2, 3 (Box-Muller pairs).
V28_VINLINE void normals4(vu c0, vu c1, vu c2, vu c3, std::uint64_t seed, vd z[4]) {
    philox4x32_10(c0, c1, c2, c3, seed);
    box_muller(c0, c1, z[0], z[1]);
    box_muller(c2, c3, z[2], z[3]);
}

}  // namespace V28_SIMD_ISA
}  // namespace v28::simd
