#include "v28/bsm.hpp"

#include <cmath>
#include <string>

#include "bsm_kernels.hpp"
#include "v28/check.hpp"

namespace v28::bsm {

void check_inputs(double spot, double strike, double t, double rate, double div, double vol,
                  std::size_t index) {
    require_positive("spot", spot, index);
    require_positive("strike", strike, index);
    require_nonnegative("t", t, index);
    require_finite("rate", rate, index);
    require_finite("div", div, index);
    require_nonnegative("vol", vol, index);
    // sd^2 / 2 must stay finite for d1 and d2 to mean anything (vol 1e300 over t 1e300 gave 0).
    if (!(vol * std::sqrt(t) <= 1e150)) {
        std::string msg = "vol * sqrt(t) must be <= 1e150 (vol " + std::to_string(vol) + ", t " +
                          std::to_string(t) + ")";
        if (index != no_index) msg += " at index " + std::to_string(index);
        throw std::domain_error(msg);
    }
    // e^{-div t} or e^{-rate t} beyond double range (a negative rate or yield of 1e300): the
    // prices would be inf or NaN without a word.
    if (!(std::isfinite(spot * std::exp(-div * t)) && std::isfinite(strike * std::exp(-rate * t)))) {
        std::string msg = "spot * exp(-div * t) or strike * exp(-rate * t) overflows (rate " +
                          std::to_string(rate) + ", div " + std::to_string(div) + ", t " +
                          std::to_string(t) + ")";
        if (index != no_index) msg += " at index " + std::to_string(index);
        throw std::domain_error(msg);
    }
}

double price(double spot, double strike, double t, double rate, double div, double vol,
             bool call) {
    const std::uint8_t c = call ? 1 : 0;
    double p = 0.0;
    detail::run({&spot, &strike, &t, &rate, &div, &vol, &c, 1}, {&p});
    return p;
}

double price_greeks(double spot, double strike, double t, double rate, double div, double vol,
                    bool call, Greeks& g) {
    const std::uint8_t c = call ? 1 : 0;
    double p = 0.0;
    detail::run({&spot, &strike, &t, &rate, &div, &vol, &c, 1},
                {&p, &g.delta, &g.gamma, &g.vega, &g.theta, &g.rho});
    return p;
}

namespace {

void check_sizes(std::span<const double> spot, std::span<const double> strike,
               std::span<const double> t, std::span<const double> rate,
               std::span<const double> div, std::span<const double> vol,
               std::span<const std::uint8_t> call, std::size_t n_out) {
    const std::size_t n = spot.size();
    require_same_size("spot, strike", n, strike.size());
    require_same_size("spot, t", n, t.size());
    require_same_size("spot, rate", n, rate.size());
    require_same_size("spot, div", n, div.size());
    require_same_size("spot, vol", n, vol.size());
    require_same_size("spot, call", n, call.size());
    require_same_size("spot, out", n, n_out);
}

// The SIMD kernels validate as they go; on a bad element, find and report the first one. The
// kernels do not see an overflowing S e^{-div t} or K e^{-rate t} (the price may even come out
// finite): one cheap pass flags elements with -div t or -rate t above 600 or a non-finite
// price, and check_inputs then names the argument if one overflows.
void run_checked(const detail::Inputs& in, const detail::Outputs& out) {
    bool ok = detail::run(in, out);
    for (std::size_t i = 0; ok && i < in.n; ++i) {
        ok = std::isfinite(out.price[i]) && -in.div[i] * in.t[i] <= 600.0 &&
             -in.rate[i] * in.t[i] <= 600.0 && in.vol[i] * std::sqrt(in.t[i]) <= 1e150;
    }
    if (ok) return;
    for (std::size_t i = 0; i < in.n; ++i) {
        check_inputs(in.spot[i], in.strike[i], in.t[i], in.rate[i], in.div[i], in.vol[i], i);
    }
}

}  // namespace

void price(std::span<const double> spot, std::span<const double> strike,
           std::span<const double> t, std::span<const double> rate, std::span<const double> div,
           std::span<const double> vol, std::span<const std::uint8_t> call, std::span<double> out) {
    check_sizes(spot, strike, t, rate, div, vol, call, out.size());
    run_checked({spot.data(), strike.data(), t.data(), rate.data(), div.data(), vol.data(),
                 call.data(), spot.size()},
                {out.data()});
}

void greeks(std::span<const double> spot, std::span<const double> strike,
            std::span<const double> t, std::span<const double> rate, std::span<const double> div,
            std::span<const double> vol, std::span<const std::uint8_t> call,
            std::span<double> price_out, std::span<double> delta, std::span<double> gamma,
            std::span<double> vega, std::span<double> theta, std::span<double> rho) {
    check_sizes(spot, strike, t, rate, div, vol, call, price_out.size());
    const std::size_t n = spot.size();
    require_same_size("price, delta", n, delta.size());
    require_same_size("price, gamma", n, gamma.size());
    require_same_size("price, vega", n, vega.size());
    require_same_size("price, theta", n, theta.size());
    require_same_size("price, rho", n, rho.size());
    run_checked({spot.data(), strike.data(), t.data(), rate.data(), div.data(), vol.data(),
                 call.data(), n},
                {price_out.data(), delta.data(), gamma.data(), vega.data(), theta.data(),
                 rho.data()});
}

}  // namespace v28::bsm
