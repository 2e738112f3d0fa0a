"""An engine's own pre-market job held by a keyed venue or feed is cut per read.

The runner runs the options engine's pre-market job against the loopback fake venue through
alpaca-py. A look the venue holds (the account's activities), or a history read the feed never
answers, is cut at ``[runner] cycle_limit_seconds``: the engine's job fails as on the venue's
error (logged, notified, journaled as the engine's pre-market error) instead of holding the
day's cycles. References: the journal read with sqlite3, the notices received, and the number
of history reads the feed was asked for.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker, until, with_cycle_limit
from fakes.options_world import RecordingNotifier
from v28quant.calendar import ExchangeCalendar
from v28quant.clock import SimClock
from v28quant.execution import Executor
from v28quant.journal import Journal
from v28quant.options.engine import OptionsEngine
from v28quant.runner import Runner

ACTIVITIES = "/v2/account/activities"
LIMIT_S = 0.5


class HangingFeed:
    """A feed whose history reads never answer; counts them."""

    def __init__(self) -> None:
        self.reads = 0

    async def bars(self, *_: Any) -> Any:
        self.reads += 1
        await asyncio.Event().wait()


@pytest.fixture
def fake() -> Iterator[FakeAlpacaTrading]:
    f = FakeAlpacaTrading(now=OPEN).start()
    yield f
    f.stop()


def _runner(fake: FakeAlpacaTrading, path: Path, feed: HangingFeed) -> Runner:
    cfg = with_cycle_limit(LIMIT_S)
    # a client that waits out the venue's hold: only the runner's limit ends the read
    broker = fake_broker(fake.url, timeout_s=120.0)
    journal = Journal(path)
    ctx: Any = SimpleNamespace(
        mode="paper",
        config=cfg,
        notifier=RecordingNotifier(),
        journal=journal,
        broker=broker,
        executor=Executor(broker, journal),
        feed=feed,
        clock=SimClock(OPEN),
        calendar=ExchangeCalendar(),
        universe=("SPY", "QQQ"),
        aggregator=None,
        regime=None,
        risk=None,
        now=OPEN,
        shared={},
    )
    venue = SimpleNamespace(venue_clock=None, keyless=False, sim_clock=None)
    return Runner(ctx, venue, [OptionsEngine()])


def _premarket_errors(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT reasoning FROM decisions WHERE engine = 'options' AND action = 'error'"
        ).fetchall()
    return [json.loads(r) for (r,) in rows]


async def _premarket(runner: Runner) -> None:
    job = asyncio.ensure_future(runner._engines_premarket(OPEN))
    try:
        await until(job.done, "the engine's pre-market job is still held", bound_s=30)
    finally:
        job.cancel()
    await runner.ctx.broker.aclose()


@pytest.mark.asyncio
async def test_a_venue_read_that_hangs_fails_the_engines_pre_market_job(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    runner = _runner(fake, path, HangingFeed())
    answer = threading.Event()
    fake.inject("GET", ACTIVITIES, 200, hold=answer)  # the venue takes the read, says nothing
    try:
        await _premarket(runner)
    finally:
        answer.set()
    (failed,) = _premarket_errors(path)
    assert failed["step"] == "premarket"
    assert f"activities: no answer within {LIMIT_S:g} s" in failed["error"]
    assert any(
        "options premarket" in n and f"{LIMIT_S:g} s" in n for n in runner.ctx.notifier.notices
    )


@pytest.mark.asyncio
async def test_a_history_read_that_hangs_fails_the_job_not_each_underlying(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # cutting each underlying's read in turn would hold the cycles the limit times over
    path = tmp_path / "j.sqlite"
    feed = HangingFeed()
    runner = _runner(fake, path, feed)
    await _premarket(runner)
    (failed,) = _premarket_errors(path)
    assert f"history of SPY: no answer within {LIMIT_S:g} s" in failed["error"]
    assert feed.reads == 1
