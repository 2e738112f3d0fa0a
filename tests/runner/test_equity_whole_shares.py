"""The equity engine orders whole shares, except a close to flat, which sells what is held.

A fractional holding (a 3-for-2 split of 22 2/9 shares leaves 33.333333333) must not make every
later order fractional: Alpaca takes fractional quantities only on market day orders of
fractionable assets, and never on a short sale. Reference: hand arithmetic and the loopback
fake exchange's own record of the orders it was sent.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.equity_world import aapl_engine
from fakes.fixtures import OPEN
from v28quant.config import load_config
from v28quant.equity.sizing import fit_opening, order_qty
from v28quant.signals import RegimeState

REGIME = RegimeState("bull_quiet", {"bull_quiet": 1.0}, "test", OPEN)
HELD = Decimal("33.333333333")


@pytest.mark.parametrize(
    ("target", "held", "expected"),
    [
        ("100", "33.333333333", "66"),  # 66.666666667 to buy: 66 whole, ends at 99.333333333
        ("10", "33.333333333", "-23"),  # 23.333333333 to sell: 23, ends at 10.333333333
        ("33", "33.333333333", "0"),  # a third of a share away: nothing to order
        ("0", "33.333333333", "-33.333333333"),  # a close to flat sells every share held
        ("-50", "33.333333333", "-33.333333333"),  # crossing zero: the close comes first
        ("-10", "-2.5", "-7"),  # adding 7.5 to a short: 7 whole
        ("0", "-2.5", "2.5"),  # covering a short buys back every share
    ],
)
def test_orders_are_whole_shares_except_a_close(target: str, held: str, expected: str) -> None:
    assert order_qty(Decimal(target), Decimal(held)) == Decimal(expected), (target, held)


def test_a_buy_cut_to_its_target_at_the_ask_is_whole_shares() -> None:
    # the 0.10 target at the 100.01 ask of 100,000: 99.99 -> 99 shares; 99 - 33.333333333 held
    # leaves 65.666666667, so 65 whole shares
    qty = fit_opening(
        Decimal("66"),
        HELD,
        0.10,
        Decimal(100_000),
        Decimal("100.01"),
        Decimal(25_000),
        Decimal(5_000),
    )
    assert qty == Decimal(65)


@pytest.fixture
def trading() -> Iterator[FakeAlpacaTrading]:
    """Yield the fake holding 33.333333333 AAPL at 100.00, quoted 99.99 x 100.01."""
    fake = FakeAlpacaTrading(now=OPEN).start()
    fake.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    fake.positions["AAPL"] = [HELD, Decimal(100)]
    fake.cash -= HELD * 100
    try:
        yield fake
    finally:
        fake.stop()


async def _one_cycle(trading: FakeAlpacaTrading, journal: Path, value: float) -> list[Any]:
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(trading.url, journal, OPEN, value, REGIME, cfg, (10_000, 10_000))
    try:
        await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
    return [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]


@pytest.mark.asyncio
async def test_a_fractional_holding_is_added_to_in_whole_shares(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # equity 100,000 (cash 96,666.6666667 + 33.333333333 x the 100.00 mid); a full long view
    # targets 0.10 of it, 99 shares at the 100.01 ask: 65.666666667 more, so 65 whole
    journal = tmp_path / "j.sqlite"
    posts = await _one_cycle(trading, journal, 1.0)
    assert [(p["symbol"], p["side"], p["qty"]) for p in posts] == [("AAPL", "buy", 65.0)]
    assert trading.positions["AAPL"][0] == HELD + 65
    with sqlite3.connect(journal) as db:
        (row,) = db.execute("SELECT reasoning FROM decisions WHERE action = 'buy'").fetchall()
    reasoning = json.loads(row[0])
    # the target is 100 shares at the mid; the buy is cut to the 99 the ask pays for
    assert (reasoning["target_qty"], reasoning["order_qty"]) == ("100", "65")
    assert "crosses_zero" not in reasoning  # a long added to, not a close


@pytest.mark.asyncio
async def test_a_fractional_holding_is_closed_to_flat(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # a full short view without shorting targets flat: every share held is sold, the fraction too
    posts = await _one_cycle(trading, tmp_path / "j.sqlite", -1.0)
    assert [(p["symbol"], p["side"], Decimal(str(p["qty"]))) for p in posts] == [
        ("AAPL", "sell", HELD)
    ]
    assert "AAPL" not in trading.positions


@pytest.mark.asyncio
async def test_less_than_a_share_from_its_target_is_a_hold(tmp_path: Path) -> None:
    # 100.5 held at 100.00 and cash 100,000 - 10,050: equity 100,000, the 0.10 target is 100
    # shares at the mid; half a share over it, with no minimum trade, orders nothing
    fake = FakeAlpacaTrading(now=OPEN).start()
    fake.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    fake.positions["AAPL"] = [Decimal("100.5"), Decimal(100)]
    fake.cash -= Decimal("100.5") * 100
    cfg = dataclasses.replace(load_config()[1].equity, min_trade_weight=0.0)
    ctx, engine = aapl_engine(
        fake.url, tmp_path / "j.sqlite", OPEN, 1.0, REGIME, cfg, (10_000, 10_000)
    )
    try:
        report = await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        fake.stop()
    assert [b for m, p, b in fake.requests if (m, p) == ("POST", "/v2/orders")] == []
    assert report.details["AAPL"].startswith("hold: within a share of its target of 100"), (
        report.details
    )


@pytest.mark.asyncio
async def test_a_fraction_of_a_stock_the_venue_does_not_split_is_held_once_said(
    tmp_path: Path,
) -> None:
    # 10.5 AAPL after a split, and the venue takes no fractional order of AAPL: a close to flat
    # sells the 10 whole shares; the half share left is held, journaled once, not every cycle
    fake = FakeAlpacaTrading(now=OPEN).start()
    fake.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    fake.assets["AAPL"] = {"fractionable": False}
    fake.positions["AAPL"] = [Decimal("10.5"), Decimal(100)]
    fake.cash -= Decimal("10.5") * 100
    journal = tmp_path / "j.sqlite"
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(fake.url, journal, OPEN, -1.0, REGIME, cfg, (10_000, 10_000))
    details = []
    try:
        for minutes in (0, 5, 10):
            ctx.now = fake.now = OPEN + timedelta(minutes=minutes)
            details.append((await engine.cycle(ctx)).details["AAPL"])
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        fake.stop()
    posts = [b for m, p, b in fake.requests if (m, p) == ("POST", "/v2/orders")]
    assert [(p["symbol"], p["side"], p["qty"]) for p in posts] == [("AAPL", "sell", 10.0)]
    assert fake.positions["AAPL"][0] == Decimal("0.5")
    assert details[0] == "sell 10: filled", details
    assert all("0.5" in d and "DELETE /v2/positions/AAPL" in d for d in details[1:]), details
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT action, reasoning FROM decisions WHERE symbol = 'AAPL' ORDER BY ts"
        ).fetchall()
    assert [action for action, _ in rows] == ["sell", "hold"]
    sell, hold = (json.loads(r) for _, r in rows)
    assert sell["order_qty"] == "-10"  # signed, as every order_qty
    assert "0.5" in sell["remainder"]
    assert hold["held_qty"] == "0.5"
    assert "fractionable false" in hold["reason"]


@pytest.mark.asyncio
async def test_a_fraction_held_ends_its_hold_once_closed_at_the_venue(tmp_path: Path) -> None:
    # the half share the venue would not sell is held; the operator closes it at the venue
    # and the view goes flat: the hold is over, and journaled as over
    fake = FakeAlpacaTrading(now=OPEN).start()
    fake.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    fake.assets["AAPL"] = {"fractionable": False}
    fake.positions["AAPL"] = [Decimal("0.5"), Decimal(100)]
    fake.cash -= Decimal("0.5") * 100
    journal = tmp_path / "j.sqlite"
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(fake.url, journal, OPEN, -1.0, REGIME, cfg, (10_000, 10_000))
    try:
        await engine.cycle(ctx)
        del fake.positions["AAPL"]  # DELETE /v2/positions/AAPL, by the operator
        ctx.now = fake.now = OPEN + timedelta(minutes=5)
        ctx.aggregator.value = 0.0
        await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        fake.stop()
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT action, reasoning FROM decisions WHERE symbol = 'AAPL' ORDER BY ts, rowid"
        ).fetchall()
    assert [action for action, _ in rows] == ["hold", "hold_ended"]
    ended = json.loads(rows[1][1])
    assert "fractionable false" in ended["hold"]["reason"]
    assert ended["reason"] == "hold: at its target of 0 shares"
