"""A cycle held by a venue that does not answer is cancelled at ``[runner] cycle_limit_seconds``.

The runner against the loopback fake venue through alpaca-py and the real ``Executor``: the
venue holds the cycle's order request; the cycle is cancelled at its limit, logged, notified and
journaled as that slot's error, and the engine trades at its next slot. The order the venue then
takes is journaled with the venue's answer. References: the fake's record of the orders it
holds, the journal read with sqlite3, and the notices a recording notifier received.
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
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker, until, with_cycle_limit
from v28quant.broker import OrderRequest, Owner
from v28quant.clock import SimClock
from v28quant.engines import CycleReport, EngineContext
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.runner import Runner

ORDERS = "/v2/orders"
LIMIT_S = 0.5
SLOT = OPEN  # a cycle slot, 10:30 New York


class Notices:
    """Records the notices the runner sends."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> bool:
        self.errors.append(f"{where}: {message}")
        return True

    def notify(self, content: str) -> bool:
        return True

    def notify_quietly(self, content: str) -> bool:
        return True


class Buying:
    """An engine whose every cycle buys one share of SPY through the executor."""

    name = "equity"

    def __init__(self) -> None:
        self.cids: list[str] = []

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        owner = Owner(self.name, "trend", f"cycle-{len(self.cids)}")
        req = OrderRequest.equity("SPY", 1, "buy", owner=owner)
        self.cids.append(req.client_order_id)
        await ctx.executor.place(Decision(req, {}))
        return CycleReport(self.name, ctx.now, orders=1)

    async def end_of_day(self, ctx: EngineContext) -> None:
        return None


@pytest.fixture
def fake() -> Iterator[FakeAlpacaTrading]:
    f = FakeAlpacaTrading(now=OPEN).start()
    f.set_quote("SPY", "530.00", "530.10")
    yield f
    f.stop()


def _runner(fake: FakeAlpacaTrading, path: Path, engine: Any, **venue: Any) -> Runner:
    cfg = with_cycle_limit(LIMIT_S)
    # a client that waits out the venue's hold: only the runner's limit ends the cycle
    broker = fake_broker(fake.url, timeout_s=120.0)
    journal = Journal(path)
    ctx: Any = SimpleNamespace(
        mode="paper",
        config=cfg,
        notifier=Notices(),
        journal=journal,
        broker=broker,
        executor=Executor(broker, journal),
        risk=SimpleNamespace(denial_summary=lambda *_: None),
        now=SLOT,
    )
    shape = {"venue_clock": None, "keyless": False, "sim_clock": None, **venue}
    return Runner(ctx, SimpleNamespace(**shape), [engine])


def _decisions(path: Path, action: str) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT decision_id, reasoning FROM decisions WHERE engine = 'equity' AND action = ?",
            (action,),
        ).fetchall()
    return {cid: json.loads(reasoning) for cid, reasoning in rows}


def _venue_id_journaled(path: Path, cid: str) -> str | None:
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT broker_order_id FROM orders WHERE client_order_id = ?", (cid,)
        ).fetchone()
    return None if row is None else row[0]


