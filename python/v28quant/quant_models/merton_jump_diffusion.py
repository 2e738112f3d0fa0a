"""Merton (1976) jump diffusion: prices, moment calibration and mispricing (compiled core).

Model: dS/S = (rate - div - lam kbar) dt + vol dW + (J - 1) dN with N Poisson of intensity
``lam`` per year and ln J ~ N(``mu_j``, ``delta_j``^2), kbar = exp(mu_j + delta_j^2/2) - 1.

Prices are the Poisson-weighted Black-Scholes series, truncated once the bound on the remaining
terms is below 1e-14 (spot + strike); ``lam = 0`` returns the Black-Scholes price itself.

References
----------
R. C. Merton (1976), "Option pricing when underlying stock returns are discontinuous",
J. Financial Economics 3, eq. (19).
E. G. Haug (2007), "The Complete Guide to Option Pricing Formulas", 2nd ed., 6.10.1.
O. E. Barndorff-Nielsen, N. Shephard (2004), "Power and bipower variation with stochastic
volatility and jumps", J. Financial Econometrics 2(1) (absolute moments against jumps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike

from v28quant import _core
from v28quant._arrays import broadcast_flat, shape_out
from v28quant._typing import FloatArray
from v28quant.quant_models.mispricing import Mispricing
from v28quant.quant_models.mispricing import mispricing as _mis

_ARGS = ("spot", "strike", "t", "rate", "div", "vol", "lam", "mu_j", "delta_j", "call")


@overload
def price(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    lam: float,
    mu_j: float,
    delta_j: float,
    call: bool = ...,
) -> float: ...


@overload
def price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    lam: ArrayLike,
    mu_j: ArrayLike,
    delta_j: ArrayLike,
    call: ArrayLike = ...,
) -> FloatArray: ...


def price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    lam: ArrayLike,
    mu_j: ArrayLike,
    delta_j: ArrayLike,
    call: ArrayLike = True,
) -> float | FloatArray:
    """European option price under Merton's jump diffusion, per unit of underlying.

    ``vol`` is the diffusion volatility (annualised), ``lam`` jumps per year, ``mu_j`` and
    ``delta_j`` the mean and standard deviation of the log jump. Arguments broadcast.
    Raises ``ValueError`` naming the argument for negative vol, lam or delta_j, lam t > 500, or
    bad spot/strike/t.
    """
    flat, shape, scalar = broadcast_flat(
        _ARGS, spot, strike, t, rate, div, vol, lam, mu_j, delta_j, call, flags=1
    )
    s, k, tt, r, q, v, lm, mj, dj, c = flat
    out = _core.merton_price(s, k, tt, r, q, v, lm, mj, dj, c)
    return shape_out(out, shape, scalar)


@dataclass(frozen=True)
class MertonMomentFit:
    """Result of :func:`calibrate_from_returns`.

    ``vol`` (annualised diffusion vol), ``lam`` (jumps per year), ``mu_j``, ``delta_j`` (log-jump
    mean and s.d.), ``drift`` (mean log return per year); the sample moments of the returns
    (per observation) that were matched; ``max_residual`` the largest relative moment mismatch.
    """

    vol: float
    lam: float
    mu_j: float
    delta_j: float
    drift: float
    variance: float
    skewness: float
    excess_kurtosis: float
    mean_abs_deviation: float
    max_residual: float
    iterations: int


def calibrate_from_returns(returns: ArrayLike, dt: float = 1 / 252) -> MertonMomentFit:
    """Fit (vol, lam, mu_j, delta_j) to log returns sampled every ``dt`` years.

    Matches the variance, skewness and excess kurtosis of the returns (the jump cumulants
    lam dt E[Y^n]) and, to separate the diffusion from the jumps, their mean absolute deviation
    (a Poisson mixture of folded normals). Raises ``ValueError`` when the moments admit no
    Merton solution (excess kurtosis <= 0, or no parameters reproduce them).
    """
    r = np.ascontiguousarray(np.asarray(returns, dtype=np.float64).ravel())
    raw = _core.merton_calibrate_moments(r, float(dt))
    floats = {k: float(v) for k, v in raw.items() if k != "iterations"}
    return MertonMomentFit(iterations=int(raw["iterations"]), **floats)


@overload
def mispricing(
    market_mid: float,
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    lam: float,
    mu_j: float,
    delta_j: float,
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
    vol: ArrayLike,
    lam: ArrayLike,
    mu_j: ArrayLike,
    delta_j: ArrayLike,
    call: ArrayLike = ...,
) -> Mispricing[FloatArray]: ...


def mispricing(
    market_mid: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    lam: ArrayLike,
    mu_j: ArrayLike,
    delta_j: ArrayLike,
    call: ArrayLike = True,
) -> Mispricing[Any]:
    """Merton price against the market mid, in price and in vol points (series price is exact)."""
    model = price(spot, strike, t, rate, div, vol, lam, mu_j, delta_j, call)
    return _mis(model, market_mid, spot, strike, t, rate, div, call)
