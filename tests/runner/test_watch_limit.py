"""The per-slot account watch held by a keyed venue is cut at ``[runner] cycle_limit_seconds``.

The runner's watch against the loopback fake venue through alpaca-py, with an operator's
flatten pending on 10 AAPL: the venue holds the flatten's closing order. The watch is cut at
its limit (every engine's cycle waits on it) and the cut is logged, notified and journaled as
that slot's watch error; the closing order's send goes on. The next slot's watch must not send
a second closing order while the first is still on its way, nor while it works at the venue:
both filling would turn the account short. References: the fake's own record of the orders it
received and the positions it holds, the journal read with sqlite3, and the notices received.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker, until, with_cycle_limit
from v28quant.calendar import ExchangeCalendar
from v28quant.clock import SimClock
from v28quant.execution import Executor
from v28quant.journal import Journal
from v28quant.risk import FLATTEN, RiskGate, halt_state, record_control
from v28quant.runner import Runner
from v28quant.settings import RiskLimits

ORDERS = "/v2/orders"
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


@pytest.fixture
def fake() -> Iterator[FakeAlpacaTrading]:
    f = FakeAlpacaTrading(now=OPEN).start()
    f.shorting_enabled = True  # a margin account: a second close would sell it short
    f.set_quote("AAPL", "99.99", "100.01", 1000, 1000)
    f.positions["AAPL"] = [Decimal(10), Decimal(100)]
    yield f
    f.stop()


def _runner(fake: FakeAlpacaTrading, path: Path, limit_s: float = LIMIT_S) -> Runner:
    cfg = with_cycle_limit(limit_s)
    # a client that waits out the venue's hold: only the runner's limit ends the call
    broker = fake_broker(fake.url, timeout_s=120.0)
    journal = Journal(path)
    ctx: Any = SimpleNamespace(
        mode="paper",
        config=cfg,
        notifier=Notices(),
        journal=journal,
        broker=broker,
        executor=Executor(broker, journal),
        risk=RiskGate(RiskLimits(), journal),
        clock=SimClock(OPEN),
        calendar=ExchangeCalendar(),
        now=OPEN,
        shared={},
    )
    venue = SimpleNamespace(venue_clock=None, keyless=False, sim_clock=None)
    return Runner(ctx, venue, [SimpleNamespace(name="equity")])


def _watch_errors(path: Path) -> list[tuple[str, dict[str, Any]]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT decision_id, reasoning FROM decisions"
            " WHERE engine = 'runner' AND action = 'error'"
        ).fetchall()
    return [(d, json.loads(r)) for d, r in rows]


@pytest.mark.asyncio
async def test_a_watch_the_venue_holds_is_cut_and_its_flatten_never_closes_twice(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    runner = _runner(fake, path)
    ctx = runner.ctx
    record_control(ctx.journal, FLATTEN, "test", "operator", OPEN)
    answer = threading.Event()
    fake.inject("POST", ORDERS, 200, hold=answer)  # the closing order reaches the venue late
    first = asyncio.ensure_future(runner._watch(OPEN))
    try:
        await until(first.done, "the venue still holds the account watch", bound_s=30)
        ctx.now = OPEN + timedelta(minutes=5)  # the next slot, the first close still on its way
        await asyncio.wait_for(runner._watch(ctx.now), 30)
        assert fake.count("POST", ORDERS) == 1
    finally:
        answer.set()
        await first
    await until(lambda: not ctx.executor.sending(), "the closing order is still being sent")
    assert "AAPL" not in fake.positions  # closed by the one order, not turned short

    ((decision_id, cut),) = _watch_errors(path)
    assert decision_id == f"runner-watch-error-{OPEN.isoformat()}"
    assert cut["step"] == "watch"
    assert f"{LIMIT_S:g} s" in cut["error"]
    assert any("account watch" in n and f"{LIMIT_S:g} s" in n for n in ctx.notifier.errors)
    assert halt_state(ctx.journal).flatten_pending  # not over while its close was on its way

    ctx.now = OPEN + timedelta(minutes=10)
    await runner._watch(ctx.now)  # the close has landed: nothing left, the flatten is done
    assert fake.count("POST", ORDERS) == 1
    assert not halt_state(ctx.journal).flatten_pending
    await ctx.broker.aclose()


@pytest.mark.asyncio
async def test_a_flatten_waiting_for_its_short_cover_ends_its_wait_inside_the_watch_limit(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    """A 30 s wait for a short call's cover fits in a 4 s watch limit, not cut there each slot.

    The cover works unfilled (no ask). By hand: the 100 AAPL the call covers are held back,
    the flatten stays pending and says why, and the watch is not cut (no watch error
    journaled).
    """
    call = "AAPL240621C00100000"
    fake.positions["AAPL"] = [Decimal(100), Decimal(100)]  # covering the call
    fake.positions[call] = [Decimal(-1), Decimal(2)]
    fake.set_quote(call, "1.90", "0")  # no offer: a market buy works unfilled
    path = tmp_path / "j.sqlite"
    runner = _runner(fake, path, limit_s=4.0)
    ctx = runner.ctx
    record_control(ctx.journal, FLATTEN, "test", "operator", OPEN)
    await asyncio.wait_for(runner._watch(OPEN), 30)

    assert _watch_errors(path) == []
    assert fake.count("POST", ORDERS) == 1  # the call's cover; the shares are held back
    assert fake.positions["AAPL"][0] == Decimal(100)
    assert halt_state(ctx.journal).flatten_pending
    assert any("wait for their short legs" in n for n in ctx.notifier.errors)
    await ctx.broker.aclose()
