"""A restart inside a session neither loses nor repeats the holds and vetoes in force.

The equity engine journals a hold (a short view without ``allow_short``) and the stacked
ensemble's veto as each starts, changes and ends. A restarted engine takes those in force from
the journal: one that ends after the restart gets its end row, one still in force is not
journaled again. Reference: the journal read with sqlite3, and the trader's ``why``.
"""

from __future__ import annotations

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

REGIME = RegimeState("bull_quiet", {"bull_quiet": 1.0}, "test", OPEN)


class Ensemble:
    """The stacked ensemble's AAPL vote: -0.9 at 0.9 (vetoes a buy), or none when ``vote``."""

    name = "stacked_ensemble"

    def __init__(self, vote: bool) -> None:
        self.vote = vote

    def signals(self, view: Any) -> list[Signal]:
        if not self.vote:
            return []
        return [Signal(self.name, "AAPL", -0.9, 0.9, ts=OPEN - timedelta(days=1))]


async def run(
    fake: FakeAlpacaTrading, journal: Path, at: timedelta, value: float, vote: bool = False
) -> str:
    """Start an engine on ``journal``, run one cycle at OPEN + ``at``, stop it; its detail."""
    fake.now = OPEN + at
    ctx, engine = aapl_engine(
        fake.url, journal, fake.now, value, REGIME, load_config()[1].equity, (10_000, 10_000)
    )
    engine.sources.append(Ensemble(vote))
    try:
        return str((await engine.cycle(ctx)).details["AAPL"])
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()


async def end_of_day(fake: FakeAlpacaTrading, journal: Path, at: timedelta) -> None:
    """Start an engine on ``journal`` and run only its end of day, at OPEN + ``at``."""
    ctx, engine = aapl_engine(
        fake.url, journal, OPEN + at, 1.0, REGIME, load_config()[1].equity, (10_000, 10_000)
    )
    try:
        await engine.end_of_day(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()


def rows(journal: Path, actions: tuple[str, str]) -> list[tuple[timedelta, str]]:
    """Return AAPL's decisions with ``actions``, as (time after OPEN, action), oldest first."""
    with sqlite3.connect(journal) as db:
        found = db.execute(
            "SELECT ts, action FROM decisions WHERE symbol = 'AAPL' AND action IN (?, ?) "
            "ORDER BY ts, rowid",
            actions,
        ).fetchall()
    return [(datetime.fromisoformat(ts) - OPEN, action) for ts, action in found]


def lines_in_force(journal: Path) -> list[str]:
    """Return the trader's ``why AAPL`` lines that give a hold or a veto in force."""
    from v28quant.journal import Journal

    with Journal(journal) as j:
        lines = why(j, "AAPL", None)
    return [line for line in lines if "equity hold" in line or "gated by" in line]


@pytest.fixture
def fake() -> Any:
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "99.99", "100.01", 10_000, 10_000)
    try:
        yield trading
    finally:
        trading.stop()


HOLD = ("hold", "hold_ended")
GATE = ("gated", "ungated")


@pytest.mark.asyncio
async def test_a_hold_begun_before_a_restart_ends_after_it(fake: Any, tmp_path: Path) -> None:
    # a short view without allow_short holds at 0; restarted, the view turns long at 5: a buy
    journal = tmp_path / "j.sqlite"
    assert (await run(fake, journal, timedelta(0), -1.0)).startswith("hold: a short view")
    assert (await run(fake, journal, timedelta(minutes=5), 1.0)).startswith("buy ")
    assert rows(journal, HOLD) == [(timedelta(0), "hold"), (timedelta(minutes=5), "hold_ended")]
    assert lines_in_force(journal) == []


@pytest.mark.asyncio
async def test_a_hold_in_force_across_a_restart_is_journaled_once(
    fake: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    for minutes in (0, 5, 10):  # a restart before each cycle
        await run(fake, journal, timedelta(minutes=minutes), -1.0)
    assert rows(journal, HOLD) == [(timedelta(0), "hold")]


@pytest.mark.asyncio
async def test_a_hold_in_force_at_a_restart_after_the_last_cycle_ends_with_the_day(
    fake: Any, tmp_path: Path
) -> None:
    # restarted after the last cycle, the runner goes straight to the end of day
    journal = tmp_path / "j.sqlite"
    await run(fake, journal, timedelta(0), -1.0)
    await end_of_day(fake, journal, timedelta(hours=5, minutes=31))
    assert rows(journal, HOLD) == [
        (timedelta(0), "hold"),
        (timedelta(hours=5, minutes=31), "hold_ended"),
    ]


@pytest.mark.asyncio
async def test_a_hold_left_in_force_by_an_earlier_session_ends_at_the_next(
    fake: Any, tmp_path: Path
) -> None:
    # the process died before the end of day: the next session's first cycle ends the old
    # hold and, the short view going on, journals the new session's own
    journal = tmp_path / "j.sqlite"
    await run(fake, journal, timedelta(0), -1.0)
    await run(fake, journal, timedelta(days=1), -1.0)
    assert rows(journal, HOLD) == [
        (timedelta(0), "hold"),
        (timedelta(days=1), "hold_ended"),
        (timedelta(days=1), "hold"),
    ]


@pytest.mark.asyncio
async def test_a_veto_begun_before_a_restart_ends_after_it(fake: Any, tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    assert await run(fake, journal, timedelta(0), 1.0, vote=True) == (
        "gated by the stacked ensemble"
    )
    assert (await run(fake, journal, timedelta(minutes=5), 1.0)).startswith("buy ")
    assert rows(journal, GATE) == [(timedelta(0), "gated"), (timedelta(minutes=5), "ungated")]
    assert lines_in_force(journal) == []


@pytest.mark.asyncio
async def test_a_veto_in_force_across_a_restart_is_journaled_once(
    fake: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    for minutes in (0, 5, 10):  # a restart before each cycle
        await run(fake, journal, timedelta(minutes=minutes), 1.0, vote=True)
    assert rows(journal, GATE) == [(timedelta(0), "gated")]
