"""After a fit of the regime detectors, the POMDP belief is the filter over the recent sessions.

A fresh fit used to start the belief from the uniform prior and move it by today's observation
alone, so each refit (every few sessions) threw the history away: on 2022-11-28 the HMM said
sideways at 0.998 and the belief still gave the bear regime 0.1, and the risk scale jumped
between risk-on and risk-off. Independent reference: a forward filter written here in numpy
(predict with the controller's transition, weight by the soft-evidence likelihood of each
session's HMM posterior, normalise), fed the HMM's posteriors session by session.
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
