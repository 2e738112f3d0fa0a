"""The venue holds an order under the client order id being placed, for another request.

An earlier run sent it (sized on what the account held then) and died before journaling it;
the restart places the same decision again with a different size. The venue answers the submit
with a client order id conflict. The journal must then say what the venue holds under that id
(its order, its status, its fills), keep the order's reservation while it works, say the
conflict once and never send a second order.

On the loopback fake of Alpaca's trading API with the real alpaca-py client; the journal is
read with sqlite3, and what the venue holds is the fake's own.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import fake_broker
from fakes.options_world import RecordingNotifier
from v28quant.broker import ClientOrderIdConflict, OrderRequest, Owner
from v28quant.execution import Decision, Executor
from v28quant.execution.types import Reservation
from v28quant.journal import Journal

OWNER = Owner("equity", "trend", "sent-before")


def _buy(qty: int) -> OrderRequest:
    return OrderRequest.equity(
        "SPY", qty, "buy", owner=OWNER, type="limit", limit_price=Decimal(500)
    )


def _decision(qty: int) -> Decision:
    reserve = Reservation(OWNER, "cash", None, Decimal(500 * qty))
    return Decision(_buy(qty), {"why": "a restart sized it again"}, reserve=reserve)


def _read(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(str(path))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


@pytest.mark.asyncio
async def test_a_conflicting_order_at_the_venue_is_journaled_as_the_venue_holds_it(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    broker = fake_broker(fake.url)
    sent = await broker.submit(_buy(10))  # the earlier run's order: rests at the venue
    path = tmp_path / "j.sqlite"
    notices = RecordingNotifier()
    ex = Executor(broker, Journal(path), notifier=notices)
    cid = OWNER.client_order_id

    for _ in range(2):  # the restart's cycle, then the next one
        with pytest.raises(ClientOrderIdConflict, match="qty"):
            await ex.place(_decision(12))
    assert len(fake.orders) == 1  # never a second order
    assert len([n for n in notices.notices if "another request" in n]) == 1

    orders = "SELECT broker_order_id, status, filled_qty FROM orders"
    assert _read(path, orders) == [(sent.id, "new", "0")]
    reserved = "SELECT client_order_id FROM reservations WHERE released_ts IS NULL"
    assert _read(path, reserved) == [(cid,)]  # the venue's order works: still reserved

    fake.set_quote("SPY", "499.90", "500.00")  # the ask comes down: the venue's order fills
    fake.process()
    await ex.sync()
    assert _read(path, orders) == [(sent.id, "filled", "10")]
    assert _read(path, "SELECT client_order_id, qty FROM fills") == [(cid, "10")]
    assert _read(path, reserved) == []  # a buy paid its cash: nothing left to reserve
    await ex.aclose()
    await broker.aclose()


@pytest.mark.asyncio
async def test_the_journal_sizes_a_conflicting_order_and_its_reservation_as_the_venue_holds_it(
    fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    broker = fake_broker(fake.url)
    sent = await broker.submit(  # the earlier run's order: 10 at 495, resting at the venue
        OrderRequest.equity("SPY", 10, "buy", owner=OWNER, type="limit", limit_price="495")
    )
    path = tmp_path / "j.sqlite"
    ex = Executor(broker, Journal(path), notifier=RecordingNotifier())

    for _ in range(2):  # the restart's 12 at 500, then the next cycle's
        with pytest.raises(ClientOrderIdConflict, match="qty"):
            await ex.place(_decision(12))

    ((request, spend),) = _read(path, "SELECT request, spend_amount FROM orders")
    held = json.loads(request)
    assert (held["qty"], held["limit_price"], held["side"]) == ("10", "495", "buy")
    assert Decimal(spend) == 10 * 495  # what the venue's order commits, not 12 x 500
    active = "SELECT amount FROM reservations WHERE released_ts IS NULL"
    assert [Decimal(a) for (a,) in _read(path, active)] == [Decimal(10 * 495)]
    assert [o["id"] for o in fake.orders.values()] == [sent.id]  # never a second order
    await ex.aclose()
    await broker.aclose()
