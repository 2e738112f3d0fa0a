"""Load: one cycle's venue traffic for 100 symbols and 10 option underlyings, rate-limited.

The real ``AlpacaBroker`` and ``AlpacaData`` share one account ``RateLimiter`` (as the runner
builds them) against the loopback fakes, which here also enforce Alpaca's limit: more than
``LIMIT`` requests in any trailing ``WINDOW_S`` seconds is answered 429. The cycle issues what
the runner's pre-market job and one cycle of both engines issue per symbol: daily history one
symbol at a time, the latest quotes, the account and positions, an option chain (snapshots and
contracts) per underlying, and one order per symbol. Passes with no 429 from the fakes and at
most ``LIMIT`` requests in every window; prints the cycle's wall time and the peak rate.

The bounded run compresses Alpaca's minute threefold (the limiter and the fakes both count a
20-second window, every ratio kept); the full run uses the real minute.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_data import FakeAlpacaData, bars_from_csv, contracts_from_snapshots
from fakes.alpaca_data import snapshots_from_csv as chain_snapshots
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN
from reliability.keyed_world import quote_json
from reliability.tally import FIGURES, FULL
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.data.alpaca import AlpacaData

SYMBOLS = [f"S{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(100)]
UNDERLYINGS = [f"U{chr(65 + i)}" for i in range(10)]
LIMIT = 200  # Alpaca's requests per minute
WINDOW_S = 60.0 if FULL else 20.0
KEY, SECRET = "PKLOADKEY0001", "load-secret"
#: The shared option chain's day (the data adapter's clock while it reads the chains).
CHAIN_DAY = datetime(2025, 7, 8, 15, 0, tzinfo=UTC)


class Enforcer:
    """Counts requests at the fakes and answers 429 past ``LIMIT`` in a trailing window."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.refused = 0
        self._lock = threading.Lock()

    def over(self) -> bool:
        """Record one request now; True when it exceeds the limit."""
        with self._lock:
            now = time.monotonic()
            self.times.append(now)
            recent = len(self.times) - bisect.bisect_left(self.times, now - WINDOW_S)
            if recent > LIMIT:
                self.refused += 1
                return True
            return False

    def peak(self) -> int:
        """Return the most requests seen in any trailing window."""
        t = self.times
        return max(
            (i + 1 - bisect.bisect_left(t, x - WINDOW_S) for i, x in enumerate(t)), default=0
        )


def _guard(fake: Any, enforcer: Enforcer, refuse: Any) -> None:
    handle = fake._handle

    def guarded(h: Any) -> None:
        if enforcer.over():
            refuse(h.command, h.path.split("?")[0])
        handle(h)

    fake._handle = guarded


def _chains(shared_data: Path) -> dict[str, dict[str, dict]]:
    nvda = chain_snapshots(shared_data / "options/NVDA_2025-07-08_alpaca_snapshot.csv")["NVDA"]
    near = dict(sorted(nvda.items())[:40])  # 40 contracts per underlying
    return {u: {u + occ[4:]: snap for occ, snap in near.items()} for u in UNDERLYINGS}


@pytest.mark.asyncio
async def test_one_cycle_of_100_symbols_and_10_underlyings_stays_under_the_limit(
    shared_data: Path, tally: Counter[str]
) -> None:
    folder = shared_data / "equities" / "yf_adjusted_2019_2025"
    real = ["AAPL", "GLD", "IWM", "JPM", "MSFT", "QQQ", "SPY", "TLT", "XLE"]
    series = {s: bars_from_csv(folder / f"{s}.csv", "2023-06-01", "2024-05-31") for s in real}
    bars = {s: series[real[i % len(real)]] for i, s in enumerate(SYMBOLS)}
    quotes = {s: quote_json(b[-1]["c"]) for s, b in bars.items()}
    chains = _chains(shared_data)
    enforcer = Enforcer()
    trading = FakeAlpacaTrading(now=OPEN, cash=10**9).start()
    try:
        for s, q in quotes.items():
            trading.set_quote(s, str(q["bp"]), str(q["ap"]), 10_000, 10_000)
        with FakeAlpacaData(
            bars=bars,
            quotes=quotes,
            option_snapshots=chains,
            contracts=contracts_from_snapshots(chains),
            now=OPEN,
        ) as data:
            retry = {"Retry-After": str(int(WINDOW_S))}
            _guard(trading, enforcer, lambda m, p: trading.inject(m, p, 429, headers=retry))
            _guard(data, enforcer, lambda m, p: data.fail(m, p, 429, headers=retry))
            limiter = RateLimiter(rate=190, per=WINDOW_S, burst=10)
            broker = AlpacaBroker(KEY, SECRET, url=trading.url, limiter=limiter)
            feed = AlpacaData(
                KEY,
                SECRET,
                data_url=data.url,
                trading_url=data.url,
                limiter=limiter,
                now=lambda: CHAIN_DAY,
            )
            t0 = time.perf_counter()
            placed = await _one_cycle(broker, feed)
            wall = time.perf_counter() - t0
            await broker.aclose()
            await feed.aclose()
    finally:
        trading.stop()
    peak = enforcer.peak()
    scale = 60.0 / WINDOW_S
    FIGURES["load_cycle"] = f"{wall:.1f} s, {len(enforcer.times)} requests" + (
        "" if FULL else f" (minute compressed {scale:.0f}x)"
    )
    FIGURES["load_rate"] = f"{peak} per {WINDOW_S:.0f} s window (limit {LIMIT}), 429s: " + str(
        enforcer.refused
    )
    assert placed == len(SYMBOLS)
    assert enforcer.refused == 0
    assert peak <= LIMIT


async def _one_cycle(broker: AlpacaBroker, feed: AlpacaData) -> int:
    start, end = OPEN - timedelta(days=400), OPEN
    for sym in SYMBOLS:  # pre-market history, one symbol at a time as load_history does
        assert not (await feed.bars([sym], start, end, "1Day")).empty
    await broker.account()
    await broker.positions()
    quotes = await feed.latest_quotes(SYMBOLS)
    assert set(quotes) == set(SYMBOLS)
    chains = await asyncio.gather(*(feed.option_chain(u) for u in UNDERLYINGS))
    assert all(len(c) for c in chains)
    orders = [
        OrderRequest.equity(s, 1, "buy", owner=Owner("equity", "load", f"load-{s}"))
        for s in SYMBOLS
    ]
    placed = await asyncio.gather(*(broker.submit(o) for o in orders))
    return len({o.client_order_id for o in placed})
