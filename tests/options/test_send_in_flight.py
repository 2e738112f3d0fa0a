"""An opening order whose send outlived its cycle stays pending until the venue answers it.

A cycle cut off at ``[runner] cycle_limit_seconds`` leaves its order's send going on
(``Executor.place``). The next cycle follows the book's resting orders; one whose request the
venue has not taken yet is not at the venue, yet it was sent: dropping it as never sent would
free its reservation and, once the request lands, leave an order no structure owns. On
SimBroker over the real SPY chain of 2023-09-14 (``fakes.options_world``), its submit held until
the test lets it through. Reference: the simulated exchange's own orders.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fakes.options_world import make_world, otm_strip
from v28quant.broker import Leg, OrderRequest, Owner
from v28quant.execution import Decision
from v28quant.options.context import OptionsCycle
from v28quant.options.decisions import place_in_book
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Pending

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)


@pytest.mark.asyncio
async def test_an_order_still_being_sent_is_not_dropped_as_never_sent(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways")
    expiry, puts = await otm_strip(ctx, "put", 0.03)
    short, long_ = puts.iloc[-1], puts.iloc[-2]
    req = OrderRequest.multileg(
        [Leg(short, 1, "sell", "sell_to_open"), Leg(long_, 1, "buy", "buy_to_open")],
        1,
        Decimal("-0.01"),
        owner=Owner("options", "bull_put", "SPY-bull_put-in-flight"),
    )
    cid = req.client_order_id
    eng = OptionsEngine(None, book_path=tmp_path / "book.json")
    book = eng._book_of(ctx)
    pending = Pending(
        cid, "open", "SPY-bull_put-in-flight", "SPY", "bull_put", {short: -1, long_: 1},
        pd.Timestamp(expiry).date(), 500.0, ["-0.01"], 0, START,
    )  # fmt: skip

    # the venue takes the request only when the test lets it
    land = asyncio.Event()
    submit = ctx.broker.submit

    async def held_submit(request: OrderRequest) -> Any:
        await land.wait()
        return await submit(request)

    ctx.broker.submit = held_submit
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):  # the runner's cycle limit
            await place_in_book(book, pending, lambda: ctx.executor.place(Decision(req, {})))

    await eng._pending(ctx, book, {}, OptionsCycle("options", START))
    assert cid in book.pending  # still being sent: not dropped

    land.set()
    for _ in range(200):  # the send goes on in the background until the venue answers it
        if cid not in ctx.executor.sending():
            break
        await asyncio.sleep(0.01)
    order = await ctx.broker.order_by_client_id(cid)
    assert order is not None
    assert order.status.value == "filled", order
    await eng._pending(ctx, book, {}, OptionsCycle("options", START))
    assert [h.client_order_id for h in book.held.values()] == [cid]  # its fill is booked
    assert cid not in book.pending
