"""The options engine's resting orders against the loopback Alpaca fake (real alpaca-py).

A roll is one ``mleg`` order whose net limit is signed (debit > 0, credit < 0) even when it
opens a single new leg, so walking it down the ladder must keep the sign, and its fill price is
that net, not the new leg's price. An opening order that ends (expired at the close,
cancelled) after a partial fill leaves contracts at the broker: the book must hold them, or no
exit rule ever manages them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.discord import FakeDiscord
from fakes.fixtures import fake_broker
from fakes.options_world import Ctx, RecordingNotifier, Threshold
from v28quant.broker.base import Owner
from v28quant.clock import SimClock
from v28quant.execution import Decision, Executor, Reservation
from v28quant.journal import Journal
from v28quant.journal.reservations import Claim
from v28quant.notify import DiscordNotifier
from v28quant.options.context import OptionsCycle
from v28quant.options.decisions import gate_check
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Book, Held, Pending
from v28quant.options.strategies import order_for
from v28quant.premarket import PremarketReadTimeout, in_limit
from v28quant.risk import HALT, BookGreeks, GreekBudget, OptionsRisk, RiskGate, record_control
from v28quant.settings import RiskLimits

ET = ZoneInfo("America/New_York")
NOW = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
KEY, SECRET = "PKTESTKEY", "test-secret-value"
OLD_PUT = "SPY230929P00440000"
NEW_PUT = "SPY231020P00435000"
EXPIRY_OLD, EXPIRY_NEW = date(2023, 9, 29), date(2023, 10, 20)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, Ctx]]:
    """Yield the trading fake at 2023-09-14 15:30 New York and an options context on it."""
    trading = FakeAlpacaTrading(now=NOW).start()
    trading.set_quote("SPY", "450.80", "450.82")
    broker = fake_broker(trading.url, KEY, SECRET)
    clock = SimClock(NOW)
    journal = Journal(tmp_path / "journal.sqlite")
    executor = Executor(broker, journal, clock=clock)
    ctx = Ctx(
        "paper",
        clock,
        broker,
        None,
        journal,
        executor,
        None,
        RecordingNotifier(),
        ("SPY",),
        Threshold(0.0),
    )
    try:
        yield trading, ctx
    finally:
        journal.close()
        trading.stop()


async def _send(ctx: Ctx, legs: list[tuple[str, int]], limit: str, decision: str, opening: object):
    req = order_for(
        legs,
        1 if len(legs) > 1 else 2,
        Decimal(limit),
        Owner("options", "cash_secured_put", decision),
        opening=opening,  # type: ignore[arg-type]
        scheme="all_penny",
    )
    out = await ctx.executor.place(Decision(req, {"rule": "test"}))
    assert out.order is not None, out
    return out


@pytest.mark.asyncio
async def test_walking_a_single_leg_roll_keeps_its_credit_limit(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """Roll a short put for a credit: buy back 440P at 1.10, sell 435P at 1.30.

    By hand: mid net 1.05 - 1.35 = -0.30 (a 0.30 credit), natural 1.10 - 1.30 = -0.20. Ladder
    -0.30, -0.25, -0.20; the order rests at -0.30 and one walk asks a -0.25 credit. A +0.25
    (paying 0.25 for a roll that pays 0.20) would fill at once, at the natural. Filled, the new
    leg's entry is its own fill price (1.36), not the roll's net (-0.26).
    """
    trading, ctx = world
    trading.positions[OLD_PUT] = [Decimal(-1), Decimal("2.00")]
    trading.set_quote(OLD_PUT, "1.00", "1.10")
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    book = Book()
    book.held["csp-1"] = Held(
        "csp-1", "cash_secured_put", "SPY", EXPIRY_OLD, {OLD_PUT: -1}, 1, -2.0, 0.0, NOW,
        "v28-options-cash_secured_put-x",
    )  # fmt: skip
    out = await _send(ctx, [(OLD_PUT, 1), (NEW_PUT, -1)], "-0.30", "roll:csp-1", [False, True])
    assert trading.orders[out.order.id]["status"] == "new"  # -0.20 is worse than -0.30
    p = Pending(
        out.client_order_id, "roll", "csp-1-r1", "SPY", "cash_secured_put", {NEW_PUT: -1},
        EXPIRY_NEW, 0.0, ["-0.30", "-0.25", "-0.20"], 0, NOW, old_id="csp-1",
    )  # fmt: skip
    book.pending[p.client_order_id] = p
    eng = OptionsEngine()
    try:
        await eng._walk(ctx, book, p, None, OptionsCycle("options", NOW), Decimal("-0.30"))
        (patch,) = [body for m, path, body in trading.requests if m == "PATCH"]
        assert Decimal(str(patch["limit_price"])) == Decimal("-0.25")
        assert trading.positions.get(NEW_PUT) is None  # still resting: nothing sold
        # the 435P bid rises to 1.36: the roll fills at 1.10 - 1.36 = -0.26 (legs 1.10, 1.36)
        trading.set_quote(NEW_PUT, "1.36", "1.40")
        trading.process()
        await eng._pending(ctx, book, {}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    (h,) = book.held.values()
    assert (h.legs, h.units) == ({NEW_PUT: -1}, 1)
    assert h.leg_entry == {NEW_PUT: pytest.approx(1.36)}
    assert h.entry_net == pytest.approx(-1.36)


@pytest.mark.asyncio
async def test_an_opening_order_that_expires_part_filled_is_held(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """Sell 2 puts to open at 1.30 with 1 bid at the quote: 1 fills, 1 expires at the close.

    The broker then holds -1 435P; the book must hold one unit of the structure.
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40", bid_size=1)
    out = await _send(ctx, [(NEW_PUT, -1)], "-1.30", "open:csp-2", True)
    assert trading.orders[out.order.id]["status"] == "partially_filled"
    trading.advance_to(datetime(2023, 9, 14, 16, 5, tzinfo=ET))  # the day order expires
    book = Book()
    book.pending[out.client_order_id] = Pending(
        out.client_order_id, "open", "csp-2", "SPY", "cash_secured_put", {NEW_PUT: -1},
        EXPIRY_NEW, 0.0, ["-1.35", "-1.30"], 1, NOW,
    )  # fmt: skip
    eng = OptionsEngine()
    try:
        await eng._pending(ctx, book, {}, OptionsCycle("options", NOW))
        await eng._reconcile(ctx, book)
    finally:
        await ctx.broker.aclose()
    assert trading.positions[NEW_PUT][0] == -1
    assert not book.pending
    (h,) = book.held.values()
    assert (h.legs, h.units) == ({NEW_PUT: -1}, 1)
    assert h.entry_net == pytest.approx(-1.30)
    fills = [(f["symbol"], f["side"], Decimal(str(f["qty"]))) for f in ctx.journal.fills()]
    assert fills == [(NEW_PUT, "sell", Decimal(1))]  # journaled once


