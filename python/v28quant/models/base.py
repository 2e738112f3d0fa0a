"""What every adapter reads and shares: the market snapshot, the adapter protocol, track records.

An adapter turns one model's output into :class:`~v28quant.signals.Signal` objects with the
module-wide meaning of ``confidence`` (record x support, see :mod:`v28quant.signals`), stamped
with the time of the data they were computed from, so the aggregator never needs to know a
model's internals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from v28quant.calendar import regular_close
from v28quant.ml._oos import dependent_hit_pvalue as dependent_hit_pvalue
from v28quant.signals import UNTESTED_RECORD, Signal, record_from_pvalue

#: Lifetime of a signal computed from daily bars: spans a long weekend; older means a missed
#: refresh.
DAILY = timedelta(days=4)
#: Lifetime of a signal computed from an option chain snapshot.
CHAIN = timedelta(minutes=15)


@dataclass(frozen=True)
class MarketSnapshot:
    """The data all adapters read at one decision time.

    Attributes
    ----------
    returns : pandas.DataFrame
        Daily log returns, dates (session dates, naive) x symbols, oldest first; NaN before a
        symbol's listing.
    market : str
        The market column of ``returns`` (CAPM's benchmark).
    features : pandas.DataFrame, optional
        ML features indexed by (date, symbol) (:func:`v28quant.ml.features.build_features`).
    chains : Mapping[str, pandas.DataFrame]
        Option chain snapshots per underlying (``v28quant.data.base.CHAIN_COLUMNS``).
    spots : Mapping[str, float]
        Latest underlying prices (for the chains).
    chain_ts : datetime, optional
        Time of the chain snapshots.
    rate : float
        Continuously compounded risk-free rate.
    dividends : Mapping[str, float]
        Continuous dividend yields per symbol (0 when absent).
    implied_vol : Mapping[str, float]
        At-the-money implied vol per symbol where known (GARCH compares against it).
    positions : Mapping[str, float]
        Current exposure per symbol in [-1, 1] (the SAC agent's state).
    """

    returns: pd.DataFrame
    market: str = "SPY"
    features: pd.DataFrame | None = None
    chains: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    spots: Mapping[str, float] = field(default_factory=dict)
    chain_ts: datetime | None = None
    rate: float = 0.0
    dividends: Mapping[str, float] = field(default_factory=dict)
    implied_vol: Mapping[str, float] = field(default_factory=dict)
    positions: Mapping[str, float] = field(default_factory=dict)

    def symbol_returns(self, symbol: str) -> pd.Series:
        """One symbol's returns without the NaN before its listing."""
        return self.returns[symbol].dropna()

    @property
    def daily_ts(self) -> datetime:
        """Data time of the last daily row: that session's close, 16:00 New York."""
        return session_close(self.returns.index[-1])


def as_snapshot(data: Any) -> MarketSnapshot:
    """Return a :class:`MarketSnapshot` from itself or from the equity engine's ``MarketView``.

    A view (``log_returns``, ``symbols``, ``market``) gives the returns of its symbols and its
    market; the adapters then serve the engine's refit/signals protocol unchanged.
    """
    if isinstance(data, MarketSnapshot):
        return data
    if not all(hasattr(data, a) for a in ("log_returns", "symbols", "market")):
        raise ValueError(f"expected a MarketSnapshot or a market view, got {type(data).__name__}")
    rets = data.log_returns
    cols = [c for c in dict.fromkeys([*data.symbols, data.market]) if c in rets.columns]
    return MarketSnapshot(returns=rets[cols], market=str(data.market))


def session_close(day: object) -> datetime:
    """16:00 New York on the session date ``day`` (a date, Timestamp or ISO string)."""
    d = pd.Timestamp(day).date()
    return regular_close(d)


@runtime_checkable
class Adapter(Protocol):
    """One model's face to the aggregator."""

    name: str
    lifetime: timedelta

    def signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        """Signals for the symbols the model can speak about at this snapshot."""
        ...


@dataclass(frozen=True)
class TrackRecord:
    """Out-of-sample directional hits of a model: ``hits`` right calls out of ``n``.

    ``dependent_p``, when given, is the p-value of a test that accounts for calls sharing
    dates or overlapping (:func:`dependent_hit_pvalue`); else the hits are taken as independent
    (a binomial test).
    """

    hits: int
    n: int
    dependent_p: float | None = None

    def __post_init__(self) -> None:
        """Check ``0 <= hits <= n`` and the p-value's range."""
        if not (0 <= self.hits <= self.n):
            raise ValueError(f"need 0 <= hits <= n, got hits={self.hits}, n={self.n}")
        p = self.dependent_p
        if p is not None and not (math.isfinite(p) and 0.0 <= p <= 1.0):
            raise ValueError(f"dependent_p must be in [0, 1], got {p!r}")

    @property
    def p_value(self) -> float:
        """One-sided p-value of the hit rate against 1/2 (``dependent_p``, else binomial)."""
        if self.dependent_p is not None:
            return self.dependent_p
        if self.n == 0:
            return 1.0
        return float(binomtest(self.hits, self.n, 0.5, alternative="greater").pvalue)

    @property
    def record(self) -> float:
        """The ``record`` factor of confidence."""
        return record_from_pvalue(self.p_value)


def record_of(track: TrackRecord | None, scores: Mapping[str, float] | None = None) -> float:
    """Return the ``record`` factor of a model's confidence.

    From a track record, else from a model's ``validation_scores``: ``hit_p`` (dates and
    overlap accounted for, :func:`dependent_hit_pvalue`) before ``binom_p`` (independent hits),
    else :data:`~v28quant.signals.UNTESTED_RECORD`.
    """
    if track is not None:
        return track.record
    for key in ("hit_p", "binom_p"):
        if scores and key in scores and math.isfinite(scores[key]):
            return record_from_pvalue(float(scores[key]))
    return UNTESTED_RECORD


def certainty(probabilities: Mapping[str, float] | np.ndarray) -> float:
    """``1 - H(p) / ln k``: 1 for a sure distribution, 0 for a uniform one."""
    p = np.asarray(
        list(probabilities.values()) if isinstance(probabilities, Mapping) else probabilities,
        dtype=np.float64,
    )
    if p.size < 2:
        return 1.0
    q = p[p > 0]
    h = float(-(q * np.log(q)).sum())
    return float(min(1.0, max(0.0, 1.0 - h / math.log(p.size))))


def data_key(frame: pd.DataFrame | None, *extra: object) -> tuple[object, ...]:
    """Identity of a day's input: shape, columns, last index entry and last row's bytes."""
    if frame is None or frame.empty:
        return (None, *extra)
    last = frame.iloc[-1].to_numpy(np.float64, na_value=np.nan).tobytes()
    return (frame.shape, tuple(map(str, frame.columns)), frame.index[-1], last, *extra)


class DailyMemo:
    """A daily model's signals, computed once per input (the 5-minute cycles of a day reuse them).

    Daily bars change once a day; recomputing GARCH filters, CAPM regressions or HMM filters
    every cycle would give the same signals at many times the cost.
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._value: list[Signal] = []

    def get(self, key: tuple[object, ...], compute: Callable[[], list[Signal]]) -> list[Signal]:
        """Return the signals for ``key``, computed by ``compute`` when the key is new."""
        if key != self._key:
            self._value, self._key = compute(), key
        return list(self._value)

    def clear(self) -> None:
        """Forget the memo (after a refit)."""
        self._key, self._value = None, []


class TrainingRange:
    """Per-feature central range of the training sample, to tell familiar input from new.

    ``support(row)`` is the share of a row's features inside their training
    [``lower``, ``upper``] quantiles: 1 when every feature looks like the training data.
    """

    def __init__(self, reference: pd.DataFrame, lower: float = 0.005, upper: float = 0.995):
        self.columns = [str(c) for c in reference.columns]
        self.lo = reference.quantile(lower).to_numpy(np.float64)
        self.hi = reference.quantile(upper).to_numpy(np.float64)

    def support(self, rows: pd.DataFrame) -> np.ndarray:
        """Share of each row's features within the training range, shape (n,)."""
        x = rows[self.columns].to_numpy(np.float64)
        inside = (x >= self.lo) & (x <= self.hi)
        out: np.ndarray = inside.mean(axis=1)
        return out
