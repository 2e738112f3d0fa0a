"""The equity engine never stacks a new order on one of its own still working at Alpaca.

The engine sizes each order as target minus the broker's position. A market order partly
filled (the fake fills at most the quote's size per pass, as a thin book does) is still working
for the rest at the next cycle; an order that only added the shares not yet filled would buy
them twice. Reference: the fake exchange's own record of the orders it was sent and the
quantities by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker
from v28quant.config import load_config
from v28quant.equity.engine import EquityEngine
from v28quant.equity.sources import MarketView
from v28quant.execution import Executor
from v28quant.journal import Journal
from v28quant.quotes import Quote
from v28quant.risk import RiskGate
from v28quant.settings import RiskLimits
from v28quant.signals import Aggregate, RegimeState

REGIME = RegimeState("bull_quiet", {"bull_quiet": 1.0}, "test", OPEN)


class Garch:
    """A source that only gives AAPL a GARCH vol at the 0.15 target: weight 1.0, capped at 0.10."""

    name = "garch"

    def __init__(self) -> None:
        self.vol = {"AAPL": 0.15}

    def signals(self, view: MarketView) -> list[Any]:
        return []


class Buy:
    """An aggregator whose AAPL view is a full-confidence buy."""

    min_confidence = 0.0

    def aggregate(self, signals: Any, regime: RegimeState, now: Any) -> dict[str, Aggregate]:
        return {"AAPL": Aggregate("AAPL", 1.0, 1.0, True, REGIME, {"x": (1.0, 1.0, 1.0)}, {})}


class Feed:
    """AAPL quoted 99.99 x 100.01, fresh at whatever time the context says."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    async def latest_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        return {"AAPL": Quote("AAPL", Decimal("99.99"), Decimal("100.01"), self.ctx.now, 1000, 10)}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, Any, EquityEngine]]:
    """Yield the fake (AAPL ask size 10), an engine context on it and the engine."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "99.99", "100.01", 1000, 10)
    broker = fake_broker(trading.url)
    journal = Journal(tmp_path / "journal.sqlite")
    ctx: Any = SimpleNamespace(
        now=OPEN,
        broker=broker,
        journal=journal,
        executor=Executor(broker, journal),
        aggregator=Buy(),
        regime=SimpleNamespace(state=REGIME, risk_multiplier=1.0),
        risk=RiskGate(RiskLimits.model_validate({}), journal),
        shared={},
        synthetic=False,
    )
    ctx.feed = Feed(ctx)
    engine = EquityEngine(load_config()[1].equity, sources=[Garch()])
    days = pd.date_range(end=OPEN.date(), periods=40, freq="B", tz="UTC")
    closes = pd.DataFrame({"AAPL": 100.0}, index=days)
    engine.view = MarketView(
        OPEN, ["AAPL"], pd.DataFrame(), closes, "SPY", days[-1].to_pydatetime()
    )
    engine.screened = ["AAPL"]
    try:
        yield trading, ctx, engine
    finally:
        journal.close()
        trading.stop()


@pytest.mark.asyncio
async def test_a_partly_filled_buy_is_not_bought_again_next_cycle(
    world: tuple[FakeAlpacaTrading, Any, EquityEngine],
) -> None:
    """Target 0.10 x 100,000 / 100.00 = 100 shares; 10 fill, 90 keep working: no second buy."""
    trading, ctx, engine = world
    try:
        await engine.cycle(ctx)
        (first,) = trading.orders.values()
        assert (first["qty"], first["filled_qty"], first["status"]) == (
            "100",
            "10",
            "partially_filled",
        )
        ctx.now = OPEN + timedelta(minutes=5)
        report = await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
    posts = [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]
    assert [b["qty"] for b in posts] == [100]
    assert report.orders == 0
    assert "working" in report.details["AAPL"]
