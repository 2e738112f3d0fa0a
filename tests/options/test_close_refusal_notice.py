"""A close rejected every cycle is said once per structure and reason; the journal keeps each.

A close verdict stands from cycle to cycle, each try a new order (its client order id has the
cycle's time stamp). SimBroker over the real SPY chain of 2023-09-14: a covered call booked
here was never sold at the simulated exchange, so buying it back is rejected there
("insufficient qty available") each cycle. Reference: the journal read with sqlite3 and the
notices a recording notifier received.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import book_short_call, notifying_world, order_rows
from v28quant.options import manage
from v28quant.options.config import OptionsConfig
from v28quant.options.context import OptionsCycle
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)


def start(tmp_path: Path, shared_data: Path) -> Any:
    """Return the world at START (a restart: the journal in ``tmp_path`` is kept), notifying."""
    return notifying_world(tmp_path, shared_data, START, snapshot=True, regime="bull_quiet")


async def stopped_call(ctx: Any, eng: OptionsEngine) -> Held:
    """Book a short call of 2023-09-29 (first strike above spot) under a stop-loss close."""
    return await book_short_call(
        ctx, eng, "2023-09-29", structure_id="cc-1", strategy="covered_call", entry_net=-2.0,
        max_loss=0.0, opened_at=START - timedelta(days=3), client_order_id="cc-1-open",
        closing_rule="stop_loss",
    )  # fmt: skip


async def close(ctx: Any, eng: OptionsEngine, h: Held, minutes: int) -> None:
    """Manage ``h`` in the cycle ``minutes`` after START (its close verdict stands)."""
    ctx.clock.set(START + timedelta(minutes=minutes))
    a, raw = await eng._analyse(ctx, "SPY", ctx.now)
    report = OptionsCycle("options", ctx.now)
    await manage.manage_one(eng, ctx, eng._book_of(ctx), h, a, raw, "bull_quiet", report)


def rejections(journal: Path) -> list[str]:
    """Return the journaled reasons of the close orders of cc-1, oldest first."""
    rows = order_rows(journal, "close:cc-1:")
    assert all(status == "rejected" for status, _ in rows), rows
    return [reason for _, reason in rows]


def said(ctx: Any) -> list[str]:
    """Return the notices of a rejection the recording notifier received."""
    return [n for n in ctx.notifier.notices if "rejected" in n]


@pytest.mark.asyncio
async def test_a_close_rejected_every_cycle_is_said_once(tmp_path: Path, shared_data: Path) -> None:
    ctx = start(tmp_path, shared_data)
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    await eng.premarket(ctx)
    h = await stopped_call(ctx, eng)
    for minutes in (0, 5, 10):
        await close(ctx, eng, h, minutes)
    reasons = rejections(tmp_path / "journal.sqlite")
    assert len(reasons) == 3, reasons
    assert all("insufficient qty available" in r for r in reasons), reasons
    notices = said(ctx)
    assert len(notices) == 1, notices
    assert "cc-1" in notices[0], notices
    assert "insufficient qty available" in notices[0], notices


@pytest.mark.asyncio
async def test_a_restart_does_not_say_a_close_rejection_again(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx = start(tmp_path, shared_data)
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    await eng.premarket(ctx)
    h = await stopped_call(ctx, eng)
    await close(ctx, eng, h, 0)
    assert len(said(ctx)) == 1
    ctx.journal.close()
    ctx = start(tmp_path, shared_data)  # restarted: a new engine and executor, the same journal
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    await eng.premarket(ctx)
    h = await stopped_call(ctx, eng)
    await close(ctx, eng, h, 5)
    assert len(rejections(tmp_path / "journal.sqlite")) == 2
    assert said(ctx) == []
