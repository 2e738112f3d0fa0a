"""Monte Carlo option pricing with variance reduction (compiled core).

European and arithmetic-average Asian options under geometric Brownian motion, simulated by the
exact log step, with antithetic variates and control variates (the discounted terminal spot for
Europeans; the closed-form discretely monitored geometric Asian for the arithmetic Asian).
Heston (Andersen QE) and Merton jump-diffusion simulations serve as independent checks of the
transform and series prices.

Randomness is Philox4x32-10 keyed by ``seed``; the counter names the path, so a seed gives the
same result bit for bit whatever ``threads`` is.

Conventions: ``spot`` and ``strike`` per unit of underlying, ``t`` in years, ``rate`` and ``div``
continuously compounded, ``vol`` annualised, ``call`` True for a call. Monte Carlo functions
take scalars (one option per call).

References
----------
P. Glasserman (2004), "Monte Carlo Methods in Financial Engineering", Springer, 3.2, 4.1, 4.2.
A. Kemna, A. Vorst (1990), "A pricing method for options based on average asset values",
J. Banking Finance 14.
L. Andersen (2008), "Simple and efficient simulation of the Heston stochastic volatility model",
J. Comput. Finance 11(3).
J. K. Salmon et al. (2011), "Parallel random numbers: as easy as 1, 2, 3", SC'11.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from v28quant import _core
from v28quant.options import black_scholes
from v28quant.quant_models.mispricing import Mispricing, mispricing

__all__ = [
    "MCResult",
    "Mispricing",
    "asian",
    "european",
    "geometric_asian",
    "heston_european",
    "merton_european",
    "mispricing",
]


@dataclass(frozen=True)
class MCResult:
    """A Monte Carlo price.

    Attributes
    ----------
    price : float
        Discounted price estimate per unit of underlying.
    stderr : float
        Its standard error.
    paths : int
        Payoff evaluations (an antithetic pair counts as two).
    plain_stderr : float
        Standard error plain Monte Carlo would have with the same number of paths, estimated from
        the same simulated payoffs.
    variance_reduction : float
        ``(plain_stderr / stderr) ** 2``: how many times fewer paths the variance reduction needs.
    """

    price: float
    stderr: float
    paths: int
    plain_stderr: float
    variance_reduction: float


def _result(raw: tuple[float, float, float, float, int]) -> MCResult:
    price, se, plain_se, vr, paths = raw
    return MCResult(float(price), float(se), int(paths), float(plain_se), float(vr))


def _threads(threads: int | None) -> int:
    if threads is None:
        return 0
    return _count("threads", threads, 1)


# Widths of the compiled arguments: paths and seed uint64, steps int32, threads uint32.
_LIMITS = {"paths": 2**64 - 1, "seed": 2**64 - 1, "steps": 2**31 - 1, "threads": 2**32 - 1}


def _count(name: str, value: int, minimum: int) -> int:
    """``value`` as an int in [minimum, its compiled limit], else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    n, maximum = int(value), _LIMITS[name]
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    if n > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {n}")
    return n


def european(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    call: bool = True,
    paths: int = 100_000,
    seed: int = 0,
    antithetic: bool = True,
    control_variate: bool = True,
    threads: int | None = None,
) -> MCResult:
    """European option under GBM by Monte Carlo (one exact log step per path).

    Parameters
    ----------
    spot, strike : float
        Per unit of underlying, > 0.
    t : float
        Years to expiry, > 0.
    rate, div : float
        Continuously compounded rate and dividend yield per year.
    vol : float
        Annualised volatility, > 0.
    call : bool
        True for a call, False for a put.
    paths : int
        Payoff evaluations (rounded up to even with ``antithetic``).
    seed : int
        Philox key; the same seed gives the same result for any ``threads``.
    antithetic : bool
        Pair each normal draw Z with -Z.
    control_variate : bool
        Use the discounted terminal spot (mean ``spot * exp(-div t)``) as control.
    threads : int or None
        Worker threads; None uses every core.
    """
    return _result(
        _core.mc_european(
            spot,
            strike,
            t,
            rate,
            div,
            vol,
            bool(call),
            _count("paths", paths, 4),
            _count("seed", seed, 0),
            bool(antithetic),
            bool(control_variate),
            _threads(threads),
        )
    )


