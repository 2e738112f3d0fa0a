"""Dupire local volatility (compiled core).

Computed from an SVI surface or from call prices, and a local-volatility Monte Carlo that reprices
vanillas.

References
----------
B. Dupire (1994), "Pricing with a Smile", Risk 7(1), 18-20.
J. Gatheral (2006), "The Volatility Surface: A Practitioner's Guide", Wiley, eq. 1.10:
``sigma_loc^2 = (dw/dT) / (1 - y/w w_y + 1/4 (-1/4 - 1/w + y^2/w^2) w_y^2 + 1/2 w_yy)`` with
``w(y, T)`` the total implied variance at ``y = ln(K / F_T)``.
"""

from __future__ import annotations

import os
from typing import Any, Generic, NamedTuple, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from v28quant import _core
from v28quant._arrays import broadcast_flat, shape_out
from v28quant._typing import FloatArray
from v28quant.options.surface import SviSurface

T = TypeVar("T", float, FloatArray)


class MCPrice(NamedTuple, Generic[T]):
    """Undiscounted Monte Carlo prices and their standard errors (same shape)."""

    price: T
    stderr: T


@overload
def local_vol(surface: SviSurface, t: float, strike: float) -> float: ...


@overload
def local_vol(surface: SviSurface, t: ArrayLike, strike: ArrayLike) -> FloatArray: ...


def local_vol(surface: SviSurface, t: ArrayLike, strike: ArrayLike) -> float | FloatArray:
    """Local volatility ``sigma_loc(t, K)`` of an SVI surface by Gatheral's formula.

    Analytic SVI derivatives in ``y`` and the surface's linear-in-``t`` interpolation (``dw/dT``
    is the right derivative at the slice times). ``t`` (years, >= 0) and ``strike`` broadcast,
    so ``local_vol(s, t[:, None], k[None, :])`` gives a (t, K) grid in one call. NaN where the
    surface has butterfly or calendar arbitrage.
    """
    flat, shape, scalar = broadcast_flat(("t", "strike"), t, strike)
    return shape_out(_core.dupire_local_vol_svi(*surface._args(), *flat), shape, scalar)


def local_vol_from_prices(
    t: ArrayLike, strike: ArrayLike, calls: ArrayLike, rate: float = 0.0, div: float = 0.0
) -> NDArray[np.float64]:
    """Dupire local vol from a grid of discounted call prices by finite differences.

    ``sigma^2 = (C_T + (r - q) K C_K + q C) / (K^2 C_KK / 2)`` with three-point differences on
    the (possibly non-uniform) grid; one-sided, first-order at the grid edges.

    Parameters
    ----------
    t : array_like, shape (n_t,)
        Strictly increasing maturities (years).
    strike : array_like, shape (n_k,)
        Strictly increasing strikes.
    calls : array_like, shape (n_t, n_k)
        Discounted call prices.
    rate, div : float
        Constant continuously compounded rate and dividend yield.

    Returns
    -------
    ndarray, shape (n_t, n_k)
        Local vol; NaN where the implied local variance is not positive.
    """
    tt = np.ascontiguousarray(t, dtype=np.float64).ravel()
    kk = np.ascontiguousarray(strike, dtype=np.float64).ravel()
    cc = np.ascontiguousarray(calls, dtype=np.float64)
    if cc.shape != (tt.size, kk.size):
        raise ValueError(
            f"calls must have shape (len(t), len(strike)) = {(tt.size, kk.size)}, got {cc.shape}"
        )
    out = _core.dupire_local_vol_prices(tt, kk, cc.ravel(), float(rate), float(div))
    return np.asarray(out).reshape(cc.shape)


@overload
def mc_price(
    surface: SviSurface,
    t: float,
    strike: float,
    call: bool = ...,
    paths: int = ...,
    steps_per_year: int = ...,
    seed: int = ...,
    threads: int | None = ...,
) -> MCPrice[float]: ...


@overload
def mc_price(
    surface: SviSurface,
    t: ArrayLike,
    strike: ArrayLike,
    call: ArrayLike = ...,
    paths: int = ...,
    steps_per_year: int = ...,
    seed: int = ...,
    threads: int | None = ...,
) -> MCPrice[FloatArray]: ...


def mc_price(
    surface: SviSurface,
    t: ArrayLike,
    strike: ArrayLike,
    call: ArrayLike = True,
    paths: int = 100_000,
    steps_per_year: int = 200,
    seed: int = 0,
    threads: int | None = None,
) -> MCPrice[Any]:
    """Undiscounted vanilla prices under the surface's local-vol dynamics by Monte Carlo.

    Simulates ``x = ln(S_t / F(t))`` with ``dx = -sigma_loc^2/2 dt + sigma_loc dW`` (Euler,
    ``steps_per_year`` steps per year and a grid point at every maturity, antithetic pairs)
    and returns ``E[(S_T - K)^+]`` (call) or ``E[(K - S_T)^+]`` (put) with standard errors;
    multiply by the discount factor for present values. Deterministic for a given ``seed``
    whatever ``threads`` (default: the CPU count, at most 8).
    """
    flat, shape, scalar = broadcast_flat(("t", "strike", "call"), t, strike, call)
    n_threads = threads if threads is not None else min(os.cpu_count() or 1, 8)
    price, err = _core.dupire_mc_price(
        *surface._args(),
        flat[0],
        flat[1],
        flat[2].astype(bool),
        int(paths),
        int(steps_per_year),
        int(seed),
        int(n_threads),
    )
    fields: list[Any] = [shape_out(price, shape, scalar), shape_out(err, shape, scalar)]
    return MCPrice(*fields)
