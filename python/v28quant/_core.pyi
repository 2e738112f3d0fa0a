"""
v28quant compiled quant core (C++20, Eigen); see the typed faces in v28quant.*
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['FisherNormalCore', 'HeightFieldCore', 'black_implied_vol', 'bsm_greeks', 'bsm_implied_vol', 'bsm_price', 'crr_greeks', 'crr_price', 'dupire_local_vol_prices', 'dupire_local_vol_svi', 'dupire_mc_price', 'garch_fit', 'garch_forecast', 'garch_loglik', 'geometry_christoffel', 'geometry_distance', 'geometry_gaussian_curvature', 'geometry_geodesic', 'geometry_metric', 'heston_calibrate', 'heston_log_cf', 'heston_price', 'mc_asian', 'mc_european', 'mc_geometric_asian', 'mc_heston_european', 'mc_merton_european', 'merton_calibrate_moments', 'merton_price', 'rng_normals', 'rng_philox4x32_10', 'svi_fit_slice', 'svi_forward', 'svi_implied_vol', 'svi_slice_derivs', 'svi_total_variance']
class FisherNormalCore:
    """
    Fisher-Rao metric of N(mu, sigma^2): (dmu^2 + 2 dsigma^2) / sigma^2.
    """
    def __init__(self) -> None:
        ...
class HeightFieldCore:
    """
    Induced metric of z = f(x, y), f a not-a-knot bicubic spline.
    """
    def __init__(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], z: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> None:
        ...
    def derivatives(self, points: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
        """
        Spline f, f_x, f_y, f_xx, f_xy, f_yy at flat (n, 2) points -> flat (n, 6).
        """
def black_implied_vol(price: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], forward: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8], discount: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strict: bool = False) -> numpy.typing.NDArray[numpy.float64]:
    """
    Black (1976) implied volatility of a discounted option price on a forward (Jaeckel's 'Let's Be Rational'). NaN outside the no-arbitrage bounds, or ValueError when strict.
    """
def bsm_greeks(spot: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], vol: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8]) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
    """
    Black-Scholes-Merton price and Greeks (price, delta, gamma, vega per 1.00 vol, theta per year, rho per 1.00 rate) as a tuple of arrays.
    """
def bsm_implied_vol(price: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spot: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8], strict: bool = False) -> numpy.typing.NDArray[numpy.float64]:
    """
    BSM implied volatility (Jaeckel's 'Let's Be Rational'). Flat float64 arrays of one length; price discounted per unit of underlying, t in years (> 0). A price outside the no-arbitrage bounds gives NaN, or ValueError when strict.
    """
def bsm_price(spot: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], vol: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Black-Scholes-Merton price per unit of underlying. Flat float64 arrays of one length; t in years, rate/div continuously compounded, vol annualised; call is 1 (call) or 0 (put).
    """
def crr_greeks(spot: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], vol: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8], american: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8], steps: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
    """
    CRR price and tree Greeks (price, delta, gamma, theta per year) as a tuple of arrays; steps >= 2.
    """
def crr_price(spot: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], vol: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8], american: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8], steps: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """
    CRR binomial price per unit of underlying (textbook tree, p = (e^{(rate-div)dt} - d) / (u - d)). Flat float64 arrays of one length; call/american are 1 or 0; steps >= 1.
    """
def dupire_local_vol_prices(t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], calls: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.SupportsFloat | typing.SupportsIndex, div: typing.SupportsFloat | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """
    Dupire local vol from discounted call prices on a (t, strike) grid (flat row-major) by finite differences; constant rate and dividend yield.
    """
