"""The wheel's shares through a stock split, as a trader whose wheel holds assigned AAPL meets it.

A put at 200 assigned for a 5.00 credit left the wheel 100 AAPL at a 195 basis, waiting for a
covered call. AAPL splits 4-for-1: the venue holds 400 at a quarter of the price, reconcile
takes the split. Reference: the fake's own positions, the book file read back with json, the
journal's reservations read with sqlite3, hand arithmetic.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker
from fakes.options_world import Ctx, venue_ctx
from v28quant.journal import Journal
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Book
from v28quant.reconcile import reconcile

EX_DATE = date(2024, 6, 4)
PREMARKET = datetime(2024, 6, 4, 13, 0, tzinfo=UTC)  # 09:00 New York on the ex-date


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, Ctx]]:
    """Yield the fake holding the wheel's 100 AAPL at 195 and an options context on it."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.positions["AAPL"] = [Decimal(100), Decimal(195)]
    ctx = venue_ctx(fake_broker(trading.url), tmp_path / "journal.sqlite", OPEN, ("AAPL",))
    try:
        yield trading, ctx
    finally:
        ctx.journal.close()
        trading.stop()


def wheel_reserved(journal: Journal) -> list[Decimal]:
    """Return the active reservations of AAPL shares for the wheel's covered call."""
    db = sqlite3.connect(str(journal.path))
    rows = db.execute(
        "SELECT amount FROM reservations WHERE engine = 'options' AND symbol = 'AAPL'"
        " AND kind = 'shares' AND released_ts IS NULL"
    ).fetchall()
    db.close()
    return [Decimal(r[0]) for r in rows]


@pytest.mark.asyncio
async def test_a_split_rebases_the_wheels_shares_and_basis_once(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """By hand: 100 x 4 = 400 shares at a basis of 195 / 4 = 48.75, all 400 reserved.

    Before, the wheel kept 100 shares at 195: its covered call had to strike at 195 or more
    with AAPL near 50 (none is listed, the wheel stalls), and the 300 other shares were
    nobody's, free for the equity engine to sell.
    """
    trading, ctx = world
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    assert (await reconcile(ctx.journal, ctx.broker, ctx.clock, adopt_positions=True)).ok
    book = Book(tmp_path / "book.json")
    w = book.stage("AAPL")
    w.stage, w.shares, w.basis = "shares", 100, 195.0
    await eng._activities(ctx, book)
    assert wheel_reserved(ctx.journal) == [Decimal(100)]

    trading.split("AAPL", 4, EX_DATE)
    trading.now = PREMARKET
    ctx.clock.set(PREMARKET)
    assert (await reconcile(ctx.journal, ctx.broker, ctx.clock)).ok
    try:
        await eng._activities(ctx, book)
        await eng._activities(ctx, Book(tmp_path / "book.json"))  # a restart: no second time
    finally:
        await ctx.broker.aclose()

    assert trading.positions["AAPL"] == [Decimal(400), Decimal("48.75")]
    saved = json.loads((tmp_path / "book.json").read_text(encoding="utf-8"))["wheel"]["AAPL"]
    assert (saved["stage"], saved["shares"], saved["basis"]) == ("shares", 400, 48.75)
    assert wheel_reserved(ctx.journal) == [Decimal(400)]
