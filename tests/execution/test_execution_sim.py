"""Executor against SimBroker: journal before send, idempotence, refusals, fills, cancel/replace.

Expected numbers are worked by hand from the quotes each test sets (SimBroker fills a market buy
at the ask, a sell at the bid; money is Decimal, so comparisons are exact).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fakes.fixtures import StaticQuotes
from fakes.options_world import RecordingNotifier
from v28quant.broker import (
    BrokerUnavailable,
    ClientOrderIdConflict,
    InsufficientBuyingPower,
    OptionsLevelError,
    Order,
    OrderRequest,
    Owner,
)
from v28quant.broker.sim import SimBroker, SimConfig
from v28quant.clock import SimClock
from v28quant.execution import Decision, Executor, Reservation
from v28quant.journal import Journal

OPEN = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)  # Mon 2024-06-03 10:30 New York
CLOSED = datetime(2024, 6, 1, 14, 30, tzinfo=UTC)  # Saturday
C540 = "SPY240607C00540000"
P520 = "SPY240607P00520000"


class World:
    """A SimBroker on a simulated clock with hand-set quotes, a journal and an executor."""

    def __init__(self, path: Path, now: datetime = OPEN, cash: str = "100000") -> None:
        self.clock = SimClock(now)
        self.quotes = StaticQuotes(self.clock)
        self.quotes.set("SPY", "530.00", "530.10")
        self.quotes.set("QQQ", "450.00", "450.20")
        self.quotes.set(C540, "0.95", "1.00")
        self.quotes.set(P520, "3.00", "3.10")
        self.broker = SimBroker(self.quotes, self.clock, SimConfig(cash=D(cash)))
        self.path = path
        self.journal = Journal(path)
        self.ex = Executor(self.broker, self.journal, clock=self.clock, quotes=self.quotes)


@pytest.fixture
def world(tmp_path: Path) -> Any:
    w = World(tmp_path / "j.sqlite")
    yield w
    w.ex.journal.close()
    w.journal.close()


def buy(symbol: str, qty: int, decision: str, strategy: str = "trend") -> Decision:
    req = OrderRequest.equity(symbol, qty, "buy", owner=Owner("equity", strategy, decision))
    return Decision(req, {"score": 0.8, "why": "test"})


def raw(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql, params).fetchall()


async def venue_orders(broker: SimBroker, cid: str) -> list[Order]:
    return [o for o in await broker.orders("all") if o.client_order_id == cid]


@pytest.mark.asyncio
async def test_market_buy_fills_and_journals_fill_and_snapshot(world: World) -> None:
    """10 SPY at the 530.10 ask: the fill, the order row and the snapshot agree with the venue."""
    out = await world.ex.place(buy("SPY", 10, "d1"))
    assert out.status == "filled", out
    assert [(f.symbol, f.qty, f.price, f.side) for f in out.fills] == [
        ("SPY", D(10), D("530.10"), "buy")
    ]
    row = world.journal.order_by_client_id(out.client_order_id)
    assert row is not None
    assert row["status"] == "filled"
    assert row["filled_qty"] == D(10)
    assert row["broker_order_id"] == out.order.id if out.order else False
    assert world.journal.last_positions() == {"SPY": D(10)}
    assert world.journal.reservations() == []
    events = [e["status"] for e in world.journal.order_events(out.client_order_id)]
    assert events[0] == "intent", events
    assert events[-1] == "filled", events
    (decision,) = raw(world.path, "SELECT reasoning FROM decisions")
    assert '"score": 0.8' in decision[0]


@pytest.mark.asyncio
async def test_intent_with_hash_is_on_disk_before_the_first_byte(world: World) -> None:
    """The broker's submit sees, through another connection, the intent and its request hash."""
    from v28quant.broker import request_hash

    seen: list[tuple[Any, ...]] = []
    real_submit = world.broker.submit

    async def spying_submit(request: OrderRequest) -> Order:
        seen.extend(
            raw(
                world.path,
                "SELECT status, request_hash FROM orders WHERE client_order_id = ?",
                request.client_order_id,
            )
        )
        return await real_submit(request)

    world.broker.submit = spying_submit  # type: ignore[method-assign]
    d = buy("SPY", 1, "d-hash")
    await world.ex.place(d)
    assert seen == [("intent", request_hash(d.request))]


@pytest.mark.asyncio
async def test_same_decision_twice_is_one_order(world: World) -> None:
    d = buy("SPY", 5, "once")
    first = await world.ex.place(d)
    again = await world.ex.place(d)
    assert first.order is not None
    assert again.order is not None
    assert first.order.id == again.order.id
    assert len(await venue_orders(world.broker, d.request.client_order_id)) == 1
    assert world.journal.last_positions() == {"SPY": D(5)}


