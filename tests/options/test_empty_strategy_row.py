"""An empty strategy row opens nothing in its regime, yet keeps managing what is open.

SPY holds a bull put spread that the stop (``stop_loss_credit``, set low) closes at 10:00; QQQ
holds nothing. With ``sideways = []`` the regime's row offers no strategy, so the cycle must
close SPY's spread at its stop and open nothing anywhere, unlike the ``close`` row, which
closes every structure whatever its P&L.

Independent reference: the simulated exchange's own order list.
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
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held

ET = ZoneInfo("America/New_York")
DAY = date(2023, 3, 1)
AT = datetime.combine(DAY, dtime(10, 0), ET)
OWN = Owner("options", "bull_put", "test-open")


@pytest.mark.asyncio
@pytest.mark.parametrize(("stop", "closes"), [(0.05, 1), (50.0, 0)])
async def test_an_empty_row_closes_only_at_the_exits_and_opens_nothing(
    tmp_path: Path, shared_data: Path, stop: float, closes: int
) -> None:
    cfg = OptionsConfig.load(
        None, {"strategies": {"sideways": []}, "exits": {"stop_loss_credit": stop}}
    )
    ctx = make_world(tmp_path, shared_data, AT, symbols=("SPY", "QQQ"))
    chain = await ctx.feed.option_chain("SPY")
    spot = float((await ctx.feed.quote("SPY")).mid)
    expiry = min(e for e in set(chain["expiry"]) if (e.date() - DAY).days >= 21)
    puts = chain[
        (chain["expiry"] == expiry) & (chain["type"] == "put") & (chain["strike"] <= spot * 0.97)
    ].sort_values("strike")
    legs = {puts["symbol"].iloc[-1]: -1, puts["symbol"].iloc[-2]: 1}
    opened = await ctx.broker.submit(
        OrderRequest.multileg(
            [
                Leg(s, 1, "buy" if q > 0 else "sell", "buy_to_open" if q > 0 else "sell_to_open")
                for s, q in legs.items()
            ],
            1,
            Decimal("-0.01"),
            owner=OWN,
        )
    )
    assert opened.status.value == "filled", opened
    eng = OptionsEngine(cfg, book_path=tmp_path / "book.json")
    eng._book_of(ctx).opened(
        Held(
            "SPY-bull_put-test", "bull_put", "SPY", pd.Timestamp(expiry).date(), legs, 1,
            float(opened.filled_avg_price or 0), 500.0, AT, opened.client_order_id,
        )
    )  # fmt: skip
    await eng.premarket(ctx)
    await eng.cycle(ctx)
    ours = [o for o in await ctx.broker.orders("all") if o.client_order_id != OWN.client_order_id]
    intents = [{leg.intent for leg in o.legs} for o in ours]
    assert all(i <= {"buy_to_close", "sell_to_close"} for i in intents), intents
    assert len(ours) == closes
