"""Keyless paper resumes where the simulated account saved beside its journal stopped."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest
from fakes.fixtures import StaticQuotes
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.sim import SimBroker, state_path_for
from v28quant.calendar import ET
from v28quant.clock import SimClock
from v28quant.runner_args import UsageError
from v28quant.venue import _resume

SESSIONS = (date(2024, 6, 3), date(2024, 6, 4), date(2024, 6, 5))
START = datetime.combine(SESSIONS[0], time(8, 55), ET)


async def _trade_at(journal: Path, when: datetime) -> None:
    clock = SimClock(when)
    quotes = StaticQuotes(clock)
    quotes.set("SPY", "530.00", "530.10")
    broker = SimBroker(quotes, clock, state_path=state_path_for(journal))
    await broker.submit(OrderRequest.equity("SPY", 1, "buy", owner=Owner("equity", "t", "1")))


def test_no_saved_account_replays_from_the_start(tmp_path: Path) -> None:
    assert _resume(tmp_path / "j.sqlite", SESSIONS, START) == (SESSIONS, START)


@pytest.mark.asyncio
async def test_a_saved_account_moves_the_start_forward(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    saved = datetime.combine(SESSIONS[1], time(11, 0), ET)
    await _trade_at(journal, saved)
    assert _resume(journal, SESSIONS, START) == (SESSIONS[1:], saved)


@pytest.mark.asyncio
async def test_an_account_past_every_session_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    await _trade_at(journal, datetime.combine(date(2024, 6, 6), time(11, 0), ET))
    with pytest.raises(UsageError, match="use a new journal"):
        _resume(journal, SESSIONS, START)
