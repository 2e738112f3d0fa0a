"""A held structure whose legs left the chain snapshot is still managed.

A chain snapshot lists the contracts quoted around the money; after a rally the put side of an
iron condor sits far below it and drops out, though the account still holds it and the venue
still quotes it. The engine marks such legs by their symbol, so the exit rules see the whole
structure: the call side deep in the money stops the condor out, where the structure used to be
left alone until its expiry settled it at the max loss.

Independent reference: the simulated exchange's own order list (what it received) and the
feed's chain, read directly to show the put legs are absent from it.
"""

from __future__ import annotations

from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fakes.options_world import make_world
from v28quant.broker import Leg, OrderRequest, Owner
from v28quant.calendar import default_calendar
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held

ET = ZoneInfo("America/New_York")
EXPIRY = date(2023, 3, 31)
CHECK_DAY = date(2023, 3, 22)


def _path() -> dict[str, float]:
    """SPY at 396, then a steady rally to 430 by the check day."""
    days = default_calendar().sessions(date(2023, 3, 1), CHECK_DAY)
    step = (430.0 - 396.0) / (len(days) - 1)
    return {d.isoformat(): round(396.0 + i * step, 2) for i, d in enumerate(days)}


def _condor_legs(chain: pd.DataFrame, spot: float) -> dict[str, int]:
    """Short call ~2% above spot and short put ~5% below, each with the next strike out."""
    exp = chain[chain["expiry"] == pd.Timestamp(EXPIRY)]
    calls = exp[(exp["type"] == "call") & (exp["strike"] >= spot * 1.02)].sort_values("strike")
    puts = exp[(exp["type"] == "put") & (exp["strike"] <= spot * 0.95)].sort_values("strike")
    return {
        calls["symbol"].iloc[0]: -1,
        calls["symbol"].iloc[1]: 1,
        puts["symbol"].iloc[-1]: -1,
        puts["symbol"].iloc[-2]: 1,
    }


@pytest.mark.asyncio
async def test_condor_with_put_legs_off_the_chain_is_stopped_out(
    tmp_path: Path, shared_data: Path
) -> None:
    start = datetime.combine(date(2023, 3, 1), dtime(9, 45), ET)
    ctx = make_world(tmp_path, shared_data, start, designed=_path())
    spot = float((await ctx.feed.quote("SPY")).mid)
    legs = _condor_legs(await ctx.feed.option_chain("SPY"), spot)
    opened = await ctx.broker.submit(
        OrderRequest.multileg(
            [
                Leg(s, 1, "buy" if q > 0 else "sell", "buy_to_open" if q > 0 else "sell_to_open")
                for s, q in legs.items()
            ],
            1,
            Decimal("-0.01"),  # any credit: fills at the legs' quotes
            owner=Owner("options", "iron_condor", "far-legs-open"),
        )
    )
    assert opened.status.value == "filled", opened
    cfg = OptionsConfig.load(None, {"max_open_structures": 1, "exits": {"stop_loss_credit": 1.0}})
    eng = OptionsEngine(cfg, book_path=tmp_path / "book.json")
    eng._book_of(ctx).opened(
        Held(
            "SPY-iron_condor-test",
            "iron_condor",
            "SPY",
            EXPIRY,
            legs,
            1,
            float(opened.filled_avg_price or 0),
            500.0,
            start,
            opened.client_order_id,
        )
    )

    ctx.clock.set(datetime.combine(CHECK_DAY, dtime(9, 0), ET))
    await ctx.broker.process()
    await eng.premarket(ctx)
    ctx.clock.set(datetime.combine(CHECK_DAY, dtime(9, 45), ET))
    await ctx.broker.process()
    chain = await ctx.feed.option_chain("SPY")
    puts = {s for s, _ in legs.items() if s[9] == "P"}
    assert not puts & set(chain["symbol"]), "the put legs should be off the chain by now"
    report = await eng.cycle(ctx)
    assert "errors" not in report.details, report.details

    closes = [
        o
        for o in await ctx.broker.orders("all")
        if o.order_class == "mleg" and o.client_order_id != opened.client_order_id
    ]
    assert closes, f"no order closed the condor; cycle: {report.details}"
    closing = {leg.symbol: (leg.side, leg.intent) for leg in closes[0].legs}
    assert closing == {
        s: ("sell" if q > 0 else "buy", "sell_to_close" if q > 0 else "buy_to_close")
        for s, q in legs.items()
    }
