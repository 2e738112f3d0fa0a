"""The equity engine never stacks a new order on one of its own still working at Alpaca.

The engine sizes each order as target minus the broker's position. A market order partly
filled (the fake fills at most the quote's size per pass, as a thin book does) is still working
for the rest at the next cycle; an order that only added the shares not yet filled would buy
them twice. Reference: the fake exchange's own record of the orders it was sent and the
quantities by hand.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.equity_world import aapl_engine
from fakes.fixtures import OPEN, fake_broker, until
from v28quant.config import load_config
from v28quant.equity.engine import EquityEngine
from v28quant.execution import Executor
from v28quant.signals import RegimeState

REGIME = RegimeState("bull_quiet", {"bull_quiet": 1.0}, "test", OPEN)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, Any, EquityEngine]]:
    """Yield the fake (AAPL ask size 10), an engine context on it and the engine."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "99.99", "100.01", 1000, 10)
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(
        trading.url, tmp_path / "journal.sqlite", OPEN, 1.0, REGIME, cfg, (1000, 10)
    )
    journal = ctx.journal
    try:
        yield trading, ctx, engine
    finally:
        journal.close()
        trading.stop()


@pytest.mark.asyncio
async def test_a_partly_filled_buy_is_not_bought_again_next_cycle(
    world: tuple[FakeAlpacaTrading, Any, EquityEngine],
) -> None:
    """A part-filled buy keeps working: no second buy.

    Target 0.10 x 100,000 = 10,000 dollars: 99 shares at the 100.01 ask; 10 fill, 89 work on.
    """
    trading, ctx, engine = world
    try:
        await engine.cycle(ctx)
        (first,) = trading.orders.values()
        assert (first["qty"], first["filled_qty"], first["status"]) == (
            "99",
            "10",
            "partially_filled",
        )
        ctx.now = OPEN + timedelta(minutes=5)
        report = await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
    posts = [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]
    assert [b["qty"] for b in posts] == [99]
    assert report.orders == 0
    assert "working" in report.details["AAPL"]


@pytest.mark.asyncio
async def test_a_buy_still_being_sent_after_its_cycle_was_cut_off_is_not_bought_again(
    tmp_path: Path,
) -> None:
    """A cycle cut off at its time limit leaves its send going on: the next cycle waits for it.

    The venue holds the first buy's request (the client's timeout is longer than the cycle
    limit) and lists no open order until it takes it. The next cycle, while that send is still
    in flight, must not buy AAPL again: once the held request lands there would be two buys of
    the same 99 shares (target 0.10 x 100,000 = 10,000 dollars at the 100.01 ask). Reference:
    the requests the fake venue received.
    """
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "99.99", "100.01", 1000, 1000)
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(
        trading.url, tmp_path / "journal.sqlite", OPEN, 1.0, REGIME, cfg, (1000, 1000)
    )
    ctx.broker = fake_broker(trading.url, timeout_s=120.0)
    ctx.executor = Executor(ctx.broker, ctx.journal)
    answer = threading.Event()
    trading.inject("POST", "/v2/orders", 200, hold=answer)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):  # the runner's cycle limit
                await engine.cycle(ctx)
        ctx.now = OPEN + timedelta(minutes=5)
        report = await engine.cycle(ctx)
        answer.set()
        await until(lambda: len(trading.orders) >= 1, "the held buy never landed")
        await asyncio.sleep(0.2)  # let the shielded send journal the venue's answer
    finally:
        answer.set()
        await ctx.broker.aclose()
        ctx.journal.close()
        trading.stop()
    posts = [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]
    assert [(b["symbol"], b["qty"]) for b in posts] == [("AAPL", 99)]
    assert report.orders == 0
    assert "working" in report.details["AAPL"]
