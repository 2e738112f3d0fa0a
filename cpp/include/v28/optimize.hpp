// Unconstrained minimisation with exact second derivatives: a trust-region Newton method in
// Levenberg-Marquardt form.
//
// Each step solves (H + lambda I) p = -g. The multiplier lambda >= 0 is the trust-region
// multiplier in Levenberg-Marquardt form (Nocedal & Wright, "Numerical Optimization" (2006),
// section 4.3; J. J. More (1978), "The Levenberg-Marquardt algorithm: implementation and
// theory"), adapted from the ratio rho of actual to predicted decrease by Nielsen's rule
// (H. B. Nielsen 1999, IMM-REP-1999-05); where H is indefinite lambda is shifted past its most
// negative eigenvalue. Near a strict minimum lambda -> 0 and the steps are Newton steps, so
// convergence is quadratic.
//
// Constraints are handled by the caller through a smooth reparametrisation (see garch.hpp).
#pragma once

#include <Eigen/Dense>

#include <functional>

namespace v28::optimize {

// Evaluates f(x) and writes its gradient and Hessian. Returns +inf or NaN where f is undefined
// (the step is then rejected and the trust region shrunk).
using Objective =
    std::function<double(const Eigen::VectorXd& x, Eigen::VectorXd& grad, Eigen::MatrixXd& hess)>;

struct Options {
    int max_iter = 200;       // Newton steps tried (accepted or rejected)
    double grad_tol = 1e-9;   // converged when max |grad_i| <= grad_tol
    double step_tol = 1e-15;  // or when the predicted decrease <= step_tol * (1 + |f|)
};

struct Result {
    Eigen::VectorXd x;
    double f = 0.0;
    Eigen::VectorXd grad;
    Eigen::MatrixXd hess;
    int iterations = 0;   // steps tried
    int evaluations = 0;  // calls of the objective
    bool converged = false;
};

// Minimises `objective` from x0. x0 must give a finite f (std::invalid_argument otherwise).
Result newton_trust_region(const Objective& objective, const Eigen::VectorXd& x0,
                           const Options& options = {});

}  // namespace v28::optimize
