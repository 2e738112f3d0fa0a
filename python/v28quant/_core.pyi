"""
v28quant compiled quant core (C++20, Eigen); see the typed faces in v28quant.*
"""
from __future__ import annotations
import numpy
import numpy.typing
import typing
__all__: list[str] = ['bsm_greeks', 'bsm_price']
def bsm_greeks(spot: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], vol: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8]) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
    """
    Black-Scholes-Merton price and Greeks (price, delta, gamma, vega per 1.00 vol, theta per year, rho per 1.00 rate) as a tuple of arrays.
    """
def bsm_price(spot: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], strike: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], rate: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], div: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], vol: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], call: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8]) -> numpy.typing.NDArray[numpy.float64]:
    """
    Black-Scholes-Merton price per unit of underlying. Flat float64 arrays of one length; t in years, rate/div continuously compounded, vol annualised; call is 1 (call) or 0 (put).
    """
