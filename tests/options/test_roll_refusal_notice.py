"""A roll refused every cycle is said once per structure and reason; the journal keeps each.

A ``roll`` verdict retries every cycle, each time as a new order (its client order id has the
cycle's time stamp). SimBroker over the real SPY chain of 2023-09-14: a covered call rolls
into one that must reserve 100 shares, and the 100 shares held are reserved by the equity
engine, so the executor refuses the roll ("cannot reserve 100 shares of SPY: 0 free of 100
..."). Reference: the journal read with sqlite3 and the
notices a recording notifier received.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import book_short_call, notifying_world, order_rows
from v28quant.broker import OrderRequest, Owner
from v28quant.execution import Decision
from v28quant.journal.reservations import Claim
from v28quant.options import manage
from v28quant.options.config import OptionsConfig
from v28quant.options.context import OptionsCycle
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held
from v28quant.options.sizing import ZERO_GREEKS

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)


def start(tmp_path: Path, shared_data: Path) -> Any:
    """Return the world at START (a restart: the journal in ``tmp_path`` is kept), notifying."""
    return notifying_world(tmp_path, shared_data, START, snapshot=True, regime="bull_quiet")


async def buy_shares(ctx: Any, qty: int, decision_id: str) -> None:
    """Buy ``qty`` SPY shares for the equity engine on the simulated exchange."""
    buy = OrderRequest.equity("SPY", qty, "buy", owner=Owner("equity", "aggregate", decision_id))
    out = await ctx.executor.place(Decision(buy, {"why": "the equity engine's buy"}))
    await ctx.broker.process()
    assert (await ctx.executor.track(out.client_order_id, 0.0)).status.value == "filled"


async def covered_call(ctx: Any, eng: OptionsEngine) -> Held:
    """Book a covered call of 2023-09-29 (first strike above spot)."""
    return await book_short_call(
        ctx, eng, "2023-09-29", structure_id="cc-1", strategy="covered_call", entry_net=-2.0,
        max_loss=0.0, opened_at=START, client_order_id="cc-1-open",
    )  # fmt: skip


async def roll(ctx: Any, eng: OptionsEngine, h: Held, minutes: int) -> bool:
    """Try the roll of ``h`` in the cycle ``minutes`` after START; whether it was placed."""
    ctx.clock.set(START + timedelta(minutes=minutes))
    a, raw = await eng._analyse(ctx, "SPY", ctx.now)
    view = manage.leg_view(a, raw, h.legs, eng.cfg.rate).set_index("symbol")
    stamp = ctx.now.astimezone(ET).strftime("%Y%m%d%H%M")
    report = OptionsCycle("options", ctx.now)
    book = eng._book_of(ctx)
    return await manage._roll(eng, ctx, book, h, a, view, {}, stamp, report, ZERO_GREEKS)


def reserve_shares(ctx: Any) -> None:
    """Have the equity engine reserve 100 SPY shares (as for a sale it has decided)."""
    claim = Claim("shares", "SPY", Decimal(100))
    ctx.journal.hold_reservation("equity", "aggregate", "keep-100", claim, ctx.now)


def refusals(journal: Path) -> list[str]:
    """Return the journaled reasons of the roll orders of cc-1, oldest first."""
    rows = order_rows(journal, "roll:cc-1:")
    assert all(status == "refused" for status, _ in rows), rows
    return [reason for _, reason in rows]


async def covered_call_world(
    tmp_path: Path, shared_data: Path, decision_id: str, *, reserved: bool = True
) -> tuple[Any, OptionsEngine, Held]:
    """Return a world at START with 100 SPY shares (reserved by the equity engine) under cc-1."""
    ctx = start(tmp_path, shared_data)
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    await eng.premarket(ctx)
    await buy_shares(ctx, 100, decision_id)
    if reserved:
        reserve_shares(ctx)
    return ctx, eng, await covered_call(ctx, eng)


def said(ctx: Any) -> list[str]:
    """Return the notices of a refusal the recording notifier received."""
    return [n for n in ctx.notifier.notices if "refused" in n]


@pytest.mark.asyncio
async def test_a_roll_refused_every_cycle_is_said_once(tmp_path: Path, shared_data: Path) -> None:
    ctx, eng, h = await covered_call_world(tmp_path, shared_data, "spy-100")
    assert [await roll(ctx, eng, h, m) for m in (0, 5, 10)] == [False] * 3
    reasons = refusals(tmp_path / "journal.sqlite")
    assert len(reasons) == 3, reasons
    assert all(r.startswith("cannot reserve 100") for r in reasons), reasons
    notices = said(ctx)
    assert len(notices) == 1, notices
    assert "cc-1" in notices[0], notices
    assert "cannot reserve 100 shares of SPY" in notices[0], notices


@pytest.mark.asyncio
async def test_a_restart_does_not_say_a_roll_refusal_again(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx, eng, h = await covered_call_world(tmp_path, shared_data, "spy-100")
    assert not await roll(ctx, eng, h, 0)
    assert len(said(ctx)) == 1
    ctx.journal.close()
    ctx = start(tmp_path, shared_data)  # restarted: a new engine and executor, the same journal
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    await eng.premarket(ctx)
    await buy_shares(ctx, 100, "spy-100-again")  # a new simulated exchange; the reservation holds
    h = await covered_call(ctx, eng)
    assert not await roll(ctx, eng, h, 5)
    assert len(refusals(tmp_path / "journal.sqlite")) == 2
    assert said(ctx) == []


@pytest.mark.asyncio
async def test_a_roll_refused_for_the_same_reason_with_other_figures_is_not_said_again(
    tmp_path: Path, shared_data: Path
) -> None:
    # 50 more shares bought between the tries: 50 free of 150, still short of 100
    ctx, eng, h = await covered_call_world(tmp_path, shared_data, "spy-100")
    assert not await roll(ctx, eng, h, 0)
    ctx.clock.set(START + timedelta(minutes=3))  # the exchange fills the next market order later
    await buy_shares(ctx, 50, "spy-50")
    assert not await roll(ctx, eng, h, 5)
    first, second = refusals(tmp_path / "journal.sqlite")
    assert "0 free of 100" in first, first
    assert "50 free of 150" in second, second
    assert len(said(ctx)) == 1, said(ctx)


@pytest.mark.asyncio
async def test_a_roll_the_venue_rejects_every_cycle_is_said_once(
    tmp_path: Path, shared_data: Path
) -> None:
    # the shares are free, so the executor admits the roll; the call it buys back was never
    # sold at the simulated exchange, which rejects it (insufficient qty available) each cycle
    ctx, eng, h = await covered_call_world(tmp_path, shared_data, "spy-100", reserved=False)
    assert [await roll(ctx, eng, h, m) for m in (0, 5, 10)] == [False] * 3
    rows = order_rows(tmp_path / "journal.sqlite", "roll:cc-1:")
    assert [status for status, _ in rows] == ["rejected"] * 3, rows
    assert all("insufficient qty available" in reason for _, reason in rows), rows
    notices = [n for n in ctx.notifier.notices if "rejected" in n]
    assert len(notices) == 1, notices
    assert "cc-1" in notices[0], notices
