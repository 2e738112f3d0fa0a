"""A stray-share flatten an earlier run sent is taken as sent, not sized again and refused.

A bull put's short put is assigned 200 shares on top of the equity engine's short 100: the
account holds +100 and the flatten sells those 100 (it stops at flat). A run of an older
version sent that sell and died before its book was saved, so the restart reads the assignment
again, with the account now flat: sized afresh it would sell 200 under the same client order
id, which the journal and the venue hold for the sale of 100. The order sent is the flatten's
answer: journaled, the owed flatten cleared, nothing more sent, on every try after.

On the loopback fake of Alpaca's trading API with the real alpaca-py client; the reference is
the fake's own orders and the journal read with sqlite3.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.options_world import Ctx, RecordingNotifier, Threshold
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.broker.base import Activity
from v28quant.clock import SimClock
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held

ET = ZoneInfo("America/New_York")
NOW = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
SHORT_PUT, LONG_PUT = "SPY231020P00440000", "SPY231020P00427000"
FLATTEN = Owner("options", "flatten", "flatten:SPY:a1")  # the id an earlier run sent under


@pytest.fixture
def trading() -> Iterator[FakeAlpacaTrading]:
    """Serve the venue at 15:30 on a session, SPY quoted, the account long the 100 left."""
    fake = FakeAlpacaTrading(now=NOW).start()
    fake.set_quote("SPY", "450.80", "450.82")
    fake.positions["SPY"] = [Decimal(100), Decimal("440")]
    try:
        yield fake
    finally:
        fake.stop()


def _ctx(tmp_path: Path, broker: AlpacaBroker) -> Ctx:
    clock = SimClock(NOW)
    journal = Journal(tmp_path / "journal.sqlite")
    notifier = RecordingNotifier()
    executor = Executor(broker, journal, clock=clock, notifier=notifier)
    return Ctx(
        "paper", clock, broker, None, journal, executor, None, notifier, ("SPY",),
        Threshold(0.0),
    )  # fmt: skip


def _book_before_the_flatten_was_saved(path: Path) -> OptionsEngine:
    """Return an engine whose book holds the bull put and has not seen its assignment."""
    eng = OptionsEngine(None, book_path=path)
    book = eng._book_of(None)  # type: ignore[arg-type]
    book.opened(
        Held("s1", "bull_put", "SPY", date(2023, 10, 20), {SHORT_PUT: -1, LONG_PUT: 1}, 2,
             -1.47, 1153.0, NOW, "v28-options-bull_put-000000000000")
    )  # fmt: skip
    book.save()
    return eng


def _flatten_rows(journal: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(str(journal))
    rows = db.execute(
        "SELECT status, request FROM orders WHERE client_order_id = ?",
        (FLATTEN.client_order_id,),
    ).fetchall()
    db.close()
    return [(str(s), str(r)) for s, r in rows]


@pytest.mark.asyncio
async def test_a_flatten_an_earlier_run_sent_is_its_answer_after_a_restart(
    tmp_path: Path, trading: FakeAlpacaTrading
) -> None:
    broker = AlpacaBroker(
        "PKTESTKEY", "test-secret-value", url=trading.url,
        limiter=RateLimiter(rate=60_000, burst=1000), backoff_s=0.0,
    )  # fmt: skip
    ctx = _ctx(tmp_path, broker)
    try:
        # the earlier run's flatten: the 100 the account held, sold to flat
        sold = OrderRequest.equity("SPY", 100, "sell", owner=FLATTEN)
        first = await ctx.executor.place(Decision(sold, {"rule": "flatten (earlier run)"}))
        assert first.status == "filled"
        assert "SPY" not in trading.positions

        eng = _book_before_the_flatten_was_saved(tmp_path / "book.json")
        assigned = Activity("a1", "OPASN", SHORT_PUT, Decimal(2), None, NOW)

        async def activities(since: datetime | None = None) -> list[Activity]:
            return [assigned]

        broker.activities = activities  # type: ignore[method-assign]
        for _ in range(2):  # the restart's cycle, and the one after
            await eng._activities(ctx, eng._book_of(ctx))
        restarted = OptionsEngine(None, book_path=tmp_path / "book.json")
        await restarted._activities(ctx, restarted._book_of(ctx))
    finally:
        await broker.aclose()

    posts = [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]
    assert [(b["side"], Decimal(str(b["qty"]))) for b in posts] == [("sell", 100)]
    assert restarted._book_of(ctx).stray == {}
    ((status, request),) = _flatten_rows(ctx.journal.path)
    assert status == "filled"
    assert '"qty": "100"' in request
    assert not [n for n in ctx.notifier.notices if "ERROR" in n]
