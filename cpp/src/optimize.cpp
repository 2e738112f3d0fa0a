#include "v28/optimize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace v28::optimize {

namespace {

// The step -(H + lambda I)^{-1} g. When H + lambda I is not positive definite, lambda is raised
// past the most negative eigenvalue of H by 1e-3 of H's scale (then doubled if rounding still
// defeats the Cholesky factorisation).
Eigen::VectorXd damped_newton_step(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                                   double scale, double& lambda) {
    Eigen::LLT<Eigen::MatrixXd> llt;
    Eigen::MatrixXd m = hess;
    m.diagonal().array() += lambda;
    llt.compute(m);
    if (llt.info() != Eigen::Success) {
        const double min_eig = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(
                                   hess, Eigen::EigenvaluesOnly)
                                   .eigenvalues()
                                   .minCoeff();
        lambda = std::max(lambda, -min_eig + 1e-3 * scale);
        for (int tries = 0; tries < 60; ++tries, lambda *= 2.0) {
            m = hess;
            m.diagonal().array() += lambda;
            llt.compute(m);
            if (llt.info() == Eigen::Success) break;
        }
    }
    Eigen::VectorXd p = -llt.solve(grad);
    return p.allFinite() ? p : Eigen::VectorXd::Zero(grad.size());
}

}  // namespace

Result newton_trust_region(const Objective& objective, const Eigen::VectorXd& x0,
                           const Options& options) {
    const auto k = x0.size();
    Result res;
    res.x = x0;
    res.grad.resize(k);
    res.hess.resize(k, k);
    res.f = objective(res.x, res.grad, res.hess);
    res.evaluations = 1;
    if (!std::isfinite(res.f)) {
        throw std::invalid_argument("newton_trust_region: objective is not finite at x0");
    }

    Eigen::VectorXd g_trial(k);
    Eigen::MatrixXd h_trial(k, k);
    // Levenberg-Marquardt multiplier and its growth factor on rejection (Nielsen's update:
    // H. B. Nielsen 1999, "Damping parameter in Marquardt's method", IMM-REP-1999-05).
    double lambda = 0.0;
    double growth = 2.0;
    bool undamped_retry = false;
    while (res.iterations < options.max_iter) {
        if (res.grad.cwiseAbs().maxCoeff() <= options.grad_tol) {
            res.converged = true;
            break;
        }
        const double scale = std::max(res.hess.diagonal().cwiseAbs().maxCoeff(), 1e-300);
        const Eigen::VectorXd p = damped_newton_step(res.hess, res.grad, scale, lambda);
        // Decrease predicted by the quadratic model (positive for a descent step).
        const double predicted = -(res.grad.dot(p) + 0.5 * p.dot(res.hess * p));
        if (!(predicted > options.step_tol * (1.0 + std::abs(res.f)))) {
            // A damped step may predict little only because it is damped: retry undamped once.
            if (lambda > 0.0 && !undamped_retry) {
                lambda = 0.0;
                undamped_retry = true;
                continue;
            }
            // The model sees no further decrease: stationary to working precision.
            res.converged =
                lambda == 0.0 || res.grad.cwiseAbs().maxCoeff() <= 1e3 * options.grad_tol;
            break;
        }
        undamped_retry = false;
        ++res.iterations;
        const Eigen::VectorXd x_trial = res.x + p;
        const double f_trial = objective(x_trial, g_trial, h_trial);
        ++res.evaluations;
        const double rho = std::isfinite(f_trial) ? (res.f - f_trial) / predicted
                                                  : -std::numeric_limits<double>::infinity();
        if (rho > 1e-4) {
            res.x = x_trial;
            res.f = f_trial;
            res.grad.swap(g_trial);
            res.hess.swap(h_trial);
            const double c = 2.0 * rho - 1.0;
            lambda *= std::max(1.0 / 3.0, 1.0 - c * c * c);
            if (lambda < 1e-12 * scale) lambda = 0.0;  // pure Newton steps near the minimum
            growth = 2.0;
        } else {
            lambda = std::max(lambda * growth, 1e-3 * scale);
            growth *= 2.0;
        }
    }
    return res;
}

}  // namespace v28::optimize
