"""Deflated and probabilistic Sharpe ratios against the published example and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from v28quant.optimization.sharpe import (
    deflated_sharpe,
    deflated_sharpe_of,
    expected_max_sharpe,
    moments,
    probabilistic_sharpe,
)


def test_bailey_lopez_de_prado_2014_worked_example() -> None:
    # Bailey & López de Prado (2014), JPM 40(5), sec. "A numerical example": N = 100 trials
    # with V[SR_n] = 1/2 (annualised), best annualised SR 2.5 over T = 1250 daily observations
    # (250 per year in the paper), skewness -3, kurtosis 10. The paper reports the expected
    # maximum as 0.1132 per observation and DSR = 0.9004; it rounds intermediate values to four
    # digits, hence the tolerance of 5e-4 on the DSR.
    per_year = 250
    n_trials, v_annual, sr_annual = 100, 0.5, 2.5
    sr0 = expected_max_sharpe(n_trials, v_annual / per_year)
    assert sr0 == pytest.approx(0.1132, abs=5e-5), f"SR0={sr0}"
    d = deflated_sharpe(
        sr_annual / math.sqrt(per_year), 1250, n_trials, v_annual / per_year, skew=-3, kurtosis=10
    )
    assert d.dsr == pytest.approx(0.9004, abs=5e-4), f"DSR={d.dsr}, SR0={d.benchmark}"
    assert d.n_trials == n_trials


def test_expected_max_matches_simulated_maximum_of_normals() -> None:
    # Independent check of eq. 5: the mean of the maximum of N i.i.d. N(0, V) draws, simulated.
    # The approximation is asymptotic; at N = 100 it is 1.1 % above the simulated mean.
    rng = np.random.default_rng(7)
    n, v = 100, 0.04
    sims = rng.normal(0.0, math.sqrt(v), size=(20_000, n)).max(axis=1)
    assert expected_max_sharpe(n, v) == pytest.approx(sims.mean(), rel=0.02)
    assert expected_max_sharpe(1, v) == 0.0


def test_psr_of_normal_returns_is_the_normal_cdf_of_the_t_like_statistic() -> None:
    # With skew 0 and kurtosis 3 the PSR is Phi(SR sqrt(n - 1) / sqrt(1 + SR^2 / 2)).
    sr, n = 0.08, 500
    expected = stats.norm.cdf(sr * math.sqrt(n - 1) / math.sqrt(1 + sr**2 / 2))
    assert probabilistic_sharpe(sr, n) == pytest.approx(expected, rel=1e-12)


def test_moments_match_scipy_and_dsr_of_returns_uses_trial_count() -> None:
    rng = np.random.default_rng(3)
    r = rng.standard_t(5, 800) * 0.01 + 0.001
    m = moments(r)
    assert m.sharpe == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)
    assert m.skew == pytest.approx(stats.skew(r, bias=False), rel=1e-12)
    assert m.kurtosis == pytest.approx(stats.kurtosis(r, fisher=False, bias=False), rel=1e-12)
    trials = rng.normal(0.0, 0.03, 50)
    few = deflated_sharpe_of(r, trials)
    many = deflated_sharpe_of(r, trials, n_trials=500)
    assert few.n_trials == 50
    assert many.dsr < few.dsr  # more trials tried, a higher bar


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(0, 0.1)
    with pytest.raises(ValueError, match="zero variance"):
        moments(np.ones(10))
    with pytest.raises(ValueError, match="non-finite"):
        moments([0.1, np.nan, 0.2, 0.3])


def test_a_set_that_never_trades_fails_its_walk_forward_rather_than_stopping_it() -> None:
    """Flat out-of-sample returns (no trade in any test window) are a Sharpe ratio of 0.

    Reference, by hand: one trial, so the expected maximum of skill-less trials is 0; a
    Sharpe ratio of 0 against it is a PSR of Phi(0) = 0.5, below any bar; not positive: FAIL.
    Before, the walk-forward (and the tune it ends, minutes of backtests) stopped with
    "returns: zero variance" and wrote no report.
    """
    from v28quant.optimization.synthetic import QuadraticEvaluator
    from v28quant.optimization.walkforward import WalkForwardOptimizer
    from v28quant.optimization.windows import WindowScheme

    params = {"weights.crisis.capm": 0.3}
    idle = QuadraticEvaluator(params, edge=0.0, curvature=0.0, sd=0.0)
    report = WalkForwardOptimizer(idle, WindowScheme("anchored", 3, 300, 1)).run_fixed(params)
    assert report.dsr.dsr == pytest.approx(0.5)
    assert report.oos_sharpe == 0.0
    assert not report.passed
    assert report.verdict.startswith("FAIL")
