"""The equity engine sizes a buy at the ask it pays, within its target and the order limits.

A market buy pays the ask, not the mid: sized at the mid it overshoots its target weight, and
the risk gate, checking the notional at the ask, can refuse it. Reference: the loopback fake
exchange's record of the orders it was sent, and hand arithmetic (equity $100,000, AAPL quoted
99.99 x 100.01, a full long view at the 0.10 position cap).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.equity_world import aapl_engine
from fakes.fixtures import OPEN
from v28quant.config import load_config
from v28quant.risk import HALT, RiskGate, record_control
from v28quant.settings import RiskLimits
from v28quant.signals import RegimeState

REGIME = RegimeState("bull_quiet", {"bull_quiet": 1.0}, "test", OPEN)
ASK = Decimal("100.01")


@pytest.fixture
def trading() -> Iterator[FakeAlpacaTrading]:
    """Yield the fake with $100,000 cash and no position, AAPL quoted 99.99 x 100.01."""
    fake = FakeAlpacaTrading(now=OPEN).start()
    fake.set_quote("AAPL", "99.99", str(ASK), 10_000, 10_000)
    try:
        yield fake
    finally:
        fake.stop()


async def _buys(trading: FakeAlpacaTrading, journal: Path, limits: dict[str, Any]) -> list[Any]:
    """Run one cycle on a full long AAPL view; return the orders posted to the fake."""
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(trading.url, journal, OPEN, 1.0, REGIME, cfg, (10_000, 10_000))
    ctx.risk = RiskGate(RiskLimits.model_validate(limits), ctx.journal)
    try:
        await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
    return [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]


@pytest.mark.asyncio
async def test_a_buy_costs_no_more_than_its_target_at_the_ask(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # target 0.10 x 100,000 = 10,000 dollars: 99 shares at 100.01 (9,900.99); 100 would cost
    # 10,001.00, over the target
    (order,) = await _buys(trading, tmp_path / "j.sqlite", {})
    assert (order["side"], order["qty"]) == ("buy", 99.0)
    assert Decimal(str(order["qty"])) * ASK <= Decimal(10_000)


@pytest.mark.asyncio
async def test_a_buy_is_cut_to_the_max_order_notional_at_the_ask(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # max_order_notional 5,000: 49 shares at 100.01 (4,900.49); 50 would be 5,000.50 at the
    # ask, refused by the gate. The rest of the target waits for later cycles.
    (order,) = await _buys(trading, tmp_path / "j.sqlite", {"max_order_notional": 5_000})
    assert (order["side"], order["qty"]) == ("buy", 49.0)
    assert Decimal(str(order["qty"])) * ASK <= Decimal(5_000)
    assert trading.positions["AAPL"][0] == 49


@pytest.mark.asyncio
async def test_a_buy_the_gate_denies_says_why_in_the_cycles_details(
    trading: FakeAlpacaTrading, tmp_path: Path
) -> None:
    # the operator's halt: the 99-share buy is denied, and the cycle's word on AAPL says so
    # with the reason the gate journaled (read with sqlite3)
    journal = tmp_path / "j.sqlite"
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(trading.url, journal, OPEN, 1.0, REGIME, cfg, (10_000, 10_000))
    record_control(ctx.journal, HALT, "earnings news", "operator", OPEN)
    try:
        report = await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
    with sqlite3.connect(journal) as db:
        ((reasoning,),) = db.execute(
            "SELECT reasoning FROM decisions WHERE symbol = 'AAPL' AND action = 'deny'"
        ).fetchall()
    reason = json.loads(reasoning)["reason"]
    assert "earnings news" in reason
    assert report.denied == 1
    assert report.details["AAPL"] == f"buy 99: denied by the risk gate: {reason}"
    assert not [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]
