"""Sharpe ratio statistics that account for non-normality, track length and selection bias.

Shared by the backtest report and the optimisation layer, which both import it.

All Sharpe ratios here are per observation (not annualised) unless a name says ``annual``;
annualise by multiplying by ``sqrt(periods_per_year)``.

References
----------
D. H. Bailey, M. López de Prado (2012), "The Sharpe Ratio Efficient Frontier", Journal of Risk
15(2): the probabilistic Sharpe ratio (PSR), eq. (11).
D. H. Bailey, M. López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection
Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 94-107:
the expected maximum Sharpe ratio of N trials (their eq. 5) and the DSR (their eq. 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

#: Euler-Mascheroni constant (Bailey & López de Prado 2014, eq. 5).
EULER_GAMMA = 0.5772156649015329
TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class ReturnMoments:
    """Sharpe ratio and shape of one return series.

    Attributes
    ----------
    sharpe : float
        Mean over standard deviation (ddof=1), per observation.
    skew : float
        Sample skewness (gamma_3).
    kurtosis : float
        Sample kurtosis, *not* excess (gamma_4; 3 for a normal law).
    n : int
        Number of observations.
    """

    sharpe: float
    skew: float
    kurtosis: float
    n: int


def moments(returns: ArrayLike) -> ReturnMoments:
    """Sharpe ratio, skewness and (non-excess) kurtosis of a return series.

    Raises
    ------
    ValueError
        Fewer than 3 finite returns, a NaN, or zero variance.
    """
    r = np.asarray(returns, dtype=np.float64).ravel()
    if r.size < 3:
        raise ValueError(f"returns: need at least 3 observations, got {r.size}")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"returns: {int((~np.isfinite(r)).sum())} non-finite values")
    sd = float(r.std(ddof=1))
    if sd == 0.0:
        raise ValueError("returns: zero variance, the Sharpe ratio is undefined")
    return ReturnMoments(
        sharpe=float(r.mean()) / sd,
        skew=float(stats.skew(r, bias=False)),
        kurtosis=float(stats.kurtosis(r, fisher=False, bias=False)),
        n=int(r.size),
    )


def sharpe_ratio(returns: ArrayLike, periods_per_year: int = TRADING_DAYS) -> float:
    """Annualised Sharpe ratio ``mean / sd * sqrt(periods_per_year)``; 0.0 for a flat series."""
    r = np.asarray(returns, dtype=np.float64).ravel()
    if r.size < 2 or float(r.std(ddof=1)) == 0.0:
        return 0.0
    return float(r.mean() / r.std(ddof=1) * math.sqrt(periods_per_year))


def sharpe_std(sharpe: float, n: int, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Return the standard error of a per-observation Sharpe ratio (Mertens 2002).

    ``sqrt((1 - skew * SR + (kurtosis - 1) / 4 * SR**2) / (n - 1))``.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if var <= 0.0:
        raise ValueError(
            f"skew={skew}, kurtosis={kurtosis} with SR={sharpe} give a non-positive variance"
        )
    return math.sqrt(var / (n - 1))


def probabilistic_sharpe(
    sharpe: float, n: int, benchmark: float = 0.0, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """PSR: probability that the true Sharpe ratio exceeds ``benchmark`` (per observation).

    ``Z[(SR - SR*) sqrt(n - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2)]``
    (Bailey & López de Prado 2012, eq. 11).
    """
    return float(stats.norm.cdf((sharpe - benchmark) / sharpe_std(sharpe, n, skew, kurtosis)))


def expected_max_sharpe(n_trials: int, variance: float, mean: float = 0.0) -> float:
    """Return the expected maximum of ``n_trials`` Sharpe estimates with cross-trial ``variance``.

    ``mean + sqrt(V) ((1 - g) Z^-1[1 - 1/N] + g Z^-1[1 - 1/(N e)])``, g the Euler-Mascheroni
    constant (Bailey & López de Prado 2014, eq. 5). Zero excess for a single trial.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if variance < 0.0 or not math.isfinite(variance):
        raise ValueError(f"variance must be finite and >= 0, got {variance}")
    if n_trials == 1:
        return mean
    z = stats.norm.ppf
    spread = (1.0 - EULER_GAMMA) * z(1.0 - 1.0 / n_trials) + EULER_GAMMA * z(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return mean + math.sqrt(variance) * float(spread)


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of a selected strategy and what went into it.

    Attributes
    ----------
    dsr : float
        Probability that the selected strategy's true Sharpe ratio exceeds ``benchmark``.
    sharpe : float
        Observed Sharpe ratio, per observation.
    benchmark : float
        Expected maximum Sharpe ratio of ``n_trials`` skill-less trials, per observation.
    n_trials : int
        Number of trials actually run.
    trial_variance : float
        Variance of the trials' Sharpe ratios, per observation squared.
    n : int
        Observations in the selected strategy's track record.
    skew, kurtosis : float
        Shape of the selected strategy's returns.
    """

    dsr: float
    sharpe: float
    benchmark: float
    n_trials: int
    trial_variance: float
    n: int
    skew: float
    kurtosis: float


def deflated_sharpe(
    sharpe: float,
    n: int,
    n_trials: int,
    trial_variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> DeflatedSharpe:
    """Deflated Sharpe ratio (Bailey & López de Prado 2014, eq. 6).

    The PSR of the selected strategy against the expected maximum Sharpe ratio of ``n_trials``
    trials whose Sharpe ratios have variance ``trial_variance`` (all per observation).
    """
    sr0 = expected_max_sharpe(n_trials, trial_variance)
    return DeflatedSharpe(
        dsr=probabilistic_sharpe(sharpe, n, sr0, skew, kurtosis),
        sharpe=sharpe,
        benchmark=sr0,
        n_trials=n_trials,
        trial_variance=trial_variance,
        n=n,
        skew=skew,
        kurtosis=kurtosis,
    )


def _flat(returns: ArrayLike) -> ReturnMoments | None:
    """Return the moments of 3 or more returns all zero (nothing traded); None otherwise.

    A constant non-zero series stays an error in ``moments``: its Sharpe ratio is not 0.
    """
    r = np.asarray(returns, dtype=np.float64).ravel()
    if r.size < 3 or np.any(r != 0.0):
        return None
    return ReturnMoments(sharpe=0.0, skew=0.0, kurtosis=3.0, n=int(r.size))


def deflated_sharpe_of(
    returns: ArrayLike, trial_sharpes: ArrayLike, n_trials: int | None = None
) -> DeflatedSharpe:
    """DSR of a selected return series given the per-observation Sharpe ratios of all trials.

    ``n_trials`` defaults to the number of trial Sharpe ratios; pass it when more trials ran
    than have a Sharpe ratio (e.g. pruned trials count as tried). Returns all zero (a set that
    never traded) have a Sharpe ratio of 0 and a normal's shape: it fails, it is no error.
    """
    m = _flat(returns) or moments(returns)
    srs = np.asarray(trial_sharpes, dtype=np.float64).ravel()
    srs = srs[np.isfinite(srs)]
    n_tr = int(n_trials) if n_trials is not None else int(srs.size)
    var = float(srs.var(ddof=1)) if srs.size >= 2 else 0.0
    return deflated_sharpe(m.sharpe, m.n, max(n_tr, 1), var, m.skew, m.kurtosis)
