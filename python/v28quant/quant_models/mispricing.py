"""Model prices against market mids: the edge in price, in vol points and in standard errors.

The pricing modules (Heston, Merton, Monte Carlo) each offer a ``mispricing`` that prices with
their model and calls :func:`mispricing` here; a positive edge means the market is cheap
relative to the model. A price outside the no-arbitrage bounds has no implied volatility and
shows as NaN in the vol fields (a stale quote must not stop the screening of a chain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

import numpy as np

from v28quant._typing import ArrayLike, FloatArray
from v28quant.options.black_scholes import implied_vol

__all__ = ["Mispricing", "mispricing"]

T = TypeVar("T", float, FloatArray)


@dataclass(frozen=True)
class Mispricing(Generic[T]):
    """Model price against the market mid, one entry per quote.

    Every field is a float for scalar input and an ndarray of the broadcast shape otherwise.

    Attributes
    ----------
    model_price, market_mid : float or ndarray
        The two prices compared, per unit of underlying.
    edge : float or ndarray
        ``model_price - market_mid``.
    model_vol, market_vol : float or ndarray
        BSM implied volatilities of the two prices (annualised; NaN outside the bounds).
    edge_vol_points : float or ndarray
        ``100 * (model_vol - market_vol)``.
    edge_stderr : float or ndarray
        ``edge`` in model standard errors; NaN when the model price is exact.
    """

    model_price: T
    market_mid: T
    edge: T
    model_vol: T
    market_vol: T
    edge_vol_points: T
    edge_stderr: T


@overload
def mispricing(
    model_price: float,
    market_mid: float,
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    call: bool = ...,
    model_stderr: float | None = ...,
) -> Mispricing[float]: ...


@overload
def mispricing(
    model_price: ArrayLike,
    market_mid: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    call: ArrayLike = ...,
    model_stderr: ArrayLike | None = ...,
) -> Mispricing[FloatArray]: ...


def mispricing(
    model_price: ArrayLike,
    market_mid: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div: ArrayLike,
    call: ArrayLike = True,
    model_stderr: ArrayLike | None = None,
) -> Mispricing[Any]:
    """Compare model prices with market mids in price, in vol points and in standard errors.

    Parameters
    ----------
    model_price, market_mid : array_like
        Model price and market mid quote, per unit of underlying.
    spot, strike, t, rate, div, call : array_like
        The options, in the conventions of :mod:`v28quant.options.black_scholes`.
    model_stderr : array_like, optional
        Standard error of a simulated model price; omit for an exact price.

    Returns
    -------
    Mispricing
    """
    model = np.asarray(model_price, dtype=np.float64)
    mid = np.asarray(market_mid, dtype=np.float64)
    edge = model - mid
    model_vol = np.asarray(implied_vol(model, spot, strike, t, rate, div, call))
    market_vol = np.asarray(implied_vol(mid, spot, strike, t, rate, div, call))
    if model_stderr is None:
        z = np.full(np.shape(edge), np.nan)
    else:
        se = np.asarray(model_stderr, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, edge / se, np.nan)

    def out(a: ArrayLike) -> Any:
        arr = np.asarray(a, dtype=np.float64)
        return float(arr) if arr.ndim == 0 else arr

    return Mispricing(
        out(model),
        out(mid),
        out(edge),
        out(model_vol),
        out(market_vol),
        out(100.0 * (model_vol - market_vol)),
        out(z),
    )
