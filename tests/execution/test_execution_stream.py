"""Executor following Alpaca's trade-updates stream.

The real alpaca-py ``TradingStream`` against a loopback websocket fake wired to the REST fake:
fills are journaled as they are pushed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_stream import FakeTradeStream
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, FakeTime
from v28quant.alpaca.config import AlpacaConfig
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.alpaca.stream import AlpacaTradeUpdates, stream_url
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal

KEY, SECRET = "PKSTREAM0001", "stream-secret-0001"
LOOKUP = "/v2/orders:by_client_order_id"


@pytest.fixture
def venue() -> Iterator[tuple[FakeAlpacaTrading, FakeTradeStream]]:
    rest = FakeAlpacaTrading(now=OPEN).start()
    rest.set_quote("SPY", "530.00", "530.10", 100, 100)
    ws = FakeTradeStream().start()
    rest.on_event = ws.publish
    yield rest, ws
    ws.stop()
    rest.stop()


def limit_buy(d: str, price: str) -> Decision:
    owner = Owner("equity", "dip", d)
    return Decision(OrderRequest.equity("SPY", 3, "buy", "limit", price, owner=owner), {})


async def following(
    rest: FakeAlpacaTrading, ws: FakeTradeStream, path: Path, poll_s: float
) -> Executor:
    ft = FakeTime()
    lim = RateLimiter(rate=10_000, burst=1000, now=ft.now, sleep=ft.sleep)
    broker = AlpacaBroker(KEY, SECRET, url=rest.url, limiter=lim, backoff_s=0.0)
    ex = Executor(broker, Journal(path), poll_interval_s=poll_s)
    config = AlpacaConfig(KEY, SECRET, trading_url=rest.url)
    await ex.follow(AlpacaTradeUpdates(config, url=ws.url))
    assert await asyncio.to_thread(ws.listening.wait, 60), "the stream never subscribed"
    return ex


async def until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + 60  # bounds a wait for another thread; asserts no timing
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


def test_stream_url_sits_beside_the_trading_endpoint() -> None:
    assert stream_url("https://paper-api.alpaca.markets") == "wss://paper-api.alpaca.markets/stream"
    assert stream_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/stream"


@pytest.mark.asyncio
async def test_pushed_fill_is_journaled_without_polling(
    venue: tuple[FakeAlpacaTrading, FakeTradeStream], tmp_path: Path
) -> None:
    """A pushed fill is journaled without polling.

    A resting buy at 529.00 fills when the ask drops to 528.90: the journal learns it from
    the push (no look-up by client order id is made), with the fill and the position.
    """
    rest, ws = venue
    ex = await following(rest, ws, tmp_path / "j.sqlite", poll_s=3600)
    try:
        out = await ex.place(limit_buy("rest", "529.00"))
        assert out.status == "new"
        lookups = rest.count("GET", LOOKUP)
        rest.set_quote("SPY", "528.50", "528.90", 100, 100)
        rest.process()
        j = ex.journal.sync

        def filled() -> bool:
            row = j.order_by_client_id(out.client_order_id)
            return row is not None and row["status"] == "filled" and bool(j.last_positions())

        await until(filled, "the pushed fill never reached the journal")
        assert rest.count("GET", LOOKUP) == lookups  # pushed, not polled
        fills = j.fills_for(out.client_order_id)
        assert [(f["qty"], f["price"], f["side"]) for f in fills] == [(D(3), D("528.90"), "buy")]
        assert j.last_positions() == {"SPY": D(3)}
    finally:
        await ex.aclose()


@pytest.mark.asyncio
async def test_track_wakes_on_a_pushed_update(
    venue: tuple[FakeAlpacaTrading, FakeTradeStream], tmp_path: Path
) -> None:
    """With an hour between polls, ``track`` still returns as soon as the fill is pushed."""
    rest, ws = venue
    ex = await following(rest, ws, tmp_path / "j.sqlite", poll_s=3600)
    try:
        out = await ex.place(limit_buy("wake", "529.00"))

        def answered() -> int:
            return sum(1 for r in rest.responses if r[:2] == ("GET", LOOKUP))

        before = answered()
        waiting = asyncio.create_task(ex.track(out.client_order_id, timeout_s=3600))
        # Move the market only after track's first look was answered with the order resting.
        await until(lambda: answered() > before, "track never looked")
        rest.set_quote("SPY", "528.50", "528.90", 100, 100)
        rest.process()
        order = await asyncio.wait_for(waiting, 60)  # a bound on a hang, far below the hour
        assert order.status.value == "filled"
        assert order.filled_qty == D(3)
    finally:
        await ex.aclose()
