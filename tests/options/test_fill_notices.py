"""One Discord notice per order fill, whoever announces it.

The options engine announces the fills of its own orders (strategy, units, net price); the
execution service announces every other fill (equity orders, flattens, orders placed by a
person), one notice per order listing its legs. Each leg of an options order used to give one
more notice of the same fill: a cash-secured put two notices, a spread three.

Independent reference: what the loopback Discord received, through the real notifier, and the
fills the Alpaca fake made (one position per leg).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.discord import FakeDiscord
from fakes.fixtures import fake_broker
from fakes.options_world import Ctx, RecordingNotifier, Threshold
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.broker.base import OrderRequest, Owner
from v28quant.clock import SimClock
from v28quant.engines import fills_announced_by
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.notify import DiscordNotifier
from v28quant.options.context import OptionsCycle
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Book, Pending
from v28quant.options.strategies import order_for

ET = ZoneInfo("America/New_York")
NOW = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
EXPIRY = date(2023, 10, 20)
LONG_CALL, SHORT_CALL = "SPY231020C00450000", "SPY231020C00460000"
PUT = "SPY231020P00435000"


@pytest.fixture
def trading() -> Iterator[FakeAlpacaTrading]:
    """Yield the trading fake at 2023-09-14 15:30 New York, quoting SPY and three options."""
    fake = FakeAlpacaTrading(now=NOW).start()
    fake.set_quote("SPY", "450.80", "450.82")
    fake.set_quote(LONG_CALL, "9.90", "10.00")
    fake.set_quote(SHORT_CALL, "4.90", "5.00")
    fake.set_quote(PUT, "1.30", "1.40")
    try:
        yield fake
    finally:
        fake.stop()


async def _notices(
    trading: FakeAlpacaTrading,
    tmp_path: Path,
    req: OrderRequest,
    pending: Pending | None,
) -> list[str]:
    """Place ``req`` as the runner would; let the engine follow ``pending``; return the notices.

    The execution service and the engine share one Discord notifier, as in the runner.
    """
    broker = fake_broker(trading.url, "PKTESTKEY", "test-secret-value")
    journal = Journal(tmp_path / "journal.sqlite")
    with FakeDiscord() as discord:
        notifier = DiscordNotifier(discord.webhook_url, min_interval=0.0)
        clock = SimClock(NOW)
        engine = OptionsEngine()
        executor = Executor(
            broker,
            journal,
            notifier=notifier,
            clock=clock,
            announced_elsewhere=fills_announced_by([engine]),  # as the runner builds it
        )
        ctx = Ctx(
            "paper", clock, broker, None, journal, executor, None, RecordingNotifier(),
            ("SPY",), Threshold(0.0),
        )  # fmt: skip
        ctx = replace(ctx, notifier=notifier)
        try:
            out = await executor.place(Decision(req, {"rule": "test"}))
            assert out.order is not None, out
            if pending is not None:
                book = Book()
                pending.client_order_id = out.client_order_id
                book.pending[out.client_order_id] = pending
                await engine._pending(ctx, book, {}, OptionsCycle("options", NOW))
                assert not book.pending  # the engine booked the fill
            await executor.track(out.client_order_id, 0.0)
        finally:
            await notifier.aclose()
            await broker.aclose()
            journal.close()
        return [str(m["content"]) for m in discord.received]


@pytest.mark.asyncio
async def test_a_filled_bull_call_spread_is_one_notice(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    """Buy the 450/460 call spread at the natural 5.10: both legs fill, one notice, the engine's."""
    owner = Owner("options", "bull_call", "open:bc-1")
    legs = [(LONG_CALL, 1), (SHORT_CALL, -1)]
    req = order_for(legs, 1, Decimal("5.10"), owner, opening=True, scheme="all_penny")
    pending = Pending(
        "", "open", "bc-1", "SPY", "bull_call", dict(legs), EXPIRY, 510.0, ["5.10"], 0, NOW
    )
    notices = await _notices(trading, tmp_path, req, pending)
    assert trading.positions[LONG_CALL][0] == 1
    assert trading.positions[SHORT_CALL][0] == -1
    assert len(notices) == 1, notices
    assert notices[0].startswith("FILL open bull_call 1 SPY @ 5.1"), notices


