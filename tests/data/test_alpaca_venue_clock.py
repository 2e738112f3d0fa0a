"""The keyed venue's data feed keeps the venue's time, not the host's.

The runner's clock in live and paper trading is Alpaca's ``/v2/clock``; a host clock that is
off (here by years: the fakes live in September 2023) must not move the SIP tape's 15-minute
delay nor the moment a settlement close becomes final.

Independent references: the fakes' own time (the free plan's 403 on SIP data younger than 15
minutes is the data fake's rule on its ``now``), their record of the requests they received,
and the bundled SPY history the data fake serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fakes.alpaca_data import FakeAlpacaData, bars_from_csv
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import point_runner_at_fakes
from v28quant.calendar import default_calendar
from v28quant.config import load_config
from v28quant.runner_args import parse_args
from v28quant.venue import Venue, open_venue

NY = ZoneInfo("America/New_York")
SESSION = datetime(2023, 9, 14, 16, 0, tzinfo=NY)
NOT_FINAL_YET = datetime(2023, 9, 14, 16, 5, tzinfo=NY)  # the SIP tape lacks the last 15 min
FINAL = datetime(2023, 9, 14, 16, 20, tzinfo=NY)


@pytest.fixture
def fakes(shared_data: Path) -> Iterator[tuple[FakeAlpacaTrading, FakeAlpacaData]]:
    spy = bars_from_csv(shared_data / "equities/yahoo_raw_2019_2023/SPY.csv", end="2023-09-14")
    trading = FakeAlpacaTrading(now=NOT_FINAL_YET).start()
    try:
        with FakeAlpacaData(bars={"SPY": spy}, now=NOT_FINAL_YET) as data:
            yield trading, data
    finally:
        trading.stop()


def _keyed_venue(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trading_url: str, data_url: str
) -> Venue:
    point_runner_at_fakes(monkeypatch, trading_url, data_url)
    args = parse_args(["--mode", "paper", "--universe", "SPY"])
    settings, cfg = load_config(None, journal_path=tmp_path / "j.sqlite")
    return open_venue("paper", settings, cfg, args, default_calendar())


async def test_the_keyed_feed_follows_the_venue_clock_not_the_host_clock(
    fakes: tuple[FakeAlpacaTrading, FakeAlpacaData],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    shared_data: Path,
) -> None:
    trading, data = fakes
    venue = _keyed_venue(monkeypatch, tmp_path, trading.url, data.url)
    assert venue.venue_clock is not None
    try:
        await venue.venue_clock.refresh()
        # 16:05 New York by the venue: the day's close is not on the SIP tape yet
        with pytest.raises(ValueError, match="not final"):
            await venue.feed.closing_price("SPY", SESSION)
        trading.now = FINAL
        data.now = FINAL + timedelta(seconds=1)  # the request reaches the data API a moment later
        # the venue's time moved 15 minutes between two reads, faster than the host's: a jump
        # that far is adopted once a second read confirms it (``VenueClock``)
        await venue.venue_clock.refresh()
        await venue.venue_clock.refresh()
        close = await venue.feed.closing_price("SPY", SESSION)
    finally:
        await venue.aclose()
    ref = pd.read_csv(shared_data / "equities/yahoo_raw_2019_2023/SPY.csv").set_index("date")
    assert close == Decimal(repr(float(ref.loc["2023-09-14", "close"])))
    # the SIP request ended 15 minutes before the venue's now, which the free plan serves
    (asked,) = [q for _, p, q in data.requests if p == "/v2/stocks/bars"]
    assert asked["feed"] == "sip"
    end = datetime.fromisoformat(asked["end"])
    assert FINAL - timedelta(minutes=15) <= end <= data.now - timedelta(minutes=15)
