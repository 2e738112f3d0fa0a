// Body of the scalar "Let's Be Rational" solver (P. Jäckel, Wilmott 2015; section and equation
// numbers refer to that paper), included by iv_scalar_<level>.cpp after that unit's target
// header: compiled for AVX2 + FMA (the v28::simd polynomials are then single FMA instructions)
// and for the baseline, picked at run time by iv.cpp. The span functions solve whole registers
// of options in vector lanes instead (iv_kernels.ipp, which shares the rational-cubic guess
// below through iv_interpolate_guess).
#include "iv_kernels.hpp"
#include "iv_series.hpp"
#include "v28/vmath.hpp"

namespace v28::bsm::detail {
inline namespace V28_SIMD_ISA {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kEps = DBL_EPSILON;
constexpr double kFourthRootEps = 0.0001220703125;  // eps^(1/4)
constexpr double kSqrtDblMax = 1.3407807929942596e+154;
constexpr double kRcMin = -0.9999999850988388;   // -(1 - sqrt(eps)): rational cubic r >= this
constexpr double kRcMax = 4.056481920730334e+31;  // 2 / eps^2: r at or above -> linear

inline double sq(double x) { return x * x; }
// max for non-NaN operands, inline (std::fmax is a library call without -ffast-math).
inline double fmax2(double a, double b) { return a > b ? a : b; }

// e^{x/2} - e^{-x/2} for x > 0 (0 otherwise); Taylor series near 0 to avoid cancellation.
inline double normalised_intrinsic_call(double x) {
    if (x <= 0.0) return 0.0;
    const double x2 = x * x;
    if (x2 < 98.0 * kFourthRootEps) {
        return x * (1.0 + x2 * (1.0 / 24.0 +
                                x2 * (1.0 / 1920.0 + x2 * (1.0 / 322560.0 + x2 / 92897280.0))));
    }
    const double b_max = simd::exp(0.5 * x);
    return b_max - 1.0 / b_max;
}

// Section 3, eq. (3.4)-(3.5): for h = x/s < -10 and t = s/2 small enough,
//   b = n(h) e^{-t^2/2} (t / r) sum_k (-1)^k (2k-1)!! q^k P_k(e),  r = (h+t)(h-t), q = (h/r)^2,
// e = (t/h)^2 and P_k(e) = 2 sum_j C(2k+1, 2j+1) e^j (from Abramowitz & Stegun 26.2.12 applied
// to Y(z) = N(z)/n(z)). The paper always takes 17 terms (enough at h = -10); summing forward
// and stopping once a term is below eps/10 of the sum needs far fewer for larger |h|, where
// q ~ 1/h^2 is small.
inline double asymptotic_expansion(double h, double t, double ex) {
    const double e = sq(t / h);
    const double r = (h + t) * (h - t);
    const double q = sq(h / r);
    double sum = 0.0;
    double scale = 1.0;  // (-1)^k (2k-1)!! q^k
#pragma GCC unroll 18
    for (int k = 0; k <= 17; ++k) {
        const double term = 2.0 * scale * asymptotic_poly(k, e);
        sum += term;
        if (std::fabs(term) <= 1e-17 * std::fabs(sum)) break;
        scale *= -(2 * k + 1) * q;
    }
    const double b = kInvSqrt2Pi * ex * (t / r) * sum;
    return b > 0.0 ? b : 0.0;
}

// Section 3, eq. (3.8): Taylor expansion of Y(h+t) - Y(h-t) to order t^13, with
// a = 1 + h Y(h) computed from erfcx; accurate for t < 2 eps^(1/16).
inline double small_t_expansion(double h, double t, double ex) {
    const double a = 1.0 + h * (0.5 * kSqrt2Pi) * simd::erfcx(-kInvSqrt2 * h);
    const double b = small_t_series(h, t, ex, a);
    return b > 0.0 ? b : 0.0;
}

// Eq. (2.3) directly, where the two terms do not cancel badly (h + t > 0.85).
inline double black_using_norm_cdf(double x, double s) {
    const double h = x / s;
    const double t = 0.5 * s;
    const double b_max = simd::exp(0.5 * x);
    const double b = simd::norm_cdf(h + t) * b_max - simd::norm_cdf(h - t) / b_max;
    return b > 0.0 ? b : 0.0;
}

// Section 3, eq. (3.2): b = 1/2 e^{-(h^2+t^2)/2} [erfcx(-(h+t)/sqrt2) - erfcx(-(h-t)/sqrt2)],
// one exponential instead of four.
inline double black_using_erfcx(double h, double t, double ex) {
    const double b = 0.5 * ex *
                     (simd::erfcx(-kInvSqrt2 * (h + t)) - simd::erfcx(-kInvSqrt2 * (h - t)));
    return b > 0.0 ? b : 0.0;
}

struct BlackVega {
    double b, vega;
};

// For x <= 0: b(x, s) by the region choice of section 3 (figure 4), and the vega db/ds =
// exp(-(h^2 + t^2)/2) / sqrt(2 pi), which shares its exponential with three of the regions.
// (ex is passed in as exp(-(h^2 + t^2)/2), h = x/s, t = s/2.)
inline BlackVega black_call_vega(double x, double s) {
    if (s <= 0.0) return {0.0, 0.0};
    const double h = x / s;
    const double t = 0.5 * s;
    const double ex = simd::exp(-0.5 * (h * h + t * t));
    const double vega = kInvSqrt2Pi * ex;
    if (x < s * kAsymptoticH && 0.5 * s * s + x < s * (kTauSmall + kAsymptoticH)) {
        return {asymptotic_expansion(h, t, ex), vega};
    }
    if (t < kTauSmall) return {small_t_expansion(h, t, ex), vega};
    if (x + 0.5 * s * s > s * 0.85) return {black_using_norm_cdf(x, s), vega};
    return {black_using_erfcx(h, t, ex), vega};
}

// b(x, s) for any x; x > 0 by put-call parity.
inline double black_call(double x, double s) {
    if (x > 0.0) return normalised_intrinsic_call(x) + black_call_vega(-x, s).b;
    return black_call_vega(x, s).b;
}

// Rational cubic interpolation (Delbourgo & Gregory 1985), section 5 eq. (5.1)-(5.2).
inline double rational_cubic(double x, double x_l, double x_r, double y_l, double y_r,
                             double d_l, double d_r, double r) {
    const double h = x_r - x_l;
    if (std::fabs(h) <= 0.0) return 0.5 * (y_l + y_r);
    const double t = (x - x_l) / h;
    if (!(r >= kRcMax)) {
        const double omt = 1.0 - t;
        const double t2 = t * t;
        const double omt2 = omt * omt;
        return (y_r * t2 * t + (r * y_r - h * d_r) * t2 * omt + (r * y_l + h * d_l) * t * omt2 +
                y_l * omt2 * omt) /
               (1.0 + (r - 3.0) * t * omt);
    }
    return y_r * t + y_l * (1.0 - t);
}

// Eq. (5.6)-(5.8): the minimum control parameter that keeps the interpolant monotone/convex.
inline double minimum_rational_cubic_r(double d_l, double d_r, double s, bool prefer_shape) {
    const bool monotonic = d_l * s >= 0.0 && d_r * s >= 0.0;
    const bool convex = d_l <= s && s <= d_r;
    const bool concave = d_l >= s && s >= d_r;
    if (!monotonic && !convex && !concave) return kRcMin;
    const double d_r_m_d_l = d_r - d_l;
    const double d_r_m_s = d_r - s;
    const double s_m_d_l = s - d_l;
    double r1 = -DBL_MAX;
    double r2 = r1;
    if (monotonic) {
        if (std::fabs(s) >= DBL_MIN) {
            r1 = (d_r + d_l) / s;
        } else if (prefer_shape) {
            r1 = kRcMax;
        }
    }
    if (convex || concave) {
        if (!(std::fabs(s_m_d_l) < DBL_MIN || std::fabs(d_r_m_s) < DBL_MIN)) {
            r2 = fmax2(std::fabs(d_r_m_d_l / d_r_m_s), std::fabs(d_r_m_d_l / s_m_d_l));
        } else if (prefer_shape) {
            r2 = kRcMax;
        }
    } else if (monotonic && prefer_shape) {
        r2 = kRcMax;
    }
    return fmax2(kRcMin, fmax2(r1, r2));
}

// Eq. (5.3)-(5.4): r so that the interpolant has second derivative `d2` at one end, then
// raised to the shape-preserving minimum.
inline double convex_r_left(double x_l, double x_r, double y_l, double y_r, double d_l, double d_r,
                            double d2_l, bool prefer_shape) {
    const double h = x_r - x_l;
    const double numerator = 0.5 * h * d2_l + (d_r - d_l);
    double r = 0.0;
    if (std::fabs(numerator) >= DBL_MIN) {
        const double denominator = (y_r - y_l) / h - d_l;
        r = std::fabs(denominator) < DBL_MIN ? (numerator > 0.0 ? kRcMax : kRcMin)
                                             : numerator / denominator;
    }
    return fmax2(r, minimum_rational_cubic_r(d_l, d_r, (y_r - y_l) / h, prefer_shape));
}

inline double convex_r_right(double x_l, double x_r, double y_l, double y_r, double d_l,
                             double d_r, double d2_r, bool prefer_shape) {
    const double h = x_r - x_l;
    const double numerator = 0.5 * h * d2_r + (d_r - d_l);
    double r = 0.0;
    if (std::fabs(numerator) >= DBL_MIN) {
        const double denominator = d_r - (y_r - y_l) / h;
        r = std::fabs(denominator) < DBL_MIN ? (numerator > 0.0 ? kRcMax : kRcMin)
                                             : numerator / denominator;
    }
    return fmax2(r, minimum_rational_cubic_r(d_l, d_r, (y_r - y_l) / h, prefer_shape));
}

struct MapValue {
    double f, fp, fpp;
};

// Section 4, eq. (4.5)-(4.7): the lower map f(b) ~ (2 pi |x| / sqrt 27) N(-|x| / (sqrt 3 s))^3,
// nearly linear in b for small prices, and its first two derivatives with respect to b.
inline MapValue lower_map(double x, double s) {
    const double ax = std::fabs(x);
    const double z = kInvSqrt3 * ax / s;
    const double y = z * z;
    const double s2 = s * s;
    // Phi = N(-z) and Phi / n(z) = sqrt(pi/2) erfcx(z / sqrt 2) share one erfcx; the two
    // exponentials of eq. (4.6)-(4.7) are E and E^2.
    const double mills = kSqrtPiOver2 * simd::erfcx(kInvSqrt2 * z);
    const double Phi = kInvSqrt2Pi * simd::exp_neg_half_sq(z) * mills;
    const double E = simd::exp(y + 0.125 * s2);
    const double fpp = kPiOver6 * y / (s2 * s) * Phi *
                       (8.0 * kSqrt3 * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * mills) *
                       E * E;
    if (s <= 0.0) return {0.0, 1.0, fpp};
    const double Phi2 = Phi * Phi;
    const double fp = kTwoPi * y * Phi2 * E;
    const double f = x == 0.0 ? 0.0 : kTwoPiOverSqrt27 * ax * (Phi2 * Phi);
    return {f, fp, fpp};
}

// N^{-1}(p) for the initial guesses: v28::norm_inv's body (normal.hpp) on the inline
// v28::simd functions, so that the guess costs no library calls.
inline double inverse_norm_cdf(double p) {
    if (!(p > 0.0 && p < 1.0)) return p == 0.0 ? -HUGE_VAL : (p == 1.0 ? HUGE_VAL : kNaN);
    return v28::detail::acklam_inverse(
        p, [](double v) { return simd::log(v); }, [](double v) { return simd::exp(v); },
        [](double v) { return simd::norm_cdf(v); });
}

inline double inverse_lower_map(double x, double f) {
    if (f <= 0.0) return 0.0;
    return std::fabs(
        x / (kSqrt3 * inverse_norm_cdf(std::cbrt(f / (kTwoPiOverSqrt27 * std::fabs(x))))));
}

// Eq. (4.9)-(4.11): the upper map f(b) = N(-s/2), near-linear as b -> b_max.
inline MapValue upper_map(double x, double s) {
    const double f = simd::norm_cdf(-0.5 * s);
    if (x == 0.0) return {f, -0.5, 0.0};
    const double w = sq(x / s);
    return {f, -0.5 * simd::exp(0.5 * w), kSqrtPiOver2 * simd::exp(w + 0.125 * s * s) * w / s};
}

inline double inverse_upper_map(double f) { return -2.0 * inverse_norm_cdf(f); }

inline double householder_factor(double newton, double halley, double hh3) {
    return (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0));
}

// Section 6: the second point of the guess, s_l = s_c - b_c / v_c below b_c, else
// s_h = s_c + (b_max - b_c) / v_c (the tangents at the inflexion point s_c).
inline double second_point(double beta, double b_max, double s_c, double b_c, double v_c) {
    if (beta < b_c) return s_c - b_c / v_c;
    return v_c > DBL_MIN ? s_c + (b_max - b_c) / v_c : s_c;
}

// Section 6: the four-branch rational-cubic guess, from b and vega at s_c and at the second
// point and, in the lowest and highest branches, the map m (lower_map or upper_map at s_2).
// There it returns the interpolated map value f in `s` and `map` 1 or 2: the guess is then
// inverse_lower_map(x, f) or inverse_upper_map(f). No Black evaluations here, so the vector
// code shares it (with its own maps and their inverses in lanes).
inline IvGuess interpolate_guess(double beta, double b_max, double s_c, double b_c,
                                 double v_c, double s_2, double b_2, double v_2,
                                 const MapValue& m) {
    double f = -DBL_MAX;
    if (beta < b_c) {
        const double s_l = s_2, b_l = b_2, v_l = v_2;
        if (beta < b_l) {
            // Lowest branch: interpolate the lower map, iterate on g = 1/ln(b) - 1/ln(beta).
            const double r_ll = convex_r_right(0.0, b_l, 0.0, m.f, 1.0, m.fp, m.fpp, true);
            f = rational_cubic(beta, 0.0, b_l, 0.0, m.f, 1.0, m.fp, r_ll);
            if (!(f > 0.0)) {  // round-off at extreme |x|: quadratic instead
                const double t = beta / b_l;
                f = (m.f * t + b_l * (1.0 - t)) * t;
            }
            return {f, DBL_MIN, s_l, 1, 1};
        }
        // Lower-middle branch: rational cubic of s(b) between (b_l, s_l) and (b_c, s_c).
        const double r_lm = convex_r_right(b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, 0.0, false);
        return {rational_cubic(beta, b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, r_lm), s_l, s_c, 0,
                0};
    }
    const double s_h = s_2, b_h = b_2, v_h = v_2;
    if (beta <= b_h) {
        // Upper-middle branch.
        const double r_hm = convex_r_left(b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, 0.0, false);
        return {rational_cubic(beta, b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, r_hm), s_c, s_h, 0,
                0};
    }
    // Highest branch: interpolate the upper map, iterate on
    // g = ln((b_max - beta) / (b_max - b)) when beta > b_max / 2, else on b - beta.
    if (m.fpp > -kSqrtDblMax && m.fpp < kSqrtDblMax) {
        const double r_hh = convex_r_left(b_h, b_max, m.f, 0.0, m.fp, -0.5, m.fpp, true);
        f = rational_cubic(beta, b_h, b_max, m.f, 0.0, m.fp, -0.5, r_hh);
    }
    if (f <= 0.0) {
        const double h = b_max - b_h;
        const double t = (beta - b_h) / h;
        f = (m.f * (1.0 - t) + 0.5 * h * t) * (1.0 - t);
    }
    return {f, s_h, DBL_MAX, beta > 0.5 * b_max ? 2 : 0, 2};
}

inline IvGuess initial_guess(double beta, double x, double b_max, double s_c, double b_c,
                             double v_c, double s_2, double b_2, double v_2) {
    const bool lowest = beta < b_c && beta < b_2;
    const bool highest = !(beta < b_c) && !(beta <= b_2);
    const MapValue m = lowest ? lower_map(x, s_2) : (highest ? upper_map(x, s_2) : MapValue{});
    IvGuess g = interpolate_guess(beta, b_max, s_c, b_c, v_c, s_2, b_2, v_2, m);
    if (g.map == 1) g.s = inverse_lower_map(x, g.s);
    if (g.map == 2) g.s = inverse_upper_map(g.s);
    return g;
}

// Section 6: guess, then `n_iter` Householder(3) steps on the branch's objective. beta is a
// normalised OTM call price, x <= 0, 0 < beta < e^{x/2}. Black::eval is black_call_vega, kept
// out of line (the caller is flattened, and inlined copies of it would overflow the
// instruction cache). iv_kernels.ipp does the same in vector lanes.
template <class Black>
inline double implied_s_otm_call(double beta, double x, int n_iter) {
    const double b_max = simd::exp(0.5 * x);
    // The central point s_c = sqrt(2|x|) is the inflexion of b(s) (eq. 4.1).
    const double s_c = std::sqrt(std::fabs(2.0 * x));
    const auto [b_c, v_c] = Black::eval(x, s_c);
    const double s_2 = second_point(beta, b_max, s_c, b_c, v_c);
    const auto [b_2, v_2] = Black::eval(x, s_2);
    const IvGuess guess = initial_guess(beta, x, b_max, s_c, b_c, v_c, s_2, b_2, v_2);
    double s = guess.s;
    double s_left = guess.s_left;
    double s_right = guess.s_right;
    int iterations = 0;
    int direction_reversals = 0;
    double ds = -DBL_MAX;
    double ds_previous = 0.0;

    // Bisection guard shared by the three iteration loops: if the last step left the bracket
    // or reversed direction thrice, restart from its midpoint. Returns true to stop.
    auto guard = [&]() {
        if (ds * ds_previous < 0.0) ++direction_reversals;
        if (iterations > 0 && (direction_reversals == 3 || !(s > s_left && s < s_right))) {
            s = 0.5 * (s_left + s_right);
            if (s_right - s_left <= kEps * s) return true;
            direction_reversals = 0;
            ds = 0.0;
        }
        ds_previous = ds;
        return false;
    };
    auto tighten = [&](double b) {
        if (b > beta && s < s_right) {
            s_right = s;
        } else if (b < beta && s > s_left) {
            s_left = s;
        }
    };

    if (guess.objective == 1) {  // lowest branch: g = 1/ln(b) - 1/ln(beta)
        const double ln_beta = simd::log(beta);
        while (iterations < n_iter && std::fabs(ds) > kEps * s) {
            if (guard()) break;
            const auto [b, bp] = Black::eval(x, s);
            tighten(b);
            if (b <= 0.0 || bp <= 0.0) {  // underflow: bisect this once
                ds = 0.5 * (s_left + s_right) - s;
            } else {
                const double ln_b = simd::log(b);
                const double bpob = bp / b;
                const double h = x / s;
                const double b_halley = h * h / s - s / 4.0;
                const double newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob;
                const double halley = b_halley - bpob * (1.0 + 2.0 / ln_b);
                const double b_hh3 = b_halley * b_halley - 3.0 * sq(h / s) - 0.25;
                const double hh3 = b_hh3 + 2.0 * sq(bpob) * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b)) -
                                   3.0 * b_halley * bpob * (1.0 + 2.0 / ln_b);
                ds = newton * householder_factor(newton, halley, hh3);
            }
            ds = fmax2(-0.5 * s, ds);
            s += ds;
            ++iterations;
        }
        return s;
    }
    if (guess.objective == 2) {  // highest branch above b_max / 2
        while (iterations < n_iter && std::fabs(ds) > kEps * s) {
            if (guard()) break;
            const auto [b, bp] = Black::eval(x, s);
            tighten(b);
            if (b >= b_max || bp <= DBL_MIN) {
                ds = 0.5 * (s_left + s_right) - s;
            } else {
                const double b_max_minus_b = b_max - b;
                const double g = simd::log((b_max - beta) / b_max_minus_b);
                const double gp = bp / b_max_minus_b;
                const double b_halley = sq(x / s) / s - s / 4.0;
                const double b_hh3 = b_halley * b_halley - 3.0 * sq(x / (s * s)) - 0.25;
                const double newton = -g / gp;
                const double halley = b_halley + gp;
                const double hh3 = b_hh3 + gp * (2.0 * gp + 3.0 * b_halley);
                ds = newton * householder_factor(newton, halley, hh3);
            }
            ds = fmax2(-0.5 * s, ds);
            s += ds;
            ++iterations;
        }
        return s;
    }
    // Middle branches (and the highest one below b_max / 2): iterate on g = b(s) - beta.
    while (iterations < n_iter && std::fabs(ds) > kEps * s) {
        if (guard()) break;
        const auto [b, bp] = Black::eval(x, s);
        tighten(b);
        const double newton = (beta - b) / bp;
        const double halley = sq(x / s) / s - s / 4.0;
        const double hh3 = halley * halley - 3.0 * sq(x / (s * s)) - 0.25;
        ds = fmax2(-0.5 * s, newton * householder_factor(newton, halley, hh3));
        s += ds;
        ++iterations;
    }
    return s;
}

