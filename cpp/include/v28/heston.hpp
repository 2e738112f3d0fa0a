// Heston (1993) stochastic volatility: European prices by characteristic-function integration
// and Levenberg-Marquardt calibration.
//
// Model: dS/S = (rate - div) dt + sqrt(v) dW1, dv = kappa (theta - v) dt + sigma sqrt(v) dW2,
// d<W1, W2> = rho dt. Units: v0 and theta are variances per year (0.04 = 20 % vol), kappa per
// year, sigma (vol of variance) per sqrt(year), t in years, rate/div continuously compounded.
//
// Characteristic function: the "little Heston trap" form of H. Albrecher, P. Mayer, W. Schoutens,
// J. Tistaert (2007), Wilmott Magazine Jan. 2007, eq. (2): with d = sqrt((rho sigma i u - kappa)^2
// + sigma^2 (i u + u^2)) on the principal branch and g = (kappa - rho sigma i u - d) /
// (kappa - rho sigma i u + d), the complex logarithm never crosses its branch cut. The factor
// (kappa - rho sigma i u - d) / sigma^2 is evaluated as -(i u + u^2) / (kappa - rho sigma i u + d),
// and the logarithm as log1p, so the formula stays accurate as sigma -> 0.
//
// Pricing: A. Lewis (2001), "A simple option formula for general jump-diffusion and other
// exponential Levy processes", eq. (2.10): with F the forward, x = ln(F / K) and psi the
// characteristic function of ln(S_t / F),
//     C = e^{-rate t} [F - sqrt(F K) / pi  int_0^inf Re(e^{i u x} psi(u - i/2)) / (u^2 + 1/4) du].
// One characteristic-function evaluation per node serves every strike of the expiry. The
// Black-Scholes integrand with the expected average variance is subtracted and its closed form
// added back (a control variate as in L. Andersen, V. Piterbarg (2010), "Interest Rate Modeling",
// vol. I, sec. 8.4), which makes the integrand small. Quadrature: composite 16-point
// Gauss-Legendre panels on [0, u_max]; the panel width resolves both the oscillation e^{i u x} of
// the farthest strike and the Gaussian width of psi, and panels are added until the integrand's
// envelope and its extrapolated exponential tail are below 1e-13 of the forward. Puts by
// put-call parity.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace v28::heston {

struct Params {
    double v0, kappa, theta, sigma, rho;
};

// Throws std::invalid_argument: v0, theta >= 0; kappa, sigma > 0; rho in (-1, 1).
void check_params(const Params& p, std::size_t index);

// ln E[exp(i u ln(S_t / F_t))] for complex u (Albrecher et al. eq. (2) without the drift term).
std::complex<double> log_cf(std::complex<double> u, double t, const Params& p);

// Prices of European options that share spot, t, rate, div and parameters; `call` 1 or 0.
void price_expiry(double spot, double t, double rate, double div, const Params& p,
                  std::span<const double> strike, std::span<const std::uint8_t> call,
                  std::span<double> out);

// Vectorised over equal-length spans; options sharing (spot, t, rate, div, parameters) are
// grouped so that each group's characteristic function is evaluated once.
void price(std::span<const double> spot, std::span<const double> strike,
           std::span<const double> t, std::span<const double> rate, std::span<const double> div,
           std::span<const double> v0, std::span<const double> kappa,
           std::span<const double> theta, std::span<const double> sigma,
           std::span<const double> rho, std::span<const std::uint8_t> call, std::span<double> out);

struct Bounds {
    Params lower{1e-4, 1e-3, 1e-4, 1e-3, -0.999};
    Params upper{4.0, 20.0, 4.0, 5.0, 0.999};
};

struct Calibration {
    Params params{};
    std::vector<double> model_price;  // at the calibrated parameters, one per quote
    std::vector<double> weight;       // residual weight used per quote
    double rmse = 0.0;                // sqrt(mean(weight^2 (model - market)^2))
    int iterations = 0;               // accepted Levenberg-Marquardt steps
    int evaluations = 0;              // price-vector evaluations (Jacobian columns included)
    double seconds = 0.0;             // wall time of the fit
    bool feller = false;              // 2 kappa theta >= sigma^2
    // True when a stopping test was met: the relative step fell below 1e-10, the cost below
    // 1e-28, a step's actual and predicted decrease below cost_tolerance of the cost, or (no
    // downhill step left) the projected gradient below gradient_tolerance or
    // the Gauss-Newton decrease g' (J'J)^-1 g below model_decrease_tolerance of the cost; and
    // every expiry's quadrature converged. False when max_iterations ran out or LM stalled
    // away from a stationary point.
    bool converged = false;
};

// Relative decrease of the cost, actual and predicted by the Gauss-Newton model, below which a
// step ends the fit (MINPACK's ftol test, J. J. More et al. (1980), "User guide for MINPACK-1"):
// the implied-vol RMSE is then within about 1e-10 of its minimum, far below any quote's noise,
// and further steps only chase the prices' rounding.
inline constexpr double cost_tolerance = 1e-10;
// |d cost / d ln p_j| / cost at which a stalled fit counts as stationary (per free parameter).
inline constexpr double gradient_tolerance = 1e-6;
// The Gauss-Newton model's predicted relative decrease at which a stalled fit counts as
// stationary: the forward-difference Jacobian (step 1e-7) carries relative noise of ~1e-6 from
// the prices' rounding, so at a minimum the gradient is that noise (|g| ln p / cost up to
// ~1e-5) while the decrease it predicts stays near 1e-13 of the cost.
inline constexpr double model_decrease_tolerance = 1e-10;

// Least-squares fit of the five parameters to market prices by Levenberg-Marquardt (K. Levenberg
// (1944), D. Marquardt (1963); Marquardt's diagonal scaling), finite-difference Jacobian, steps
// projected onto the bounds. Residual i is weight[i] (model_i - price_i). An empty `weight`
// means 1 / vega_i: BSM vega at the quote's implied volatility, which makes the residual the
// implied-volatility error to first order. Options of one expiry share (t, rate, div).
// Throws std::invalid_argument when a lower bound is not below its upper bound, a bound breaks
// the model's constraints, or `initial` lies outside the box (nothing is clipped silently).
// Prices: price_expiry and price throw std::domain_error when the quadrature does not converge.
Calibration calibrate(double spot, std::span<const double> strike, std::span<const double> t,
                      std::span<const double> rate, std::span<const double> div,
                      std::span<const std::uint8_t> call, std::span<const double> market_price,
                      std::span<const double> weight, const Params& initial,
                      const Bounds& bounds = {}, int max_iterations = 100);

}  // namespace v28::heston
