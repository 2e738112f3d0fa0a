// GARCH(1,1) maximum-likelihood fit, log-likelihood and closed-form variance forecast.
#include "common.hpp"
#include "v28/garch.hpp"

namespace v28py {

using namespace pybind11::literals;

namespace {

v28::garch::Presample to_presample(int code) {
    if (code < 0 || code > 2) {
        throw std::invalid_argument(
            "presample must be 0 (mean_square), 1 (ewma) or 2 (fixed), got " +
            std::to_string(code));
    }
    return static_cast<v28::garch::Presample>(code);
}

}  // namespace

void bind_garch(py::module_& m) {
    m.def(
        "garch_fit",
        [](const darray& returns, bool student_t, int presample, double presample_value,
           int max_iter, double grad_tol) {
            v28::garch::FitOptions opt;
            opt.dist = student_t ? v28::garch::Dist::student_t : v28::garch::Dist::normal;
            opt.presample = to_presample(presample);
            opt.presample_value = presample_value;
            opt.max_iter = max_iter;
            opt.grad_tol = grad_tol;
            darray variance(returns.size() + 1);
            auto r = span(returns);  // pointers taken while the GIL is held
            auto v = mut_span(variance);
            v28::garch::FitResult res;
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                res = v28::garch::fit(r, opt, v);
            }
            const auto k = static_cast<py::ssize_t>(res.n_params);
            darray params(k), grad(k);
            darray cov({k, k});
            const double p[5] = {res.params.mu, res.params.omega, res.params.alpha,
                                 res.params.beta, res.params.nu};
            auto* cp = cov.mutable_data();
            for (py::ssize_t i = 0; i < k; ++i) {
                params.mutable_data()[i] = p[i];
                grad.mutable_data()[i] = res.grad[i];
                for (py::ssize_t j = 0; j < k; ++j) cp[i * k + j] = res.cov_robust(i, j);
            }
            return py::dict("params"_a = params, "loglik"_a = res.loglik,
                            "converged"_a = res.converged, "iterations"_a = res.iterations,
                            "evaluations"_a = res.evaluations,
                            "presample_variance"_a = res.presample_variance, "cov_robust"_a = cov,
                            "grad"_a = grad, "variance"_a = variance);
        },
        "returns"_a, "student_t"_a, "presample"_a, "presample_value"_a, "max_iter"_a,
        "grad_tol"_a,
        "GARCH(1,1) MLE with constant mean. presample: 0 mean square at the current mean (FCP), "
        "1 arch's EWMA backcast, 2 fixed presample_value (returns units squared). Returns a dict: "
        "params (mu, omega, alpha, beta[, nu]), loglik, converged, iterations, evaluations, "
        "presample_variance, cov_robust (Bollerslev-Wooldridge), grad, variance (h_1..h_{T+1}).");

    m.def(
        "garch_loglik",
        [](const darray& returns, double mu, double omega, double alpha, double beta, double nu,
           bool student_t, int presample, double presample_value) {
            darray variance(returns.size() + 1);
            auto r = span(returns);
            auto v = mut_span(variance);
            const v28::garch::Params p{mu, omega, alpha, beta, nu};
            const auto dist = student_t ? v28::garch::Dist::student_t : v28::garch::Dist::normal;
            const auto ps = to_presample(presample);
            double ll = 0.0;
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                ll = v28::garch::loglik(r, p, dist, ps, presample_value, v);
            }
            return py::make_tuple(ll, variance);
        },
        "returns"_a, "mu"_a, "omega"_a, "alpha"_a, "beta"_a, "nu"_a, "student_t"_a, "presample"_a,
        "presample_value"_a,
        "GARCH(1,1) log-likelihood at given parameters and the variances h_1..h_{T+1}.");

    m.def(
        "garch_forecast",
        [](double omega, double alpha, double beta, double h_next, py::ssize_t horizon) {
            if (horizon < 1) {
                throw std::invalid_argument("horizon must be >= 1, got " + std::to_string(horizon));
            }
            darray out(horizon);
            auto o = mut_span(out);
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::garch::forecast(omega, alpha, beta, h_next, o);
            }
            return out;
        },
        "omega"_a, "alpha"_a, "beta"_a, "h_next"_a, "horizon"_a,
        "Closed-form E_T[h_{T+k}], k = 1..horizon, from the one-step variance h_next.");
}

}  // namespace v28py
