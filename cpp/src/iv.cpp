// "Let's Be Rational" implied volatility (P. Jäckel, Wilmott 2015): validation, bounds and the
// run-time choice of the solver builds (iv_scalar.ipp for one option, iv_kernels.ipp for
// vector lanes; see iv_kernels.hpp).
#include "v28/iv.hpp"

#include <cfloat>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "iv_kernels.hpp"
#include "v28/check.hpp"
#include "v28/simd_dispatch.hpp"

namespace v28::bsm {

namespace {

using detail::Bounds;
using detail::black_bounds;

// The scalar solver of the level: AVX2 + FMA from that level up (the AVX-512 level has no
// scalar build of its own: scalar code gains nothing from it).
const detail::IvScalar& scalar() {
#if V28_SIMD_X86
    if (simd::level() >= simd::Level::avx2) return detail::iv_scalar_avx2;
#endif
    return detail::iv_scalar_base;
}

double black_iv_dispatch(double price, double forward, double strike, double t, bool call,
                         double discount) {
    return scalar().black_iv(price, forward, strike, t, call, discount);
}

// Options in vector lanes where the CPU allows (the rest, and every option on the baseline,
// by the scalar code); returns how many were done.
std::size_t black_iv_lanes(const detail::IvInputs& in, double* out) {
    switch (simd::level()) {
#if V28_SIMD_X86
        case simd::Level::avx512:
            return detail::iv_lanes_avx512(in, out);
        case simd::Level::avx2:
            return detail::iv_lanes_avx2(in, out);
#endif
        default:
            return 0;
    }
}

void check_black_args(double price, double forward, double strike, double t, double discount,
                      std::size_t i) {
    require_finite("price", price, i);
    require_positive("forward", forward, i);
    require_positive("strike", strike, i);
    require_positive("t", t, i);
    require_positive("discount", discount, i);
}

void check_bsm_args(double price, double spot, double strike, double t, double rate, double div,
                    std::size_t i) {
    require_finite("price", price, i);
    require_positive("spot", spot, i);
    require_positive("strike", strike, i);
    require_positive("t", t, i);
    require_finite("rate", rate, i);
    require_finite("div", div, i);
}

[[noreturn]] void fail_bounds(double price, double forward, double strike, bool call,
                              double discount, std::size_t i) {
    const Bounds bd = black_bounds(forward, strike, call, discount);
    std::ostringstream msg;
    msg.precision(17);
    msg << "price " << price << " is outside the no-arbitrage bounds [" << bd.lower << ", "
        << bd.upper << ") of a " << (call ? "call" : "put") << " with forward " << forward
        << ", strike " << strike << " and discount factor " << discount
        << "; no implied volatility exists";
    if (i != no_index) msg << " (at index " << i << ")";
    throw std::domain_error(msg.str());
}

struct Carry {
    double forward, discount;
};
// Throws std::domain_error when the forward or the discount factor over- or underflows (the
// bounds would otherwise print as NaN and every vol come out NaN without a word).
inline Carry carry(double spot, double t, double rate, double div, std::size_t i = no_index) {
    const Carry c{spot * std::exp((rate - div) * t), std::exp(-rate * t)};
    if (!(c.forward > 0.0 && c.forward < HUGE_VAL && c.discount > 0.0 && c.discount < HUGE_VAL)) {
        std::ostringstream msg;
        msg.precision(17);
        msg << "forward spot * exp((rate - div) * t) = " << c.forward
            << " and discount exp(-rate * t) = " << c.discount
            << " must be finite and > 0 (spot " << spot << ", rate " << rate << ", div " << div
            << ", t " << t << ")";
        if (i != no_index) msg << " at index " << i;
        throw std::domain_error(msg.str());
    }
    return c;
}

}  // namespace

double normalised_black_call(double x, double s) { return scalar().black_call(x, s); }

double normalised_implied_vol(double beta, double x, bool call) {
    return scalar().implied_s(beta, x, call);
}

double black_implied_vol(double price, double forward, double strike, double t, bool call,
                         double discount) {
    check_black_args(price, forward, strike, t, discount, no_index);
    return black_iv_dispatch(price, forward, strike, t, call, discount);
}

double implied_vol(double price, double spot, double strike, double t, double rate, double div,
                   bool call) {
    check_bsm_args(price, spot, strike, t, rate, div, no_index);
    const Carry c = carry(spot, t, rate, div);
    return black_iv_dispatch(price, c.forward, strike, t, call, c.discount);
}

double black_implied_vol_checked(double price, double forward, double strike, double t,
                                 bool call, double discount) {
    const double v = black_implied_vol(price, forward, strike, t, call, discount);
    if (std::isnan(v)) fail_bounds(price, forward, strike, call, discount, no_index);
    return v;
}

double implied_vol_checked(double price, double spot, double strike, double t, double rate,
                           double div, bool call) {
    const double v = implied_vol(price, spot, strike, t, rate, div, call);
    if (std::isnan(v)) {
        const Carry c = carry(spot, t, rate, div);
        fail_bounds(price, c.forward, strike, call, c.discount, no_index);
    }
    return v;
}

void implied_vol(std::span<const double> price, std::span<const double> spot,
                 std::span<const double> strike, std::span<const double> t,
                 std::span<const double> rate, std::span<const double> div,
                 std::span<const std::uint8_t> call, std::span<double> out, bool strict) {
    const std::size_t n = price.size();
    require_same_size("price, spot", n, spot.size());
    require_same_size("price, strike", n, strike.size());
    require_same_size("price, t", n, t.size());
    require_same_size("price, rate", n, rate.size());
    require_same_size("price, div", n, div.size());
    require_same_size("price, call", n, call.size());
    require_same_size("price, out", n, out.size());
    for (std::size_t i = 0; i < n; ++i) check_bsm_args(price[i], spot[i], strike[i], t[i], rate[i], div[i], i);
    // Forwards and discount factors a chunk at a time, then the Black implied vols.
    constexpr std::size_t chunk = 256;
    double forward[chunk];
    double discount[chunk];
    for (std::size_t i0 = 0; i0 < n; i0 += chunk) {
        const std::size_t m = n - i0 < chunk ? n - i0 : chunk;
        for (std::size_t j = 0; j < m; ++j) {
            const Carry c = carry(spot[i0 + j], t[i0 + j], rate[i0 + j], div[i0 + j], i0 + j);
            forward[j] = c.forward;
            discount[j] = c.discount;
        }
        const detail::IvInputs in{price.data() + i0, forward,      strike.data() + i0,
                                  t.data() + i0,     discount,     call.data() + i0, m};
        for (std::size_t j = black_iv_lanes(in, out.data() + i0); j < m; ++j) {
            out[i0 + j] = black_iv_dispatch(price[i0 + j], forward[j], strike[i0 + j], t[i0 + j],
                                            call[i0 + j] != 0, discount[j]);
        }
        for (std::size_t j = 0; strict && j < m; ++j) {
            if (std::isnan(out[i0 + j])) {
                fail_bounds(price[i0 + j], forward[j], strike[i0 + j], call[i0 + j] != 0,
                            discount[j], i0 + j);
            }
        }
    }
}

void black_implied_vol(std::span<const double> price, std::span<const double> forward,
                       std::span<const double> strike, std::span<const double> t,
                       std::span<const std::uint8_t> call, std::span<const double> discount,
                       std::span<double> out, bool strict) {
    const std::size_t n = price.size();
    require_same_size("price, forward", n, forward.size());
    require_same_size("price, strike", n, strike.size());
    require_same_size("price, t", n, t.size());
    require_same_size("price, call", n, call.size());
    require_same_size("price, discount", n, discount.size());
    require_same_size("price, out", n, out.size());
    for (std::size_t i = 0; i < n; ++i) check_black_args(price[i], forward[i], strike[i], t[i], discount[i], i);
    const detail::IvInputs in{price.data(), forward.data(),  strike.data(), t.data(),
                              discount.data(), call.data(), n};
    for (std::size_t i = black_iv_lanes(in, out.data()); i < n; ++i) {
        out[i] = black_iv_dispatch(price[i], forward[i], strike[i], t[i], call[i] != 0, discount[i]);
    }
    for (std::size_t i = 0; strict && i < n; ++i) {
        if (std::isnan(out[i])) {
            fail_bounds(price[i], forward[i], strike[i], call[i] != 0, discount[i], i);
        }
    }
}

}  // namespace v28::bsm