@pytest.mark.asyncio
async def test_same_owner_different_request_is_refused_loudly(world: World) -> None:
    """A 50-share sell under the key of an earlier 1-share buy must not return that buy."""
    owner = Owner("equity", "trend", "reused")
    await world.ex.place(Decision(OrderRequest.equity("SPY", 1, "buy", owner=owner), {}))
    sell = Decision(OrderRequest.equity("SPY", 50, "sell", owner=owner), {})
    with pytest.raises(ClientOrderIdConflict, match="different request"):
        await world.ex.place(sell)
    assert len(await venue_orders(world.broker, owner.client_order_id)) == 1
    row = world.journal.order_by_client_id(owner.client_order_id)
    assert row is not None
    assert row["request"]["side"] == "buy"


@pytest.mark.asyncio
async def test_definite_refusal_is_rejected_and_never_resent(world: World) -> None:
    """1000 SPY at 530.10 needs $530,100 of a $100,000 account: the venue refuses it."""
    d = buy("SPY", 1000, "too-big")
    out = await world.ex.place(d)
    assert out.status == "rejected"
    assert out.reason
    assert "buying power" in out.reason.lower()
    again = await world.ex.place(d)
    assert again.status == "rejected"
    assert await venue_orders(world.broker, d.request.client_order_id) == []
    row = world.journal.order_by_client_id(d.request.client_order_id)
    assert row is not None
    assert row["status"] == "rejected"


@pytest.mark.asyncio
async def test_a_refusal_the_caller_notifies_gets_no_second_notice(world: World) -> None:
    """A venue refusal of a type the caller notifies itself gets no executor notice.

    At options level 0 the SimBroker refuses every option order with ``OptionsLevelError``
    (Alpaca's 403): the outcome carries that type and the notifier hears nothing from the
    executor. 1000 SPY at 530.10 ($530,100 of a $100,000 account) is still notified.
    """
    notifier = RecordingNotifier()
    world.ex = Executor(world.broker, world.journal, notifier=notifier, clock=world.clock)
    world.broker.set_options_level(0)
    owner = Owner("options", "csp", "level")
    req = OrderRequest.option(P520, 1, "sell", "sell_to_open", "3.00", owner=owner)
    out = await world.ex.place(Decision(req, {}), caller_notifies=(OptionsLevelError,))
    assert (out.status, out.error_type) == ("rejected", OptionsLevelError), out
    assert notifier.notices == []
    generic = await world.ex.place(buy("SPY", 1000, "too-big"))
    assert generic.status == "rejected", generic
    assert generic.error_type is not None
    assert not issubclass(generic.error_type, OptionsLevelError)
    assert notifier.notices == [
        f"ERROR in execution: order {generic.client_order_id} rejected: {generic.reason}"
    ]


@pytest.mark.asyncio
async def test_resting_limit_order_tracked_cancelled_and_replaced(world: World) -> None:
    """A limit buy at 520 rests below the 530.10 ask; replace it to 521, then cancel it."""
    owner = Owner("equity", "dip", "rest")
    req = OrderRequest.equity("SPY", 2, "buy", "limit", "520.00", owner=owner)
    out = await world.ex.place(Decision(req, {"why": "dip"}))
    assert out.status == "new"
    new = await world.ex.replace(owner.client_order_id, limit_price=D("521.00"), reason="chase")
    assert new.client_order_id == owner.client_order_id + "-r1"
    assert new.order is not None
    assert new.order.limit_price == D("521.00")
    old = world.journal.order_by_client_id(owner.client_order_id)
    assert old is not None
    assert old["status"] == "replaced"
    gone = await world.ex.cancel(new.client_order_id, reason="end of test")
    assert gone.status == "canceled"
    statuses = [e["status"] for e in world.journal.order_events(new.client_order_id)]
    assert statuses[0] == "intent"
    assert "cancel_requested" in statuses
    assert statuses[-1] == "canceled"
    assert world.journal.open_orders() == []


@pytest.mark.asyncio
async def test_cancel_refuses_an_order_that_is_not_ours(world: World) -> None:
    with pytest.raises(ValueError, match="not one of ours"):
        await world.ex.cancel("0b8a5b6e-0000-4000-8000-000000000000", reason="x")


@pytest.mark.asyncio
async def test_track_polls_until_the_market_opens_and_fills(tmp_path: Path) -> None:
    """Tracking polls a resting order until it fills.

    Placed on a Saturday the order waits ``accepted``; tracking, with a sleep that moves the
    simulated clock to Monday's session, sees it fill and journals the fill.
    """
    w = World(tmp_path / "j.sqlite", now=CLOSED)

    async def to_monday(_: float) -> None:
        w.clock.set(OPEN)

    w.ex = Executor(w.broker, w.journal, clock=w.clock, sleep=to_monday, poll_interval_s=60)
    out = await w.ex.place(buy("SPY", 3, "weekend"), wait_s=3600)
    assert out.status == "filled", out
    assert [f.qty for f in out.fills] == [D(3)]
    assert w.journal.last_positions() == {"SPY": D(3)}


