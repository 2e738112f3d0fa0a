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
using simd::splat;
using simd::vd;
using simd::vi;
using simd::vu;

struct Lane {
    vd price, delta, gamma, vega, theta, rho;
};

// +1 (call) or -1 (put) per lane from `lanes` flag bytes.
V28_VINLINE vd call_sign(const std::uint8_t* call) {
    std::uint64_t word = 0;
    __builtin_memcpy(&word, call, lanes);
    const vu bytes = (simd::splat_u(word) >> (simd::iota() * 8)) & 0xFF;
    return sel((vi)(bytes != 0), splat(1.0), splat(-1.0));
}

// One register of options. `ok` clears a lane whose input is invalid (NaN, spot or strike
// <= 0, t or vol < 0, infinities); its outputs are then meaningless and the caller throws.
template <bool WithGreeks>
V28_VINLINE void one(vd s, vd k, vd t, vd r, vd q, vd v, vd w, vi& ok, Lane& o) {
    constexpr double inf = __builtin_huge_val();
    constexpr double inv_sqrt2 = 0.70710678118654752440;
    constexpr double inv_sqrt_2pi = 0.39894228040143267794;
    ok &= (s > 0.0) & (s < inf) & (k > 0.0) & (k < inf) & (t >= 0.0) & (t < inf) & (v >= 0.0) &
          (v < inf) & (simd::abs(r) < inf) & (simd::abs(q) < inf);
    const vd df_r = simd::exp(-r * t);
    const vd df_q = simd::exp(-q * t);
    const vd sqrt_t = simd::sqrt(t);
    const vd sd = v * sqrt_t;
    const vi live = sd > 0.0;  // t = 0 or vol = 0 is the limit, below
    const vd sd_safe = sel(live, sd, splat(1.0));
    const vd d1 = (simd::log(s / k) + (r - q) * t) / sd_safe + 0.5 * sd_safe;
    const vd d2 = d1 - sd_safe;
    const vd e1 = simd::exp_neg_half_sq(d1);
    const vd e2 = simd::exp_neg_half_sq(d2);
    // N(w d) = tail or 1 - tail, tail = e^{-d^2/2} erfcx(|d| / sqrt 2) / 2.
    const vd x1 = simd::erfcx_nonneg(simd::abs(d1) * inv_sqrt2);
    const vd x2 = simd::erfcx_nonneg(simd::abs(d2) * inv_sqrt2);
    const vd wd1 = w * d1, wd2 = w * d2;
    const vi up1 = wd1 > 0.0, up2 = wd2 > 0.0;
    const vd n1 = simd::fma(sel(up1, splat(-0.5), splat(0.5)), e1 * x1, sel(up1, splat(1.0), vd{}));
    const vd n2 = simd::fma(sel(up2, splat(-0.5), splat(0.5)), e2 * x2, sel(up2, splat(1.0), vd{}));
    const vd s_q = s * df_q;
    const vd k_r = k * df_r;
    const vd fwd_value = w * (s_q - k_r);
    // Limit weight at sd = 0: 1 in the money, 0 out.
    const vd itm = sel(fwd_value > 0.0, splat(1.0), vd{});
    // Out of the money with both w d1, w d2 <= 0 the two terms nearly cancel. There
    // s_q e^{-d1^2/2} = k_r e^{-d2^2/2} =: m exactly, so price = w m / 2 (x1 - x2): the
    // rounding of d2 = d1 - sd no longer enters through the steep exponentials
    // (cf. Jaeckel 2015, eq. 3.2).
    const vd p_tail = 0.5 * w * (s_q * e1) * (x1 - x2);
    const vd p_body = w * (s_q * n1 - k_r * n2);
    const vd p_raw = sel(up1 | up2, p_body, p_tail);
    const vd p = simd::max0(p_raw);  // round-off can leave -1e-322
    o.price = sel(live, p, itm * fwd_value);
    if constexpr (WithGreeks) {
        const vd pdf1 = inv_sqrt_2pi * e1;
        const vd inv_s_sd = 1.0 / (s * sd_safe);  // one division for gamma and theta
        const vd delta = w * df_q * n1;
        const vd gamma = df_q * pdf1 * inv_s_sd;
        const vd vega = s_q * pdf1 * sqrt_t;
        // vol / (2 sqrt t) written as vol^2 s / (2 s sd): finite when t = 0.
        const vd theta = -s_q * pdf1 * (v * v) * (0.5 * s * inv_s_sd) - w * r * k_r * n2 +
                         w * q * s_q * n1;
        const vd rho = w * k * t * df_r * n2;
        o.delta = sel(live, delta, itm * w * df_q);
        o.gamma = sel(live, gamma, vd{});
        o.vega = sel(live, vega, vd{});
        o.theta = sel(live, theta, itm * w * (q * s_q - r * k_r));
        o.rho = sel(live, rho, itm * w * k * t * df_r);
    }
}

template <bool WithGreeks>
V28_VINLINE void put(const Outputs& out, std::size_t i, const Lane& o) {
    simd::storeu(out.price + i, o.price);
    if constexpr (WithGreeks) {
        simd::storeu(out.delta + i, o.delta);
        simd::storeu(out.gamma + i, o.gamma);
        simd::storeu(out.vega + i, o.vega);
        simd::storeu(out.theta + i, o.theta);
        simd::storeu(out.rho + i, o.rho);
    }
}

template <bool WithGreeks>
bool loop(const Inputs& in, const Outputs& out) {
    vi ok = vi{} - 1;
    const std::size_t n = in.n;
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        Lane o;
        one<WithGreeks>(simd::loadu(in.spot + i), simd::loadu(in.strike + i),
                        simd::loadu(in.t + i), simd::loadu(in.rate + i), simd::loadu(in.div + i),
                        simd::loadu(in.vol + i), call_sign(in.call + i), ok, o);
        put<WithGreeks>(out, i, o);
    }
    if (i < n) {
        // The tail through a register padded with a valid option (1, 1, 0, 0, 0, 0: the t = 0
        // limit), written back element by element.
        const std::size_t m = n - i;
        alignas(64) double a[6][lanes];
        std::uint8_t c[lanes];
        const double* src[6] = {in.spot, in.strike, in.t, in.rate, in.div, in.vol};
        for (int j = 0; j < 6; ++j) {
            for (int l = 0; l < lanes; ++l) {
                a[j][l] = static_cast<std::size_t>(l) < m ? src[j][i + l] : (j < 2 ? 1.0 : 0.0);
            }
        }
        for (int l = 0; l < lanes; ++l) c[l] = static_cast<std::size_t>(l) < m ? in.call[i + l] : 1;
        Lane o;
        one<WithGreeks>(simd::load(a[0]), simd::load(a[1]), simd::load(a[2]), simd::load(a[3]),
                        simd::load(a[4]), simd::load(a[5]), call_sign(c), ok, o);
        alignas(64) double res[6][lanes];
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
