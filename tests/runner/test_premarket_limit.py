"""A pre-market job held by a keyed venue is cut at ``[runner] cycle_limit_seconds`` per read.

The runner's pre-market job against the loopback fake venue through alpaca-py: the venue holds
the job's look at the account. The read is cut at its limit; trading stays held back; the cut
is logged, notified and journaled, and the job is tried again as after a venue that failed.
References: the fake's count of the requests it received, the journal read with sqlite3, and
the notices a recording notifier received.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import v28quant.runner as runner_module
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker, until, with_cycle_limit
from v28quant.calendar import ExchangeCalendar
from v28quant.clock import SimClock
from v28quant.journal import Journal
from v28quant.premarket import PremarketReadTimeout, load_history
from v28quant.runner import Runner

ACCOUNT = "/v2/account"
LIMIT_S = 0.5


class Notices:
    """Records the error notices the runner sends."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> bool:
        self.errors.append(f"{where}: {message}")
        return True

    def notify(self, content: str) -> bool:
        return True


class AnsweringClock:
    """A venue clock that answers every read (the venue's clock is not what hangs)."""

    reads = 0

    async def refresh(self) -> None:
        self.reads += 1


@pytest.fixture
def fake() -> Iterator[FakeAlpacaTrading]:
    f = FakeAlpacaTrading(now=OPEN).start()
    yield f
    f.stop()


def _runner(fake: FakeAlpacaTrading, path: Path) -> Runner:
    cfg = with_cycle_limit(LIMIT_S)
    # a client that waits out the venue's hold: only the runner's limit ends the read
    broker = fake_broker(fake.url, timeout_s=120.0)
    ctx: Any = SimpleNamespace(
        mode="paper",
        config=cfg,
        notifier=Notices(),
        journal=Journal(path),
        broker=broker,
        clock=SimClock(OPEN),
        calendar=ExchangeCalendar(),
        feed=None,
        now=OPEN,
        shared={},
    )
    venue = SimpleNamespace(venue_clock=AnsweringClock(), keyless=False, sim_clock=None)
    return Runner(ctx, venue, [SimpleNamespace(name="equity")])


def _runner_errors(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT reasoning FROM decisions WHERE engine = 'runner' AND action = 'error'"
        ).fetchall()
    return [json.loads(r) for (r,) in rows]


@pytest.mark.asyncio
async def test_a_pre_market_job_the_venue_holds_is_cut_journaled_and_tried_again(
    fake: FakeAlpacaTrading, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "VENUE_RETRY_S", (0.0, 0.0))
    path = tmp_path / "j.sqlite"
    runner = _runner(fake, path)
    answer = threading.Event()
    fake.inject("GET", ACCOUNT, 200, hold=answer)  # the venue takes the read and says nothing
    fake.inject("GET", ACCOUNT, 401, {"message": "unauthorized"})  # ends the second try
    held = asyncio.ensure_future(runner._premarket(until=OPEN + timedelta(hours=5)))
    try:
        await until(held.done, "the venue still holds the pre-market job", bound_s=30)
    finally:
        answer.set()
    assert held.result() is False  # no trading while the job has not run

    (cut,) = _runner_errors(path)
    assert cut["step"] == "premarket"
    assert f"{LIMIT_S:g} s" in cut["error"]
    notices = runner.ctx.notifier.errors
    assert "no trading until it runs again" in notices[0]
    assert f"{LIMIT_S:g} s" in notices[0]
    assert fake.count("GET", ACCOUNT) == 2  # tried again after the cut


class HangingFeed:
    """A feed whose history read never answers."""

    async def bars(self, *_: Any) -> Any:
        await asyncio.Event().wait()


@pytest.mark.asyncio
async def test_a_history_read_that_hangs_fails_the_load_not_only_its_symbol() -> None:
    # a cut read must fail the job (tried again), not be dropped as one symbol's bad data:
    # dropping it would wait the limit out once per symbol of the universe
    ctx: Any = SimpleNamespace(now=OPEN, calendar=ExchangeCalendar(), feed=HangingFeed())
    with pytest.raises(
        PremarketReadTimeout, match=f"history of AAPL: no answer within {LIMIT_S:g} s"
    ):
        await load_history(ctx, ["AAPL", "SPY"], 20, limit_s=LIMIT_S)
