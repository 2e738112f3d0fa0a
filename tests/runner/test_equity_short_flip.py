"""With shorting allowed, the equity engine turns a long into a short in two orders, never one.

Alpaca refuses a sell larger than the long it closes (403 "insufficient qty available for
order"): one order may not cross zero. The engine closes the long first and sells the short
once the position is flat, the next cycle. Reference: the fake exchange's own record of the
orders it was sent, what it answered each, and its positions.
"""

from __future__ import annotations

import dataclasses
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

REGIME = RegimeState("bear_quiet", {"bear_quiet": 1.0}, "test", OPEN)
HELD = Decimal(30)


class Garch:
    """A source that only gives AAPL a GARCH vol at the 0.15 target: weight -1.0, capped."""

    name = "garch"

    def __init__(self) -> None:
        self.vol = {"AAPL": 0.15}

    def signals(self, view: MarketView) -> list[Any]:
        return []


class Sell:
    """An aggregator whose AAPL view is a full-confidence sell."""

    min_confidence = 0.0

    def aggregate(self, signals: Any, regime: RegimeState, now: Any) -> dict[str, Aggregate]:
        return {"AAPL": Aggregate("AAPL", -1.0, 1.0, True, REGIME, {"x": (-1.0, 1.0, 1.0)}, {})}


class Feed:
    """AAPL quoted 99.99 x 100.01, fresh at whatever time the context says."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    async def latest_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        q = Quote("AAPL", Decimal("99.99"), Decimal("100.01"), self.ctx.now, 10_000, 10_000)
        return {"AAPL": q}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, Any, EquityEngine]]:
    """Yield a margin account on the fake holding 30 AAPL long, a context and the engine."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.shorting_enabled = True
    trading.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    trading.positions["AAPL"] = [HELD, Decimal(100)]
    trading.cash -= HELD * 100
    broker = fake_broker(trading.url)
    journal = Journal(tmp_path / "journal.sqlite")
    ctx: Any = SimpleNamespace(
        now=OPEN,
        broker=broker,
        journal=journal,
        executor=Executor(broker, journal),
        aggregator=Sell(),
        regime=SimpleNamespace(state=REGIME, risk_multiplier=1.0),
        risk=RiskGate(RiskLimits.model_validate({}), journal),
        shared={},
        synthetic=False,
    )
    ctx.feed = Feed(ctx)
    cfg = dataclasses.replace(load_config()[1].equity, allow_short=True)
    engine = EquityEngine(cfg, sources=[Garch()])
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
async def test_a_long_turns_short_by_a_close_then_a_short_sale(
    world: tuple[FakeAlpacaTrading, Any, EquityEngine],
) -> None:
    trading, ctx, engine = world
    try:
        await engine.cycle(ctx)
        flat = dict(trading.positions)
        ctx.now = OPEN + timedelta(minutes=5)
        await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
    posts = [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]
    answers = [s for m, p, s, _ in trading.responses if (m, p) == ("POST", "/v2/orders")]
    assert answers == [200, 200], (posts, trading.responses)
    close, short = posts
    assert (close["side"], close["qty"]) == ("sell", float(HELD))  # the long, and no more
    assert "AAPL" not in flat  # flat after the first cycle
    # the short sale is the whole target, -0.10 (max_weight) of the equity at the 100.00 mid
    # in whole shares: cash 100,000 - 30 x 100 + 30 x 99.99 (the bid) = 99,999.70, so 99 shares
    assert (short["side"], short["qty"]) == ("sell", 99.0)
    assert trading.positions["AAPL"][0] == -99
