// Body of the SIMD Black-Scholes-Merton loop, included by bsm_kernels_<isa>.cpp after that
// unit's target pragma; vmath.hpp then names the namespace after the target (avx512, avx2), so
// the builds share no symbol (see vmath.hpp). Declarations in bsm_kernels.hpp.
#include "bsm_kernels.hpp"
#include "v28/vmath.hpp"

namespace v28::bsm::detail {
inline namespace V28_SIMD_ISA {

namespace {

using simd::lanes;
using simd::sel;
using simd::vu;
#if V28_SIMD_BYTES == 64
// AVX-512: one register per step (a pair would spill: 32 registers are already in use).
using V = simd::vd;
using U = simd::vu;
using M = simd::vi;
constexpr int width = lanes;
V28_VINLINE V splat(double x) { return simd::splat(x); }
V28_VINLINE V load(const double* p) { return simd::loadu(p); }
V28_VINLINE void store(double* p, V x) { simd::storeu(p, x); }
#else
// AVX2: a register pair per step, two dependency chains side by side (see vmath.hpp).
using V = simd::vd2;
using U = simd::vu2;
using M = simd::vi2;
constexpr int width = 2 * lanes;
V28_VINLINE V splat(double x) { return simd::splat2(x); }
V28_VINLINE V load(const double* p) { return {simd::loadu(p), simd::loadu(p + lanes)}; }
V28_VINLINE void store(double* p, V x) {
    simd::storeu(p, x.a);
    simd::storeu(p + lanes, x.b);
}
#endif

struct Lane {
    V price, delta, gamma, vega, theta, rho;
};

// The sign bit per lane from `lanes` flag bytes: 0 for a call (w = +1), set for a put (w = -1).
V28_VINLINE vu put_sign_half(const std::uint8_t* call) {
    std::uint64_t word = 0;
    __builtin_memcpy(&word, call, lanes);
    const vu bytes = (simd::splat_u(word) >> (simd::iota() * 8)) & 0xFF;
    return (vu)(bytes == 0) & 0x8000000000000000ull;
}
V28_VINLINE U put_sign(const std::uint8_t* call) {
#if V28_SIMD_BYTES == 64
    return put_sign_half(call);
#else
    return {put_sign_half(call), put_sign_half(call + lanes)};
#endif
}
// w x: x with its sign flipped for puts.
V28_VINLINE V signed_by(U sign, V x) { return simd::as_d(simd::as_u(x) ^ sign); }

// erfcx for x >= 0: the piecewise form where one register holds all 8 pieces.
V28_VINLINE V erfcx(V x) {
#if V28_SIMD_BYTES == 64
    return simd::erfcx_nonneg_pieces(x);
#else
    return simd::erfcx_nonneg(x);
#endif
}

// One register of options. `ok` clears a lane whose input is invalid (NaN, spot or strike
// <= 0, t or vol < 0, infinities); its outputs are then meaningless and the caller throws.
template <bool WithGreeks>
V28_VINLINE void one(V s, V k, V t, V r, V q, V v, U wsign, M& ok, Lane& o) {
    constexpr double inf = __builtin_huge_val();
    constexpr double inv_sqrt2 = 0.70710678118654752440;
    ok &= (s > 0.0) & (s < inf) & (k > 0.0) & (k < inf) & (t >= 0.0) & (t < inf) & (v >= 0.0) &
          (v < inf) & (simd::abs(r) < inf) & (simd::abs(q) < inf);
    const V df_r = simd::exp(-r * t);
    const V df_q = simd::exp(-q * t);
    const V sqrt_t = simd::sqrt(t);
    const V sd = v * sqrt_t;
    const M live = sd > 0.0;  // t = 0 or vol = 0 is the limit, below
    const V sd_safe = sel(live, sd, splat(1.0));
    const V d1 = simd::fma(splat(0.5), sd_safe, (simd::log(s / k) + (r - q) * t) / sd_safe);
    const V d2 = d1 - sd_safe;
    const V e1 = simd::exp_neg_half_sq(d1);
    const V e2 = simd::exp_neg_half_sq(d2);
    // N(w d) = tail or 1 - tail, tail = e^{-d^2/2} erfcx(|d| / sqrt 2) / 2.
    const V x1 = erfcx(simd::abs(d1) * inv_sqrt2);
    const V x2 = erfcx(simd::abs(d2) * inv_sqrt2);
    const V wd1 = signed_by(wsign, d1), wd2 = signed_by(wsign, d2);
    const M up1 = wd1 > 0.0, up2 = wd2 > 0.0;
    const V n1 = simd::fma(sel(up1, splat(-0.5), splat(0.5)), e1 * x1, sel(up1, splat(1.0), V{}));
    const V n2 = simd::fma(sel(up2, splat(-0.5), splat(0.5)), e2 * x2, sel(up2, splat(1.0), V{}));
    const V s_q = s * df_q;
    const V k_r = k * df_r;
    // At sd = 0 the formulas below give the limit (a forward when in the money, nothing out)
    // with w N(w d1) = w N(w d2) = w [in the money] and the density set to 0.
    const V itm = sel(signed_by(wsign, s_q - k_r) > 0.0, splat(1.0), V{});
    const V wn1 = signed_by(wsign, sel(live, n1, itm));
    const V wn2 = signed_by(wsign, sel(live, n2, itm));
    const V s1 = s_q * wn1;  // shared by price and theta
    const V k2 = k_r * wn2;  // shared by price, theta and rho
    // Out of the money with both w d1, w d2 <= 0 the two terms nearly cancel. There
    // s_q e^{-d1^2/2} = k_r e^{-d2^2/2} =: m exactly, so price = w m / 2 (x1 - x2): the
    // rounding of d2 = d1 - sd no longer enters through the steep exponentials
    // (cf. Jaeckel 2015, eq. 3.2).
    const V p_tail = signed_by(wsign, 0.5 * (s_q * e1) * (x1 - x2));
    const V p_raw = sel(live & ~(up1 | up2), p_tail, s1 - k2);
    o.price = sel(p_raw > 0.0, p_raw, V{});  // round-off can leave -1e-322
    if constexpr (WithGreeks) {
        const V pdf1 = sel(live, v28::inv_sqrt_2pi * e1, V{});
        const V a = s_q * pdf1;
        const V inv_s_sd = 1.0 / (s * sd_safe);  // one division for gamma and theta
        o.delta = df_q * wn1;
        o.gamma = a * inv_s_sd / s;
        o.vega = a * sqrt_t;
        // vol / (2 sqrt t) written as vol^2 s / (2 s sd): finite when t = 0.
        o.theta = simd::fma(q, s1, simd::fma(-r, k2, -(0.5 * a * v) * (v * s * inv_s_sd)));
        o.rho = t * k2;
    }
}

template <bool WithGreeks>
V28_VINLINE void put(const Outputs& out, std::size_t i, const Lane& o) {
    store(out.price + i, o.price);
    if constexpr (WithGreeks) {
        store(out.delta + i, o.delta);
        store(out.gamma + i, o.gamma);
        store(out.vega + i, o.vega);
        store(out.theta + i, o.theta);
        store(out.rho + i, o.rho);
    }
}

template <bool WithGreeks>
bool loop(const Inputs& in, const Outputs& out) {
    M ok = splat(1.0) > 0.0;  // all lanes set
    const std::size_t n = in.n;
    std::size_t i = 0;
    for (; i + width <= n; i += width) {
        Lane o;
        one<WithGreeks>(load(in.spot + i), load(in.strike + i),
                        load(in.t + i), load(in.rate + i), load(in.div + i),
                        load(in.vol + i), put_sign(in.call + i), ok, o);
        put<WithGreeks>(out, i, o);
    }
    if (i < n) {
        // The tail through a register padded with a valid option (1, 1, 0, 0, 0, 0: the t = 0
        // limit), written back element by element.
        const std::size_t m = n - i;
        alignas(64) double a[6][width];
        std::uint8_t c[width];
        const double* src[6] = {in.spot, in.strike, in.t, in.rate, in.div, in.vol};
        for (int j = 0; j < 6; ++j) {
            for (int l = 0; l < width; ++l) {
                a[j][l] = static_cast<std::size_t>(l) < m ? src[j][i + l] : (j < 2 ? 1.0 : 0.0);
            }
        }
        for (int l = 0; l < width; ++l) c[l] = static_cast<std::size_t>(l) < m ? in.call[i + l] : 1;
        Lane o;
        one<WithGreeks>(load(a[0]), load(a[1]), load(a[2]), load(a[3]),
                        load(a[4]), load(a[5]), put_sign(c), ok, o);
        alignas(64) double res[6][width];
        const Outputs tmp{res[0], res[1], res[2], res[3], res[4], res[5]};
        put<WithGreeks>(tmp, 0, o);
        double* dst[6] = {out.price, out.delta, out.gamma, out.vega, out.theta, out.rho};
        for (int j = 0; j < (WithGreeks ? 6 : 1); ++j) {
            for (std::size_t l = 0; l < m; ++l) dst[j][i + l] = res[j][l];
        }
    }
    return simd::all(ok);
}

}  // namespace

bool run_simd(const Inputs& in, const Outputs& out) {
    return out.delta ? loop<true>(in, out) : loop<false>(in, out);
}

}  // namespace V28_SIMD_ISA
}  // namespace v28::bsm::detail
