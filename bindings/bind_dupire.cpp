// Dupire local volatility: from an SVI surface, from a call-price grid, and local-vol MC.
#include "common.hpp"
#include "v28/dupire.hpp"

namespace v28py {

using namespace pybind11::literals;

void bind_dupire(py::module_& m) {
    m.def(
        "dupire_local_vol_svi",
        [](const darray& expiries, const darray& params, const darray& forwards, double spot,
           const darray& t, const darray& strike) {
            const auto n = same_size({&t, &strike}, "t, strike");
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);  // pointers taken while the GIL is held
            const auto args = surface_args(expiries, params, forwards, spot);
            const auto ts = span(t), ks = span(strike);
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::dupire::local_vol(args.make(), ts, ks, o);
            }
            return out;
        },
        "expiries"_a, "params"_a, "forwards"_a, "spot"_a, "t"_a, "strike"_a,
        "Local vol sigma_loc(t, K) of an SVI surface by Gatheral's formula (Volatility Surface "
        "eq. 1.10); NaN where the surface has arbitrage.");

    m.def(
        "dupire_local_vol_prices",
        [](const darray& t, const darray& strike, const darray& calls, double rate, double div) {
            darray out(calls.size());
            auto o = mut_span(out);
            const auto ts = span(t), ks = span(strike), cs = span(calls);
            {
                py::gil_scoped_release release;
                v28::dupire::local_vol_from_prices(ts, ks, cs, rate, div, o);
            }
            return out;
        },
        "t"_a, "strike"_a, "calls"_a, "rate"_a, "div"_a,
        "Dupire local vol from discounted call prices on a (t, strike) grid (flat row-major) by "
        "finite differences; constant rate and dividend yield.");

    m.def(
        "dupire_mc_price",
        [](const darray& expiries, const darray& params, const darray& forwards, double spot,
           const darray& t, const darray& strike, const barray& call, std::size_t paths,
           int steps_per_year, std::uint64_t seed, int threads) {
            const auto n = same_size({&t, &strike, &call}, "t, strike, call");
            darray price(static_cast<py::ssize_t>(n)), err(static_cast<py::ssize_t>(n));
            auto p = mut_span(price), e = mut_span(err);
            const auto args = surface_args(expiries, params, forwards, spot);
            const auto ts = span(t), ks = span(strike);
            const auto cs = span(call);
            {
                py::gil_scoped_release release;
                v28::dupire::McSettings cfg{paths, steps_per_year, seed, threads};
                v28::dupire::local_vol_mc(args.make(), ts, ks, cs, cfg, p, e);
            }
            return py::make_tuple(price, err);
        },
        "expiries"_a, "params"_a, "forwards"_a, "spot"_a, "t"_a, "strike"_a, "call"_a,
        "paths"_a, "steps_per_year"_a, "seed"_a, "threads"_a,
        "Undiscounted vanilla prices and standard errors by local-vol Monte Carlo (Euler in "
        "ln(S/F), antithetic, Philox streams per path pair: thread-count independent).");
}

}  // namespace v28py
