#include "v28/optimize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace v28::optimize {

namespace {

// Smallest lambda in {lambda0, 2 lambda0, 4 lambda0, ...} (or 0 when lambda0 == 0 works) for
// which H + lambda I is positive definite; returns the step -(H + lambda I)^{-1} g.
Eigen::VectorXd damped_newton_step(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                                   double& lambda) {
    const auto k = hess.rows();
    const double scale = std::max(hess.diagonal().cwiseAbs().maxCoeff(), 1e-300);
    const double lambda_min = 1e-10 * scale;  // first non-zero damping tried
    Eigen::LLT<Eigen::MatrixXd> llt;
    for (int tries = 0; tries < 200; ++tries) {
        Eigen::MatrixXd m = hess;
        m.diagonal().array() += lambda;
        llt.compute(m);
        if (llt.info() == Eigen::Success) {
            Eigen::VectorXd p = -llt.solve(grad);
            if (p.allFinite()) return p;
        }
        lambda = lambda > 0.0 ? 2.0 * lambda : lambda_min;
    }
    return Eigen::VectorXd::Zero(k);
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
    double lambda = 0.0;
    while (res.iterations < options.max_iter) {
        if (res.grad.cwiseAbs().maxCoeff() <= options.grad_tol) {
            res.converged = true;
            break;
        }
        const Eigen::VectorXd p = damped_newton_step(res.hess, res.grad, lambda);
        // Decrease predicted by the quadratic model (positive for a descent step).
        const double predicted = -(res.grad.dot(p) + 0.5 * p.dot(res.hess * p));
        if (!(predicted > options.step_tol * (1.0 + std::abs(res.f)))) {
            // The model sees no further decrease: stationary to working precision.
            res.converged = lambda == 0.0 || res.grad.cwiseAbs().maxCoeff() <= 1e3 * options.grad_tol;
            break;
        }
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
        }
        if (rho > 0.75) {
            lambda = lambda * 0.125 < 1e-12 * res.hess.diagonal().cwiseAbs().maxCoeff()
                         ? 0.0
                         : lambda * 0.125;
        } else if (rho < 0.25) {
            const double scale = std::max(res.hess.diagonal().cwiseAbs().maxCoeff(), 1e-300);
            lambda = std::max(4.0 * lambda, 1e-3 * scale);
        }
    }
    return res;
}

}  // namespace v28::optimize
