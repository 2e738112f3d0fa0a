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
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import hold_bull_put, make_world
from v28quant.broker import Owner
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine

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
    eng = OptionsEngine(cfg, book_path=tmp_path / "book.json")
    await hold_bull_put(ctx, eng, OWN, AT)
    await eng.premarket(ctx)
    await eng.cycle(ctx)
    ours = [o for o in await ctx.broker.orders("all") if o.client_order_id != OWN.client_order_id]
    intents = [{leg.intent for leg in o.legs} for o in ours]
    assert all(i <= {"buy_to_close", "sell_to_close"} for i in intents), intents
    assert len(ours) == closes
