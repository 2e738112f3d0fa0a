// Unit tests of the C++ API on its own (no Python): the functions the bindings do not expose
// (iv.hpp's normalised_* and *_checked, scalar merton::price, scalar crr_price) and the thread
// pool. Plain checks, no framework: each failure prints its inputs; the exit status counts them.
// Independent sources: closed forms written out here with std::erfc, exact identities, and the
// one-step binomial tree by hand.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "v28/binomial.hpp"
#include "v28/bsm.hpp"
#include "v28/heston.hpp"
#include "v28/iv.hpp"
#include "v28/merton.hpp"
#include "v28/normal.hpp"
#include "v28/ode.hpp"
#include "v28/parallel.hpp"

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        ++failures;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

std::string fmt(const char* f, double a, double b = 0.0, double c = 0.0) {
    char buf[256];
    std::snprintf(buf, sizeof buf, f, a, b, c);
    return buf;
}

double ncdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

template <class E, class F>
bool throws(F&& f, const char* needle) {
    try {
        f();
    } catch (const E& e) {
        return std::string(e.what()).find(needle) != std::string::npos;
    } catch (...) {
        return false;
    }
    return false;
}

void test_normalised_black() {
    // b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2) (Jaeckel 2015 eq. 2.3), against the
    // erfc form at moderate arguments (1e-14 of the larger term: the form itself cancels), and
    // put-call parity b(x, s) - b(-x, s) = 2 sinh(x/2) exactly to rounding.
    for (double x : {-1.0, -0.2, 0.0, 0.3, 1.5}) {
        for (double s : {0.05, 0.3, 1.0, 2.5}) {
            const double t1 = std::exp(0.5 * x) * ncdf(x / s + 0.5 * s);
            const double t2 = std::exp(-0.5 * x) * ncdf(x / s - 0.5 * s);
            const double got = v28::bsm::normalised_black_call(x, s);
            // |x/s| > 8: the erfc form's own tail error (~(x/s)^2 ulp) exceeds the tolerance.
            check(std::abs(x / s) > 8.0 || std::abs(got - (t1 - t2)) <= 1e-14 * t1,
                  fmt("normalised_black_call(%g, %g) = %.17g", x, s, got));
            const double parity = got - v28::bsm::normalised_black_call(-x, s);
            check(std::abs(parity - 2.0 * std::sinh(0.5 * x)) <= 4e-16 * (1.0 + got),
                  fmt("parity at x=%g s=%g: %.17g", x, s, parity));
            // Round trip through the inverse on the out-of-the-money side (a call for x <= 0,
            // a put, of normalised price b(-x, s), for x > 0), where b carries full precision.
            const bool call = x <= 0.0;
            const double beta = call ? got : v28::bsm::normalised_black_call(-x, s);
            const double s_back = v28::bsm::normalised_implied_vol(beta, x, call);
            check(std::abs(s_back - s) <= 1e-12 * s,
                  fmt("normalised_implied_vol at x=%g s=%g -> %.17g", x, s, s_back));
        }
    }
    // Bounds: an out-of-the-money price of 0 gives vol 0; the upper bound e^{x/2} gives NaN.
    check(v28::bsm::normalised_implied_vol(0.0, -0.5, true) == 0.0,
          "normalised_implied_vol of a worthless OTM call is 0");
    check(std::isnan(v28::bsm::normalised_implied_vol(std::exp(0.25), 0.5, true)),
          "normalised_implied_vol at the upper bound is NaN");
}

void test_checked_implied_vols() {
    const double vol = v28::bsm::implied_vol_checked(
        v28::bsm::price(100.0, 95.0, 0.5, 0.02, 0.01, 0.25, false), 100.0, 95.0, 0.5, 0.02, 0.01,
        false);
    check(std::abs(vol - 0.25) < 1e-14, fmt("implied_vol_checked round trip %.17g", vol));
    check(std::isnan(v28::bsm::implied_vol(120.0, 100.0, 90.0, 1.0, 0.05, 0.0, true)),
          "implied_vol out of bounds is NaN");
    check(throws<std::domain_error>(
              [] { v28::bsm::implied_vol_checked(120.0, 100.0, 90.0, 1.0, 0.05, 0.0, true); },
              "outside the no-arbitrage bounds"),
          "implied_vol_checked throws domain_error naming the bounds");
    check(throws<std::domain_error>(
              [] { v28::bsm::black_implied_vol_checked(1.0, 90.0, 100.0, 1.0, false, 1.0); },
              "price 1 is outside the no-arbitrage bounds [10, 100)"),
          "black_implied_vol_checked names price and bounds");
    check(throws<std::invalid_argument>(
              [] { v28::bsm::implied_vol_checked(5.0, -1.0, 100.0, 1.0, 0.0, 0.0, true); },
              "spot must be > 0"),
          "implied_vol_checked names a bad spot");
    check(throws<std::domain_error>(
              [] { v28::bsm::implied_vol(5.0, 100.0, 100.0, 1.0, 900.0, 0.0, true); },
              "forward spot * exp((rate - div) * t)"),
          "an overflowing forward is named");
}

