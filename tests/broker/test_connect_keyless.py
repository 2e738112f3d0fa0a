"""``connect()`` with no keys and no arguments, tried as a new user would.

The fill prices are checked against the bundled history itself (skfolio's recorded closes and
the day's range around them), which the simulator replays; the session times against the
exchange calendar.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest
from v28quant.broker import OrderRejected, OrderRequest, OrderStatus, Owner, connect
from v28quant.broker.sim import SimBroker, state_path_for
from v28quant.calendar import ET
from v28quant.clock import SimClock
from v28quant.data.samples import sample_history

LAST = date(2022, 12, 28)  # the last session of the bundled sample history


@pytest.fixture
def fresh_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give a new machine: no Alpaca keys, no .env, the journal in the working folder."""
    for var in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "V28_LIVE_CONFIRM", "V28_JOURNAL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _buy(symbol: str, qty: int, decision: str) -> OrderRequest:
    return OrderRequest.equity(symbol, qty, "buy", owner=Owner("equity", "manual", decision))


@pytest.mark.asyncio
async def test_connect_with_nothing_trades_on_the_samples(
    fresh_user: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    broker = connect()
    assert isinstance(broker, SimBroker)
    assert "SIMULATED exchange" in caplog.text
    assert "not the real time" in caplog.text
    clock = await broker.clock()
    assert clock.ts == datetime.combine(LAST, time(9, 45), ET)
    assert clock.is_open
    assert (await broker.account()).cash == Decimal(100_000)
    order = await broker.submit(_buy("AAPL", 10, "first"))
    assert order.status == OrderStatus.FILLED, order
    assert order.reason is None
    bars = sample_history().bars
    day = bars[(bars["symbol"] == "AAPL") & (bars["timestamp"].dt.tz_convert(ET).dt.date == LAST)]
    low, high = float(day["low"].iloc[0]), float(day["high"].iloc[0])
    assert order.filled_avg_price is not None
    assert low - 0.02 <= float(order.filled_avg_price) <= high + 0.02, (order, low, high)
    [pos] = await broker.positions()
    assert (pos.symbol, pos.qty) == ("AAPL", Decimal(10))
    [fill] = await broker.activities()
    assert fill.raw["synthetic"] is True  # the intraday price is from the synthetic path


@pytest.mark.asyncio
async def test_a_restart_finds_the_account(fresh_user: Path) -> None:
    first = connect()
    await first.submit(_buy("MSFT", 5, "kept"))
    cash = (await first.account()).cash
    assert state_path_for(fresh_user / "v28_journal.sqlite").is_file()
    again = connect()  # a new process, same folder
    assert (await again.account()).cash == cash
    assert [(p.symbol, p.qty) for p in await again.positions()] == [("MSFT", Decimal(5))]
    same = await again.submit(_buy("MSFT", 5, "kept"))  # the same decision: no second order
    assert len(await again.orders("all")) == 1
    assert same.status == OrderStatus.FILLED


@pytest.mark.asyncio
async def test_an_order_while_closed_says_why(fresh_user: Path) -> None:
    evening = SimClock(datetime.combine(LAST, time(18, 0), ET))
    broker = connect(clock=evening)
    order = await broker.submit(_buy("KO", 3, "late"))
    assert order.status == OrderStatus.ACCEPTED
    assert order.reason is not None
    assert "simulated market is closed" in order.reason, order.reason
    assert "2022-12-29 09:30" in order.reason, order.reason  # the next open, from the calendar


@pytest.mark.asyncio
async def test_past_the_history_there_is_no_stale_price(fresh_user: Path) -> None:
    later = SimClock(datetime(2023, 1, 4, 10, 0, tzinfo=ET))
    broker = connect(clock=later)
    with pytest.raises(OrderRejected, match="no quote"):
        await broker.submit(_buy("KO", 3, "stale"))


def test_sim_broker_never_falls_back_to_wall_time() -> None:
    from fakes.fixtures import StaticQuotes
    from v28quant.clock import WallClock
    from v28quant.data.replay import ReplayFeed

    clock = SimClock(datetime.combine(LAST, time(10, 0), ET))
    feed = ReplayFeed(sample_history(), clock)
    assert SimBroker(feed)._clock is clock  # the feed's own simulated clock
    with pytest.raises(ValueError, match="needs clock="):
        SimBroker(StaticQuotes(clock))  # a source without a clock of its own
    with pytest.raises(ValueError, match="not the clock its quote source runs on"):
        SimBroker(feed, WallClock())  # 2022 prices at today's time
