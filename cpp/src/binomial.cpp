// CRR binomial tree (see v28/binomial.hpp): validation and the API here; the backward
// induction runs over contiguous arrays (binomial_kernels.ipp) so that its inner loop
// vectorises, compiled per level and picked at run time.
#include "v28/binomial.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "binomial_kernels.hpp"
#include "v28/check.hpp"
#include "v28/simd_dispatch.hpp"

namespace v28::binomial {

namespace detail {

Tree make_tree(double t, double rate, double div, double vol, long long steps) {
    const double dt = t / static_cast<double>(steps);
    const double dx = vol * std::sqrt(dt);
    const double u = std::exp(dx);
    const double d = std::exp(-dx);
    const double growth = std::exp((rate - div) * dt);
    return {dt, dx, (growth - d) / (u - d), std::exp(-rate * dt)};
}

}  // namespace detail

namespace {

using detail::Tree;
using detail::make_tree;

void run(const detail::Batch& b) {
    switch (simd::level()) {
#if V28_SIMD_X86
        case simd::Level::avx512:
            return detail::run_batch_avx512(b);
        case simd::Level::avx2:
            return detail::run_batch_avx2(b);
#endif
        default:
            return detail::run_batch_base(b);
    }
}

void check_sizes(std::span<const double> spot, std::span<const double> strike,
                 std::span<const double> t, std::span<const double> rate,
                 std::span<const double> div, std::span<const double> vol,
                 std::span<const std::uint8_t> call, std::span<const std::uint8_t> american,
                 std::size_t n_out) {
    const std::size_t n = spot.size();
    require_same_size("spot, strike", n, strike.size());
    require_same_size("spot, t", n, t.size());
    require_same_size("spot, rate", n, rate.size());
    require_same_size("spot, div", n, div.size());
    require_same_size("spot, vol", n, vol.size());
    require_same_size("spot, call", n, call.size());
    require_same_size("spot, american", n, american.size());
    require_same_size("spot, out", n, n_out);
}

}  // namespace

void check_inputs(double spot, double strike, double t, double rate, double div, double vol,
                  long long steps, std::size_t index) {
    require_positive("spot", spot, index);
    require_nonnegative("strike", strike, index);
    require_nonnegative("t", t, index);
    require_finite("rate", rate, index);
    require_finite("div", div, index);
    require_nonnegative("vol", vol, index);
    if (steps < 1) fail_arg("steps", ">= 1", static_cast<double>(steps));
    if (steps > max_steps) fail_arg("steps", "<= 10000000", static_cast<double>(steps));
    // e^{-div t} or e^{-rate t} beyond double range (a negative rate or yield over a huge t):
    // the zero-vol forward and every discounted node would be inf or NaN without a word.
    if (!(std::isfinite(spot * std::exp(-div * t)) && std::isfinite(strike * std::exp(-rate * t)))) {
        std::ostringstream msg;
        msg.precision(17);
        msg << "spot * exp(-div * t) or strike * exp(-rate * t) overflows (rate " << rate
            << ", div " << div << ", t " << t << ")";
        if (index != no_index) msg << " at index " << index;
        throw std::domain_error(msg.str());
    }
    if (t == 0.0 || vol == 0.0) return;
    const Tree tr = make_tree(t, rate, div, vol, steps);
    // The terminal nodes reach spot e^{+-steps dx}: beyond double range the tree is meaningless.
    if (!(static_cast<double>(steps) * tr.dx < 700.0)) {
        std::ostringstream msg;
        msg.precision(17);
        msg << "vol * sqrt(t * steps) = " << static_cast<double>(steps) * tr.dx
            << " must be < 700 (the tree's extreme nodes spot e^{+-vol sqrt(t steps)} "
               "overflow)";
        if (index != no_index) msg << " at index " << index;
        throw std::domain_error(msg.str());
    }
    if (!(tr.p >= 0.0 && tr.p <= 1.0)) {
        const double carry = rate - div;
        const double needed = std::ceil(t * carry * carry / (vol * vol));
        std::ostringstream msg;
        msg.precision(17);
        msg << "CRR up-probability p = " << tr.p << " is outside [0, 1] with steps = " << steps
            << ": the step dt = t / steps = " << tr.dt << " is too long for the carry rate - div = "
            << carry << " at vol = " << vol << "; use steps >= " << needed;
        if (index != no_index) msg << " (at index " << index << ")";
        throw std::domain_error(msg.str());
    }
}

double crr_price(double spot, double strike, double t, double rate, double div, double vol,
                 bool call, bool american, long long steps) {
    check_inputs(spot, strike, t, rate, div, vol, steps, no_index);
    const std::uint8_t c = call ? 1 : 0, a = american ? 1 : 0;
    double price = 0.0;
    run({&spot, &strike, &t, &rate, &div, &vol, &c, &a, 1, steps, &price, nullptr, nullptr,
         nullptr});
    return price;
}

CrrGreeks crr_greeks(double spot, double strike, double t, double rate, double div, double vol,
                     bool call, bool american, long long steps) {
    check_inputs(spot, strike, t, rate, div, vol, steps, no_index);
    if (steps < 2) fail_arg("steps", ">= 2 for Greeks from the tree", static_cast<double>(steps));
    const std::uint8_t c = call ? 1 : 0, a = american ? 1 : 0;
    CrrGreeks g;
    run({&spot, &strike, &t, &rate, &div, &vol, &c, &a, 1, steps, &g.price, &g.delta, &g.gamma,
         &g.theta});
    return g;
}

void crr_price(std::span<const double> spot, std::span<const double> strike,
               std::span<const double> t, std::span<const double> rate,
               std::span<const double> div, std::span<const double> vol,
               std::span<const std::uint8_t> call, std::span<const std::uint8_t> american,
               long long steps, std::span<double> out) {
    check_sizes(spot, strike, t, rate, div, vol, call, american, out.size());
    for (std::size_t i = 0; i < spot.size(); ++i) {
        check_inputs(spot[i], strike[i], t[i], rate[i], div[i], vol[i], steps, i);
    }
    run({spot.data(), strike.data(), t.data(), rate.data(), div.data(), vol.data(), call.data(),
         american.data(), spot.size(), steps, out.data(), nullptr, nullptr, nullptr});
}

void crr_greeks(std::span<const double> spot, std::span<const double> strike,
                std::span<const double> t, std::span<const double> rate,
                std::span<const double> div, std::span<const double> vol,
                std::span<const std::uint8_t> call, std::span<const std::uint8_t> american,
                long long steps, std::span<double> price, std::span<double> delta,
                std::span<double> gamma, std::span<double> theta) {
    check_sizes(spot, strike, t, rate, div, vol, call, american, price.size());
    require_same_size("price, delta", price.size(), delta.size());
    require_same_size("price, gamma", price.size(), gamma.size());
    require_same_size("price, theta", price.size(), theta.size());
    if (steps < 2) fail_arg("steps", ">= 2 for Greeks from the tree", static_cast<double>(steps));
    for (std::size_t i = 0; i < spot.size(); ++i) {
        check_inputs(spot[i], strike[i], t[i], rate[i], div[i], vol[i], steps, i);
    }
    run({spot.data(), strike.data(), t.data(), rate.data(), div.data(), vol.data(), call.data(),
         american.data(), spot.size(), steps, price.data(), delta.data(), gamma.data(),
         theta.data()});
}

}  // namespace v28::binomial