def dupire_local_vol_svi(expiries: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], forwards: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spot: typing.SupportsFloat | typing.SupportsIndex, t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Local vol sigma_loc(t, K) of an SVI surface by Gatheral's formula (Volatility Surface eq. 1.10); NaN where the surface has arbitrage.
    """
def dupire_mc_price(expiries: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], forwards: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spot: typing.SupportsFloat | typing.SupportsIndex, t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8], paths: typing.SupportsInt | typing.SupportsIndex, steps_per_year: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
    """
    Undiscounted vanilla prices and standard errors by local-vol Monte Carlo (Euler in ln(S/F), antithetic, Philox streams per path pair: thread-count independent).
    """
def garch_fit(returns: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], student_t: bool, presample: typing.SupportsInt | typing.SupportsIndex, presample_value: typing.SupportsFloat | typing.SupportsIndex, max_iter: typing.SupportsInt | typing.SupportsIndex, grad_tol: typing.SupportsFloat | typing.SupportsIndex) -> dict:
    """
    GARCH(1,1) MLE with constant mean. presample: 0 mean square at the current mean (FCP), 1 arch's EWMA backcast, 2 fixed presample_value (returns units squared). Returns a dict: params (mu, omega, alpha, beta[, nu]), loglik, converged, iterations, evaluations, presample_variance, cov_robust (Bollerslev-Wooldridge), grad, variance (h_1..h_{T+1}).
    """
def garch_forecast(omega: typing.SupportsFloat | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, beta: typing.SupportsFloat | typing.SupportsIndex, h_next: typing.SupportsFloat | typing.SupportsIndex, horizon: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """
    Closed-form E_T[h_{T+k}], k = 1..horizon, from the one-step variance h_next.
    """
def garch_loglik(returns: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], mu: typing.SupportsFloat | typing.SupportsIndex, omega: typing.SupportsFloat | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, beta: typing.SupportsFloat | typing.SupportsIndex, nu: typing.SupportsFloat | typing.SupportsIndex, student_t: bool, presample: typing.SupportsInt | typing.SupportsIndex, presample_value: typing.SupportsFloat | typing.SupportsIndex) -> tuple[float, numpy.typing.NDArray[numpy.float64]]:
    """
    GARCH(1,1) log-likelihood at given parameters and the variances h_1..h_{T+1}.
    """
@typing.overload
def geometry_christoffel(metric: FisherNormalCore, points: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Christoffel symbols at flat (n, 2) points -> flat (n, 2, 2, 2), [k, i, j] = Gamma^k_ij.
    """
