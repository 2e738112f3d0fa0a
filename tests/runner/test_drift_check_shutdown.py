"""A drift check still retraining when the runner is stopped journals its retrain before the exit.

The night's drift check of the equity engine was cut (its off-hours budget) while its retrain
ran on; SIGTERM then stops the runner. The runner's shutdown must wait for the check, so the
``retrain`` decision is in the journal the process leaves. The learner is the real
``ContinuousLearner`` with a detector that always finds drift and a retrain that takes a while.
Reference: the journal read with sqlite3 after the runner closed it, as the process does.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from v28quant.config import load_config
from v28quant.equity.engine import EquityEngine
from v28quant.equity.learning import TradeLearner
from v28quant.equity.sources import MlSource
from v28quant.journal import Journal
from v28quant.ml.continuous_learner import (
    ContinuousLearner,
    ContinuousLearnerConfig,
    DriftReport,
    TradeOutcome,
)
from v28quant.runner import Runner

NIGHT = datetime(2024, 6, 3, 21, 0, tzinfo=UTC)  # 17:00 New York, after the close
RETRAIN_S = 0.5


class AlwaysDrift:
    """A drift detector whose every test finds one feature drifted."""

    def test(self, *_: Any) -> DriftReport:
        p = np.array([0.001])
        return DriftReport(("ret_1",), p, p, 0.05, "benjamini-hochberg")


class SlowRetrain:
    """A retrain that takes ``RETRAIN_S`` seconds; says when it has begun."""

    def __init__(self) -> None:
        self.begun = threading.Event()

    def __call__(self, X: np.ndarray, y: np.ndarray) -> Mapping[str, Any]:
        self.begun.set()
        time.sleep(RETRAIN_S)
        return {}


def _learning(retrain: SlowRetrain) -> TradeLearner:
    """Return a trade learner whose next check drifts and starts ``retrain``."""
    config = ContinuousLearnerConfig(window=3, min_trades=2, cooldown=3, test_every=10**6)
    learner = ContinuousLearner({}, AlwaysDrift(), retrain, config)  # type: ignore[arg-type]
    for i in range(3):  # enough trades for a test; none tested on the way (cooldown)
        assert learner.record_trade(TradeOutcome("AAPL", np.array([0.01 * i]), 0.6, 1.0)) is None
    return TradeLearner(MlSource(), learner=learner)


def _retrains(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT decision_id FROM decisions WHERE action = 'retrain'").fetchall()
    return [r[0] for r in rows]


@pytest.mark.asyncio
async def test_a_stop_waits_for_the_drift_checks_retrain_and_journals_it(tmp_path: Path) -> None:
    _, cfg = load_config(None)
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    engine = EquityEngine(cfg.equity, sources=[])
    retrain = SlowRetrain()
    engine.learning = _learning(retrain)
    ctx: Any = SimpleNamespace(mode="paper", config=cfg, journal=journal, now=NIGHT)
    venue = SimpleNamespace(
        venue_clock=None, keyless=False, sim_clock=None, broker_desc="fake", data_desc="fake"
    )
    runner = Runner(ctx, venue, [engine])

    # the night's check, cut by its budget once its retrain has begun
    checking = asyncio.ensure_future(engine.drift_check(ctx))
    await asyncio.to_thread(retrain.begun.wait, 30)
    checking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await checking

    runner.on_signal(signal.SIGTERM)
    assert await runner.run() == 0
    journal.close()  # what the process does next (runner_setup), then it exits
    assert len(_retrains(path)) == 1
