// Cox-Ross-Rubinstein binomial tree: prices and tree Greeks.
#include "common.hpp"
#include "v28/binomial.hpp"

namespace v28py {

using namespace pybind11::literals;

void bind_binomial(py::module_& m) {
    m.def(
        "crr_price",
        [](const darray& spot, const darray& strike, const darray& t, const darray& rate,
           const darray& div, const darray& vol, const barray& call, const barray& american,
           long long steps) {
            const auto n = same_size({&spot, &strike, &t, &rate, &div, &vol, &call, &american},
                                     "spot, strike, t, rate, div, vol, call, american");
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);  // pointers taken while the GIL is held
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::binomial::crr_price(span(spot), span(strike), span(t), span(rate),
                                         span(div), span(vol), span(call), span(american), steps,
                                         o);
            }
            return out;
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "vol"_a, "call"_a, "american"_a,
        "steps"_a,
        "CRR binomial price per unit of underlying (textbook tree, p = (e^{(rate-div)dt} - d) / "
        "(u - d)). Flat float64 arrays of one length; call/american are 1 or 0; steps >= 1.");

    m.def(
        "crr_greeks",
        [](const darray& spot, const darray& strike, const darray& t, const darray& rate,
           const darray& div, const darray& vol, const barray& call, const barray& american,
           long long steps) {
            const auto n = same_size({&spot, &strike, &t, &rate, &div, &vol, &call, &american},
                                     "spot, strike, t, rate, div, vol, call, american");
            const auto len = static_cast<py::ssize_t>(n);
            darray price(len), delta(len), gamma(len), theta(len);
            auto p = mut_span(price);
            auto d = mut_span(delta);
            auto g = mut_span(gamma);
            auto th = mut_span(theta);
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::binomial::crr_greeks(span(spot), span(strike), span(t), span(rate),
                                          span(div), span(vol), span(call), span(american), steps,
                                          p, d, g, th);
            }
            return py::make_tuple(price, delta, gamma, theta);
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "vol"_a, "call"_a, "american"_a,
        "steps"_a,
        "CRR price and tree Greeks (price, delta, gamma, theta per year) as a tuple of arrays; "
        "steps >= 2.");
}

}  // namespace v28py
