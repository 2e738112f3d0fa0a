"""Black-Scholes-Merton prices, Greeks and implied volatility (compiled core).

Conventions (shared by every pricing function in v28quant): ``spot`` and ``strike`` in currency
per unit of underlying, ``t`` in years, ``rate`` and ``div`` continuously compounded per year,
``vol`` annualised (0.2 = 20 %), ``call`` True for a call and False for a put. All arguments
broadcast like numpy; scalars in give a float out, arrays in give an ndarray out.

References
----------
F. Black, M. Scholes (1973), "The Pricing of Options and Corporate Liabilities", JPE 81(3).
R. C. Merton (1973), "Theory of Rational Option Pricing", Bell J. Econ. 4(1) (dividend yield).
E. G. Haug (2007), "The Complete Guide to Option Pricing Formulas", 2nd ed., ch. 1 and 2.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from numpy.typing import ArrayLike

from v28quant import _core
from v28quant._arrays import broadcast_flat, shape_out

_ARGS = ("spot", "strike", "t", "rate", "div", "vol", "call")


class Greeks(NamedTuple):
    """BSM sensitivities: delta dV/dS, gamma d2V/dS2, vega dV/dvol per 1.00 of vol, theta
    dV/dt per year of calendar time, rho dV/drate per 1.00 of rate."""

    delta: Any
    gamma: Any
    vega: Any
    theta: Any
    rho: Any


def price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = True,
) -> Any:
    """European option price under Black-Scholes-Merton with a continuous dividend yield.

    ``t = 0`` or ``vol = 0`` gives the discounted intrinsic value of the forward.
    Raises ``ValueError`` naming the argument for NaN, non-positive spot or strike, or negative
    ``t`` or ``vol``.
    """
    flat, shape, scalar = broadcast_flat(_ARGS, spot, strike, t, rate, div, vol, call)
    out = _core.bsm_price(*flat[:6], flat[6].astype(bool))
    return shape_out(out, shape, scalar)


def greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = True,
) -> Greeks:
    """Delta, gamma, vega (per 1.00 vol), theta (per year) and rho (per 1.00 rate).

    Each field is a float for scalar input, an ndarray of the broadcast shape otherwise.
    """
    flat, shape, scalar = broadcast_flat(_ARGS, spot, strike, t, rate, div, vol, call)
    _, delta, gamma, vega, theta, rho = _core.bsm_greeks(*flat[:6], flat[6].astype(bool))
    return Greeks(*(shape_out(a, shape, scalar) for a in (delta, gamma, vega, theta, rho)))
