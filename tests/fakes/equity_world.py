"""An equity engine on one stock (AAPL at 100.00) against the loopback Alpaca fake.

The engine's sources and aggregator are stand-ins: GARCH gives AAPL a volatility at the 0.15
target (a full-confidence view sizes to the 0.10 position cap), and the aggregator returns one
full-confidence view of AAPL, a buy or a sell. What reaches the fake is then sized by hand.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
from v28quant.config import EquityConfig
from v28quant.equity.engine import EquityEngine
from v28quant.equity.sources import MarketView
from v28quant.execution import Executor
from v28quant.journal import Journal
from v28quant.quotes import Quote
from v28quant.risk import RiskGate
from v28quant.settings import RiskLimits
from v28quant.signals import Aggregate, RegimeState

from fakes.fixtures import fake_broker


class Garch:
    """A source that only gives AAPL a GARCH vol at the 0.15 target: weight +-1.0, capped."""

    name = "garch"

    def __init__(self) -> None:
        self.vol = {"AAPL": 0.15}

    def signals(self, view: MarketView) -> list[Any]:
        return []


class FullConfidence:
    """An aggregator whose AAPL view is ``value`` (+1 a buy, -1 a sell) at full confidence.

    ``value`` None: no view of AAPL at all, as when no model gave it a signal.
    """

    min_confidence = 0.0

    def __init__(self, value: float | None, regime: RegimeState) -> None:
        self.value, self.regime = value, regime

    def aggregate(self, signals: Any, regime: RegimeState, now: Any) -> dict[str, Aggregate]:
        v = self.value
        if v is None:
            return {}
        return {"AAPL": Aggregate("AAPL", v, 1.0, True, self.regime, {"x": (v, 1.0, 1.0)}, {})}


class Feed:
    """AAPL quoted 99.99 x 100.01 with the given sizes, fresh at whatever time ``ctx`` says."""

    def __init__(self, ctx: Any, bid_size: int, ask_size: int) -> None:
        self.ctx, self.sizes = ctx, (bid_size, ask_size)

    async def latest_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        bid, ask = Decimal("99.99"), Decimal("100.01")
        return {"AAPL": Quote("AAPL", bid, ask, self.ctx.now, *self.sizes)}


def aapl_engine(
    url: str,
    journal_path: Path,
    now: datetime,
    value: float | None,
    regime: RegimeState,
    config: EquityConfig,
    sizes: tuple[int, int],
) -> tuple[Any, EquityEngine]:
    """Return an engine context on the fake at ``url`` and the engine, AAPL screened.

    The caller closes ``ctx.journal``.
    """
    broker = fake_broker(url)
    journal = Journal(journal_path)
    ctx: Any = SimpleNamespace(
        now=now,
        broker=broker,
        journal=journal,
        executor=Executor(broker, journal),
        aggregator=FullConfidence(value, regime),
        regime=SimpleNamespace(state=regime, risk_multiplier=1.0),
        risk=RiskGate(RiskLimits.model_validate({}), journal),
        shared={},
        synthetic=False,
    )
    ctx.feed = Feed(ctx, *sizes)
    engine = EquityEngine(config, sources=[Garch()])
    days = pd.date_range(end=now.date(), periods=40, freq="B", tz="UTC")
    closes = pd.DataFrame({"AAPL": 100.0}, index=days)
    engine.view = MarketView(now, ["AAPL"], pd.DataFrame(), closes, "SPY", days[-1].to_pydatetime())
    engine.screened = ["AAPL"]
    return ctx, engine
