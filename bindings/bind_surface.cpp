// SVI implied-volatility surface: evaluation, arbitrage diagnostics, quasi-explicit slice fit
// and Black implied total variance. The surface travels as (expiries, params, forwards, spot).
#include "common.hpp"
#include "v28/surface.hpp"

namespace v28py {

using namespace pybind11::literals;

void bind_surface(py::module_& m) {
    m.def(
        "svi_total_variance",
        [](const darray& expiries, const darray& params, const darray& forwards, double spot,
           const darray& y, const darray& t) {
            const auto n = same_size({&y, &t}, "y, t");
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);  // pointers taken while the GIL is held
            const auto args = surface_args(expiries, params, forwards, spot);
            const auto ys = span(y), ts = span(t);
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::surface::total_variance(args.make(), ys, ts, o);
            }
            return out;
        },
        "expiries"_a, "params"_a, "forwards"_a, "spot"_a, "y"_a, "t"_a,
        "Total implied variance w(y, t) (years * vol^2) of an SVI surface; y = ln(K / F(t)), "
        "t in years; linear in t at fixed y between slices. params flat (n, 5) raw SVI; spot <= 0: none.");

    m.def(
        "svi_implied_vol",
        [](const darray& expiries, const darray& params, const darray& forwards, double spot,
           const darray& strike, const darray& t) {
            const auto n = same_size({&strike, &t}, "strike, t");
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);
            const auto args = surface_args(expiries, params, forwards, spot);
            const auto ks = span(strike), ts = span(t);
            {
                py::gil_scoped_release release;
                v28::surface::implied_vol(args.make(), ks, ts, o);
            }
            return out;
        },
        "expiries"_a, "params"_a, "forwards"_a, "spot"_a, "strike"_a, "t"_a,
        "Annualised implied vol sqrt(w(ln(K / F(t)), t) / t) of an SVI surface; t > 0 in years.");

    m.def(
        "svi_forward",
        [](const darray& expiries, const darray& params, const darray& forwards, double spot,
           const darray& t) {
            darray out(t.size());
            auto o = mut_span(out);
            const auto args = surface_args(expiries, params, forwards, spot);
            const auto ts = span(t);
            {
                py::gil_scoped_release release;
                v28::surface::forward(args.make(), ts, o);
            }
            return out;
        },
        "expiries"_a, "params"_a, "forwards"_a, "spot"_a, "t"_a,
        "Forward F(t) of the surface: ln F piecewise linear in t through the nodes.");

    m.def(
        "svi_slice_derivs",
        [](const darray& params, const darray& y) {
            if (params.size() != 5) throw std::invalid_argument("params must hold 5 raw SVI values");
            const auto len = y.size();
            darray w(len), w1(len), w2(len), g(len);
            auto pw = mut_span(w), p1 = mut_span(w1), p2 = mut_span(w2), pg = mut_span(g);
            const auto py_ = span(y);
            const v28::surface::Svi s{params.at(0), params.at(1), params.at(2), params.at(3),
                                      params.at(4)};
            {
                py::gil_scoped_release release;
                v28::surface::slice_eval(s, py_, pw, p1, p2, pg);
            }
            return py::make_tuple(w, w1, w2, g);
        },
        "params"_a, "y"_a,
        "One raw SVI slice at log-moneyness y: (w, dw/dy, d2w/dy2, g) with g the "
        "Gatheral-Jacquier butterfly density factor (g >= 0: no butterfly arbitrage).");

    m.def(
        "svi_fit_slice",
        [](const darray& y, const darray& w, const darray& weights, int max_iter) {
            v28::surface::SviFit fit;
            const auto ys = span(y), ws = span(w), wts = span(weights);
            {
                py::gil_scoped_release release;
                fit = v28::surface::fit_slice(ys, ws, wts, max_iter);
            }
            const auto& p = fit.params;
            return py::make_tuple(py::make_tuple(p.a, p.b, p.rho, p.m, p.sigma), fit.rmse,
                                  fit.evaluations);
        },
        "y"_a, "w"_a, "weights"_a, "max_iter"_a = 400,
        "Quasi-explicit SVI fit (Zeliade 2009) of total variances w at log-moneyness y with "
        "weights (empty: ones). Returns ((a, b, rho, m, sigma), weighted rmse in w, evaluations).");
}

}  // namespace v28py
