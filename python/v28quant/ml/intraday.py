"""Per-session features from intraday bars.

Realised variance, bipower variation, jump share, overnight gap and the close's position in the
day's range.

Input bars
----------
Intraday bars (e.g. 5-minute) in the layout of ``v28quant.data.base.BAR_COLUMNS``, as
``DataFeed.bars(..., timeframe="5Min")`` returns them:

* **long**: columns ``timestamp, symbol, open, high, low, close`` (``volume`` ignored), or
* **MultiIndex**: index ``(timestamp, symbol)`` and the price columns.

``timestamp`` is the bar *start*. Timezone-aware stamps are read in New York time; naive ones
are taken as New York wall-clock time. A bar belongs to the session of its New York date and is
kept only if it starts within that session's regular hours, ``[open, close)`` (09:30-16:00, or
the exchange calendar's times when one is given, so early closes are honoured): pre- and
post-market bars never enter a session's features.

Features (one row per session date and symbol)
----------------------------------------------
With intraday log returns ``r_1 .. r_n`` of the session (``r_1 = ln(C_1 / O_1)`` from the first
bar's open, then ``r_i = ln(C_i / C_{i-1})``, so they sum to the open-to-close return):

* ``intra_rvol``: annualised realised vol ``sqrt(252 * RV)``, ``RV = sum r_i^2``;
* ``intra_bvol``: annualised bipower vol ``sqrt(252 * BV)``,
  ``BV = (pi / 2) * n / (n - 1) * sum_{i>=2} |r_i| |r_{i-1}|`` (Barndorff-Nielsen & Shephard
  2004, eq. 1.2; ``pi/2 = mu_1^-2`` with ``mu_1 = E|Z| = sqrt(2/pi)``; the ``n/(n-1)``
  small-sample factor, as in Huang & Tauchen 2005, makes ``E[BV] = sigma^2`` exactly for
  Brownian returns);
* ``intra_jump``: the jump share ``max(0, RV - BV) / RV`` (0 on a session without variation);
* ``intra_gap``: the overnight gap ``ln(O / C_prev)``, the session's first open against the last
  close of the previous session *present in the bars* for that symbol (NaN on its first one);
* ``intra_range_pos``: ``(C - L) / (H - L)`` with the session's last close, high and low (0.5
  when ``H == L``).

RV, BV and the jump share are NaN for sessions with fewer than ``min_returns`` returns (too few
for the estimators to mean anything). All of them are known at the session's close: the row of
date ``t`` uses bars of sessions ``<= t`` only. Open-to-close only: the overnight return is the
separate ``intra_gap`` feature, not part of RV.

References
----------
O.E. Barndorff-Nielsen, N. Shephard (2004), "Power and bipower variation with stochastic
volatility and jumps", *J. Financial Econometrics* 2(1), 1-37.
X. Huang, G. Tauchen (2005), "The relative contribution of jumps to total price variance",
*J. Financial Econometrics* 3(4), 456-499 (the relative jump measure ``(RV - BV) / RV``).
T.G. Andersen, T. Bollerslev, F.X. Diebold, P. Labys (2003), "Modeling and forecasting realized
volatility", *Econometrica* 71(2), 579-625 (realised variance).
"""

from __future__ import annotations

from datetime import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from v28quant.calendar import ET

if TYPE_CHECKING:
    from v28quant.calendar import ExchangeCalendar

TRADING_DAYS = 252
REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
INTRADAY_COLUMNS = ("intra_rvol", "intra_bvol", "intra_jump", "intra_gap", "intra_range_pos")


def _long(bars: pd.DataFrame) -> pd.DataFrame:
    """Intraday bars as a long frame with ``timestamp, symbol, open, high, low, close``."""
    if isinstance(bars.index, pd.MultiIndex):
        if bars.index.nlevels != 2:
            raise ValueError(
                f"intraday bars MultiIndex must be (timestamp, symbol), got {bars.index.names}"
            )
        long = bars.reset_index()
        long.columns = ["timestamp", "symbol", *long.columns[2:]]
    else:
        long = bars
    missing = [c for c in ("timestamp", "symbol", "open", "high", "low", "close") if c not in long]
    if missing:
        raise ValueError(f"intraday bars lack column(s) {missing}")
    return long


def _local_times(long: pd.DataFrame) -> pd.Series:
    """Bar start times as naive New York wall-clock times (naive input is taken as New York)."""
    ts = pd.to_datetime(long["timestamp"])
    return ts.dt.tz_convert(ET).dt.tz_localize(None) if ts.dt.tz is not None else ts


def session_dates(bars: pd.DataFrame) -> np.ndarray:
    """Return the New York session date of each intraday bar, in row order.

    Dates are naive midnight ``datetime64`` values.
    """
    return np.asarray(_local_times(_long(bars)).dt.normalize().to_numpy())


