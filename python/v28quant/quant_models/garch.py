"""GARCH(1,1) volatility model with a constant mean, fitted by maximum likelihood (compiled core).

Model (Bollerslev 1986)::

    r_t = mu + e_t,   e_t = sqrt(h_t) z_t,   h_t = omega + alpha e_{t-1}^2 + beta h_{t-1}

with ``z_t`` standard normal (``dist="normal"``) or a Student t with ``nu > 2`` degrees of
freedom scaled to unit variance (``dist="t"``, Bollerslev 1987). Constraints ``omega > 0``,
``alpha, beta >= 0``, ``alpha + beta < 1`` hold by construction (smooth reparametrisation); the
log-likelihood is maximised by a trust-region Newton method with the exact analytic gradient and
Hessian (recursions for the derivatives of ``h_t``, Fiorentini, Calzolari & Panattoni 1996).

Units and scale
---------------
Returns may be in any unit (fractions, percent, basis points): ``mu`` comes back in return units,
``omega`` and every variance in return units squared, volatilities in return units. Internally the
series is standardised (centred on its sample mean, divided by its standard deviation) so the
optimiser sees numbers of order one whatever the unit; parameters, log-likelihood and standard
errors are mapped back exactly, so a fit of ``100 * r`` gives ``100 * mu``, ``1e4 * omega`` and
the same ``alpha``, ``beta``, with the log-likelihood shifted by ``-T log 100``.

Presample variance
------------------
``h_1 = omega + (alpha + beta) h_0`` (the presample squared residual and variance both equal
``h_0``):

* ``backcast="mean"`` (default): ``h_0`` is the mean squared residual at the current ``mu``, the
  convention of the Fiorentini-Calzolari-Panattoni GARCH benchmark (TSP's ``HINIT=SSR/T``); a fit
  of the Bollerslev-Ghysels DEM/GBP series reproduces the published benchmark estimates.
* ``backcast="arch"``: the ``arch`` package's backcast, the exponentially weighted mean square
  (weights ``0.94**i``, the first ``min(75, T)`` residuals at the sample mean), held fixed.
* a positive float: that ``h_0`` (return units squared), held fixed.

References
----------
T. Bollerslev (1986), "Generalized autoregressive conditional heteroskedasticity",
J. Econometrics 31(3), 307-327.
T. Bollerslev (1987), "A conditionally heteroskedastic time series model for speculative prices
and rates of return", Rev. Econ. Stat. 69(3), 542-547.
T. Bollerslev, J. M. Wooldridge (1992), "Quasi-maximum likelihood estimation and inference in
dynamic models with time-varying covariances", Econometric Reviews 11(2), 143-172.
G. Fiorentini, G. Calzolari, L. Panattoni (1996), "Analytic derivatives and the computation of
GARCH estimates", J. Applied Econometrics 11(4), 399-417.
B. D. McCullough, C. G. Renfro (1999), "Benchmarks and software standards: a case study of GARCH
procedures", J. Economic and Social Measurement 25, 59-71.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from v28quant import _core
from v28quant._arrays import broadcast_flat, shape_out
from v28quant._typing import FloatArray

if TYPE_CHECKING:
    import pandas as pd

#: The fewest returns :func:`fit` accepts (five parameters need a long series to be identified).
MIN_OBSERVATIONS = 100

_DISTS = ("normal", "t")
_PRESAMPLE_CODES = {"mean": 0, "arch": 1}


@dataclass(frozen=True)
class GarchResult:
    """A fitted GARCH(1,1) model.

    Attributes
    ----------
    mu, omega, alpha, beta : float
        Constant mean (return units), variance intercept (return units squared), ARCH and GARCH
        coefficients.
    nu : float or None
        Student t degrees of freedom (``dist="t"``), else None.
    loglik : float
        Maximised log-likelihood, constants included (comparable with ``arch``).
    converged : bool
        The optimiser met its gradient tolerance.
    iterations : int
        Newton steps taken.
    nobs : int
        Number of returns.
    dist : str
        ``"normal"`` or ``"t"``.
    param_names : tuple of str
        ``("mu", "omega", "alpha", "beta"[, "nu"])``, the order of ``params``, ``std_err`` and
        ``cov_robust``.
    params : ndarray
        The estimates in that order.
    cov_robust : ndarray
        Bollerslev-Wooldridge robust (sandwich) covariance of ``params``; NaN when the Hessian is
        singular (a parameter on its boundary, e.g. ``alpha + beta -> 1``).
    conditional_variance : ndarray
        In-sample conditional variances ``h_1 .. h_T`` (return units squared).
    next_variance : float
        One-step forecast ``h_{T+1}``.
    presample_variance : float
        ``h_0`` used at the estimates.
    """

    mu: float
    omega: float
    alpha: float
    beta: float
    nu: float | None
    loglik: float
    converged: bool
    iterations: int
    nobs: int
    dist: str
    param_names: tuple[str, ...]
    params: NDArray[np.float64]
    cov_robust: NDArray[np.float64]
    conditional_variance: NDArray[np.float64]
    next_variance: float
    presample_variance: float

    @property
    def std_err(self) -> NDArray[np.float64]:
        """Robust (Bollerslev-Wooldridge) standard errors of ``params``."""
        return np.sqrt(np.diag(self.cov_robust))

    @property
    def aic(self) -> float:
        """Akaike information criterion ``2 k - 2 loglik``."""
        return 2.0 * len(self.params) - 2.0 * self.loglik

    @property
    def bic(self) -> float:
        """Schwarz criterion ``k log T - 2 loglik``."""
        return len(self.params) * math.log(self.nobs) - 2.0 * self.loglik

    @property
    def persistence(self) -> float:
        """``alpha + beta``: the decay per period of a variance shock."""
        return self.alpha + self.beta

    @property
    def unconditional_variance(self) -> float:
        """Long-run variance ``omega / (1 - alpha - beta)`` (return units squared)."""
        return self.omega / (1.0 - self.persistence)

    @property
    def half_life(self) -> float:
        """Periods for a variance shock to halve: ``log(0.5) / log(alpha + beta)``."""
        return math.log(0.5) / math.log(self.persistence)

    def forecast(self, horizon: int) -> NDArray[np.float64]:
        """Conditional variance forecasts ``E_T[h_{T+k}]`` for ``k = 1 .. horizon``.

        Closed form: ``sigma2 + (alpha + beta)**(k-1) * (h_{T+1} - sigma2)`` with
        ``sigma2 = omega / (1 - alpha - beta)``. Return units squared, one value per period.
        """
        h = int(horizon)
        if h != horizon or h < 1:
            raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
        return _core.garch_forecast(self.omega, self.alpha, self.beta, self.next_variance, h)

    @overload
    def vol_term_structure(self, horizons_days: float, periods_per_year: float = ...) -> float: ...

    @overload
    def vol_term_structure(
        self, horizons_days: ArrayLike, periods_per_year: float = ...
    ) -> FloatArray: ...

    def vol_term_structure(
        self, horizons_days: ArrayLike, periods_per_year: float = 252.0
    ) -> float | FloatArray:
        """Annualised volatility expected over the next ``horizons_days`` periods.

        ``sqrt(periods_per_year / H * sum_{k=1..H} E_T[h_{T+k}])``, the volatility to use for an
        option or a position held ``H`` periods (trading days for daily returns), in return units
        per year (percent returns give percent volatility). The sum has the closed form
        ``H sigma2 + (h_{T+1} - sigma2) (1 - phi**H) / (1 - phi)``, ``phi = alpha + beta``, which
        also defines fractional horizons (e.g. ``H = t_years * periods_per_year``).

        Parameters
        ----------
        horizons_days : array_like
            Holding periods ``H > 0`` in periods of the fitted returns (trading days for daily
            returns).
        periods_per_year : float
            Periods per year (252 trading days for daily returns).

        Returns
        -------
        float or ndarray
            A float for a scalar horizon, else an array of the horizons' shape.
        """
        if not (periods_per_year > 0 and math.isfinite(periods_per_year)):
            raise ValueError(f"periods_per_year must be > 0, got {periods_per_year!r}")
        (h,), shape, scalar = broadcast_flat(("horizons_days",), horizons_days)
        bad = ~(h > 0) | ~np.isfinite(h)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"horizons_days must be > 0 and finite, got {h[i]!r} at index {i}")
        phi = self.persistence
        sigma2 = self.unconditional_variance
        # sum_{k<H} phi^k = (1 - phi^H) / (1 - phi), with expm1 for accuracy when phi -> 1.
        geometric = -np.expm1(h * math.log(phi)) / (1.0 - phi)
        total = h * sigma2 + (self.next_variance - sigma2) * geometric
        return shape_out(np.sqrt(periods_per_year * total / h), shape, scalar)


def _as_returns(returns: ArrayLike) -> NDArray[np.float64]:
    """Return validated contiguous float64 returns from a pandas Series, 1-column frame or array."""
    values = getattr(returns, "to_numpy", None)
    arr = np.asarray(values() if callable(values) else returns, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {arr.shape}")
    n = arr.shape[0]
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"returns contains {int(bad.sum())} NaN or infinite values (first at position "
            f"{int(np.argmax(bad))}); drop or fill them before fitting"
        )
    if n < MIN_OBSERVATIONS:
        raise ValueError(
            f"returns must have at least {MIN_OBSERVATIONS} observations for a GARCH(1,1) fit, "
            f"got {n}"
        )
    if np.ptp(arr) == 0.0:
        raise ValueError(f"returns is constant (every value is {arr[0]!r}); GARCH needs variation")
    return np.ascontiguousarray(arr)


def _presample(backcast: str | float) -> tuple[int, float]:
    """Binding code and value of a ``backcast`` argument."""
    if isinstance(backcast, str):
        if backcast not in _PRESAMPLE_CODES:
            raise ValueError(
                f"backcast must be 'mean', 'arch' or a positive float, got {backcast!r}"
            )
        return _PRESAMPLE_CODES[backcast], 0.0
    value = float(backcast)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"backcast must be 'mean', 'arch' or a positive float, got {backcast!r}")
    return 2, value


def loglik(
    returns: ArrayLike,
    params: ArrayLike,
    dist: Literal["normal", "t"] = "normal",
    *,
    backcast: Literal["mean", "arch"] | float = "mean",
) -> float:
    """Log-likelihood of ``returns`` at ``params = (mu, omega, alpha, beta[, nu])``.

    Same model, units and presample conventions as :func:`fit` (constants included). Raises
    ``ValueError`` for bad returns (as :func:`fit`), ``omega <= 0``, negative ``alpha`` or
    ``beta``, or ``nu <= 2``.
    """
    if dist not in _DISTS:
        raise ValueError(f"dist must be 'normal' or 't', got {dist!r}")
    p = np.asarray(params, dtype=np.float64).ravel()
    need = 5 if dist == "t" else 4
    if p.shape[0] != need:
        raise ValueError(f"params must have {need} values for dist={dist!r}, got {p.shape[0]}")
    code, value = _presample(backcast)
    r = _as_returns(returns)
    nu = float(p[4]) if dist == "t" else 0.0
    mu, omega, alpha, beta = (float(v) for v in p[:4])
    ll, _ = _core.garch_loglik(r, mu, omega, alpha, beta, nu, dist == "t", code, value)
    return float(ll)


def fit(
    returns: ArrayLike,
    dist: Literal["normal", "t"] = "normal",
    *,
    backcast: Literal["mean", "arch"] | float = "mean",
    max_iter: int = 200,
    tol: float = 1e-9,
) -> GarchResult:
    """Fit a GARCH(1,1) with constant mean by maximum likelihood.

    Parameters
    ----------
    returns : array_like or pandas.Series
        Periodic (e.g. daily) returns in any unit, at least :data:`MIN_OBSERVATIONS` values, no
        NaN, not constant.
    dist : {"normal", "t"}
        Innovation distribution: standard normal or standardised Student t (``nu > 2``).
    backcast : {"mean", "arch"} or float
        Presample variance ``h_0``: ``"mean"`` the mean squared residual at the current mean (FCP
        benchmark convention), ``"arch"`` the ``arch`` package's EWMA backcast, or a positive
        value in return units squared. See the module docstring.
    max_iter : int
        Most Newton steps.
    tol : float
        Convergence tolerance on the gradient of ``-loglik / T`` in the optimiser's coordinates.

    Returns
    -------
    GarchResult
        Estimates, log-likelihood, robust standard errors, conditional variances and forecasts.

    Raises
    ------
    ValueError
        Too few observations, NaN or infinite values, a constant series, an unknown ``dist`` or
        ``backcast``, or a non-positive backcast value.
    """
    if dist not in _DISTS:
        raise ValueError(f"dist must be 'normal' or 't', got {dist!r}")
    code, value = _presample(backcast)
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter!r}")
    if not (tol > 0):
        raise ValueError(f"tol must be > 0, got {tol!r}")
    r = _as_returns(returns)
    student = dist == "t"
    out = _core.garch_fit(r, student, code, value, int(max_iter), float(tol))
    params = out["params"]
    variance = out["variance"]
    names = ("mu", "omega", "alpha", "beta", "nu") if student else ("mu", "omega", "alpha", "beta")
    return GarchResult(
        mu=float(params[0]),
        omega=float(params[1]),
        alpha=float(params[2]),
        beta=float(params[3]),
        nu=float(params[4]) if student else None,
        loglik=float(out["loglik"]),
        converged=bool(out["converged"]),
        iterations=int(out["iterations"]),
        nobs=int(r.shape[0]),
        dist=dist,
        param_names=names,
        params=params,
        cov_robust=out["cov_robust"],
        conditional_variance=variance[:-1],
        next_variance=float(variance[-1]),
        presample_variance=float(out["presample_variance"]),
    )


def filter_variance(
    returns: ArrayLike, mu: float, omega: float, alpha: float, beta: float, h1: float
) -> NDArray[np.float64]:
    """Conditional variances ``h_2 .. h_{T+1}`` of ``returns`` under fixed parameters.

    ``h_{t+1} = omega + alpha (r_t - mu)^2 + beta h_t`` started from ``h_1`` (the variance of the
    first return, known before it). Element ``t`` (0-based) is the forecast made with
    ``returns[:t + 1]``, so the output never uses a return after its own position.
    """
    r = np.asarray(returns, dtype=np.float64).ravel()
    if not (omega > 0 and alpha >= 0 and beta >= 0 and h1 > 0):
        raise ValueError(
            f"need omega > 0, alpha >= 0, beta >= 0, h1 > 0; got {omega}, {alpha}, {beta}, {h1}"
        )
    # h_{t+1} - beta h_t = omega + alpha e_t^2 is a first-order linear recursion: an IIR filter.
    from scipy.signal import lfilter

    drive = omega + alpha * (r - mu) ** 2
    out, _ = lfilter([1.0], [1.0, -beta], drive, zi=[beta * h1])
    return np.asarray(out, dtype=np.float64)


def causal_vol(
    returns: Any,
    *,
    refit_every: int = 63,
    min_obs: int = 252,
    periods_per_year: float = 252.0,
    dist: Literal["normal", "t"] = "normal",
) -> pd.Series | FloatArray:
    """Annualised one-step GARCH(1,1) volatility forecasts with no look-ahead.

    The model is refitted on all returns up to each refit point (every ``refit_every``
    observations once ``min_obs`` are available) and its variance filtered forward with those
    parameters until the next refit. The value at position ``t`` is ``sqrt(252 h_{t+1})`` from
    returns up to and including ``t``; positions before ``min_obs - 1`` are NaN. Refit points are
    counted from the start of the series, so truncating the input never changes earlier values.

    Parameters
    ----------
    returns : pandas.Series or array_like
        Periodic returns, oldest first, no NaN.
    refit_every, min_obs : int
        Refit spacing and the first fit's sample size (observations; ``min_obs >= 100``).
    periods_per_year : float
        Annualisation factor for the volatility.

    Returns
    -------
    Series (same index) for a Series input, else ndarray.
    """
    if refit_every < 1:
        raise ValueError(f"refit_every must be >= 1, got {refit_every}")
    if min_obs < MIN_OBSERVATIONS:
        raise ValueError(f"min_obs must be >= {MIN_OBSERVATIONS}, got {min_obs}")
    index = getattr(returns, "index", None)
    r = np.asarray(returns, dtype=np.float64).ravel()
    if not np.isfinite(r).all():
        raise ValueError("returns contain NaN or infinite values")
    var = np.full(r.shape[0], np.nan)
    for start in range(min_obs, r.shape[0] + 1, refit_every):
        res = fit(r[:start], dist=dist)
        stop = min(start + refit_every, r.shape[0] + 1)
        # Forecasts from the refit point on: h_{start+1} is known at start-1; then filter.
        seg = r[start : stop - 1]
        var[start - 1] = res.next_variance
        if seg.size:
            var[start : stop - 1] = filter_variance(
                seg, res.mu, res.omega, res.alpha, res.beta, res.next_variance
            )
    vol = np.sqrt(var * periods_per_year)
    if index is not None:
        import pandas as pd

        return pd.Series(vol, index=index, name="garch_vol")
    return vol