@pytest.mark.asyncio
async def test_track_never_sleeps_past_its_timeout(tmp_path: Path) -> None:
    """Polling without a stream waits at most what is left of the timeout, not a whole interval.

    A flatten's wait for its covers fits inside the watch's limit only if tracking returns at
    its timeout: with a 60 s interval and a 0.5 s timeout no poll may sleep over 0.5 s.
    """
    w = World(tmp_path / "j.sqlite", now=CLOSED)
    asked: list[float] = []

    async def short_sleep(seconds: float) -> None:
        asked.append(seconds)
        await asyncio.sleep(min(seconds, 0.05))

    w.ex = Executor(w.broker, w.journal, clock=w.clock, sleep=short_sleep, poll_interval_s=60)
    out = await w.ex.place(buy("SPY", 3, "weekend"), wait_s=0.5)
    assert out.status == "accepted", out
    assert asked
    assert max(asked) <= 0.5, asked


# ---------------------------------------------------------------- reservations


def covered_call(decision: str) -> Decision:
    owner = Owner("options", "covered", decision)
    req = OrderRequest.option(C540, 1, "sell", "sell_to_open", "0.95", owner=owner)
    return Decision(req, {"why": "income"}, reserve=Reservation(owner, "shares", "SPY", D(100)))


def sell_spy(qty: int, decision: str, engine: str = "equity", strategy: str = "trend") -> Decision:
    owner = Owner(engine, strategy, decision)
    return Decision(OrderRequest.equity("SPY", qty, "sell", owner=owner), {"why": "exit"})


@pytest.mark.asyncio
async def test_reserved_shares_cannot_be_sold_by_another_owner(world: World) -> None:
    """150 SPY held; 100 back a covered call. The equity engine may sell 50, not 51."""
    await world.ex.place(buy("SPY", 150, "stock"))
    cc = await world.ex.place(covered_call("cc1"))
    assert cc.status == "filled", cc
    (res,) = world.journal.reservations()
    assert (res["engine"], res["kind"], res["symbol"], res["amount"]) == (
        "options",
        "shares",
        "SPY",
        D(100),
    )
    too_many = await world.ex.place(sell_spy(51, "s51"))
    assert too_many.status == "refused"
    assert too_many.reason
    assert "reserved by options/covered" in too_many.reason
    row = world.journal.order_by_client_id(too_many.client_order_id)
    assert row is not None
    assert row["status"] == "refused"
    assert "reserved" in row["reason"]
    assert await venue_orders(world.broker, too_many.client_order_id) == []
    ok = await world.ex.place(sell_spy(50, "s50"))
    assert ok.status == "filled"
    assert world.journal.last_positions() == {"SPY": D(100), C540: D(-1)}


@pytest.mark.asyncio
async def test_reserved_cash_cannot_be_spent_by_another_owner(world: World) -> None:
    """Cash reserved for a cash-secured put cannot be spent by another owner.

    A cash-secured put on strike 520 reserves $52,000; the equity engine may spend the rest
    of the cash, and not a dollar of the reservation.
    """
    owner = Owner("options", "csp", "p1")
    req = OrderRequest.option(P520, 1, "sell", "sell_to_open", "3.00", owner=owner)
    put = await world.ex.place(
        Decision(req, {}, reserve=Reservation(owner, "cash", None, D(52_000)))
    )
    assert put.status == "filled", put
    # Cash is now 100,000 + 300 premium = 100,300; 52,000 reserved: 48,300 free.
    big = await world.ex.place(buy("QQQ", 108, "q108"))  # 108 x 450.20 = 48,621.60
    assert big.status == "refused"
    assert big.reason
    assert "csp" in big.reason
    small = await world.ex.place(buy("QQQ", 107, "q107"))  # 107 x 450.20 = 48,171.40
    assert small.status == "filled"


def active_cash_reserved(path: Path) -> D:
    """Return the active cash reservations, summed from the journal with plain sqlite3."""
    rows = raw(path, "SELECT amount FROM reservations WHERE released_ts IS NULL AND kind = 'cash'")
    return sum((D(a) for (a,) in rows), D(0))


def resting_call(decision: str, reserve: D) -> Decision:
    """Return a buy of one C540 at 0.50 (under the 1.00 ask: it rests) reserving cash."""
    owner = Owner("options", "spread", decision)
    req = OrderRequest.option(C540, 1, "buy", "buy_to_open", "0.50", owner=owner)
    return Decision(req, {}, reserve=Reservation(owner, "cash", None, reserve))


