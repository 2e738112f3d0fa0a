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


#: The runner-level load: the venue's time (market open) and the real SPY chain of that day.
CHAIN_NOW = datetime(2023, 9, 14, 19, 30, tzinfo=UTC)  # 15:30 New York
RUNNER_SYMBOLS = SYMBOLS  # 100 equities: renamed copies of the bundled real series
RUNNER_UNDERLYINGS = [f"U{chr(65 + i)}" for i in range(10)]


def _runner_world_data(shared_data: Path) -> tuple[dict, dict, dict]:
    """Return bars, latest quotes and option chains of the runner-level load (to 2023-09-13).

    The equities are the bundled adjusted series dealt round-robin to 100 names; the 10
    underlyings are SPY under 10 names, each with the real Cboe SPY chain of 2023-09-14.
    """
    folder = shared_data / "equities" / "yf_adjusted_2019_2025"
    real = ["AAPL", "GLD", "IWM", "JPM", "MSFT", "QQQ", "TLT", "XLE"]
    series = {s: bars_from_csv(folder / f"{s}.csv", "2021-06-01", "2023-09-13") for s in real}
    bars = {s: series[real[i % len(real)]] for i, s in enumerate(RUNNER_SYMBOLS)}
    spy = bars_from_csv(shared_data / "equities/yahoo_raw_2019_2023/SPY.csv", end="2023-09-13")
    spy_chain = chain_snapshots(shared_data / "options" / "SPY_2023-09-14_cboe.csv")["SPY"]
    chains = {u: {u + occ[3:]: snap for occ, snap in spy_chain.items()} for u in RUNNER_UNDERLYINGS}
    bars.update({u: spy for u in (*RUNNER_UNDERLYINGS, "SPY")})
    t = "2023-09-14T19:29:59Z"
    quotes = {s: quote_json(b[-1]["c"], t) for s, b in bars.items()}
    return bars, quotes, chains


@pytest.mark.skipif(not FULL, reason="full run only (V28_RELIABILITY_FULL=1): minutes of fits")
def test_the_runner_trades_100_symbols_and_10_underlyings_under_the_limit(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tally: Counter[str]
) -> None:
    """``--once`` of the whole runner (pre-market, one cycle of both engines) at Alpaca's limit.

    The real alpaca-py clients talk to fakes that answer 429 past 200 requests in any trailing
    minute; the runner's account limiter must keep every request under it. Each engine cycle's
    wall time is measured around ``Runner._cycle``.
    """
    from reliability.keyed_world import keyed_world
    from v28quant.runner import Runner

    bars, quotes, chains = _runner_world_data(shared_data)
    underlyings = ", ".join(f'"{u}"' for u in RUNNER_UNDERLYINGS)
    config = f"[options]\nunderlyings = [{underlyings}]\n"
    cycles: dict[str, float] = {}
    real_cycle = Runner._cycle

    async def timed(self: Runner, engine: Any, slot: datetime) -> Any:
        t0 = time.perf_counter()
        try:
            return await real_cycle(self, engine, slot)
        finally:
            cycles[engine.name] = time.perf_counter() - t0

    monkeypatch.setattr(Runner, "_cycle", timed)
    with keyed_world(
        shared_data,
        monkeypatch,
        tmp_path,
        tuple(RUNNER_SYMBOLS),
        bars,
        quotes,
        now=CHAIN_NOW,
        option_snapshots=chains,
        config=config,
        rate_limit=LIMIT,
        cash=200_000,  # per-symbol weights then stay under the 25,000 per-order limit
    ) as world:
        enforcer = Enforcer()
        retry = {"Retry-After": "60"}
        _guard(world.trading, enforcer, lambda m, p: world.trading.inject(m, p, 429, headers=retry))
        _guard(world.data, enforcer, lambda m, p: world.data.fail(m, p, 429, headers=retry))
        t0 = time.perf_counter()
        code = world.run_once()
        wall = time.perf_counter() - t0
        dup, lost = world.duplicated(), world.rows_lost()
        accepted = world.accepted()
    tally["duplicated"] += dup
    tally["rows_lost"] += len(lost)
    FIGURES["load_runner"] = (
        f"run {wall:.0f} s, {len(enforcer.times)} requests; cycle equity "
        f"{cycles.get('equity', float('nan')):.1f} s, options "
        f"{cycles.get('options', float('nan')):.1f} s; {len(accepted)} orders"
    )
    FIGURES["load_runner_rate"] = (
        f"{enforcer.peak()} per 60 s window (limit {LIMIT}), 429s: {enforcer.refused}"
    )
    assert code == 0
    assert set(cycles) == {"equity", "options"}, cycles
    assert enforcer.refused == 0
    assert enforcer.peak() <= LIMIT
    assert dup == 0
    assert lost == []
    assert any(c.startswith("v28-equity-") for c in accepted), accepted
