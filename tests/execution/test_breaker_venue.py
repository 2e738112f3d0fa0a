"""The venue breaker through ``Executor`` and alpaca-py against the loopback fake.

After an outage's cooldown one order goes as a probe; while its answer is awaited every other
order, from either engine, is journaled ``refused`` and never reaches the venue. Reference: the
fake's record of the order requests it received, and the journal read with sqlite3.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker, until
from v28quant.broker import OrderRequest, Owner
from v28quant.clock import SimClock
from v28quant.execution import Decision, Executor
from v28quant.execution.breaker import COOLDOWN
from v28quant.journal import Journal

ORDERS = "/v2/orders"
DOWN = "<html>503 Service Unavailable</html>"


def buy(engine: str, qty: int, decision: str) -> Decision:
    owner = Owner(engine, "trend", decision)
    return Decision(OrderRequest.equity("SPY", qty, "buy", owner=owner), {})


def posted(fake: FakeAlpacaTrading, cid: str) -> int:
    """How many order requests under ``cid`` reached the venue."""
    return sum(
        1 for m, p, b in fake.requests if (m, p) == ("POST", ORDERS) and b["client_order_id"] == cid
    )


def journal_status(path: Path, cid: str) -> str:
    with sqlite3.connect(path) as db:
        (status,) = db.execute(
            "SELECT status FROM orders WHERE client_order_id = ?", (cid,)
        ).fetchone()
    return str(status)


@pytest.mark.asyncio
async def test_one_probe_after_the_cooldown_the_other_orders_wait_for_its_answer(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    clock = SimClock(OPEN)
    ex = Executor(fake_broker(fake.url), Journal(path), clock=clock)
    fake.inject("POST", ORDERS, 503, DOWN, times=10)
    down = await ex.place(buy("equity", 1, "outage"))
    assert down.status == "unknown"
    fake.faults.clear()

    clock.advance(COOLDOWN + timedelta(seconds=1))
    answer = threading.Event()
    fake.inject("POST", ORDERS, 200, hold=answer)  # the probe's answer waits for the test
    first = buy("equity", 2, "probe")
    probe = asyncio.ensure_future(ex.place(first))
    try:
        await until(lambda: posted(fake, first.request.client_order_id) == 1, "no probe sent")
        other = await ex.place(buy("options", 3, "meanwhile"))
    finally:
        answer.set()
    assert (await probe).status == "filled"
    assert other.status == "refused"
    assert posted(fake, other.client_order_id) == 0
    assert journal_status(path, other.client_order_id) == "refused"

    # the probe was answered: orders go again
    after = await ex.place(buy("options", 3, "after"))
    assert after.status == "filled"
    assert posted(fake, after.client_order_id) == 1


@pytest.mark.asyncio
async def test_an_outage_one_engine_meets_pauses_every_executor_on_the_venue(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    broker, journal = fake_broker(fake.url), Journal(path)
    equity, options = Executor(broker, journal), Executor(broker, journal)
    fake.inject("POST", ORDERS, 503, DOWN, times=10)
    assert (await equity.place(buy("equity", 1, "outage"))).status == "unknown"
    fake.faults.clear()
    other = await options.place(buy("options", 2, "meanwhile"))
    assert other.status == "refused"
    assert posted(fake, other.client_order_id) == 0
    assert journal_status(path, other.client_order_id) == "refused"
