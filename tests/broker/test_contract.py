"""The Broker contract: every protocol method, one test body, two venues.

``alpaca``: AlpacaBroker -> the real alpaca-py TradingClient (pydantic models, raw_data=False)
-> HTTP -> the loopback fake of Alpaca's trading API (tests/fakes/alpaca_trading.py).
``sim``: SimBroker in process. Both are set up with the same quotes and clock, so each test's
hand-worked expectations (fills at the ask/bid, premium x 100, strike x 100 on assignment) must
hold on both. The calendar's expectations are NYSE's published 2024 holidays and half days.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, StaticQuotes
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker import (
    Broker,
    InsufficientBuyingPower,
    Leg,
    OptionsLevelError,
    OrderNotCancelable,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
    Owner,
)
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.broker.sim import SimBroker, SimConfig
from v28quant.clock import SimClock

C530, C535 = "SPY240607C00530000", "SPY240607C00535000"
P520, P515 = "SPY240607P00520000", "SPY240607P00515000"
C540 = "SPY240607C00540000"
EXPIRY = date(2024, 6, 7)
QUOTES = {
    "SPY": ("530.00", "530.10"),
    "AAPL": ("190.00", "190.05"),
    C530: ("3.90", "4.00"),
    C535: ("2.05", "2.15"),
    P520: ("3.00", "3.10"),
    P515: ("1.80", "1.90"),
    C540: ("0.95", "1.05"),
}


class SimWorld:
    def __init__(self) -> None:
        self.clock = SimClock(OPEN)
        self.quotes = StaticQuotes(self.clock)
        self.broker = SimBroker(self.quotes, self.clock, SimConfig(cash=D(100_000)))

    def set_quote(self, sym, bid, ask, bid_size=0, ask_size=0):
        self.quotes.set(sym, bid, ask, bid_size, ask_size)

    def set_close(self, sym, day, price):
        self.quotes.set_close(sym, day, price)

    def set_options_level(self, level):
        self.broker.set_options_level(level)

    async def advance_to(self, when):
        self.clock.set(when)
        await self.broker.process()

    async def aclose(self):
        await self.broker.aclose()


class AlpacaWorld:
    def __init__(self) -> None:
        self.fake = FakeAlpacaTrading(now=OPEN).start()
        self.broker = AlpacaBroker(
            "test-key-id",
            "test-secret",
            url=self.fake.url,
            limiter=RateLimiter(rate=10_000, burst=1000),
        )

    def set_quote(self, sym, bid, ask, bid_size=0, ask_size=0):
        self.fake.set_quote(sym, bid, ask, bid_size, ask_size)

    def set_close(self, sym, day, price):
        self.fake.set_close(sym, day, price)

    def set_options_level(self, level):
        self.fake.options_level = level

    async def advance_to(self, when):
        self.fake.advance_to(when)

    async def aclose(self):
        await self.broker.aclose()
        self.fake.stop()


@pytest.fixture(params=["alpaca", "sim"])
async def world(request):
    w = AlpacaWorld() if request.param == "alpaca" else SimWorld()
    for sym, (bid, ask) in QUOTES.items():
        w.set_quote(sym, bid, ask)
    yield w
    await w.aclose()


def own(decision: str, engine: str = "equity", strategy: str = "trend") -> Owner:
    return Owner(engine, strategy, decision)


def test_is_a_broker(world):
    assert isinstance(world.broker, Broker)


async def test_account_starts_in_cash(world):
    acct = await world.broker.account()
    assert acct.cash == D(100_000), acct
    assert acct.equity == D(100_000), acct
    assert acct.buying_power == D(100_000)
    assert acct.options_level == 3
    assert acct.status == "ACTIVE"
    assert not acct.shorting_enabled  # a cash account


async def test_a_quoted_stock_is_tradable_fractionable_and_lent(world):
    spy = await world.broker.asset("SPY")
    assert (spy.symbol, spy.tradable, spy.fractionable, spy.lends) == ("SPY", True, True, True)


async def test_market_buy_fills_at_ask_and_shows_everywhere(world):
    async def go():
        b = world.broker
        o = await b.submit(OrderRequest.equity("SPY", 10, "buy", owner=own("d1")))
        assert o.status == OrderStatus.FILLED
        assert o.filled_qty == 10
        assert o.filled_avg_price == D("530.10")
        assert o.side == "buy"
        assert o.type == "market"
        assert o.owner.engine == "equity"
        assert o.owner.strategy == "trend"
        pos = await b.positions()
        assert [(p.symbol, p.qty, p.avg_entry_price, p.asset_class) for p in pos] == [
            ("SPY", D(10), D("530.10"), "us_equity")
        ]
        # Marked at the mid 530.05.
        assert pos[0].market_value == D("5300.5")
        acct = await b.account()
        assert acct.cash == D(100_000) - D(5301), acct
        acts = await b.activities()
        assert [(a.type, a.symbol, a.qty, a.price, a.order_id) for a in acts] == [
            ("FILL", "SPY", D(10), D("530.10"), o.id)
        ]

    await go()


async def test_order_lookup_by_client_id(world):
    async def go():
        b = world.broker
        req = OrderRequest.equity("AAPL", 3, "buy", owner=own("lookup"))
        o = await b.submit(req)
        got = await b.order_by_client_id(req.client_order_id)
        assert got is not None
        assert got.id == o.id
        assert got.qty == 3
        assert await b.order_by_client_id("v28-equity-trend-000000000000") is None

    await go()


async def test_resubmitting_the_same_decision_is_idempotent(world):
    async def go():
        b = world.broker
        req = OrderRequest.equity("AAPL", 3, "buy", owner=own("twice"))
        first = await b.submit(req)
        again = await b.submit(req)
        assert again.id == first.id
        assert len(await b.orders("all")) == 1

    await go()


async def test_orders_open_closed_all(world):
    async def go():
        b = world.broker
        rest = await b.submit(
            OrderRequest.equity("SPY", 1, "buy", "limit", D("500"), owner=own("rest"))
        )
        done = await b.submit(OrderRequest.equity("AAPL", 1, "buy", owner=own("done")))
        assert rest.status == OrderStatus.NEW
        assert rest.limit_price == D(500)
        assert [o.id for o in await b.orders("open")] == [rest.id]
        assert [o.id for o in await b.orders("closed")] == [done.id]
        assert {o.id for o in await b.orders("all")} == {rest.id, done.id}
        # A resting buy holds its cash.
        assert (await b.account()).buying_power == D(100_000) - D("190.05") - D(500)

    await go()


async def test_cancel(world):
    async def go():
        b = world.broker
        o = await b.submit(OrderRequest.equity("SPY", 1, "buy", "limit", D("500"), owner=own("cx")))
        await b.cancel(o.id)
        got = await b.order_by_client_id(o.client_order_id)
        assert got.status == OrderStatus.CANCELED
        assert not got.is_open
        with pytest.raises(OrderNotCancelable):
            await b.cancel(o.id)
        with pytest.raises(OrderNotFound):
            await b.cancel(str(uuid.UUID(int=7)))

    await go()


async def test_replace_keeps_ownership(world):
    async def go():
        b = world.broker
        o = await b.submit(OrderRequest.equity("SPY", 2, "buy", "limit", D("500"), owner=own("rp")))
        new = await b.replace(o.id, limit_price=D("531"))
        assert new.id != o.id
        assert new.client_order_id == o.client_order_id + "-r1"
        assert new.owner.same_decision(o.owner)
        assert new.status == OrderStatus.FILLED
        assert new.filled_avg_price == D("530.10")
        old = await b.order_by_client_id(o.client_order_id)
        assert old.status == OrderStatus.REPLACED
        assert old.replaced_by == new.id

    await go()


async def test_clock_and_calendar(world):
    async def go():
        b = world.broker
        c = await b.clock()
        assert c.is_open
        assert c.next_close == datetime(2024, 6, 3, 20, 0, tzinfo=UTC)
        assert c.next_open == datetime(2024, 6, 4, 13, 30, tzinfo=UTC)
        days = await b.calendar(date(2024, 11, 25), date(2024, 11, 29))
        # Thanksgiving (Nov 28) closed; the day after closes at 13:00 New York.
        assert [d.date.day for d in days] == [25, 26, 27, 29]
        assert days[-1].close == datetime(2024, 11, 29, 18, 0, tzinfo=UTC)
        assert days[0].open == datetime(2024, 11, 25, 14, 30, tzinfo=UTC)

    await go()


async def test_covered_call_and_vertical_fill(world):
    async def go():
        b = world.broker
        with pytest.raises(InsufficientBuyingPower, match="covered call"):
            await b.submit(
                OrderRequest.option(
                    C535, 1, "sell", "sell_to_open", D("2.00"), owner=own("cc0", "options", "wheel")
                )
            )
        await b.submit(OrderRequest.equity("SPY", 100, "buy", owner=own("sh")))
        cc = await b.submit(
            OrderRequest.option(
                C535, 1, "sell", "sell_to_open", D("2.00"), owner=own("cc1", "options", "wheel")
            )
        )
        assert cc.status == OrderStatus.FILLED
        assert cc.filled_avg_price == D("2.05")
        assert cc.asset_class == "us_option"
        assert cc.intent == "sell_to_open"
        legs = [Leg(P520, 1, "sell", "sell_to_open"), Leg(P515, 1, "buy", "buy_to_open")]
        v = await b.submit(
            OrderRequest.multileg(legs, 1, D("-1.00"), owner=own("v1", "options", "vertical"))
        )
        assert v.order_class == "mleg"
        assert v.symbol is None
        assert v.side is None
        assert v.status == OrderStatus.FILLED, v
        assert v.filled_avg_price == D("-1.10"), v
        assert sorted((leg.symbol, leg.side, leg.ratio, leg.filled_qty) for leg in v.legs) == [
            (P515, "buy", 1, D(1)),
            (P520, "sell", 1, D(1)),
        ]
        pos = {p.symbol: p.qty for p in await b.positions()}
        assert pos == {"SPY": D(100), C535: D(-1), P520: D(-1), P515: D(1)}
        acct = await b.account()
        assert acct.cash == D(100_000) - D(53_010) + D(205) + D(110), acct
        # The shares cover the call; the put spread holds its max loss, width 5 x 100.
        assert acct.buying_power == acct.cash - D(500), acct
        with pytest.raises(InsufficientBuyingPower, match="options buying power"):
            await b.submit(
                OrderRequest.multileg(legs, 100, D("-1.00"), owner=own("v2", "options", "vertical"))
            )

    await go()


async def test_iron_condor_fills_four_legs(world):
    """Four legs in one mleg order, on both venues.

    filled at the legs' touch (credit by hand: 3.00 - 1.90 + 2.05 - 1.05 = 2.10), one wing's width
    (5 x 100) held as the worst loss.
    """

    async def go():
        b = world.broker
        legs = [
            Leg(P515, 1, "buy", "buy_to_open"),
            Leg(P520, 1, "sell", "sell_to_open"),
            Leg(C535, 1, "sell", "sell_to_open"),
            Leg(C540, 1, "buy", "buy_to_open"),
        ]
        ic = await b.submit(
            OrderRequest.multileg(legs, 1, D("-2.00"), owner=own("ic1", "options", "condor"))
        )
        assert ic.order_class == "mleg", ic
        assert len(ic.legs) == 4, ic
        assert ic.status == OrderStatus.FILLED, ic
        assert ic.filled_avg_price == D("-2.10"), ic
        pos = {p.symbol: p.qty for p in await b.positions()}
        assert pos == {P515: D(1), P520: D(-1), C535: D(-1), C540: D(1)}, pos
        acct = await b.account()
        assert acct.cash == D(100_210), acct
        assert acct.buying_power == acct.cash - D(500), acct

    await go()


async def test_replace_a_multi_leg_order(world):
    """A resting vertical walked to its touch: the same legs, one new mleg order, filled.

    The put spread's credit at the touch is 3.00 - 1.90 = 1.10 (net -1.10); a limit asking
    1.20 rests, its replacement asking 1.00 fills at 1.10.
    """

    async def go():
        b = world.broker
        legs = [Leg(P520, 1, "sell", "sell_to_open"), Leg(P515, 1, "buy", "buy_to_open")]
        o = await b.submit(
            OrderRequest.multileg(legs, 1, D("-1.20"), owner=own("wk", "options", "vertical"))
        )
        assert o.status == OrderStatus.NEW, o
        new = await b.replace(o.id, limit_price=D("-1.00"))
        assert new.order_class == "mleg", new
        assert new.client_order_id == o.client_order_id + "-r1"
        assert new.status == OrderStatus.FILLED, new
        assert new.filled_avg_price == D("-1.10"), new
        assert sorted((leg.symbol, leg.side, leg.filled_qty) for leg in new.legs) == [
            (P515, "buy", D(1)),
            (P520, "sell", D(1)),
        ]
        old = await b.order_by_client_id(o.client_order_id)
        assert old.status == OrderStatus.REPLACED
        assert old.replaced_by == new.id
        pos = {p.symbol: p.qty for p in await b.positions()}
        assert pos == {P520: D(-1), P515: D(1)}, pos

    await go()


async def test_options_level_enforced(world):
    async def go():
        world.set_options_level(1)
        with pytest.raises(OptionsLevelError):
            await world.broker.submit(
                OrderRequest.option(
                    C530, 1, "buy", "buy_to_open", owner=own("lv", "options", "long")
                )
            )

    await go()


async def test_partial_fill_then_complete(world):
    async def go():
        b = world.broker
        world.set_quote("SPY", "530.00", "530.10", 100, 30)
        o = await b.submit(OrderRequest.equity("SPY", 50, "buy", owner=own("pf")))
        assert o.status == OrderStatus.PARTIALLY_FILLED
        assert o.filled_qty == 30
        await world.advance_to(datetime(2024, 6, 3, 14, 35, tzinfo=UTC))
        o = await b.order_by_client_id(o.client_order_id)
        assert o.status == OrderStatus.FILLED
        assert o.filled_qty == 50
        assert [a.qty for a in await b.activities()] == [D(30), D(20)]

    await go()


async def test_day_order_expires_at_close(world):
    async def go():
        b = world.broker
        o = await b.submit(OrderRequest.equity("SPY", 1, "buy", "limit", D("500"), owner=own("dx")))
        await world.advance_to(datetime(2024, 6, 3, 20, 1, tzinfo=UTC))
        assert (await b.order_by_client_id(o.client_order_id)).status == OrderStatus.EXPIRED
        assert await b.orders("open") == []
        assert not (await b.clock()).is_open

    await go()


async def test_expiry_exercise_and_assignment_as_activities(world):
    async def go():
        b = world.broker
        await b.submit(
            OrderRequest.option(C530, 1, "buy", "buy_to_open", owner=own("x1", "options", "long"))
        )
        await b.submit(
            OrderRequest.option(P520, 1, "sell", "sell_to_open", owner=own("x2", "options", "csp"))
        )
        await b.submit(
            OrderRequest.option(P515, 1, "buy", "buy_to_open", owner=own("x3", "options", "long"))
        )
        world.set_close("SPY", EXPIRY, "518.50")
        before = (await b.account()).cash
        await world.advance_to(datetime(2024, 6, 10, 13, 0, tzinfo=UTC))
        events = sorted((a.type, a.symbol, a.qty) for a in await b.activities() if a.type != "FILL")
        assert events == [
            ("OPASN", P520, D(1)),
            ("OPEXP", C530, D(-1)),
            ("OPEXP", P515, D(-1)),
            ("OPTRD", "SPY", D(100)),
        ], events
        assert {p.symbol: p.qty for p in await b.positions()} == {"SPY": D(100)}
        assert (await b.account()).cash == before - D(52_000)

    await go()
