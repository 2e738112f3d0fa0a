// SIMD Black-Scholes-Merton loops. The loop bodies call the branch-free v28::vm functions, so
// GCC vectorises them; they are compiled for AVX-512 (x86-64-v4) and AVX2+FMA (x86-64-v3) and
// picked at run time from the CPU. Other CPUs take the scalar <cmath> path in v28::bsm.
//
// no-trapping-math lets GCC if-convert selects whose arms compute (it may then evaluate both
// arms). It changes no result: NaN and infinities keep their IEEE semantics (unlike
// -ffast-math); only the floating-point exception flags are not maintained.
#pragma GCC optimize("no-trapping-math")

#include "bsm_kernels.hpp"

#include <cmath>

#include "v28/bsm.hpp"
#include "v28/normal.hpp"
#include "v28/vecmath.hpp"

namespace v28::bsm::detail {

namespace {

// The pointers are restrict parameters (restrict locals are lost when this is inlined, and
// GCC then gives up on the 57 run-time alias checks the loop would need).
template <bool WithGreeks>
[[gnu::always_inline]] inline bool kernel(
    std::size_t n, const double* __restrict spot, const double* __restrict strike,
    const double* __restrict tt, const double* __restrict rate, const double* __restrict div,
    const double* __restrict vol, const std::uint8_t* __restrict call, double* __restrict o_price,
    double* __restrict o_delta, double* __restrict o_gamma, double* __restrict o_vega,
    double* __restrict o_theta, double* __restrict o_rho) {
    constexpr double inf = HUGE_VAL;
    unsigned bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double s = spot[i], k = strike[i], t = tt[i], r = rate[i], q = div[i], v = vol[i];
        // Invalid input sets `bad`; computing it anyway is harmless, the caller throws.
        bad |= static_cast<unsigned>(!(s > 0.0 && s < inf)) |
               static_cast<unsigned>(!(k > 0.0 && k < inf)) |
               static_cast<unsigned>(!(t >= 0.0 && t < inf)) |
               static_cast<unsigned>(!(v >= 0.0 && v < inf)) |
               static_cast<unsigned>(!(std::fabs(r) < inf)) |
               static_cast<unsigned>(!(std::fabs(q) < inf));
        const double w = call[i] != 0 ? 1.0 : -1.0;
        const double df_r = vm::exp(-r * t);
        const double df_q = vm::exp(-q * t);
        const double sqrt_t = vm::sqrt(t);
        const double sd = v * sqrt_t;
        const bool degenerate = !(sd > 0.0);  // t = 0 or vol = 0: the limit, below
        const double sd_safe = degenerate ? 1.0 : sd;
        const double d1 = (vm::log(s / k) + (r - q) * t) / sd_safe + 0.5 * sd_safe;
        const double d2 = d1 - sd_safe;
        const double e1 = vm::exp_neg_half_sq(d1);
        const double e2 = vm::exp_neg_half_sq(d2);
        // N(w d) = tail or 1 - tail, tail = e^{-d^2/2} erfcx(|d| / sqrt 2) / 2.
        constexpr double inv_sqrt2 = 0.70710678118654752440;
        const double x1 = vm::erfcx_nonneg(std::fabs(d1) * inv_sqrt2);
        const double x2 = vm::erfcx_nonneg(std::fabs(d2) * inv_sqrt2);
        const double wd1 = w * d1, wd2 = w * d2;
        const double n1 = std::fma(wd1 > 0.0 ? -0.5 : 0.5, e1 * x1, wd1 > 0.0 ? 1.0 : 0.0);
        const double n2 = std::fma(wd2 > 0.0 ? -0.5 : 0.5, e2 * x2, wd2 > 0.0 ? 1.0 : 0.0);
        const double s_q = s * df_q;
        const double k_r = k * df_r;
        const double fwd_value = w * (s_q - k_r);
        // Limit weight at sd = 0: 1 in the money, 0 out (a double, which vectorises better
        // than a mask reused by several selects).
        const double itm = fwd_value > 0.0 ? 1.0 : 0.0;
        // Out of the money with both w d1, w d2 <= 0 the two terms nearly cancel. There
        // s_q e^{-d1^2/2} = k_r e^{-d2^2/2} =: m exactly, so price = w m / 2 (x1 - x2): the
        // rounding of d2 = d1 - sd no longer enters through the steep exponentials
        // (cf. Jaeckel 2015, eq. 3.2).
        const double p_tail = 0.5 * w * (s_q * e1) * (x1 - x2);
        const double p_body = w * (s_q * n1 - k_r * n2);
        const double p_raw = (wd1 <= 0.0 && wd2 <= 0.0) ? p_tail : p_body;
        const double p = p_raw > 0.0 ? p_raw : 0.0;  // round-off can leave -1e-322
        o_price[i] = degenerate ? itm * fwd_value : p;
        if constexpr (WithGreeks) {
            const double pdf1 = inv_sqrt_2pi * e1;
            const double inv_s_sd = 1.0 / (s * sd_safe);  // one division for gamma and theta
            const double delta = w * df_q * n1;
            const double gamma = df_q * pdf1 * inv_s_sd;
            const double vega = s_q * pdf1 * sqrt_t;
            // vol / (2 sqrt t) written as vol^2 s / (2 s sd): finite when t = 0.
            const double theta = -s_q * pdf1 * (v * v) * (0.5 * s * inv_s_sd) -
                                 w * r * k_r * n2 + w * q * s_q * n1;
            const double rho = w * k * t * df_r * n2;
            o_delta[i] = degenerate ? itm * w * df_q : delta;
            o_gamma[i] = degenerate ? 0.0 : gamma;
            o_vega[i] = degenerate ? 0.0 : vega;
            o_theta[i] = degenerate ? itm * w * (q * s_q - r * k_r) : theta;
            o_rho[i] = degenerate ? itm * w * k * t * df_r : rho;
        }
    }
    return bad == 0;
}

bool run_scalar(const Inputs& in, const Outputs& out) {
    for (std::size_t i = 0; i < in.n; ++i) {
        check_inputs(in.spot[i], in.strike[i], in.t[i], in.rate[i], in.div[i], in.vol[i], i);
    }
    for (std::size_t i = 0; i < in.n; ++i) {
        const bool c = in.call[i] != 0;
        if (out.delta == nullptr) {
            out.price[i] = price(in.spot[i], in.strike[i], in.t[i], in.rate[i], in.div[i],
                                 in.vol[i], c);
            continue;
        }
        Greeks g;
        out.price[i] = price_greeks(in.spot[i], in.strike[i], in.t[i], in.rate[i], in.div[i],
                                    in.vol[i], c, g);
        out.delta[i] = g.delta;
        out.gamma[i] = g.gamma;
        out.vega[i] = g.vega;
        out.theta[i] = g.theta;
        out.rho[i] = g.rho;
    }
    return true;
}

#if defined(__x86_64__) && defined(__GNUC__)

[[gnu::target("arch=x86-64-v4,prefer-vector-width=512")]] bool run_avx512(const Inputs& in,
                                                                          const Outputs& out) {
    return out.delta ? kernel<true>(in.n, in.spot, in.strike, in.t, in.rate, in.div, in.vol,
                                    in.call, out.price, out.delta, out.gamma, out.vega,
                                    out.theta, out.rho)
                     : kernel<false>(in.n, in.spot, in.strike, in.t, in.rate, in.div, in.vol,
                                     in.call, out.price, nullptr, nullptr, nullptr, nullptr,
                                     nullptr);
}

[[gnu::target("arch=x86-64-v3")]] bool run_avx2(const Inputs& in, const Outputs& out) {
    return out.delta ? kernel<true>(in.n, in.spot, in.strike, in.t, in.rate, in.div, in.vol,
                                    in.call, out.price, out.delta, out.gamma, out.vega,
                                    out.theta, out.rho)
                     : kernel<false>(in.n, in.spot, in.strike, in.t, in.rate, in.div, in.vol,
                                     in.call, out.price, nullptr, nullptr, nullptr, nullptr,
                                     nullptr);
}

#endif

}  // namespace

int cpu_level() {
#if defined(__x86_64__) && defined(__GNUC__)
    static const int level = __builtin_cpu_supports("x86-64-v4")   ? 4
                             : __builtin_cpu_supports("x86-64-v3") ? 3
                                                                   : 0;
    return level;
#else
    return 0;
#endif
}

bool run_at(int level, const Inputs& in, const Outputs& out) {
#if defined(__x86_64__) && defined(__GNUC__)
    level = level < cpu_level() ? level : cpu_level();
    if (level == 4) return run_avx512(in, out);
    if (level == 3) return run_avx2(in, out);
#else
    (void)level;
#endif
    return run_scalar(in, out);
}

bool run(const Inputs& in, const Outputs& out) { return run_at(cpu_level(), in, out); }

}  // namespace v28::bsm::detail