@pytest.mark.asyncio
async def test_a_resting_put_counts_its_collateral_once(world: World) -> None:
    """A resting cash-secured put's collateral is reserved once, not once more as its spend.

    By hand: cash 100,000 (nothing filled), the put at 5.00 rests (bid 3.00) and reserves
    52,000 = 520 x 100, which is the very cash its order would spend: 48,000 is free. Before
    the fix the free amount was 100,000 - 52,000 reserved - 52,000 "being spent" = 0.
    """
    owner = Owner("options", "csp", "rest")
    req = OrderRequest.option(P520, 1, "sell", "sell_to_open", "5.00", owner=owner)
    put = await world.ex.place(
        Decision(req, {}, reserve=Reservation(owner, "cash", None, D(52_000)))
    )
    assert put.status == "new", put
    cash = (await world.broker.account()).cash
    free = cash - active_cash_reserved(world.path)
    assert (cash, free) == (D(100_000), D(48_000)), (cash, free)
    over = await world.ex.place(resting_call("over", free + D("0.01")))
    assert over.status == "refused", over
    assert f"{free} free of {cash} (52000 reserved, 0 more being spent by open orders)" in str(
        over.reason
    )
    fits = await world.ex.place(resting_call("fits", free))
    assert fits.status == "new", fits
    assert (await world.ex.cancel(fits.client_order_id, reason="test")).status == "canceled"
    big = await world.ex.place(buy("QQQ", 107, "q107"))  # 107 x 450.20 = 48,171.40
    assert big.status == "refused", big
    assert (
        "needs 48171.40, 48000 free of 100000 (52000 reserved by other owners, 0 more being "
        "spent by their open orders)"
    ) in str(big.reason)
    assert (await world.ex.place(buy("QQQ", 106, "q106"))).status == "filled"  # 47,721.20


@pytest.mark.asyncio
async def test_a_filled_put_keeps_its_collateral_when_recorded_again(world: World) -> None:
    """A filled put's collateral stays reserved however often its order is looked up.

    By hand: cash 100,000 + 300 premium = 100,300; 52,000 stays reserved: 48,300 free, so
    108 QQQ at 450.20 (48,621.60) is refused and 107 (48,171.40) fills. Before the fix a second
    look at the filled order released the reservation ("order filled unfilled").
    """
    owner = Owner("options", "csp", "fill")
    req = OrderRequest.option(P520, 1, "sell", "sell_to_open", "3.00", owner=owner)
    put = await world.ex.place(
        Decision(req, {}, reserve=Reservation(owner, "cash", None, D(52_000)))
    )
    assert put.status == "filled", put
    await world.ex.track(put.client_order_id, 0.0)
    await world.ex.sync()
    assert active_cash_reserved(world.path) == D(52_000)
    assert (await world.broker.account()).cash == D(100_300)
    assert (await world.ex.place(buy("QQQ", 108, "q108"))).status == "refused"
    assert (await world.ex.place(buy("QQQ", 107, "q107"))).status == "filled"


@pytest.mark.asyncio
async def test_a_filled_debit_frees_its_reservation_once_paid(world: World) -> None:
    """A debit paid in cash is not reserved on top of the cash it already took.

    By hand: 2 C540 bought at the 1.00 ask pay 200, so cash is 99,800 and nothing is held for
    them any more: a reservation asking one cent more than the cash is told 99,800 is free.
    """
    owner = Owner("options", "long", "paid")
    req = OrderRequest.option(C540, 2, "buy", "buy_to_open", "1.00", owner=owner)
    out = await world.ex.place(Decision(req, {}, reserve=Reservation(owner, "cash", None, D(200))))
    assert out.status == "filled", out
    cash = (await world.broker.account()).cash
    assert cash == D(99_800)
    assert active_cash_reserved(world.path) == 0
    over = await world.ex.place(resting_call("over", cash + D("0.01")))
    assert over.status == "refused", over
    assert f"{cash} free of {cash} (0 reserved, 0 more being spent by open orders)" in str(
        over.reason
    )


@pytest.mark.asyncio
async def test_reservations_hold_under_two_concurrent_owners(tmp_path: Path) -> None:
    """Reservations hold when two owners race for the same shares.

    Two engines, each with its own executor and journal connection, race for 100 shares:
    one reserves them for a covered call while the other sells them. Exactly one wins,
    whatever the interleaving: the loser is refused by the reservation check (or, when the sell
    filled before the call's check read the position, rejected by the venue), and a losing
    call leaves no reservation behind.
    """
    for trial in range(6):
        w = World(tmp_path / f"j{trial}.sqlite")
        await w.ex.place(buy("SPY", 100, "stock"))
        other = Journal(w.path)
        ex2 = Executor(w.broker, other, clock=w.clock)
        first, second = (w.ex, ex2) if trial % 2 else (ex2, w.ex)
        cc, sell = await asyncio.gather(
            first.place(covered_call(f"cc{trial}")), second.place(sell_spy(100, f"sell{trial}"))
        )
        lost = [o for o in (cc, sell) if o.status in ("refused", "rejected")]
        assert len(lost) == 1, (cc, sell)
        held = {p.symbol: p.qty for p in await w.broker.positions()}
        if lost[0] is cc:
            assert held.get("SPY", D(0)) == 0
            assert w.journal.reservations() == []
        else:
            assert held["SPY"] == 100
            assert held[C540] == -1
            assert len(w.journal.reservations()) == 1
        ex2.journal.close()
        other.close()
        w.ex.journal.close()
        w.journal.close()


