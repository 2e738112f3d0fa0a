"""The record's p-value when calls share dates and overlap (Driscoll-Kraay on the date means).

Independent references: statsmodels' Newey-West (HAC) standard error of a mean, the t
distribution from scipy, and the binomial test of the pooled hits where no date is shared.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from v28quant.ml._oos import classification_scores, dependent_hit_pvalue
from v28quant.models.base import TrackRecord


def _panel(n_dates: int, n_symbols: int, common: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hits driven by one market draw a date (weight ``common``) and each symbol's own."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=n_dates)
    market = rng.normal(0.1, 1.0, n_dates)
    own = rng.normal(0.0, 1.0, (n_dates, n_symbols))
    hit = (common * market[:, None] + math.sqrt(1 - common**2) * own) > 0
    return hit.ravel(), np.repeat(dates.to_numpy(), n_symbols)


@pytest.mark.parametrize(("horizon", "n_dates"), [(1, 126), (5, 126), (5, 40), (1, 500)])
def test_matches_a_newey_west_mean_test(horizon: int, n_dates: int) -> None:
    hit, dates = _panel(n_dates, 20, 0.8, seed=horizon + n_dates)
    e = pd.Series(hit.astype(float)).groupby(dates).mean().to_numpy() - 0.5
    lag = max(horizon - 1, int(4 * (n_dates / 100) ** (2 / 9)))
    fit = sm.OLS(e, np.ones(n_dates)).fit(
        cov_type="HAC", cov_kwds={"maxlags": lag, "use_correction": False}
    )
    expected = stats.t.sf(fit.params[0] / fit.bse[0], n_dates - 1)
    assert dependent_hit_pvalue(hit, dates, horizon) == pytest.approx(expected, rel=1e-9)


def test_calls_that_move_together_are_not_counted_as_independent() -> None:
    hit, dates = _panel(126, 20, 0.9, seed=2)
    pooled = stats.binomtest(int(hit.sum()), hit.size, 0.5, alternative="greater").pvalue
    dependent = dependent_hit_pvalue(hit, dates)
    assert hit.mean() > 0.52  # the market draws lean up: a pooled test calls this skill
    assert pooled < 0.01
    assert dependent > 10 * pooled
    # one call a date and no overlap: close to the binomial test of the same hits
    solo, solo_dates = _panel(400, 1, 0.0, seed=8)
    binomial = stats.binomtest(int(solo.sum()), solo.size, 0.5, alternative="greater").pvalue
    assert dependent_hit_pvalue(solo, solo_dates) == pytest.approx(binomial, abs=0.05)


def test_edges_and_errors() -> None:
    days = np.array(["2022-01-03", "2022-01-04"] * 3)
    assert dependent_hit_pvalue([True] * 6, days) == 0.0  # right on every call of every date
    assert dependent_hit_pvalue([True, False], ["2022-01-03"] * 2) == 1.0  # one date: no test
    with pytest.raises(ValueError, match="must match"):
        dependent_hit_pvalue([True], days)
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        dependent_hit_pvalue([True] * 6, days, 0)
    with pytest.raises(ValueError, match="dependent_p must be in"):
        TrackRecord(1, 2, 1.5)
    assert TrackRecord(70, 100, 0.3).record == pytest.approx(0.4)


def test_classification_scores_report_both_tests() -> None:
    hit, dates = _panel(126, 20, 0.9, seed=3)
    y = np.ones(hit.size, dtype=np.int64)
    prob = np.where(hit, 0.6, 0.4)  # right exactly where hit
    s = classification_scores(y, prob, dates=dates, horizon=5)
    assert s["hit_rate"] == pytest.approx(hit.mean())
    assert s["hit_p"] == pytest.approx(dependent_hit_pvalue(hit, dates, 5))
    assert s["binom_p"] < s["hit_p"]
    assert "hit_p" not in classification_scores(y, prob)
