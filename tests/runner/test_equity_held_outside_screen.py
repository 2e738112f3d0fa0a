"""Held stocks the engine has no fresh mandate on: dropped by the CAPM screen, or left unmodelled.

A held symbol the CAPM screen dropped from the universe is only held or reduced (its exits
still run), never added to. A held symbol no model covers (no signals: its data went missing)
is held, with its reason in the cycle's details and the journal. Reference: the loopback
fake exchange's own record of the orders it was sent, and the journal read with sqlite3.
"""

from __future__ import annotations

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
from v28quant.journal import Journal
from v28quant.signals import RegimeState

REGIME = RegimeState("bull_quiet", {"bull_quiet": 1.0}, "test", OPEN)
HELD = Decimal(30)


@pytest.fixture
def trading() -> Iterator[FakeAlpacaTrading]:
    """Yield the fake holding 30 AAPL at 100.00, quoted 99.99 x 100.01."""
    fake = FakeAlpacaTrading(now=OPEN).start()
    fake.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    fake.positions["AAPL"] = [HELD, Decimal(100)]
    fake.cash -= HELD * 100
    try:
        yield fake
    finally:
        fake.stop()


async def _one_cycle(
    trading: FakeAlpacaTrading, journal: Path, value: float | None, screened: list[str]
) -> tuple[list[Any], dict[str, Any]]:
    """Run one cycle on an AAPL view of ``value``; return the orders posted and the details."""
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(trading.url, journal, OPEN, value, REGIME, cfg, (10_000, 10_000))
    engine.screened = screened
    try:
        report = await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
    posts = [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]
    return posts, dict(report.details)


