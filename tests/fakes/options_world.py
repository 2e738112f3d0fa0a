"""A small world for options-engine tests: replay data, SimBroker, journal, executor, context.

The SPY history is the real daily series in ``../shared/data`` (raw closes); the option chain,
where a test serves one, is the real Cboe snapshot of 2023-09-14.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from v28quant.broker import Leg, OrderRequest
from v28quant.broker.sim import SimBroker, SimConfig
from v28quant.clock import SimClock
from v28quant.data.replay import ReplayFeed
from v28quant.data.snapshots import load_chain_snapshot
from v28quant.execution import Executor
from v28quant.journal import Journal
from v28quant.options.lifecycle import Held
from v28quant.signals import RegimeState


def spy_history(shared: Path, symbols: tuple[str, ...] = ("SPY",)) -> pd.DataFrame:
    """Return raw SPY daily bars (2019-2023) in the feed's long format, one copy per symbol."""
    raw = pd.read_csv(shared / "equities" / "yahoo_raw_2019_2023" / "SPY.csv")
    ts = pd.to_datetime(raw["date"]).dt.tz_localize("America/New_York").dt.tz_convert("UTC")
    frames = [
        pd.DataFrame(
            {
                "timestamp": ts,
                "symbol": sym,
                "open": raw["open"],
                "high": raw["high"],
                "low": raw["low"],
                "close": raw["close"],
                "volume": raw["volume"].astype(float),
            }
        )
        for sym in symbols
    ]
    return pd.concat(frames, ignore_index=True)


def with_designed_month(
    bars: pd.DataFrame, closes: dict[str, float], symbol: str = "SPY"
) -> pd.DataFrame:
    """Return ``bars`` cut before the first designed session with the designed closes appended.

    Each designed session opens at the previous close; high and low are 0.3 % beyond the open
    and the close. A scenario path (a fall, a flat week, a rally) makes lifecycle events
    certain; the history before it stays real.
    """
    days = sorted(closes)
    first = pd.Timestamp(days[0]).tz_localize("America/New_York").tz_convert("UTC")
    keep = bars[(bars["symbol"] != symbol) | (bars["timestamp"] < first)]
    prev = float(keep[keep["symbol"] == symbol]["close"].iloc[-1])
    rows = []
    for d in days:
        c = closes[d]
        rows.append(
            {
                "timestamp": pd.Timestamp(d).tz_localize("America/New_York").tz_convert("UTC"),
                "symbol": symbol,
                "open": prev,
                "high": max(prev, c) * 1.003,
                "low": min(prev, c) * 0.997,
                "close": c,
                "volume": 8.0e7,
            }
        )
        prev = c
    return pd.concat([keep, pd.DataFrame(rows)], ignore_index=True)


class RecordingNotifier:
    """A notifier that keeps every notice (the real ones queue them for Discord)."""

    def __init__(self) -> None:
        self.notices: list[str] = []

    def notify(self, content: str) -> bool:
        """Keep one notice."""
        self.notices.append(content)
        return True

    def execution(self, symbol: str, side: str, qty: Any, price: Any, **extra: Any) -> bool:
        """Keep a fill notice."""
        return self.notify(f"FILL {side} {qty} {symbol} @ {price} {extra}")

    def error(self, where: str, message: str) -> bool:
        """Keep an error notice."""
        return self.notify(f"ERROR in {where}: {message}")

    def notify_quietly(self, content: str) -> bool:
        """Keep a notice the real notifiers hold back when repeated (every one is kept here)."""
        return self.notify(content)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Nothing to flush."""


@dataclass
class Threshold:
    """The runner's ``RunConfig.min_confidence`` for tests."""

    value: float

    def min_confidence(self, mode: str) -> float:
        """Return the threshold whatever the mode."""
        return self.value


@dataclass
class Ctx:
    """The parts of the runner's ``EngineContext`` the options engine reads."""

    mode: str
    clock: SimClock
    broker: Any
    feed: Any
    journal: Journal
    executor: Executor
    aggregator: Any
    notifier: RecordingNotifier
    universe: tuple[str, ...]
    config: Any
    regime: Any = None
    risk: Any = None
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        """Return the simulated time."""
        return self.clock.now()


async def otm_strip(ctx: Ctx, kind: str, away: float, min_days: int = 21) -> tuple[Any, pd.Series]:
    """Return the first SPY expiry ``min_days`` or more out and its out-of-the-money contracts.

    ``kind`` contracts at least ``away`` (a fraction of spot) out of the money, by strike:
    calls above spot, puts below.
    """
    chain = await ctx.feed.option_chain("SPY")
    spot = float((await ctx.feed.quote("SPY")).mid)
    start = ctx.now.date()
    expiry = min(e for e in set(chain["expiry"]) if (e.date() - start).days >= min_days)
    otm = (
        chain["strike"] >= spot * (1 + away)
        if kind == "call"
        else chain["strike"] <= spot * (1 - away)
    )
    rows = chain[(chain["expiry"] == expiry) & (chain["type"] == kind) & otm]
    return expiry, rows.sort_values("strike")["symbol"]


