"""The operator's flatten on the loopback Alpaca fake (real alpaca-py) when a close is refused.

A flatten is journaled ``flattened`` only when every position got its closing order: one the
venue rejects (here a 403, as Alpaca answers while an earlier order still holds the shares)
leaves the flatten pending, so the next account watch tries again. Reference: the fake's own
record of the orders it received and the positions it holds.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker
from fakes.options_world import RecordingNotifier
from v28quant.execution import Executor
from v28quant.journal import Journal
from v28quant.premarket import flatten
from v28quant.risk import FLATTEN, halt_state, record_control


@pytest.mark.asyncio
async def test_a_rejected_stock_close_leaves_the_flatten_pending(tmp_path: Path) -> None:
    """AAPL 10 held; the first sell is rejected: not flattened; the retry closes it."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "99.99", "100.01", 1000, 1000)
    trading.positions["AAPL"] = [Decimal(10), Decimal(100)]
    trading.inject(
        "POST",
        "/v2/orders",
        403,
        {"code": 40310000, "message": "insufficient qty available for order"},
    )
    broker = fake_broker(trading.url)
    journal = Journal(tmp_path / "journal.sqlite")
    ctx: Any = SimpleNamespace(
        now=OPEN,
        broker=broker,
        journal=journal,
        executor=Executor(broker, journal),
        notifier=RecordingNotifier(),
    )
    record_control(journal, FLATTEN, "test", "operator", OPEN)
    try:
        await flatten(ctx, fill_wait_s=0.0)
        assert trading.positions["AAPL"][0] == 10
        assert halt_state(journal).flatten_pending  # the next watch tries again
        assert any("flatten" in n and "AAPL" in n for n in ctx.notifier.notices)
        ctx.now = OPEN + timedelta(minutes=5)  # the next cycle's account watch
        await flatten(ctx, fill_wait_s=0.0)
    finally:
        await broker.aclose()
        journal.close()
        trading.stop()
    posts = [b for m, p, b in trading.requests if (m, p) == ("POST", "/v2/orders")]
    assert [(b["symbol"], b["side"], b["qty"]) for b in posts] == [("AAPL", "sell", 10)] * 2
    assert "AAPL" not in trading.positions
    assert not halt_state(Journal(tmp_path / "journal.sqlite")).flatten_pending
