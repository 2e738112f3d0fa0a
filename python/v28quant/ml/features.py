"""Features, labels and purged walk-forward splits from daily bars, with no look-ahead.

Input bars
----------
Daily bars come in one of two layouts, both accepted by every function here:

* **MultiIndex**: index ``(date, symbol)``, columns ``open, high, low, close, volume``;
* **long**: columns ``date, symbol, open, high, low, close, volume`` and any index.

Intraday bars (optional, e.g. 5-minute bars from ``DataFeed.bars(..., timeframe="5Min")``)
are summarised per session by :mod:`v28quant.ml.intraday` and joined to the row of the session's
date: a session's intraday features are known at its close.

Only ``close`` is required. Without ``volume`` (e.g. skfolio's S&P 500 sample, prices only) the
volume features are left out; without ``high``/``low`` the range-based volatility is left out.
Prices must be split/dividend adjusted (returns are computed from consecutive closes).

Every feature at date ``t`` is a function of bars dated ``<= t`` only; :func:`lookahead_check`
verifies that by recomputing on truncated history. Labels (:func:`make_labels`) are the *forward*
log return from the close of ``t`` to the close of ``t + horizon`` and are the only place future
data appears. :class:`PurgedWalkForward` splits samples so that no training label overlaps the test
period (purging) and a gap of ``embargo`` dates separates training from test (embargo).

References
----------
M. López de Prado (2018), *Advances in Financial Machine Learning*, Wiley: ch. 3 (labels),
ch. 7 (purged cross-validation with an embargo, sec. 7.4), ch. 12 (walk-forward).
J.P. Morgan/Reuters (1996), *RiskMetrics Technical Document*, 4th ed. (EWMA vol, lambda=0.94).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from v28quant.ml.intraday import intraday_features, session_dates
from v28quant.quant_models import garch

if TYPE_CHECKING:
    from v28quant.calendar import ExchangeCalendar

log = logging.getLogger(__name__)

TRADING_DAYS = 252

VolForecaster = Callable[[pd.Series], pd.Series]
"""Hook for a conditional volatility forecaster.

Takes one symbol's daily log returns (a Series indexed by date, oldest first) and returns a Series
on the same index whose value at ``t`` is the annualised volatility forecast for ``t + 1`` made with
returns up to and including ``t`` only. The default is :func:`ewma_vol`; the integrator plugs in
the compiled GARCH (``v28quant.quant_models.garch``) through this hook, fitted causally.
"""


def to_wide(bars: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Pivot daily bars (MultiIndex or long layout) to one date x symbol frame per field.

    Returns a dict with the fields present among ``open, high, low, close, volume``.
    """
    if isinstance(bars.index, pd.MultiIndex):
        if bars.index.nlevels != 2:
            raise ValueError(f"bars MultiIndex must be (date, symbol), got {bars.index.names}")
        long = bars.reset_index()
        long.columns = ["date", "symbol", *long.columns[2:]]
    else:
        missing = {"date", "symbol"} - set(bars.columns)
        if missing:
            raise ValueError(f"long-format bars need columns date and symbol, missing {missing}")
        long = bars
    if "close" not in long.columns:
        raise ValueError("bars need a 'close' column")
    long = long.assign(date=pd.to_datetime(long["date"]))
    out: dict[str, pd.DataFrame] = {}
    for f in ("open", "high", "low", "close", "volume"):
        if f in long.columns:
            wide = pivot_float(long, "date", "symbol", f, aggfunc="last")
            out[f] = wide.sort_index().astype(float)
    if (out["close"] <= 0).any().any():
        raise ValueError("close prices must be > 0")
    return out