def make_world(
    tmp: Path,
    shared: Path,
    start: datetime,
    *,
    regime: str = "sideways",
    snapshot: bool = False,
    threshold: float = 0.0,
    cash: str = "100000",
    symbols: tuple[str, ...] = ("SPY",),
    designed: dict[str, float] | None = None,
) -> Ctx:
    """Build the world at ``start`` (see the module docstring)."""
    clock = SimClock(start)
    snaps = []
    if snapshot:
        snap = load_chain_snapshot(
            shared / "options" / "SPY_2023-09-14_cboe.csv", as_of=start - timedelta(minutes=5)
        )
        snaps.append(snap)
    bars = spy_history(shared, symbols)
    if designed is not None:
        bars = with_designed_month(bars, designed)
    feed = ReplayFeed(bars, clock, snapshots=snaps, dividend_yield=0.015)
    broker = SimBroker(feed, clock, SimConfig(cash=Decimal(cash), options_level=3))
    journal = Journal(tmp / "journal.sqlite")
    ex = Executor(broker, journal, clock=clock, quotes=feed)
    state = RegimeState(regime, {regime: 1.0}, "test", start)
    return Ctx(
        "paper",
        clock,
        broker,
        feed,
        journal,
        ex,
        None,
        RecordingNotifier(),
        symbols,
        Threshold(threshold),
        state,
    )


async def hold_bull_put(ctx: Ctx, engine: Any, owner: Any, at: datetime) -> str:
    """Fill a one-lot SPY bull put (21+ days out, short leg 3 % below spot) and book it.

    The spread is bought on the simulated exchange under ``owner`` at any credit (it fills at
    the legs' quotes) and given to ``engine``'s book as held since ``at``; returns its id.
    """
    chain = await ctx.feed.option_chain("SPY")
    spot = float((await ctx.feed.quote("SPY")).mid)
    day = at.date()
    expiry = min(e for e in set(chain["expiry"]) if (e.date() - day).days >= 21)
    puts = chain[
        (chain["expiry"] == expiry) & (chain["type"] == "put") & (chain["strike"] <= spot * 0.97)
    ].sort_values("strike")
    legs = {puts["symbol"].iloc[-1]: -1, puts["symbol"].iloc[-2]: 1}
    opened = await ctx.broker.submit(
        OrderRequest.multileg(
            [
                Leg(s, 1, "buy" if q > 0 else "sell", "buy_to_open" if q > 0 else "sell_to_open")
                for s, q in legs.items()
            ],
            1,
            Decimal("-0.01"),
            owner=owner,
        )
    )
    assert opened.status.value == "filled", opened
    structure_id = "SPY-bull_put-test"
    engine._book_of(ctx).opened(
        Held(
            structure_id, "bull_put", "SPY", pd.Timestamp(expiry).date(), legs, 1,
            float(opened.filled_avg_price or 0), 500.0, at, opened.client_order_id,
        )
    )  # fmt: skip
    return structure_id


def notifying_world(tmp: Path, shared: Path, start: datetime, **kw: Any) -> Ctx:
    """``make_world`` whose executor notifies the world's recording notifier too."""
    ctx = make_world(tmp, shared, start, **kw)
    notifier = RecordingNotifier()
    executor = Executor(
        ctx.broker, ctx.journal, notifier=notifier, clock=ctx.clock, quotes=ctx.feed
    )
    return replace(ctx, executor=executor, notifier=notifier)


async def book_short_call(ctx: Ctx, engine: Any, expiry: str, **held: Any) -> Held:
    """Book into ``engine``'s book one short SPY call of ``expiry``, the first strike above spot.

    ``held``: the ``Held`` fields besides the legs, units and underlying (structure_id,
    strategy, entry_net, opened_at, client_order_id, closing_rule...).
    """
    chain = await ctx.feed.option_chain("SPY")
    calls = chain[
        (chain["expiry"] == pd.Timestamp(expiry)) & (chain["type"] == "call")
    ].sort_values("strike")
    spot = float((await ctx.feed.quote("SPY")).mid)
    call = str(calls[calls["strike"] >= spot]["symbol"].iloc[0])
    h = Held(underlying="SPY", expiry=pd.Timestamp(expiry).date(), legs={call: -1}, units=1, **held)
    engine._book_of(ctx).opened(h)
    return h


def order_rows(journal: Path, decision_prefix: str) -> list[tuple[str, str]]:
    """Return (status, reason) of the journal's orders whose decision id starts so, oldest first."""
    with sqlite3.connect(journal) as db:
        return db.execute(
            "SELECT status, reason FROM orders WHERE decision_id LIKE ? ORDER BY rowid",
            (decision_prefix + "%",),
        ).fetchall()


def venue_ctx(
    broker: Any, journal: Path, at: datetime, symbols: tuple[str, ...], feed: Any = None
) -> Ctx:
    """Return an options context on ``broker`` (a loopback venue's clients) at ``at``.

    A simulated clock at ``at``, the journal at ``journal``, an executor, a recording notifier
    and no threshold; ``feed`` where the test serves one.
    """
    clock = SimClock(at)
    j = Journal(journal)
    ex = Executor(broker, j, clock=clock)
    return Ctx(
        "paper", clock, broker, feed, j, ex, None, RecordingNotifier(), symbols, Threshold(0.0)
    )
