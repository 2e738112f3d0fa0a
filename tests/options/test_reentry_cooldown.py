"""No new structure on an underlying for a while after a stop loss closed one there.

SPY holds a bull put spread that the stop (``[options.exits] stop_loss_credit``, set low here)
closes at the 10:00 cycle; QQQ, on the same history, has nothing. The strategy table opens a
bull put wherever it can, so without a cooldown the 10:30 cycle opens SPY again at once.

Independent reference: the simulated exchange's own order list (what it received), and the
journal's decisions read with sqlite3.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import Ctx, hold_bull_put, make_world
from v28quant.broker import OrderRequest, Owner
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import WheelState
from v28quant.settings import SettingsError

ET = ZoneInfo("America/New_York")
DAY = date(2023, 3, 1)
STOPPED_AT = datetime.combine(DAY, dtime(10, 0), ET)
OWN_OPEN = Owner("options", "bull_put", "test-open")  # the spread the stop closes


def _config(**over: object) -> OptionsConfig:
    table = {"strategies": {"sideways": ["bull_put"]}, "exits": {"stop_loss_credit": 0.05}}
    return OptionsConfig.load(None, {**table, **over})


async def _stopped_out(tmp: Path, shared: Path, cfg: OptionsConfig) -> tuple[Ctx, OptionsEngine]:
    """Return the world after the 10:00 cycle, whose stop closed SPY's bull put."""
    ctx = make_world(tmp, shared, STOPPED_AT, symbols=("SPY", "QQQ"))
    eng = OptionsEngine(cfg, book_path=tmp / "book.json")
    await hold_bull_put(ctx, eng, OWN_OPEN, STOPPED_AT)
    await eng.premarket(ctx)
    await eng.cycle(ctx)
    stops = [r for r in _decisions(ctx) if r["reasoning"].get("rule") == "stop_loss"]
    assert len(stops) == 1, "the stop should have closed SPY's bull put at 10:00"
    return ctx, eng


def _decisions(ctx: Ctx, action: str | None = None) -> list[dict[str, Any]]:
    db = sqlite3.connect(str(ctx.journal.path))
    rows = db.execute(
        "SELECT decision_id, ts, symbol, action, reasoning FROM decisions ORDER BY ts, rowid"
    ).fetchall()
    db.close()
    out = [
        {"decision_id": r[0], "ts": datetime.fromisoformat(r[1]), "symbol": r[2], "action": r[3]}
        | {"reasoning": json.loads(r[4])}
        for r in rows
    ]
    return [r for r in out if action is None or r["action"] == action]


async def _openings(ctx: Ctx, root: str) -> list[Any]:
    """Return the engine's orders the exchange received that open contracts on ``root``."""
    return [
        o
        for o in await ctx.broker.orders("all")
        if o.client_order_id != OWN_OPEN.client_order_id
        and o.status.value != "replaced"  # a walked limit is one order, not two
        and any(leg.symbol.startswith(root) and leg.intent.endswith("_to_open") for leg in o.legs)
    ]


async def _cycle_at(ctx: Ctx, eng: OptionsEngine, at: datetime) -> None:
    ctx.clock.set(at)
    await ctx.broker.process()
    await eng.cycle(ctx)


