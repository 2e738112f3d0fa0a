"""SimBroker takes a quote's displayed size once, however often it is read.

The expected quantities follow from the displayed sizes each test sets: a resting order may take
at most what the book shows at one moment, and only a new quote (the clock moved, or the price or
size changed) shows new liquidity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fakes.fixtures import StaticQuotes
from v28quant.broker import Leg, OrderRequest, OrderStatus, Owner
from v28quant.broker.sim import SimBroker
from v28quant.clock import SimClock

OPEN = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)  # Mon 2024-06-03 10:30 New York
C530, C535 = "SPY240607C00530000", "SPY240607C00535000"


def _owner(decision: str) -> Owner:
    return Owner("equity", "test", decision)


@pytest.mark.asyncio
async def test_repeated_reads_at_one_time_do_not_refill() -> None:
    clock = SimClock(OPEN)
    quotes = StaticQuotes(clock)
    quotes.set("XYZ", "50.00", "50.01", bid_size=100, ask_size=100)
    broker = SimBroker(quotes, clock)
    order = await broker.submit(OrderRequest.equity("XYZ", 1000, "buy", owner=_owner("big")))
    assert order.filled_qty == 100, order
    for _ in range(5):  # every read call re-runs matching; none may find new liquidity
        await broker.orders()
        await broker.account()
        await broker.process()
    seen = await broker.order_by_client_id(order.client_order_id)
    assert seen is not None
    assert seen.filled_qty == 100, seen
    assert seen.status == OrderStatus.PARTIALLY_FILLED
    assert [a.qty for a in await broker.activities()] == [Decimal(100)]
    clock.advance(timedelta(minutes=1))  # a new moment: the book shows 100 again
    await broker.process()
    await broker.process()
    seen = await broker.order_by_client_id(order.client_order_id)
    assert seen is not None
    assert seen.filled_qty == 200, seen


@pytest.mark.asyncio
async def test_two_orders_share_one_displayed_size() -> None:
    clock = SimClock(OPEN)
    quotes = StaticQuotes(clock)
    quotes.set("SPY", "530.00", "530.10", bid_size=100, ask_size=100)
    broker = SimBroker(quotes, clock)
    first = await broker.submit(OrderRequest.equity("SPY", 60, "buy", owner=_owner("a")))
    second = await broker.submit(OrderRequest.equity("SPY", 60, "buy", owner=_owner("b")))
    assert first.filled_qty == 60
    assert second.filled_qty == 40, second
    # The other side of the book is untouched: a sell still finds its 100.
    await broker.submit(OrderRequest.equity("SPY", 100, "sell", owner=_owner("c")))
    fills = [a.qty for a in await broker.activities()]
    assert fills == [Decimal(60), Decimal(40), Decimal(-100)], fills


@pytest.mark.asyncio
async def test_multileg_units_limited_by_what_each_leg_has_left() -> None:
    clock = SimClock(OPEN)
    quotes = StaticQuotes(clock)
    quotes.set("SPY", "530.00", "530.10", bid_size=100, ask_size=100)
    quotes.set(C530, "3.90", "4.00", bid_size=5, ask_size=5)
    quotes.set(C535, "2.05", "2.15", bid_size=5, ask_size=5)
    broker = SimBroker(quotes, clock)
    legs = [Leg(C530, 1, "buy", "buy_to_open"), Leg(C535, 1, "sell", "sell_to_open")]
    first = await broker.submit(
        OrderRequest.multileg(legs, 3, Decimal("2.00"), owner=Owner("options", "v", "1"))
    )
    second = await broker.submit(
        OrderRequest.multileg(legs, 3, Decimal("2.00"), owner=Owner("options", "v", "2"))
    )
    for _ in range(3):
        await broker.process()
    # 5 contracts shown per leg: 3 to the first spread, the 2 left to the second.
    got = {o.client_order_id: o.filled_qty for o in await broker.orders("all")}
    assert got == {first.client_order_id: 3, second.client_order_id: 2}, got


@pytest.mark.asyncio
async def test_a_new_quote_at_the_same_time_shows_new_liquidity() -> None:
    clock = SimClock(OPEN)
    quotes = StaticQuotes(clock)
    quotes.set("SPY", "530.00", "530.10", ask_size=30)
    broker = SimBroker(quotes, clock)
    order = await broker.submit(OrderRequest.equity("SPY", 50, "buy", owner=_owner("q")))
    assert order.filled_qty == 30
    quotes.set("SPY", "530.10", "530.20", ask_size=30)  # the book moved: a fresh offer
    await broker.process()
    seen = await broker.order_by_client_id(order.client_order_id)
    assert seen is not None
    assert seen.filled_qty == 50, seen


@pytest.mark.asyncio
async def test_a_spread_at_its_ladders_last_rung_fills_when_the_natural_is_off_the_grid() -> None:
    """A debit natural of 3.12 (legs in pennies) fills at the ladder's last rung on the venue."""
    from v28quant.options.contracts import limit_ladder

    clock = SimClock(OPEN)
    quotes = StaticQuotes(clock)
    quotes.set("SPY", "530.00", "530.10", bid_size=100, ask_size=100)
    quotes.set(C530, "5.12", "5.17", bid_size=5, ask_size=5)
    quotes.set(C535, "2.05", "2.10", bid_size=5, ask_size=5)
    natural = Decimal("5.17") - Decimal("2.05")  # buy at the ask, sell at the bid
    last = limit_ladder(Decimal("3.07"), natural, steps=3, scheme="penny_pilot")[-1]
    broker = SimBroker(quotes, clock)
    legs = [Leg(C530, 1, "buy", "buy_to_open"), Leg(C535, 1, "sell", "sell_to_open")]
    order = await broker.submit(
        OrderRequest.multileg(legs, 1, last, owner=Owner("options", "v", "close"))
    )
    await broker.process()
    seen = await broker.order_by_client_id(order.client_order_id)
    assert seen is not None
    assert seen.status == OrderStatus.FILLED, (last, seen)