@pytest.mark.asyncio
async def test_a_filled_cash_secured_put_is_one_notice(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    """Sell one 435 put at the bid 1.30: it fills, one notice (the engine's)."""
    owner = Owner("options", "cash_secured_put", "open:csp-1")
    req = order_for([(PUT, -1)], 1, Decimal("-1.30"), owner, opening=True, scheme="all_penny")
    pending = Pending(
        "", "open", "csp-1", "SPY", "cash_secured_put", {PUT: -1}, EXPIRY, 0.0, ["-1.30"], 0, NOW
    )
    notices = await _notices(trading, tmp_path, req, pending)
    assert trading.positions[PUT][0] == -1
    assert len(notices) == 1, notices
    assert "open cash_secured_put" in notices[0], notices


@pytest.mark.asyncio
async def test_an_equity_fill_is_one_notice(trading: FakeAlpacaTrading, tmp_path: Path) -> None:
    """Buy 10 SPY at the market: one notice, the execution service's, as before."""
    req = OrderRequest.equity("SPY", 10, "buy", owner=Owner("equity", "dip", "buy-spy"))
    notices = await _notices(trading, tmp_path, req, None)
    assert trading.positions["SPY"][0] == 10
    assert len(notices) == 1, notices
    assert notices[0].startswith("fill buy 10 SPY @ 450.82"), notices


@pytest.mark.asyncio
async def test_a_spread_no_engine_announces_is_one_notice_naming_its_legs(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    """A spread the runner's flatten closes: the execution service says it once, both legs in it."""
    owner = Owner("risk", "flatten", "flatten-spread")
    legs = [(LONG_CALL, 1), (SHORT_CALL, -1)]
    req = order_for(legs, 1, Decimal("5.10"), owner, opening=True, scheme="all_penny")
    notices = await _notices(trading, tmp_path, req, None)
    assert len(notices) == 1, notices
    assert f"buy 1 {LONG_CALL} @ 10; sell 1 {SHORT_CALL} @ 4.9" in notices[0], notices


def _engine_world(
    broker: AlpacaBroker, journal: Journal, notifier: DiscordNotifier, engine: OptionsEngine
) -> tuple[Executor, Ctx]:
    """Return the execution service and a paper context in which ``engine`` announces fills."""
    clock = SimClock(NOW)
    executor = Executor(
        broker, journal, notifier=notifier, clock=clock,
        announced_elsewhere=fills_announced_by([engine]),
    )  # fmt: skip
    ctx = Ctx(
        "paper", clock, broker, None, journal, executor, None, notifier, ("SPY",), Threshold(0.0)
    )  # fmt: skip
    return executor, ctx


def _resting_put(client_order_id: str, structure_id: str) -> Pending:
    """Return the book's record of a cash-secured put sold to open at 1.30 (2 units)."""
    return Pending(
        client_order_id, "open", structure_id, "SPY", "cash_secured_put", {PUT: -1},
        EXPIRY, 0.0, ["-1.30"], 0, NOW,
    )  # fmt: skip


@pytest.mark.asyncio
async def test_a_part_fill_is_announced_when_seen_and_the_rest_when_it_fills(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    """Sell 2 puts to open at 1.30 with 1 bid: 1 fills, the second after a restart at 1.32.

    The engine that first sees the part fill announces 1 of 2 at 1.30 and leaves the rest a
    cycle to fill. After a restart (a new engine on the saved book), the order has filled its
    second put at the new bid 1.32: that notice says 1 at 1.32, 2 of 2. By hand: the
    order's average is (1.30 + 1.32) / 2 = 1.31; the second put's price is 2 x 1.31 - 1.30.
    References: what the Discord fake received and the fake's own position (-2 puts).
    """
    trading.set_quote(PUT, "1.30", "1.40", bid_size=1)
    broker = fake_broker(trading.url, "PKTESTKEY", "test-secret-value")
    journal = Journal(tmp_path / "journal.sqlite")
    book_path = tmp_path / "book.json"
    owner = Owner("options", "cash_secured_put", "open:csp-3")
    req = order_for([(PUT, -1)], 2, Decimal("-1.30"), owner, opening=True, scheme="all_penny")
    with FakeDiscord() as discord:
        notifier = DiscordNotifier(discord.webhook_url, min_interval=0.0)
        engine = OptionsEngine(book_path=book_path)
        executor, ctx = _engine_world(broker, journal, notifier, engine)
        try:
            out = await executor.place(Decision(req, {"rule": "test"}))
            assert out.order is not None, out
            assert trading.orders[out.order.id]["status"] == "partially_filled"
            book = Book(book_path)
            book.placed(_resting_put(out.client_order_id, "csp-3"))
            await engine._pending(ctx, Book(book_path), {}, OptionsCycle("options", NOW))
            await notifier.aclose()
            part = [str(m["content"]) for m in discord.received]

            trading.set_quote(PUT, "1.32", "1.40", bid_size=5)
            trading.process()
            notifier = DiscordNotifier(discord.webhook_url, min_interval=0.0)
            ctx = replace(ctx, notifier=notifier)
            restarted = OptionsEngine(book_path=book_path)
            book = Book(book_path)
            await restarted._pending(ctx, book, {}, OptionsCycle("options", NOW))
            await executor.track(out.client_order_id, 0.0)
        finally:
            await notifier.aclose()
            await broker.aclose()
            journal.close()
        notices = [str(m["content"]) for m in discord.received]
    assert trading.positions[PUT][0] == -2
    assert len(part) == 1, part
    assert part[0].startswith("FILL open cash_secured_put 1 SPY @ 1.3 ("), part
    assert "filled=1/2 status=partially_filled" in part[0], part
    assert len(notices) == 2, notices
    assert notices[1].startswith("FILL open cash_secured_put 1 SPY @ 1.32 ("), notices
    assert "filled=2/2 status=filled" in notices[1], notices
    (h,) = book.held.values()
    assert h.units == 2


@pytest.mark.asyncio
async def test_an_order_ending_after_its_part_fill_notice_says_so_without_a_second_fill(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    """Sell 2 puts at 1.30 with 1 bid: 1 fills and is announced, the rest expires at the close.

    The end is one notice saying the order expired with 1 of 2 filled; the filled put is not
    announced again. References: what the Discord fake received and the fake's position.
    """
    trading.set_quote(PUT, "1.30", "1.40", bid_size=1)
    broker = fake_broker(trading.url, "PKTESTKEY", "test-secret-value")
    journal = Journal(tmp_path / "journal.sqlite")
    owner = Owner("options", "cash_secured_put", "open:csp-4")
    req = order_for([(PUT, -1)], 2, Decimal("-1.30"), owner, opening=True, scheme="all_penny")
    with FakeDiscord() as discord:
        notifier = DiscordNotifier(discord.webhook_url, min_interval=0.0)
        engine = OptionsEngine()
        executor, ctx = _engine_world(broker, journal, notifier, engine)
        try:
            out = await executor.place(Decision(req, {"rule": "test"}))
            assert out.order is not None, out
            book = Book()
            book.pending[out.client_order_id] = _resting_put(out.client_order_id, "csp-4")
            await engine._pending(ctx, book, {}, OptionsCycle("options", NOW))
            trading.advance_to(datetime(2023, 9, 14, 16, 5, tzinfo=ET))  # the day order expires
            await engine._pending(ctx, book, {}, OptionsCycle("options", NOW))
        finally:
            await notifier.aclose()
            await broker.aclose()
            journal.close()
        notices = [str(m["content"]) for m in discord.received]
    assert trading.positions[PUT][0] == -1
    assert len(notices) == 2, notices
    assert "filled=1/2 status=partially_filled" in notices[0], notices
    assert notices[1] == (
        f"OPTIONS open cash_secured_put SPY: order expired with 1/2 filled ({out.client_order_id})"
    ), notices
    assert not book.pending
    assert len(book.held) == 1


@pytest.mark.asyncio
async def test_a_close_ending_part_filled_is_announced_once_across_a_restart(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    """Buy back 2 puts at 1.40 with 1 offered: 1 fills, the rest expires at the close.

    The cycle that sees the close end announces its fill; the process then dies before the
    cycle's end (the book file is what a restart reads). The restart must not announce that
    fill again. References: what the Discord fake received and the fake's position.
    """
    trading.set_quote(PUT, "1.30", "1.40", bid_size=2)
    broker = fake_broker(trading.url, "PKTESTKEY", "test-secret-value")
    journal = Journal(tmp_path / "journal.sqlite")
    book_path = tmp_path / "book.json"
    opened = order_for(
        [(PUT, -1)],
        2,
        Decimal("-1.30"),
        Owner("test", "csp", "o"),
        opening=True,
        scheme="all_penny",
    )
    owner = Owner("options", "cash_secured_put", "close:csp-5")
    req = order_for([(PUT, 1)], 2, Decimal("1.40"), owner, opening=False, scheme="all_penny")
    with FakeDiscord() as discord:
        notifier = DiscordNotifier(discord.webhook_url, min_interval=0.0)
        engine = OptionsEngine(book_path=book_path)
        executor, ctx = _engine_world(broker, journal, notifier, engine)
        try:
            assert (await executor.place(Decision(opened, {"rule": "test"}))).status == "filled"
            trading.set_quote(PUT, "1.30", "1.40", ask_size=1)
            out = await executor.place(Decision(req, {"rule": "test"}))
            assert out.order is not None, out
            closing = replace(_resting_put(out.client_order_id, "csp-5"), kind="close")
            Book(book_path).placed(closing)
            trading.advance_to(datetime(2023, 9, 14, 16, 5, tzinfo=ET))  # the day order expires
            await engine._pending(ctx, Book(book_path), {}, OptionsCycle("options", NOW))
            restarted = OptionsEngine(book_path=book_path)  # the process died before the save
            await restarted._pending(ctx, Book(book_path), {}, OptionsCycle("options", NOW))
        finally:
            await notifier.aclose()
            await broker.aclose()
            journal.close()
        notices = [str(m["content"]) for m in discord.received]
    assert trading.positions[PUT][0] == -1
    about = [n for n in notices if out.client_order_id in n]
    assert len(about) == 1, about
    assert "filled=1/2 status=expired" in about[0], about
