"""The runner's flatten on SimBroker: short option legs close first, the stock last.

A bull call spread and a covered call are opened on the real SPY chain of 2023-09-14; the
order in which the flatten's closing orders reached the venue is read from the journal with
sqlite3, and the simulated account's own positions say what is left.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import Ctx, make_world
from v28quant.broker.base import OrderRequest, Owner
from v28quant.broker.requests import Leg
from v28quant.execution import Decision
from v28quant.premarket import flatten
from v28quant.risk import FLATTEN, halt_state, record_control

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
LONG, SHORT, COVERED = "SPY231020C00450000", "SPY231020C00455000", "SPY231020C00460000"


async def _open_book(ctx: Ctx) -> None:
    """100 SPY, a bull call spread 450/455 and a covered call 460 against the shares."""
    owner = Owner("test", "setup", "shares")
    orders = [
        OrderRequest.equity("SPY", 100, "buy", owner=owner),
        OrderRequest.multileg(
            [Leg(LONG, 1, "buy", "buy_to_open"), Leg(SHORT, 1, "sell", "sell_to_open")],
            1,
            owner=Owner("test", "setup", "spread"),
        ),
        OrderRequest.option(
            COVERED, 1, "sell", "sell_to_open", owner=Owner("test", "setup", "covered")
        ),
    ]
    for req in orders:
        out = await ctx.executor.place(Decision(req, {"why": "test setup"}))
        assert out.status == "filled", (req.client_order_id, out)
    held = {p.symbol: int(p.qty) for p in await ctx.broker.positions()}
    assert held == {"SPY": 100, LONG: 1, SHORT: -1, COVERED: -1}
    record_control(ctx.journal, FLATTEN, "test", "operator", START)


@pytest.mark.asyncio
async def test_flatten_closes_short_legs_first_and_the_stock_last(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx = make_world(tmp_path, shared_data, START, snapshot=True)
    await _open_book(ctx)
    placed = await flatten(ctx)  # type: ignore[arg-type]
    assert placed == 4
    assert await ctx.broker.positions() == []
    db = sqlite3.connect(str(ctx.journal.path))
    sent = [
        r[0]
        for r in db.execute(
            "SELECT json_extract(request, '$.symbol') FROM orders"
            " WHERE strategy = 'flatten' ORDER BY rowid"
        ).fetchall()
    ]
    db.close()
    # both short calls bought back before the long call is sold; the shares go last
    assert sorted(sent[:2]) == sorted([SHORT, COVERED])
    assert sent[2:] == [LONG, "SPY"]
    assert not halt_state(ctx.journal).flatten_pending


@pytest.mark.asyncio
async def test_a_short_leg_left_open_keeps_what_covers_it(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short leg the venue will not buy back keeps what covers it; the flatten stays pending.

    The 455 call's close is refused: the 450 call covering it stays, and so do the shares
    (the covered call is bought back all the same).
    """
    from v28quant.broker.errors import OrderRejected

    ctx = make_world(tmp_path, shared_data, START, snapshot=True)
    await _open_book(ctx)
    submit = ctx.broker.submit

    async def refuse_short(req: OrderRequest) -> object:
        if req.symbol == SHORT:
            raise OrderRejected("test: no quote for the 455 call", status=422)
        return await submit(req)

    monkeypatch.setattr(ctx.broker, "submit", refuse_short)
    await flatten(ctx, fill_wait_s=0.0)  # type: ignore[arg-type]
    held = {p.symbol: int(p.qty) for p in await ctx.broker.positions()}
    assert held == {LONG: 1, SHORT: -1, "SPY": 100}
    assert halt_state(ctx.journal).flatten_pending
