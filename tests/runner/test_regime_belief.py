"""After a fit of the regime detectors, the POMDP belief is the filter over the recent sessions.

A fresh fit used to start the belief from the uniform prior and move it by today's observation
alone, so each refit (every few sessions) threw the history away: on 2022-11-28 the HMM said
sideways at 0.998 and the belief still gave the bear regime 0.1, and the risk scale jumped
between risk-on and risk-off. Independent reference: a forward filter written here in numpy
(predict with the controller's transition, weight by the soft-evidence likelihood of each
session's HMM posterior, normalise), fed the HMM's posteriors session by session; and on
2022-09-29, the whole chain from the fitted HMM's parameters (features, HMM forward filter,
reward table, belief, action) rebuilt in numpy.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from v28quant.data.samples import sp500_stocks
from v28quant.journal import Journal
from v28quant.premarket import (
    BELIEF_SESSIONS,
    MARKET_SESSIONS,
    REGIME_REFIT_SESSIONS,
    assess_regime,
    log_returns,
)


class _Quiet:
    def error(self, *args: object) -> None:
        raise AssertionError(f"no notice expected: {args}")


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame:
    bars = sp500_stocks().bars
    closes = bars[bars["symbol"] == "SP500"].pivot_table(
        index="timestamp", columns="symbol", values="close"
    )
    return log_returns(closes)


def _ctx(folder: Path) -> SimpleNamespace:
    folder.mkdir()
    return SimpleNamespace(
        mode="paper",
        model_dir=folder / "models",
        shared={},
        journal=Journal(folder / "j.sqlite"),
        notifier=_Quiet(),
        now=None,
    )


def _session_posterior(controller: Any, history: pd.Series) -> np.ndarray:
    """Return the market HMM's posterior over the labels on the window an assessment reads."""
    p = controller.market_hmm.predict(history.iloc[-MARKET_SESSIONS:]).probabilities
    return np.array([p[k] for k in controller.labels])


def _forward_filter(controller: Any, history: pd.Series, sessions: int) -> np.ndarray:
    """Uniform prior, then one predict-and-weight step per session of the last ``sessions``."""
    pomdp = controller.risk_scale.controller.pomdp
    transition, accuracy = pomdp.T[0], pomdp.Z[0]
    belief = np.full(len(controller.labels), 1.0 / len(controller.labels))
    for stop in range(len(history) - sessions + 1, len(history) + 1):
        likelihood = accuracy @ _session_posterior(controller, history.iloc[:stop])
        belief = (belief @ transition) * likelihood
        belief /= belief.sum()
    return belief


def _belief(controller: Any) -> np.ndarray:
    return np.asarray(controller.risk_scale.controller.belief, dtype=np.float64)


@pytest.mark.asyncio
async def test_after_a_fit_the_belief_is_the_filter_over_the_recent_sessions(
    tmp_path: Path, sp500: pd.DataFrame
) -> None:
    returns = sp500.loc[:"2022-11-28"]
    ctx = _ctx(tmp_path / "run")
    ctx.now = returns.index[-1]
    out = await assess_regime(ctx, "SP500", returns)
    controller = ctx.shared["regime_controller"]
    (row,) = ctx.journal.decisions(engine="regime")
    assert row["reasoning"]["refit"] is True
    # the sessions before today's, then today's own
    expected = _forward_filter(controller, returns["SP500"], BELIEF_SESSIONS + 1)
    np.testing.assert_allclose(_belief(controller), expected, rtol=1e-9, atol=1e-12)
    assert out.reasoning["pomdp_action"] == controller.risk_scale.last.action


@pytest.mark.asyncio
async def test_sp500_autumn_2022_the_belief_after_a_refit_keeps_the_history(
    tmp_path: Path, sp500: pd.DataFrame
) -> None:
    """Each refit day: the belief is not the uniform prior moved by that day alone.

    Also prints the risk scale's changes over the period (all, and straight risk-on <->
    risk-off) for the record; the count depends on the fits and is not asserted.
    """
    ctx = _ctx(tmp_path / "run")
    days = sp500.loc["2022-09-01":"2022-12-28"].index
    scales: list[float] = []
    refits = 0
    for day in days:
        ctx.now = day
        history = sp500.loc[:day]
        out = await assess_regime(ctx, "SP500", history)
        scales.append(out.reasoning["exposure_scale"])
        controller = ctx.shared["regime_controller"]
        if ctx.shared["regime_age"] != 1:
            continue
        refits += 1
        pomdp = controller.risk_scale.controller.pomdp
        today = pomdp.Z[0] @ _session_posterior(controller, history["SP500"])
        one_observation = (np.full(len(today), 1.0 / len(today)) @ pomdp.T[0]) * today
        one_observation /= one_observation.sum()
        assert np.abs(_belief(controller) - one_observation).max() > 1e-3, day
    assert refits >= len(days) // REGIME_REFIT_SESSIONS
    pairs = list(pairwise(scales))
    changes = sum(a != b for a, b in pairs)
    flips = sum({a, b} == {0.1, 1.0} for a, b in pairs)
    print(f"\n{len(days)} sessions, {refits} refits: {changes} changes, {flips} 0.1<->1.0 flips")


