"""Walk-forward windows: no training label reaches the test rows and the embargo holds.

Checked on dates and on an unbalanced panel; label ends are recomputed here row by row,
independently of the code under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from v28quant.optimization.windows import Window, WindowScheme, walk_forward_windows


def _label_end_by_loop(dates: pd.DatetimeIndex, symbols: list[str], h: int) -> list[pd.Timestamp]:
    """Per row: the symbol's own h-th later date, else the last date of the index."""
    own: dict[str, list[pd.Timestamp]] = {}
    for d, s in zip(dates, symbols, strict=True):
        own.setdefault(s, []).append(d)
    for s in own:
        own[s].sort()
    out = []
    for d, s in zip(dates, symbols, strict=True):
        seq = own[s]
        i = seq.index(d)
        out.append(seq[i + h] if i + h < len(seq) else max(dates))
    return out


def _check(
    windows: list[Window],
    dates: pd.DatetimeIndex,
    ends: list[pd.Timestamp],
    scheme: WindowScheme,
) -> None:
    udates = dates.unique().sort_values()
    prev_test_end = None
    for w in windows:
        train_dates = dates[w.train]
        # every test row lies in the test block, and every row of the block is a test row
        in_block = (dates >= w.test_start) & (dates <= w.test_end)
        assert set(w.test) == set(np.flatnonzero(in_block)), f"window {w.index}"
        # purge: no training label's span [date, label_end] touches the test block
        for i in w.train:
            assert ends[i] < w.test_start, (
                f"window {w.index}: row {i} dated {dates[i]} labels to {ends[i]}, "
                f"test starts {w.test_start}"
            )
        # embargo: at least `gap` sessions strictly between the last training date and the test
        between = ((udates > train_dates.max()) & (udates < w.test_start)).sum()
        assert between >= scheme.gap, f"window {w.index}: {between} sessions of embargo"
        assert not set(w.train) & set(w.test)
        if scheme.kind == "rolling":
            assert train_dates.unique().size <= scheme.train_dates
        else:
            assert train_dates.min() == udates[0]
        if prev_test_end is not None:
            assert w.test_start > prev_test_end
        prev_test_end = w.test_end


@pytest.mark.parametrize("kind", ["anchored", "rolling"])
@pytest.mark.parametrize(("horizon", "embargo"), [(5, None), (10, 2), (3, 8)])
def test_no_overlap_on_dates(kind: str, horizon: int, embargo: int | None) -> None:
    dates = pd.bdate_range("2015-01-01", periods=700)
    scheme = WindowScheme(kind, 5, 250, horizon, embargo)  # type: ignore[arg-type]
    ws = walk_forward_windows(scheme, dates)
    assert len(ws) == 5
    _check(ws, dates, _label_end_by_loop(dates, ["x"] * len(dates), horizon), scheme)


@pytest.mark.parametrize("kind", ["anchored", "rolling"])
def test_no_overlap_on_unbalanced_panel(kind: str) -> None:
    # Symbols listed late, delisted early, and one trading only two days in three: a symbol's
    # label horizon counts its own rows, so its labels reach further than the calendar's.
    rng = np.random.default_rng(11)
    cal = pd.bdate_range("2016-01-01", periods=600)
    rows: list[tuple[pd.Timestamp, str]] = []
    for d_i, d in enumerate(cal):
        if d_i >= 40:
            rows.append((d, "LATE"))
        if d_i < 520:
            rows.append((d, "GONE"))
        if d_i % 3:
            rows.append((d, "GAPPY"))
        if rng.random() < 0.8:
            rows.append((d, "RAND"))
    frame = pd.DataFrame(rows, columns=["date", "symbol"]).sample(frac=1.0, random_state=1)
    dates = pd.DatetimeIndex(frame["date"])
    symbols = list(frame["symbol"])
    scheme = WindowScheme(kind, 4, 200, 7, 3)  # type: ignore[arg-type]
    ws = walk_forward_windows(scheme, dates, symbols)
    _check(ws, dates, _label_end_by_loop(dates, symbols, 7), scheme)
    # the gappy symbol's labels span ~10 calendar sessions: the purge, not the 3-day embargo,
    # must have removed some of its rows that the embargo alone would have kept
    gappy = np.array(symbols) == "GAPPY"
    w = ws[1]
    near = (dates < w.test_start) & (dates >= w.test_start - pd.tseries.offsets.BDay(12))
    assert (near & gappy).sum() > (near & gappy)[w.train].sum()


def test_too_short_history_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="min_train_dates"):
        walk_forward_windows(
            WindowScheme("anchored", 4, 500, 5), pd.bdate_range("2020", periods=300)
        )
    with pytest.raises(ValueError, match="kind"):
        WindowScheme("expanding", 4, 500, 5)  # type: ignore[arg-type]
