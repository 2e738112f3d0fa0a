// Internal: implied vol ("Let's Be Rational"): the scalar solver (iv_scalar.ipp, built for
// AVX2 + FMA and the baseline) and several options in vector lanes (iv_kernels.ipp, built for
// AVX-512 and AVX2 + FMA), each compiled once per level as bsm_kernels is; iv.cpp validates
// and picks the builds by v28::simd::level(), the scalar code taking the remainder of a span
// and every option on the baseline.
#pragma once

#include <cstddef>
#include <cstdint>

#include "v28/normal.hpp"

namespace v28::bsm::detail {

// Shared by the scalar and the vector code (data only: no code to merge across targets).
inline constexpr double kIvEps = 2.220446049250313e-16;      // DBL_EPSILON
inline constexpr double kIvDblMin = 2.2250738585072014e-308;  // DBL_MIN
inline constexpr double kTauSmall = 0.21022410381342865;      // 2 eps^(1/16): small-t limit
inline constexpr double kAsymptoticH = -10.0;                 // h below which (3.4) is used
inline constexpr double kInvSqrt2Pi = v28::inv_sqrt_2pi;
inline constexpr double kSqrt2Pi = v28::sqrt_2pi;
inline constexpr double kInvSqrt2 = 0.70710678118654752440084436210484903928483593769;
inline constexpr double kSqrt3 = 1.73205080756887729352744634150587236694280525381;
inline constexpr double kInvSqrt3 = 0.57735026918962576450914878050195745564760175127;
inline constexpr double kTwoPi = 6.28318530717958647692528676655900576839433879875;
inline constexpr double kTwoPiOverSqrt27 = 1.20919957615614523372938550509477048818937749873;
inline constexpr double kPiOver6 = 0.52359877559829887307710723054658381403286156656;
inline constexpr double kSqrtPiOver2 = 1.25331413731550025120788264240552262650349337031;

// Binomial coefficients C(n, m), n <= 35, exact in double (the asymptotic expansion).
struct Binomials {
    double c[36][36] = {};
    constexpr Binomials() {
        for (int n = 0; n < 36; ++n) {
            c[n][0] = 1.0;
            for (int m = 1; m <= n; ++m) c[n][m] = c[n - 1][m - 1] + (m < n ? c[n - 1][m] : 0.0);
        }
    }
};
inline constexpr Binomials kBinom{};

// The start of the iteration (Jäckel 2015, section 6): the guess, its bracket and the
// objective: 0 g = b - beta, 1 g = 1/ln(b) - 1/ln(beta) (lowest branch), 2 g = ln((b_max -
// beta) / (b_max - b)) (highest branch above b_max / 2). `map` 1 or 2: `s` is still the value
// f of the lower or upper map (eq. 4.5, 4.9) at the guess, to be inverted.
struct IvGuess {
    double s, s_left, s_right;
    int objective, map;
};

// The four-branch rational-cubic guess from b and vega at s_c = sqrt(2|x|) and at the second
// point s_2 (s_l below b_c, s_h above) and the map (f, f', f'') at s_2 in the lowest and
// highest branches, for an OTM call price beta at x <= 0. The AVX2 + FMA build of the scalar
// solver's (iv_scalar_avx2.cpp; call only at simd::Level::avx2 and above).
IvGuess iv_interpolate_guess(double beta, double b_max, double s_c, double b_c,
                             double v_c, double s_2, double b_2, double v_2, double m_f,
                             double m_fp, double m_fpp);

// The no-arbitrage bounds [lower, upper) of a call or put price (discounted).
struct Bounds {
    double lower, upper;
};
inline Bounds black_bounds(double forward, double strike, bool call, double discount) {
    const double intrinsic = call ? forward - strike : strike - forward;
    return {discount * (intrinsic > 0.0 ? intrinsic : 0.0), discount * (call ? forward : strike)};
}

// The scalar solver (iv_scalar.ipp), one build per level: Black implied vol of one option
// (validated arguments; NaN outside the bounds), the normalised implied s = vol sqrt(t) and
// the normalised Black call b(x, s) (see v28/iv.hpp).
struct IvScalar {
    double (*black_iv)(double price, double forward, double strike, double t, bool call,
                       double discount);
    double (*implied_s)(double beta, double x, bool call);
    double (*black_call)(double x, double s);
};
extern const IvScalar iv_scalar_avx2, iv_scalar_base;

struct IvInputs {
    const double* price;
    const double* forward;
    const double* strike;
    const double* t;
    const double* discount;
    const std::uint8_t* call;
    std::size_t n;
};

// Black implied vols of the first n - n % width options (validated inputs; NaN outside the
// bounds) into out; returns how many were done. The per-level builds (call only when the CPU
// supports them).
std::size_t iv_lanes_avx512(const IvInputs& in, double* out);
std::size_t iv_lanes_avx2(const IvInputs& in, double* out);

}  // namespace v28::bsm::detail
