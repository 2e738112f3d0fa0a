"""A reservation of an order that ended while the runner was down is released by ``sync``.

An order with a reservation rests at the venue; the runner stops, the order ends there (a
person cancels it, or it fills), and the restart's reconcile journals its end as the venue has
it. No engine's book follows the order (its book file lost, or its engine no longer runs), so
the execution service's ``sync`` is all that looks: the reservation must be released after one,
once, and one moved to a replacement (a walk the runner sent and died before journaling) must
end on the replacement, never released off the order it left.

On the loopback fake of Alpaca's trading API with the real alpaca-py client; the journal is
read with sqlite3, and what each order holds is the fake's own.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import fake_broker
from v28quant.broker import OrderRequest, Owner
from v28quant.execution import Decision, Executor
from v28quant.execution.types import Reservation
from v28quant.journal import Journal
from v28quant.reconcile import reconcile

OWNER = Owner("equity", "trend", "rests")
RESERVED = Decimal(6000)
LOOKUPS = r"/v2/orders:by_client_order_id"


def _reservations(journal: Path) -> list[tuple[str, str | None, str | None]]:
    """Return (client order id, released ts, release reason) of every reservation."""
    db = sqlite3.connect(str(journal))
    rows = db.execute(
        "SELECT client_order_id, released_ts, release_reason FROM reservations ORDER BY id"
    ).fetchall()
    db.close()
    return [(str(c), r, why) for c, r, why in rows]


async def _resting_buy_with_a_reservation(ex: Executor) -> str:
    """Place a limit buy of 10 SPY at 500 (below the ask: it rests) reserving 6000 cash."""
    req = OrderRequest.equity("SPY", 10, "buy", owner=OWNER, type="limit", limit_price=Decimal(500))
    reserve = Reservation(OWNER, "cash", None, RESERVED)
    out = await ex.place(Decision(req, {"why": "a resting buy"}, reserve=reserve))
    assert out.status == "new"
    return out.client_order_id


@pytest.mark.asyncio
@pytest.mark.parametrize("end", ["canceled", "filled"])
async def test_an_order_ended_while_down_frees_its_reservation_after_one_sync(
    fake: FakeAlpacaTrading, tmp_path: Path, end: str
) -> None:
    path = tmp_path / "j.sqlite"
    broker = fake_broker(fake.url)
    ex = Executor(broker, Journal(path))
    cid = await _resting_buy_with_a_reservation(ex)
    (oid,) = fake.orders
    if end == "canceled":  # by a person at the venue
        await broker.cancel(oid)
    else:  # the ask came down to the limit: a buy pays its cash, none is left to reserve
        fake.set_quote("SPY", "499.90", "500.00")
        fake.process()
    assert fake.orders[oid]["status"] == end
    await reconcile(ex.journal.sync, broker)  # the restart journals the order's end
    assert _reservations(path) == [(cid, None, None)]

    await ex.sync()
    ((held_by, released, why),) = _reservations(path)
    assert (held_by, released is not None) == (cid, True), why
    looked = fake.count("GET", LOOKUPS + ".*")
    await ex.sync()  # released once: a second sync neither looks again nor releases again
    assert _reservations(path) == [(cid, released, why)]
    assert fake.count("GET", LOOKUPS + ".*") == looked
    await broker.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("replacement_ends", [False, True])
async def test_a_replaced_orders_reservation_ends_on_its_replacement(
    fake: FakeAlpacaTrading, tmp_path: Path, replacement_ends: bool
) -> None:
    path = tmp_path / "j.sqlite"
    broker = fake_broker(fake.url)
    ex = Executor(broker, Journal(path))
    cid = await _resting_buy_with_a_reservation(ex)
    (oid,) = fake.orders
    # the walk the runner sent before it died: the venue holds the order replaced by its -r1
    new = await broker.replace(oid, limit_price=Decimal(501))
    assert new.client_order_id == f"{cid}-r1"
    if replacement_ends:
        await broker.cancel(new.id)
    await reconcile(ex.journal.sync, broker)  # the restart journals what the venue holds
    assert _reservations(path) == [(cid, None, None)]

    await ex.sync()
    ((held_by, released, _),) = _reservations(path)
    assert held_by == new.client_order_id
    assert (released is not None) is replacement_ends
    await broker.aclose()
