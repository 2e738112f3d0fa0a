"""Input checks, data time and the regime vocabulary shared by the detectors."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from v28quant.calendar import regular_close

#: Regime names by number of states, from the calmest to the most stressed. The detectors order
#: their states by fitted return volatility and give them these names in that order.
REGIME_LABELS: dict[int, tuple[str, ...]] = {
    2: ("bull_quiet", "bear_volatile"),
    3: ("bull_quiet", "sideways", "bear_volatile"),
    4: ("bull_quiet", "sideways", "bear_volatile", "crisis"),
}


def as_returns(returns: Any, name: str = "returns", min_rows: int = 1) -> NDArray[np.float64]:
    """1-D float64 array of daily log returns; ``ValueError`` naming the first bad row."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one return per day), got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} must be finite, got {arr[bad[0]]} at index {bad[0]}")
    if arr.size < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {arr.size}")
    return arr


def returns_time(returns: Any, ts: datetime | None = None) -> datetime:
    """Time of the data in the last row: ``ts`` if given, else the last index entry of a Series.

    A date without a time (a daily bar) means that session's close, 16:00 New York. Arrays
    carry no time: then the wall clock, which is only right in live trading. Unlike the equity
    engine's ``data_time`` (a whole session: its close, capped at now), a time-aware stamp is
    taken as it is.
    """
    if ts is not None:
        if ts.tzinfo is None:
            raise ValueError("ts must be timezone-aware")
        return ts
    if isinstance(returns, pd.Series) and isinstance(returns.index, pd.DatetimeIndex):
        last = returns.index[-1]
        if last.tzinfo is not None:
            out: datetime = last.to_pydatetime()
            return out
        if last.time() == time(0):
            return regular_close(last.date())
        stamped: datetime = last.tz_localize(UTC).to_pydatetime()
        return stamped
    return datetime.now(UTC)


def ewma_log_vol(r: NDArray[np.float64], halflife: float) -> NDArray[np.float64]:
    """Log of the annualised EWMA volatility, causal (row t uses returns <= t).

    ``sigma_t^2 = sum_k w_k r_{t-k}^2 / sum_k w_k`` with ``w_k = 2^(-k / halflife)`` (the
    RiskMetrics estimator with a finite-sample normalisation), times 252.
    """
    var = pd.Series(r * r).ewm(halflife=halflife, adjust=True).mean().to_numpy(np.float64)
    out: NDArray[np.float64] = 0.5 * np.log(np.maximum(var, 1e-12) * 252.0)
    return out
