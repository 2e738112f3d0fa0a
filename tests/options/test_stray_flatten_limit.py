"""Selling the shares a spread's assignment left is cut at the limit, and goes once, not lost.

The options engine sells the stock an assigned short put of a bull put delivered (100 shares
the spread never wanted). With a keyed venue each of its looks is cut at ``[runner]
cycle_limit_seconds``; this send must be too, or a venue that holds it holds the engine's
pre-market job, and with it the day's cycles. A cut send goes on in the background: the next
try must see it and send nothing; a flatten cut before it left must still go at the next try.
On SimBroker over the real SPY history (``fakes.options_world``), its submit or its positions
held until the test lets them through. Reference: the simulated exchange's own orders.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import make_world
from v28quant.broker.base import Activity, Order, OrderRequest
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held
from v28quant.premarket import PremarketReadTimeout

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
SHORT_PUT = "SPY230929P00440000"
LONG_PUT = "SPY230929P00430000"
LIMIT_S = 0.2


def _engine_with_a_bull_put_assigned(tmp_path: Path, ctx: Any) -> OptionsEngine:
    """Return an engine holding one bull put whose short put the venue lists as assigned."""
    eng = OptionsEngine(None, book_path=tmp_path / "book.json")
    book = eng._book_of(ctx)
    book.opened(
        Held("bp", "bull_put", "SPY", date(2023, 9, 29), {SHORT_PUT: -1, LONG_PUT: 1}, 1, -1.2,
             880.0, START, "bp-cid")
    )  # fmt: skip
    book.save()
    assigned = Activity("a1", "OPASN", SHORT_PUT, Decimal(1), None, START)

    async def activities(since: datetime | None = None) -> list[Activity]:
        return [assigned]

    ctx.broker.activities = activities
    return eng


def _count_sends(ctx: Any) -> list[OrderRequest]:
    """Return the list the order requests the venue receives are appended to."""
    received: list[OrderRequest] = []
    submit = ctx.broker.submit

    async def counted_submit(request: OrderRequest) -> Order:
        received.append(request)
        return await submit(request)

    ctx.broker.submit = counted_submit
    return received


@pytest.mark.asyncio
async def test_a_held_send_of_the_stray_shares_is_cut_and_never_sent_twice(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx = make_world(tmp_path, shared_data, START)
    eng = _engine_with_a_bull_put_assigned(tmp_path, ctx)
    land = asyncio.Event()
    submit = ctx.broker.submit

    async def held_submit(request: OrderRequest) -> Order:
        await land.wait()  # the venue takes the request only when the test lets it
        return await submit(request)

    ctx.broker.submit = held_submit
    sent = _count_sends(ctx)  # counted as they reach the venue, before it holds them
    with pytest.raises(PremarketReadTimeout, match="no answer within"):
        async with asyncio.timeout(5):  # only ends a wait the engine's own limit missed
            await eng._activities(ctx, eng._book_of(ctx), LIMIT_S)

    await eng._activities(ctx, eng._book_of(ctx))  # the next try, the first send still going
    land.set()
    for _ in range(200):  # the cut send goes on in the background until the venue answers
        if not ctx.executor.sending():
            break
        await asyncio.sleep(0.01)
    await eng._activities(ctx, eng._book_of(ctx))  # and a try after it landed
    restarted = OptionsEngine(None, book_path=tmp_path / "book.json")
    await restarted._activities(ctx, restarted._book_of(ctx))

    (sold,) = sent
    assert (sold.symbol, sold.side, sold.qty) == ("SPY", "sell", Decimal(100))


@pytest.mark.asyncio
async def test_a_stray_flatten_cut_before_it_was_sent_goes_at_the_next_try(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx = make_world(tmp_path, shared_data, START)
    eng = _engine_with_a_bull_put_assigned(tmp_path, ctx)
    sent = _count_sends(ctx)
    answer = asyncio.Event()
    positions = ctx.broker.positions

    async def held_positions() -> Any:
        await answer.wait()  # the venue says nothing until the test lets it
        return await positions()

    ctx.broker.positions = held_positions
    with pytest.raises(PremarketReadTimeout, match="positions"):
        async with asyncio.timeout(5):
            await eng._activities(ctx, eng._book_of(ctx), LIMIT_S)
    assert sent == []

    answer.set()
    await eng._activities(ctx, eng._book_of(ctx))  # the next cycle

    (sold,) = sent
    assert (sold.symbol, sold.side, sold.qty) == ("SPY", "sell", Decimal(100))
