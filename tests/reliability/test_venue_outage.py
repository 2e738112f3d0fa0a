"""A venue that stops answering: the runner waits it out, says so twice, and carries on.

The runner's read of the venue clock (``Runner._venue_up``) against a venue clock that fails a
set number of times (``BrokerUnavailable``, as ``AlpacaBroker`` raises for 5xx and timeouts),
then answers. Reference: the count of reads and the notices a recording notifier received.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import v28quant.runner as runner_mod
from v28quant.broker import BrokerUnavailable
from v28quant.broker.base import MarketClock
from v28quant.config import load_config
from v28quant.runner import Runner
from v28quant.venue_clock import VenueClock


class Notices:
    """Records notices by kind."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def error(self, where: str, message: str) -> bool:
        self.sent.append(("error", message))
        return True

    def notify(self, content: str) -> bool:
        self.sent.append(("notice", content))
        return True

    def notify_quietly(self, content: str) -> bool:
        return self.notify(content)


class FlakyClock:
    """A venue clock whose first ``failures`` reads raise ``BrokerUnavailable``."""

    def __init__(self, failures: int) -> None:
        self.failures, self.reads = failures, 0

    async def refresh(self) -> None:
        self.reads += 1
        if self.reads <= self.failures:
            raise BrokerUnavailable("Alpaca 503: <html>Service Unavailable</html>", status=503)


def _runner(failures: int, once: bool = False) -> tuple[Runner, FlakyClock, Notices]:
    clock, notes = FlakyClock(failures), Notices()
    ctx: Any = SimpleNamespace(notifier=notes, mode="paper", config=load_config()[1])
    venue: Any = SimpleNamespace(venue_clock=clock, keyless=False, sim_clock=None)
    return Runner(ctx, venue, [SimpleNamespace(name="equity")], once=once), clock, notes


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_mod, "VENUE_RETRY_S", (0.001, 0.004))


async def test_an_outage_is_waited_out_and_trading_resumes(tally: Counter[str]) -> None:
    tally["faults"] += 1
    runner, clock, notes = _runner(failures=6)
    assert await runner._venue_up()
    assert clock.reads == 7
    kinds = [k for k, _ in notes.sent]
    assert kinds == ["error", "notice"], notes.sent  # once when it starts, once when it ends
    assert "venue unavailable" in notes.sent[0][1]
    assert "trading resumes" in notes.sent[1][1]


class DisagreeingVenue:
    """A venue whose clock answers every read: 3 hours ahead of the host at first, then not.

    Its first two reads disagree (the second back at the host's time); the third, near the
    host's time, is taken at once.
    """

    def __init__(self) -> None:
        self.reads = 0

    async def clock(self) -> MarketClock:
        self.reads += 1
        ts = HOST + (timedelta(hours=3) if self.reads == 1 else timedelta(seconds=self.reads))
        return MarketClock(ts, True, ts + timedelta(days=1), ts + timedelta(hours=2))


HOST = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)


async def test_first_clock_reads_that_disagree_are_not_called_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the venue answered every read; only its time was unsure until two reads agreed
    venue, notes = DisagreeingVenue(), Notices()
    clock = VenueClock(venue.clock, wall=lambda: HOST)
    ctx: Any = SimpleNamespace(notifier=notes, mode="paper", config=load_config()[1])
    place: Any = SimpleNamespace(venue_clock=clock, keyless=False, sim_clock=None)
    runner = Runner(ctx, place, [SimpleNamespace(name="equity")])
    assert await runner._venue_up()
    assert venue.reads == 3
    assert [k for k, _ in notes.sent] == ["error", "notice"], notes.sent
    start, end = (message for _, message in notes.sent)
    said = [start, end, caplog.text]
    assert not any("unavailable" in text or "answers again" in text for text in said), said
    assert "first reads disagree" in start, said
    assert "first reads disagree" in caplog.text, said
    assert "trading resumes" in end, said


async def test_once_does_not_wait_for_the_venue() -> None:
    runner, clock, notes = _runner(failures=1, once=True)
    assert not await runner._venue_up()
    assert clock.reads == 1
    assert [k for k, _ in notes.sent] == ["error"]


async def test_a_stop_during_the_outage_ends_the_wait() -> None:
    runner, clock, _ = _runner(failures=10**9)
    task = asyncio.ensure_future(runner._venue_up())
    while clock.reads < 3:
        await asyncio.sleep(0.001)
    runner.stop.set()
    assert not await task


async def test_a_venue_failing_the_pre_market_job_means_no_trading_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import v28quant.premarket as premarket

    async def down(*_: Any) -> bool:
        raise BrokerUnavailable("Alpaca unreachable: ConnectTimeout")

    monkeypatch.setattr(premarket, "shared_premarket", down)
    runner, _, notes = _runner(failures=0)
    assert not await runner._premarket()
    assert notes.sent == [("error", notes.sent[0][1])]
    assert "pre-market job failed" in notes.sent[0][1]


async def test_a_short_outage_at_the_pre_market_job_is_waited_out_not_the_session_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The job meets the venue down twice, then runs: the session trades (True), with one
    # notice that trading waits; the venue is asked (its clock read) before each new try.
    import v28quant.premarket as premarket

    calls = []

    async def flaky(*_: Any) -> bool:
        calls.append(1)
        if len(calls) <= 2:
            raise BrokerUnavailable("Alpaca 503: Service Unavailable", status=503)
        return True

    monkeypatch.setattr(premarket, "shared_premarket", flaky)
    runner, clock, notes = _runner(failures=0)
    now = datetime(2022, 6, 15, 13, 0, tzinfo=UTC)
    runner.ctx.now = now
    assert await runner._premarket(until=now + timedelta(hours=6))
    assert len(calls) == 3
    assert clock.reads == 2  # the venue was asked before each new try
    waits = [m for k, m in notes.sent if "no trading until it runs again" in m]
    assert len(waits) == 1, notes.sent
    assert not any(m.endswith("; no trading") for _, m in notes.sent)
    # past the session's last cycle the job is not tried again: no trading, said once
    calls.clear()
    runner.ctx.now = now + timedelta(hours=7)
    assert not await runner._premarket(until=now + timedelta(hours=6))
    assert len(calls) == 1
    assert notes.sent[-1][1].endswith("; no trading")