// Two Householder(3) steps as in the paper; the reference tests show machine precision.
constexpr int kIterations = 2;

// Total standard deviation s = vol sqrt(t) from the undiscounted price of an out-of-the-money
// option normalised by sqrt(F K); every OTM option is a call at x = -|ln(F/K)| (put-call
// parity and the reciprocal-strike symmetry, section 2). 0 for a zero time value.
template <class Black>
inline double implied_s_otm(double beta_otm, double x) {
    const double xc = -std::fabs(x);
    if (beta_otm <= 0.0) return 0.0;
    if (beta_otm >= simd::exp(0.5 * xc)) return kNaN;  // at the upper bound (round-off)
    return implied_s_otm_call<Black>(beta_otm, xc, kIterations);
}

// The same from any normalised price beta of a call or put; NaN outside its bounds.
template <class Black>
inline double implied_s(double beta, double x, bool call) {
    const double intrinsic = normalised_intrinsic_call(call ? x : -x);
    const double b_upper = simd::exp((call ? 0.5 : -0.5) * x);  // F or K over sqrt(F K)
    if (!(beta >= intrinsic && beta < b_upper)) return kNaN;
    return implied_s_otm<Black>(fmax2(beta - intrinsic, 0.0), x);
}

template <class Black>
inline double black_iv_unchecked(double price, double forward, double strike, double t, bool call,
                                 double discount) {
    // Bounds decided in price space, so that a price on a bound gets the answer it should.
    const Bounds bd = black_bounds(forward, strike, call, discount);
    if (!(price >= bd.lower && price < bd.upper)) return kNaN;
    if (price == bd.lower) return 0.0;
    const double intrinsic = call ? forward - strike : strike - forward;
    double p = price / discount;
    if (intrinsic > 0.0) p = fmax2(p - intrinsic, 0.0);  // ITM -> the OTM option by parity
    const double beta = p / (std::sqrt(forward) * std::sqrt(strike));
    return implied_s_otm<Black>(beta, simd::log(forward / strike)) / std::sqrt(t);
}