@pytest.mark.asyncio
async def test_a_halt_stops_walking_an_opening_order(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """After ``v28quant halt``, a resting opening order is not walked towards the natural.

    A replace is a new order at Alpaca (the old one is cancelled, one at a better price for the
    market is sent): the kill switch lets no new order out.
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    out = await _send(ctx, [(NEW_PUT, -1)], "-1.35", "open:csp-3", True)
    assert trading.orders[out.order.id]["status"] == "new"  # asks 1.35, the bid is 1.30
    record_control(ctx.journal, HALT, "news", "cli", NOW)
    book = Book()
    p = Pending(
        out.client_order_id, "open", "csp-3", "SPY", "cash_secured_put", {NEW_PUT: -1},
        EXPIRY_NEW, 0.0, ["-1.35", "-1.30"], 0, NOW,
    )  # fmt: skip
    book.pending[p.client_order_id] = p
    eng = OptionsEngine()
    try:
        await eng._pending(ctx, book, {}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    assert [r for r in trading.requests if r[0] == "PATCH"] == []
    assert trading.orders[out.order.id]["limit_price"] == "1.35"
    assert list(book.pending) == [out.client_order_id]


@pytest.mark.asyncio
async def test_a_walk_that_needs_more_cash_than_is_free_rests_where_it_was(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A walk whose higher debit is refused leaves the order resting and the book naming it.

    By hand: cash 100,000, of which the equity engine holds 99,900: 100 is free. A long put
    bought at 0.90 (under the 1.30 bid: it rests) spends 90; the walk to 1.35 would spend 135.
    It is refused: nothing goes to Alpaca, the order rests at 0.90 on rung 0, and the book
    still names it, so the next cycle walks it again.
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    ctx.journal.hold_reservation("equity", "dip", "cash", Claim("cash", None, Decimal(99_900)), NOW)
    req = order_for(
        [(NEW_PUT, 1)], 1, Decimal("0.90"), Owner("options", "long_put", "open:lp-1"),
        opening=True, scheme="all_penny",
    )  # fmt: skip
    out = await ctx.executor.place(Decision(req, {"rule": "test"}))
    assert out.status == "new", out
    book = Book()
    p = Pending(
        out.client_order_id, "open", "lp-1", "SPY", "long_put", {NEW_PUT: 1},
        EXPIRY_NEW, 90.0, ["0.90", "1.35"], 0, NOW,
    )  # fmt: skip
    book.pending[p.client_order_id] = p
    report = OptionsCycle("options", NOW)
    try:
        await OptionsEngine()._walk(ctx, book, p, None, report, Decimal("0.90"))
    finally:
        await ctx.broker.aclose()
    assert [r for r in trading.requests if r[0] == "PATCH"] == []
    assert trading.orders[out.order.id]["status"] == "new"
    assert trading.orders[out.order.id]["limit_price"] == "0.9"
    assert list(book.pending) == [out.client_order_id]
    assert (p.rung, p.waited, report.orders) == (0, 0, 0)
    row = ctx.journal.order_by_client_id(out.client_order_id + "-r1")
    assert row is not None
    assert row["status"] == "refused"
    assert "needs 135" in row["reason"], row["reason"]


@pytest.mark.asyncio
async def test_a_walk_refused_every_cycle_is_notified_once(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A resting order whose walk is refused for cash each cycle makes one Discord notice.

    As above: 100 free, the walk from 0.90 to 1.35 needs 135, so it is refused in each of
    three cycles and the order rests on rung 0. The loopback Discord receives one notice,
    naming the replacement; the journal holds all three refusals, each with its reason.
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    ctx.journal.hold_reservation("equity", "dip", "cash", Claim("cash", None, Decimal(99_900)), NOW)
    req = order_for(
        [(NEW_PUT, 1)], 1, Decimal("0.90"), Owner("options", "long_put", "open:lp-2"),
        opening=True, scheme="all_penny",
    )  # fmt: skip
    with FakeDiscord() as discord:
        notifier = DiscordNotifier(discord.webhook_url, min_interval=0.0)
        executor = Executor(ctx.broker, ctx.journal, notifier=notifier, clock=ctx.clock)
        out = await executor.place(Decision(req, {"rule": "test"}))
        assert out.status == "new", out
        book = Book()
        p = Pending(
            out.client_order_id, "open", "lp-2", "SPY", "long_put", {NEW_PUT: 1},
            EXPIRY_NEW, 90.0, ["0.90", "1.35"], 0, NOW,
        )  # fmt: skip
        book.pending[p.client_order_id] = p
        walking = replace(ctx, executor=executor)
        try:
            for minutes in (0, 5, 10):
                ctx.clock.set(NOW + timedelta(minutes=minutes))
                cycle = OptionsCycle("options", NOW)
                await OptionsEngine()._walk(walking, book, p, None, cycle, Decimal("0.90"))
                assert (list(book.pending), p.rung) == ([out.client_order_id], 0)
        finally:
            await notifier.aclose()
            await ctx.broker.aclose()
        received = [m["content"] for m in discord.received]
    r1 = out.client_order_id + "-r1"
    assert len(received) == 1, received
    assert f"replacement {r1} of {out.client_order_id} refused" in received[0], received
    refusals = [e for e in ctx.journal.order_events(r1) if e["status"] == "refused"]
    assert len(refusals) == 3, refusals
    assert all("needs 135" in e["raw"]["reason"] for e in refusals), refusals


@pytest.mark.asyncio
async def test_a_walk_the_venue_rejects_rests_where_it_was_and_the_next_order_walks(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """Alpaca rejects one resting order's walk (403): it rests, and the next order walks.

    Two puts sold to open at 1.35 (bid 1.30: both rest), each on the ladder -1.35, -1.33.
    Alpaca answers the first's PATCH 403 insufficient buying power in each of two cycles. The
    first order keeps resting at 1.35 and the book file names it on rung 0; the second's walk
    is sent in the same cycle (the fake's PATCHes) and the book names its replacement. The
    rejection is journaled each time and notified once.
    """
    trading, ctx = world
    path = tmp_path / "book.json"
    first, second, book = await _two_resting_puts(trading, ctx, path)
    trading.inject(
        "PATCH", f"/v2/orders/{first.order.id}", 403,
        {"code": 40310000, "message": "insufficient buying power"}, times=2,
    )  # fmt: skip
    walking = replace(ctx, executor=Executor(ctx.broker, ctx.journal, notifier=ctx.notifier))
    eng = OptionsEngine()
    try:
        for _ in range(2):
            await eng._pending(walking, book, {}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    patches = [url for method, url, _ in trading.requests if method == "PATCH"]
    a, b = (f"/v2/orders/{out.order.id}" for out in (first, second))
    assert patches == [a, b, a]  # the second rests at its ladder's end in the second cycle
    assert (
        trading.orders[first.order.id]["status"],
        trading.orders[first.order.id]["limit_price"],
    ) == ("new", "1.35")
    saved = json.loads(path.read_text(encoding="utf-8"))["pending"]
    walked = second.client_order_id + "-r1"
    assert sorted(saved) == sorted([first.client_order_id, walked])
    rest = saved[first.client_order_id]
    assert (rest["ladder"][rest["rung"]], rest["waited"]) == ("-1.35", 0)
    assert saved[walked]["ladder"][saved[walked]["rung"]] == "-1.33"
    r1 = first.client_order_id + "-r1"
    rejections = [e for e in ctx.journal.order_events(r1) if e["status"] == "rejected"]
    assert len(rejections) == 2, rejections
    assert all("insufficient buying power" in e["raw"]["reason"] for e in rejections), rejections
    errors = [n for n in ctx.notifier.notices if n.startswith("ERROR")]
    assert len(errors) == 1, errors
    assert f"replacement {r1} of {first.client_order_id} rejected" in errors[0], errors


@pytest.mark.asyncio
async def test_a_walk_the_book_did_not_save_is_followed_to_its_replacement(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """The book still names the order a walk replaced (the process died before saving).

    Sell 2 puts to open at 1.35 (bid 1.30: resting), replaced at 1.30: filled. The old order
    reads ``replaced``, which is no reason to drop the structure: its replacement filled, and
    the broker holds -2 435P that the book must hold.
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    out = await _send(ctx, [(NEW_PUT, -1)], "-1.35", "open:csp-4", True)
    book = Book()
    book.pending[out.client_order_id] = Pending(
        out.client_order_id, "open", "csp-4", "SPY", "cash_secured_put", {NEW_PUT: -1},
        EXPIRY_NEW, 0.0, ["-1.35", "-1.30"], 0, NOW,
    )  # fmt: skip
    eng = OptionsEngine()
    try:
        new = await ctx.executor.replace(
            out.client_order_id, reason="walk", limit_price=Decimal("1.30")
        )
        assert new.status == "filled"
        await eng._pending(ctx, book, {}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    assert trading.positions[NEW_PUT][0] == -2
    assert not book.pending
    (h,) = book.held.values()
    assert (h.legs, h.units, h.client_order_id) == ({NEW_PUT: -1}, 2, new.client_order_id)


@pytest.mark.asyncio
async def test_an_order_that_never_reached_alpaca_does_not_stop_the_engine(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """Every POST answered 503 and no order found by look-up: the outcome is unknown.

    The venue never had the order. Looking it up each cycle must not raise ("the venue has no
    order") for ever: that ended every later options cycle before its exits and stops ran.
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    trading.inject("POST", "/v2/orders", 503, {"message": "service unavailable"}, times=3)
    req = order_for(
        [(NEW_PUT, -1)],
        1,
        Decimal("-1.35"),
        Owner("options", "cash_secured_put", "open:csp-5"),
        opening=True,
        scheme="all_penny",
    )
    out = await ctx.executor.place(Decision(req, {"rule": "test"}))
    assert out.status == "unknown"
    book = Book()
    book.pending[out.client_order_id] = Pending(
        out.client_order_id, "open", "csp-5", "SPY", "cash_secured_put", {NEW_PUT: -1},
        EXPIRY_NEW, 0.0, ["-1.35", "-1.30"], 0, NOW,
    )  # fmt: skip
    try:
        await OptionsEngine()._pending(ctx, book, {}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    assert trading.orders == {}
    assert not book.pending


@pytest.mark.asyncio
async def test_a_walk_keeps_the_reservation_of_the_order_it_replaces(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A resting cash-secured put's $43,500 collateral follows the order to its replacement."""
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    req = order_for(
        [(NEW_PUT, -1)],
        1,
        Decimal("-1.35"),
        Owner("options", "cash_secured_put", "open:csp-6"),
        opening=True,
        scheme="all_penny",
    )
    reserve = Reservation(req.owner, "cash", None, Decimal(43_500))
    out = await ctx.executor.place(Decision(req, {"rule": "test"}, reserve))
    assert out.status == "new"
    try:
        new = await ctx.executor.replace(
            out.client_order_id, reason="walk", limit_price=Decimal("1.34")
        )
    finally:
        await ctx.broker.aclose()
    assert new.status == "new"
    held = [(r["client_order_id"], r["amount"]) for r in ctx.journal.reservations()]
    assert held == [(new.client_order_id, Decimal(43_500))]


@pytest.mark.asyncio
async def test_a_roll_that_expires_part_filled_holds_both_sides(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """Roll 2 short 440P into 2 short 435P; one unit fills (1 bid on the 435P), one expires.

    The broker then holds -1 440P and -1 435P: the book must hold one unit of each structure.
    """
    trading, ctx = world
    trading.cash = Decimal(300_000)  # the fake holds both puts' collateral while rolling
    trading.positions[OLD_PUT] = [Decimal(-2), Decimal("2.00")]
    trading.set_quote(OLD_PUT, "1.00", "1.10", 100, 100)
    trading.set_quote(NEW_PUT, "1.30", "1.40", 1, 100)
    book = Book()
    book.held["csp-7"] = Held(
        "csp-7", "cash_secured_put", "SPY", EXPIRY_OLD, {OLD_PUT: -1}, 2, -2.0, 0.0, NOW,
        "v28-options-cash_secured_put-y",
    )  # fmt: skip
    req = order_for(
        [(OLD_PUT, 1), (NEW_PUT, -1)],
        2,
        Decimal("-0.20"),
        Owner("options", "cash_secured_put", "roll:csp-7"),
        opening=[False, True],
        scheme="all_penny",
    )
    out = await ctx.executor.place(Decision(req, {"rule": "test"}))
    assert out.status == "partially_filled"
    trading.advance_to(datetime(2023, 9, 14, 16, 5, tzinfo=ET))  # the rest expires
    book.pending[out.client_order_id] = Pending(
        out.client_order_id, "roll", "csp-7-r1", "SPY", "cash_secured_put", {NEW_PUT: -1},
        EXPIRY_NEW, 0.0, ["-0.30", "-0.20"], 1, NOW, old_id="csp-7",
    )  # fmt: skip
    eng = OptionsEngine()
    try:
        await eng._pending(ctx, book, {}, OptionsCycle("options", NOW))
        await eng._reconcile(ctx, book)
    finally:
        await ctx.broker.aclose()
    assert (trading.positions[OLD_PUT][0], trading.positions[NEW_PUT][0]) == (-1, -1)
    held = {h.structure_id: (h.legs, h.units) for h in book.held.values()}
    assert held == {"csp-7": ({OLD_PUT: -1}, 1), "csp-7-r1": ({NEW_PUT: -1}, 1)}


@pytest.mark.asyncio
async def test_orders_per_cycle_counts_every_order_of_the_cycle(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """``max_orders_per_cycle = 1``: the second order of one cycle is denied.

    On Alpaca the runner's clock is the venue's, moving on between two checks of one cycle;
    counting by the check's time gave every order a cycle of its own.
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    gate = RiskGate(RiskLimits.model_validate({"max_orders_per_cycle": 1}), ctx.journal)
    eng = SimpleNamespace(gate=lambda _ctx: gate)
    none = BookGreeks(0.0, 0.0, 0.0, 0.0)
    exposure = OptionsRisk(none, none, GreekBudget(1e9, 1e9, 1e9, 1e9))
    verdicts = []
    try:
        for i in range(2):
            ctx.clock.set(NOW + timedelta(seconds=3 * i))  # the venue's time moves on
            req = order_for(
                [(NEW_PUT, -1)],
                1,
                Decimal("-1.35"),
                Owner("options", "cash_secured_put", f"open:csp-8-{i}"),
                opening=True,
                scheme="all_penny",
            )
            v = await gate_check(eng, ctx, req, Decimal("1.35"), exposure, cycle=NOW)  # type: ignore[arg-type]
            verdicts.append((v.allowed, v.check))
    finally:
        await ctx.broker.aclose()
    assert verdicts == [(True, None), (False, "orders_per_cycle")]


@pytest.mark.asyncio
async def test_a_walk_whose_outcome_is_unknown_leaves_the_other_orders_walking(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """Alpaca answers one resting order's walk 503: the next order still walks that cycle.

    Two puts sold to open at 1.35 (bid 1.30: both rest), each on the ladder -1.35, -1.33. The
    first's PATCH is answered 503 at each of the adapter's three tries. That cycle the second
    is walked all the same, and the first rests on rung 0 in the book; the next cycle looks
    its ``-r1`` up (the venue has none) and walks it. The error is notified.
    """
    trading, ctx = world
    path = tmp_path / "book.json"
    first, second, book = await _two_resting_puts(trading, ctx, path)
    trading.inject(
        "PATCH", f"/v2/orders/{first.order.id}", 503, {"message": "service unavailable"}, times=3
    )  # every attempt of the adapter's retries
    walking = replace(ctx, executor=Executor(ctx.broker, ctx.journal, notifier=ctx.notifier))
    eng = OptionsEngine()
    a, b = (f"/v2/orders/{out.order.id}" for out in (first, second))
    try:
        await eng._pending(walking, book, {}, OptionsCycle("options", NOW))
        patched = [url for method, url, _ in trading.requests if method == "PATCH"]
        assert patched[-1] == b, patched
        assert set(patched) == {a, b}, patched
        saved = json.loads(path.read_text(encoding="utf-8"))["pending"]
        rest = saved[first.client_order_id]
        assert rest["ladder"][rest["rung"]] == "-1.35"
        await eng._pending(walking, book, {}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    assert trading.orders[first.order.id]["status"] == "replaced"
    r1 = first.client_order_id + "-r1"
    assert sorted(book.pending) == sorted([r1, second.client_order_id + "-r1"])
    errors = [n for n in ctx.notifier.notices if n.startswith("ERROR")]
    assert any(first.client_order_id in n for n in errors), errors


async def _two_resting_puts(
    trading: FakeAlpacaTrading, ctx: Ctx, path: Path
) -> tuple[Any, Any, Book]:
    """Sell two puts to open at 1.35 (bid 1.30: both rest), in a book saved at ``path``.

    Each rests on the ladder -1.35, -1.33; the fake holds both puts' collateral.
    """
    trading.cash = Decimal(300_000)
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    first = await _send(ctx, [(NEW_PUT, -1)], "-1.35", "open:csp-8", True)
    second = await _send(ctx, [(NEW_PUT, -1)], "-1.35", "open:csp-9", True)
    book = Book(path)
    for out, sid in ((first, "csp-8"), (second, "csp-9")):
        book.pending[out.client_order_id] = Pending(
            out.client_order_id, "open", sid, "SPY", "cash_secured_put", {NEW_PUT: -1},
            EXPIRY_NEW, 0.0, ["-1.35", "-1.33"], 0, NOW,
        )  # fmt: skip
    return first, second, book


WING_PUT = "SPY231020P00430000"


def _quotes(rows: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Return a chain of the given legs' quotes, as the walk reads it (symbol, bid, ask)."""
    return pd.DataFrame(
        [{"symbol": s, "bid": float(b), "ask": float(a)} for s, (b, a) in rows.items()]
    )


async def _resting_bull_put(
    world: tuple[FakeAlpacaTrading, Ctx],
    short: tuple[str, str],
    wing: tuple[str, str],
    key: str,
    worst: str | None = None,
) -> tuple[Any, Book, pd.DataFrame]:
    """Send a bull put at -0.30 (ladder -0.30, -0.25, -0.20, plan max loss 470) on these quotes.

    Return the send's outcome, a book holding it as pending on rung 0, and the chain the walk
    reads; ``worst`` is the rung the gate approved (None: a book written before that bound).
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, *short)
    trading.set_quote(WING_PUT, *wing)
    out = await _send(ctx, [(NEW_PUT, -1), (WING_PUT, 1)], "-0.30", f"open:{key}", True)
    book = Book()
    p = Pending(
        out.client_order_id, "open", key, "SPY", "bull_put", {NEW_PUT: -1, WING_PUT: 1},
        EXPIRY_NEW, 470.0, ["-0.30", "-0.25", "-0.20"], 0, NOW, worst=worst,
    )  # fmt: skip
    book.pending[p.client_order_id] = p
    return out, book, _quotes({NEW_PUT: short, WING_PUT: wing})


@pytest.mark.asyncio
async def test_a_walk_on_moved_quotes_never_resends_the_resting_price(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A bull put rests at -0.30 on rung 0 of -0.30, -0.25, -0.20; then the quotes move.

    By hand, the new quotes: short 435P 1.30 x 1.40 (mid 1.35), wing 430P 0.95 x 1.05 (mid
    1.00): mid net -0.35, natural -1.30 + 1.05 = -0.25, so the fresh ladder is -0.35, -0.30,
    -0.25. Its rung 1 is -0.30, the resting price itself: Alpaca refuses such a replace (422
    "order parameters are not changed"), and the order would sit there every cycle. The walk
    goes on to the first rung asking more than the resting price, -0.25, the natural, which
    fills.
    """
    trading, ctx = world
    out, book, chain = await _resting_bull_put(world, ("1.30", "1.40"), ("0.95", "1.05"), "bp-1")
    assert trading.orders[out.order.id]["status"] == "new"  # the natural -0.25 is worse
    (p,) = book.pending.values()
    try:
        await OptionsEngine()._walk(
            ctx, book, p, chain, OptionsCycle("options", NOW), Decimal("-0.30")
        )
    finally:
        await ctx.broker.aclose()
    patches = [body for m, _, body in trading.requests if m == "PATCH"]
    assert [Decimal(str(b["limit_price"])) for b in patches] == [Decimal("-0.25")]
    assert (trading.positions[NEW_PUT][0], trading.positions[WING_PUT][0]) == (-1, 1)
    assert list(book.pending) == [out.client_order_id + "-r1"]


@pytest.mark.asyncio
async def test_a_structure_walked_past_its_planned_price_holds_the_max_loss_of_its_fill(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A bull put planned at a 0.30 credit (max loss 470 a unit) is walked on moved quotes.

    The quotes move as in the walk above: it fills at the natural, a 0.25 credit, the 435P sold
    at its bid 1.30 and the 430P bought at its ask 1.05. By hand its max loss at expiry is the
    width less the credit: (435 - 430 - 0.25) x 100 = 475 a unit, not the plan's 470; the
    book's defined-risk total (what the gate holds against max_options_fraction) must say so.
    """
    _, ctx = world
    _, book, chain = await _resting_bull_put(world, ("1.30", "1.40"), ("0.95", "1.05"), "bp-3")
    eng = OptionsEngine()
    try:
        for _ in range(2):  # the walk to the natural, then its fill booked
            await eng._pending(ctx, book, {"SPY": chain}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    held = book.held["bp-3"]
    assert held.entry_net == pytest.approx(-0.25)
    assert held.max_loss == pytest.approx(475.0)
    assert book.defined_risk_loss() == pytest.approx(475.0)


@pytest.mark.asyncio
async def test_a_walk_never_asks_more_than_the_risk_gate_approved(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A bull put placed at -0.30 on the ladder -0.30, -0.25, -0.20 the gate approved to -0.20.

    The quotes then move away: short 435P 1.20 x 1.40 (mid 1.30), wing 430P 0.90 x 1.10 (mid
    1.00). By hand: mid -0.30, natural -1.20 + 1.10 = -0.10, so the fresh ladder is -0.30,
    -0.20, -0.10. Its -0.10 is past the approval (a max loss of 490 a unit, not 480): the walk
    goes to -0.20 and no further, the order is cancelled unfilled, and the cycle says why.
    """
    trading, ctx = world
    quotes = (("1.20", "1.40"), ("0.90", "1.10"))
    out, book, chain = await _resting_bull_put(world, *quotes, "bp-4", worst="-0.20")
    eng = OptionsEngine()
    cycles = [OptionsCycle("options", NOW) for _ in range(4)]
    try:
        for cycle in cycles:  # walk to the approval, wait there once, cancel, see it cancelled
            await eng._pending(ctx, book, {"SPY": chain}, cycle)
    finally:
        await ctx.broker.aclose()
    patches = [body for m, _, body in trading.requests if m == "PATCH"]
    assert [Decimal(str(b["limit_price"])) for b in patches] == [Decimal("-0.20")]
    assert NEW_PUT not in trading.positions
    assert sorted(o["status"] for o in trading.orders.values()) == ["canceled", "replaced"]
    assert not book.pending
    assert not book.held
    events = ctx.journal.order_events(out.client_order_id + "-r1")
    assert [e["raw"] for e in events if e["status"] == "cancel_requested"] == [
        {"reason": "not filled at the price the risk gate approved"}
    ]
    assert cycles[0].details["walks_capped"] == {
        out.client_order_id: "natural -0.10 past the -0.20 the risk gate approved"
    }


@pytest.mark.asyncio
async def test_a_credit_spread_is_never_walked_to_a_debit(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A bull put on wide quotes: 435P 0.90 x 1.10, 430P 0.85 x 1.05.

    By hand: mid net -1.00 + 0.95 = -0.05 (a 0.05 credit), natural -0.90 + 1.05 = +0.15 (a
    debit). The walk from the mid would ask 0.01, 0.08, then 0.15, paying to open a spread
    whose most it can make is the credit received: a certain loss. The order rests at its
    0.05 credit, waits a cycle, and is cancelled; Alpaca sees no replace and fills nothing.
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "0.90", "1.10")
    trading.set_quote(WING_PUT, "0.85", "1.05")
    out = await _send(ctx, [(NEW_PUT, -1), (WING_PUT, 1)], "-0.05", "open:bp-2", True)
    book = Book()
    p = Pending(
        out.client_order_id, "open", "bp-2", "SPY", "bull_put", {NEW_PUT: -1, WING_PUT: 1},
        EXPIRY_NEW, 495.0, ["-0.05"], 0, NOW,
    )  # fmt: skip
    book.pending[p.client_order_id] = p
    chain = _quotes({NEW_PUT: ("0.90", "1.10"), WING_PUT: ("0.85", "1.05")})
    eng = OptionsEngine()
    try:
        for _ in range(4):
            await eng._pending(ctx, book, {"SPY": chain}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    assert [body for m, _, body in trading.requests if m == "PATCH"] == []
    assert trading.orders[out.order.id]["status"] == "canceled"
    assert NEW_PUT not in trading.positions
    assert WING_PUT not in trading.positions
    assert not book.pending


@pytest.mark.asyncio
async def test_a_skipping_walk_the_book_did_not_save_is_walked_on_from_the_venues_price(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A walk that skipped a rung reached Alpaca, then the process died before the book's save.

    A bull put rests at -0.30 on the ladder -0.30, -0.25, -0.22, -0.20 (quotes: 435P 1.30 x
    1.40, 430P 1.00 x 1.10; by hand the natural is -1.30 + 1.10 = -0.20). The lost walk went
    to rung 2, -0.22 (on its quotes rung 1 asked no more than the resting price). On restart
    the book finds the replacement but knows only that one walk happened: rung 1, -0.25. The
    next walk must start from the -0.22 Alpaca holds and ask -0.20, which fills; from rung 1
    it would ask -0.22 again, which Alpaca refuses (422 "order parameters are not changed").
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    trading.set_quote(WING_PUT, "1.00", "1.10")
    out = await _send(ctx, [(NEW_PUT, -1), (WING_PUT, 1)], "-0.30", "open:bp-3", True)
    book = Book()
    p = Pending(
        out.client_order_id, "open", "bp-3", "SPY", "bull_put", {NEW_PUT: -1, WING_PUT: 1},
        EXPIRY_NEW, 480.0, ["-0.30", "-0.25", "-0.22", "-0.20"], 0, NOW,
    )  # fmt: skip
    book.pending[p.client_order_id] = p
    try:
        lost = await ctx.executor.replace(
            out.client_order_id, reason="walk", limit_price=Decimal("-0.22")
        )
        assert lost.order is not None, lost
        await OptionsEngine()._pending(ctx, book, {}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    patches = [Decimal(str(body["limit_price"])) for m, _, body in trading.requests if m == "PATCH"]
    assert patches == [Decimal("-0.22"), Decimal("-0.20")]
    assert (trading.positions[NEW_PUT][0], trading.positions[WING_PUT][0]) == (-1, 1)


async def _part_filled_bull_put(
    trading: FakeAlpacaTrading, ctx: Ctx, sid: str, reserve_cash: Decimal | None = None
) -> tuple[Any, Book]:
    """Place a 2-unit bull put at -0.20 whose 430P wing offers 1 contract; run two cycles.

    The order is part filled when placed (checked); returns its outcome and the book after
    the engine's ``_pending`` at ``NOW`` and 5 minutes later.
    """
    trading.set_quote(NEW_PUT, "1.30", "1.40")
    trading.set_quote(WING_PUT, "1.00", "1.10", ask_size=1)
    owner = Owner("options", "bull_put", f"open:{sid}")
    legs = [(NEW_PUT, -1), (WING_PUT, 1)]
    req = order_for(legs, 2, Decimal("-0.20"), owner, opening=True, scheme="all_penny")
    reserve = None if reserve_cash is None else Reservation(owner, "cash", None, reserve_cash)
    out = await ctx.executor.place(Decision(req, {"rule": "test"}, reserve))
    assert trading.orders[out.order.id]["status"] == "partially_filled"
    book = Book()
    book.pending[out.client_order_id] = Pending(
        out.client_order_id, "open", sid, "SPY", "bull_put", {NEW_PUT: -1, WING_PUT: 1},
        EXPIRY_NEW, 480.0, ["-0.20"], 0, NOW,
    )  # fmt: skip
    eng = OptionsEngine()
    try:
        for minutes in (0, 5):
            ctx.clock.set(NOW + timedelta(minutes=minutes))
            await eng._pending(ctx, book, {}, OptionsCycle("options", ctx.clock.now()))
    finally:
        await ctx.broker.aclose()
    return out, book


@pytest.mark.asyncio
async def test_units_filled_on_an_opening_order_still_working_are_booked_a_cycle_later(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A bull put of 2 units at -0.20 where the 430P wing offers 1 contract: 1 unit fills.

    The rest keeps working. Until it ends (at the close, for a day order) the filled unit is
    at the broker but in no structure of the book: no stop, no take profit, no expiry-day
    close. The cycle that first sees the part fill announces it; by the next, with no more
    filled, the rest is cancelled and the book holds the 1 unit Alpaca holds, at its fill
    price (by hand: -1.30 + 1.10 = -0.20).
    """
    trading, ctx = world
    out, book = await _part_filled_bull_put(trading, ctx, "bp-4")
    assert trading.orders[out.order.id]["status"] == "canceled"
    assert (trading.positions[NEW_PUT][0], trading.positions[WING_PUT][0]) == (-1, 1)
    assert not book.pending
    (h,) = book.held.values()
    assert (h.structure_id, h.legs, h.units) == ("bp-4", {NEW_PUT: -1, WING_PUT: 1}, 1)
    assert h.entry_net == pytest.approx(-0.20)


@pytest.mark.asyncio
async def test_an_opening_order_ended_part_filled_reserves_only_the_units_filled(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """The bull put above, 2 units of $480 collateral reserved ($960); 1 unit fills.

    By hand: once the rest is cancelled the account holds 1 spread, whose collateral is $480;
    the other $480 must be free for the next order, not held until this spread closes.
    """
    trading, ctx = world
    out, book = await _part_filled_bull_put(trading, ctx, "bp-5", reserve_cash=Decimal(960))
    assert trading.orders[out.order.id]["status"] == "canceled"
    (h,) = book.held.values()
    assert h.units == 1
    db = sqlite3.connect(str(ctx.journal.path))
    try:
        active = db.execute(
            "SELECT client_order_id, kind, amount FROM reservations WHERE released_ts IS NULL"
        ).fetchall()
    finally:
        db.close()
    assert [(cid, kind, Decimal(amount)) for cid, kind, amount in active] == [
        (h.client_order_id, "cash", Decimal(480))
    ]


@pytest.mark.asyncio
async def test_a_cash_secured_put_rolled_for_a_debit_keeps_the_new_puts_collateral(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """Roll the short 440P into the 435P paying 0.30: 43,500 stays reserved behind the 435P.

    By hand: buy back the 440P at its 1.10 ask, sell the 435P at its 0.80 bid: a 0.30 debit,
    paid in cash at the fill. The 435P written is still a put sold: its strike x 100 is
    collateral until it is gone, however the roll was paid.
    """
    trading, ctx = world
    trading.set_quote(OLD_PUT, "1.95", "2.00")
    owner = Owner("options", "cash_secured_put", "csp-9")
    sell = order_for([(OLD_PUT, -1)], 1, Decimal("-1.95"), owner, opening=True, scheme="all_penny")
    opened = await ctx.executor.place(
        Decision(sell, {"rule": "test"}, Reservation(owner, "cash", None, Decimal(44_000)))
    )
    assert opened.status == "filled", opened
    trading.set_quote(OLD_PUT, "1.00", "1.10")
    trading.set_quote(NEW_PUT, "0.80", "0.90")
    book = Book()
    book.held["csp-9"] = Held(
        "csp-9", "cash_secured_put", "SPY", EXPIRY_OLD, {OLD_PUT: -1}, 1, -1.95, 0.0, NOW,
        opened.client_order_id,
    )  # fmt: skip
    rowner = Owner("options", "cash_secured_put", "roll:csp-9")
    req = order_for(
        [(OLD_PUT, 1), (NEW_PUT, -1)], 1, Decimal("0.30"), rowner, opening=[False, True],
        scheme="all_penny",
    )  # fmt: skip
    out = await ctx.executor.place(
        Decision(req, {"rule": "test"}, Reservation(rowner, "cash", None, Decimal(43_500)))
    )
    assert out.status == "filled", out
    book.pending[out.client_order_id] = Pending(
        out.client_order_id, "roll", "csp-9-r1", "SPY", "cash_secured_put", {NEW_PUT: -1},
        EXPIRY_NEW, 0.0, ["0.30"], 0, NOW, old_id="csp-9",
    )  # fmt: skip
    try:
        await OptionsEngine()._pending(ctx, book, {}, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
    assert [h.legs for h in book.held.values()] == [{NEW_PUT: -1}]
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    held = db.execute(
        "SELECT client_order_id, amount FROM reservations WHERE released_ts IS NULL"
    ).fetchall()
    assert held == [(out.client_order_id, "43500")]


NEAR_PUT = "SPY231020P00442000"  # a roll's nearby strike: its collateral is $200 more


async def _put_rolling_on_its_own_collateral(
    trading: FakeAlpacaTrading, ctx: Ctx, fake_cash: Decimal
) -> tuple[str, Decimal, Decimal, Any, Reservation]:
    """Two short 440P sold on their $88,000 collateral; a roll of both into the 442P drafted.

    The equity engine reserves all of the journal's cash but $500: with the 440Ps' own
    collateral that is just enough for the 442Ps' $88,400 (the roll adds $400, for a credit).
    Returns the 440Ps' order id, the cash the equity engine holds, the free cash beside it,
    the roll's request and its reservation (taking over the 440Ps').
    """
    trading.cash = fake_cash
    trading.set_quote(OLD_PUT, "1.95", "2.00", 100, 100)
    owner = Owner("options", "cash_secured_put", "csp-10")
    sell = order_for([(OLD_PUT, -1)], 2, Decimal("-1.95"), owner, opening=True, scheme="all_penny")
    opened = await ctx.executor.place(
        Decision(sell, {"rule": "test"}, Reservation(owner, "cash", None, Decimal(88_000)))
    )
    assert opened.status == "filled", opened
    cash = (await ctx.broker.account()).cash
    equity = cash - Decimal(88_000) - Decimal(500)
    ctx.journal.hold_reservation("equity", "aggregate", "keep", Claim("cash", None, equity), NOW)
    rowner = Owner("options", "cash_secured_put", "roll:csp-10")
    req = order_for(
        [(OLD_PUT, 1), (NEAR_PUT, -1)], 2, Decimal("-0.20"), rowner, opening=[False, True],
        scheme="all_penny",
    )  # fmt: skip
    reserve = Reservation(rowner, "cash", None, Decimal(88_400), opened.client_order_id)
    return opened.client_order_id, equity, cash - equity, req, reserve


def _held(ctx: Ctx) -> list[tuple[str | None, Decimal]]:
    """Return the journal's active reservations, oldest first: (client order id, amount)."""
    with sqlite3.connect(ctx.journal.path) as db:
        rows = db.execute(
            "SELECT client_order_id, amount FROM reservations WHERE released_ts IS NULL ORDER BY id"
        ).fetchall()
    return [(cid, Decimal(amount)) for cid, amount in rows]


@pytest.mark.asyncio
async def test_a_put_roll_needs_only_the_collateral_it_adds_until_its_fill(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """Roll 2 short 440P into 2 short 442P with $500 free beside the 440Ps' $88,000.

    By hand: the 442Ps need 2 x 44,200 = 88,400 <= 500 + 88,000 freed by the buy-back. One
    unit fills first (1 bid on the 442P): the 440Ps' $88,000 and the 442Ps' $88,400 both stay
    held (the account holds -1 440P, -1 442P and one unit still to roll: 44,000 + 44,200 +
    44,200 at most, under 176,400). Filled, the 440Ps' collateral goes, the 442Ps' stays.
    """
    trading, ctx = world
    old, equity, free, req, reserve = await _put_rolling_on_its_own_collateral(
        trading, ctx, Decimal(300_000)
    )
    assert free == Decimal(88_500)
    trading.set_quote(OLD_PUT, "1.00", "1.10", 100, 100)
    trading.set_quote(NEAR_PUT, "1.30", "1.40", 1, 100)
    before = _held(ctx)
    out = await ctx.executor.place(Decision(req, {"rule": "test"}, reserve))
    try:
        assert out.status == "partially_filled", out
        assert [b["client_order_id"] for m, p, b in trading.requests if m == "POST"][-1] == (
            out.client_order_id
        )
        await ctx.executor.sync()  # the 440P not yet gone: its collateral is kept
        partly = _held(ctx)
        book = Book()
        book.held["csp-10"] = Held(
            "csp-10", "cash_secured_put", "SPY", EXPIRY_OLD, {OLD_PUT: -1}, 2, -1.95, 0.0, NOW,
            old,
        )  # fmt: skip
        book.pending[out.client_order_id] = Pending(
            out.client_order_id, "roll", "csp-10-r1", "SPY", "cash_secured_put", {NEAR_PUT: -1},
            EXPIRY_NEW, 0.0, ["-0.20"], 0, NOW, old_id="csp-10",
        )  # fmt: skip
        trading.set_quote(NEAR_PUT, "1.30", "1.40", 100, 100)
        trading.process()
        await OptionsEngine()._pending(ctx, book, {}, OptionsCycle("options", NOW))
        await ctx.executor.sync()
    finally:
        await ctx.broker.aclose()
    assert before == [(old, Decimal(88_000)), (None, equity)]
    assert partly == [
        (old, Decimal(88_000)),
        (None, equity),
        (out.client_order_id, Decimal(88_400)),
    ]
    assert [h.legs for h in book.held.values()] == [{NEAR_PUT: -1}]
    assert _held(ctx) == [(None, equity), (out.client_order_id, Decimal(88_400))]


@pytest.mark.asyncio
async def test_a_put_roll_cancelled_leaves_the_old_puts_collateral_as_it_was(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """The roll rests (a 0.10 credit on offer, 0.20 asked) and is cancelled: $88,000 stays."""
    trading, ctx = world
    old, equity, _, req, reserve = await _put_rolling_on_its_own_collateral(
        trading, ctx, Decimal(300_000)
    )
    trading.set_quote(OLD_PUT, "1.00", "1.10", 100, 100)
    trading.set_quote(NEAR_PUT, "1.20", "1.40", 100, 100)
    out = await ctx.executor.place(Decision(req, {"rule": "test"}, reserve))
    try:
        assert out.status == "new", out
        resting = _held(ctx)
        cancelled = await ctx.executor.cancel(out.client_order_id, "test")
    finally:
        await ctx.broker.aclose()
    assert resting == [
        (old, Decimal(88_000)), (None, equity), (out.client_order_id, Decimal(88_400))
    ]  # fmt: skip
    assert cancelled.status == "canceled"
    assert _held(ctx) == [(old, Decimal(88_000)), (None, equity)]


@pytest.mark.asyncio
async def test_a_put_roll_the_venue_rejects_leaves_the_old_puts_collateral_as_it_was(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """Cash for the 440Ps and $500: the roll is sent; the venue rejects it, the 440Ps' stays.

    The fake holds both puts' collateral while rolling (its rule: the opened legs' collateral
    on top of the book's), so it finds $500 of options buying power for $88,400.
    """
    trading, ctx = world
    old, equity, _, req, reserve = await _put_rolling_on_its_own_collateral(
        trading, ctx, Decimal(88_500)
    )
    trading.set_quote(OLD_PUT, "1.00", "1.10", 100, 100)
    trading.set_quote(NEAR_PUT, "1.30", "1.40", 100, 100)
    try:
        out = await ctx.executor.place(Decision(req, {"rule": "test"}, reserve))
    finally:
        await ctx.broker.aclose()
    assert [b["client_order_id"] for m, p, b in trading.requests if m == "POST"][-1] == (
        out.client_order_id
    )
    assert out.status == "rejected", out
    assert "insufficient options buying power" in str(out.reason)
    assert _held(ctx) == [(old, Decimal(88_000)), (None, equity)]


@pytest.mark.asyncio
async def test_a_settling_cut_after_the_venue_said_filled_frees_the_paid_cash_at_the_next_look(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A bought put's $135 is reserved; it fills; the settling look is cut in the activities read.

    The cut comes after the journal took the order as filled and before its paid cash was
    released. The order is then no longer open, so ``sync`` never looks it up again: the
    engine's follow of the order it booked does, and releases the $135 once.
    """
    trading, ctx = world
    trading.set_quote(NEW_PUT, "1.30", "1.40", 100, 100)
    owner = Owner("options", "long_put", "open:lp-1")
    buy = order_for([(NEW_PUT, 1)], 1, Decimal("1.35"), owner, opening=True, scheme="all_penny")
    out = await ctx.executor.place(
        Decision(buy, {"rule": "test"}, Reservation(owner, "cash", None, Decimal(135)))
    )
    assert out.status == "new", out
    book = Book()
    book.pending[out.client_order_id] = Pending(
        out.client_order_id, "open", "lp-1", "SPY", "long_put", {NEW_PUT: 1}, EXPIRY_NEW,
        135.0, ["1.35"], 0, NOW,
    )  # fmt: skip
    trading.set_quote(NEW_PUT, "1.30", "1.35", 100, 100)
    trading.process()
    hang = threading.Event()
    trading.inject("GET", "/v2/account/activities", 200, hold=hang)
    try:
        with pytest.raises(PremarketReadTimeout):
            await in_limit("settling our orders", ctx.executor.sync(), 0.5)
        cut = _held(ctx)
        status = ctx.journal.order_by_client_id(out.client_order_id)["status"]  # type: ignore[index]
        hang.set()
        await ctx.executor.sync()
        await OptionsEngine()._pending(ctx, book, {}, OptionsCycle("options", NOW))
    finally:
        hang.set()
        await ctx.broker.aclose()
    assert status == "filled"  # the journal took the venue's word before the cut
    assert cut == [(out.client_order_id, Decimal(135))]
    assert [h.legs for h in book.held.values()] == [{NEW_PUT: 1}]
    with sqlite3.connect(ctx.journal.path) as db:
        rows = db.execute("SELECT released_ts IS NOT NULL, release_reason FROM reservations")
        assert rows.fetchall() == [(1, "order filled: its cash is paid")]
