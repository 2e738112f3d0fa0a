"""A keyed paper day against the loopback Alpaca fakes, with the real alpaca-py clients.

The fake exchange's clock is the runner's: the runner's venue clock reads the fake's
``/v2/clock``, counts its time between reads from the fake's own time, and where it would sleep
it moves the fake to the wake-up time instead (``VenueClock``'s ``wait``). Monday 2024-06-03,
from 08:30 New York to the next morning's pre-market, runs in minutes; a SIGTERM then stops the
runner as an operator would. The equity engine trades alone: with time driven by whichever loop
sleeps, a second engine's sleep would move the clock under a cycle still computing (the options
engine meets the fakes in ``tests/options/test_alpaca_once.py``).

Independent references: the fake's own record of the requests it received and of its orders,
the XNYS schedule of exchange_calendars (the fake's calendar) for the 5-minute slots, and the
journal file read with ``sqlite3``. Real daily bars from ``shared/data`` feed the models.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pandas as pd
import pytest
from fakes.alpaca_data import FakeAlpacaData, bars_from_csv
from fakes.alpaca_trading import FakeAlpacaTrading
from v28quant.broker.base import MarketClock
from v28quant.config import RunConfig, load_config
from v28quant.equity.engine import EquityEngine
from v28quant.runner_args import parse_args
from v28quant.runner_setup import run_with
from v28quant.venue_clock import VenueClock

NY = ZoneInfo("America/New_York")
DAY = pd.Timestamp("2024-06-03")
START = datetime(2024, 6, 3, 8, 30, tzinfo=NY)
NEXT_PREMARKET = datetime(2024, 6, 4, 9, 0, tzinfo=NY)
SYMBOLS = ("AAPL", "JPM", "MSFT")
KEY, SECRET = "PKTESTKEY0002", "test-secret-value"


def _rows(path: Path, sql: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(str(path))
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _quote(price: float) -> dict[str, object]:
    return {
        "t": "2024-06-03T13:00:00Z",
        "ap": round(price + 0.01, 2),
        "as": 50,
        "bp": round(price - 0.01, 2),
        "bs": 50,
        "ax": "V",
        "bx": "V",
        "c": ["R"],
        "z": "A",
    }


@pytest.fixture
def venue(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[FakeAlpacaTrading, list[datetime]]]:
    """Start the fakes at 08:30 and make the runner's venue clock the fake's clock."""
    folder = shared_data / "equities" / "yf_adjusted_2019_2025"
    trading = FakeAlpacaTrading(now=START).start()
    bars, quotes = {}, {}
    for sym in (*SYMBOLS, "SPY"):
        bars[sym] = bars_from_csv(folder / f"{sym}.csv", end="2024-05-31")
        last = float(
            pd.read_csv(folder / f"{sym}.csv").query("date <= '2024-05-31'")["close"].iloc[-1]
        )
        quotes[sym] = _quote(last)
        trading.set_quote(sym, f"{last - 0.01:.2f}", f"{last + 0.01:.2f}", 10_000, 10_000)
    waits: list[datetime] = []
    try:
        with FakeAlpacaData(bars=bars, quotes=quotes, now=START) as data:

            async def wait(when: datetime) -> None:
                waits.append(when)
                if when >= NEXT_PREMARKET:  # the day is done: the operator stops the runner
                    os.kill(os.getpid(), signal.SIGTERM)
                    await asyncio.sleep(3600)  # cancelled by the runner's stop
                trading.advance_to(when)
                data.now = when
                stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                for q in quotes.values():  # a live feed: each quote as of the venue's now
                    q["t"] = stamp

            def shared_clock(fetch: Callable[[], Awaitable[MarketClock]]) -> VenueClock:
                return VenueClock(fetch, monotonic=lambda: trading.now.timestamp(), wait=wait)

            monkeypatch.setattr("v28quant.venue.VenueClock", shared_clock)
            for k in list(os.environ):
                if k.startswith(("APCA_", "V28_", "DISCORD_")):
                    monkeypatch.delenv(k)
            monkeypatch.setenv("APCA_API_KEY_ID", KEY)
            monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
            monkeypatch.setenv("APCA_API_BASE_URL", trading.url)
            monkeypatch.setenv("APCA_API_DATA_URL", data.url)
            # The day's hundreds of requests come in minutes of wall time, not 6.5 hours: the
            # account limit is Algo Trader Plus' so the run is not the limiter's wait.
            monkeypatch.setenv("V28_ALPACA_RATE_LIMIT", "10000")
            monkeypatch.chdir(tmp_path)
            (tmp_path / "v28.toml").write_text(
                "[paper]\nmin_confidence = 0.0\n"
                '[equity]\nmin_trade_weight = 0.0\nmarket_symbol = "SPY"\n'
                "[offhours]\ntune = false\n"
            )
            yield trading, waits
    finally:
        trading.stop()


def _slots() -> list[pd.Timestamp]:
    """Every 5 minutes from 15 minutes after the open to 15 minutes before the close."""
    open_, close = xc.get_calendar("XNYS").session_open_close(DAY)
    first, last = open_ + pd.Timedelta(minutes=15), close - pd.Timedelta(minutes=15)
    return list(pd.date_range(first, last, freq="5min"))


@pytest.mark.slow
def test_a_paper_day_against_the_fake_exchange(
    venue: tuple[FakeAlpacaTrading, list[datetime]], tmp_path: Path
) -> None:
    trading, waits = venue
    journal = tmp_path / "j.sqlite"
    argv = ["--mode", "paper", "--config", "v28.toml", "--universe", ",".join(SYMBOLS)]
    args = parse_args([*argv, "--journal", str(journal)])
    settings, cfg = load_config(args.config, journal_path=journal)

    def equity_only(cfg: RunConfig, params: dict[str, Any]) -> list[EquityEngine]:
        return [EquityEngine(dataclasses.replace(cfg.equity, **params))]

    assert run_with(args, settings, cfg, engines=equity_only).exit_code == 0
    assert max(waits) == NEXT_PREMARKET  # the runner went on to the next morning

    # pre-market: reconciled with the venue and screened at 09:00 New York
    premarket = datetime(2024, 6, 3, 9, 0, tzinfo=NY)
    recon = _rows(journal, "SELECT ts, ok FROM reconciles")
    assert [pd.Timestamp(r["ts"]) for r in recon] == [pd.Timestamp(premarket)]
    screens = _rows(journal, "SELECT ts FROM decisions WHERE action = 'screen'")
    assert [pd.Timestamp(r["ts"]) for r in screens] == [pd.Timestamp(premarket)]

    # one cycle of each engine at every 5-minute slot of the XNYS session, and none outside
    rows = _rows(journal, "SELECT reasoning FROM decisions WHERE action = 'cycle'")
    slots = sorted(pd.Timestamp(json.loads(r["reasoning"])["slot"]) for r in rows)
    assert slots == _slots()
    assert len(slots) == 73  # 09:45 to 15:45

    # orders: owned by an engine, each client order id sent once, each filled by the venue and
    # journaled with the venue's quantity and price
    posts = [b for m, p, b in trading.requests if m == "POST" and p == "/v2/orders"]
    cids = [b["client_order_id"] for b in posts]
    assert any(c.startswith("v28-equity-aggregate-") for c in cids), cids
    assert all(c.startswith("v28-equity-aggregate-") for c in cids)
    assert len(set(cids)) == len(cids)
    venue_orders = {o["client_order_id"]: o for o in trading.orders.values()}
    fills = _rows(journal, "SELECT client_order_id, qty, price FROM fills")
    for cid in cids:
        o = venue_orders[cid]
        assert o["status"] == "filled", (cid, o["status"])
        mine = [f for f in fills if f["client_order_id"] == cid]
        assert sum(Decimal(f["qty"]) for f in mine) == Decimal(o["filled_qty"])
        notional = sum(Decimal(f["qty"]) * Decimal(f["price"]) for f in mine)
        assert notional == Decimal(o["filled_qty"]) * Decimal(o["filled_avg_price"])
    assert {r["client_order_id"] for r in _rows(journal, "SELECT * FROM orders")} == set(cids)

    # end of day: the roll-up after the close, then the night's off-hours jobs
    eod = _rows(journal, "SELECT ts, reasoning FROM decisions WHERE action = 'end_of_day'")
    assert len(eod) == 1
    assert pd.Timestamp(eod[0]["ts"]) >= pd.Timestamp(datetime(2024, 6, 3, 16, 0, tzinfo=NY))
    rollup: dict[str, Any] = json.loads(eod[0]["reasoning"])
    assert rollup["fills"] == len(fills)
    assert Decimal(rollup["equity"]) > 0
    night = _rows(journal, "SELECT ts, reasoning FROM decisions WHERE action = 'offhours'")
    assert len(night) == 1
    assert pd.Timestamp(night[0]["ts"]) >= pd.Timestamp(datetime(2024, 6, 3, 16, 30, tzinfo=NY))
    assert json.loads(night[0]["reasoning"])["tuning"]["status"] == "skipped"
    # no order request after the close
    close = pd.Timestamp(datetime(2024, 6, 3, 16, 0, tzinfo=NY))
    assert all(pd.Timestamp(o["submitted_at"]) < close for o in trading.orders.values())
