// Internal: implied vol ("Let's Be Rational", iv.cpp) for several options in vector lanes. The
// loop body is iv_kernels.ipp, compiled once per instruction set (iv_kernels_avx512.cpp,
// iv_kernels_avx2.cpp) as bsm_kernels is; iv.cpp picks one by bsm::detail::cpu_level() and
// keeps the scalar code for the remainder and for CPUs without AVX2 + FMA.
#pragma once

#include <cstddef>
#include <cstdint>

namespace v28::bsm::detail {

// Shared by the scalar and the vector code (data only: no code to merge across targets).
inline constexpr double kIvEps = 2.220446049250313e-16;      // DBL_EPSILON
inline constexpr double kIvDblMin = 2.2250738585072014e-308;  // DBL_MIN
inline constexpr double kTauSmall = 0.21022410381342865;      // 2 eps^(1/16): small-t limit
inline constexpr double kAsymptoticH = -10.0;                 // h below which (3.4) is used
inline constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438186847585863116;
inline constexpr double kSqrt2Pi = 2.50662827463100050241576528481104525300698674061;
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
// highest branches, for an OTM call price beta at x <= 0. Defined in iv.cpp (built for
// x86-64-v3; call only when cpu_level() >= 3).
IvGuess iv_interpolate_guess(double beta, double b_max, double s_c, double b_c,
                             double v_c, double s_2, double b_2, double v_2, double m_f,
                             double m_fp, double m_fpp);

// Acklam's rational approximation of the inverse normal CDF (relative error 1.15e-9), the
// start of inverse_norm_cdf in iv.cpp and in the kernels.
inline constexpr double kAcklamA[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                      -2.759285104469687e+02, 1.383577518672690e+02,
                                      -3.066479806614716e+01, 2.506628277459239e+00};
inline constexpr double kAcklamB[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                      -1.556989798598866e+02, 6.680131188771972e+01,
                                      -1.328068155288572e+01};
inline constexpr double kAcklamC[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                      -2.400758277161838e+00, -2.549732539343734e+00,
                                      4.374664141464968e+00,  2.938163982698783e+00};
inline constexpr double kAcklamD[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                      2.445134137142996e+00, 3.754408661907416e+00};

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
// bounds) into out; returns how many were done. The per-ISA builds (call only when
// cpu_level() allows).
std::size_t iv_lanes_avx512(const IvInputs& in, double* out);
std::size_t iv_lanes_avx2(const IvInputs& in, double* out);

}  // namespace v28::bsm::detail
