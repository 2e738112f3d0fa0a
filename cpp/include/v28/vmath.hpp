// SIMD elementary functions and the Philox/Box-Muller normal generator on GCC vector types.
//
// One vector (`vd`, `vu`, `vi`) is one machine register: 8 doubles under AVX-512, 4 under
// AVX2 + FMA, 2 otherwise (SSE2 or any other target). The width follows the target this header
// is compiled for, and everything lives in an inline namespace named after it (avx512, avx2,
// base), so translation units compiled for different targets (`#pragma GCC target` before the
// include, chosen at run time by the caller) never share a symbol. Include the standard headers
// a unit needs BEFORE such a pragma, so their inline functions keep the default target.
//
// Accuracy (same kernels as rng.hpp's scalar ones, a few ulp): exp: Cody-Waite reduction by ln 2,
// degree-13 Taylor polynomial split into even and odd parts so e^x and e^-x share the work; log:
// fdlibm e_log.c; sin/cos: fdlibm k_sin.c / k_cos.c on |r| <= pi/4. Philox4x32-10: J. K. Salmon
// et al. (2011), SC'11 (Random123 constants). Box-Muller: G. E. P. Box, M. E. Muller (1958),
// Ann. Math. Statist. 29(2). Multiply-adds are explicit fused operations where the target has
// them (no reliance on -ffp-contract), so a target always gives the same bits.
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// GCC's C++ front end does not update the ISA macros after `#pragma GCC target`, so a unit that
// uses the pragma also defines V28_SIMD_TARGET_AVX512 or V28_SIMD_TARGET_AVX2 before including.
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

namespace detail {
inline constexpr double ln2_hi = 6.93147180369123816490e-01;  // fdlibm split of ln 2
inline constexpr double ln2_lo = 1.90821492927058770002e-10;
inline constexpr double round_shift = 0x1.8p52;  // adding it rounds |x| < 2^51 to an integer
inline constexpr std::int64_t round_shift_bits = 0x4338000000000000ll;

// The integer n in t = n + round_shift (t from adding round_shift), as an int64 per lane.
V28_VINLINE vi rounded_bits(vd t) { return (vi)t - round_shift_bits; }
// 2^n for integer n in [-1022, 1023].
V28_VINLINE vd pow2(vi n) { return (vd)((n + 1023) << 52); }
}  // namespace detail

// Uniform in (0, 1) from the low 32 bits of each lane: (x + 1/2) / 2^32, exact.
V28_VINLINE vd uniform_open(vu x) {
    const vd big = (vd)((x & 0xFFFFFFFFull) | 0x4330000000000000ull);  // 2^52 + x
    return (big - (0x1p52 - 0.5)) * 0x1p-32;
}
// Uniform in [0, 1) from the low 32 bits: x / 2^32, exact.
V28_VINLINE vd uniform_closed_open(vu x) {
    const vd big = (vd)((x & 0xFFFFFFFFull) | 0x4330000000000000ull);
    return (big - 0x1p52) * 0x1p-32;
}

// e^x and e^-x for |x| <= 708 (clamped outside): x = n ln 2 + r, |r| <= ln2/2;
// e^{+-r} = E(r^2) +- r O(r^2) from the degree-13 Taylor polynomial (truncation < 4e-18).
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

// e^x for |x| <= 708 (clamped outside), as exp_pair.
V28_VINLINE vd exp(vd x) {
    using namespace detail;
    x = x < -708.0 ? splat(-708.0) : x;
    x = x > 708.0 ? splat(708.0) : x;
    const vd t = fma(x, splat(1.44269504088896338700), splat(round_shift));
    const vd n = t - round_shift;
    const vi ni = rounded_bits(t);
    const vd r = fma(n, splat(-ln2_lo), fma(n, splat(-ln2_hi), x));
    vd p = splat(1.0 / 6227020800.0);
    p = fma(p, r, splat(1.0 / 479001600.0));
    p = fma(p, r, splat(1.0 / 39916800.0));
    p = fma(p, r, splat(1.0 / 3628800.0));
    p = fma(p, r, splat(1.0 / 362880.0));
    p = fma(p, r, splat(1.0 / 40320.0));
    p = fma(p, r, splat(1.0 / 5040.0));
    p = fma(p, r, splat(1.0 / 720.0));
    p = fma(p, r, splat(1.0 / 120.0));
    p = fma(p, r, splat(1.0 / 24.0));
    p = fma(p, r, splat(1.0 / 6.0));
    p = fma(p, r, splat(0.5));
    p = fma(p, r, splat(1.0));
    p = fma(p, r, splat(1.0));
    return p * pow2(ni);
}

