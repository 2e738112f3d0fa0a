"""A send whose caller was cancelled (a cycle cut at its time limit) runs to the venue's answer.

The executor against SimBroker, its submit held on a future that only the send itself
references (as a venue call awaiting a bare future does). The event loop holds its tasks
weakly: the executor must hold the send until it ends, and wait for it before closing, or the
order the venue takes is never journaled. Reference: the journal read with sqlite3.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from fakes.fixtures import StaticQuotes
from v28quant.broker import Order, OrderRequest, Owner
from v28quant.broker.sim import SimBroker, SimConfig
from v28quant.clock import SimClock
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal

OPEN = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)  # Mon 2024-06-03 10:30 New York


class HeldVenue:
    """A SimBroker whose submits wait on a gate that only the waiting send references."""

    def __init__(self) -> None:
        clock = SimClock(OPEN)
        quotes = StaticQuotes(clock)
        quotes.set("SPY", "530.00", "530.10")
        self.broker = SimBroker(quotes, clock, SimConfig(cash=D("100000")))
        self.clock = clock
        self.gates: list[weakref.ref[asyncio.Future[None]]] = []
        self._submit = self.broker.submit
        self.broker.submit = self._held_submit  # type: ignore[method-assign]

    async def _held_submit(self, request: OrderRequest) -> Order:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.gates.append(weakref.ref(gate))
        await gate
        return await self._submit(request)

    async def held(self) -> None:
        while not self.gates:
            await asyncio.sleep(0.01)


@pytest.fixture
def venue() -> HeldVenue:
    return HeldVenue()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "j.sqlite")
    yield j
    j.close()


def buy_one(decision: str) -> Decision:
    owner = Owner("equity", "trend", decision)
    return Decision(OrderRequest.equity("SPY", 1, "buy", owner=owner), {})


def journaled(journal: Journal, cid: str) -> tuple[str, str | None] | None:
    with sqlite3.connect(journal.path) as db:
        row = db.execute(
            "SELECT status, broker_order_id FROM orders WHERE client_order_id = ?", (cid,)
        ).fetchone()
    return None if row is None else (row[0], row[1])


async def cut_while_sending(executor: Executor, venue: HeldVenue, decision: Decision) -> None:
    """Place ``decision`` under a time limit, as a cycle does, cut once the venue holds it."""

    async def cycle() -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None) as limit:
                placing = asyncio.ensure_future(executor.place(decision))
                await venue.held()
                limit.reschedule(asyncio.get_running_loop().time())
                await placing

    await asyncio.ensure_future(cycle())


async def answered(journal: Journal, cid: str) -> tuple[str, str | None] | None:
    for _ in range(200):
        row = journaled(journal, cid)
        if row is not None and row[0] != "intent":
            return row
        await asyncio.sleep(0.01)
    return journaled(journal, cid)


@pytest.mark.asyncio
async def test_a_cut_send_survives_garbage_collection_and_journals_the_venue_answer(
    venue: HeldVenue, journal: Journal
) -> None:
    executor = Executor(venue.broker, journal, clock=venue.clock)
    decision = buy_one("cut-gc")
    cid = decision.request.client_order_id
    await cut_while_sending(executor, venue, decision)
    gc.collect()

    gate = venue.gates[0]()
    assert gate is not None, "the send was collected while the venue held it"
    gate.set_result(None)
    status, venue_id = await answered(journal, cid) or ("missing", None)
    assert status == "filled"
    assert venue_id == (await venue.broker.order_by_client_id(cid)).id  # type: ignore[union-attr]
    await executor.aclose()


@pytest.mark.asyncio
async def test_closing_the_executor_waits_for_a_cut_send(
    venue: HeldVenue, journal: Journal
) -> None:
    executor = Executor(venue.broker, journal, clock=venue.clock)
    decision = buy_one("cut-close")
    cid = decision.request.client_order_id
    await cut_while_sending(executor, venue, decision)
    gate = venue.gates[0]()
    assert gate is not None

    closing = asyncio.ensure_future(executor.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done(), "the executor closed with an order's send still going on"
    gate.set_result(None)
    await closing
    assert journaled(journal, cid) == ("filled", (await venue.broker.order_by_client_id(cid)).id)  # type: ignore[union-attr]