def pivot_float(
    long: pd.DataFrame, index: str, columns: str, values: str, aggfunc: str = "mean"
) -> pd.DataFrame:
    """Return ``long.pivot_table(index=, columns=, values=, aggfunc=)`` as float64.

    Where each (index, columns) pair has at most one value, every ``aggfunc`` returns that
    value, so the table is scattered into a NaN grid in numpy: pandas' group-by costs far more
    than the rows. Pairs with several values go to ``pivot_table``. As there, missing keys and
    values are dropped, then rows and columns left empty; labels come sorted and named.
    """
    value = long[values].to_numpy(dtype=np.float64)
    known = ~np.isnan(value) & long[index].notna().to_numpy() & long[columns].notna().to_numpy()
    rows, row_labels = pd.factorize(long[index][known], sort=True)
    cols, col_labels = pd.factorize(long[columns][known], sort=True)
    cell = rows * len(col_labels) + cols
    if len(np.unique(cell)) < len(cell):
        table = long.pivot_table(index=index, columns=columns, values=values, aggfunc=aggfunc)
        return table.astype(np.float64)
    grid = np.full((len(row_labels), len(col_labels)), np.nan)
    grid[rows, cols] = value[known]
    return pd.DataFrame(
        grid, index=row_labels.rename(index), columns=col_labels.rename(columns), copy=False
    )


def from_wide_close(close: pd.DataFrame) -> pd.DataFrame:
    """Long-format bars from a date x symbol close-price frame (prices-only data)."""
    long = close.rename_axis(index="date", columns="symbol").stack().rename("close")
    return long.reset_index()


def ewma_vol(returns: pd.Series, lam: float = 0.94) -> pd.Series:
    """RiskMetrics EWMA volatility, annualised; value at t uses returns up to t.

    sigma^2_t = lam * sigma^2_{t-1} + (1 - lam) * r_t^2, started at r_0^2.
    """
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lam must be in (0, 1), got {lam}")
    var = (returns**2).ewm(alpha=1.0 - lam, adjust=False).mean()
    return np.sqrt(var * TRADING_DAYS)


@dataclass(frozen=True)
class FeatureConfig:
    """Which features to build and over which windows (all in trading days).

    ``market`` names the symbol used as the market for beta; ``None`` uses the equal-weighted
    average return of all symbols. ``vol_forecaster`` is the volatility hook (see
    :data:`VolForecaster`); ``None`` means EWMA with ``ewma_lambda``. ``intraday_min_returns``
    and ``intraday_calendar`` go to :func:`v28quant.ml.intraday.intraday_features` when intraday
    bars are given.
    """

    return_horizons: tuple[int, ...] = (1, 5, 21, 63)
    vol_windows: tuple[int, ...] = (21, 63)
    ewma_lambda: float = 0.94
    momentum_window: int = 252
    momentum_skip: int = 21
    zscore_window: int = 20
    volume_window: int = 20
    beta_window: int = 63
    market: str | None = None
    vol_forecaster: VolForecaster | None = field(default=None, compare=False)
    garch_refit_every: int | None = 63
    garch_min_obs: int = 126
    intraday_min_returns: int = 10
    intraday_calendar: ExchangeCalendar | None = field(default=None, compare=False)