// ln x for finite normal x > 0 (no checks). fdlibm e_log.c: x = 2^k m, m in [sqrt(2)/2,
// sqrt(2)), ln m = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f).
V28_VINLINE vd log(vd x) {
    using namespace detail;
    const vu bits = (vu)x;
    const vd m0 = (vd)((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
    const vi big = m0 > 1.41421356237309504880;
    const vd m = select(big, 0.5 * m0, m0);
    // The biased exponent as a double: (2^52 + e) - 2^52, plus one where m was halved.
    const vd kb = (vd)((bits >> 52) | 0x4330000000000000ull) - (0x1p52 + 1023.0);
    const vd kk = select(big, kb + 1.0, kb);
    const vd f = m - 1.0;
    const vd s = f / (2.0 + f);
    const vd z = s * s;
    const vd w = z * z;
    const vd t1 =
        w * fma(w, fma(w, splat(1.531383769920937332e-01), splat(2.222219843214978396e-01)),
                splat(3.999999999940941908e-01));
    const vd t2 =
        z * fma(w,
                fma(w, fma(w, splat(1.479819860511658591e-01), splat(1.818357216161805012e-01)),
                    splat(2.857142874366239149e-01)),
                splat(6.666666666666735130e-01));
    const vd rr = t2 + t1;
    const vd hfsq = 0.5 * f * f;
    return kk * ln2_hi - ((hfsq - fma(s, hfsq + rr, kk * ln2_lo)) - f);
}

// sin r and cos r for |r| <= pi/4 (fdlibm k_sin.c / k_cos.c polynomials).
V28_VINLINE void sincos_kernel(vd r, vd& s, vd& c) {
    const vd z = r * r;
    vd ps = splat(1.58969099521155010221e-10);
    ps = fma(ps, z, splat(-2.50507602534068634195e-08));
    ps = fma(ps, z, splat(2.75573137070700676789e-06));
    ps = fma(ps, z, splat(-1.98412698298579493134e-04));
    ps = fma(ps, z, splat(8.33333333332248946124e-03));
    ps = fma(ps, z, splat(-1.66666666666666324348e-01));
    vd pc = splat(-1.13596475577881948265e-11);
    pc = fma(pc, z, splat(2.08757232129817482790e-09));
    pc = fma(pc, z, splat(-2.75573143513906633035e-07));
    pc = fma(pc, z, splat(2.48015872894767294178e-05));
    pc = fma(pc, z, splat(-1.38888888888741095749e-03));
    pc = fma(pc, z, splat(4.16666666666666019037e-02));
    s = fma(r * z, ps, r);
    c = fma(z * z, pc, fma(splat(-0.5), z, splat(1.0)));
}

// sin and cos of 2 pi u for u in [0, 1): 2 pi u = q pi/2 + r with q = round(4 u) and
// r = 2 pi (u - q/4), both exact in u, then a rotation by q quarter turns.
V28_VINLINE void sincos_2pi(vd u, vd& s, vd& c) {
    using namespace detail;
    const vd t = fma(splat(4.0), u, splat(round_shift));
    const vd qd = t - round_shift;
    const vu q = (vu)rounded_bits(t);
    const vd r = fma(splat(-0.25), qd, u) * 6.28318530717958647693;
    vd ks, kc;
    sincos_kernel(r, ks, kc);
    const vi swap = (vi)((q & 1) != 0);
    const vd ss = select(swap, kc, ks);
    const vd cc = select(swap, ks, kc);
    s = (vd)((vu)ss ^ ((q & 2) << 62));        // negate in quadrants 2, 3
    c = (vd)((vu)cc ^ (((q + 1) & 2) << 62));  // negate in quadrants 1, 2
}

// Two standard normals per lane from two 32-bit words per lane (low bits of x0, x1):
// z0 = R cos(2 pi u1), z1 = R sin(2 pi u1), R = sqrt(-2 ln u0), u0 in (0, 1), u1 in [0, 1).
V28_VINLINE void box_muller(vu x0, vu x1, vd& z0, vd& z1) {
    const vd radius = sqrt(-2.0 * log(uniform_open(x0)));
    vd s, c;
    sincos_2pi(uniform_closed_open(x1), s, c);
    z0 = radius * c;
    z1 = radius * s;
}

// Philox4x32-10 on one counter per lane (words in the low 32 bits of c0..c3; in place). The
// high halves carry garbage between rounds, which the multiplies and the final users ignore.
V28_VINLINE void philox4x32_10(vu& c0, vu& c1, vu& c2, vu& c3, std::uint64_t seed) {
    std::uint32_t k0 = static_cast<std::uint32_t>(seed);
    std::uint32_t k1 = static_cast<std::uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const vu p0 = mul32(c0, 0xD2511F53u);
        const vu p1 = mul32(c2, 0xCD9E8D57u);
        c0 = (p1 >> 32) ^ c1 ^ k0;
        c2 = (p0 >> 32) ^ c3 ^ k1;
        c1 = p1;
        c3 = p0;
        k0 += 0x9E3779B9u;  // golden ratio
        k1 += 0xBB67AE85u;  // sqrt(3) - 1
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
