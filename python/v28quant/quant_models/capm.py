"""Capital Asset Pricing Model: beta by OLS, rolling beta, expected return and a universe screen.

The market model in excess returns (Sharpe 1964, Lintner 1965; Jensen 1968 for alpha)::

    R_i,t - rf_t = alpha_i + beta_i (R_m,t - rf_t) + e_i,t

estimated by ordinary least squares with classical (homoskedastic) standard errors, the
convention of statsmodels' ``OLS``. ``expected_return = rf + beta * (E[R_m] - rf)`` is the
security market line.

Units: returns are simple periodic returns as fractions (0.01 = 1 %), ``rf`` the risk-free return
per period in the same unit (a float or a series aligned by date). ``fit`` reports ``alpha`` per
period; ``screen`` annualises alpha and expected returns with ``periods_per_year``.

Inputs are aligned by date: pandas Series (or DataFrame columns) are joined on their index, and
only dates present in all inputs are used; plain arrays must have equal lengths. NaN values are an
error in :func:`fit` and :func:`rolling_beta` (say what you want done with them); :func:`screen`
uses each symbol's own non-missing dates, since listings start at different dates.

References
----------
W. F. Sharpe (1964), "Capital asset prices: a theory of market equilibrium under conditions of
risk", J. Finance 19(3). J. Lintner (1965), Rev. Econ. Stat. 47(1). M. C. Jensen (1968), "The
performance of mutual funds in the period 1945-1964", J. Finance 23(2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from v28quant._arrays import broadcast_flat, shape_out
from v28quant._typing import FloatArray

#: The fewest aligned observations :func:`fit` accepts by default.
MIN_OBSERVATIONS = 30


@dataclass(frozen=True)
class CapmFit:
    """OLS fit of the market model in excess returns.

    Attributes
    ----------
    alpha, beta : float
        Intercept (per period, return units) and slope.
    alpha_se, beta_se : float
        Classical OLS standard errors.
    r_squared : float
        Share of the asset's excess-return variance explained by the market.
    residual_vol : float
        Standard deviation of the residuals per period (``n - 2`` degrees of freedom).
    nobs : int
        Aligned observations used.
    market_mean : float
        Sample mean of the market return per period over the same dates.
    rf_mean : float
        Mean risk-free return per period over the same dates.
    """

    alpha: float
    beta: float
    alpha_se: float
    beta_se: float
    r_squared: float
    residual_vol: float
    nobs: int
    market_mean: float
    rf_mean: float

    @property
    def alpha_t(self) -> float:
        """T statistic of alpha."""
        return self.alpha / self.alpha_se

    @property
    def beta_t(self) -> float:
        """T statistic of beta (against zero)."""
        return self.beta / self.beta_se

    def expected_return(self, market_return: float | None = None, rf: float | None = None) -> float:
        """Security-market-line return per period, ``rf + beta (E[R_m] - rf)``.

        ``market_return`` and ``rf`` default to the sample means over the fitted dates.
        """
        m = self.market_mean if market_return is None else market_return
        r = self.rf_mean if rf is None else rf
        return float(expected_return(self.beta, m, r))


@overload
def expected_return(beta: float, market_return: float, rf: float = ...) -> float: ...


@overload
def expected_return(
    beta: ArrayLike, market_return: ArrayLike, rf: ArrayLike = ...
) -> FloatArray: ...


def expected_return(
    beta: ArrayLike, market_return: ArrayLike, rf: ArrayLike = 0.0
) -> float | FloatArray:
    """Security market line ``rf + beta * (market_return - rf)``.

    All arguments broadcast like numpy and share one unit (per period or per year); scalars in
    give a float out.
    """
    (b, m, r), shape, scalar = broadcast_flat(
        ("beta", "market_return", "rf"), beta, market_return, rf
    )
    return shape_out(r + b * (m - r), shape, scalar)


def _is_pandas(x: object) -> bool:
    return isinstance(x, (pd.Series, pd.DataFrame))


def _align(
    asset: ArrayLike | pd.Series, market: ArrayLike | pd.Series, rf: ArrayLike | pd.Series | float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], pd.Index | None]:
    """Aligned float arrays (asset, market, rf) and the common index (None for arrays)."""
    if _is_pandas(asset) or _is_pandas(market):
        if not (isinstance(asset, pd.Series) and isinstance(market, pd.Series)):
            raise ValueError(
                "asset and market must both be pandas Series (aligned by date) or both arrays"
            )
        for name, s in (("asset", asset), ("market", market)):
            if not s.index.is_unique:
                dup = s.index[s.index.duplicated()][0]
                raise ValueError(f"{name} has duplicate dates in its index (first: {dup})")
        frame = pd.concat({"asset": asset, "market": market}, axis=1, join="inner")
        if isinstance(rf, pd.Series):
            frame = frame.join(rf.rename("rf"), how="inner")
        elif np.ndim(rf) == 0:
            frame["rf"] = float(rf)  # type: ignore[arg-type]
        else:
            raise ValueError(
                "rf must be a float or a pandas Series when asset and market are Series"
            )
        if frame.empty:
            raise ValueError("asset and market (and rf) have no dates in common")
        values = frame.to_numpy(dtype=np.float64)
        return values[:, 0], values[:, 1], values[:, 2], frame.index
    a = np.asarray(asset, dtype=np.float64)
    m = np.asarray(market, dtype=np.float64)
    if a.ndim != 1 or m.ndim != 1:
        raise ValueError(f"asset and market must be one-dimensional, got {a.shape} and {m.shape}")
    if a.shape != m.shape:
        raise ValueError(
            f"asset and market have different lengths ({a.shape[0]} and {m.shape[0]}); pass pandas "
            "Series with a date index to align them by date"
        )
    r = np.broadcast_to(np.asarray(rf, dtype=np.float64), a.shape)
    if r.ndim != 1 or r.shape != a.shape:
        raise ValueError(f"rf must be a scalar or have the length of asset, got shape {r.shape}")
    return a, m, np.ascontiguousarray(r), None


@overload
def _constant_floor(x: FloatArray, n: int) -> float: ...


@overload
def _constant_floor(x: FloatArray, n: FloatArray) -> FloatArray: ...


def _constant_floor(x: FloatArray, n: int | FloatArray) -> float | FloatArray:
    """Sum of squared deviations below which a series counts as constant (rounding level).

    ``n`` is the number of observations behind the sum (one count per symbol for a panel).
    """
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    return n * (1e-12 * scale) ** 2


def _require_finite(values: NDArray[np.float64], name: str, index: pd.Index | None) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        where = f"date {index[first]}" if index is not None else f"position {first}"
        raise ValueError(
            f"{name} has {int(bad.sum())} NaN or infinite values after alignment (first at "
            f"{where}); drop or fill them first"
        )


def fit(
    asset: ArrayLike | pd.Series,
    market: ArrayLike | pd.Series,
    rf: ArrayLike | pd.Series | float = 0.0,
    *,
    min_obs: int = MIN_OBSERVATIONS,
) -> CapmFit:
    """OLS beta, alpha, R^2 and standard errors of ``asset`` against ``market``.

    Parameters
    ----------
    asset, market : pandas.Series or array_like
        Simple periodic returns (fractions). Series are aligned on their date index (inner join);
        arrays must have equal lengths.
    rf : float or pandas.Series or array_like
        Risk-free return per period (same unit), subtracted from both.
    min_obs : int
        Fewest aligned observations accepted (at least 3).

    Raises
    ------
    ValueError
        Misaligned arrays, no common dates, fewer than ``min_obs`` observations, NaN or infinite
        values, or a constant market series.
    """
    a, m, r, index = _align(asset, market, rf)
    n = a.shape[0]
    need = max(int(min_obs), 3)
    if n < need:
        raise ValueError(f"CAPM fit needs at least {need} aligned observations, got {n}")
    for name, v in (("asset", a), ("market", m), ("rf", r)):
        _require_finite(v, name, index)
    y = a - r
    x = m - r
    xm, ym = x.mean(), y.mean()
    dx, dy = x - xm, y - ym
    sxx = float(dx @ dx)
    if not sxx > _constant_floor(x, n):
        raise ValueError("market excess returns are constant; beta is undefined")
    beta = float(dx @ dy) / sxx
    alpha = float(ym - beta * xm)
    resid = dy - beta * dx
    sse = float(resid @ resid)
    syy = float(dy @ dy)
    s2 = sse / (n - 2)
    return CapmFit(
        alpha=alpha,
        beta=beta,
        alpha_se=math.sqrt(s2 * (1.0 / n + xm * xm / sxx)),
        beta_se=math.sqrt(s2 / sxx),
        r_squared=1.0 - sse / syy if syy > 0.0 else float("nan"),
        residual_vol=math.sqrt(s2),
        nobs=n,
        market_mean=float(m.mean()),
        rf_mean=float(r.mean()),
    )


def rolling_beta(
    asset: ArrayLike | pd.Series,
    market: ArrayLike | pd.Series,
    window: int,
    rf: ArrayLike | pd.Series | float = 0.0,
) -> pd.Series | NDArray[np.float64]:
    """OLS beta over a trailing window of ``window`` observations, ending at each date.

    Returns a Series on the aligned dates for Series input, an array otherwise; the first
    ``window - 1`` values are NaN. Vectorised with cumulative sums of the centred data.
    """
    a, m, r, index = _align(asset, market, rf)
    w = int(window)
    if w != window or w < 3:
        raise ValueError(f"window must be an integer >= 3, got {window!r}")
    n = a.shape[0]
    if n < w:
        raise ValueError(f"rolling beta needs at least window = {w} aligned observations, got {n}")
    for name, v in (("asset", a), ("market", m), ("rf", r)):
        _require_finite(v, name, index)
    # Centring on the full-sample means keeps the windowed sums free of cancellation.
    x = m - r
    y = a - r
    x = x - x.mean()
    y = y - y.mean()

    def window_sum(v: NDArray[np.float64]) -> NDArray[np.float64]:
        c = np.concatenate(([0.0], np.cumsum(v)))
        return c[w:] - c[:-w]

    sx, sy, sxx, sxy = window_sum(x), window_sum(y), window_sum(x * x), window_sum(x * y)
    var = sxx - sx * sx / w
    cov = sxy - sx * sy / w
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(var > 0.0, cov / var, np.nan)
    out = np.full(n, np.nan)
    out[w - 1 :] = beta
    if index is not None:
        return pd.Series(out, index=index, name="beta")
    return out


def screen(
    returns: pd.DataFrame,
    market: str | pd.Series = "SPY",
    rf: float | pd.Series = 0.0,
    *,
    periods_per_year: float = 252.0,
    market_return: float | None = None,
    min_obs: int = 60,
    sort_by: Literal["combined", "expected_return", "alpha"] = "combined",
) -> pd.DataFrame:
    """Rank a universe by CAPM expected return and alpha.

    Parameters
    ----------
    returns : pandas.DataFrame
        Simple periodic returns, one column per symbol, dates as the index. NaN marks a date
        without data for that symbol (each symbol uses its own dates in common with the market).
    market : str or pandas.Series
        The market column of ``returns`` (default ``"SPY"``) or a separate market return series.
    rf : float or pandas.Series
        Risk-free return per period (aligned by date when a Series).
    periods_per_year : float
        Annualisation factor for alpha and expected returns (252 for daily data).
    market_return : float, optional
        Expected annual market return; default the sample mean of the market, annualised.
    min_obs : int
        Symbols with fewer usable observations are left out (listed in ``result.attrs["dropped"]``).
    sort_by : {"combined", "expected_return", "alpha"}
        Ranking key; ``"combined"`` averages the expected-return and alpha ranks.

    Returns
    -------
    pandas.DataFrame
        Index: symbol. Columns: ``beta``, ``beta_se``, ``alpha`` (annualised), ``alpha_t``,
        ``r_squared``, ``expected_return`` (annualised), ``nobs``, ``rank_expected_return``,
        ``rank_alpha``, ``rank`` (1 = best by ``sort_by``), sorted by ``rank``.
    """
    if not isinstance(returns, pd.DataFrame):
        raise ValueError(f"returns must be a pandas DataFrame, got {type(returns).__name__}")
    if not returns.index.is_unique:
        raise ValueError("returns has duplicate dates in its index")
    if sort_by not in ("combined", "expected_return", "alpha"):
        raise ValueError(
            f"sort_by must be 'combined', 'expected_return' or 'alpha', got {sort_by!r}"
        )
    if not (periods_per_year > 0):
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year!r}")
    if isinstance(market, str):
        if market not in returns.columns:
            raise ValueError(
                f"market column {market!r} not in returns (columns: {list(returns.columns)[:10]})"
            )
        mkt = returns[market]
        assets = returns.drop(columns=[market])
    else:
        mkt = market
        assets = returns
    frame = assets.join(mkt.rename("__market__"), how="inner")
    if isinstance(rf, pd.Series):
        frame = frame.join(rf.rename("__rf__"), how="inner")
    else:
        frame["__rf__"] = float(rf)
    frame = frame[np.isfinite(frame["__market__"]) & np.isfinite(frame["__rf__"])]
    if assets.shape[1] == 0:
        raise ValueError("returns has no asset columns besides the market")
    ppy = float(periods_per_year)

    # All symbols at once: masked sums over each symbol's own non-missing dates.
    y_all = frame[list(assets.columns)].to_numpy(dtype=np.float64)
    r = frame["__rf__"].to_numpy()
    x = frame["__market__"].to_numpy() - r
    valid = np.isfinite(y_all)
    wgt = valid.astype(np.float64)
    y = np.where(valid, y_all - r[:, None], 0.0)
    n = wgt.sum(axis=0)
    keep = n >= max(int(min_obs), 3)
    dropped = [str(c) for c, k in zip(assets.columns, keep, strict=True) if not k]
    if not keep.any():
        raise ValueError(
            f"no symbol has at least {max(int(min_obs), 3)} observations in common with the market"
        )
    n, wgt, y, valid = n[keep], wgt[:, keep], y[:, keep], valid[:, keep]
    xm = (wgt * x[:, None]).sum(axis=0) / n
    ym = y.sum(axis=0) / n
    dx = np.where(valid, x[:, None] - xm, 0.0)
    dy = np.where(valid, y - ym, 0.0)
    sxx = (dx * dx).sum(axis=0)
    if np.any(sxx <= _constant_floor(x, n)):
        raise ValueError("market excess returns are constant over some symbol's dates")
    beta = (dx * dy).sum(axis=0) / sxx
    alpha = ym - beta * xm
    resid = dy - beta * dx
    s2 = (resid * resid).sum(axis=0) / (n - 2)
    syy = (dy * dy).sum(axis=0)
    alpha_se = np.sqrt(s2 * (1.0 / n + xm * xm / sxx))
    rf_annual = float(r.mean()) * ppy
    m_annual = float(frame["__market__"].mean()) * ppy if market_return is None else market_return
    out = pd.DataFrame(
        {
            "beta": beta,
            "beta_se": np.sqrt(s2 / sxx),
            "alpha": alpha * ppy,
            "alpha_t": alpha / alpha_se,
            "r_squared": 1.0 - (resid * resid).sum(axis=0) / syy,
            "expected_return": expected_return(beta, m_annual, rf_annual),
            "nobs": n.astype(np.int64),
        },
        index=pd.Index([c for c, k in zip(assets.columns, keep, strict=True) if k], name="symbol"),
    )
    out["rank_expected_return"] = out["expected_return"].rank(ascending=False, method="min")
    out["rank_alpha"] = out["alpha"].rank(ascending=False, method="min")
    key = {
        "combined": (out["rank_expected_return"] + out["rank_alpha"]) / 2.0,
        "expected_return": out["rank_expected_return"],
        "alpha": out["rank_alpha"],
    }[sort_by]
    # Ties broken by the higher expected return.
    order = np.lexsort((-out["expected_return"].to_numpy(), key.to_numpy()))
    out = out.iloc[order]
    out["rank"] = np.arange(1, len(out) + 1)
    out.attrs["dropped"] = dropped
    return out
