"""Closing orders of the options engine against the loopback Alpaca fake (real alpaca-py).

An urgent close (stop loss, expiry day, early assignment) goes out at the natural price so it
fills at once. A net of legs quoted in pennies is off the $0.05 grid at $3.00 and above: the
limit must be rounded towards a fill there, never below the natural.

Independent reference: the fake's record of the order it received and of the positions left.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import fake_broker
from fakes.options_world import Ctx, venue_ctx
from v28quant.options.config import OptionsConfig
from v28quant.options.context import OptionsCycle
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Book, Held
from v28quant.options.manage import manage_one

ET = ZoneInfo("America/New_York")
NOW = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
EXPIRY = date(2023, 10, 20)
SHORT_CALL = "AAPL231020C00190000"
LONG_CALL = "AAPL231020C00195000"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, Ctx]]:
    """Yield the trading fake at 2023-09-14 15:30 New York and an options context on it."""
    trading = FakeAlpacaTrading(now=NOW).start()
    ctx = venue_ctx(fake_broker(trading.url), tmp_path / "journal.sqlite", NOW, ("AAPL",))
    try:
        yield trading, ctx
    finally:
        ctx.journal.close()
        trading.stop()


async def _close_one_unit_of_two(
    trading: FakeAlpacaTrading,
    ctx: Ctx,
    eng: OptionsEngine,
    book: Book,
    structure_id: str,
    analysis: SimpleNamespace,
) -> None:
    """Close ``structure_id`` (2 units) where the short leg offers 1: part filled, then stalled.

    The close fills 1 unit; a cycle later, with no more filled, its rest is cancelled and
    reconcile trims the structure to the 1 unit Alpaca still holds.
    """
    raw = analysis.chain
    cycle = OptionsCycle("options", NOW)
    await manage_one(eng, ctx, book, book.held[structure_id], analysis, raw, None, cycle)
    (first,) = [o for o in trading.orders.values() if o["qty"] == "2"]
    assert first["status"] == "partially_filled"
    for minutes in (0, 5):
        ctx.clock.set(NOW + timedelta(minutes=minutes))
        await eng._pending(ctx, book, {"AAPL": raw}, OptionsCycle("options", ctx.clock.now()))
    assert first["status"] == "canceled"
    await eng._reconcile(ctx, book)
    assert book.held[structure_id].units == 1


def _chain(quotes: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Return raw chain rows for AAPL calls expiring ``EXPIRY`` (a flat 30 % vol)."""
    return pd.DataFrame(
        [
            {
                "symbol": s,
                "underlying": "AAPL",
                "expiry": pd.Timestamp(EXPIRY),
                "strike": float(s[-8:]) / 1000,
                "type": "call",
                "bid": float(b),
                "ask": float(a),
                "iv": 0.30,
            }
            for s, (b, a) in quotes.items()
        ]
    )


