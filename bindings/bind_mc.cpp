// Monte Carlo pricers: GBM European and arithmetic Asian, Heston QE and Merton checks.
#include "common.hpp"
#include "v28/mc.hpp"

namespace v28py {

using namespace pybind11::literals;

namespace {

py::tuple to_tuple(const v28::mc::Result& r) {
    return py::make_tuple(r.price, r.std_error, r.plain_std_error, r.variance_reduction, r.paths);
}

v28::mc::Options options(std::uint64_t paths, std::uint64_t seed, bool antithetic, bool cv,
                         unsigned threads) {
    return {paths, seed, antithetic, cv, threads};
}

}  // namespace

void bind_mc(py::module_& m) {
    constexpr const char* result_doc =
        " Returns (price, stderr, plain_stderr, variance_reduction, paths); threads 0 = all cores."
        " Deterministic for a seed whatever the thread count.";
    m.def(
        "mc_european",
        [](double spot, double strike, double t, double rate, double div, double vol, bool call,
           std::uint64_t paths, std::uint64_t seed, bool antithetic, bool cv, unsigned threads) {
            v28::mc::Result r;
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                r = v28::mc::european({spot, strike, t, rate, div, vol, call},
                                      options(paths, seed, antithetic, cv, threads));
            }
            return to_tuple(r);
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "vol"_a, "call"_a, "paths"_a, "seed"_a,
        "antithetic"_a, "control_variate"_a, "threads"_a,
        (std::string("European option under GBM by Monte Carlo.") + result_doc).c_str());

    m.def(
        "mc_asian",
        [](double spot, double strike, double t, double rate, double div, double vol, bool call,
           int steps, std::uint64_t paths, std::uint64_t seed, bool antithetic, bool cv,
           unsigned threads) {
            v28::mc::Result r;
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                r = v28::mc::asian({spot, strike, t, rate, div, vol, call}, steps,
                                   options(paths, seed, antithetic, cv, threads));
            }
            return to_tuple(r);
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "vol"_a, "call"_a, "steps"_a, "paths"_a,
        "seed"_a, "antithetic"_a, "control_variate"_a, "threads"_a,
        (std::string("Arithmetic-average Asian option under GBM by Monte Carlo.") + result_doc)
            .c_str());

    m.def(
        "mc_geometric_asian",
        [](double spot, double strike, double t, double rate, double div, double vol, bool call,
           int steps) {
            return v28::mc::geometric_asian({spot, strike, t, rate, div, vol, call}, steps);
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "vol"_a, "call"_a, "steps"_a,
        "Closed-form discretely monitored geometric-average Asian price (Kemna-Vorst).");

    m.def(
        "mc_heston_european",
        [](double spot, double strike, double t, double rate, double div, double v0,
           double kappa, double theta, double sigma, double rho, bool call, int steps,
           std::uint64_t paths, std::uint64_t seed, bool cv, unsigned threads) {
            v28::mc::Result r;
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                r = v28::mc::heston_european({spot, strike, t, rate, div, call},
                                             {v0, kappa, theta, sigma, rho}, steps,
                                             options(paths, seed, false, cv, threads));
            }
            return to_tuple(r);
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "v0"_a, "kappa"_a, "theta"_a, "sigma"_a,
        "rho"_a, "call"_a, "steps"_a, "paths"_a, "seed"_a, "control_variate"_a, "threads"_a,
        (std::string("Heston European option by Andersen's QE scheme.") + result_doc).c_str());

    m.def(
        "mc_merton_european",
        [](double spot, double strike, double t, double rate, double div, double vol, double lam,
           double mu_j, double delta_j, bool call, std::uint64_t paths, std::uint64_t seed,
           bool antithetic, bool cv, unsigned threads) {
            v28::mc::Result r;
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                r = v28::mc::merton_european({spot, strike, t, rate, div, call},
                                             {vol, lam, mu_j, delta_j},
                                             options(paths, seed, antithetic, cv, threads));
            }
            return to_tuple(r);
        },
        "spot"_a, "strike"_a, "t"_a, "rate"_a, "div"_a, "vol"_a, "lam"_a, "mu_j"_a, "delta_j"_a,
        "call"_a, "paths"_a, "seed"_a, "antithetic"_a, "control_variate"_a, "threads"_a,
        (std::string("Merton jump-diffusion European option, exact terminal simulation.") +
         result_doc)
            .c_str());
}

}  // namespace v28py