def intraday_features(
    bars: pd.DataFrame,
    *,
    min_returns: int = 10,
    calendar: ExchangeCalendar | None = None,
) -> pd.DataFrame:
    """Per-session intraday features indexed by ``(date, symbol)`` (see the module docstring).

    Parameters
    ----------
    bars : DataFrame
        Intraday bars, long (``timestamp`` column) or MultiIndex ``(timestamp, symbol)``.
        Prices in currency per share, > 0.
    min_returns : int
        Fewest intraday returns a session needs for ``intra_rvol``, ``intra_bvol`` and
        ``intra_jump`` (>= 2: bipower variation needs a pair of returns).
    calendar : ExchangeCalendar, optional
        Session open/close times (early closes); default regular hours 09:30-16:00 New York.

    Returns
    -------
    DataFrame
        Columns ``INTRADAY_COLUMNS``; index ``(date, symbol)`` with ``date`` the naive session date.
        Vols are annualised (252 sessions a year); the gap is a log return.
    """
    if min_returns < 2:
        raise ValueError(f"min_returns must be >= 2 (bipower needs two returns), got {min_returns}")
    long = _long(bars)
    local = _local_times(long)
    frame = pd.DataFrame(
        {
            "symbol": long["symbol"].to_numpy(),
            "local": local.to_numpy(),
            "date": local.dt.normalize().to_numpy(),
            **{c: long[c].to_numpy(np.float64) for c in ("open", "high", "low", "close")},
        }
    )
    px = frame[["open", "high", "low", "close"]].to_numpy()
    if not np.all(np.isfinite(px)) or (px <= 0).any():
        raise ValueError("intraday bar prices must be finite and > 0")
    frame = frame[_in_session(frame, calendar)]
    frame = frame.sort_values(["symbol", "local"], kind="stable").reset_index(drop=True)
    if frame.empty:
        return pd.DataFrame(
            columns=list(INTRADAY_COLUMNS),
            index=pd.MultiIndex.from_arrays([pd.DatetimeIndex([]), []], names=["date", "symbol"]),
            dtype=np.float64,
        )

    gid = frame.groupby(["symbol", "date"], sort=False).ngroup().to_numpy()
    first = np.r_[True, gid[1:] != gid[:-1]]  # rows are sorted, so each group is contiguous
    logc = np.log(frame["close"].to_numpy())
    prev = np.r_[np.nan, logc[:-1]]
    prev[first] = np.log(frame["open"].to_numpy()[first])
    r = logc - prev
    absprod = np.abs(r) * np.abs(np.r_[np.nan, r[:-1]])
    absprod[first] = 0.0  # no pair across the overnight break
    n_groups = int(gid.max()) + 1
    n = np.bincount(gid, minlength=n_groups).astype(np.float64)
    rv = np.bincount(gid, weights=r * r, minlength=n_groups)
    bp = np.bincount(gid, weights=absprod, minlength=n_groups)
    enough = n >= min_returns
    with np.errstate(divide="ignore", invalid="ignore"):
        bv = np.where(enough, (np.pi / 2.0) * n / (n - 1.0) * bp, np.nan)
        jump = np.where(rv > 0, np.maximum(rv - bv, 0.0) / rv, 0.0)
    rv = np.where(enough, rv, np.nan)
    jump = np.where(enough, jump, np.nan)

    g = frame.groupby(gid, sort=True)
    sess = pd.DataFrame(
        {
            "symbol": g["symbol"].first(),
            "date": g["date"].first(),
            "open": g["open"].first(),
            "high": g["high"].max(),
            "low": g["low"].min(),
            "close": g["close"].last(),
        }
    )
    prev_close = sess.groupby("symbol", sort=False)["close"].shift(1)  # groups are date-ordered
    span = sess["high"] - sess["low"]
    out = pd.DataFrame(
        {
            "intra_rvol": np.sqrt(TRADING_DAYS * rv),
            "intra_bvol": np.sqrt(TRADING_DAYS * bv),
            "intra_jump": jump,
            "intra_gap": np.log(sess["open"] / prev_close).to_numpy(),
            "intra_range_pos": np.where(
                span > 0, (sess["close"] - sess["low"]) / span.where(span > 0), 0.5
            ),
        },
        index=pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex(sess["date"]), sess["symbol"].to_numpy()], names=["date", "symbol"]
        ),
    )
    return out.sort_index()


def _in_session(frame: pd.DataFrame, calendar: ExchangeCalendar | None) -> np.ndarray:
    """Mask of bars that start within their session's regular hours, [open, close)."""
    local = pd.DatetimeIndex(frame["local"])
    if calendar is None:
        tod = local - local.normalize()
        lo = pd.Timedelta(hours=REGULAR_OPEN.hour, minutes=REGULAR_OPEN.minute)
        hi = pd.Timedelta(hours=REGULAR_CLOSE.hour, minutes=REGULAR_CLOSE.minute)
        return np.asarray((tod >= lo) & (tod < hi))
    days = local.normalize()
    opens, closes = {}, {}
    for d in days.unique():
        times = calendar.session_times(d.date())
        if times is None:  # not a session there or outside its range: regular hours, as replay
            opens[d] = d + pd.Timedelta(hours=REGULAR_OPEN.hour, minutes=REGULAR_OPEN.minute)
            closes[d] = d + pd.Timedelta(hours=REGULAR_CLOSE.hour, minutes=REGULAR_CLOSE.minute)
        else:
            opens[d] = pd.Timestamp(times[0]).tz_convert(ET).tz_localize(None)
            closes[d] = pd.Timestamp(times[1]).tz_convert(ET).tz_localize(None)
    op = pd.DatetimeIndex(days.map(opens))
    cl = pd.DatetimeIndex(days.map(closes))
    return np.asarray((local >= op) & (local < cl))