def build_features(
    bars: pd.DataFrame,
    config: FeatureConfig | None = None,
    regime_probabilities: pd.DataFrame | None = None,
    intraday_bars: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Feature matrix indexed by ``(date, symbol)``, one column per feature.

    Columns: ``ret_{h}`` log return over h days; ``rvol_{w}`` realised volatility (annualised);
    ``cvol`` conditional vol forecast (EWMA or the hook); ``garch_vol`` causal GARCH(1,1) vol
    (:func:`v28quant.quant_models.garch.causal_vol`, first fitted on ``garch_min_obs`` days and
    refitted every ``garch_refit_every`` days;
    ``None`` leaves it out); ``vol_ratio`` = rvol_short / rvol_long;
    ``mom`` 12-1 momentum (log return from t-252 to t-21); ``mr_z`` mean-reversion z-score of the
    close against its ``zscore_window`` mean; ``range_vol`` Parkinson high-low vol when high/low
    exist; ``vol_z`` log-volume z-score when volume exists; ``beta`` rolling beta to the market;
    plus ``regime_<name>`` columns when ``regime_probabilities`` (date-indexed, one column per
    regime, known at the close of each date) is given; plus the ``intra_*`` columns of
    :func:`v28quant.ml.intraday.intraday_features` (intraday realised and bipower vol, jump share,
    overnight gap, the close's position in the day's range) when ``intraday_bars`` is given,
    joined on ``(date, symbol)``. Rows with any missing feature are dropped, so with intraday bars
    only the sessions they cover remain (less each symbol's first, which has no gap).
    """
    cfg = config or FeatureConfig()
    wide = to_wide(bars)
    close = wide["close"]
    logp = np.log(close)
    r1 = logp.diff()
    cols: dict[str, pd.DataFrame] = {}
    for h in cfg.return_horizons:
        cols[f"ret_{h}"] = logp - logp.shift(h)
    for w in cfg.vol_windows:
        cols[f"rvol_{w}"] = r1.rolling(w).std() * np.sqrt(TRADING_DAYS)
    forecaster = cfg.vol_forecaster or (lambda r: ewma_vol(r, cfg.ewma_lambda))
    cols["cvol"] = pd.DataFrame(
        {s: forecaster(r1[s].dropna()) for s in close.columns}, index=close.index
    )
    if cfg.garch_refit_every is not None:
        cols["garch_vol"] = pd.DataFrame(
            {s: _garch_vol(r1[s].dropna(), cfg) for s in close.columns},
            index=close.index,
        )
    if len(cfg.vol_windows) >= 2:
        short, long_ = min(cfg.vol_windows), max(cfg.vol_windows)
        cols["vol_ratio"] = cols[f"rvol_{short}"] / cols[f"rvol_{long_}"]
    cols["mom"] = logp.shift(cfg.momentum_skip) - logp.shift(cfg.momentum_window)
    mean = close.rolling(cfg.zscore_window).mean()
    sd = close.rolling(cfg.zscore_window).std()
    cols["mr_z"] = (close - mean) / sd
    if "high" in wide and "low" in wide:
        hl2 = np.log(wide["high"] / wide["low"]) ** 2
        cols["range_vol"] = np.sqrt(
            hl2.rolling(cfg.vol_windows[0]).mean() / (4 * np.log(2)) * TRADING_DAYS
        )
    if "volume" in wide:
        lv = np.log1p(wide["volume"])
        vsd = lv.rolling(cfg.volume_window).std()
        cols["vol_z"] = (lv - lv.rolling(cfg.volume_window).mean()) / vsd.where(vsd > 0)
    if cfg.market is not None:
        if cfg.market not in close.columns:
            raise ValueError(f"market symbol {cfg.market!r} not in bars")
        mkt = r1[cfg.market]
    else:
        mkt = r1.mean(axis=1)
    cov = r1.rolling(cfg.beta_window).cov(mkt)
    var = mkt.rolling(cfg.beta_window).var()
    cols["beta"] = cov.div(var, axis=0)
    frame = pd.concat({k: v.stack(future_stack=True) for k, v in cols.items()}, axis=1)
    frame.index = frame.index.set_names(["date", "symbol"])
    if regime_probabilities is not None:
        reg = regime_probabilities.add_prefix("regime_")
        reg.index = pd.to_datetime(reg.index)
        frame = frame.join(reg, on="date")
    if intraday_bars is not None:
        intra = intraday_features(
            intraday_bars,
            min_returns=cfg.intraday_min_returns,
            calendar=cfg.intraday_calendar,
        )
        frame = frame.join(intra, how="left")
    frame = frame.replace([np.inf, -np.inf], np.nan).dropna()
    return frame.sort_index()


def _garch_vol(returns: pd.Series, cfg: FeatureConfig) -> pd.Series:
    """Causal GARCH(1,1) vol (compiled core); NaN for a symbol whose history cannot be fitted."""
    assert cfg.garch_refit_every is not None
    try:
        return garch.causal_vol(
            returns, refit_every=cfg.garch_refit_every, min_obs=cfg.garch_min_obs
        )
    except ValueError as exc:  # e.g. a constant price series: drop the symbol's rows, go on
        log.warning("garch_vol for %s left out: %s", returns.name, exc)
        return pd.Series(np.nan, index=returns.index)


def make_labels(bars: pd.DataFrame, horizon: int = 5) -> pd.DataFrame:
    """Forward log return over ``horizon`` days and its direction, indexed by ``(date, symbol)``.

    Columns: ``fwd_ret`` = ln(close_{t+h} / close_t); ``direction`` = 1 if fwd_ret > 0 else 0;
    ``label_end`` = the date of close_{t+h} (the end of the label's information span, used for
    purging). The last ``horizon`` dates of each symbol have no label and are dropped.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    close = to_wide(bars)["close"]
    logp = np.log(close)
    fwd = logp.shift(-horizon) - logp
    dates = pd.Series(close.index, index=close.index)
    end = pd.DataFrame({s: dates.shift(-horizon) for s in close.columns}, index=close.index)
    out = pd.concat(
        {"fwd_ret": fwd.stack(future_stack=True), "label_end": end.stack(future_stack=True)},
        axis=1,
    ).dropna()
    out.index = out.index.set_names(["date", "symbol"])
    out["direction"] = (out["fwd_ret"] > 0).astype(np.int64)
    out["label_end"] = pd.to_datetime(out["label_end"])
    return out.sort_index()


def align(features: pd.DataFrame, labels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows present in both features and labels, in (date, symbol) order."""
    idx = features.index.intersection(labels.index).sort_values()
    return features.loc[idx], labels.loc[idx]


@dataclass(frozen=True)
class Split:
    """One walk-forward fold: integer row positions and the test period's dates."""

    train: np.ndarray
    test: np.ndarray
    test_start: pd.Timestamp
    test_end: pd.Timestamp


@dataclass(frozen=True)
class PurgedWalkForward:
    """Expanding-window walk-forward splits with purging and an embargo (López de Prado ch. 7).

    The unique sample dates after ``min_train_dates`` are cut into ``n_splits`` consecutive test
    blocks. For each block, training rows are the rows dated before the block that

    * are not within ``embargo`` dates before the block start (embargo gap), and
    * have ``label_end < test_start`` (purging: the label's information span may not reach into
      the test period).

    Test rows never precede training rows, so no shuffled k-fold leakage can occur.
    """

    n_splits: int = 5
    embargo: int = 5
    min_train_dates: int = 252

    def split(
        self, dates: Sequence[Any] | pd.Index, label_end: Sequence[Any] | pd.Index
    ) -> Iterator[Split]:
        """Yield a :class:`Split` per fold for rows with dates ``dates`` and ``label_end``."""
        d = pd.DatetimeIndex(dates)
        e = pd.DatetimeIndex(label_end)
        if len(d) != len(e):
            raise ValueError(f"dates ({len(d)}) and label_end ({len(e)}) differ in length")
        if (e < d).any():
            raise ValueError("label_end must be >= the sample date for every row")
        udates = d.unique().sort_values()
        usable = len(udates) - self.min_train_dates
        if self.n_splits < 1 or usable < self.n_splits:
            raise ValueError(
                f"need more than min_train_dates={self.min_train_dates} + n_splits={self.n_splits}"
                f" dates, got {len(udates)}"
            )
        bounds = np.linspace(self.min_train_dates, len(udates), self.n_splits + 1).astype(int)
        dv, ev = d.values, e.values
        for k in range(self.n_splits):
            t0, t1 = udates[bounds[k]], udates[bounds[k + 1] - 1]
            gap_start = udates[max(bounds[k] - self.embargo, 0)]
            test = np.flatnonzero((dv >= t0.to_datetime64()) & (dv <= t1.to_datetime64()))
            train = np.flatnonzero((dv < gap_start.to_datetime64()) & (ev < t0.to_datetime64()))
            yield Split(train=train, test=test, test_start=t0, test_end=t1)


def latest_rows(features: pd.DataFrame, as_of: object = None) -> pd.DataFrame:
    """Today's row per symbol of a (date, symbol) feature frame, indexed by symbol.

    "Today" is ``as_of`` (a date) or else the frame's latest date. A symbol with no row on that
    date is left out (and logged) rather than represented by an older row: a stale row handed
    over as today's would trade on yesterday's information.
    """
    dates = features.index.get_level_values("date")
    if len(dates) == 0:
        return features.droplevel("date")
    day = pd.Timestamp(as_of) if as_of is not None else dates.max()
    today = features[dates == day].droplevel("date").sort_index()
    stale = sorted(set(features.index.get_level_values("symbol")) - set(today.index))
    if stale:
        log.warning("latest_rows: no row on %s for %s; left out", day.date(), stale)
    return today


def lookahead_check(
    feature_fn: Callable[..., pd.DataFrame],
    bars: pd.DataFrame,
    cutoffs: Sequence[pd.Timestamp | str],
    rtol: float = 1e-9,
    atol: float = 1e-12,
    intraday_bars: pd.DataFrame | None = None,
) -> dict[str, list[pd.Timestamp]]:
    """Columns whose values change when future bars are removed (a look-ahead leak).

    For each cutoff date, recompute ``feature_fn`` on the bars dated ``<= cutoff`` and compare with
    the full-history features on the dates ``<= cutoff``. A causal feature gives identical values
    (up to ``rtol``/``atol``, for floating-point reassociation in rolling sums); a feature using any
    bar after the cutoff generally does not. Returns ``{column: [cutoffs where it differed]}``;
    empty when no leak was found. Rows present in only one of the two computations also count
    (e.g. a feature dropped as NaN only when the future is absent).

    With ``intraday_bars``, ``feature_fn(bars, intraday_bars)`` is called instead and the intraday
    bars are cut at the same cutoff by New York session date (sessions ``<= cutoff`` kept whole,
    since a session's intraday features are known at its close), e.g.
    ``lookahead_check(lambda b, i: build_features(b, intraday_bars=i), daily, cuts,
    intraday_bars=five_min)``.
    """
    wide_dates = _bar_dates(bars)
    intra_dates = None if intraday_bars is None else session_dates(intraday_bars)

    def features_upto(cut: pd.Timestamp | None) -> pd.DataFrame:
        b = bars if cut is None else bars[wide_dates <= cut]
        if intraday_bars is None or intra_dates is None:
            return feature_fn(b)
        i = intraday_bars if cut is None else intraday_bars[intra_dates <= cut]
        return feature_fn(b, i)

    full = features_upto(None)
    leaks: dict[str, list[pd.Timestamp]] = {}
    for c in cutoffs:
        cut = pd.Timestamp(c)
        part = features_upto(cut)
        ref = full[full.index.get_level_values("date") <= cut]
        common = ref.index.intersection(part.index)
        for col in ref.columns:
            a = ref.loc[common, col].to_numpy(float)
            b = part.loc[common, col].to_numpy(float)
            same_rows = len(common) == len(ref) == len(part)
            if not same_rows or not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
                leaks.setdefault(col, []).append(cut)
    return leaks


def _bar_dates(bars: pd.DataFrame) -> np.ndarray:
    if isinstance(bars.index, pd.MultiIndex):
        return np.asarray(pd.to_datetime(bars.index.get_level_values(0)).values)
    return np.asarray(pd.to_datetime(bars["date"]).values)


def panel_to_arrays(
    features: pd.DataFrame, columns: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """float64 matrix of the chosen feature columns (all by default) and the column names."""
    cols = list(columns) if columns is not None else list(features.columns)
    return features[cols].to_numpy(np.float64), cols