#: Exposure of risk_on, neutral and risk_off, and the risk aversion of the reward
#: ``1e4 (e mu - risk_aversion / 2 e^2 sigma^2)`` (bp a day), as the POMDP module documents them.
EXPOSURES = np.array([1.0, 0.5, 0.1])
RISK_AVERSION = 5.0


def _features(returns: np.ndarray, halflife: float = 5.0) -> np.ndarray:
    """Log return and log annualised EWMA volatility, weights 2^(-k / halflife) summed to one."""
    var = np.empty(len(returns))
    for t in range(len(returns)):
        w = 2.0 ** (-np.arange(t + 1) / halflife)
        var[t] = (w * returns[t::-1] ** 2).sum() / w.sum()
    return np.column_stack([returns, 0.5 * np.log(var * 252.0)])


def _log_normal_pdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    d = x - mean
    maha = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
    return -0.5 * (maha + np.log(np.linalg.det(2.0 * np.pi * cov)))


def _hmm_filter(hmm: Any, window: pd.Series, order: np.ndarray) -> np.ndarray:
    """Return the filtered state probabilities at the window's last row, from the HMM's fit.

    Densities in raw feature units (the standardisation is a constant Jacobian, which cancels);
    states returned in ``order``.
    """
    m, scale, center = hmm.model, hmm._scale, hmm._center
    means, covs = m.means_ * scale + center, m.covars_ * np.outer(scale, scale)
    x = _features(window.to_numpy())
    log_b = np.column_stack([_log_normal_pdf(x, means[k], covs[k]) for k in range(len(means))])
    p = m.startprob_ * np.exp(log_b[0] - log_b[0].max())
    p /= p.sum()
    for row in log_b[1:]:
        p = (p @ m.transmat_) * np.exp(row - row.max())
        p /= p.sum()
    return np.asarray(p[order])


@pytest.mark.asyncio
async def test_sp500_2022_09_29_belief_and_action_follow_from_the_hmm_fit(
    tmp_path: Path, sp500: pd.DataFrame
) -> None:
    """The risk scale on 29 Sep 2022 (a -2.14 % log-return day), rebuilt in numpy from the fit.

    Weekly warm refits from 1 Sep as the pre-market job runs them; the last one, on 23 Sep,
    filtered its belief over the 60 sessions before. Rebuilt here from the market HMM's fitted
    parameters alone: the states named by ascending return volatility, the reward of each
    exposure from each state's mean and variance of the log return, each session's HMM
    posterior by a forward filter over its window, the belief by the POMDP's filter (sticky
    chain 0.97, detector accuracy 0.8 as soft evidence) from the uniform prior. The
    controller's reward table, belief and action (the best expected reward: its actions move
    neither the regimes nor the detectors) must be these.
    """
    ctx = _ctx(tmp_path / "run")
    days = sp500.loc["2022-09-01":"2022-09-29"].index
    for day in days:
        ctx.now = day
        out = await assess_regime(ctx, "SP500", sp500.loc[:day])
    controller = ctx.shared["regime_controller"]
    assert ctx.shared["regime_age"] == 5  # fitted on 23 Sep, four sessions before
    hmm = controller.market_hmm
    variance = (hmm.model.covars_ * np.outer(hmm._scale, hmm._scale))[:, 0, 0]
    order = np.argsort(variance)  # bull_quiet, sideways, bear_volatile
    mean = (hmm.model.means_[:, 0] * hmm._scale[0] + hmm._center[0])[order]
    reward = 1e4 * (
        np.outer(mean, EXPOSURES) - 0.5 * RISK_AVERSION * np.outer(variance[order], EXPOSURES**2)
    )
    transition = np.full((3, 3), 0.015) + 0.955 * np.eye(3)
    accuracy = np.full((3, 3), 0.1) + 0.7 * np.eye(3)
    history = sp500["SP500"].loc[: days[-1]]
    belief = np.full(3, 1.0 / 3.0)
    for stop in range(len(history) - (BELIEF_SESSIONS + 5) + 1, len(history) + 1):
        posterior = _hmm_filter(hmm, history.iloc[:stop].iloc[-MARKET_SESSIONS:], order)
        belief = (belief @ transition) * (accuracy @ posterior)
        belief /= belief.sum()
    pomdp = controller.risk_scale.controller
    print(f"\nreward (bp/day):\n{reward}\nbelief {belief}\nexpected reward {belief @ reward}")
    np.testing.assert_allclose(pomdp.pomdp.R, reward, rtol=1e-9)
    np.testing.assert_allclose(pomdp.belief, belief, rtol=1e-6, atol=1e-9)
    assert out.reasoning["pomdp_action"] == pomdp.actions[int(np.argmax(belief @ reward))]
