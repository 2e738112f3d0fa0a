"""SimBroker: option structures, options levels, partial fills, day expiry, exercise/assignment.

Expected numbers are worked by hand from the quotes each test sets (premium x 100 per contract,
strike x 100 for assignment, spread width x 100 for a vertical's collateral: Alpaca's rules in
research/alpaca.md §6 and its support pages on automatic exercise). Money is Decimal and the
simulator is deterministic, so comparisons are exact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from fakes.fixtures import StaticQuotes
from v28quant.broker import (
    InsufficientBuyingPower,
    Leg,
    OptionsLevelError,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    Owner,
)
from v28quant.broker.sim import SimBroker, SimConfig
from v28quant.clock import SimClock

OPEN = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)  # Mon 2024-06-03 10:30 New York
EXPIRY = date(2024, 6, 7)
C530, C535 = "SPY240607C00530000", "SPY240607C00535000"
P520, P515 = "SPY240607P00520000", "SPY240607P00515000"
C540, C545 = "SPY240607C00540000", "SPY240607C00545000"


def own(d: str, strategy: str = "test") -> Owner:
    return Owner("options", strategy, d)


@pytest.fixture
def world():
    clock = SimClock(OPEN)
    q = StaticQuotes(clock)
    q.set("SPY", "530.00", "530.10")
    q.set(C530, "3.90", "4.00")
    q.set(C535, "2.05", "2.15")
    q.set(C540, "0.95", "1.00")
    q.set(C545, "0.40", "0.45")
    q.set(P520, "3.00", "3.10")
    q.set(P515, "1.80", "1.90")

    def make(**cfg):
        return SimBroker(q, clock, SimConfig(**cfg))

    return clock, q, make


async def test_covered_call_needs_the_shares(world):
    _clock, _q, make = world

    async def go():
        b = make()
        with pytest.raises(InsufficientBuyingPower, match="covered call"):
            await b.submit(
                OrderRequest.option(C535, 1, "sell", "sell_to_open", D("2.00"), owner=own("cc0"))
            )
        stock = await b.submit(OrderRequest.equity("SPY", 100, "buy", owner=own("s1", "wheel")))
        assert stock.status == OrderStatus.FILLED
        assert stock.filled_avg_price == D("530.10")
        cc = await b.submit(
            OrderRequest.option(C535, 1, "sell", "sell_to_open", D("2.00"), owner=own("cc1"))
        )
        # A sell limit at 2.00 against a 2.05 bid fills at the bid (better for us).
        assert cc.status == OrderStatus.FILLED, cc
        assert cc.filled_avg_price == D("2.05"), cc
        acct = await b.account()
        assert acct.cash == D(100_000) - D("53010") + D("205"), acct
        # The shares are now collateral: they cannot be sold, nor cover a second call.
        with pytest.raises(InsufficientBuyingPower, match="available"):
            await b.submit(OrderRequest.equity("SPY", 1, "sell", owner=own("s2", "wheel")))
        with pytest.raises(InsufficientBuyingPower, match="covered call"):
            await b.submit(
                OrderRequest.option(C540, 1, "sell", "sell_to_open", D("0.90"), owner=own("cc2"))
            )
        pos = {p.symbol: p.qty for p in await b.positions()}
        assert pos == {"SPY": D(100), C535: D(-1)}

    await go()


async def test_cash_secured_put_holds_strike_times_100(world):
    _clock, _q, make = world

    async def go():
        b = make(cash=D(60_000))
        o = await b.submit(OrderRequest.option(P520, 1, "sell", "sell_to_open", owner=own("p1")))
        assert o.status == OrderStatus.FILLED
        assert o.filled_avg_price == D("3.00")
        acct = await b.account()
        assert acct.cash == D(60_300)
        assert acct.options_buying_power == D(60_300) - D(52_000), acct
        with pytest.raises(InsufficientBuyingPower, match="buying power"):
            await b.submit(OrderRequest.option(P515, 1, "sell", "sell_to_open", owner=own("p2")))
        # Buying the put back frees the collateral.
        await b.submit(OrderRequest.option(P520, 1, "buy", "buy_to_close", owner=own("p3")))
        acct = await b.account()
        assert acct.cash == D(60_300) - D(310), acct
        assert acct.buying_power == acct.cash, acct

    await go()


async def test_vertical_credit_spread_reserves_max_loss(world):
    _clock, _q, make = world

    async def go():
        b = make()
        legs = [Leg(P520, 1, "sell", "sell_to_open"), Leg(P515, 1, "buy", "buy_to_open")]
        o = await b.submit(OrderRequest.multileg(legs, 2, D("-1.00"), owner=own("v1")))
        # Net = -3.00 + 1.90 = -1.10 per share, better than the -1.00 asked: a 1.10 credit.
        assert o.status == OrderStatus.FILLED, o
        assert o.filled_avg_price == D("-1.10"), o
        assert {leg.symbol: leg.filled_qty for leg in o.legs} == {P520: 2, P515: 2}
        acct = await b.account()
        assert acct.cash == D(100_000) + D(220)
        # Max loss = (width 5 - credit 1.10) x 100 x 2 = 780 held.
        assert acct.buying_power == D(100_000) - D(780), acct
        pos = {p.symbol: p.qty for p in await b.positions()}
        assert pos == {P520: -2, P515: 2}

    await go()


async def test_vertical_limit_rests_until_marketable(world):
    _clock, q, make = world

    async def go():
        b = make()
        legs = [Leg(C530, 1, "buy", "buy_to_open"), Leg(C535, 1, "sell", "sell_to_open")]
        o = await b.submit(OrderRequest.multileg(legs, 1, D("1.80"), owner=own("d1")))
        assert o.status == OrderStatus.NEW
        assert o.filled_qty == 0
        q.set(C530, "3.80", "3.85")
        await b.process()
        o = await b.order_by_client_id(o.client_order_id)
        assert o.status == OrderStatus.FILLED, o
        assert o.filled_avg_price == D("1.80"), o

    await go()


async def test_iron_condor_fills_four_legs(world):
    _clock, _q, make = world

    async def go():
        b = make()
        legs = [
            Leg(P515, 1, "buy", "buy_to_open"),
            Leg(P520, 1, "sell", "sell_to_open"),
            Leg(C540, 1, "sell", "sell_to_open"),
            Leg(C545, 1, "buy", "buy_to_open"),
        ]
        o = await b.submit(OrderRequest.multileg(legs, 1, D("-1.50"), owner=own("ic")))
        # Credit: 3.00 + 0.95 - 1.90 - 0.45 = 1.60.
        assert o.status == OrderStatus.FILLED, o
        assert o.filled_avg_price == D("-1.60"), o
        acct = await b.account()
        # Only one side can lose: width 5 x 100 held, the 160 credit received.
        assert acct.cash == D(100_160), acct
        assert acct.buying_power == D(100_160) - D(500), acct
        pos = {p.symbol: p.qty for p in await b.positions()}
        assert pos == {P515: 1, P520: -1, C540: -1, C545: 1}
        fills = [a for a in await b.activities() if a.type == "FILL"]
        assert len(fills) == 4
        assert {a.order_id for a in fills} == {leg.id for leg in o.legs}

    await go()


async def test_options_levels(world):
    _clock, _q, make = world

    async def go():
        b = make(options_level=1)
        with pytest.raises(OptionsLevelError, match="level 2"):
            await b.submit(OrderRequest.option(C530, 1, "buy", "buy_to_open", owner=own("l1")))
        # Level 1 still writes cash-secured puts.
        o = await b.submit(OrderRequest.option(P520, 1, "sell", "sell_to_open", owner=own("l2")))
        assert o.status == OrderStatus.FILLED
        b.set_options_level(2)
        legs = [Leg(C530, 1, "buy", "buy_to_open"), Leg(C535, 1, "sell", "sell_to_open")]
        with pytest.raises(OptionsLevelError, match="level 3"):
            await b.submit(OrderRequest.multileg(legs, 1, D("2.00"), owner=own("l3")))
        b.set_options_level(0)
        with pytest.raises(OptionsLevelError, match="not approved"):
            await b.submit(OrderRequest.option(P515, 1, "sell", "sell_to_open", owner=own("l4")))

    await go()


async def test_uncovered_call_ratio_is_refused(world):
    _clock, _q, make = world

    async def go():
        b = make()
        legs = [Leg(C530, 1, "buy", "buy_to_open"), Leg(C535, 2, "sell", "sell_to_open")]
        with pytest.raises(InsufficientBuyingPower, match="unlimited"):
            await b.submit(OrderRequest.multileg(legs, 1, D("0.00"), owner=own("r1")))

    await go()


async def test_partial_fills_against_quote_size(world):
    _clock, q, make = world

    async def go():
        b = make()
        q.set("SPY", "530.00", "530.10", bid_size=100, ask_size=30)
        o = await b.submit(OrderRequest.equity("SPY", 50, "buy", owner=own("pf", "trend")))
        assert o.status == OrderStatus.PARTIALLY_FILLED, o
        assert o.filled_qty == 30, o
        q.set("SPY", "530.10", "530.20", ask_size=30)
        await b.process()
        o = await b.order_by_client_id(o.client_order_id)
        assert o.status == OrderStatus.FILLED
        assert o.filled_qty == 50
        # Average: (30 x 530.10 + 20 x 530.20) / 50 = 530.14.
        assert o.filled_avg_price == D("530.14"), o
        assert [a.qty for a in await b.activities()] == [30, 20]

    await go()


async def test_slippage_and_commission(world):
    _clock, _q, make = world

    async def go():
        b = make(slippage_bps=D(10), equity_commission_per_share=D("0.005"))
        o = await b.submit(OrderRequest.equity("SPY", 10, "buy", owner=own("sl", "trend")))
        # 530.10 x (1 + 10bp) = 530.6301.
        assert o.filled_avg_price == D("530.6301")
        acct = await b.account()
        assert acct.cash == D(100_000) - D("5306.301") - D("0.05"), acct

    await go()


async def test_day_order_expires_at_close_and_frees_cash(world):
    clock, _q, make = world

    async def go():
        b = make()
        o = await b.submit(
            OrderRequest.equity("SPY", 10, "buy", "limit", D("500"), owner=own("dx", "trend"))
        )
        assert o.status == OrderStatus.NEW
        assert (await b.account()).buying_power == D(100_000) - D(5000)
        clock.set(datetime(2024, 6, 3, 20, 5, tzinfo=UTC))  # 16:05 New York
        o = await b.order_by_client_id(o.client_order_id)
        assert o.status == OrderStatus.EXPIRED
        assert (await b.account()).buying_power == D(100_000)

    await go()


async def test_order_sent_after_hours_waits_for_the_open(world):
    clock, _q, make = world

    async def go():
        clock.set(datetime(2024, 6, 4, 0, 0, tzinfo=UTC))  # 20:00 New York
        b = make()
        o = await b.submit(OrderRequest.equity("SPY", 1, "buy", owner=own("ah", "trend")))
        assert o.status == OrderStatus.ACCEPTED
        clock.set(datetime(2024, 6, 4, 13, 31, tzinfo=UTC))  # 09:31 next day
        o = await b.order_by_client_id(o.client_order_id)
        assert o.status == OrderStatus.FILLED

    await go()


async def test_expiry_exercise_assignment_and_worthless(world):
    clock, q, make = world

    async def go():
        b = make(cash=D(200_000))
        await b.submit(OrderRequest.equity("SPY", 100, "buy", owner=own("e0", "wheel")))
        await b.submit(OrderRequest.option(C530, 2, "buy", "buy_to_open", owner=own("e1")))
        await b.submit(OrderRequest.option(P520, 1, "sell", "sell_to_open", owner=own("e2")))
        await b.submit(OrderRequest.option(C545, 1, "sell", "sell_to_open", owner=own("e3")))
        await b.submit(OrderRequest.option(P515, 1, "buy", "buy_to_open", owner=own("e4")))
        cash0 = (await b.account()).cash
        # Friday close 518: the 530 calls and 545 call are out of the money; the 520 put
        # is in by 2.00 (assigned), the 515 put is out.
        q.set_close("SPY", EXPIRY, "518.00")
        clock.set(datetime(2024, 6, 7, 20, 0, tzinfo=UTC))
        acts = [
            (a.type, a.symbol, a.qty, a.price) for a in await b.activities() if a.type != "FILL"
        ]
        assert sorted(acts) == sorted(
            [
                ("OPEXP", C530, D(-2), None),
                ("OPEXP", C545, D(1), None),
                ("OPASN", P520, D(1), None),
                ("OPTRD", "SPY", D(100), D(520)),
                ("OPEXP", P515, D(-1), None),
            ]
        ), acts
        pos = {p.symbol: p.qty for p in await b.positions()}
        assert pos == {"SPY": D(200)}
        acct = await b.account()
        assert acct.cash == cash0 - D(52_000), acct
        assert acct.buying_power == acct.cash, acct

    await go()


async def test_expiry_long_call_exercised_at_one_cent_not_below(world):
    clock, q, make = world

    async def go():
        b = make()
        await b.submit(OrderRequest.option(C530, 1, "buy", "buy_to_open", owner=own("x1")))
        await b.submit(OrderRequest.option(C535, 1, "buy", "buy_to_open", owner=own("x2")))
        # 535.009 is 0.009 in the money for the 535 call: below $0.01, so it expires.
        q.set_close("SPY", EXPIRY, "535.009")
        clock.set(datetime(2024, 6, 7, 21, 0, tzinfo=UTC))
        acts = {(a.type, a.symbol, a.qty) for a in await b.activities() if a.type != "FILL"}
        assert acts == {("OPEXC", C530, D(-1)), ("OPTRD", "SPY", D(100)), ("OPEXP", C535, D(-1))}, (
            acts
        )
        pos = {p.symbol: (p.qty, p.avg_entry_price) for p in await b.positions()}
        assert pos == {"SPY": (D(100), D(530))}

    await go()


async def test_short_covered_call_assigned_delivers_shares(world):
    clock, q, make = world

    async def go():
        b = make()
        await b.submit(OrderRequest.equity("SPY", 100, "buy", owner=own("w0", "wheel")))
        await b.submit(OrderRequest.option(C535, 1, "sell", "sell_to_open", owner=own("w1")))
        cash0 = (await b.account()).cash
        q.set_close("SPY", EXPIRY, "540.00")
        clock.set(datetime(2024, 6, 10, 14, 0, tzinfo=UTC))  # the next Monday
        acts = {
            (a.type, a.symbol, a.qty, a.price) for a in await b.activities() if a.type != "FILL"
        }
        assert acts == {("OPASN", C535, D(1), None), ("OPTRD", "SPY", D(-100), D(535))}
        assert await b.positions() == []
        assert (await b.account()).cash == cash0 + D(53_500)

    await go()


async def test_replace_creates_new_owned_order(world):
    _clock, _q, make = world

    async def go():
        b = make()
        o = await b.submit(
            OrderRequest.option(C530, 1, "buy", "buy_to_open", D("3.50"), owner=own("rp"))
        )
        assert o.status == OrderStatus.NEW
        new = await b.replace(o.id, limit_price=D("4.00"))
        assert new.client_order_id == o.client_order_id + "-r1"
        assert new.owner.same_decision(o.owner)
        assert new.status == OrderStatus.FILLED
        old = await b.order_by_client_id(o.client_order_id)
        assert old.status == OrderStatus.REPLACED
        assert old.replaced_by == new.id

    await go()


async def test_resubmitting_a_decision_returns_the_same_order(world):
    _clock, _q, make = world

    async def go():
        b = make()
        req = OrderRequest.equity("SPY", 5, "buy", owner=own("idem", "trend"))
        a = await b.submit(req)
        again = await b.submit(req)
        assert a.id == again.id
        assert len(await b.orders("all")) == 1
        assert len([x for x in await b.activities() if x.type == "FILL"]) == 1

    await go()


async def test_sim_is_deterministic(world):
    _clock, _q, make = world

    async def scenario():
        b = make()
        await b.submit(OrderRequest.equity("SPY", 100, "buy", owner=own("d0", "wheel")))
        await b.submit(OrderRequest.option(C535, 1, "sell", "sell_to_open", owner=own("d1")))
        return (
            [o.to_dict() for o in await b.orders("all")],
            [(a.id, a.type, a.qty) for a in await b.activities()],
        )

    assert await scenario() == await scenario()


async def test_option_cut_offs_follow_the_calendar(world):
    """Cut-offs from v28quant.calendar (Cboe rules).

    SPY is a late-close ETF, so its non-expiring options trade to 16:15 ET; equities and AAPL
    options stop at 16:00; on expiry day the expiring SPY series stops at 16:00 too, and orders for
    it are refused after that.
    """
    clock, q, make = world
    aapl_c, spy_next = "AAPL240607C00190000", "SPY240614C00530000"
    q.set("AAPL", "190.00", "190.05")
    q.set(aapl_c, "2.00", "2.10")
    q.set(spy_next, "5.00", "5.10")
    ny = datetime(2024, 6, 3, 20, 5, tzinfo=UTC)  # Mon 16:05 New York

    async def go():
        clock.set(ny)
        b = make()
        spy = await b.submit(
            OrderRequest.option(C530, 1, "buy", "buy_to_open", D("4.00"), owner=own("late1"))
        )
        assert spy.status == OrderStatus.FILLED, spy
        assert spy.filled_avg_price == D("4.00"), spy
        stock = await b.submit(OrderRequest.equity("SPY", 1, "buy", owner=own("late2")))
        aapl = await b.submit(
            OrderRequest.option(aapl_c, 1, "buy", "buy_to_open", D("2.10"), owner=own("late3"))
        )
        assert (stock.status, aapl.status) == (OrderStatus.ACCEPTED, OrderStatus.ACCEPTED)
        resting = await b.submit(
            OrderRequest.option(C535, 1, "buy", "buy_to_open", D("1.00"), owner=own("late4"))
        )
        assert resting.status == OrderStatus.NEW  # SPY options are still trading
        clock.set(datetime(2024, 6, 3, 20, 14, tzinfo=UTC))
        assert (await b.order_by_client_id(resting.client_order_id)).status == OrderStatus.NEW
        clock.set(datetime(2024, 6, 3, 20, 16, tzinfo=UTC))
        gone = await b.order_by_client_id(resting.client_order_id)
        assert gone.status == OrderStatus.EXPIRED
        assert gone.updated_at == datetime(2024, 6, 3, 20, 15, tzinfo=UTC), gone.updated_at

        # Expiry day, Fri 2024-06-07 15:30: the expiring series' day order ends at 16:00,
        # the next week's at 16:15.
        clock.set(datetime(2024, 6, 7, 19, 30, tzinfo=UTC))
        exp = await b.submit(
            OrderRequest.option(C540, 1, "buy", "buy_to_open", D("0.50"), owner=own("exp1"))
        )
        nxt = await b.submit(
            OrderRequest.option(spy_next, 1, "buy", "buy_to_open", D("4.00"), owner=own("exp2"))
        )
        q.set("SPY", "530.00", "530.10")
        q.set_close("SPY", EXPIRY, "531.00")
        q.set_close("AAPL", EXPIRY, "189.00")
        clock.set(datetime(2024, 6, 7, 20, 5, tzinfo=UTC))  # 16:05
        exp = await b.order_by_client_id(exp.client_order_id)
        assert exp.status == OrderStatus.EXPIRED
        assert exp.updated_at == datetime(2024, 6, 7, 20, 0, tzinfo=UTC), exp.updated_at
        assert (await b.order_by_client_id(nxt.client_order_id)).status == OrderStatus.NEW
        with pytest.raises(OrderRejected, match="expired"):
            await b.submit(
                OrderRequest.option(C545, 1, "buy", "buy_to_open", D("0.45"), owner=own("exp3"))
            )

    await go()


async def test_margin_account_doubles_stock_buying_power(world):
    """Reg T (12 CFR 220.12).

    initial margin 50 % of a long stock position, so buying power is 2 x excess equity, excess =
    equity - 50 % of long value. Options stay fully paid.
    """
    _clock, _q, make = world

    async def go():
        cash_acct = make()
        with pytest.raises(InsufficientBuyingPower, match="insufficient buying power"):
            await cash_acct.submit(OrderRequest.equity("SPY", 300, "buy", owner=own("m0")))
        b = make(multiplier=2)
        acct = await b.account()
        assert (acct.buying_power, acct.options_buying_power) == (D(200_000), D(100_000))
        o = await b.submit(OrderRequest.equity("SPY", 300, "buy", owner=own("m1")))
        assert o.status == OrderStatus.FILLED, o
        acct = await b.account()
        long_value = 300 * D("530.05")  # marked at the mid
        assert acct.cash == D(100_000) - 300 * D("530.10"), acct  # a margin loan: negative
        equity = acct.cash + long_value
        excess = equity - long_value / 2
        assert acct.equity == equity, acct
        assert acct.options_buying_power == excess, acct
        assert acct.buying_power == 2 * excess, acct
        # Options are not marginable: two cash-secured 520 puts need 104 000 of excess.
        with pytest.raises(InsufficientBuyingPower, match="options buying power"):
            await b.submit(
                OrderRequest.option(P520, 1, "sell", "sell_to_open", D("3.00"), owner=own("m2"))
            )

    await go()


async def test_margin_account_sells_short_with_150_percent_requirement(world):
    """Reg T short sale.

    150 % of the short's value held (the proceeds plus 50 %), so excess = cash - 1.5 x short value =
    equity - 50 % of short value.
    """
    _clock, q, make = world
    q.set("AAPL", "190.00", "190.05")

    async def go():
        cash_acct = make()
        assert not (await cash_acct.account()).shorting_enabled  # as it says, so it does
        with pytest.raises(InsufficientBuyingPower, match="insufficient qty available"):
            await cash_acct.submit(OrderRequest.equity("AAPL", 100, "sell", owner=own("s0")))
        b = make(multiplier=2)
        assert (await b.account()).shorting_enabled
        o = await b.submit(OrderRequest.equity("AAPL", 100, "sell", owner=own("s1")))
        assert o.status == OrderStatus.FILLED, o
        assert o.filled_avg_price == D("190.00"), o
        [pos] = await b.positions()
        assert (pos.symbol, pos.qty) == ("AAPL", D(-100))
        acct = await b.account()
        short_value = 100 * D("190.025")
        assert acct.cash == D(119_000), acct
        assert acct.equity == D(119_000) - short_value, acct
        assert acct.options_buying_power == D(119_000) - D("1.5") * short_value, acct
        assert acct.options_buying_power == acct.equity - short_value / 2
        assert acct.buying_power == 2 * acct.options_buying_power
        # A short beyond buying power is refused; so is taking a long through zero.
        with pytest.raises(InsufficientBuyingPower, match="insufficient buying power"):
            await b.submit(OrderRequest.equity("SPY", 400, "sell", owner=own("s2")))
        await b.submit(OrderRequest.equity("SPY", 10, "buy", owner=own("s3")))
        with pytest.raises(InsufficientBuyingPower, match="insufficient qty available"):
            await b.submit(OrderRequest.equity("SPY", 20, "sell", owner=own("s4")))
        cover = await b.submit(OrderRequest.equity("AAPL", 100, "buy", owner=own("s5")))
        assert cover.status == OrderStatus.FILLED
        assert [p.symbol for p in await b.positions()] == ["SPY"]

    await go()


async def test_a_hard_to_borrow_stock_is_not_lent_for_a_short_sale(world):
    """``SimConfig.hard_to_borrow``: what the asset says and what admission does agree."""
    _clock, q, make = world
    q.set("AAPL", "190.00", "190.05")
    b = make(multiplier=2, hard_to_borrow=frozenset({"AAPL"}))
    aapl, spy = await b.asset("AAPL"), await b.asset("SPY")
    assert (aapl.shortable, aapl.easy_to_borrow, aapl.lends) == (False, False, False)
    assert (spy.shortable, spy.easy_to_borrow, spy.lends) == (True, True, True)
    with pytest.raises(OrderRejected, match="AAPL cannot be sold short"):
        await b.submit(OrderRequest.equity("AAPL", 10, "sell", owner=own("h1")))
    short = await b.submit(OrderRequest.equity("SPY", 10, "sell", owner=own("h2")))
    assert short.status == OrderStatus.FILLED
    # a long in a hard-to-borrow stock is bought and sold as any other
    await b.submit(OrderRequest.equity("AAPL", 10, "buy", owner=own("h3")))
    sale = await b.submit(OrderRequest.equity("AAPL", 10, "sell", owner=own("h4")))
    assert sale.status == OrderStatus.FILLED
    assert [p.symbol for p in await b.positions()] == ["SPY"]


def test_multiplier_must_be_cash_or_reg_t():
    with pytest.raises(ValueError, match="multiplier must be 1"):
        SimConfig(multiplier=4)


async def test_a_limit_at_the_quote_fills_at_its_limit_under_slippage(world):
    # A buy limit at the ask is marketable whatever the slippage: the
    # slippage moves the fill towards the limit, never past it, so it fills at the limit.
    _clock, _q, make = world

    async def go():
        b = make(slippage_bps=D(10))
        buy = await b.submit(
            OrderRequest.equity("SPY", 10, "buy", "limit", D("530.10"), owner=own("la", "trend"))
        )
        assert buy.status == OrderStatus.FILLED, buy
        assert buy.filled_avg_price == D("530.10")
        call = await b.submit(
            OrderRequest.option(C535, 1, "buy", "buy_to_open", D("2.15"), owner=own("lb"))
        )
        assert call.status == OrderStatus.FILLED, call
        assert call.filled_avg_price == D("2.15")
        # inside the spread it still rests
        rest = await b.submit(
            OrderRequest.equity("SPY", 1, "buy", "limit", D("530.05"), owner=own("lc", "trend"))
        )
        assert rest.status == OrderStatus.NEW

    await go()


async def test_a_spread_limit_at_the_natural_fills_at_its_limit_under_slippage(world):
    # Bull call 530/535 at the natural: buy 530 at 4.00, sell 535 at 2.05, net debit 1.95.
    # With 10 bp slippage the legs would cost 4.004 - 2.04795 = 1.95605 > 1.95; the order is
    # marketable on the quotes, so it fills with its net at the limit, 1.95, each leg moved
    # by the same share of its slippage (here 1.95 = 1.95 + a (1.95605 - 1.95), a = 0).
    _clock, _q, make = world

    async def go():
        b = make(slippage_bps=D(10))
        legs = [Leg(C530, 1, "buy", "buy_to_open"), Leg(C535, 1, "sell", "sell_to_open")]
        o = await b.submit(OrderRequest.multileg(legs, 2, D("1.95"), owner=own("nat")))
        assert o.status == OrderStatus.FILLED, o
        assert o.filled_avg_price == D("1.95"), o
        acct = await b.account()
        assert acct.cash == D(100_000) - D("1.95") * 200, acct
        # a limit better than the natural rests, as before
        o2 = await b.submit(OrderRequest.multileg(legs, 1, D("1.90"), owner=own("mid")))
        assert o2.status == OrderStatus.NEW

    await go()


async def test_each_fill_records_the_slippage_and_half_spread_it_paid(world):
    # 10 bp: a market buy of 10 SPY at the 530.10 ask pays 530.6301, 10 x 0.5301 = 5.301; the
    # bull call at its natural limit fills with its net at the limit, each leg at its quote: 0.
    # Half spreads, quote to mid: SPY 10 x 0.05 = 0.5; each leg 2 x 100 x 0.05 = 10.
    _clock, _q, make = world

    async def go():
        b = make(slippage_bps=D(10))
        await b.submit(OrderRequest.equity("SPY", 10, "buy", owner=own("sp", "trend")))
        legs = [Leg(C530, 1, "buy", "buy_to_open"), Leg(C535, 1, "sell", "sell_to_open")]
        await b.submit(OrderRequest.multileg(legs, 2, D("1.95"), owner=own("sn")))
        acts = await b.activities()
        paid = {a.symbol: D(a.raw["slippage"]) for a in acts}
        assert paid == {"SPY": D("5.301"), C530: 0, C535: 0}, paid
        half = {a.symbol: D(a.raw["half_spread"]) for a in acts}
        assert half == {"SPY": D("0.5"), C530: 10, C535: 10}, half

    await go()


async def test_a_series_dated_on_a_holiday_settles_at_the_session_before() -> None:
    # Good Friday 2024-03-29 is no session: a series dated that day last trades on Thursday
    # 03-28 and settles on that close (523.17: the 520 call is in by 3.17, exercised).
    clock = SimClock(datetime(2024, 3, 25, 14, 30, tzinfo=UTC))
    q = StaticQuotes(clock)
    call = "SPY240329C00520000"
    q.set("SPY", "520.00", "520.10")
    q.set(call, "4.00", "4.10")
    b = SimBroker(q, clock, SimConfig(cash=D(200_000)))
    await b.submit(OrderRequest.option(call, 1, "buy", "buy_to_open", owner=own("gf")))
    q.set_close("SPY", date(2024, 3, 28), "523.17")
    clock.set(datetime(2024, 4, 1, 14, 0, tzinfo=UTC))  # the Monday after
    acts = {(a.type, a.symbol, a.qty, a.price) for a in await b.activities() if a.type != "FILL"}
    assert acts == {("OPEXC", call, D(-1), None), ("OPTRD", "SPY", D(100), D(520))}


C535_JUL = "SPY240719C00535000"


async def test_a_covered_call_rolled_in_one_order_is_covered_by_the_shares(world):
    """Buying back the covered 535 call frees its 100 shares for the July call it sells.

    The new call is held on the same shares, which stay collateral: no second call, no sale.
    """
    _clock, q, make = world
    q.set(C535_JUL, "6.00", "6.10")

    async def go():
        b = make()
        await b.submit(OrderRequest.equity("SPY", 100, "buy", owner=own("s1", "wheel")))
        await b.submit(
            OrderRequest.option(C535, 1, "sell", "sell_to_open", D("2.00"), owner=own("cc1"))
        )
        legs = [Leg(C535, 1, "buy", "buy_to_close"), Leg(C535_JUL, 1, "sell", "sell_to_open")]
        roll = await b.submit(OrderRequest.multileg(legs, 1, D("-3.80"), owner=own("roll")))
        # Credit: 6.00 - 2.15 = 3.85.
        assert roll.status == OrderStatus.FILLED, roll
        assert roll.filled_avg_price == D("-3.85"), roll
        pos = {p.symbol: p.qty for p in await b.positions()}
        assert pos == {"SPY": 100, C535_JUL: -1}
        with pytest.raises(InsufficientBuyingPower, match="available"):
            await b.submit(OrderRequest.equity("SPY", 1, "sell", owner=own("s2", "wheel")))
        with pytest.raises(InsufficientBuyingPower, match="covered call"):
            await b.submit(
                OrderRequest.option(C540, 1, "sell", "sell_to_open", D("0.90"), owner=own("cc2"))
            )

    await go()


async def test_a_call_rolled_without_shares_behind_it_is_refused(world):
    """A call sold in a multi-leg order with no shares, nor a covered call bought back: naked."""
    _clock, q, make = world
    q.set(C535_JUL, "6.00", "6.10")

    async def go():
        b = make()
        await b.submit(OrderRequest.equity("SPY", 100, "buy", owner=own("s1", "wheel")))
        await b.submit(
            OrderRequest.option(C535, 1, "sell", "sell_to_open", D("2.00"), owner=own("cc1"))
        )
        # the shares still cover the 535 call: nothing covers the July calls
        legs = [Leg(C540, 1, "buy", "buy_to_open"), Leg(C535_JUL, 2, "sell", "sell_to_open")]
        with pytest.raises(InsufficientBuyingPower, match="uncovered"):
            await b.submit(OrderRequest.multileg(legs, 1, D("-5.00"), owner=own("r2")))

    await go()


async def test_a_short_far_call_over_a_long_near_call_is_an_uncovered_call(world):
    """The June 530 call bought expires before the July 535 sold: nothing covers it after.

    The risk gate counts it so (``risk._at_last_expiry``); the simulator refuses it, where a
    long far call under a short near one (a diagonal) holds only its worst payoff.
    """
    _clock, q, make = world
    q.set(C535_JUL, "6.00", "6.10")

    async def go():
        b = make()
        legs = [Leg(C530, 1, "buy", "buy_to_open"), Leg(C535_JUL, 1, "sell", "sell_to_open")]
        with pytest.raises(InsufficientBuyingPower, match="uncovered"):
            await b.submit(OrderRequest.multileg(legs, 1, D("-1.00"), owner=own("rd")))
        legs = [Leg(C535_JUL, 1, "buy", "buy_to_open"), Leg(C540, 1, "sell", "sell_to_open")]
        diagonal = await b.submit(OrderRequest.multileg(legs, 1, D("5.20"), owner=own("dg")))
        # Debit: 6.10 - 0.95 = 5.15; the long July call covers the short June one.
        assert diagonal.status == OrderStatus.FILLED, diagonal
        assert diagonal.filled_avg_price == D("5.15"), diagonal

    await go()
