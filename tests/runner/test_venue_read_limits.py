"""The runner's own looks at a keyed venue before the day's trading are cut at the limit.

The runner against the loopback fake venue through alpaca-py, with a client that waits out
the fake's hold (only ``[runner] cycle_limit_seconds`` ends a read): a look the venue holds
must be cut and handled as a venue that did not answer, not hold the day's session.
References: the notices received.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import v28quant.runner as runner_mod
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, fake_broker, with_cycle_limit
from v28quant.calendar import ExchangeCalendar
from v28quant.runner import Runner
from v28quant.venue_calendar import follow_venue_calendar
from v28quant.venue_clock import VenueClock

CLOCK = "/v2/clock"
LIMIT_S = 0.5


class Notices:
    """Records the notices the runner sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def error(self, where: str, message: str) -> bool:
        self.sent.append(f"{where}: {message}")
        return True

    def notify(self, content: str) -> bool:
        self.sent.append(content)
        return True


@pytest.fixture
def fake() -> Iterator[FakeAlpacaTrading]:
    f = FakeAlpacaTrading(now=OPEN).start()
    yield f
    f.stop()


def _runner(fake: FakeAlpacaTrading) -> Runner:
    # a client that waits out the venue's hold: only the runner's limit ends the read
    broker = fake_broker(fake.url, timeout_s=120.0)
    ctx: Any = SimpleNamespace(
        mode="paper",
        config=with_cycle_limit(LIMIT_S),
        notifier=Notices(),
        broker=broker,
        calendar=ExchangeCalendar(),
        now=OPEN,
        shared={},
    )
    clock = VenueClock(broker.clock, wall=lambda: OPEN)
    venue = SimpleNamespace(venue_clock=clock, keyless=False, sim_clock=None)
    return Runner(ctx, venue, [SimpleNamespace(name="equity")])


@pytest.mark.asyncio
async def test_a_venue_clock_read_the_venue_holds_is_cut_and_read_again(
    fake: FakeAlpacaTrading, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_mod, "VENUE_RETRY_S", (0.01, 0.04))
    runner = _runner(fake)
    answer = threading.Event()
    fake.inject("GET", CLOCK, 200, hold=answer)  # the venue takes the first read, says nothing
    try:
        assert await asyncio.wait_for(runner._venue_up(), 30)
    finally:
        answer.set()
    cut, back = runner.ctx.notifier.sent
    assert f"venue clock: no answer within {LIMIT_S:g} s" in cut
    assert "trading resumes" in back
    await runner.ctx.broker.aclose()


@pytest.mark.asyncio
async def test_a_venue_calendar_read_the_venue_holds_is_cut_and_the_installed_one_kept(
    fake: FakeAlpacaTrading,
) -> None:
    runner = _runner(fake)
    ctx = runner.ctx
    before = ctx.calendar.session(OPEN.date()).close
    answer = threading.Event()
    fake.inject("GET", "/v2/calendar", 200, hold=answer)  # taken, never answered
    try:
        read = follow_venue_calendar(ctx, OPEN.date(), limit_s=runner._read_limit_s())
        assert not await asyncio.wait_for(read, 30)
    finally:
        answer.set()
    assert ctx.calendar.session(OPEN.date()).close == before  # the installed calendar stands
    await ctx.broker.aclose()
