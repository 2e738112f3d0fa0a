// Merton jump-diffusion series prices and moment calibration.
#include "common.hpp"
#include "v28/merton.hpp"

namespace v28py {

using namespace pybind11::literals;

void bind_merton(py::module_& m) {
    m.def(
        "merton_price",
        [](const darray& spot, const darray& strike, const darray& t, const darray& rate,
           const darray& div, const darray& vol, const darray& lam, const darray& mu_j,
           const darray& delta_j, const barray& call) {
            const auto n =
                same_size({&spot, &strike, &t, &rate, &div, &vol, &lam, &mu_j, &delta_j, &call},
                          "spot, strike, t, rate, div, vol, lam, mu_j, delta_j, call");
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);  // pointers taken while the GIL is held
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::merton::price(span(spot), span(strike), span(t), span(rate), span(div),
                                   span(vol), span(lam), span(mu_j), span(delta_j), span(call),
                                   o);
            }
            return out;
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "vol"_a, "lam"_a, "mu_j"_a, "delta_j"_a,
        "call"_a,
        "Merton (1976) jump-diffusion European price by the Poisson-weighted BSM series. lam "
        "jumps per year; mu_j, delta_j mean and s.d. of the log jump.");

    m.def(
        "merton_calibrate_moments",
        [](const darray& returns, double dt) {
            v28::merton::MomentFit f;
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                f = v28::merton::calibrate_moments(span(returns), dt);
            }
            py::dict d;
            d["vol"] = f.params.vol;
            d["lam"] = f.params.lam;
            d["mu_j"] = f.params.mu_j;
            d["delta_j"] = f.params.delta_j;
            d["drift"] = f.drift;
            d["variance"] = f.variance;
            d["skewness"] = f.skewness;
            d["excess_kurtosis"] = f.excess_kurtosis;
            d["mean_abs_deviation"] = f.mean_abs_deviation;
            d["max_residual"] = f.max_residual;
            d["iterations"] = f.iterations;
            return d;
        },
        "returns"_a, "dt"_a,
        "Fit (vol, lam, mu_j, delta_j) to log returns sampled every dt years by matching "
        "variance, skewness, excess kurtosis and mean absolute deviation.");
}

}  // namespace v28py
