"""A reservation of an order the venue never took is released by the next ``sync``.

An order journaled ``rejected`` (a first-try refusal) or ``not_sent`` (a look-up found none)
with no venue id releases its reservation in a second write; a process that dies between the
two leaves the reservation held. The venue holds no order to confirm the end by, and nothing
there can use what it reserves: the next sync releases it without asking the venue, once.

On the loopback fake of Alpaca's trading API with the real alpaca-py client; the journal is
read with sqlite3.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker
from v28quant.broker import OrderRequest, Owner, request_hash
from v28quant.execution import Decision, Executor
from v28quant.execution.types import Reservation
from v28quant.journal import Claim, Journal

OWNER = Owner("equity", "trend", "never-taken")
RESERVED = Decimal(5000)
LOOKUPS = r"/v2/orders:by_client_order_id.*"


def _reservations(journal: Path) -> list[tuple[str, bool]]:
    """Return (client order id, released) of every reservation."""
    db = sqlite3.connect(str(journal))
    rows = db.execute("SELECT client_order_id, released_ts FROM reservations ORDER BY id")
    out = [(str(cid), released is not None) for cid, released in rows.fetchall()]
    db.close()
    return out


def _status(journal: Path, cid: str) -> tuple[str, str | None]:
    db = sqlite3.connect(str(journal))
    (row,) = db.execute(
        "SELECT status, broker_order_id FROM orders WHERE client_order_id = ?", (cid,)
    ).fetchall()
    db.close()
    return str(row[0]), row[1]


def _dies_in_the_first_release(ex: Executor) -> None:
    """Make the executor's first reservation release fail, as a process that dies there."""
    release = ex._release
    calls = []

    async def once(cid: str, reason: str) -> None:
        calls.append(cid)
        if len(calls) == 1:
            raise RuntimeError("the process died before releasing")
        await release(cid, reason)

    ex._release = once  # type: ignore[method-assign]


def _buy(symbol: str) -> OrderRequest:
    return OrderRequest.equity(
        symbol, 10, "buy", owner=OWNER, type="limit", limit_price=Decimal(500)
    )


async def _rejected_on_its_first_try(ex: Executor) -> str:
    """Place a buy of an asset the venue does not know: refused on the first try."""
    reserve = Reservation(OWNER, "cash", None, RESERVED)
    with pytest.raises(RuntimeError, match="died"):
        await ex.place(Decision(_buy("ZZZZ"), {"why": "no such asset"}, reserve=reserve))
    return OWNER.client_order_id


async def _not_sent_after_its_look_up(ex: Executor) -> str:
    """Journal an intent with a reservation whose send never left; sync looks it up."""
    req = _buy("SPY")
    ex.journal.sync.admit_order(
        client_order_id=req.client_order_id,
        engine=OWNER.engine,
        strategy=OWNER.strategy,
        decision_id=OWNER.decision_id,
        symbol="SPY",
        request=req.to_dict(),
        request_hash=request_hash(req),
        reasoning={"why": "sent by a run that died in the send"},
        ts=OPEN,
        reserve=Claim("cash", None, RESERVED),
        capacity={("cash", None): Decimal(100_000)},
    )
    with pytest.raises(RuntimeError, match="died"):
        await ex.sync()
    return req.client_order_id


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("journaled", "end"),
    [("rejected", _rejected_on_its_first_try), ("not_sent", _not_sent_after_its_look_up)],
)
async def test_a_reservation_left_by_an_order_the_venue_never_took_is_released_by_sync(
    fake: FakeAlpacaTrading, tmp_path: Path, journaled: str, end: object
) -> None:
    path = tmp_path / "j.sqlite"
    broker = fake_broker(fake.url)
    ex = Executor(broker, Journal(path))
    _dies_in_the_first_release(ex)
    cid = await end(ex)  # type: ignore[operator]
    assert _status(path, cid) == (journaled, None)
    assert _reservations(path) == [(cid, False)]  # held: the release never happened

    looked = fake.count("GET", LOOKUPS)
    await ex.sync()
    assert _reservations(path) == [(cid, True)]
    assert fake.count("GET", LOOKUPS) == looked  # nothing at the venue to ask about
    assert _status(path, cid) == (journaled, None)
    await ex.aclose()
    await broker.aclose()