@typing.overload
def geometry_christoffel(metric: HeightFieldCore, points: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Christoffel symbols at flat (n, 2) points -> flat (n, 2, 2, 2), [k, i, j] = Gamma^k_ij.
    """
@typing.overload
def geometry_distance(metric: FisherNormalCore, a0: typing.SupportsFloat | typing.SupportsIndex, a1: typing.SupportsFloat | typing.SupportsIndex, b0: typing.SupportsFloat | typing.SupportsIndex, b1: typing.SupportsFloat | typing.SupportsIndex, rtol: typing.SupportsFloat | typing.SupportsIndex) -> tuple[float, float, float, float, int]:
    """
    Geodesic distance by shooting: (distance, v0_0, v0_1, endpoint residual, Newton iterations).
    """
@typing.overload
def geometry_distance(metric: HeightFieldCore, a0: typing.SupportsFloat | typing.SupportsIndex, a1: typing.SupportsFloat | typing.SupportsIndex, b0: typing.SupportsFloat | typing.SupportsIndex, b1: typing.SupportsFloat | typing.SupportsIndex, rtol: typing.SupportsFloat | typing.SupportsIndex) -> tuple[float, float, float, float, int]:
    """
    Geodesic distance by shooting: (distance, v0_0, v0_1, endpoint residual, Newton iterations).
    """
@typing.overload
def geometry_gaussian_curvature(metric: FisherNormalCore, points: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Gaussian curvature at flat (n, 2) points.
    """
@typing.overload
def geometry_gaussian_curvature(metric: HeightFieldCore, points: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Gaussian curvature at flat (n, 2) points.
    """
@typing.overload
def geometry_geodesic(metric: FisherNormalCore, x0: typing.SupportsFloat | typing.SupportsIndex, x1: typing.SupportsFloat | typing.SupportsIndex, v0: typing.SupportsFloat | typing.SupportsIndex, v1: typing.SupportsFloat | typing.SupportsIndex, t_end: typing.SupportsFloat | typing.SupportsIndex, n_points: typing.SupportsInt | typing.SupportsIndex, rtol: typing.SupportsFloat | typing.SupportsIndex, atol: typing.SupportsFloat | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], int, int, int]:
    """
    Geodesic by Dormand-Prince 5(4) with dense output: (t, x (n, 2), v (n, 2), accepted steps, rejected steps, evaluations).
    """
@typing.overload
def geometry_geodesic(metric: HeightFieldCore, x0: typing.SupportsFloat | typing.SupportsIndex, x1: typing.SupportsFloat | typing.SupportsIndex, v0: typing.SupportsFloat | typing.SupportsIndex, v1: typing.SupportsFloat | typing.SupportsIndex, t_end: typing.SupportsFloat | typing.SupportsIndex, n_points: typing.SupportsInt | typing.SupportsIndex, rtol: typing.SupportsFloat | typing.SupportsIndex, atol: typing.SupportsFloat | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], int, int, int]:
    """
    Geodesic by Dormand-Prince 5(4) with dense output: (t, x (n, 2), v (n, 2), accepted steps, rejected steps, evaluations).
    """
@typing.overload
def geometry_metric(metric: FisherNormalCore, points: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Metric tensor g_ij at flat (n, 2) points -> flat (n, 2, 2).
    """
@typing.overload
def geometry_metric(metric: HeightFieldCore, points: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Metric tensor g_ij at flat (n, 2) points -> flat (n, 2, 2).
    """
def heston_calibrate(spot: typing.SupportsFloat | typing.SupportsIndex, strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8], market_price: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], initial: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(5)"], lower: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(5)"], upper: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(5)"], max_iterations: typing.SupportsInt | typing.SupportsIndex) -> dict:
    """
    Levenberg-Marquardt fit of (v0, kappa, theta, sigma, rho) to prices; empty weight = 1/vega. Returns a dict (params, model_price, weight, rmse, iterations, evaluations, seconds, feller, converged).
    """
def heston_log_cf(u: typing.Annotated[numpy.typing.ArrayLike, numpy.complex128], t: typing.SupportsFloat | typing.SupportsIndex, v0: typing.SupportsFloat | typing.SupportsIndex, kappa: typing.SupportsFloat | typing.SupportsIndex, theta: typing.SupportsFloat | typing.SupportsIndex, sigma: typing.SupportsFloat | typing.SupportsIndex, rho: typing.SupportsFloat | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.complex128]:
    """
    ln E[exp(i u ln(S_t/F_t))] under Heston for complex u (Albrecher et al. 2007).
    """
def heston_price(spot: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], v0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], kappa: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], theta: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], sigma: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rho: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Heston European price per unit of underlying (Lewis integral, little-Heston-trap characteristic function). v0, theta variances; sigma vol of variance; t in years.
    """
def mc_asian(spot: typing.SupportsFloat | typing.SupportsIndex, strike: typing.SupportsFloat | typing.SupportsIndex, t: typing.SupportsFloat | typing.SupportsIndex, rate: typing.SupportsFloat | typing.SupportsIndex, div: typing.SupportsFloat | typing.SupportsIndex, vol: typing.SupportsFloat | typing.SupportsIndex, call: bool, steps: typing.SupportsInt | typing.SupportsIndex, paths: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, antithetic: bool, control_variate: bool, threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    """
    Arithmetic-average Asian option under GBM by Monte Carlo. Returns (price, stderr, plain_stderr, variance_reduction, paths); threads 0 = all cores. Deterministic for a seed whatever the thread count.
    """
def mc_european(spot: typing.SupportsFloat | typing.SupportsIndex, strike: typing.SupportsFloat | typing.SupportsIndex, t: typing.SupportsFloat | typing.SupportsIndex, rate: typing.SupportsFloat | typing.SupportsIndex, div: typing.SupportsFloat | typing.SupportsIndex, vol: typing.SupportsFloat | typing.SupportsIndex, call: bool, paths: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, antithetic: bool, control_variate: bool, threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    """
    European option under GBM by Monte Carlo. Returns (price, stderr, plain_stderr, variance_reduction, paths); threads 0 = all cores. Deterministic for a seed whatever the thread count.
    """
def mc_geometric_asian(spot: typing.SupportsFloat | typing.SupportsIndex, strike: typing.SupportsFloat | typing.SupportsIndex, t: typing.SupportsFloat | typing.SupportsIndex, rate: typing.SupportsFloat | typing.SupportsIndex, div: typing.SupportsFloat | typing.SupportsIndex, vol: typing.SupportsFloat | typing.SupportsIndex, call: bool, steps: typing.SupportsInt | typing.SupportsIndex) -> float:
    """
    Closed-form discretely monitored geometric-average Asian price (Kemna-Vorst).
    """
def mc_heston_european(spot: typing.SupportsFloat | typing.SupportsIndex, strike: typing.SupportsFloat | typing.SupportsIndex, t: typing.SupportsFloat | typing.SupportsIndex, rate: typing.SupportsFloat | typing.SupportsIndex, div: typing.SupportsFloat | typing.SupportsIndex, v0: typing.SupportsFloat | typing.SupportsIndex, kappa: typing.SupportsFloat | typing.SupportsIndex, theta: typing.SupportsFloat | typing.SupportsIndex, sigma: typing.SupportsFloat | typing.SupportsIndex, rho: typing.SupportsFloat | typing.SupportsIndex, call: bool, steps: typing.SupportsInt | typing.SupportsIndex, paths: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, control_variate: bool, threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    """
    Heston European option by Andersen's QE scheme. Returns (price, stderr, plain_stderr, variance_reduction, paths); threads 0 = all cores. Deterministic for a seed whatever the thread count.
    """
def mc_merton_european(spot: typing.SupportsFloat | typing.SupportsIndex, strike: typing.SupportsFloat | typing.SupportsIndex, t: typing.SupportsFloat | typing.SupportsIndex, rate: typing.SupportsFloat | typing.SupportsIndex, div: typing.SupportsFloat | typing.SupportsIndex, vol: typing.SupportsFloat | typing.SupportsIndex, lam: typing.SupportsFloat | typing.SupportsIndex, mu_j: typing.SupportsFloat | typing.SupportsIndex, delta_j: typing.SupportsFloat | typing.SupportsIndex, call: bool, paths: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, antithetic: bool, control_variate: bool, threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    """
    Merton jump-diffusion European option, exact terminal simulation. Returns (price, stderr, plain_stderr, variance_reduction, paths); threads 0 = all cores. Deterministic for a seed whatever the thread count.
    """
def merton_calibrate_moments(returns: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], dt: typing.SupportsFloat | typing.SupportsIndex) -> dict:
    """
    Fit (vol, lam, mu_j, delta_j) to log returns sampled every dt years by matching variance, skewness, excess kurtosis and mean absolute deviation.
    """
def merton_price(spot: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], vol: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], lam: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], mu_j: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], delta_j: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Merton (1976) jump-diffusion European price by the Poisson-weighted BSM series. lam jumps per year; mu_j, delta_j mean and s.d. of the log jump.
    """
def rng_normals(seed: typing.SupportsInt | typing.SupportsIndex, tag: typing.SupportsInt | typing.SupportsIndex, stream: typing.SupportsInt | typing.SupportsIndex, first: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """
    Standard normals first..first+n-1 of a Philox stream (Box-Muller); first a multiple of 4.
    """
def rng_philox4x32_10(counter: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(4)"], key: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(2)"]) -> typing.Annotated[list[int], "FixedSize(4)"]:
    """
    One Philox4x32-10 block: four 32-bit words from a 128-bit counter and a 64-bit key (Salmon et al. 2011).
    """
def svi_fit_slice(y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weights: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], max_iter: typing.SupportsInt | typing.SupportsIndex = 400) -> tuple[tuple[float, float, float, float, float], float, int]:
    """
    Quasi-explicit SVI fit (Zeliade 2009) of total variances w at log-moneyness y with weights (empty: ones). Returns ((a, b, rho, m, sigma), weighted rmse in w, evaluations).
    """
def svi_forward(expiries: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], forwards: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spot: typing.SupportsFloat | typing.SupportsIndex, t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Forward F(t) of the surface: ln F piecewise linear in t through the nodes.
    """
def svi_implied_vol(expiries: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], forwards: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spot: typing.SupportsFloat | typing.SupportsIndex, strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Annualised implied vol sqrt(w(ln(K / F(t)), t) / t) of an SVI surface; t > 0 in years.
    """
def svi_slice_derivs(params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
    """
    One raw SVI slice at log-moneyness y: (w, dw/dy, d2w/dy2, g) with g the Gatheral-Jacquier butterfly density factor (g >= 0: no butterfly arbitrage).
    """
def svi_total_variance(expiries: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], forwards: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spot: typing.SupportsFloat | typing.SupportsIndex, y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Total implied variance w(y, t) (years * vol^2) of an SVI surface; y = ln(K / F(t)), t in years; linear in t at fixed y between slices. params flat (n, 5) raw SVI; spot <= 0: none.
    """
