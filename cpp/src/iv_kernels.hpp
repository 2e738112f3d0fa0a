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
// beta) / (b_max - b)) (highest branch above b_max / 2).
struct IvGuess {
    double s, s_left, s_right;
    int objective;
};

// The four-branch rational-cubic guess from b and vega at s_c = sqrt(2|x|) and at the second
// point s_2 (s_l below b_c, s_h above), for an OTM call price beta at x <= 0. Defined in
// iv.cpp (built for x86-64-v3; call only when cpu_level() >= 3).
IvGuess iv_initial_guess(double beta, double x, double b_max, double s_c, double b_c,
                         double v_c, double s_2, double b_2, double v_2);

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
