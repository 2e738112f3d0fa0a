"""The trend behind debit verticals: the drift t-statistic against scipy's one-sample t-test.

Independent reference: ``scipy.stats.ttest_1samp`` of the daily log returns against a zero
mean gives the same statistic, ``mean / (std / sqrt(n))``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ttest_1samp
from v28quant.options.trend import trend_of


@pytest.mark.parametrize("drift", [0.004, -0.004, 0.0])
def test_trend_is_the_t_statistic_of_the_drift(drift: float) -> None:
    """Same t as scipy on the last 50 returns (spot as the last price); the band sets the side."""
    rng = np.random.default_rng(7)
    closes = 100.0 * np.exp(np.cumsum(drift + 0.01 * rng.standard_normal(120)))
    spot = float(closes[-1] * 1.002)
    tr = trend_of(closes, spot, days=50, min_t=1.0)
    r = np.diff(np.log(np.append(closes, spot)))[-50:]
    want = float(ttest_1samp(r, 0.0).statistic)
    assert tr.t_stat == pytest.approx(want, rel=1e-12), (drift, tr, want)
    assert tr.days == 50
    side = "up" if want >= 1.0 else "down" if want <= -1.0 else None
    assert tr.direction == side


def test_trend_needs_history_and_names_bad_input() -> None:
    """Too few closes: no trend; a bad window, band or spot: ValueError naming it."""
    assert trend_of(np.array([100.0, 101.0]), 102.0, days=50, min_t=1.0).direction is None
    assert trend_of(None, 102.0, days=50, min_t=1.0).direction is None
    with pytest.raises(ValueError, match="days"):
        trend_of(None, 1.0, days=1, min_t=1.0)
    with pytest.raises(ValueError, match="min_t"):
        trend_of(None, 1.0, days=5, min_t=-1.0)
    with pytest.raises(ValueError, match="spot"):
        trend_of(None, 0.0, days=5, min_t=1.0)
