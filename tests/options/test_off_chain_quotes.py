"""A working order's legs missing from the chain snapshot, quoted by their symbol on Alpaca.

Alpaca's chain leaves out a contract whose quote is stale (``AlpacaData.option_chain``); the
engine then asks ``latest_quotes`` for it, which answers with that same stale quote. A walk must
not move an order's price off it: it holds, and the cycle says so. A leg quoted this way belongs
to its class's Penny Program status, not to the column's default.

Real alpaca-py against the loopback fakes: the trading fake's record of the requests it received
is the reference for what was sent; prices and ticks are by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.alpaca_data import FakeAlpacaData, contracts_from_snapshots
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import fake_broker
from fakes.options_world import Ctx, venue_ctx
from v28quant.broker.base import Owner
from v28quant.data.alpaca import AlpacaData
from v28quant.execution import Decision
from v28quant.options.context import OptionsCycle
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Book, Pending
from v28quant.options.strategies import order_for

ET = ZoneInfo("America/New_York")
NOW = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
KEY, SECRET = "PKTESTKEY", "test-secret-value"
LONG, SHORT, OTHER = "XYZ231020P00430000", "XYZ231020P00435000", "XYZ231020P00425000"
EXPIRY = date(2023, 10, 20)
#: The indicative feed's newest quotes are 15 minutes old; 5 more and a quote is stale.
FRESH, STALE = NOW - timedelta(minutes=15), NOW - timedelta(minutes=30)


def _snapshot(bid: float, ask: float, at: datetime) -> dict[str, Any]:
    t = at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
    quote = {"t": t, "ax": "C", "ap": ask, "as": 5, "bx": "N", "bp": bid, "bs": 5, "c": "A"}
    return {"latestQuote": quote}


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, FakeAlpacaData, Ctx]]:
    """Yield the trading and data fakes and an options context on both, XYZ off the penny."""
    trading = FakeAlpacaTrading(now=NOW).start()
    trading.set_quote(LONG, "0.90", "1.00")
    trading.set_quote(SHORT, "2.00", "2.20")
    snaps = {
        "XYZ": {
            OTHER: _snapshot(0.50, 0.60, FRESH),
            LONG: _snapshot(0.90, 1.00, FRESH),
            SHORT: _snapshot(2.00, 2.20, FRESH),
        }
    }
    contracts = contracts_from_snapshots(snaps)
    for record in contracts:
        record["ppind"] = False  # XYZ options are quoted in nickels below $3
    data = FakeAlpacaData(option_snapshots=snaps, contracts=contracts, now=NOW)
    with data:
        feed = AlpacaData(KEY, SECRET, data_url=data.url, trading_url=data.url, now=lambda: NOW)
        ctx = venue_ctx(
            fake_broker(trading.url, KEY, SECRET), tmp_path / "journal.sqlite", NOW, ("XYZ",), feed
        )
        try:
            yield trading, data, ctx
        finally:
            ctx.journal.close()
            trading.stop()


async def _resting_bull_put(ctx: Ctx) -> tuple[Book, Pending]:
    """Sell the 435/430 put spread for 1.15 (its mid; the natural is 1.00): it rests."""
    req = order_for(
        [(SHORT, -1), (LONG, 1)], 1, Decimal("-1.15"), Owner("options", "bull_put", "open:bp-1"),
        opening=True, scheme="standard",
    )  # fmt: skip
    out = await ctx.executor.place(Decision(req, {"rule": "test"}))
    assert out.status == "new", out
    book = Book()
    p = Pending(
        out.client_order_id, "open", "bp-1", "XYZ", "bull_put", {SHORT: -1, LONG: 1},
        EXPIRY, 400.0, ["-1.15", "-1.10", "-1.00"], 0, NOW,
    )  # fmt: skip
    book.pending[p.client_order_id] = p
    return book, p


def _patches(trading: FakeAlpacaTrading) -> list[Decimal]:
    return [Decimal(str(body["limit_price"])) for m, _, body in trading.requests if m == "PATCH"]


@pytest.mark.asyncio
async def test_a_leg_quoted_only_by_a_stale_quote_holds_the_walk(
    venue: tuple[FakeAlpacaTrading, FakeAlpacaData, Ctx],
) -> None:
    """The short leg last quoted 30 minutes ago (stale past 20) at 1.50: no replace is sent.

    The chain of the order's strikes leaves the short leg out as stale; its latest quote is
    the same stale one, on which the spread's mid would be -1.55 + 0.95 = -0.60: a walk priced
    off it would give most of the credit away. The order stays at 1.15 on its first rung and
    the cycle names the leg. Once the leg is quoted again (2.00 / 2.20), the walk goes on to
    the next rung of today's ladder, -1.10.
    """
    trading, data, ctx = venue
    data.option_snapshots["XYZ"][SHORT] = _snapshot(1.50, 1.60, STALE)
    eng = OptionsEngine()
    book, p = await _resting_bull_put(ctx)
    report = OptionsCycle("options", NOW)
    try:
        await eng._pending(ctx, book, await eng._leg_chains(ctx, book), report)
        assert _patches(trading) == []
        assert (p.rung, p.ladder) == (0, ["-1.15", "-1.10", "-1.00"])
        held = report.details["walks_held"][p.client_order_id]
        assert SHORT in held, held
        assert "stale" in held, held
        data.option_snapshots["XYZ"][SHORT] = _snapshot(2.00, 2.20, FRESH)
        await eng._pending(ctx, book, await eng._leg_chains(ctx, book), OptionsCycle("o", NOW))
    finally:
        await ctx.broker.aclose()
        await ctx.feed.aclose()
    assert _patches(trading) == [Decimal("-1.10")]


@pytest.mark.asyncio
async def test_a_leg_off_the_chain_is_priced_on_its_class_tick_grid(
    venue: tuple[FakeAlpacaTrading, FakeAlpacaData, Ctx],
) -> None:
    """XYZ is outside the Penny Program: legs quoted off the chain walk in nickels.

    The chain asked for holds the 425 alone; both legs are quoted by their symbol. By hand: mid
    -2.10 + 0.95 = -1.15, natural -2.00 + 1.00 = -1.00; the middle rung -1.075 floored on the
    $0.05 grid is -1.10 (on pennies it would be -1.08).
    """
    trading, _, ctx = venue
    eng = OptionsEngine()
    book, _ = await _resting_bull_put(ctx)
    try:
        chain = await ctx.feed.option_chain("XYZ", strike_from=425, strike_to=425)
        assert list(chain["symbol"]) == [OTHER]
        assert not chain["penny"].any()
        chains = await eng._with_legs_quoted(ctx, {"XYZ": chain}, {"XYZ": {LONG, SHORT}})
        quoted = chains["XYZ"].set_index("symbol")
        assert not quoted.loc[[LONG, SHORT], "penny"].any()
        await eng._pending(ctx, book, chains, OptionsCycle("options", NOW))
    finally:
        await ctx.broker.aclose()
        await ctx.feed.aclose()
    assert _patches(trading) == [Decimal("-1.10")]


async def _resting_cash_secured_put(ctx: Ctx) -> tuple[Book, Pending]:
    """Sell the 435 put alone for 2.10 (its mid; the natural is 2.00): it rests."""
    req = order_for(
        [(SHORT, -1)], 1, Decimal("-2.10"), Owner("options", "cash_secured_put", "open:csp-1"),
        opening=True, scheme="standard",
    )  # fmt: skip
    out = await ctx.executor.place(Decision(req, {"rule": "test"}))
    assert out.status == "new", out
    book = Book()
    p = Pending(
        out.client_order_id, "open", "csp-1", "XYZ", "cash_secured_put", {SHORT: -1},
        EXPIRY, 400.0, ["-2.10", "-2.05", "-2.00"], 0, NOW,
    )  # fmt: skip
    book.pending[p.client_order_id] = p
    return book, p


@pytest.mark.asyncio
async def test_a_single_leg_quoted_only_by_a_stale_quote_holds_the_walk(
    venue: tuple[FakeAlpacaTrading, FakeAlpacaData, Ctx],
) -> None:
    """The put sold alone, last quoted 30 minutes ago: no replace is sent, the cycle names it.

    The chain of its one strike is empty (the contract left out as stale), so nothing in the
    chain says the leg is stale: it must still hold. Once quoted again (2.00 / 2.20), the walk
    goes on to the next rung, a premium of 2.05 (single-leg: the positive premium).
    """
    trading, data, ctx = venue
    data.option_snapshots["XYZ"][SHORT] = _snapshot(1.50, 1.60, STALE)
    eng = OptionsEngine()
    book, p = await _resting_cash_secured_put(ctx)
    report = OptionsCycle("options", NOW)
    try:
        await eng._pending(ctx, book, await eng._leg_chains(ctx, book), report)
        assert _patches(trading) == []
        assert (p.rung, p.ladder) == (0, ["-2.10", "-2.05", "-2.00"])
        held = report.details.get("walks_held", {}).get(p.client_order_id, "")
        assert SHORT in held, report.details
        assert "stale" in held, held
        data.option_snapshots["XYZ"][SHORT] = _snapshot(2.00, 2.20, FRESH)
        await eng._pending(ctx, book, await eng._leg_chains(ctx, book), OptionsCycle("o", NOW))
    finally:
        await ctx.broker.aclose()
        await ctx.feed.aclose()
    assert _patches(trading) == [Decimal("2.05")]