@pytest.mark.asyncio
async def test_a_stop_loss_close_above_three_dollars_is_sent_marketable(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A bear call opened for a 1.00 credit, now 190C 5.35 x 5.40 and 195C 2.27 x 2.28.

    By hand: the close buys 190C at 5.40 and sells 195C at 2.27, a 3.13 debit natural; the
    P&L is -(-1.00 + 3.13) = -2.13 a share, past the 2x credit stop. On the $0.05 grid above
    $3 the limit that fills at once is 3.15; floored to 3.10 it would rest below the natural.
    Alpaca fills the close at the legs' quotes, 3.13, and the account holds no leg after.
    """
    trading, ctx = world
    trading.set_quote("AAPL", "192.00", "192.02")
    trading.set_quote(SHORT_CALL, "5.35", "5.40")
    trading.set_quote(LONG_CALL, "2.27", "2.28")
    trading.positions[SHORT_CALL] = [Decimal(-1), Decimal("2.50")]
    trading.positions[LONG_CALL] = [Decimal(1), Decimal("1.50")]
    book = Book()
    legs = {SHORT_CALL: -1, LONG_CALL: 1}
    book.held["bc-1"] = Held(
        "bc-1", "bear_call", "AAPL", EXPIRY, legs, 1, -1.00, 400.0,
        datetime(2023, 9, 1, 10, 0, tzinfo=ET), "v28-options-bear_call-x",
    )  # fmt: skip
    raw = _chain({SHORT_CALL: ("5.35", "5.40"), LONG_CALL: ("2.27", "2.28")})
    analysis = SimpleNamespace(spot=192.01, as_of=NOW, surface=None, summary=dict, chain=raw)
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    try:
        await manage_one(
            eng, ctx, book, book.held["bc-1"], analysis, raw, None, OptionsCycle("options", NOW)
        )
    finally:
        await ctx.broker.aclose()
    (sent,) = [body for m, path, body in trading.requests if m == "POST" and "orders" in path]
    assert sent["order_class"] == "mleg"
    assert Decimal(str(sent["limit_price"])) == Decimal("3.15")
    assert SHORT_CALL not in trading.positions
    assert LONG_CALL not in trading.positions


@pytest.mark.asyncio
async def test_a_close_that_stalls_part_filled_sends_its_rest_again(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """The stop-loss close above on 2 units, where the 190C offers 1 contract: 1 unit closes.

    The rest must not rest at its price until the close (on an expiry day, to be assigned
    overnight). The cycle that first sees the part fill announces it; by the next, with no
    more filled, the rest is cancelled, the book holds the 1 unit Alpaca holds, and the exit
    rule closes that unit with an order of its own. By hand: Alpaca holds -1 190C and +1 195C
    after the part fill, and nothing once the second order fills.
    """
    trading, ctx = world
    trading.set_quote("AAPL", "192.00", "192.02")
    trading.set_quote(SHORT_CALL, "5.35", "5.40", ask_size=1)
    trading.set_quote(LONG_CALL, "2.27", "2.28")
    trading.positions[SHORT_CALL] = [Decimal(-2), Decimal("2.50")]
    trading.positions[LONG_CALL] = [Decimal(2), Decimal("1.50")]
    book = Book()
    book.held["bc-2"] = Held(
        "bc-2", "bear_call", "AAPL", EXPIRY, {SHORT_CALL: -1, LONG_CALL: 1}, 2, -1.00, 400.0,
        datetime(2023, 9, 1, 10, 0, tzinfo=ET), "v28-options-bear_call-y",
    )  # fmt: skip
    raw = _chain({SHORT_CALL: ("5.35", "5.40"), LONG_CALL: ("2.27", "2.28")})
    analysis = SimpleNamespace(spot=192.01, as_of=NOW, surface=None, summary=dict, chain=raw)
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    try:
        await _close_one_unit_of_two(trading, ctx, eng, book, "bc-2", analysis)
        assert (trading.positions[SHORT_CALL][0], trading.positions[LONG_CALL][0]) == (-1, 1)
        later = OptionsCycle("options", ctx.clock.now())
        await manage_one(eng, ctx, book, book.held["bc-2"], analysis, raw, None, later)
    finally:
        await ctx.broker.aclose()
    posts = [body for m, path, body in trading.requests if m == "POST" and "orders" in path]
    assert [Decimal(str(body["qty"])) for body in posts] == [2, 1]
    assert SHORT_CALL not in trading.positions
    assert LONG_CALL not in trading.positions


@pytest.mark.asyncio
async def test_the_rest_of_a_part_filled_take_profit_closes_under_the_same_rule(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """A bear call of 2 units sold for a 2.50 credit; the 190C then 1.50, the 195C 0.50.

    By hand: the close costs 1.00, a 1.50 gain: 60 % of the credit, past the 50 % take profit.
    The 190C offers 1 contract: 1 unit closes, the rest is cancelled. The quotes move to 1.60
    and 0.30: the close now costs 1.30, a 48 % gain, which alone would be held. The close has
    started, so the unit left is closed too: Alpaca receives a second order for 1 unit and
    holds no leg after it.
    """
    trading, ctx = world
    trading.set_quote("AAPL", "185.00", "185.02")
    trading.set_quote(SHORT_CALL, "1.50", "1.50", ask_size=1)
    trading.set_quote(LONG_CALL, "0.50", "0.50")
    trading.positions[SHORT_CALL] = [Decimal(-2), Decimal("3.20")]
    trading.positions[LONG_CALL] = [Decimal(2), Decimal("0.70")]
    book = Book()
    book.held["bc-3"] = Held(
        "bc-3", "bear_call", "AAPL", EXPIRY, {SHORT_CALL: -1, LONG_CALL: 1}, 2, -2.50, 250.0,
        datetime(2023, 9, 1, 10, 0, tzinfo=ET), "v28-options-bear_call-z",
    )  # fmt: skip
    raw = _chain({SHORT_CALL: ("1.50", "1.50"), LONG_CALL: ("0.50", "0.50")})
    analysis = SimpleNamespace(spot=185.01, as_of=NOW, surface=None, summary=dict, chain=raw)
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    try:
        await _close_one_unit_of_two(trading, ctx, eng, book, "bc-3", analysis)
        trading.set_quote(SHORT_CALL, "1.60", "1.60")
        trading.set_quote(LONG_CALL, "0.30", "0.30")
        moved = _chain({SHORT_CALL: ("1.60", "1.60"), LONG_CALL: ("0.30", "0.30")})
        analysis.chain = moved
        later = OptionsCycle("options", ctx.clock.now())
        await manage_one(eng, ctx, book, book.held["bc-3"], analysis, moved, None, later)
    finally:
        await ctx.broker.aclose()
    posts = [body for m, path, body in trading.requests if m == "POST" and "orders" in path]
    assert [Decimal(str(body["qty"])) for body in posts] == [2, 1]
    assert SHORT_CALL not in trading.positions
    assert LONG_CALL not in trading.positions


@pytest.mark.asyncio
async def test_a_close_outside_the_penny_program_is_priced_on_its_coarser_grid(
    world: tuple[FakeAlpacaTrading, Ctx],
) -> None:
    """The stop-loss close of the first test, the class outside the Penny Program (``ppind``).

    By hand: the 3.13 debit natural is on the $0.10 grid at $3.00 and above, so the limit that
    fills at once is 3.20 (on the penny program's $0.05 grid it was 3.15, which such a class
    does not accept). Alpaca still fills it at the legs' quotes.
    """
    trading, ctx = world
    trading.set_quote("AAPL", "192.00", "192.02")
    trading.set_quote(SHORT_CALL, "5.35", "5.40")
    trading.set_quote(LONG_CALL, "2.27", "2.28")
    trading.positions[SHORT_CALL] = [Decimal(-1), Decimal("2.50")]
    trading.positions[LONG_CALL] = [Decimal(1), Decimal("1.50")]
    book = Book()
    book.held["bc-4"] = Held(
        "bc-4", "bear_call", "AAPL", EXPIRY, {SHORT_CALL: -1, LONG_CALL: 1}, 1, -1.00, 400.0,
        datetime(2023, 9, 1, 10, 0, tzinfo=ET), "v28-options-bear_call-w",
    )  # fmt: skip
    raw = _chain({SHORT_CALL: ("5.35", "5.40"), LONG_CALL: ("2.27", "2.28")}).assign(penny=False)
    analysis = SimpleNamespace(spot=192.01, as_of=NOW, surface=None, summary=dict, chain=raw)
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    try:
        await manage_one(
            eng, ctx, book, book.held["bc-4"], analysis, raw, None, OptionsCycle("options", NOW)
        )
    finally:
        await ctx.broker.aclose()
    (sent,) = [body for m, path, body in trading.requests if m == "POST" and "orders" in path]
    assert Decimal(str(sent["limit_price"])) == Decimal("3.20")
    assert SHORT_CALL not in trading.positions