// Everything inlined into the three entries (flatten), but one out-of-line b(x, s) with vega
// (noinline: the caller is flattened, and inlined copies would overflow the instruction cache).
struct Black {
    [[gnu::flatten, gnu::noinline]] static BlackVega eval(double x, double s) {
        return black_call_vega(x, s);
    }
    [[gnu::flatten]] static double price(double x, double s) { return black_call(x, s); }
};

[[gnu::flatten]] double scalar_black_iv(double price, double forward, double strike, double t,
                                        bool call, double discount) {
    return black_iv_unchecked<Black>(price, forward, strike, t, call, discount);
}
[[gnu::flatten]] double scalar_implied_s(double beta, double x, bool call) {
    return implied_s<Black>(beta, x, call);
}
double scalar_black_call(double x, double s) { return Black::price(x, s); }

}  // namespace

[[gnu::flatten]] IvGuess scalar_interpolate_guess(double beta, double b_max, double s_c,
                                                  double b_c, double v_c, double s_2,
                                                  double b_2, double v_2, double m_f,
                                                  double m_fp, double m_fpp) {
    return interpolate_guess(beta, b_max, s_c, b_c, v_c, s_2, b_2, v_2, {m_f, m_fp, m_fpp});
}

inline constexpr IvScalar iv_scalar_table{&scalar_black_iv, &scalar_implied_s,
                                          &scalar_black_call};

}  // namespace V28_SIMD_ISA
}  // namespace v28::bsm::detail
