"""A fill whose account activity Alpaca posts late is journaled at the next account watch.

Alpaca's ``/v2/account/activities`` can lag the order's status: the order reads ``filled`` while
the FILL row is not listed yet. The execution service then defers the fill (it never writes a
position snapshot the activities do not explain). Nothing else in the session would look again
until the next morning's reconcile, which no longer knows whose fill it was; the runner's
per-slot account watch settles it. Reference: the fake's own activity list and sqlite3 reads of
the journal.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker
from fakes.options_world import RecordingNotifier
from v28quant.broker.base import OrderRequest, Owner
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.premarket import watch_account
from v28quant.risk import RiskGate
from v28quant.settings import RiskLimits


def _fills(path: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(str(path))
    try:
        return db.execute("SELECT fill_id, client_order_id, symbol FROM fills").fetchall()
    finally:
        db.close()


@pytest.mark.asyncio
async def test_a_fill_posted_late_is_journaled_at_the_next_watch(tmp_path: Path) -> None:
    """Buy 10 AAPL: filled at once, its FILL activity missing from the first listing."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "99.99", "100.01", 1000, 1000)
    trading.inject("GET", "/v2/account/activities", 200, [])  # not posted yet
    broker = fake_broker(trading.url)
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    ctx: Any = SimpleNamespace(
        now=OPEN,
        broker=broker,
        journal=journal,
        executor=Executor(broker, journal),
        notifier=RecordingNotifier(),
        risk=RiskGate(RiskLimits.model_validate({}), journal),
        shared={},  # the runner's per-run state (EngineContext.shared)
    )
    req = OrderRequest.equity("AAPL", 10, "buy", owner=Owner("equity", "aggregate", "d1"))
    try:
        out = await ctx.executor.place(Decision(req, {"why": "test"}))
        assert out.status == "filled"
        assert _fills(path) == []  # deferred: the activity was not listed
        await watch_account(ctx, SimpleNamespace(venue_clock=None))
    finally:
        await broker.aclose()
        journal.close()
        trading.stop()
    (activity,) = trading.activities
    assert _fills(path) == [(activity["id"], req.client_order_id, "AAPL")]
