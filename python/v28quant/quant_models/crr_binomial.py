"""Cox-Ross-Rubinstein binomial tree for European and American options (compiled core).

The textbook tree: ``steps`` steps of ``dt = t / steps``, up factor ``u = exp(vol sqrt(dt))``,
``d = 1 / u``, up-probability ``p = (exp((rate - div) dt) - d) / (u - d)``, discounting
``exp(-rate dt)`` per step; an American option takes the larger of continuation and exercise
value at every node. O(steps) memory, O(steps^2) time per option; the European price converges
to Black-Scholes-Merton with error O(1 / steps).

Conventions as in :mod:`v28quant.options.black_scholes`: ``t`` in years, ``rate`` and ``div``
continuously compounded, ``vol`` annualised, ``call`` True for a call. Arguments broadcast like
numpy; scalars in give a float out.

References
----------
J. C. Cox, S. A. Ross, M. Rubinstein (1979), "Option Pricing: A Simplified Approach",
JFE 7(3), 229-263.
J. C. Hull, "Options, Futures, and Other Derivatives", 10th ed., ch. 13 and 21 (tree Greeks).
"""

from __future__ import annotations

import operator
from typing import Any, Generic, NamedTuple, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike

from v28quant import _core
from v28quant._arrays import broadcast_flat, shape_out
from v28quant._typing import FloatArray

_ARGS = ("spot", "strike", "t", "rate", "div", "vol", "call", "american")


T = TypeVar("T", float, FloatArray)


class CrrGreeks(NamedTuple, Generic[T]):
    """Tree price and sensitivities from the first three levels of the tree (Hull ch. 21.1).

    Floats for scalar input, arrays of the broadcast shape otherwise.

    Attributes
    ----------
    price : float or ndarray
        The option value.
    delta : float or ndarray
        dV/dS.
    gamma : float or ndarray
        d2V/dS2.
    theta : float or ndarray
        dV/dt per year of calendar time.
    """

    price: T
    delta: T
    gamma: T
    theta: T


def _steps(steps: int) -> int:
    try:
        return operator.index(steps)
    except TypeError:
        raise ValueError(f"steps must be an integer, got {steps!r}") from None


@overload
def price(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    call: bool = ...,
    american: bool = ...,
    steps: int = ...,
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
    american: ArrayLike = ...,
    steps: int = ...,
) -> FloatArray: ...


def price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = True,
    american: ArrayLike = True,
    steps: int = 100,
) -> float | FloatArray:
    """Option price on a CRR binomial tree.

    Parameters
    ----------
    spot, strike : array_like
        Underlying price (> 0) and strike (>= 0), currency per unit of underlying.
    t : array_like
        Time to expiry in years, >= 0 (0 gives the payoff).
    rate, div : array_like
        Continuously compounded interest rate and dividend yield per year.
    vol : array_like
        Annualised volatility, >= 0. At 0 the spot follows its forward and the price is exact:
        the discounted exercise value at expiry (European) or at the best date in [0, t]
        (American), as QuantLib's American engines give.
    call, american : array_like of bool
        Call (True) or put; American (True) or European exercise.
    steps : int
        Number of time steps, >= 1.

    Returns
    -------
    float or ndarray
        The tree price.

    Raises
    ------
    ValueError
        Naming the argument for NaN, non-positive spot, negative strike, vol or ``t`` or
        ``steps < 1``; and when ``p`` falls outside [0, 1] because ``dt = t / steps`` is too long
        for the carry ``rate - div`` at this vol (the message gives the steps needed).
    """
    n = _steps(steps)
    flat, shape, scalar = broadcast_flat(
        _ARGS, spot, strike, t, rate, div, vol, call, american, flags=2
    )
    out = _core.crr_price(flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], flat[6], flat[7], n)
    return shape_out(np.asarray(out), shape, scalar)


@overload
def greeks(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    call: bool = ...,
    american: bool = ...,
    steps: int = ...,
) -> CrrGreeks[float]: ...


@overload
def greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = ...,
    american: ArrayLike = ...,
    steps: int = ...,
) -> CrrGreeks[FloatArray]: ...


def greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike = True,
    american: ArrayLike = True,
    steps: int = 100,
) -> CrrGreeks[Any]:
    """Price, delta, gamma and theta (per year) from the CRR tree; ``steps >= 2``.

    Arguments and errors as in :func:`price`. Each field is a float for scalar input, an
    ndarray of the broadcast shape otherwise.
    """
    n = _steps(steps)
    flat, shape, scalar = broadcast_flat(
        _ARGS, spot, strike, t, rate, div, vol, call, american, flags=2
    )
    arrays = _core.crr_greeks(
        flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], flat[6], flat[7], n
    )
    fields: list[Any] = [shape_out(a, shape, scalar) for a in arrays]
    return CrrGreeks(*fields)