@pytest.mark.asyncio
async def test_a_cycle_the_venue_holds_is_cancelled_at_its_limit_and_the_engine_goes_on(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    engine = Buying()
    runner = _runner(fake, path, engine)
    answer = threading.Event()
    fake.inject("POST", ORDERS, 200, hold=answer)  # the venue takes the request and says nothing
    held = asyncio.ensure_future(runner._cycle(engine, SLOT))
    try:
        await until(held.done, "the venue still holds the engine's cycle", bound_s=30)
    finally:
        answer.set()
    assert held.result() is None

    errors = _decisions(path, "error")
    assert list(errors) == [f"equity-cycle-error-{SLOT.isoformat()}"]
    assert "time limit" in errors[f"equity-cycle-error-{SLOT.isoformat()}"]["error"]
    notices = runner.ctx.notifier.errors
    assert len(notices) == 1
    assert "time limit" in notices[0]

    # the order the venue took once it answered is journaled with the venue's id
    first = engine.cids[0]
    await until(lambda: _venue_id_journaled(path, first) is not None, "order not journaled")
    (held_order,) = [o for o in fake.orders.values() if o["client_order_id"] == first]
    assert _venue_id_journaled(path, first) == held_order["id"]

    # the next slot trades as usual
    nxt = SLOT + timedelta(minutes=5)
    assert await runner._cycle(engine, nxt) is not None
    assert f"equity-cycle-{nxt.isoformat()}" in _decisions(path, "cycle")
    assert sorted(o["client_order_id"] for o in fake.orders.values()) == sorted(engine.cids)


class Slow:
    """An engine whose cycle takes longer than the limit (a long computation)."""

    name = "equity"

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        await asyncio.sleep(4 * LIMIT_S)
        return CycleReport(self.name, ctx.now, note="done")


@pytest.mark.asyncio
async def test_a_simulated_run_never_cuts_a_cycle(fake: FakeAlpacaTrading, tmp_path: Path) -> None:
    # on a simulated clock a cycle's length is the machine's speed, not a venue's hang: cutting
    # it would make a backtest's trades depend on the machine
    path = tmp_path / "j.sqlite"
    runner = _runner(fake, path, Slow(), keyless=True, sim_clock=SimClock(SLOT))
    report = await runner._cycle(runner.engines[0], SLOT)
    assert report is not None
    assert report.note == "done"
    assert _decisions(path, "error") == {}


class Following:
    """An engine whose follow between cycles looks at the account (a call that may hang)."""

    name = "equity"

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        return CycleReport(self.name, ctx.now)

    async def follow(self, ctx: EngineContext) -> bool:
        await ctx.executor.broker.account()
        return True


class Now:
    """A clock standing at the follow's slot: its sleeps end at once."""

    def now(self) -> Any:
        return SLOT

    async def sleep_until(self, when: Any) -> None:
        return None


@pytest.mark.asyncio
async def test_a_follow_the_venue_holds_is_cancelled_at_the_cycle_limit(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # between two cycles the engine follows its resting orders: a venue call there that hangs
    # must not hold the engine's next cycles for the day, as it would not in a cycle
    path = tmp_path / "j.sqlite"
    engine = Following()
    runner = _runner(fake, path, engine)
    answer = threading.Event()
    fake.inject("GET", "/v2/account", 200, hold=answer)
    held = asyncio.ensure_future(runner._follow(engine, Now(), [SLOT]))
    try:
        await until(held.done, "the venue still holds the engine's follow", bound_s=30)
    finally:
        answer.set()
    errors = _decisions(path, "error")
    assert list(errors) == [f"equity-follow-error-{SLOT.isoformat()}"]
    assert "time limit" in errors[f"equity-follow-error-{SLOT.isoformat()}"]["error"]
    assert len(runner.ctx.notifier.errors) == 1


@pytest.mark.asyncio
async def test_an_end_of_day_the_venue_holds_is_cut_at_the_cycle_limit(
    fake: FakeAlpacaTrading, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the roll-up's look at the account hangs: the runner must go on to the night's jobs and
    # the next session, as after an account that does not answer
    path = tmp_path / "j.sqlite"
    runner = _runner(fake, path, Buying())
    answer = threading.Event()
    fake.inject("GET", "/v2/account", 200, hold=answer)
    held = asyncio.ensure_future(runner.end_of_day(SLOT.date()))
    try:
        await until(held.done, "the venue still holds the end of day", bound_s=30)
    finally:
        answer.set()
    held.result()
    assert runner.state.equity == []  # not marked: the account did not answer in time
    assert f"account unavailable, not marked: the venue did not answer within {LIMIT_S:g} s" in (
        caplog.text
    )
