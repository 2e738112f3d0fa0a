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
F. Black (1976), "The Pricing of Commodity Contracts", JFE 3(1-2) (options on forwards).
P. Jäckel (2015), "Let's Be Rational", Wilmott 2015(75), pp. 40-53 (implied volatility).
"""

from __future__ import annotations

from typing import Any, Generic, NamedTuple, TypeVar, overload

from v28quant import _core
from v28quant._arrays import broadcast_flat, shape_out
from v28quant._typing import ArrayLike, FloatArray

_ARGS = ("spot", "strike", "t", "rate", "div", "vol", "call")
_IV_ARGS = ("price", "spot", "strike", "t", "rate", "div", "call")
_BLACK_IV_ARGS = ("price", "forward", "strike", "t", "discount", "call")  # flags last


T = TypeVar("T", float, FloatArray)


class Greeks(NamedTuple, Generic[T]):
    """BSM sensitivities, floats for scalar input and arrays of the broadcast shape otherwise.

    Attributes
    ----------
    delta : float or ndarray
        dV/dS.
    gamma : float or ndarray
        d2V/dS2, per unit of underlying.
    vega : float or ndarray
        dV/dvol per 1.00 of vol.
    theta : float or ndarray
        dV/dt per year of calendar time.
    rho : float or ndarray
        dV/drate per 1.00 of rate.
    """

    delta: T
    gamma: T
    vega: T
    theta: T
    rho: T


def _shaped_greeks(
    arrays: tuple[FloatArray, ...], shape: tuple[int, ...], scalar: bool
) -> Greeks[Any]:
    fields: list[Any] = [shape_out(a, shape, scalar) for a in arrays]
    return Greeks(*fields)


@overload
def price(
    spot: float, strike: float, t: float, rate: float, div: float, vol: float, call: bool = ...
) -> float: ...


@overload
def price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = ...,
) -> FloatArray: ...


def price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = True,
) -> float | FloatArray:
    """European option price under Black-Scholes-Merton with a continuous dividend yield.

    ``t = 0`` or ``vol = 0`` gives the discounted intrinsic value of the forward.
    Raises ``ValueError`` naming the argument for NaN, non-positive spot or strike, or negative
    ``t`` or ``vol``.
    """
    flat, shape, scalar = broadcast_flat(_ARGS, spot, strike, t, rate, div, vol, call, flags=1)
    out = _core.bsm_price(flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], flat[6])
    return shape_out(out, shape, scalar)


@overload
def greeks(
    spot: float, strike: float, t: float, rate: float, div: float, vol: float, call: bool = ...
) -> Greeks[float]: ...


@overload
def greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = ...,
) -> Greeks[FloatArray]: ...


def greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = True,
) -> Greeks[Any]:
    """Delta, gamma, vega (per 1.00 vol), theta (per year) and rho (per 1.00 rate).

    Each field is a float for scalar input, an ndarray of the broadcast shape otherwise.
    """
    flat, shape, scalar = broadcast_flat(_ARGS, spot, strike, t, rate, div, vol, call, flags=1)
    _, delta, gamma, vega, theta, rho = _core.bsm_greeks(
        flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], flat[6]
    )
    return _shaped_greeks((delta, gamma, vega, theta, rho), shape, scalar)


@overload
def price_greeks(
    spot: float, strike: float, t: float, rate: float, div: float, vol: float, call: bool = ...
) -> tuple[float, Greeks[float]]: ...


@overload
def price_greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = ...,
) -> tuple[FloatArray, Greeks[FloatArray]]: ...


def price_greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = True,
) -> tuple[float | FloatArray, Greeks[Any]]:
    """Price and Greeks in one pass (the price as :func:`price`, the Greeks as :func:`greeks`).

    Cheaper than calling both: the two share every intermediate of the formula.
    """
    flat, shape, scalar = broadcast_flat(_ARGS, spot, strike, t, rate, div, vol, call, flags=1)
    value, delta, gamma, vega, theta, rho = _core.bsm_greeks(
        flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], flat[6]
    )
    greeks_out = _shaped_greeks((delta, gamma, vega, theta, rho), shape, scalar)
    return shape_out(value, shape, scalar), greeks_out


@overload
def implied_vol(
    price: float, spot: float, strike: float, t: float, rate: float, div: float, call: bool = ...
) -> float: ...


@overload
def implied_vol(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    call: ArrayLike = ...,
) -> FloatArray: ...


def implied_vol(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    call: ArrayLike = True,
) -> float | FloatArray:
    """Black-Scholes-Merton implied volatility (annualised) of a European option price.

    Parameters
    ----------
    price : array_like
        Option price (discounted, per unit of underlying, as quoted).
    spot, strike : array_like
        Underlying price and strike, > 0.
    t : array_like
        Time to expiry in years, > 0.
    rate, div : array_like
        Continuously compounded interest rate and dividend yield per year.
    call : array_like of bool
        True for a call, False for a put.

    Returns
    -------
    float or ndarray
        The volatility that reproduces ``price`` (0 on the intrinsic value). Inverted with
        Jäckel's "Let's Be Rational": machine precision wherever the price carries information.

    Notes
    -----
    No volatility exists for a price outside the no-arbitrage bounds: a call must lie in
    ``[max(S e^{-qt} - K e^{-rt}, 0), S e^{-qt})``, a put in
    ``[max(K e^{-rt} - S e^{-qt}, 0), K e^{-rt})``. The rule, the same for scalars and arrays
    and for every implied-volatility function of the package: a price outside the bounds gives
    NaN (it is data, a stale or crossed quote, and one must not abort a whole chain); a bad
    argument raises ``ValueError`` naming it: NaN price, non-positive spot, strike or ``t``,
    non-finite rate or dividend, or a forward ``S e^{(r-q)t}`` or discount factor that
    overflows.
    """
    flat, shape, scalar = broadcast_flat(_IV_ARGS, price, spot, strike, t, rate, div, call, flags=1)
    out = _core.bsm_implied_vol(
        flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], flat[6], strict=False
    )
    return shape_out(out, shape, scalar)


@overload
def black_implied_vol(
    price: float, forward: float, strike: float, t: float, call: bool = ..., discount: float = ...
) -> float: ...


@overload
def black_implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    call: ArrayLike = ...,
    discount: ArrayLike = ...,
) -> FloatArray: ...


def black_implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    call: ArrayLike = True,
    discount: ArrayLike = 1.0,
) -> float | FloatArray:
    """Black (1976) implied volatility of an option on a forward.

    Parameters
    ----------
    price : array_like
        Option price, discounted by ``discount`` (per unit of underlying).
    forward, strike : array_like
        Forward price to expiry and strike, > 0.
    t : array_like
        Time to expiry in years, > 0.
    call : array_like of bool
        True for a call, False for a put.
    discount : array_like
        Discount factor to the payment date, > 0 (1.0 for an undiscounted price).

    Returns
    -------
    float or ndarray
        The annualised volatility. Prices outside ``[D max(+-(F - K), 0), D F or D K)`` give NaN
        (scalars and arrays alike); bad arguments raise ``ValueError``, as in
        :func:`implied_vol`.
    """
    flat, shape, scalar = broadcast_flat(
        _BLACK_IV_ARGS, price, forward, strike, t, discount, call, flags=1
    )
    out = _core.black_implied_vol(
        flat[0], flat[1], flat[2], flat[3], flat[5], flat[4], strict=False
    )
    return shape_out(out, shape, scalar)
