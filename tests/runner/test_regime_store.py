"""The pre-market job never reuses regime detectors fitted on data after the session's.

A backtest over an earlier range can share the model store with one over later sessions; the
stored controller's training end is then after today's last close, and using it would read the
future. Independent reference: the dates themselves (training end against the last close).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from v28quant.data.samples import sample_history
from v28quant.journal import Journal
from v28quant.ml.model_store import ModelStore
from v28quant.premarket import (
    CONTROLLER_STORE_NAME,
    REGIME_REFIT_SESSIONS,
    _stored_controller,
    assess_regime,
    log_returns,
)

MARKET = pd.Series(0.0, index=pd.bdate_range("2022-10-03", "2022-10-31"))


def _store(root: Path, train_end: str) -> None:
    ModelStore(root).save(
        {"fitted through": train_end},
        CONTROLLER_STORE_NAME,
        train_start="2020-01-02",
        train_end=train_end,
        features=["AAPL", "JPM"],
        validation_scores={},
    )


def test_a_controller_fitted_on_later_data_is_not_used(tmp_path: Path) -> None:
    _store(tmp_path, "2022-11-14")
    ctx = SimpleNamespace(model_dir=tmp_path, mode="paper")
    assert _stored_controller(ctx, MARKET, {"AAPL"}) == (None, REGIME_REFIT_SESSIONS)


def test_an_earlier_controller_is_used_with_its_age_in_sessions(tmp_path: Path) -> None:
    _store(tmp_path, "2022-10-25")
    ctx = SimpleNamespace(model_dir=tmp_path, mode="paper")
    controller, age = _stored_controller(ctx, MARKET, {"AAPL"})
    assert controller == {"fitted through": "2022-10-25"}
    assert age == 4  # 26, 27, 28 and 31 October


class _Quiet:
    def error(self, *args: object) -> None:
        raise AssertionError(f"no notice expected: {args}")


@pytest.mark.asyncio
async def test_a_restart_sizes_like_the_run_it_continues(tmp_path: Path) -> None:
    """A restart on the stored controller takes the risk multiplier the unbroken run took.

    The POMDP belief moves once a session; the stored controller holds it as at its fit, so a
    restart three sessions later used to see a belief with none of those sessions in it (here
    neutral where the unbroken run was risk-off; in keyless paper 0.40 against 0.08, five
    times the size). Independent reference: the unbroken run itself, session by session.
    """
    closes = sample_history().bars.pivot_table(index="timestamp", columns="symbol", values="close")
    returns = log_returns(closes[["SP500", "AAPL", "JPM"]].dropna()).iloc[-800:]
    days = returns.index[-4:]  # fitted on the first, assessed on each

    def ctx(folder: Path) -> SimpleNamespace:
        folder.mkdir()
        journal = Journal(folder / "j.sqlite")
        return SimpleNamespace(
            mode="paper",
            model_dir=tmp_path / "models",
            shared={},
            journal=journal,
            notifier=_Quiet(),
            now=None,
        )

    unbroken = ctx(tmp_path / "a")
    for day in days:
        unbroken.now = day
        last = await assess_regime(unbroken, "SP500", returns.loc[:day])
    restarted = ctx(tmp_path / "b")
    restarted.now = days[-1]
    again = await assess_regime(restarted, "SP500", returns.loc[: days[-1]])
    assert again.reasoning["pomdp_action"] == last.reasoning["pomdp_action"]
    assert again.risk_multiplier == pytest.approx(last.risk_multiplier, rel=1e-12)