void test_merton_scalar() {
    // lam = 0 is BSM exactly; the scalar and vectorised entries agree; extreme intensities stay
    // within the no-arbitrage bounds (the series runs in log space).
    const v28::merton::Params none{0.2, 0.0, -0.1, 0.15};
    check(v28::merton::price(100.0, 95.0, 1.0, 0.03, 0.01, none, true) ==
              v28::bsm::price(100.0, 95.0, 1.0, 0.03, 0.01, 0.2, true),
          "merton::price with lam = 0 is BSM");
    const v28::merton::Params p{0.2, 1.5, -0.1, 0.15};
    const double s[] = {100.0}, k[] = {95.0}, t[] = {1.0}, r[] = {0.03}, q[] = {0.01},
                 v[] = {0.2}, l[] = {1.5}, m[] = {-0.1}, d[] = {0.15};
    const std::uint8_t c[] = {0};
    double out[1];
    v28::merton::price(s, k, t, r, q, v, l, m, d, c, out);
    check(v28::merton::price(100.0, 95.0, 1.0, 0.03, 0.01, p, false) == out[0],
          "scalar and vectorised Merton agree");
    const double big = v28::merton::price(100.0, 100.0, 1.0, 0.02, 0.0, {0.2, 300.0, 1.0, 0.1}, true);
    check(big >= 100.0 - 100.0 * std::exp(-0.02) && big <= 100.0,
          fmt("Merton lam t = 300, mu_j = 1 inside the bounds: %.17g", big));
}

void test_crr_scalar_one_step() {
    // One step by hand: u = e^{vol sqrt(t)}, p = (e^{(r-q)t} - 1/u) / (u - 1/u).
    const double spot = 100.0, strike = 105.0, t = 0.5, r = 0.04, q = 0.01, vol = 0.3;
    const double u = std::exp(vol * std::sqrt(t)), dn = 1.0 / u;
    const double p = (std::exp((r - q) * t) - dn) / (u - dn);
    const double euro = std::exp(-r * t) * (p * std::max(spot * u - strike, 0.0));
    const double put_cont =
        std::exp(-r * t) * ((1.0 - p) * std::max(strike - spot * dn, 0.0));
    const double amer_put = std::max(put_cont, strike - spot);
    const double got_c = v28::binomial::crr_price(spot, strike, t, r, q, vol, true, false, 1);
    const double got_p = v28::binomial::crr_price(spot, strike, t, r, q, vol, false, true, 1);
    check(std::abs(got_c - euro) < 1e-13, fmt("CRR one-step call %.17g vs %.17g", got_c, euro));
    check(std::abs(got_p - amer_put) < 1e-13, fmt("CRR one-step American put %.17g vs %.17g", got_p, amer_put));
    check(throws<std::invalid_argument>(
              [] { v28::binomial::crr_greeks(100.0, 100.0, 1.0, 0.0, 0.0, 0.2, true, true, 1); },
              "steps must be >= 2 for Greeks"),
          "CRR Greeks need two steps");
    // Zero vol: the deterministic forward exercised at the best date (here now: K - S).
    check(v28::binomial::crr_price(100.0, 110.0, 1.0, 0.05, 0.0, 0.0, false, true, 10) == 10.0,
          "CRR American put at zero vol is K - S");
}

void test_parallel_for() {
    for (unsigned threads : {1u, 2u, 3u, 8u}) {
        std::vector<double> slot(1000, 0.0);
        v28::parallel::parallel_for(slot.size(), threads, [&](std::size_t i) {
            slot[i] = static_cast<double>(i);
        });
        const double sum = std::accumulate(slot.begin(), slot.end(), 0.0);
        check(sum == 999.0 * 1000.0 / 2.0, fmt("parallel_for covers every task once (%g)", sum));
    }
    // A nested call finds the pool busy and runs on its own thread.
    std::vector<int> inner(16, 0);
    v28::parallel::parallel_for(4, 2, [&](std::size_t i) {
        v28::parallel::parallel_for(4, 2, [&](std::size_t j) { inner[4 * i + j] += 1; });
    });
    check(std::accumulate(inner.begin(), inner.end(), 0) == 16, "nested parallel_for");
    check(throws<std::runtime_error>(
              [] {
                  v28::parallel::parallel_for(100, 2, [](std::size_t i) {
                      if (i == 37) throw std::runtime_error("task 37 failed");
                  });
              },
              "task 37 failed"),
          "a task's exception reaches the caller");
}

