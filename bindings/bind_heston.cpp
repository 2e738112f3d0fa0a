// Heston characteristic-function prices and calibration.
#include <complex>

#include "common.hpp"
#include "v28/check.hpp"
#include "v28/heston.hpp"

namespace v28py {

using namespace pybind11::literals;

void bind_heston(py::module_& m) {
    m.def(
        "heston_price",
        [](const darray& spot, const darray& strike, const darray& t, const darray& rate,
           const darray& div, const darray& v0, const darray& kappa, const darray& theta,
           const darray& sigma, const darray& rho, const barray& call) {
            const auto n = same_size(
                {&spot, &strike, &t, &rate, &div, &v0, &kappa, &theta, &sigma, &rho, &call},
                "spot, strike, t, rate, div, v0, kappa, theta, sigma, rho, call");
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);  // pointers taken while the GIL is held
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::heston::price(span(spot), span(strike), span(t), span(rate), span(div),
                                   span(v0), span(kappa), span(theta), span(sigma), span(rho),
                                   span(call), o);
            }
            return out;
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "v0"_a, "kappa"_a, "theta"_a, "sigma"_a,
        "rho"_a, "call"_a,
        "Heston European price per unit of underlying (Lewis integral, little-Heston-trap "
        "characteristic function). v0, theta variances; sigma vol of variance; t in years.");

    m.def(
        "heston_log_cf",
        [](const py::array_t<std::complex<double>, py::array::c_style | py::array::forcecast>& u,
           double t, double v0, double kappa, double theta, double sigma, double rho) {
            v28::heston::check_params({v0, kappa, theta, sigma, rho}, v28::no_index);
            py::array_t<std::complex<double>> out(u.size());
            const auto* in = u.data();
            auto* o = out.mutable_data();
            const auto n = static_cast<std::size_t>(u.size());
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                for (std::size_t i = 0; i < n; ++i) {
                    o[i] = v28::heston::log_cf(in[i], t, {v0, kappa, theta, sigma, rho});
                }
            }
            return out;
        },
        "u"_a, "t"_a, "v0"_a, "kappa"_a, "theta"_a, "sigma"_a, "rho"_a,
        "ln E[exp(i u ln(S_t/F_t))] under Heston for complex u (Albrecher et al. 2007).");

    m.def(
        "heston_calibrate",
        [](double spot, const darray& strike, const darray& t, const darray& rate,
           const darray& div, const barray& call, const darray& market_price,
           const darray& weight, std::array<double, 5> initial, std::array<double, 5> lower,
           std::array<double, 5> upper, int max_iterations) {
            same_size({&strike, &t, &rate, &div, &call, &market_price},
                      "strike, t, rate, div, call, market_price");
            const v28::heston::Params p0{initial[0], initial[1], initial[2], initial[3],
                                         initial[4]};
            const v28::heston::Bounds b{{lower[0], lower[1], lower[2], lower[3], lower[4]},
                                        {upper[0], upper[1], upper[2], upper[3], upper[4]}};
            v28::heston::Calibration c;
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                c = v28::heston::calibrate(spot, span(strike), span(t), span(rate), span(div),
                                           span(call), span(market_price), span(weight), p0, b,
                                           max_iterations);
            }
            py::dict d;
            d["params"] = std::array<double, 5>{c.params.v0, c.params.kappa, c.params.theta,
                                                c.params.sigma, c.params.rho};
            d["model_price"] = darray(static_cast<py::ssize_t>(c.model_price.size()),
                                      c.model_price.data());
            d["weight"] = darray(static_cast<py::ssize_t>(c.weight.size()), c.weight.data());
            d["rmse"] = c.rmse;
            d["iterations"] = c.iterations;
            d["evaluations"] = c.evaluations;
            d["seconds"] = c.seconds;
            d["feller"] = c.feller;
            d["converged"] = c.converged;
            return d;
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "call"_a, "market_price"_a, "weight"_a,
        "initial"_a, "lower"_a, "upper"_a, "max_iterations"_a,
        "Levenberg-Marquardt fit of (v0, kappa, theta, sigma, rho) to prices; empty weight = "
        "1/vega. Returns a dict (params, model_price, weight, rmse, iterations, evaluations, "
        "seconds, feller, converged).");
}

}  // namespace v28py
