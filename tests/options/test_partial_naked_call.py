"""A bear call whose long leg is gone leaves a naked short call: it is closed at once.

On SimBroker over the real SPY chain of 2023-09-14 (``fakes.options_world``): the spread is
opened on the simulated exchange, then its long call is sold outside the engine. The book
reconciles the structure to the short call alone (``partial``); no cash can back a call
sold without its cover, so the same cycle buys it back at the natural price, and a person is
told. Reference: the simulated exchange's own order list and positions.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fakes.options_world import make_world, otm_strip
from v28quant.broker import Leg, OrderRequest, Owner
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)


@pytest.mark.asyncio
async def test_a_naked_short_call_left_by_a_bear_call_is_bought_back_at_once(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways")
    expiry, calls = await otm_strip(ctx, "call", 0.03)
    short, long_ = calls.iloc[0], calls.iloc[1]
    opened = await ctx.broker.submit(
        OrderRequest.multileg(
            [Leg(short, 1, "sell", "sell_to_open"), Leg(long_, 1, "buy", "buy_to_open")],
            1,
            Decimal("-0.01"),
            owner=Owner("options", "bear_call", "partial-open"),
        )
    )
    assert opened.status.value == "filled", opened
    # booked as the engine books its fills: each leg's own entry price
    eng = OptionsEngine(None, book_path=tmp_path / "book.json")
    eng._book_of(ctx).opened(
        Held(
            "SPY-bear_call-test", "bear_call", "SPY", pd.Timestamp(expiry).date(),
            {short: -1, long_: 1}, 1, float(opened.filled_avg_price or 0), 500.0, START,
            opened.client_order_id,
            leg_entry={g.symbol: float(g.filled_avg_price or 0) for g in opened.legs},
        )
    )  # fmt: skip
    sold = await ctx.broker.submit(
        OrderRequest.option(
            long_, 1, "sell", "sell_to_close", owner=Owner("manual", "person", "sell-long")
        )
    )
    assert sold.status.value == "filled", sold
    assert {p.symbol: int(p.qty) for p in await ctx.broker.positions()} == {short: -1}
    await eng.premarket(ctx)
    await eng.cycle(ctx)
    ours = {opened.client_order_id, sold.client_order_id}
    orders = [o for o in await ctx.broker.orders("all") if o.client_order_id not in ours]
    (close,) = [o for o in orders if short in {o.symbol, *(g.symbol for g in o.legs or [])}]
    assert (close.symbol, close.side, close.intent) == (short, "buy", "buy_to_close"), close
    quote = await ctx.feed.quote(short)
    assert Decimal(str(close.limit_price)) >= quote.ask  # at the natural: marketable
    assert any("naked" in n.lower() for n in ctx.notifier.notices), ctx.notifier.notices