void test_heston_bounds() {
    std::vector<double> k{90, 95, 100, 105, 110}, t(5, 1.0), r(5, 0.02), q(5, 0.0), w;
    std::vector<std::uint8_t> c(5, 1);
    std::vector<double> px(5);
    const v28::heston::Params truth{0.04, 1.5, 0.04, 0.5, -0.7};
    v28::heston::price_expiry(100.0, 1.0, 0.02, 0.0, truth, k, c, px);
    v28::heston::Bounds inverted;
    std::swap(inverted.lower.kappa, inverted.upper.kappa);
    check(throws<std::invalid_argument>(
              [&] { v28::heston::calibrate(100.0, k, t, r, q, c, px, w, truth, inverted); },
              "bounds: lower.kappa"),
          "Heston calibration rejects inverted bounds");
    const auto fit = v28::heston::calibrate(100.0, k, t, r, q, c, px, w, truth);
    check(fit.converged, "Heston calibration from the truth converges");
}

void test_step_factor() {
    // Hairer's dopri5.f on a rejected step: h_new / h = max(0.2, 0.9 err^{-0.17}) (expo1 =
    // 0.2 - 0.75 * 0.04); on an accepted one h_new / h lies in [0.2, 10] (fac_min, fac_max).
    double fac_old = 1e-4;
    const double rej = v28::ode::step_factor(2.0, fac_old, false);
    check(std::abs(rej - 0.9 * std::pow(2.0, -0.17)) < 1e-15, fmt("rejected factor %.17g", rej));
    check(v28::ode::step_factor(1e6, fac_old, false) == 0.2, "rejected factor floor 0.2");
    const double acc = v28::ode::step_factor(1e-20, fac_old, true);
    check(acc == 10.0, fmt("accepted factor ceiling %.17g", acc));
}

void test_norm_inv() {
    // Published quantiles (Abramowitz & Stegun 26.2, to 16 digits), then the round trip through
    // the erfc CDF written here: N(x) = p in the lower half, N(-x) = 1 - p in the upper, within
    // N's conditioning, from 1e-300 to 1 - 1e-16; and the edges.
    const double known[][2] = {{0.975, 1.959963984540054},
                               {0.999, 3.090232306167813},
                               {1e-10, -6.361340902404056},
                               {0.5, 0.0}};
    for (const auto& [p, z] : known) {
        const double x = v28::norm_inv(p);
        check(std::abs(x - z) <= 1e-15 * std::max(1.0, std::abs(z)),
              fmt("norm_inv(%.17g) = %.17g, want %.17g", p, x, z));
    }
    for (double e = -300.0; e < 0.0; e += 0.37) {
        for (double p : {std::pow(10.0, e), 1.0 - std::pow(10.0, std::max(e, -16.0))}) {
            const double x = v28::norm_inv(p);
            const double back = p > 0.5 ? ncdf(-x) : ncdf(x);
            const double want = p > 0.5 ? 1.0 - p : p;
            // N's relative condition number at x is about 1 + x^2: an x good to a few ulps
            // gives N(x) good to a few ulps times that.
            const double tol = 8.0 * std::numeric_limits<double>::epsilon() * (1.0 + x * x);
            check(std::abs(back - want) <= tol * want,
                  fmt("N(norm_inv(%.17g)) = %.17g", p, back));
        }
    }
    check(v28::norm_inv(0.0) == -std::numeric_limits<double>::infinity(), "norm_inv(0) = -inf");
    check(v28::norm_inv(1.0) == std::numeric_limits<double>::infinity(), "norm_inv(1) = +inf");
    check(std::isnan(v28::norm_inv(-0.1)) && std::isnan(v28::norm_inv(1.5)),
          "norm_inv outside [0, 1] is NaN");
}

}  // namespace

int main() {
    test_norm_inv();
    test_step_factor();
    test_normalised_black();
    test_checked_implied_vols();
    test_merton_scalar();
    test_crr_scalar_one_step();
    test_parallel_for();
    test_heston_bounds();
    std::printf("%d failure(s)\n", failures);
    return failures == 0 ? 0 : 1;
}