def asian(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    call: bool = True,
    steps: int = 252,
    paths: int = 100_000,
    seed: int = 0,
    antithetic: bool = True,
    control_variate: bool = True,
    threads: int | None = None,
) -> MCResult:
    """Arithmetic-average Asian option under GBM by Monte Carlo.

    The average is over S at the ``steps`` monitoring dates ``t_i = i t / steps``, i = 1..steps.
    The control variate is the geometric-average Asian on the same dates, whose price is known in
    closed form (Kemna-Vorst); see :func:`geometric_asian`. Other arguments as in
    :func:`european`.
    """
    return _result(
        _core.mc_asian(
            spot,
            strike,
            t,
            rate,
            div,
            vol,
            bool(call),
            _count("steps", steps, 1),
            _count("paths", paths, 4),
            _count("seed", seed, 0),
            bool(antithetic),
            bool(control_variate),
            _threads(threads),
        )
    )


def geometric_asian(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    call: bool = True,
    steps: int = 252,
) -> float:
    """Closed-form price of the discretely monitored geometric-average Asian option.

    ln G is normal with mean ``ln S + (rate - div - vol^2/2) t (n+1)/(2n)`` and variance
    ``vol^2 t (n+1)(2n+1)/(6 n^2)`` for n = ``steps`` dates (Glasserman eq. 4.12-4.13).
    """
    n = _count("steps", steps, 1)
    return float(_core.mc_geometric_asian(spot, strike, t, rate, div, vol, bool(call), n))


def heston_european(
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
    call: bool = True,
    steps: int = 100,
    paths: int = 100_000,
    seed: int = 0,
    control_variate: bool = True,
    threads: int | None = None,
) -> MCResult:
    """Heston European option by Andersen's QE scheme (psi_c = 1.5, martingale-corrected).

    ``v0``, ``theta`` variances per year; ``sigma`` vol of variance; ``steps`` time steps over
    ``t``. Control variate: the discounted terminal spot. A check of :mod:`heston_model`.
    """
    return _result(
        _core.mc_heston_european(
            spot,
            strike,
            t,
            rate,
            div,
            v0,
            kappa,
            theta,
            sigma,
            rho,
            bool(call),
            _count("steps", steps, 1),
            _count("paths", paths, 4),
            _count("seed", seed, 0),
            bool(control_variate),
            _threads(threads),
        )
    )


def merton_european(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    lam: float,
    mu_j: float,
    delta_j: float,
    call: bool = True,
    paths: int = 100_000,
    seed: int = 0,
    antithetic: bool = True,
    control_variate: bool = True,
    threads: int | None = None,
) -> MCResult:
    """Merton jump-diffusion European option, simulated exactly at ``t``.

    ``lam`` jumps per year; ``mu_j``, ``delta_j`` mean and s.d. of the log jump. A check of
    :mod:`merton_jump_diffusion`.
    """
    return _result(
        _core.mc_merton_european(
            spot,
            strike,
            t,
            rate,
            div,
            vol,
            lam,
            mu_j,
            delta_j,
            bool(call),
            _count("paths", paths, 4),
            _count("seed", seed, 0),
            bool(antithetic),
            bool(control_variate),
            _threads(threads),
        )
    )


def __getattr__(name: str) -> Any:
    # Its NaN-for-no-vol rule is black_scholes.implied_vol's for scalars and arrays alike.
    if name == "implied_vol":
        warnings.warn(
            "v28quant.quant_models.monte_carlo_pricer.implied_vol is deprecated; use "
            "v28quant.options.black_scholes.implied_vol",
            DeprecationWarning,
            stacklevel=2,
        )
        return black_scholes.implied_vol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
