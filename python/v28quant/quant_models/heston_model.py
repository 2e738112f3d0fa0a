"""Heston (1993) stochastic volatility: prices, calibration and mispricing (compiled core).

Model: dS/S = (rate - div) dt + sqrt(v) dW1, dv = kappa (theta - v) dt + sigma sqrt(v) dW2,
d<W1, W2> = rho dt. ``v0`` and ``theta`` are variances per year (0.04 = 20 % vol), ``kappa`` the
mean-reversion speed per year, ``sigma`` the vol of variance, ``rho`` the correlation.

Prices come from the Lewis (2001) single integral with the characteristic function in the
"little Heston trap" form (Albrecher et al. 2007), evaluated once per quadrature node and shared by
every strike of an expiry, with a Black-Scholes control variate; composite Gauss-Legendre panels
sized to each expiry reach about 1e-13 of the forward (checked against QuantLib and Alan Lewis's
published values in the tests).

References
----------
S. L. Heston (1993), "A closed-form solution for options with stochastic volatility", RFS 6(2).
H. Albrecher, P. Mayer, W. Schoutens, J. Tistaert (2007), "The little Heston trap", Wilmott.
A. Lewis (2001), "A simple option formula for general jump-diffusion and other exponential Levy
processes", SSRN 282110.
D. Marquardt (1963), "An algorithm for least-squares estimation of nonlinear parameters".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike

from v28quant import _core
from v28quant._arrays import broadcast_flat, shape_out
from v28quant._typing import FloatArray
from v28quant.options.black_scholes import implied_vol
from v28quant.quant_models.mispricing import Mispricing
from v28quant.quant_models.mispricing import mispricing as _mis

_ARGS = ("spot", "strike", "t", "rate", "div", "v0", "kappa", "theta", "sigma", "rho", "call")


class HestonParams(NamedTuple):
    """Heston parameters: v0, theta variances; kappa per year; sigma vol of variance; rho."""

    v0: float
    kappa: float
    theta: float
    sigma: float
    rho: float

    @property
    def feller(self) -> bool:
        """True when 2 kappa theta >= sigma^2 (the variance never reaches zero)."""
        return 2.0 * self.kappa * self.theta >= self.sigma**2


DEFAULT_LOWER = HestonParams(1e-4, 1e-3, 1e-4, 1e-3, -0.999)
DEFAULT_UPPER = HestonParams(4.0, 20.0, 4.0, 5.0, 0.999)


@overload
def price(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    v0: float,
    kappa: float,
    theta: float,
    sigma: float,
    rho: float,
    call: bool = ...,
) -> float: ...


@overload
def price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    v0: ArrayLike,
    kappa: ArrayLike,
    theta: ArrayLike,
    sigma: ArrayLike,
    rho: ArrayLike,
    call: ArrayLike = ...,
) -> FloatArray: ...


def price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    v0: ArrayLike,
    kappa: ArrayLike,
    theta: ArrayLike,
    sigma: ArrayLike,
    rho: ArrayLike,
    call: ArrayLike = True,
) -> float | FloatArray:
    """European option price under Heston, per unit of underlying.

    All arguments broadcast; options that share (spot, t, rate, div, parameters) share one
    characteristic-function evaluation. Raises ``ValueError`` naming the argument for v0 or
    theta < 0, kappa or sigma <= 0, rho outside (-1, 1), or bad spot/strike/t.
    """
    flat, shape, scalar = broadcast_flat(
        _ARGS, spot, strike, t, rate, div, v0, kappa, theta, sigma, rho, call, flags=1
    )
    s, k, tt, r, q, v, kp, th, sg, rh, c = flat
    out = _core.heston_price(s, k, tt, r, q, v, kp, th, sg, rh, c)
    return shape_out(out, shape, scalar)


@dataclass(frozen=True)
class HestonCalibration:
    """Result of :func:`calibrate`.

    Attributes
    ----------
    params : HestonParams
    model_price : ndarray
        Model prices at ``params``, one per quote.
    price_error : ndarray
        model - market, in price.
    vol_error : ndarray
        model IV - market IV, in vol points (1.0 = one percentage point of vol).
    rmse_vol_points : float
        Root mean square of ``vol_error`` (NaN entries excluded).
    weighted_rmse : float
        Root mean square of the residuals that were minimised (weight * price error).
    iterations, evaluations : int
        Accepted Levenberg-Marquardt steps; price-vector evaluations.
    seconds : float
        Wall time of the compiled fit.
    feller : bool
        2 kappa theta >= sigma^2 at the solution.
    converged : bool
        True only when a stopping test was met: relative step below 1e-10, a step whose actual
        and predicted decrease are both below 1e-10 of the cost (MINPACK's ftol test), or no
        downhill step left at a stationary point (projected relative gradient below 1e-6, or a
        Gauss-Newton predicted decrease below 1e-10 of the cost), with every expiry's
        quadrature converged.
        False when ``max_iterations`` ran out or the fit stalled.
    """

    params: HestonParams
    model_price: np.ndarray
    price_error: np.ndarray
    vol_error: np.ndarray
    rmse_vol_points: float
    weighted_rmse: float
    iterations: int
    evaluations: int
    seconds: float
    feller: bool
    converged: bool


def calibrate(
    spot: float,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    market_price: ArrayLike,
    call: ArrayLike = True,
    *,
    initial: HestonParams | tuple[float, float, float, float, float] | None = None,
    weights: ArrayLike | None = None,
    lower: HestonParams = DEFAULT_LOWER,
    upper: HestonParams = DEFAULT_UPPER,
    max_iterations: int = 100,
) -> HestonCalibration:
    """Fit Heston parameters to option prices by bounded Levenberg-Marquardt.

    Parameters
    ----------
    spot : float
    strike, t, rate, div, market_price, call : array_like
        One entry per quote (broadcast together). Quotes with equal (t, rate, div) form one
        expiry; a per-expiry forward F can be passed as ``div = rate - ln(F / spot) / t``.
    initial : HestonParams, optional
        Start; default v0 = theta = (median implied vol)^2, kappa 2, sigma 0.5, rho -0.5.
    weights : array_like, optional
        Residual weights; default 1 / BSM vega at the quote's implied vol, so the fit minimises
        implied-volatility errors (to first order).
    lower, upper : HestonParams
        Box bounds; steps are projected onto the box. ``ValueError`` when a lower bound is not
        below its upper bound or ``initial`` lies outside the box (nothing is clipped).
    max_iterations : int

    Returns
    -------
    HestonCalibration
    """
    names = ("strike", "t", "rate", "div", "market_price", "call")
    flat, _, _ = broadcast_flat(names, strike, t, rate, div, market_price, call)
    k, tt, r, q, mkt, c = flat
    is_call = c.astype(bool)
    market_vol = np.asarray(implied_vol(mkt, spot, k, tt, r, q, is_call), dtype=np.float64)
    if initial is None:
        atm = float(np.nanmedian(market_vol)) if np.isfinite(market_vol).any() else 0.2
        initial = HestonParams(atm**2, 2.0, atm**2, 0.5, -0.5)
    w = (
        np.empty(0)
        if weights is None
        else np.broadcast_to(np.asarray(weights, dtype=np.float64), k.shape).copy()
    )
    raw = _core.heston_calibrate(
        float(spot),
        k,
        tt,
        r,
        q,
        is_call,
        mkt,
        w,
        tuple(initial),
        tuple(lower),
        tuple(upper),
        int(max_iterations),
    )
    model = np.asarray(raw["model_price"])
    model_vol = np.asarray(implied_vol(model, spot, k, tt, r, q, is_call), dtype=np.float64)
    vol_error = 100.0 * (model_vol - market_vol)
    finite = np.isfinite(vol_error)
    return HestonCalibration(
        params=HestonParams(*raw["params"]),
        model_price=model,
        price_error=model - mkt,
        vol_error=vol_error,
        rmse_vol_points=float(np.sqrt(np.mean(vol_error[finite] ** 2))) if finite.any() else np.nan,
        weighted_rmse=float(raw["rmse"]),
        iterations=int(raw["iterations"]),
        evaluations=int(raw["evaluations"]),
        seconds=float(raw["seconds"]),
        feller=bool(raw["feller"]),
        converged=bool(raw["converged"]),
    )


@overload
def mispricing(
    market_mid: float,
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    params: HestonParams,
    call: bool = ...,
) -> Mispricing[float]: ...


@overload
def mispricing(
    market_mid: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    params: HestonParams,
    call: ArrayLike = ...,
) -> Mispricing[FloatArray]: ...


def mispricing(
    market_mid: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    params: HestonParams,
    call: ArrayLike = True,
) -> Mispricing[Any]:
    """Heston price against the market mid, in price and in vol points.

    The transform price is exact to about 1e-13 of the forward, so ``edge_stderr`` is NaN.
    """
    model = price(spot, strike, t, rate, div, *params, call=call)
    return _mis(model, market_mid, spot, strike, t, rate, div, call)
