"""A stock split of a held stock, as a trader holding AAPL through a 4-for-1 split meets it.

On the ex-date Alpaca multiplies the position's quantity by the ratio, divides its average entry
price by it and quotes the stock at a quarter; it lists a non-trade SPLIT activity whose fields
it does not document. The journal's fills still say 10 shares at the old price.

References: the fake Alpaca's own record of the requests it was sent and of its positions, the
journal read with sqlite3, and P&L worked out by hand from the fake's fill prices.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker
from v28quant.broker import OrderRequest, Owner
from v28quant.clock import SimClock
from v28quant.journal import Journal
from v28quant.reconcile import reconcile

EX_DATE = date(2024, 6, 4)
PREMARKET = datetime(2024, 6, 4, 13, 0, tzinfo=UTC)  # 09:00 New York on the ex-date
MIDDAY = datetime(2024, 6, 4, 16, 0, tzinfo=UTC)


async def place(journal: Journal, broker: Any, clock: SimClock, req: OrderRequest) -> None:
    """Do what the runner does: journal the intent, submit, journal the acknowledgement."""
    o = req.owner
    journal.record_order_intent(
        req.client_order_id, o.engine, o.strategy, o.decision_id, req.to_dict(), clock.now()
    )
    ack = await broker.submit(req)
    journal.record_order_update(
        ack.client_order_id,
        ack.id,
        ack.status.value,
        ack.filled_qty,
        ack.filled_avg_price,
        ack.to_dict(),
        clock.now(),
    )


@pytest.fixture
async def held(tmp_path: Path) -> AsyncIterator[tuple[FakeAlpacaTrading, Any, Journal, SimClock]]:
    """10 AAPL bought by the equity engine at the 200.01 ask, reconciled into the journal."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "199.99", "200.01", 1000, 1000)
    broker = fake_broker(trading.url)
    journal = Journal(tmp_path / "journal.sqlite")
    clock = SimClock(OPEN)
    try:
        buy = OrderRequest.equity("AAPL", 10, "buy", owner=Owner("equity", "aggregate", "d1"))
        await place(journal, broker, clock, buy)
        assert (await reconcile(journal, broker, clock)).ok
        yield trading, broker, journal, clock
    finally:
        await broker.aclose()
        journal.close()
        trading.stop()


def split_overnight(trading: FakeAlpacaTrading, clock: SimClock) -> None:
    """AAPL splits 4-for-1 with the ex-date the next session; the clock at its pre-market."""
    trading.split("AAPL", 4, EX_DATE)
    trading.set_quote("AAPL", "49.99", "50.01", 1000, 1000)
    trading.now = PREMARKET
    clock.set(PREMARKET)


def split_decisions(path: Path) -> list[tuple[str, dict[str, Any]]]:
    with sqlite3.connect(str(path)) as con:
        rows = con.execute(
            "SELECT symbol, reasoning FROM decisions WHERE action = 'split' ORDER BY ts"
        ).fetchall()
    return [(sym, json.loads(r)) for sym, r in rows]


def snapshot(path: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(str(path)) as con:
        rows = con.execute(
            "SELECT symbol, data FROM positions WHERE snapshot_id = "
            "(SELECT MAX(id) FROM position_snapshots)"
        ).fetchall()
    return {sym: json.loads(data) for sym, data in rows}


@pytest.mark.asyncio
async def test_reconcile_takes_a_split_as_one_and_journals_the_rebasing(held: Any) -> None:
    """The ex-date pre-market: 10 journaled, 40 at the venue at a quarter of the entry price.

    Without this the difference is a position mismatch that stops trading every morning until
    a person adopts the venue's positions by hand.
    """
    trading, broker, journal, clock = held
    split_overnight(trading, clock)
    assert trading.positions["AAPL"] == [D(40), D("200.01") / 4]

    rep = await reconcile(journal, broker, clock)

    assert rep.ok, rep.reason
    (diff,) = rep.differences
    assert (diff["kind"], diff["symbol"], diff["ratio"]) == ("position_split", "AAPL", "4")
    assert (diff["journal"], diff["broker"]) == ("10", "40")
    assert snapshot(journal.path)["AAPL"]["qty"] == "40"
    ((sym, why),) = split_decisions(journal.path)
    assert (sym, why["ratio"], why["journal_qty"], why["broker_qty"]) == ("AAPL", "4", "10", "40")
    again = await reconcile(journal, broker, clock)
    assert again.ok, again.reason
    assert again.differences == ()
    assert len(split_decisions(journal.path)) == 1


@pytest.mark.asyncio
async def test_a_bigger_position_at_the_same_entry_price_is_no_split(held: Any) -> None:
    """Four times the shares at the old average price: no split, a difference to look at."""
    trading, broker, journal, clock = held
    trading.positions["AAPL"] = [D(40), D("200.01")]

    rep = await reconcile(journal, broker, clock)

    assert not rep.ok
    assert [d["kind"] for d in rep.fatal] == ["position_mismatch"]
    assert split_decisions(journal.path) == []
    assert snapshot(journal.path)["AAPL"]["qty"] == "10"
