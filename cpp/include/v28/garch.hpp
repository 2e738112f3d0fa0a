// GARCH(1,1) with a constant mean, fitted by (quasi-)maximum likelihood.
//
//   r_t = mu + e_t,   e_t = sqrt(h_t) z_t,   h_t = omega + alpha e_{t-1}^2 + beta h_{t-1}
//
// Bollerslev (1986), "Generalized autoregressive conditional heteroskedasticity", J. Econometrics
// 31(3). z_t is N(0, 1) or a Student t with nu > 2 degrees of freedom scaled to unit variance
// (Bollerslev 1987, REStat 69(3)). Constraints omega > 0, alpha, beta >= 0, alpha + beta < 1 are
// kept by the reparametrisation omega = exp(w), (alpha, beta, 1 - alpha - beta) = softmax(a, b, 0)
// (alpha + beta capped at 1 - 1e-8),
// nu = 2 + exp(v); the log-likelihood is maximised by the trust-region Newton method of
// optimize.hpp with its exact gradient and Hessian (analytic recursions for dh_t/dtheta and
// d2h_t/dtheta dtheta', Fiorentini, Calzolari & Panattoni 1996, J. Applied Econometrics 11(4)).
//
// Presample: the first variance is h_1 = omega + (alpha + beta) h_0 (the presample squared
// residual and variance both equal h_0), where h_0 is
//   mean_square: (1/T) sum_t (r_t - mu)^2 at the current mu (the FCP benchmark convention;
//                TSP's HINIT=SSR/T, "ML-2" in Bollerslev & Ghysels 1996 table 2);
//   ewma:        arch's backcast, sum_{i<tau} w_i (r_i - mean r)^2 with w_i proportional to
//                0.94^i, tau = min(75, T), fixed during the fit (arch 7/8, volatility.py);
//   fixed:       a value given by the caller (units of returns squared).
//
// Units: returns in any unit (fractions or percent); mu in return units, omega and variances in
// return units squared. Internally the series is standardised (centred on its mean and divided by
// its standard deviation) so the optimiser sees O(1) numbers whatever the unit; parameters,
// log-likelihood and covariance are mapped back exactly.
//
// Robust covariance: Bollerslev & Wooldridge (1992), Econometric Reviews 11(2):
// H^{-1} (sum_t s_t s_t') H^{-1} with H the analytic Hessian and s_t the per-observation scores.
#pragma once

#include <Eigen/Dense>

#include <cstddef>
#include <span>

namespace v28::garch {

enum class Dist : int { normal = 0, student_t = 1 };
enum class Presample : int { mean_square = 0, ewma = 1, fixed = 2 };

// The fewest observations fit() accepts.
inline constexpr std::size_t min_observations = 100;

struct Params {
    double mu = 0.0;
    double omega = 0.0;
    double alpha = 0.0;
    double beta = 0.0;
    double nu = 0.0;  // degrees of freedom (student_t only)
};

struct FitOptions {
    Dist dist = Dist::normal;
    Presample presample = Presample::mean_square;
    double presample_value = 0.0;  // h_0 for Presample::fixed, return units squared
    int max_iter = 200;
    double grad_tol = 1e-9;  // on the gradient of -loglik / T in the optimiser's coordinates
};

struct FitResult {
    Params params;
    int n_params = 4;           // 4 (mu, omega, alpha, beta) or 5 (+ nu)
    double loglik = 0.0;        // full log-likelihood including constants
    bool converged = false;
    int iterations = 0;
    int evaluations = 0;        // likelihood passes over the data (starting grid included)
    double presample_variance = 0.0;  // h_0 used at the fitted parameters
    // Robust (Bollerslev-Wooldridge) covariance of (mu, omega, alpha, beta[, nu]); NaN where the
    // Hessian is singular (a parameter on its boundary).
    Eigen::Matrix<double, 5, 5> cov_robust = Eigen::Matrix<double, 5, 5>::Zero();
    // Gradient of loglik with respect to (mu, omega, alpha, beta[, nu]) at the optimum.
    Eigen::Matrix<double, 5, 1> grad = Eigen::Matrix<double, 5, 1>::Zero();
};

// Fits the model. `variance_out` (empty, or of size T + 1) receives h_1..h_T and the one-step
// forecast h_{T+1}. Throws std::invalid_argument for fewer than min_observations returns, a
// non-finite value (naming its index), a constant series or a bad presample value.
FitResult fit(std::span<const double> returns, const FitOptions& options,
              std::span<double> variance_out = {});

// Log-likelihood of `returns` at `params` (h_0 by `presample` as in fit()). Writes h_1..h_{T+1}
// into `variance_out` when it is not empty (size T + 1).
double loglik(std::span<const double> returns, const Params& params, Dist dist,
              Presample presample, double presample_value, std::span<double> variance_out = {});

// Closed-form multi-step forecast E_T[h_{T+k}] for k = 1..out.size(), from the one-step value
// h_next = h_{T+1}: sigma2 + (alpha + beta)^(k-1) (h_next - sigma2), sigma2 = omega/(1-alpha-beta).
void forecast(double omega, double alpha, double beta, double h_next, std::span<double> out);

}  // namespace v28::garch
