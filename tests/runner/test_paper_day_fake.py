"""A keyed paper day against the loopback Alpaca fakes, with the real alpaca-py clients.

The fake exchange's clock is the runner's: the runner's venue clock reads the fake's
``/v2/clock``, counts its time between reads from the fake's own time, and where it would sleep
it moves the fake to the wake-up time instead (``VenueClock``'s ``wait``). The runner's two
engines, equity and options, run side by side in lockstep on that clock: the fake's time moves
only when both wait, so neither cycle reads a venue that moved under it. Thursday 2023-09-14,
from 08:30 New York to the next morning's pre-market, runs in minutes; a SIGTERM then stops the
runner as an operator would.

Independent references: the fake's own record of the requests it received and of its orders,
the XNYS schedule of exchange_calendars (the fake's calendar) for the 5-minute slots, and the
journal file read with ``sqlite3``. Real data: daily bars from ``shared/data`` to the eve
(as-traded SPY, adjusted stocks) and the real Cboe SPY chain of the day, served as Alpaca option
snapshots; each quote stands still through the day (the chain's own underlying price for SPY).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pandas as pd
import pytest
from fakes.alpaca_data import (
    FakeAlpacaData,
    bars_from_csv,
    contracts_from_snapshots,
    snapshots_from_csv,
)
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import follow_fake_clock, point_runner_at_fakes
from v28quant.config import load_config
from v28quant.runner_args import parse_args
from v28quant.runner_setup import run_with

NY = ZoneInfo("America/New_York")
DAY = pd.Timestamp("2023-09-14")
EVE = "2023-09-13"
START = datetime(2023, 9, 14, 8, 30, tzinfo=NY)
NEXT_PREMARKET = datetime(2023, 9, 15, 9, 0, tzinfo=NY)
SYMBOLS = ("AAPL", "JPM", "MSFT")
KEY, SECRET = "PKTESTKEY0002", "test-secret-value"


def _rows(path: Path, sql: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(str(path))
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quote(price: float) -> dict[str, object]:
    return {
        "t": _stamp(START),
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
    chain = shared_data / "options" / "SPY_2023-09-14_cboe.csv"
    snaps = snapshots_from_csv(chain)
    spot = float(pd.read_csv(chain, nrows=1)["underlying_price"].iloc[0])
    trading = FakeAlpacaTrading(now=START).start()
    # the trading fake fills (and values for buying power) the contracts it has quotes for
    for sym, snap in snaps["SPY"].items():
        trading.set_quote(sym, str(snap["latestQuote"]["bp"]), str(snap["latestQuote"]["ap"]))
    bars, quotes = {}, {}
    files = {s: shared_data / "equities" / "yf_adjusted_2019_2025" / f"{s}.csv" for s in SYMBOLS}
    files["SPY"] = shared_data / "equities" / "yahoo_raw_2019_2023" / "SPY.csv"  # strikes' level
    for sym, path in files.items():
        bars[sym] = bars_from_csv(path, end=EVE)
        eve = float(pd.read_csv(path).query(f"date <= '{EVE}'")["close"].iloc[-1])
        last = spot if sym == "SPY" else eve
        quotes[sym] = _quote(last)
        trading.set_quote(sym, f"{last - 0.01:.2f}", f"{last + 0.01:.2f}", 10_000, 10_000)
    waits: list[datetime] = []
    try:
        with FakeAlpacaData(
            bars=bars,
            quotes=quotes,
            option_snapshots=snaps,
            contracts=contracts_from_snapshots(snaps),
            now=START,
        ) as data:

            async def wait(when: datetime) -> None:
                waits.append(when)
                if when >= NEXT_PREMARKET:  # the day is done: the operator stops the runner
                    os.kill(os.getpid(), signal.SIGTERM)
                    await asyncio.sleep(3600)  # cancelled by the runner's stop
                trading.advance_to(when)
                data.now = when
                stamp = _stamp(when)
                for q in quotes.values():  # a live feed: each quote as of the venue's now
                    q["t"] = stamp
                for snap in snaps["SPY"].values():
                    snap["latestQuote"]["t"] = stamp

            follow_fake_clock(monkeypatch, lambda: trading.now, wait)
            point_runner_at_fakes(monkeypatch, trading.url, data.url, KEY, SECRET)
            # The day's hundreds of requests come in minutes of wall time, not 6.5 hours: the
            # account limit is Algo Trader Plus' so the run is not the limiter's wait.
            monkeypatch.setenv("V28_ALPACA_RATE_LIMIT", "10000")
            monkeypatch.chdir(tmp_path)
            (tmp_path / "v28.toml").write_text(
                "[paper]\nmin_confidence = 0.0\n"
                '[equity]\nmin_trade_weight = 0.0\nmarket_symbol = "SPY"\n'
                '[options]\nunderlyings = ["SPY"]\n'
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

    assert run_with(args, settings, cfg).exit_code == 0
    assert max(waits) == NEXT_PREMARKET  # the runner went on to the next morning
    assert waits == sorted(set(waits))  # one move of the venue per wake-up, never back

    # pre-market: reconciled with the venue and screened at 09:00 New York
    premarket = datetime(2023, 9, 14, 9, 0, tzinfo=NY)
    recon = _rows(journal, "SELECT ts, ok FROM reconciles")
    assert [pd.Timestamp(r["ts"]) for r in recon] == [pd.Timestamp(premarket)]
    screens = _rows(journal, "SELECT ts FROM decisions WHERE action = 'screen'")
    assert [pd.Timestamp(r["ts"]) for r in screens] == [pd.Timestamp(premarket)]

    # one cycle of each engine at every 5-minute slot of the XNYS session, and none outside
    rows = _rows(journal, "SELECT engine, ts, reasoning FROM decisions WHERE action = 'cycle'")
    assert {r["engine"] for r in rows} == {"equity", "options"}
    for engine in ("equity", "options"):
        mine = [r for r in rows if r["engine"] == engine]
        slots = sorted(pd.Timestamp(json.loads(r["reasoning"])["slot"]) for r in mine)
        assert slots == _slots(), engine
        assert len(slots) == 73  # 09:45 to 15:45
    # each cycle ended with the venue still at its slot: the other engine's wait never moved
    # the venue under it (the row is stamped with the venue's time when the cycle ends)
    ends = [(r["engine"], r["ts"], json.loads(r["reasoning"])["slot"]) for r in rows]
    moved = [e for e in ends if pd.Timestamp(e[1]) != pd.Timestamp(e[2])]
    assert not moved, moved

    # orders: owned by an engine, each client order id sent once (a walked limit's replacement
    # too), each filled by the venue and journaled with the venue's quantities and prices
    posts = [b for m, p, b in trading.requests if m == "POST" and p == "/v2/orders"]
    patches = [b for m, p, b in trading.requests if m == "PATCH" and p.startswith("/v2/orders/")]
    cids = [b["client_order_id"] for b in posts]
    sent = cids + [b["client_order_id"] for b in patches]
    assert len(set(sent)) == len(sent)
    equity = [c for c in cids if c.startswith("v28-equity-aggregate-")]
    options = [b for b in posts if b["client_order_id"].startswith("v28-options-")]
    assert equity, cids  # the equity engine trades beside the options engine
    assert len(equity) + len(options) == len(cids)
    # each option structure goes to the venue as ONE multi-leg order, never legged in
    assert options, cids
    assert all(b["order_class"] == "mleg" and len(b["legs"]) >= 2 for b in options)
    assert all(not b.get("symbol") for b in options)
    venue_orders = {o["client_order_id"]: o for o in trading.orders.values()}
    by_id = {o["id"]: o for o in trading.orders.values()}
    fills = _rows(journal, "SELECT client_order_id, symbol, qty, price FROM fills")
    final: dict[str, str] = {}
    for cid in cids:
        o = venue_orders[cid]
        while o["status"] == "replaced":  # a walked limit: the order lives on as its replacement
            o = by_id[o["replaced_by"]]
        final[cid] = o["client_order_id"]
        assert o["status"] == "filled", (cid, o["status"])
        mine = [f for f in fills if f["client_order_id"] == o["client_order_id"]]
        parts = o["legs"] or [o]  # a multi-leg order fills leg by leg, each its own symbol
        assert sorted(f["symbol"] for f in mine) == sorted(p["symbol"] for p in parts), cid
        for part in parts:
            got = [f for f in mine if f["symbol"] == part["symbol"]]
            assert sum(Decimal(f["qty"]) for f in got) == Decimal(part["filled_qty"])
            notional = sum(Decimal(f["qty"]) * Decimal(f["price"]) for f in got)
            assert notional == Decimal(part["filled_qty"]) * Decimal(part["filled_avg_price"])
        if o["legs"]:  # the structure's net price is its legs' (credit negative)
            net = sum(
                (1 if leg["side"] == "buy" else -1)
                * Decimal(leg["ratio_qty"])
                * Decimal(leg["filled_avg_price"])
                for leg in o["legs"]
            )
            assert net == Decimal(o["filled_avg_price"]), cid
    assert {r["client_order_id"] for r in _rows(journal, "SELECT * FROM orders")} == set(sent)

    # end of day: the roll-up after the close, then the night's off-hours jobs
    sql = "SELECT engine, ts, reasoning FROM decisions WHERE action = 'end_of_day'"
    eod = [r for r in _rows(journal, sql) if r["engine"] == "runner"]
    assert len(eod) == 1
    # the options engine's book at the close holds each structure it opened, by its filled order
    (book,) = [json.loads(r["reasoning"]) for r in _rows(journal, sql) if r["engine"] == "options"]
    held = {h["client_order_id"] for h in book["held"].values()}
    assert held == {final[b["client_order_id"]] for b in options}
    assert pd.Timestamp(eod[0]["ts"]) >= pd.Timestamp(datetime(2023, 9, 14, 16, 0, tzinfo=NY))
    rollup: dict[str, Any] = json.loads(eod[0]["reasoning"])
    assert rollup["fills"] == len(fills)
    assert Decimal(rollup["equity"]) > 0
    night = _rows(journal, "SELECT ts, reasoning FROM decisions WHERE action = 'offhours'")
    assert len(night) == 1
    assert pd.Timestamp(night[0]["ts"]) >= pd.Timestamp(datetime(2023, 9, 14, 16, 30, tzinfo=NY))
    assert json.loads(night[0]["reasoning"])["tuning"]["status"] == "skipped"
    # no order request after the close
    close = pd.Timestamp(datetime(2023, 9, 14, 16, 0, tzinfo=NY))
    assert all(pd.Timestamp(o["submitted_at"]) < close for o in trading.orders.values())
