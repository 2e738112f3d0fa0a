// Black-Scholes-Merton prices and Greeks; Black and BSM implied volatility.
#include "common.hpp"
#include "v28/bsm.hpp"
#include "v28/iv.hpp"

namespace v28py {

using namespace pybind11::literals;

void bind_bsm(py::module_& m) {
    m.def(
        "bsm_price",
        [](const darray& spot, const darray& strike, const darray& t, const darray& rate,
           const darray& div, const darray& vol, const barray& call) {
            const auto n = same_size({&spot, &strike, &t, &rate, &div, &vol, &call},
                                     "spot, strike, t, rate, div, vol, call");
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);  // pointers taken while the GIL is held
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::bsm::price(span(spot), span(strike), span(t), span(rate), span(div),
                                span(vol), span(call), o);
            }
            return out;
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "vol"_a, "call"_a,
        "Black-Scholes-Merton price per unit of underlying. Flat float64 arrays of one length; "
        "t in years, rate/div continuously compounded, vol annualised; call is 1 (call) or 0 (put).");

    m.def(
        "bsm_greeks",
        [](const darray& spot, const darray& strike, const darray& t, const darray& rate,
           const darray& div, const darray& vol, const barray& call) {
            const auto n = same_size({&spot, &strike, &t, &rate, &div, &vol, &call},
                                     "spot, strike, t, rate, div, vol, call");
            const auto len = static_cast<py::ssize_t>(n);
            darray price(len), delta(len), gamma(len), vega(len), theta(len), rho(len);
            auto p = mut_span(price);
            auto d = mut_span(delta);
            auto g = mut_span(gamma);
            auto v = mut_span(vega);
            auto th = mut_span(theta);
            auto r = mut_span(rho);
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::bsm::greeks(span(spot), span(strike), span(t), span(rate), span(div),
                                 span(vol), span(call), p, d, g, v, th, r);
            }
            return py::make_tuple(price, delta, gamma, vega, theta, rho);
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "vol"_a, "call"_a,
        "Black-Scholes-Merton price and Greeks (price, delta, gamma, vega per 1.00 vol, theta "
        "per year, rho per 1.00 rate) as a tuple of arrays.");

    m.def(
        "bsm_implied_vol",
        [](const darray& price, const darray& spot, const darray& strike, const darray& t,
           const darray& rate, const darray& div, const barray& call, bool strict) {
            const auto n = same_size({&price, &spot, &strike, &t, &rate, &div, &call},
                                     "price, spot, strike, t, rate, div, call");
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);  // pointers taken while the GIL is held
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::bsm::implied_vol(span(price), span(spot), span(strike), span(t), span(rate),
                                      span(div), span(call), o, strict);
            }
            return out;
        },
        "price"_a, "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "call"_a, "strict"_a = false,
        "BSM implied volatility (Jaeckel's 'Let's Be Rational'). Flat float64 arrays of one "
        "length; price discounted per unit of underlying, t in years (> 0). A price outside the "
        "no-arbitrage bounds gives NaN, or ValueError when strict.");

    m.def(
        "black_implied_vol",
        [](const darray& price, const darray& forward, const darray& strike, const darray& t,
           const barray& call, const darray& discount, bool strict) {
            const auto n = same_size({&price, &forward, &strike, &t, &call, &discount},
                                     "price, forward, strike, t, call, discount");
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);  // pointers taken while the GIL is held
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::bsm::black_implied_vol(span(price), span(forward), span(strike), span(t),
                                            span(call), span(discount), o, strict);
            }
            return out;
        },
        "price"_a, "forward"_a, "strike"_a, "t"_a, "call"_a, "discount"_a, "strict"_a = false,
        "Black (1976) implied volatility of a discounted option price on a forward (Jaeckel's "
        "'Let's Be Rational'). NaN outside the no-arbitrage bounds, or ValueError when strict.");
}

}  // namespace v28py
