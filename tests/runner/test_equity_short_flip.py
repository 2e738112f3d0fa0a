"""Shorts: a long turns short in two orders, never one; no short sale without allow_short.

Alpaca refuses a sell larger than the long it closes (403 "insufficient qty available for
order"): one order may not cross zero. With shorting allowed the engine closes the long first
and sells the short once the position is flat, the next cycle. With ``[equity] allow_short``
false a short view sells nothing and says why; so does a short sale the venue would refuse
every cycle (an account that may not short, a stock it does not lend). Reference: the fake
exchange's own record of the orders it was sent, what it answered each, and its positions.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.equity_world import aapl_engine
from fakes.fixtures import OPEN
from v28quant.cli import why
from v28quant.config import load_config
from v28quant.equity.engine import EquityEngine
from v28quant.signals import RegimeState

REGIME = RegimeState("bear_quiet", {"bear_quiet": 1.0}, "test", OPEN)
HELD = Decimal(30)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, Any, EquityEngine]]:
    """Yield a margin account on the fake holding 30 AAPL long, a context and the engine."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.shorting_enabled = True
    trading.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    trading.positions["AAPL"] = [HELD, Decimal(100)]
    trading.cash -= HELD * 100
    cfg = dataclasses.replace(load_config()[1].equity, allow_short=True)
    ctx, engine = aapl_engine(
        trading.url, tmp_path / "journal.sqlite", OPEN, -1.0, REGIME, cfg, (10_000, 10_000)
    )
    journal = ctx.journal
    try:
        yield trading, ctx, engine
    finally:
        journal.close()
        trading.stop()


@pytest.mark.asyncio
async def test_a_long_turns_short_by_a_close_then_a_short_sale(
    world: tuple[FakeAlpacaTrading, Any, EquityEngine],
) -> None:
    trading, ctx, engine = world
    try:
        await engine.cycle(ctx)
        flat = dict(trading.positions)
        ctx.now = OPEN + timedelta(minutes=5)
        await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
    posts = [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]
    answers = [s for m, p, s, _ in trading.responses if (m, p) == ("POST", "/v2/orders")]
    assert answers == [200, 200], (posts, trading.responses)
    close, short = posts
    assert (close["side"], close["qty"]) == ("sell", float(HELD))  # the long, and no more
    assert "AAPL" not in flat  # flat after the first cycle
    # the short sale is the whole target, -0.10 (max_weight) of the equity at the 100.00 mid
    # in whole shares: cash 100,000 - 30 x 100 + 30 x 99.99 (the bid) = 99,999.70, so 99 shares
    assert (short["side"], short["qty"]) == ("sell", 99.0)
    assert trading.positions["AAPL"][0] == -99


