"""An options order that meets a client order id conflict stays in the book the venue holds it in.

An earlier run sent the decision's order (sized on what the account held then) and died before
saving its book; the restart sends the same decision, sized anew, under the same client order
id. The venue answers with a conflict: its own order works under that id. Forgotten by the
book, the next pre-market would cancel it as "not in the options book" (or a later cycle open
the structure again beside it): the book must keep following the order the venue holds.

On the loopback fake of Alpaca's trading API with the real alpaca-py client; what the venue
received is the fake's own record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import fake_broker
from fakes.options_world import Ctx, RecordingNotifier, Threshold
from v28quant.broker.base import ClientOrderIdConflict, OrderRequest, Owner
from v28quant.clock import SimClock
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.options.decisions import place_in_book
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Book, Pending

ET = ZoneInfo("America/New_York")
NOW = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
PUT = "SPY231020P00435000"
OWNER = Owner("options", "cash_secured_put", "open:csp-1:2023-09-14T15:30")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, Ctx]]:
    """Yield the trading fake at 2023-09-14 15:30 New York and an options context on it."""
    trading = FakeAlpacaTrading(now=NOW).start()
    trading.set_quote("SPY", "450.80", "450.82")
    trading.set_quote(PUT, "1.20", "1.30")
    broker = fake_broker(trading.url)
    clock = SimClock(NOW)
    journal = Journal(tmp_path / "journal.sqlite")
    executor = Executor(broker, journal, clock=clock)
    ctx = Ctx(
        "paper", clock, broker, None, journal, executor, None, RecordingNotifier(), ("SPY",),
        Threshold(0.0),
    )  # fmt: skip
    try:
        yield trading, ctx
    finally:
        journal.close()
        trading.stop()


def _sell_put(qty: int) -> OrderRequest:
    """Sell ``qty`` puts to open at 1.40, above the 1.30 ask: the order rests."""
    return OrderRequest.option(PUT, qty, "sell", "sell_to_open", "1.40", owner=OWNER)


@pytest.mark.asyncio
async def test_an_order_the_venue_holds_for_another_size_stays_in_the_book_and_working(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    trading, ctx = world
    try:
        sent = await ctx.broker.submit(_sell_put(2))  # the earlier run's order
        book = Book()
        p = Pending(
            OWNER.client_order_id, "open", "csp-1", "SPY", "cash_secured_put", {PUT: -1},
            date(2023, 10, 20), 0.0, ["-1.40", "-1.30"], 0, NOW,
        )  # fmt: skip
        with pytest.raises(ClientOrderIdConflict):
            await place_in_book(
                book, p, lambda: ctx.executor.place(Decision(_sell_put(3), {"rule": "test"}))
            )
        assert list(book.pending) == [OWNER.client_order_id]

        engine = OptionsEngine()
        engine.book = book
        await engine.premarket(ctx)  # a restart's pre-market: the book's orders stay
        assert [(o["id"], o["status"]) for o in trading.orders.values()] == [(sent.id, "new")]
    finally:
        await ctx.broker.aclose()
