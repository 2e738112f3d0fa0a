"""Walk-forward windows, anchored or rolling, purged and embargoed by the label horizon.

A row (a date, or a ``(date, symbol)`` pair of a panel) carries a label whose information runs
from its date to ``label_end``: for a strategy that holds a decision for ``h`` sessions, ``h``
sessions later. Train rows whose label reaches the test period are purged, and an embargo of
``embargo`` sessions (by default the label horizon, since serial correlation decays over about
the same span) separates the last training date from the first test date. The cutting and the
purge are those of :class:`v28quant.ml.features.PurgedWalkForward`; rolling windows keep only the
last ``train_dates`` sessions of its training rows.

References
----------
M. López de Prado (2018), *Advances in Financial Machine Learning*, Wiley: sec. 7.4.1
(purging), 7.4.2 (embargo), ch. 12 (walk-forward).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from v28quant.ml.features import PurgedWalkForward

WindowKind = Literal["anchored", "rolling"]


@dataclass(frozen=True, slots=True)
class WindowScheme:
    """How to cut history into walk-forward windows.

    Parameters
    ----------
    kind : {"anchored", "rolling"}
        Anchored: every training set starts at the first date (expanding). Rolling: each
        training set holds the ``train_dates`` sessions before its embargo gap.
    n_windows : int
        Number of consecutive, non-overlapping test blocks.
    train_dates : int
        Sessions of training before the first test block (anchored) or in every training set
        (rolling).
    label_horizon : int
        Sessions a label (a decision's outcome) looks ahead; sizes the purge.
    embargo : int or None
        Sessions left out between training and test; ``None`` uses ``label_horizon``.
    """

    kind: WindowKind = "anchored"
    n_windows: int = 4
    train_dates: int = 504
    label_horizon: int = 5
    embargo: int | None = None

    def __post_init__(self) -> None:
        """Check the fields."""
        if self.kind not in ("anchored", "rolling"):
            raise ValueError(f"kind must be 'anchored' or 'rolling', got {self.kind!r}")
        if self.n_windows < 1:
            raise ValueError(f"n_windows must be >= 1, got {self.n_windows}")
        if self.train_dates < 2:
            raise ValueError(f"train_dates must be >= 2, got {self.train_dates}")
        if self.label_horizon < 0:
            raise ValueError(f"label_horizon must be >= 0, got {self.label_horizon}")
        if self.embargo is not None and self.embargo < 0:
            raise ValueError(f"embargo must be >= 0, got {self.embargo}")

    @property
    def gap(self) -> int:
        """Sessions embargoed before each test block."""
        return self.label_horizon if self.embargo is None else self.embargo


@dataclass(frozen=True, slots=True)
class Window:
    """One walk-forward window: integer row positions and the dates they span."""

    index: int
    train: np.ndarray
    test: np.ndarray
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def label_ends(
    dates: Sequence[object] | pd.Index,
    horizon: int,
    symbols: Sequence[object] | pd.Index | None = None,
) -> pd.DatetimeIndex:
    """Date at which each row's label is known: ``horizon`` of the row's own later sessions.

    With ``symbols`` (a panel) the horizon counts each symbol's own rows, so a symbol with gaps
    or a late listing gets the later, correct end. A row with fewer than ``horizon`` later
    sessions ends at the last date of the whole index (its label is incomplete, never trained on
    before the end).
    """
    d = pd.DatetimeIndex(dates)
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    keys = pd.Index(np.zeros(len(d), dtype=np.int64) if symbols is None else list(symbols))
    if len(keys) != len(d):
        raise ValueError(f"symbols ({len(keys)}) and dates ({len(d)}) differ in length")
    frame = pd.DataFrame({"date": d, "key": keys})
    shifted = frame.groupby("key", sort=False)["date"].transform(
        lambda s: s.sort_values().shift(-horizon).reindex(s.index)
    )
    return pd.DatetimeIndex(shifted.fillna(d.max()))


def walk_forward_windows(
    scheme: WindowScheme,
    dates: Sequence[object] | pd.Index,
    symbols: Sequence[object] | pd.Index | None = None,
) -> list[Window]:
    """Cut rows dated ``dates`` (optionally a panel with ``symbols``) into walk-forward windows.

    Raises
    ------
    ValueError
        Too few sessions for ``train_dates + embargo`` plus ``n_windows`` test blocks, or a
        window whose training set is empty after purging.
    """
    d = pd.DatetimeIndex(dates)
    ends = label_ends(d, scheme.label_horizon, symbols)
    udates = d.unique().sort_values()
    splitter = PurgedWalkForward(
        n_splits=scheme.n_windows,
        embargo=scheme.gap,
        min_train_dates=scheme.train_dates + scheme.gap,
    )
    out: list[Window] = []
    for k, split in enumerate(splitter.split(d, ends)):
        train = split.train
        if scheme.kind == "rolling":
            pos = int(udates.searchsorted(split.test_start))
            first = udates[max(pos - scheme.gap - scheme.train_dates, 0)]
            train = train[d.values[train] >= first.to_datetime64()]
        if train.size == 0 or split.test.size == 0:
            raise ValueError(f"window {k}: empty training or test set after purging")
        out.append(
            Window(
                index=k,
                train=train,
                test=split.test,
                train_start=pd.Timestamp(d[train].min()),
                train_end=pd.Timestamp(d[train].max()),
                test_start=split.test_start,
                test_end=split.test_end,
            )
        )
    return out
