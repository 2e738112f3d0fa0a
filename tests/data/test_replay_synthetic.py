"""Replay labels what its synthetic intraday path produced, and hands no bar before it ends.

The intraday path is pinned to each day's recorded open, high, low and close, so everything read
from it during a session (minute bars, today's partial daily bar, quotes, fills) is model-made
and must say so. The check on bar ends is against the exchange calendar's own session times.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd
import pytest
from fakes.fixtures import StaticQuotes
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.sim import SimBroker
from v28quant.calendar import ET, default_calendar
from v28quant.clock import SimClock
from v28quant.data.replay import ReplayFeed
from v28quant.data.samples import History, sp500_index_ohlcv


@pytest.fixture(scope="module")
def spx() -> History:
    """Arch's S&P 500 index bars: recorded open, high, low and close (nothing modelled)."""
    return sp500_index_ohlcv()


@pytest.mark.asyncio
async def test_bars_say_when_they_come_from_the_synthetic_path(spx: History) -> None:
    clock = SimClock(datetime(2015, 6, 10, 11, 7, tzinfo=ET))
    feed = ReplayFeed(spx, clock)
    minute = await feed.bars(["SPX"], date(2015, 6, 8), None, "5Min")
    assert len(minute)
    assert minute.attrs["synthetic"] is True
    assert minute.attrs["synthetic_symbols"] == ["SPX"]
    daily = await feed.bars(["SPX"], date(2015, 6, 1), None, "1Day")
    assert daily["timestamp"].iloc[-1].tz_convert(ET).date() == date(2015, 6, 10)
    assert daily.attrs["synthetic"] is True, "today's partial bar is read off the path"
    # Completed sessions only: the recorded bars, not model-made.
    before = await feed.bars(["SPX"], date(2015, 6, 1), date(2015, 6, 9), "1Day")
    assert len(before) == 7
    assert before.attrs["synthetic"] is False
    clock.set(datetime(2015, 6, 10, 16, 30, tzinfo=ET))
    after = await feed.bars(["SPX"], date(2015, 6, 1), None, "1Day")
    assert len(after) == 8
    assert after.attrs["synthetic"] is False


@pytest.mark.asyncio
async def test_no_intraday_bar_ends_after_now(spx: History) -> None:
    cal = default_calendar()
    clock = SimClock(datetime(2015, 11, 25, 9, 0, tzinfo=ET))
    feed = ReplayFeed(spx, clock)
    # A full day and the half day after Thanksgiving (13:00 close), at odd seconds.
    checked = 0
    for day in (date(2015, 11, 25), date(2015, 11, 27)):
        now = datetime.combine(day, time(9, 25), ET)
        while now < datetime.combine(day, time(16, 10), ET):
            clock.set(now)
            for frame in ("1Min", "5Min", "7Min", "1Hour"):
                bars = await feed.bars(["SPX"], day, None, frame)
                minutes = int(frame[:-4]) * 60 if frame.endswith("Hour") else int(frame[:-3])
                for start in bars["timestamp"]:
                    times = cal.session_times(start.tz_convert(ET).date())
                    assert times is not None, f"a bar at {start}, not in a session"
                    end = min(start + pd.Timedelta(minutes=minutes), pd.Timestamp(times[1]))
                    assert end <= pd.Timestamp(now), (frame, start, end, now)
                    checked += 1
            now += timedelta(minutes=23, seconds=7)
    assert checked > 1000


@pytest.mark.asyncio
async def test_fills_on_replay_quotes_are_labelled_synthetic(spx: History) -> None:
    clock = SimClock(datetime.combine(date(2015, 6, 10), time(11, 7), ET))
    feed = ReplayFeed(spx, clock)
    broker = SimBroker(feed, clock)
    await broker.submit(OrderRequest.equity("SPX", 1, "buy", owner=Owner("equity", "t", "1")))
    [fill] = await broker.activities()
    assert fill.raw["synthetic"] is True, fill.raw
    recorded = StaticQuotes(clock)  # quotes that are not model-made
    recorded.set("SPX", "2100.00", "2100.50", ask_size=10)
    broker = SimBroker(recorded, clock)
    await broker.submit(OrderRequest.equity("SPX", 1, "buy", owner=Owner("equity", "t", "2")))
    [fill] = await broker.activities()
    assert fill.raw["synthetic"] is False, fill.raw