@pytest.mark.asyncio
async def test_a_short_view_without_allow_short_sells_nothing_and_says_why(
    tmp_path: Path,
) -> None:
    # [equity] allow_short = false (the default): flat, a full short view orders nothing
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.shorting_enabled = True  # the venue would take it: the refusal is the settings'
    trading.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    cfg = load_config()[1].equity
    assert cfg.allow_short is False
    ctx, engine = aapl_engine(
        trading.url, tmp_path / "journal.sqlite", OPEN, -1.0, REGIME, cfg, (10_000, 10_000)
    )
    try:
        report = await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        trading.stop()
    assert [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")] == []
    assert "AAPL" not in trading.positions
    detail = report.details["AAPL"]
    assert detail.startswith("hold: a short view (aggregate -1.00)"), detail
    assert "allow_short is false" in detail, detail


@pytest.mark.asyncio
async def test_no_short_sale_is_sent_from_an_account_that_may_not_short(tmp_path: Path) -> None:
    # allow_short, but a cash account (Alpaca's shorting_enabled false) would have the venue
    # refuse the short sale (403) every cycle: the engine holds and says why instead
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    cfg = dataclasses.replace(load_config()[1].equity, allow_short=True)
    ctx, engine = aapl_engine(
        trading.url, tmp_path / "journal.sqlite", OPEN, -1.0, REGIME, cfg, (10_000, 10_000)
    )
    details = []
    try:
        for minutes in (0, 5):
            ctx.now = OPEN + timedelta(minutes=minutes)
            details.append((await engine.cycle(ctx)).details["AAPL"])
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        trading.stop()
    assert [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")] == []
    assert all(d.startswith("hold: the account may not sell short") for d in details), details


@pytest.mark.asyncio
@pytest.mark.parametrize("flag", ["shortable", "easy_to_borrow"])
async def test_no_short_sale_of_a_stock_the_venue_will_not_lend(tmp_path: Path, flag: str) -> None:
    # a margin account, but AAPL is not shortable, or hard to borrow: Alpaca's Trading API
    # would refuse the short sale (403 "cannot be sold short") every cycle
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.shorting_enabled = True
    trading.assets["AAPL"] = {flag: False}
    trading.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    cfg = dataclasses.replace(load_config()[1].equity, allow_short=True)
    ctx, engine = aapl_engine(
        trading.url, tmp_path / "journal.sqlite", OPEN, -1.0, REGIME, cfg, (10_000, 10_000)
    )
    try:
        report = await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        trading.stop()
    assert [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")] == []
    detail = report.details["AAPL"]
    assert detail.startswith("hold: the venue will not lend AAPL for a short sale"), detail
    assert f"{flag} false" in detail, detail


@pytest.mark.asyncio
async def test_a_refused_short_sale_is_journaled_for_why_once_per_change(tmp_path: Path) -> None:
    # a cash account for two cycles, then a margin account whose venue does not lend AAPL: two
    # reasons, each journaled as a hold once, and the trader's why gives the one in force
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    trading.assets["AAPL"] = {"easy_to_borrow": False}
    journal = tmp_path / "journal.sqlite"
    cfg = dataclasses.replace(load_config()[1].equity, allow_short=True)
    ctx, engine = aapl_engine(trading.url, journal, OPEN, -1.0, REGIME, cfg, (10_000, 10_000))
    try:
        for minutes in (0, 5, 10, 15):
            ctx.now = OPEN + timedelta(minutes=minutes)
            trading.shorting_enabled = minutes >= 10
            await engine.cycle(ctx)
        lines = why(ctx.journal, "AAPL", None)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        trading.stop()
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT ts, reasoning FROM decisions WHERE symbol = 'AAPL' AND action = 'hold' "
            "ORDER BY ts"
        ).fetchall()
    assert [datetime.fromisoformat(ts) - OPEN for ts, _ in rows] == [
        timedelta(0),
        timedelta(minutes=10),
    ]
    reasons = [json.loads(r)["reason"] for _, r in rows]
    assert reasons[0].startswith("the account may not sell short"), reasons
    assert reasons[1].startswith("the venue will not lend AAPL for a short sale"), reasons
    assert any("equity hold" in line and "will not lend AAPL" in line for line in lines), lines


@pytest.mark.asyncio
async def test_a_refused_short_sale_hold_ends_when_the_venue_allows_it(tmp_path: Path) -> None:
    # a cash account for two cycles, then a margin account: the short sale goes, the hold is
    # over, and the trader's why no longer gives the cash account as the reason in force
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    journal = tmp_path / "journal.sqlite"
    cfg = dataclasses.replace(load_config()[1].equity, allow_short=True)
    ctx, engine = aapl_engine(trading.url, journal, OPEN, -1.0, REGIME, cfg, (10_000, 10_000))
    try:
        for minutes in (0, 5, 10):
            ctx.now = OPEN + timedelta(minutes=minutes)
            trading.shorting_enabled = minutes >= 10
            await engine.cycle(ctx)
        lines = why(ctx.journal, "AAPL", None)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        trading.stop()
    # the short sale the venue now takes: 0.10 of the 100,000 equity at the 100.00 mid
    assert trading.positions["AAPL"][0] == -100
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT ts, action, reasoning FROM decisions WHERE symbol = 'AAPL' "
            "AND action IN ('hold', 'hold_ended') ORDER BY ts, rowid"
        ).fetchall()
    assert [(datetime.fromisoformat(ts) - OPEN, action) for ts, action, _ in rows] == [
        (timedelta(0), "hold"),
        (timedelta(minutes=10), "hold_ended"),
    ]
    ended = json.loads(rows[1][2])
    assert ended["hold"]["reason"].startswith("the account may not sell short"), ended
    assert not any("equity hold" in line for line in lines), lines


@pytest.mark.asyncio
async def test_a_short_view_without_allow_short_is_journaled_for_why_once(tmp_path: Path) -> None:
    # flat, allow_short false (the default): three cycles of short views, the last weaker; the
    # hold is journaled once, naming the setting, and the trader's why gives it
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.shorting_enabled = True  # the venue would take it: the refusal is the settings'
    trading.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    journal = tmp_path / "journal.sqlite"
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(trading.url, journal, OPEN, -1.0, REGIME, cfg, (10_000, 10_000))
    try:
        for minutes, value in ((0, -1.0), (5, -1.0), (10, -0.6)):
            ctx.now = OPEN + timedelta(minutes=minutes)
            ctx.aggregator.value = value
            await engine.cycle(ctx)
        lines = why(ctx.journal, "AAPL", None)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        trading.stop()
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT ts, reasoning FROM decisions WHERE symbol = 'AAPL' AND action = 'hold'"
        ).fetchall()
    assert [datetime.fromisoformat(ts) - OPEN for ts, _ in rows] == [timedelta(0)]
    hold = json.loads(rows[0][1])
    assert "[equity] allow_short is false" in hold["reason"], hold
    assert hold["held_qty"] == "0"
    assert any("equity hold" in line and "allow_short is false" in line for line in lines), lines