@pytest.mark.asyncio
async def test_a_stop_loss_keeps_its_underlying_shut_for_the_rest_of_the_session(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx, eng = await _stopped_out(tmp_path, shared_data, _config())
    assert await _openings(ctx, "QQQ"), "QQQ, never stopped out, should open at 10:00"
    for hhmm in (dtime(10, 30), dtime(15, 30)):
        await _cycle_at(ctx, eng, datetime.combine(DAY, hhmm, ET))
    assert await _openings(ctx, "SPY") == []
    assert eng.book is not None
    assert not any(h.underlying == "SPY" for h in eng.book.held.values())
    cooling = _decisions(ctx, "cooldown")
    # from the stop's own cycle: its close was placed before the entries were tried
    spy = [r for r in cooling if r["symbol"] == "SPY"]
    assert [r["ts"].astimezone(ET).time() for r in spy] == [
        dtime(10, 0),
        dtime(10, 30),
        dtime(15, 30),
    ]
    stops = {
        r["decision_id"]: r["symbol"]
        for r in _decisions(ctx)
        if r["reasoning"].get("rule") == "stop_loss"
    }
    for r in spy:
        assert stops[r["reasoning"]["stop_loss_decision"]].startswith("SPY")
        assert datetime.fromisoformat(r["reasoning"]["until"]) == STOPPED_AT + timedelta(
            minutes=390
        )
    # QQQ cools off only after a stop of its own (its bull put can meet the low stop too)
    for r in cooling:
        assert stops[r["reasoning"]["stop_loss_decision"]].startswith(r["symbol"])


@pytest.mark.asyncio
async def test_the_underlying_opens_again_once_the_cooldown_has_passed(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx, eng = await _stopped_out(tmp_path, shared_data, _config(reentry_cooldown_minutes=60))
    await _cycle_at(ctx, eng, STOPPED_AT + timedelta(minutes=30))
    assert await _openings(ctx, "SPY") == []
    await _cycle_at(ctx, eng, STOPPED_AT + timedelta(minutes=60))
    (again,) = await _openings(ctx, "SPY")
    assert again.submitted_at >= STOPPED_AT + timedelta(minutes=60)
    cooling = [r["ts"].astimezone(ET).time() for r in _decisions(ctx, "cooldown")]
    assert cooling == [dtime(10, 0), dtime(10, 30)]


@pytest.mark.asyncio
async def test_the_default_cooldown_ends_with_the_session(
    tmp_path: Path, shared_data: Path
) -> None:
    """A stop at 10:00 leaves the next session's first cycle free to open again."""
    ctx, eng = await _stopped_out(tmp_path, shared_data, _config())
    await _cycle_at(ctx, eng, STOPPED_AT + timedelta(minutes=30))
    assert await _openings(ctx, "SPY") == []
    next_day = datetime.combine(date(2023, 3, 2), dtime(9, 45), ET)
    ctx.clock.set(next_day - timedelta(minutes=45))
    await ctx.broker.process()
    await eng.premarket(ctx)
    await _cycle_at(ctx, eng, next_day)
    assert len(await _openings(ctx, "SPY")) == 1


@pytest.mark.asyncio
async def test_the_cooldown_holds_after_a_restart(tmp_path: Path, shared_data: Path) -> None:
    """A new engine on the same journal and book still refuses SPY for the session."""
    cfg = _config()
    ctx, _ = await _stopped_out(tmp_path, shared_data, cfg)
    restarted = OptionsEngine(cfg, book_path=tmp_path / "book.json")
    ctx.clock.set(STOPPED_AT + timedelta(minutes=30))
    await restarted.premarket(ctx)
    await _cycle_at(ctx, restarted, STOPPED_AT + timedelta(minutes=30))
    assert await _openings(ctx, "SPY") == []
    cooling = [(r["symbol"], r["ts"]) for r in _decisions(ctx, "cooldown")]
    assert cooling[-1] == ("SPY", STOPPED_AT + timedelta(minutes=30))


def test_the_cooldown_setting_defaults_to_a_whole_session_and_is_checked() -> None:
    assert OptionsConfig.load().reentry_cooldown_minutes == 390  # 09:30-16:00
    assert OptionsConfig.load(None, {"reentry_cooldown_minutes": 0}).reentry_cooldown_minutes == 0
    for bad in (-5, 2.5, "30", True):
        with pytest.raises(SettingsError, match="reentry_cooldown_minutes: must be"):
            OptionsConfig.load(None, {"reentry_cooldown_minutes": bad})


@pytest.mark.asyncio
async def test_wheel_shares_are_still_covered_during_a_cooldown(
    tmp_path: Path, shared_data: Path
) -> None:
    """SPY's wheel holds 100 assigned shares: the cooldown refuses new spreads, not their call."""
    ctx, eng = await _stopped_out(tmp_path, shared_data, _config(wheel=True))
    assert eng.book is not None
    shares = await ctx.broker.submit(
        OrderRequest.equity("SPY", 100, "buy", owner=Owner("options", "venue", "opasn"))
    )
    await ctx.broker.process()
    assert shares.status.value in ("new", "accepted", "filled")
    eng.book.wheel["SPY"] = WheelState(stage="shares", shares=100, basis=380.0)
    await _cycle_at(ctx, eng, STOPPED_AT + timedelta(minutes=30))
    assert await _openings(ctx, "SPY") == []  # no spread
    calls = [
        o
        for o in await ctx.broker.orders("all")
        if re.fullmatch(r"SPY\d{6}C\d{8}", o.symbol or "") and o.side == "sell"
    ]
    assert len(calls) == 1, calls
    assert calls[0].submitted_at == STOPPED_AT + timedelta(minutes=30)
    (last,) = [r for r in _decisions(ctx, "cooldown") if r["ts"] == ctx.clock.now()]
    assert last["symbol"] == "SPY"
    assert last["reasoning"]["covered_call_on_wheel_shares"] is True