@pytest.mark.asyncio
async def test_a_held_symbol_dropped_by_the_screen_is_not_bought_more(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # A full long view would take AAPL from 30 shares to the 0.10 cap (~99 shares); dropped by
    # the screen, it keeps its 30 and no order reaches the venue.
    posts, details = await _one_cycle(trading, tmp_path / "j.sqlite", 1.0, screened=[])
    assert posts == []
    assert details["AAPL"].startswith("hold: dropped by the CAPM screen"), details
    assert trading.positions["AAPL"][0] == HELD


@pytest.mark.asyncio
async def test_a_held_symbol_dropped_by_the_screen_still_exits(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # A full short view without shorting: the target is flat, so the 30 shares are sold.
    posts, details = await _one_cycle(trading, tmp_path / "j.sqlite", -1.0, screened=[])
    assert [(p["symbol"], p["side"], p["qty"]) for p in posts] == [("AAPL", "sell", float(HELD))]
    assert details["AAPL"].startswith("sell 30"), details


@pytest.mark.asyncio
async def test_a_held_symbol_no_model_covers_is_held_with_its_reason(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # ``value=None``: the aggregator has no view of AAPL at all (no model gave a signal).
    journal = tmp_path / "j.sqlite"
    posts, details = await _one_cycle(trading, journal, None, screened=["AAPL"])
    assert posts == []
    assert details["AAPL"].startswith("hold: no model"), details
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT action, reasoning FROM decisions WHERE symbol = 'AAPL' AND engine = 'equity'"
        ).fetchall()
    assert [action for action, _ in rows] == ["hold"]
    reasoning = json.loads(rows[0][1])
    assert reasoning["held_qty"] == str(HELD)
    assert "no model" in reasoning["reason"]
    with Journal(journal) as j:  # the trader's ``v28quant why AAPL``
        lines = why(j, "AAPL", None)
    assert any("hold" in line and "no model" in line for line in lines), lines


@pytest.mark.asyncio
async def test_the_library_why_answers_a_hold_as_the_command_does(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # AAPL never had an aggregate: the journal's only word on it is the engine's hold
    journal = tmp_path / "j.sqlite"
    await _one_cycle(trading, journal, None, screened=["AAPL"])
    with sqlite3.connect(journal) as db:
        assert db.execute("SELECT COUNT(*) FROM aggregates").fetchone() == (0,)
        ((decision_id, reasoning),) = db.execute(
            "SELECT decision_id, reasoning FROM decisions WHERE symbol = 'AAPL'"
        ).fetchall()
    with Journal(journal) as j:
        answer = j.why("AAPL")
        lines = why(j, "AAPL", None)
    assert answer["aggregate_ts"] is None
    assert [(d["decision_id"], d["action"]) for d in answer["decisions"]] == [(decision_id, "hold")]
    assert answer["decisions"][0]["reasoning"] == json.loads(reasoning)
    assert json.loads(reasoning)["reason"] in answer["text"]
    assert sum("hold" in line for line in lines) == 1, lines  # the command's answer, unchanged


@pytest.mark.asyncio
async def test_an_unmodelled_hold_is_journaled_once_a_session_and_detailed_every_cycle(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(trading.url, journal, OPEN, None, REGIME, cfg, (10_000, 10_000))
    details = []
    try:
        for minutes in (0, 5, 10, 15):
            ctx.now = OPEN + timedelta(minutes=minutes)
            if minutes == 10:  # shares sold outside the engine: the hold says something new
                trading.positions["AAPL"][0] = Decimal(20)
            details.append((await engine.cycle(ctx)).details["AAPL"])
        await engine.end_of_day(ctx)
        ctx.now = OPEN + timedelta(days=1)  # the next session says it again, once
        details.append((await engine.cycle(ctx)).details["AAPL"])
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
    assert all(d.startswith("hold: no model") for d in details), details
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT ts FROM decisions WHERE symbol = 'AAPL' AND action = 'hold' ORDER BY ts"
        ).fetchall()
    assert [datetime.fromisoformat(ts) - OPEN for (ts,) in rows] == [
        timedelta(0),
        timedelta(minutes=10),
        timedelta(days=1),
    ]


def _holds_and_ends(journal: Path) -> list[tuple[timedelta, str]]:
    """Return the journal's holds of AAPL and their ends: (time after the open, action)."""
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT ts, action FROM decisions WHERE symbol = 'AAPL' "
            "AND action IN ('hold', 'hold_ended') ORDER BY ts, rowid"
        ).fetchall()
    return [(datetime.fromisoformat(ts) - OPEN, action) for ts, action in rows]


@pytest.mark.asyncio
async def test_an_unmodelled_hold_ends_when_a_model_covers_the_stock_again(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # two cycles with no view of AAPL, then a full long view: the hold is over, and the
    # trader's why no longer gives it as the reason in force
    journal = tmp_path / "j.sqlite"
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(trading.url, journal, OPEN, None, REGIME, cfg, (10_000, 10_000))
    try:
        for minutes in (0, 5, 10):
            ctx.now = OPEN + timedelta(minutes=minutes)
            ctx.aggregator.value = 1.0 if minutes == 10 else None
            await engine.cycle(ctx)
        lines = why(ctx.journal, "AAPL", None)
        earlier = why(ctx.journal, "AAPL", OPEN + timedelta(minutes=5))
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
    assert _holds_and_ends(journal) == [
        (timedelta(0), "hold"),
        (timedelta(minutes=10), "hold_ended"),
    ]
    assert not any("equity hold" in line for line in lines), lines
    assert any("equity hold" in line and "no model" in line for line in earlier), earlier


@pytest.mark.asyncio
async def test_an_unmodelled_hold_ends_when_the_stock_is_no_longer_held(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # AAPL unscreened and unmodelled, then sold outside the engine: nothing holds any more,
    # and with no aggregate ever journaled the library's why has nothing in force to tell
    journal = tmp_path / "j.sqlite"
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(trading.url, journal, OPEN, None, REGIME, cfg, (10_000, 10_000))
    engine.screened = []
    try:
        await engine.cycle(ctx)
        del trading.positions["AAPL"]
        ctx.now = OPEN + timedelta(minutes=5)
        await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
    assert _holds_and_ends(journal) == [
        (timedelta(0), "hold"),
        (timedelta(minutes=5), "hold_ended"),
    ]
    with Journal(journal) as j:
        with pytest.raises(LookupError, match="nor a hold in force"):
            j.why("AAPL")
        held_then = j.why("AAPL", OPEN)
        lines = why(j, "AAPL", None)
    assert "no model" in held_then["text"]
    assert not any("equity hold" in line for line in lines), lines
