// Body of the vector implied-vol loop, included by iv_kernels_<isa>.cpp after that unit's
// target pragma; vmath.hpp then names the namespace after the target (avx512, avx2), so the
// builds share no symbol. It follows iv.cpp step by step, one option per lane: b and vega at
// s_c and at the second point in lanes, the lower/upper maps in lanes, the rational cubic per
// lane (iv_interpolate_guess: branchy arithmetic only), the inverse maps in lanes, then the
// two Householder(3) steps in lanes with the objective and the bisection guard per lane.
// b(x, s) takes its region (Jäckel 2015, section 3) per lane; a region's formula runs only
// when some lane is in it.
#include "iv_kernels.hpp"
#include "iv_series.hpp"
#include "v28/vmath.hpp"

namespace v28::bsm::detail {
inline namespace V28_SIMD_ISA {

namespace {

using simd::sel;
using V = simd::vd;
using M = simd::vi;
constexpr int width = simd::lanes;

V28_VINLINE V splat(double x) { return simd::splat(x); }
V28_VINLINE V max0(V x) { return sel(x > 0.0, x, V{}); }
V28_VINLINE V sq(V x) { return x * x; }
// True when some lane of the mask is set (one mask move, not a reduction over the lanes).
V28_VINLINE bool any(M m) {
#if V28_SIMD_BYTES == 64
    return _mm512_movepi64_mask((__m512i)m) != 0;
#else
    return _mm256_movemask_pd((__m256d)m) != 0;
#endif
}

// erfcx for x >= 0: the piecewise form where one register holds all 8 pieces.
V28_VINLINE V erfcx(V x) {
#if V28_SIMD_BYTES == 64
    return simd::erfcx_nonneg_pieces(x);
#else
    return simd::erfcx_nonneg(x);
#endif
}

// Eq. (3.4)-(3.5) as asymptotic_expansion in iv.cpp; a lane stops adding terms once its
// term is below 1e-17 of its sum, the loop once every lane has.
V28_VINLINE V asymptotic_expansion(M use, V h, V t, V ex) {
    const V e = sq(t / h);
    const V r = (h + t) * (h - t);
    const V q = sq(h / r);
    V sum{};
    V scale = splat(1.0);
    M open = use;
#pragma GCC unroll 18
    for (int k = 0; k <= 17; ++k) {
        const V term = 2.0 * scale * asymptotic_poly(k, e);
        sum = sel(open, sum + term, sum);
        open &= ~(simd::abs(term) <= 1e-17 * simd::abs(sum));
        if (!any(open)) break;
        scale *= -(2 * k + 1) * q;
    }
    return kInvSqrt2Pi * ex * (t / r) * sum;
}

// Eq. (3.8) as small_t_expansion in iv.cpp, from e = erfcx(-h / sqrt 2).
V28_VINLINE V small_t_expansion(V h, V t, V ex, V e) {
    return small_t_series(h, t, ex, 1.0 + h * (0.5 * kSqrt2Pi) * e);
}

struct BlackVega {
    V b, vega;
};

// b(x, s) and db/ds for x <= 0 (black_call_vega in iv.cpp), b_max = e^{x/2}: one exponential
// and two erfcx per lane outside the asymptotic region. The erfcx and norm-CDF regions share
// erfcx(|h + t| / sqrt 2) and erfcx((t - h) / sqrt 2); the small-t region takes
// erfcx(-h / sqrt 2) in the first slot.
V28_VINLINE BlackVega black_vega(V x, V s, V b_max) {
    const M live = s > 0.0;
    s = sel(live, s, splat(1.0));
    const V h = x / s;
    const V t = 0.5 * s;
    const V ex = simd::exp(-0.5 * (h * h + t * t));
    const V vega = kInvSqrt2Pi * ex;
    const M asym = (x < s * kAsymptoticH) & (0.5 * s * s + x < s * (kTauSmall + kAsymptoticH));
    const M small = ~asym & (t < kTauSmall);
    const V hpt = h + t;
    const V e1 = erfcx(sel(small, -kInvSqrt2 * h, simd::abs(-kInvSqrt2 * hpt)));
    const V e2 = erfcx(-kInvSqrt2 * (h - t));
    // Eq. (3.2): b = e^{-(h^2 + t^2)/2} [erfcx(-(h+t)/sqrt2) - erfcx(-(h-t)/sqrt2)] / 2. For
    // h + t > 0 (the rest of the erfcx region, and the norm-CDF region of eq. 2.3) it is
    // b_max - e^{-(h^2 + t^2)/2} [erfcx((h+t)/sqrt2) + erfcx((t-h)/sqrt2)] / 2, from
    // erfcx(-z) = 2 e^{z^2} - erfcx(z) and e^{-(h^2 + t^2)/2 + (h+t)^2/2} = e^{x/2}: the same
    // value (and the same cancellation) as the scalar forms, without their extra exponentials.
    const V half_ex = 0.5 * ex;
    V b = sel(hpt > 0.0, simd::fma(-half_ex, e1 + e2, b_max), half_ex * (e1 - e2));
    if (any(small)) b = sel(small, small_t_expansion(h, t, ex, e1), b);
    if (any(asym)) b = sel(asym, asymptotic_expansion(asym, h, t, ex), b);
    return {sel(live, max0(b), V{}), sel(live, vega, V{})};
}

struct MapValue {
    V f, fp, fpp;
};

// Eq. (4.5)-(4.7), lower_map in iv.cpp: f ~ (2 pi |x| / sqrt 27) N(-|x| / (sqrt 3 s))^3 and its
// first two derivatives with respect to b.
V28_VINLINE MapValue lower_map(V x, V s) {
    const V ax = simd::abs(x);
    const V z = kInvSqrt3 * ax / s;
    const V y = z * z;
    const V s2 = s * s;
    const V mills = kSqrtPiOver2 * erfcx(kInvSqrt2 * z);
    const V phi = kInvSqrt2Pi * simd::exp_neg_half_sq(z) * mills;
    const V e = simd::exp(y + 0.125 * s2);
    const V fpp = kPiOver6 * y / (s2 * s) * phi *
                  (8.0 * kSqrt3 * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * mills) * e * e;
    const V phi2 = phi * phi;
    const V fp = kTwoPi * y * phi2 * e;
    const V f = sel(x == 0.0, V{}, kTwoPiOverSqrt27 * ax * (phi2 * phi));
    const M live = s > 0.0;
    return {sel(live, f, V{}), sel(live, fp, splat(1.0)), fpp};
}

// Eq. (4.9)-(4.11), upper_map in iv.cpp: f = N(-s/2) and its derivatives.
V28_VINLINE MapValue upper_map(V x, V s) {
    const V f = simd::norm_cdf(-0.5 * s);
    const V w = sq(x / s);
    const M flat = x == 0.0;
    return {f, sel(flat, splat(-0.5), -0.5 * simd::exp(0.5 * w)),
            sel(flat, V{}, kSqrtPiOver2 * simd::exp(w + 0.125 * s * s) * w / s)};
}

// N^{-1}(p) as inverse_norm_cdf in iv.cpp: Acklam's approximation, both pieces in every lane,
// and one Halley step on the CDF (from the nearer tail, so without cancellation).
V28_VINLINE V inverse_norm_cdf(V p) {
    constexpr double p_low = v28::detail::acklam_p_low;
    const M upper = p > 0.5;
    const V pt = sel(upper, 1.0 - p, p);  // the nearer tail
    const V q = simd::sqrt(-2.0 * simd::log(pt));
    const auto& a = v28::detail::acklam_a;
    const auto& b = v28::detail::acklam_b;
    const auto& c = v28::detail::acklam_c;
    const auto& d = v28::detail::acklam_d;
    const V xt = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                 ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    const V qc = p - 0.5;
    const V r = qc * qc;
    const V xc = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * qc /
                 (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    const V x = sel((p < p_low) | (p > 1.0 - p_low), sel(upper, -xt, xt), xc);
    // e = N(x) - p, computed as -(N(-x) - (1 - p)) above 1/2.
    const V xs = sel(upper, -x, x);
    const V e_tail = simd::norm_cdf(xs) - pt;
    const V e = sel(upper, -e_tail, e_tail);
    const V u = e * kSqrt2Pi * simd::exp(0.5 * x * x);
    const V result = x - u / (1.0 + 0.5 * x * u);
    constexpr double inf = __builtin_huge_val();
    return sel((p > 0.0) & (p < 1.0), result,
               sel(p == 0.0, splat(-inf), sel(p == 1.0, splat(inf), splat(__builtin_nan("")))));
}

// s from the lower map's value f (eq. 4.8): |x| / (sqrt 3 N^{-1}(cbrt(f / (2 pi |x| / sqrt 27)))),
// the cube root as e^{ln(y) / 3} and one Newton step.
V28_VINLINE V inverse_lower_map(V x, V f) {
    const V y = f / (kTwoPiOverSqrt27 * simd::abs(x));
    V r = simd::exp(simd::log(y) * (1.0 / 3.0));
    r = sel(r > 0.0, r - (r * r * r - y) / (3.0 * r * r), r);  // y may underflow to 0
    const V s = simd::abs(x / (kSqrt3 * inverse_norm_cdf(r)));
    return sel(f <= 0.0, V{}, s);
}

V28_VINLINE V householder_factor(V newton, V halley, V hh3) {
    return (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0));
}

V28_VINLINE V load(const double* p) { return simd::loadu(p); }

// One register of options at index i (validated inputs), as black_iv_unchecked in iv.cpp.
V28_VINLINE void one(const IvInputs& in, std::size_t i, double* out) {
    constexpr double nan = __builtin_nan("");
    const V price = load(in.price + i);
    const V forward = load(in.forward + i);
    const V strike = load(in.strike + i);
    const V discount = load(in.discount + i);
    M call{};
    for (int l = 0; l < width; ++l) call[l] = in.call[i + l] != 0 ? -1 : 0;
    // Bounds in price space; ITM -> the OTM option by parity; every OTM option is a call at
    // x = -|ln(F/K)| (section 2).
    const V intrinsic = sel(call, forward - strike, strike - forward);
    const V lower = discount * max0(intrinsic);
    const V upper = discount * sel(call, forward, strike);
    const M inside = (price >= lower) & (price < upper);
    V p = price / discount;
    p = sel(intrinsic > 0.0, max0(p - intrinsic), p);
    V beta = p / (simd::sqrt(forward) * simd::sqrt(strike));
    const V x = -simd::abs(simd::log(forward / strike));
    const V b_max = simd::exp(0.5 * x);
    // NaN outside the bounds or at the upper bound after round-off; 0 on the lower bound.
    V result = sel(inside & (beta < b_max), V{}, splat(nan));
    const M work = inside & (price != lower) & (beta > 0.0) & (beta < b_max);
    if (!any(work)) {
        simd::storeu(out + i, result);
        return;
    }
    beta = sel(work, beta, 0.5 * b_max);  // idle lanes iterate on a harmless price

    // b and vega at s_c (eq. 4.1) and at the second point s_l or s_h (section 6).
    const V s_c = simd::sqrt(simd::abs(2.0 * x));
    const BlackVega c = black_vega(x, s_c, b_max);
    const V s_2 = sel(beta < c.b, s_c - c.b / c.vega,
                      sel(c.vega > kIvDblMin, s_c + (b_max - c.b) / c.vega, s_c));
    const BlackVega d = black_vega(x, s_2, b_max);

    // The maps of the outer branches in lanes, the rational cubic per lane, the inverse maps
    // in lanes.
    const M lowest_branch = (beta < c.b) & (beta < d.b);
    const M highest_branch = ~(beta < c.b) & ~(beta <= d.b);
    MapValue m{V{}, V{}, V{}};
    if (any(work & lowest_branch)) m = lower_map(x, s_2);
    if (any(work & highest_branch)) {
        const MapValue mu = upper_map(x, s_2);
        m = {sel(highest_branch, mu.f, m.f), sel(highest_branch, mu.fp, m.fp),
             sel(highest_branch, mu.fpp, m.fpp)};
    }
    alignas(64) double a[12][width];
    const V args[12] = {beta, x, b_max, s_c, c.b, c.vega, s_2, d.b, d.vega, m.f, m.fp, m.fpp};
    for (int j = 0; j < 12; ++j) simd::storeu(a[j], args[j]);
    alignas(64) double g_s[width], g_l[width], g_r[width];
    M lowest{}, highest{}, map_lower{}, map_upper{};
    for (int l = 0; l < width; ++l) {
        const IvGuess g = iv_interpolate_guess(a[0][l], a[2][l], a[3][l], a[4][l],
                                               a[5][l], a[6][l], a[7][l], a[8][l], a[9][l],
                                               a[10][l], a[11][l]);
        g_s[l] = g.s;
        g_l[l] = g.s_left;
        g_r[l] = g.s_right;
        lowest[l] = g.objective == 1 ? -1 : 0;
        highest[l] = g.objective == 2 ? -1 : 0;
        map_lower[l] = g.map == 1 ? -1 : 0;
        map_upper[l] = g.map == 2 ? -1 : 0;
    }
    V s = load(g_s);
    if (any(map_lower)) s = sel(map_lower, inverse_lower_map(x, s), s);
    if (any(map_upper)) s = sel(map_upper, -2.0 * inverse_norm_cdf(s), s);
    V s_left = load(g_l);
    V s_right = load(g_r);
    const V ln_beta = any(lowest) ? simd::log(beta) : V{};

    // Two Householder(3) steps with the guard of iv.cpp: before the second, a lane that left
    // its bracket restarts from the bracket's midpoint (and stops if the bracket is spent).
    V ds = splat(-1.7976931348623157e308);
    M active = work;
    for (int iteration = 0; iteration < 2; ++iteration) {
        active &= simd::abs(ds) > kIvEps * s;
        if (iteration > 0) {
            const M restart = active & ~((s > s_left) & (s < s_right));
            s = sel(restart, 0.5 * (s_left + s_right), s);
            active &= ~(restart & (s_right - s_left <= kIvEps * s));
        }
        if (!any(active)) break;
        const auto [b, bp] = black_vega(x, s, b_max);
        const M above = b > beta;
        s_right = sel(active & above & (s < s_right), s, s_right);
        s_left = sel(active & ~above & (b < beta) & (s > s_left), s, s_left);
        const V mid_step = 0.5 * (s_left + s_right) - s;
        const V b_halley = sq(x / s) / s - s / 4.0;
        const V b_hh3 = b_halley * b_halley - 3.0 * sq(x / (s * s)) - 0.25;
        // g = b - beta.
        const V newton = (beta - b) / bp;
        V step = newton * householder_factor(newton, b_halley, b_hh3);
        if (any(active & lowest)) {  // g = 1/ln(b) - 1/ln(beta)
            const V ln_b = simd::log(b);
            const V bpob = bp / b;
            const V h = x / s;
            const V lb_halley = h * h / s - s / 4.0;
            const V l_newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob;
            const V l_halley = lb_halley - bpob * (1.0 + 2.0 / ln_b);
            const V lb_hh3 = lb_halley * lb_halley - 3.0 * sq(h / s) - 0.25;
            const V l_hh3 = lb_hh3 + 2.0 * sq(bpob) * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b)) -
                            3.0 * lb_halley * bpob * (1.0 + 2.0 / ln_b);
            const V l_step = sel((b <= 0.0) | (bp <= 0.0), mid_step,
                                 l_newton * householder_factor(l_newton, l_halley, l_hh3));
            step = sel(lowest, l_step, step);
        }
        if (any(active & highest)) {  // g = ln((b_max - beta) / (b_max - b))
            const V b_max_minus_b = b_max - b;
            const V g = simd::log((b_max - beta) / b_max_minus_b);
            const V gp = bp / b_max_minus_b;
            const V h_newton = -g / gp;
            const V h_halley = b_halley + gp;
            const V h_hh3 = b_hh3 + gp * (2.0 * gp + 3.0 * b_halley);
            const V h_step = sel((b >= b_max) | (bp <= kIvDblMin), mid_step,
                                 h_newton * householder_factor(h_newton, h_halley, h_hh3));
            step = sel(highest, h_step, step);
        }
        ds = sel(-0.5 * s > step, -0.5 * s, step);
        s = sel(active, s + ds, s);
    }
    result = sel(work, s / simd::sqrt(load(in.t + i)), result);
    simd::storeu(out + i, result);
}

}  // namespace

std::size_t iv_lanes(const IvInputs& in, double* out) {
    std::size_t i = 0;
    for (; i + width <= in.n; i += width) one(in, i, out);
    return i;
}

}  // namespace V28_SIMD_ISA
}  // namespace v28::bsm::detail