@pytest.mark.asyncio
async def test_unfilled_order_releases_its_reservation(world: World) -> None:
    await world.ex.place(buy("SPY", 100, "stock"))
    owner = Owner("options", "covered", "far")
    req = OrderRequest.option(C540, 1, "sell", "sell_to_open", "5.00", owner=owner)  # rests
    out = await world.ex.place(
        Decision(req, {}, reserve=Reservation(owner, "shares", "SPY", D(100)))
    )
    assert out.status == "new"
    assert len(world.journal.reservations()) == 1
    await world.ex.cancel(owner.client_order_id, reason="too far")
    assert world.journal.reservations() == []


# ---------------------------------------------------------------- journal off the loop


@pytest.mark.asyncio
async def test_a_busy_journal_does_not_stall_the_event_loop(world: World) -> None:
    """A journal locked by another connection never stalls the event loop.

    Another connection holds the journal's write lock. While ``place`` waits for it, the
    event loop keeps running: a ticker advances, and releases the lock after 20 ticks. With the
    SQLite call on the loop, the ticker could not run and ``place`` would fail after 30 s.
    """
    blocker = sqlite3.connect(world.path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while ticks < 20:
            ticks += 1
            await asyncio.sleep(0.01)
        blocker.execute("COMMIT")

    out, _ = await asyncio.gather(world.ex.place(buy("SPY", 1, "busy")), ticker())
    assert ticks == 20
    assert out.status == "filled"
    blocker.close()


# ---------------------------------------------------------------- options


def equity_cash_claim(decision: str, amount: D) -> Decision:
    """Return the equity engine's buy of 1 SPY at 500 (under the ask: it rests) reserving cash."""
    owner = Owner("equity", "dip", decision)
    req = OrderRequest.equity("SPY", 1, "buy", "limit", "500.00", owner=owner)
    return Decision(req, {}, reserve=Reservation(owner, "cash", None, amount))


def cash_spent_by_open_orders(path: Path) -> D:
    """Return the cash spends of orders not final, summed from the journal with plain sqlite3."""
    rows = raw(
        path,
        "SELECT spend_amount FROM orders WHERE spend_kind = 'cash' AND status NOT IN "
        "('filled', 'canceled', 'expired', 'rejected', 'replaced', 'refused', 'not_sent')",
    )
    return sum((D(a) for (a,) in rows), D(0))


@pytest.mark.asyncio
async def test_a_walked_closing_buy_spends_its_cash_once_per_replace(world: World) -> None:
    """A closing buy walked up by replaces counts its cash at its latest price, once.

    By hand: the put sold at the 3.00 bid leaves cash 100,300, with 52,000 reserved for it.
    Buying it back at 2.00 (under the 3.10 ask: it rests) spends 1 x 100 x 2.00 = 200, so
    another engine's claim sees 100,300 - 52,000 - 200 = 48,100 free; walked to 2.50 it spends
    250 (48,050 free), to 2.80 it spends 280 (48,020 free). Before the fix the replacement
    carried no spend: 48,300 free after the first replace, a premium over-committed.
    """
    owner = Owner("options", "csp", "walk")
    req = OrderRequest.option(P520, 1, "sell", "sell_to_open", "3.00", owner=owner)
    put = await world.ex.place(
        Decision(req, {}, reserve=Reservation(owner, "cash", None, D(52_000)))
    )
    assert put.status == "filled", put
    close_owner = Owner("options", "csp", "walk-close")
    close = OrderRequest.option(P520, 1, "buy", "buy_to_close", "2.00", owner=close_owner)
    out = await world.ex.place(Decision(close, {}))
    assert out.status == "new", out
    cash = (await world.broker.account()).cash
    assert cash == D(100_300)
    cid = close_owner.client_order_id
    for step, (limit, spent) in enumerate(
        [(None, D("200.00")), ("2.50", D("250.00")), ("2.80", D("280.00"))]
    ):
        if limit is not None:
            out = await world.ex.replace(cid, limit_price=D(limit), reason="walk")
            assert out.status == "new", out
            cid = out.client_order_id
            assert cid == close_owner.client_order_id + f"-r{step}"
        ((journaled,),) = raw(
            world.path, "SELECT spend_amount FROM orders WHERE client_order_id = ?", cid
        )
        assert journaled is not None, (limit, cid)  # before the fix: a replacement spent nothing
        assert D(journaled) == spent, (limit, journaled)
        assert cash_spent_by_open_orders(world.path) == spent
        free = cash - active_cash_reserved(world.path) - cash_spent_by_open_orders(world.path)
        assert free == D(48_300) - spent, (limit, free)
        over = await world.ex.place(equity_cash_claim(f"over{step}", free + D("0.01")))
        assert over.status == "refused", over
        assert (
            f"{free} free of {cash} (52000 reserved, {spent} more being spent by open orders)"
        ) in str(over.reason), over.reason
    fits = await world.ex.place(equity_cash_claim("fits", free))
    assert fits.status == "new", fits


async def spread_reserving_52000(world: World) -> None:
    """Reserve 52,000 cash for options/spread behind a resting call buy (the venue holds 50)."""
    out = await world.ex.place(resting_call("collateral", D(52_000)))
    assert out.status == "new", out
    assert (await world.broker.account()).cash == D(100_000)


async def open_limit(broker: SimBroker, cid: str) -> D | None:
    """Return the limit of the venue's open order ``cid`` (None: the venue has none open)."""
    live = [o for o in await venue_orders(broker, cid) if not o.status.terminal]
    return live[0].limit_price if live else None


def needs_and_free(reason: str | None) -> tuple[D, D, D]:
    """Return (needs, free, cash) from a refusal's reason."""
    found = re.search(r"needs ([\d.]+), ([\d.]+) free of ([\d.]+)", str(reason))
    assert found is not None, reason
    needs, free, cash = found.groups()
    return D(needs), D(free), D(cash)


@pytest.mark.asyncio
async def test_a_replace_that_needs_more_cash_than_is_free_is_refused(world: World) -> None:
    """Raising a resting buy's limit is checked against the cash other owners reserved.

    By hand: cash 100,000 with 52,000 reserved by options/spread leaves 48,000 free for
    equity/dip (the spread's own 50 order lies within its reservation). Its buy of 92 SPY at
    500 (under the 530.10 ask: it rests) spends 46,000; raised to 520 it spends 47,840 (fits);
    raised to 530 it would spend 48,760 > 48,000: refused, journaled with its reason, and the
    order at 520 keeps working at the venue (whose buying power, 99,950 less the order's
    own hold, would take it). Lowered to 510 (46,920) it goes, and the replacement's row
    spends 46,920, not the refused 48,760.
    """
    await spread_reserving_52000(world)
    owner = Owner("equity", "dip", "walk-up")
    req = OrderRequest.equity("SPY", 92, "buy", "limit", "500.00", owner=owner)
    assert (await world.ex.place(Decision(req, {}))).status == "new"
    r1 = await world.ex.replace(owner.client_order_id, limit_price=D("520.00"), reason="up")
    assert r1.status == "new", r1
    assert cash_spent_by_open_orders(world.path) == D(50) + D(47_840)

    r2 = await world.ex.replace(r1.client_order_id, limit_price=D("530.00"), reason="up")
    assert r2.status == "refused", r2
    assert r2.client_order_id == owner.client_order_id + "-r2"
    assert needs_and_free(r2.reason) == (D(48_760), D(48_000), D(100_000))
    assert await open_limit(world.broker, r1.client_order_id) == D("520.00")
    assert await venue_orders(world.broker, r2.client_order_id) == []
    rows = raw(
        world.path,
        "SELECT client_order_id, status, reason FROM orders WHERE client_order_id LIKE ? "
        "ORDER BY client_order_id",
        owner.client_order_id + "%",
    )
    assert [(c, s) for c, s, _ in rows] == [
        (owner.client_order_id, "replaced"),
        (r1.client_order_id, "new"),
        (r2.client_order_id, "refused"),
    ]
    assert needs_and_free(rows[2][2]) == (D(48_760), D(48_000), D(100_000))
    assert cash_spent_by_open_orders(world.path) == D(50) + D(47_840)

    down = await world.ex.replace(r1.client_order_id, limit_price=D("510.00"), reason="down")
    assert down.status == "new", down
    assert down.client_order_id == r2.client_order_id
    assert await open_limit(world.broker, r2.client_order_id) == D("510.00")
    ((spend,),) = raw(
        world.path, "SELECT spend_amount FROM orders WHERE client_order_id = ?", r2.client_order_id
    )
    assert D(spend) == D(46_920)
    assert cash_spent_by_open_orders(world.path) == D(50) + D(46_920)


@pytest.mark.asyncio
async def test_a_replace_that_lowers_the_spend_goes_when_cash_is_short(world: World) -> None:
    """Lowering a buy's spend is never refused, even when less cash is free than it holds.

    By hand: as above, equity/dip's 92 SPY at 520 spends 47,840 of the 48,000 free. Then
    options/spread spends its own reservation: 90 SPY at the 530.10 ask = 47,709 (its free
    cash is 100,000 - 47,840 = 52,160), leaving cash 52,291, 291 of it free for equity/dip.
    Lowered to 510 the buy spends 46,920 > 291, yet less than before: it goes. Raised back to
    520 it would spend 47,840 > 291: refused.
    """
    await spread_reserving_52000(world)
    owner = Owner("equity", "dip", "walk-down")
    req = OrderRequest.equity("SPY", 92, "buy", "limit", "520.00", owner=owner)
    assert (await world.ex.place(Decision(req, {}))).status == "new"
    own = OrderRequest.equity("SPY", 90, "buy", owner=Owner("options", "spread", "own-cash"))
    assert (await world.ex.place(Decision(own, {}))).status == "filled"
    assert (await world.broker.account()).cash == D(52_291)

    down = await world.ex.replace(owner.client_order_id, limit_price=D("510.00"), reason="down")
    assert down.status == "new", down
    assert await open_limit(world.broker, down.client_order_id) == D("510.00")
    up = await world.ex.replace(down.client_order_id, limit_price=D("520.00"), reason="up")
    assert up.status == "refused", up
    assert needs_and_free(up.reason) == (D(47_840), D(291), D(52_291))
    assert await open_limit(world.broker, down.client_order_id) == D("510.00")


@pytest.mark.asyncio
async def test_a_replace_the_venue_rejected_takes_the_new_price_when_tried_again(
    tmp_path: Path,
) -> None:
    """A replacement the venue rejected, tried again, journals the price and spend it now asks.

    By hand: cash 50,000. A buy of 92 SPY at 500 (under the 530.10 ask: it rests) spends
    46,000. Raised to 545 it would spend 50,140: no other owner holds cash, so the journal lets
    it go, but the venue's buying power (50,000) does not cover it: rejected, and the order
    keeps working at 500. Raised again to 510 (46,920) it goes under the same ``-r1`` id, and
    the ``-r1`` row holds limit 510 and spend 46,920, not the rejected 545 and 50,140.
    """
    w = World(tmp_path / "j.sqlite", cash="50000")
    try:
        owner = Owner("equity", "dip", "rejected-walk")
        req = OrderRequest.equity("SPY", 92, "buy", "limit", "500.00", owner=owner)
        assert (await w.ex.place(Decision(req, {}))).status == "new"
        r1 = owner.client_order_id + "-r1"
        with pytest.raises(InsufficientBuyingPower):
            await w.ex.replace(owner.client_order_id, limit_price=D("545.00"), reason="up")
        assert raw(w.path, "SELECT status FROM orders WHERE client_order_id = ?", r1) == [
            ("rejected",)
        ]
        assert await open_limit(w.broker, owner.client_order_id) == D("500.00")

        again = await w.ex.replace(owner.client_order_id, limit_price=D("510.00"), reason="up")
        assert (again.status, again.client_order_id) == ("new", r1), again
        assert await open_limit(w.broker, r1) == D("510.00")
        ((status, request, spend),) = raw(
            w.path, "SELECT status, request, spend_amount FROM orders WHERE client_order_id = ?", r1
        )
        assert status == "new"
        assert json.loads(request)["limit_price"] == "510.00"
        assert D(spend) == D(46_920)
        assert cash_spent_by_open_orders(w.path) == D(46_920)
    finally:
        w.ex.journal.close()
        w.journal.close()


def replace_failing_once(world: World, reached: bool) -> list[str]:
    """Make the venue's next replace raise BrokerUnavailable, having taken it or not.

    Returns the venue ids each call to ``broker.replace`` names, in order.
    """
    real = world.broker.replace
    calls: list[str] = []

    async def failing_once(order_id: str, **kw: Any) -> Order:
        calls.append(order_id)
        if len(calls) > 1:
            return await real(order_id, **kw)
        if reached:
            await real(order_id, **kw)
        raise BrokerUnavailable("read timed out")

    world.broker.replace = failing_once  # type: ignore[method-assign]
    return calls


def replacement_row(path: Path, cid: str) -> tuple[str, str, D]:
    """Return (status, limit price, spend) of ``cid``'s journal row, read with plain sqlite3."""
    ((status, request, spend),) = raw(
        path, "SELECT status, request, spend_amount FROM orders WHERE client_order_id = ?", cid
    )
    return status, json.loads(request)["limit_price"], D(spend)


@pytest.mark.asyncio
async def test_a_replace_retried_after_an_unknown_outcome_the_venue_lost_asks_the_new_price(
    world: World,
) -> None:
    """A replace whose first try timed out before reaching the venue goes at the retry's price.

    By hand: 92 SPY bought at 500 (under the 530.10 ask: it rests). Raised to 520 the request
    times out and the venue holds no ``-r1``: the order still rests at 500. Tried again at 510,
    the look-up finds no ``-r1``, so ``-r1`` goes at 510 and its row holds limit 510 and spend
    92 x 510 = 46,920, not the 520 and 47,840 that never reached the venue.
    """
    owner = Owner("equity", "dip", "lost-walk")
    req = OrderRequest.equity("SPY", 92, "buy", "limit", "500.00", owner=owner)
    assert (await world.ex.place(Decision(req, {}))).status == "new"
    r1 = owner.client_order_id + "-r1"
    replace_failing_once(world, reached=False)
    with pytest.raises(BrokerUnavailable):
        await world.ex.replace(owner.client_order_id, limit_price=D("520.00"), reason="up")
    assert replacement_row(world.path, r1) == ("unknown", "520.00", D(47_840))
    assert await open_limit(world.broker, owner.client_order_id) == D("500.00")

    again = await world.ex.replace(owner.client_order_id, limit_price=D("510.00"), reason="up")
    assert (again.status, again.client_order_id) == ("new", r1), again
    assert await open_limit(world.broker, r1) == D("510.00")
    assert replacement_row(world.path, r1) == ("new", "510.00", D(46_920))
    assert cash_spent_by_open_orders(world.path) == D(46_920)


@pytest.mark.asyncio
async def test_a_replace_retried_after_an_unknown_outcome_the_venue_took_is_followed(
    world: World,
) -> None:
    """A replace whose first try timed out after the venue took it is not sent again.

    By hand: 92 SPY bought at 500 rests; raised to 520 the venue replaces it but the answer
    times out. Tried again at 510, the look-up finds ``-r1`` live at 520: the executor follows
    it (no second replace at the venue, no ``-r2``), the old order is journaled ``replaced``
    and ``-r1`` holds limit 520 and spend 92 x 520 = 47,840, as the venue holds it.
    """
    owner = Owner("equity", "dip", "taken-walk")
    req = OrderRequest.equity("SPY", 92, "buy", "limit", "500.00", owner=owner)
    assert (await world.ex.place(Decision(req, {}))).status == "new"
    r1 = owner.client_order_id + "-r1"
    calls = replace_failing_once(world, reached=True)
    with pytest.raises(BrokerUnavailable):
        await world.ex.replace(owner.client_order_id, limit_price=D("520.00"), reason="up")

    again = await world.ex.replace(owner.client_order_id, limit_price=D("510.00"), reason="up")
    assert (again.status, again.client_order_id) == ("new", r1), again
    assert len(calls) == 1, calls
    venue = sorted((o.client_order_id, o.status.value) for o in await world.broker.orders("all"))
    assert venue == [(owner.client_order_id, "replaced"), (r1, "new")]
    assert await open_limit(world.broker, r1) == D("520.00")
    ((old,),) = raw(
        world.path, "SELECT status FROM orders WHERE client_order_id = ?", owner.client_order_id
    )
    assert old == "replaced"
    assert replacement_row(world.path, r1) == ("new", "520.00", D(47_840))
    assert cash_spent_by_open_orders(world.path) == D(47_840)


C530 = "SPY240607C00530000"


@pytest.mark.asyncio
async def test_single_option_and_multileg_decisions_fill_and_journal_their_legs(
    world: World,
) -> None:
    """Single-option and multi-leg decisions fill and journal every leg.

    A long call at the 4.00 ask, then a 530/540 call debit spread: net debit = 4.00 (buy
    530 at the ask) - 0.95 (sell 540 at the bid) = 3.05 per unit, limit 3.10 (marketable).
    """
    from v28quant.broker import Leg

    world.quotes.set(C530, "3.90", "4.00")
    single = OrderRequest.option(
        C530, 1, "buy", "buy_to_open", "4.00", owner=Owner("options", "long", "c1")
    )
    out = await world.ex.place(Decision(single, {"iv_rank": 0.2}))
    assert out.status == "filled"
    assert [(f.symbol, f.qty, f.price) for f in out.fills] == [(C530, D(1), D("4.00"))]
    legs = [Leg(C530, 1, "buy", "buy_to_open"), Leg(C540, 1, "sell", "sell_to_open")]
    spread = OrderRequest.multileg(legs, 2, "3.10", owner=Owner("options", "vertical", "v1"))
    res = await world.ex.place(Decision(spread, {"width": 10}))
    assert res.status == "filled", res
    assert sorted((f.symbol, f.side, f.qty, f.price) for f in res.fills) == [
        (C530, "buy", D(2), D("4.00")),
        (C540, "sell", D(2), D("0.95")),
    ]
    assert world.journal.last_positions() == {C530: D(3), C540: D(-2)}
    row = world.journal.order_by_client_id(spread.client_order_id)
    assert row is not None
    assert row["spend_kind"] == "cash"
    assert row["spend_amount"] == D(2) * 100 * D("3.10")  # units x contract size x net debit


@pytest.mark.asyncio
async def test_closing_the_covered_call_frees_its_shares(world: World) -> None:
    """Once the call is bought back (at the 1.00 ask), ``sync`` releases the 100 shares."""
    await world.ex.place(buy("SPY", 100, "stock"))
    await world.ex.place(covered_call("cc-close"))
    assert len(world.journal.reservations()) == 1
    owner = Owner("options", "covered", "cc-close-exit")
    close = OrderRequest.option(C540, 1, "buy", "buy_to_close", "1.00", owner=owner)
    assert (await world.ex.place(Decision(close, {}))).status == "filled"
    await world.ex.sync()
    assert world.journal.reservations() == []
    (gone,) = world.journal.reservations(active=False)
    assert gone["release_reason"] == f"position {C540} closed"
    assert (await world.ex.place(sell_spy(100, "after"))).status == "filled"


@pytest.mark.asyncio
async def test_reconcile_waits_for_a_busy_journal_off_the_loop(world: World) -> None:
    """Reconcile, too, waits for a locked journal on a worker thread (the ticker runs)."""
    from v28quant.reconcile import reconcile

    blocker = sqlite3.connect(world.path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while ticks < 20:
            ticks += 1
            await asyncio.sleep(0.01)
        blocker.execute("COMMIT")

    report, _ = await asyncio.gather(reconcile(world.journal, world.broker, world.clock), ticker())
    assert ticks == 20
    assert report.ok, report.reason
    blocker.close()
