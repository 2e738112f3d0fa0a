"""The stacked ensemble's veto of a trade is journaled when it starts, changes and ends.

A veto lasting all day would otherwise add a row every cycle that says the same, hiding the
rows that say something new. Reference: the journal read with sqlite3, and the loopback fake
exchange's own record of the orders it was sent.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.equity_world import aapl_engine
from fakes.fixtures import OPEN
from v28quant.cli import why
from v28quant.config import load_config
from v28quant.signals import RegimeState, Signal
from v28quant.why import explain

REGIME = RegimeState("bull_quiet", {"bull_quiet": 1.0}, "test", OPEN)


class Ensemble:
    """The stacked ensemble's AAPL vote: ``vote`` (value, confidence), or None for no vote."""

    name = "stacked_ensemble"

    def __init__(self) -> None:
        self.vote: tuple[float, float] | None = (-0.9, 0.9)

    def signals(self, view: Any) -> list[Signal]:
        if self.vote is None:
            return []
        value, confidence = self.vote
        return [Signal(self.name, "AAPL", value, confidence, ts=OPEN - timedelta(days=1))]


@pytest.mark.asyncio
async def test_a_veto_is_journaled_when_it_starts_changes_and_ends(tmp_path: Path) -> None:
    fake = FakeAlpacaTrading(now=OPEN).start()
    fake.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    journal = tmp_path / "j.sqlite"
    ctx, engine = aapl_engine(
        fake.url, journal, OPEN, 1.0, REGIME, load_config()[1].equity, (10_000, 10_000)
    )
    ensemble = Ensemble()
    engine.sources.append(ensemble)
    details = []
    try:
        # a full long view, vetoed by the ensemble's -0.9 at 0.9 (>= the 0.55 threshold) for
        # three cycles, at 0.95 for one, then no vote: the buy goes
        for minutes in (0, 5, 10, 15, 20):
            ctx.now = fake.now = OPEN + timedelta(minutes=minutes)
            ensemble.vote = {15: (-0.9, 0.95), 20: None}.get(minutes, (-0.9, 0.9))
            details.append((await engine.cycle(ctx)).details["AAPL"])
            if minutes == 10:  # the trader asks why at 10: the veto journaled at 0 answers
                lines = why(ctx.journal, "AAPL", ctx.now)
                answer = explain(ctx.journal, "AAPL", ctx.now)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        fake.stop()
    assert details[:4] == ["gated by the stacked ensemble"] * 4, details
    assert details[4].startswith("buy "), details
    assert [b["side"] for m, p, b in fake.requests if (m, p) == ("POST", "/v2/orders")] == ["buy"]
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT ts, action, reasoning FROM decisions WHERE symbol = 'AAPL' "
            "AND action IN ('gated', 'ungated') ORDER BY ts, rowid"
        ).fetchall()
    assert [(datetime.fromisoformat(ts) - OPEN, action) for ts, action, _ in rows] == [
        (timedelta(0), "gated"),
        (timedelta(minutes=15), "gated"),
        (timedelta(minutes=20), "ungated"),
    ]
    assert [json.loads(r)["ml_gate"]["ensemble_confidence"] for _, _, r in rows] == [
        0.9,
        0.95,
        0.95,
    ]
    assert any(
        "gated by the stacked ensemble since 2024-06-03 14:30Z: its vote -0.90 at confidence 0.90"
        in line
        for line in lines
    ), lines
    assert [d["action"] for d in answer["decisions"]] == ["gated"], answer["decisions"]
