"""The runner's day on the simulated exchange, with engines that record what they are asked.

Independent reference: the exchange calendar's windows (09:45 to 15:45 New York in 5-minute
steps on a full day) and the behaviour the runner promises: an engine's exception is isolated,
an overrunning cycle skips the slots it ran into, a stop signal lets the cycle in flight finish.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes.discord import FakeDiscord
from fakes.notices import Notices
from v28quant.broker.base import OrderRequest, Owner, Position
from v28quant.calendar import ET, default_calendar
from v28quant.config import load_config
from v28quant.engines import CycleReport, EngineContext
from v28quant.journal import Journal
from v28quant.notify import DiscordNotifier, NullNotifier
from v28quant.risk import RiskGate
from v28quant.runner import Runner
from v28quant.runner_args import RunArgs
from v28quant.signals import Signal
from v28quant.venue import open_venue

UNIVERSE = ("AAPL", "MSFT", "JPM")


class Recorder:
    """An engine that records its calls; optionally raises or overruns in some cycles."""

    def __init__(self, name: str, fail_at: int | None = None, overrun_at: int | None = None):
        self.name = name
        self.fail_at, self.overrun_at = fail_at, overrun_at
        self.premarkets: list[datetime] = []
        self.cycles: list[datetime] = []
        self.ends = 0
        self.on_cycle = None

    async def premarket(self, ctx: EngineContext) -> None:
        self.premarkets.append(ctx.now)

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        self.cycles.append(ctx.now)
        n = len(self.cycles)
        if self.on_cycle is not None:
            self.on_cycle(n)
        if n == self.fail_at:
            raise RuntimeError(f"{self.name} broke in cycle {n}")
        if n == self.overrun_at:
            ctx.clock.advance(timedelta(minutes=12))  # this cycle took 12 simulated minutes
        return CycleReport(self.name, ctx.now, note=f"cycle {n}")

    async def end_of_day(self, ctx: EngineContext) -> None:
        self.ends += 1


def _runner(tmp_path: Path, engines: list[Recorder], minutes: int = 30) -> Runner:
    settings, cfg = load_config(None, journal_path=tmp_path / "j.sqlite")
    args = RunArgs("paper", None, UNIVERSE, None, None, None, 1, False, "INFO", None)
    cal = default_calendar()
    venue = open_venue("paper", settings, cfg, args, cal)
    journal = Journal(tmp_path / "j.sqlite")
    ctx = EngineContext(
        mode="paper",
        clock=venue.clock,
        broker=venue.broker,
        feed=venue.feed,
        journal=journal,
        executor=None,
        aggregator=None,
        risk=RiskGate(settings.risk, journal, cal),
        settings=settings,
        config=cfg,
        notifier=NullNotifier(),
        universe=venue.universe,
        calendar=cal,
        model_dir=tmp_path / "models",
        synthetic=True,
    )
    return Runner(ctx, venue, engines, cycle_minutes=minutes)


async def _discord_notices(runner: Runner) -> list[str]:
    """Run ``runner`` with its notices sent to the loopback Discord fake; return what it got."""
    with FakeDiscord() as discord:
        runner.ctx.notifier = notifier = DiscordNotifier(discord.webhook_url, min_interval=0.0)
        assert await runner.run() == 0
        await notifier.aclose()
    return [str(m["content"]) for m in discord.received]


@pytest.mark.asyncio
async def test_a_day_runs_every_slot_and_isolates_a_failing_engine(tmp_path: Path) -> None:
    good, bad = Recorder("good"), Recorder("bad", fail_at=2)
    runner = _runner(tmp_path, [good, bad])
    day = runner.venue.sessions[0]
    windows = default_calendar().windows(day)
    assert await runner.run() == 0
    expected = list(windows.cycles[::6])  # 30-minute cycles: 09:45, 10:15, ..., 15:45
    assert expected[0].astimezone(ET).strftime("%H:%M") == "09:45"
    assert good.cycles == expected
    assert bad.cycles == expected  # the failure in cycle 2 stopped neither engine
    assert good.premarkets == bad.premarkets == [windows.premarket]
    assert good.ends == bad.ends == 1
    errors = runner.ctx.journal.decisions(action="error")
    assert [e["engine"] for e in errors] == ["bad"]
    assert "broke in cycle 2" in errors[0]["reasoning"]["error"]
    cycles = runner.ctx.journal.decisions(engine="good", action="cycle")
    assert len(cycles) == len(expected)
    assert runner.ctx.journal.decisions(engine="regime", action="regime")  # shared pre-market
    assert runner.state.equity[0][0] == day
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_an_overrun_skips_the_next_slot_never_stacks(tmp_path: Path) -> None:
    slow, other = Recorder("slow", overrun_at=1), Recorder("other")
    runner = _runner(tmp_path, [slow, other], minutes=5)
    windows = default_calendar().windows(runner.venue.sessions[0])
    await runner.run()
    slots = list(windows.cycles)
    # the first cycle ends at 09:57: the 09:50 and 09:55 slots are skipped, 10:00 runs
    assert slow.cycles[:2] == [slots[0], slots[3]]
    assert len(slow.cycles) == len(slots) - 2
    assert runner.state.skipped >= 2
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_stop_signal_finishes_the_cycle_in_flight(tmp_path: Path) -> None:
    a, b = Recorder("a"), Recorder("b")
    runner = _runner(tmp_path, [a, b])
    a.on_cycle = lambda n: runner.on_signal(signal.SIGTERM) if n == 3 else None
    assert await runner.run() == 0
    assert len(a.cycles) == 3  # the third cycle ran to its end, no fourth started
    assert len(b.cycles) == 3
    assert a.ends == 0  # stopped before the close: no end-of-day for a cut session
    assert runner.ctx.journal.integrity_check() == "ok"
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_stop_signal_in_the_pre_market_job_starts_no_other_engines_job(
    tmp_path: Path,
) -> None:
    first, second = Recorder("first"), Recorder("second")
    runner = _runner(tmp_path, [first, second])

    async def premarket_then_sigterm(ctx: EngineContext) -> None:
        first.premarkets.append(ctx.now)
        runner.on_signal(signal.SIGTERM)  # systemd stops the service mid pre-market

    first.premarket = premarket_then_sigterm  # type: ignore[method-assign]
    assert await runner.run() == 0
    assert len(first.premarkets) == 1  # the job in flight finished
    assert second.premarkets == []  # the next engine's refits were not started
    assert first.cycles == second.cycles == []
    runner.ctx.journal.close()


def _fit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from v28quant.regime.hierarchical import HierarchicalRegimeController

    def fit(self: HierarchicalRegimeController, *args: object, **kwargs: object) -> None:
        raise np.linalg.LinAlgError("singular covariance in state 3")

    monkeypatch.setattr(HierarchicalRegimeController, "fit", fit)


@pytest.mark.asyncio
async def test_a_failed_regime_fit_with_nothing_to_fall_back_on_skips_the_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fit_fails(monkeypatch)
    engine = Recorder("equity")
    runner = _runner(tmp_path, [engine])
    runner.ctx.notifier = notices = Notices()
    assert await runner.run() == 0  # the runner lives on; the session is not traded
    assert engine.cycles == []
    (row,) = runner.ctx.journal.decisions(engine="regime", action="unavailable")
    assert "singular covariance in state 3" in row["reasoning"]["error"]
    assert any("no trading today" in n and "singular covariance" in n for n in notices.sent)
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_a_failed_regime_refit_keeps_the_last_fit_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from v28quant.premarket import REGIME_REFIT_SESSIONS, assess_regime, log_returns

    runner = _runner(tmp_path, [Recorder("equity")])
    assert await runner.run() == 0
    ctx = runner.ctx
    fitted = ctx.shared["regime_controller"]
    first = ctx.journal.decisions(engine="regime", action="regime")[-1]["reasoning"]
    assert first["refit"] is True
    ctx.shared["regime_age"] = REGIME_REFIT_SESSIONS  # a refit is due
    ctx.model_dir = tmp_path / "other-models"  # and today's fit is not on file to stand in
    _fit_fails(monkeypatch)
    ctx.notifier = notices = Notices()
    returns = log_returns(ctx.shared["closes"])
    assessment = await assess_regime(ctx, ctx.shared["market_symbol"], returns)
    assert ctx.shared["regime_controller"] is fitted
    assert ctx.shared["regime_age"] == REGIME_REFIT_SESSIONS + 1  # tried again next session
    assert assessment.state.label == first["label"]  # same fit, same data, same answer
    again = ctx.journal.decisions(engine="regime", action="regime")[-1]["reasoning"]
    assert again["refit"] is False
    assert again["refit_failed"].startswith("refit failed, the fit of 5 sessions ago stands")
    assert any("singular covariance in state 3" in n for n in notices.sent)
    ctx.journal.close()


@pytest.mark.asyncio
async def test_any_pre_market_failure_costs_the_session_not_the_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import v28quant.premarket as premarket

    def broken(closes: object) -> None:
        raise KeyError("close")

    monkeypatch.setattr(premarket, "log_returns", broken)
    engine = Recorder("equity")
    runner = _runner(tmp_path, [engine])
    runner.ctx.notifier = notices = Notices()
    assert await runner.run() == 0
    assert engine.cycles == []
    assert engine.ends == 1
    failed, closed = notices.sent
    assert failed == "ERROR in runner: pre-market job failed: KeyError('close'); no trading"
    assert closed.startswith(f"END OF DAY {runner.venue.sessions[0]}:")
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_a_halt_is_notified_once_when_it_begins_and_once_when_it_ends(
    tmp_path: Path,
) -> None:
    # An operator's halt holds for cycles 1-3, a resume lets 4-5 trade, a second halt the rest:
    # one notice for each change, never one a cycle (reference: what the Discord fake received).
    from v28quant.execution import Executor
    from v28quant.risk import HALT, RESUME, record_control

    engine = Recorder("equity")
    runner = _runner(tmp_path, [engine])
    journal = runner.ctx.journal
    runner.ctx.executor = Executor(runner.ctx.broker, journal, clock=runner.ctx.clock)

    def operator(n: int) -> None:
        if n == 3:
            record_control(journal, RESUME, "news digested", "operator", runner.ctx.now)
        if n == 5:
            record_control(journal, HALT, "broker maintenance", "operator", runner.ctx.now)

    engine.on_cycle = operator
    record_control(journal, HALT, "earnings news", "operator", runner.ctx.now)
    notices = [n for n in await _discord_notices(runner) if not n.startswith("END")]
    assert len(engine.cycles) == 13
    assert notices == [
        "HALT by operator: earnings news; no new orders until `v28quant resume`",
        "RESUME: the kill switch is off; new orders allowed",
        "HALT by operator: broker maintenance; no new orders until `v28quant resume`",
    ]
    journal.close()


@pytest.mark.asyncio
async def test_an_engine_failing_every_cycle_is_one_notice_not_a_storm(tmp_path: Path) -> None:
    # The same exception in each of the day's 13 cycles: each is journaled, one is notified
    # (reference: the journal's error rows and what the Discord fake received).
    from v28quant.execution import Executor

    class Broken(Recorder):
        async def cycle(self, ctx: EngineContext) -> CycleReport:
            self.cycles.append(ctx.now)
            raise KeyError("AAPL")

    engine = Broken("equity")
    runner = _runner(tmp_path, [engine])
    journal = runner.ctx.journal
    runner.ctx.executor = Executor(runner.ctx.broker, journal, clock=runner.ctx.clock)
    notices = await _discord_notices(runner)
    assert len(journal.decisions(engine="equity", action="error")) == len(engine.cycles) == 13
    errors = [n for n in notices if n.startswith("ERROR")]
    assert errors == ["ERROR in equity cycle: KeyError: 'AAPL'"]
    journal.close()


@pytest.mark.asyncio
async def test_the_end_of_day_roll_up_is_a_notice(tmp_path: Path) -> None:
    # Reference: the simulated exchange's own account at the close, and the fake's record.
    from v28quant.execution import Executor

    runner = _runner(tmp_path, [Recorder("equity")])
    journal = runner.ctx.journal
    runner.ctx.executor = Executor(runner.ctx.broker, journal, clock=runner.ctx.clock)
    notices = await _discord_notices(runner)
    day = runner.venue.sessions[0]
    assert (await runner.ctx.broker.account()).equity == 100000  # nothing traded
    assert notices == [f"END OF DAY {day}: equity 100,000.00, 0 fill(s), 0 order(s)"]
    journal.close()


@pytest.mark.asyncio
async def test_the_end_of_day_notice_gives_the_change_on_the_previous_close(
    tmp_path: Path,
) -> None:
    # The journal already holds the previous session's roll-up at 98,765.43; the simulated
    # exchange's account closes the day at its starting 100,000 (nothing traded), so the notice
    # says +1,234.57 (+1.25 %) on that close (worked out by hand).
    from v28quant.execution import Executor

    runner = _runner(tmp_path, [Recorder("equity")])
    journal = runner.ctx.journal
    runner.ctx.executor = Executor(runner.ctx.broker, journal, clock=runner.ctx.clock)
    day = runner.venue.sessions[0]
    before = default_calendar().previous_session(day)
    earlier = {"day": before.isoformat(), "equity": "98765.43", "exposure": "0"}
    at = default_calendar().windows(before).session.close
    journal.record_decision(f"eod-{before}", "runner", "runner", "*", "end_of_day", earlier, at)
    notices = await _discord_notices(runner)
    equity = (await runner.ctx.broker.account()).equity
    assert Decimal(equity) == 100000
    assert notices == [
        f"END OF DAY {day}: equity 100,000.00 (+1,234.57, +1.25% on the close of {before}), "
        "0 fill(s), 0 order(s)"
    ]
    journal.close()


class Denied(Recorder):
    """An equity engine whose orders the risk gate denies (``orders(n)``: cycle n's orders).

    Each order is (symbol, qty, price); the account is the simulated exchange's, and XOM is
    held, so with ``max_positions = 1`` a buy of any other name is one name too many.
    """

    def __init__(self, orders: Callable[[int], list[tuple[str, int, str]]]) -> None:
        super().__init__("equity")
        self.orders = orders

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        report = await super().cycle(ctx)
        account = await ctx.broker.account()
        held = [Position("XOM", Decimal(10), Decimal(100), "us_equity", Decimal(1000))]
        for n, (symbol, qty, price) in enumerate(self.orders(len(self.cycles))):
            owner = Owner("equity", "test", f"{len(self.cycles)}-{n}")
            request = OrderRequest.equity(symbol, qty, "buy", owner=owner)
            ctx.risk.check(request, Decimal(price), account, held, ctx.now)
        return report


@pytest.mark.asyncio
async def test_risk_gate_denials_are_one_summary_per_cycle_and_repeats_are_held_back(
    tmp_path: Path,
) -> None:
    # Cycles 1-2 deny the same three orders, cycle 3 one of them, then an operator's halt
    # (from cycle 4) denies them all for the rest of the day. By hand, with max_positions = 1
    # and XOM held: AAPL and MSFT (10 x 100) are a second name; JPM is 100 x 300 = 30,000 of
    # notional, over max_order_notional 25,000. References: what the Discord fake received,
    # and the journal's denial rows read with sqlite3.
    import sqlite3

    from v28quant.execution import Executor
    from v28quant.risk import HALT, record_control

    three = [("AAPL", 10, "100"), ("MSFT", 10, "100"), ("JPM", 100, "300")]
    engine = Denied(lambda n: three if n != 3 else three[2:])
    runner = _runner(tmp_path, [engine])
    journal = runner.ctx.journal
    limits = runner.ctx.settings.risk.model_copy(update={"max_positions": 1})
    runner.ctx.risk = RiskGate(limits, journal, default_calendar())
    runner.ctx.executor = Executor(runner.ctx.broker, journal, clock=runner.ctx.clock)

    def operator(n: int) -> None:
        if n == 4:
            record_control(journal, HALT, "earnings news", "operator", runner.ctx.now)

    engine.on_cycle = operator
    notices = [n for n in await _discord_notices(runner) if not n.startswith("END")]
    assert len(engine.cycles) == 13
    assert notices == [
        "equity: 3 orders denied by the risk gate: max_positions (AAPL, MSFT), "
        "order_notional (JPM)",
        "equity: 1 order denied by the risk gate: order_notional (JPM)",
        "HALT by operator: earnings news; no new orders until `v28quant resume`",
    ]
    with sqlite3.connect(tmp_path / "j.sqlite") as db:
        rows = db.execute(
            "SELECT json_extract(reasoning, '$.check'), COUNT(*) FROM decisions "
            "WHERE engine = 'equity' AND action = 'deny' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    # cycles 1-2: 3 each, cycle 3: 1, cycles 4-13: the three halted each
    assert rows == [("halted", 30), ("max_positions", 4), ("order_notional", 3)]
    journal.close()


class Follower(Recorder):
    """A recorder whose orders rest for ``rests`` follow calls after each cycle."""

    def __init__(self, name: str, rests: int, follow_fails_at: int | None = None):
        super().__init__(name)
        self.rests, self.left = rests, 0
        self.follow_fails_at = follow_fails_at
        self.follows: list[datetime] = []
        self.on_follow = None

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        self.left = self.rests
        return await super().cycle(ctx)

    async def follow(self, ctx: EngineContext) -> bool:
        self.follows.append(ctx.now)
        n = len(self.follows)
        if self.on_follow is not None:
            self.on_follow(n)
        if n == self.follow_fails_at:
            raise RuntimeError(f"{self.name} broke in follow {n}")
        self.left -= 1
        return self.left > 0


@pytest.mark.asyncio
async def test_between_cycles_resting_orders_are_followed_every_five_minutes(
    tmp_path: Path,
) -> None:
    # 30-minute cycles: the 5-minute slots between them are the follower's, the other
    # engine's cycles keep their slots (reference: the calendar's 5-minute grid).
    follower, other = Follower("options", rests=10**6), Recorder("equity")
    runner = _runner(tmp_path, [follower, other], minutes=30)
    grid = list(default_calendar().windows(runner.venue.sessions[0]).cycles)
    assert await runner.run() == 0
    assert follower.cycles == other.cycles == grid[::6]
    assert follower.follows == [t for t in grid if t not in grid[::6]]
    assert runner.state.skipped == 0
    # a follow is no cycle: the journal's cycle rows are the cycle slots alone
    rows = runner.ctx.journal.decisions(engine="options", action="cycle")
    assert sorted(r["reasoning"]["slot"] for r in rows) == [t.isoformat() for t in grid[::6]]
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_following_stops_when_nothing_rests_until_the_next_cycle(tmp_path: Path) -> None:
    follower = Follower("options", rests=2)  # rests through one follow, done at the second
    runner = _runner(tmp_path, [follower, Recorder("equity")], minutes=30)
    grid = list(default_calendar().windows(runner.venue.sessions[0]).cycles)
    assert await runner.run() == 0
    after_cycles = [grid[k + d] for k in range(0, len(grid) - 1, 6) for d in (1, 2)]
    assert follower.follows == after_cycles
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_cycles_every_five_minutes_leave_nothing_to_follow(tmp_path: Path) -> None:
    follower = Follower("options", rests=10**6)
    runner = _runner(tmp_path, [follower, Recorder("equity")], minutes=5)
    grid = list(default_calendar().windows(runner.venue.sessions[0]).cycles)
    assert await runner.run() == 0
    assert follower.cycles == grid
    assert follower.follows == []
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_a_failed_follow_is_isolated_and_the_next_slot_tries_again(tmp_path: Path) -> None:
    follower, other = Follower("options", rests=10**6, follow_fails_at=3), Recorder("equity")
    from v28quant.execution import Executor

    runner = _runner(tmp_path, [follower, other], minutes=30)
    runner.ctx.executor = Executor(runner.ctx.broker, runner.ctx.journal, clock=runner.ctx.clock)
    runner.ctx.notifier = notices = Notices()
    grid = list(default_calendar().windows(runner.venue.sessions[0]).cycles)
    assert await runner.run() == 0
    assert follower.follows == [t for t in grid if t not in grid[::6]]  # none lost but the 3rd
    assert other.cycles == follower.cycles == grid[::6]
    errors = runner.ctx.journal.decisions(action="error")
    assert [(e["engine"], e["reasoning"]["step"]) for e in errors] == [("options", "follow")]
    assert "broke in follow 3" in errors[0]["reasoning"]["error"]
    assert errors[0]["ts"] == grid[3]  # the third slot between cycles: 10:00
    errors_sent = [m for m in notices.sent if m.startswith("ERROR")]
    assert errors_sent == ["ERROR in options follow: RuntimeError: options broke in follow 3"]
    cycles = runner.ctx.journal.decisions(engine="options", action="cycle")
    assert len(cycles) == len(grid[::6])
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_stop_signal_in_a_follow_ends_the_run_cleanly(tmp_path: Path) -> None:
    follower, other = Follower("options", rests=10**6), Recorder("equity")
    runner = _runner(tmp_path, [follower, other], minutes=30)
    follower.on_follow = lambda n: runner.on_signal(signal.SIGTERM) if n == 2 else None
    grid = list(default_calendar().windows(runner.venue.sessions[0]).cycles)
    assert await runner.run() == 0
    assert follower.follows == grid[1:3]  # the follow in flight finished, no third
    assert follower.cycles == other.cycles == grid[:1]
    assert follower.ends == other.ends == 0
    assert runner.ctx.journal.integrity_check() == "ok"
    runner.ctx.journal.close()


class ExpiryDay(Follower):
    """A follower that wants a cycle of its own at ``wanted`` (an expiry-day close)."""

    def __init__(self, name: str, wanted: list[datetime]):
        super().__init__(name, rests=10**6)
        self.wanted, self.asked = wanted, 0

    def extra_cycle_slots(self, ctx: EngineContext, grid: list[datetime]) -> list[datetime]:
        self.asked += 1
        return [t for t in self.wanted if t in grid]


@pytest.mark.asyncio
async def test_an_engine_gets_the_extra_cycle_it_wants_between_daily_cycles(
    tmp_path: Path,
) -> None:
    # one cycle a session (390 minutes) and the 15:30 slot the engine asks for: its cycles run
    # at both, its follows at every other 5-minute slot; the other engine keeps its one cycle
    wanting, other = ExpiryDay("options", []), Recorder("equity")
    runner = _runner(tmp_path, [wanting, other], minutes=390)
    grid = list(default_calendar().windows(runner.venue.sessions[0]).cycles)
    close_slot = next(t for t in grid if t.astimezone(ET).strftime("%H:%M") == "15:30")
    wanting.wanted = [close_slot]
    assert await runner.run() == 0
    assert wanting.cycles == [grid[0], close_slot]
    assert other.cycles == [grid[0]]
    assert wanting.follows == [t for t in grid if t not in (grid[0], close_slot)]
    rows = runner.ctx.journal.decisions(engine="options", action="cycle")
    assert sorted(r["reasoning"]["slot"] for r in rows) == [
        grid[0].isoformat(),
        close_slot.isoformat(),
    ]
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_five_minute_cycles_ask_no_engine_for_extra_cycles(tmp_path: Path) -> None:
    wanting = ExpiryDay("options", [])
    runner = _runner(tmp_path, [wanting], minutes=5)
    grid = list(default_calendar().windows(runner.venue.sessions[0]).cycles)
    assert await runner.run() == 0
    assert wanting.asked == 0
    assert wanting.cycles == grid
    assert wanting.follows == []
    runner.ctx.journal.close()


class OptionBuyer(Recorder):
    """Buys one call expiring today, out of the money, in its first cycle."""

    def __init__(self, contract: str) -> None:
        super().__init__("options")
        self.contract = contract

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        from v28quant.execution import Decision

        if not self.cycles:
            req = OrderRequest.option(
                self.contract, 1, "buy", "buy_to_open", owner=Owner("options", "t", "c1")
            )
            await ctx.executor.place(Decision(req, {"why": "held into its expiry"}))
        return await super().cycle(ctx)


@pytest.mark.asyncio
async def test_the_roll_up_journals_the_days_settlements(tmp_path: Path) -> None:
    """A call held into its expiry at the close: its OPEXP is journaled by the roll-up.

    The simulated exchange settles expiries at the close; with no later look at the venue (a
    backtest's last session), the report's settlements would miss the day's.
    """
    from v28quant.execution import Executor

    contract = "AAPL221228C00200000"  # AAPL closed near 126 on 2022-12-28: far out of the money
    runner = _runner(tmp_path, [OptionBuyer(contract)])
    ctx = runner.ctx
    ctx.executor = Executor(ctx.broker, ctx.journal, clock=ctx.clock, quotes=ctx.feed)
    assert await runner.run() == 0
    assert [f["symbol"] for f in ctx.journal.fills()] == [contract]
    settled = [(s["activity_type"], s["symbol"]) for s in ctx.journal.settlements()]
    assert settled == [("OPEXP", contract)]
    ctx.journal.close()


class BrokenSync:
    """An execution service whose look at the venue fails (a bug, not a venue error)."""

    async def sync(self) -> list[Any]:
        raise RuntimeError("sync broke")


@pytest.mark.asyncio
async def test_a_failing_look_at_the_venue_at_the_close_still_rolls_the_day_up(
    tmp_path: Path,
) -> None:
    """The roll-up's look at orders and activities fails: the day's equity is still journaled."""
    runner = _runner(tmp_path, [Recorder("good")])
    runner.ctx.executor = BrokenSync()
    assert await runner.run() == 0
    day = runner.venue.sessions[0]
    rolled = runner.ctx.journal.decisions(engine="runner", action="end_of_day")
    assert [r["reasoning"]["day"] for r in rolled] == [day.isoformat()]
    assert runner.state.equity[0][0] == day
    runner.ctx.journal.close()


class FixedViews:
    """A source named ``garch``: one fixed (value, confidence) view per symbol, vol at 0.15.

    Its volatility is the 0.15 target, so a full-confidence long view sizes to the 0.10 cap.
    """

    name = "garch"

    def __init__(self, views: dict[str, tuple[float, float]]) -> None:
        self.views = views
        self.vol = dict.fromkeys(views, 0.15)

    def refit(self, view: Any) -> None:
        return None

    def signals(self, view: Any) -> list[Signal]:
        return [
            Signal("garch", sym, value, confidence, {"fixed": True}, view.data_ts)
            for sym, (value, confidence) in self.views.items()
            if sym in view.symbols
        ]


class CycleLog(logging.Handler):
    """Keeps the runner's per-cycle log lines: slot text (New York) -> the details logged."""

    def __init__(self) -> None:
        super().__init__()
        self.details: dict[str, dict[str, Any]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "engine", None) == "equity" and hasattr(record, "details"):
            self.details[str(record.args[1])] = dict(record.details)  # type: ignore[index]


#: What an options cycle reports beside its counts: Greeks (one not a number), a count, an
#: underlying's error, a contract's stale quote time and a price.
OPTIONS_DETAILS = {
    "greeks": {"delta": 12.345, "vega": float("nan")},
    "held": 2,
    "errors": {"XOM": "ChainUnusable: no quotes"},
    "stale_quotes": {"AAPL221230C00130000": datetime(2022, 12, 28, 9, 40, tzinfo=ET)},
    "walk_price": Decimal("1.10"),
}


class OptionsDetails(Recorder):
    """An options engine whose every cycle reports ``OPTIONS_DETAILS``."""

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        report = await super().cycle(ctx)
        return CycleReport(self.name, report.at, details=OPTIONS_DETAILS)


@pytest.fixture(scope="module")
def equity_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Run a keyless session of the equity engine on fixed views; return its journal and log.

    AAPL: a full-confidence long view (bought in the first cycle, then held at its target);
    MSFT: a view at confidence 0.30, below the 0.6 threshold (held every cycle); JPM: a flat
    view (a target of no shares). An options engine reports ``OPTIONS_DETAILS`` beside it.
    """
    from v28quant.equity.engine import EquityEngine
    from v28quant.execution import Executor
    from v28quant.signals import SignalAggregator

    tmp_path = tmp_path_factory.mktemp("equity_day")
    views = {"AAPL": (1.0, 1.0), "MSFT": (0.5, 0.3), "JPM": (0.0, 0.9)}
    engine = EquityEngine(load_config()[1].equity, sources=[FixedViews(views)])
    runner = _runner(tmp_path, [engine, OptionsDetails("options")])
    ctx = runner.ctx
    ctx.aggregator = SignalAggregator(min_confidence=0.6)
    ctx.executor = Executor(ctx.broker, ctx.journal, clock=ctx.clock, quotes=ctx.feed)
    logged = CycleLog()
    runner_log = logging.getLogger("v28quant.runner")
    level = runner_log.level
    runner_log.addHandler(logged)
    runner_log.setLevel(logging.INFO)  # the cycle lines are INFO
    try:
        assert asyncio.run(runner.run()) == 0
    finally:
        runner_log.setLevel(level)
        runner_log.removeHandler(logged)
        ctx.journal.close()
    return tmp_path / "j.sqlite", logged.details


def _cycles(path: Path, engine: str) -> list[dict[str, Any]]:
    """Return ``engine``'s cycles' reasoning as journaled, oldest first, read with sqlite3."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT ts, reasoning FROM decisions WHERE engine = ? AND action = 'cycle' ORDER BY ts",
            (engine,),
        ).fetchall()
    return [{"ts": ts, **json.loads(reasoning)} for ts, reasoning in rows]


def test_each_equity_cycle_journals_the_verdict_on_each_symbol_it_logged(
    equity_day: tuple[Path, dict[str, Any]],
) -> None:
    path, logged = equity_day
    cycles = _cycles(path, "equity")
    assert len(cycles) == 13  # 09:45, 10:15, ..., 15:45
    journaled = {
        datetime.fromisoformat(c["slot"]).astimezone(ET).strftime("%Y-%m-%d %H:%M"): c["details"]
        for c in cycles
    }
    assert len(logged) == 13
    assert journaled == logged
    # by hand: one vote at confidence 0.30 against a threshold of 0.6
    assert {c["details"]["MSFT"] for c in cycles} == {"hold: confidence 0.30 below threshold"}
    assert {c["details"]["JPM"] for c in cycles} == {"hold: at its target of 0 shares"}
    assert cycles[0]["details"]["AAPL"].startswith("buy ")


def test_an_options_cycles_details_are_journaled_as_the_journal_writes_numbers_and_times(
    equity_day: tuple[Path, dict[str, Any]],
) -> None:
    # by hand: a decimal as its exact text, a NaN as "NaN" (JSON has none), a time in UTC
    cycles = _cycles(equity_day[0], "options")
    assert len(cycles) == 13
    assert {json.dumps(c["details"], sort_keys=True) for c in cycles} == {
        json.dumps(
            {
                "errors": {"XOM": "ChainUnusable: no quotes"},
                "greeks": {"delta": 12.345, "vega": "NaN"},
                "held": 2,
                "stale_quotes": {"AAPL221230C00130000": "2022-12-28T14:40:00+00:00"},
                "walk_price": "1.10",
            },
            sort_keys=True,
        )
    }


def _verdict_line(cycle: dict[str, Any], symbol: str) -> str:
    """Return the line ``why`` gives ``cycle``'s word on ``symbol``, the slot in New York time."""
    slot = datetime.fromisoformat(cycle["slot"]).astimezone(ET)
    return f"  equity cycle {slot:%Y-%m-%d %H:%M} ET: {cycle['details'][symbol]}"


def test_why_gives_the_equity_cycles_verdict_after_the_aggregate(
    equity_day: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from v28quant.cli import main as cli_main

    path = equity_day[0]
    cycles = _cycles(path, "equity")
    first, last = cycles[0], cycles[-1]
    assert cli_main(["--journal", str(path), "why", "MSFT"]) == 0
    out = capsys.readouterr().out.splitlines()
    held = _verdict_line(last, "MSFT")
    assert held == "  equity cycle 2022-12-28 15:45 ET: hold: confidence 0.30 below threshold"
    aggregate = next(i for i, line in enumerate(out) if "aggregate value" in line)
    assert out[aggregate + 1] == held, out
    # AAPL: bought in the first cycle, held at its target since; --at a time picks the cycle
    assert first["details"]["AAPL"] != last["details"]["AAPL"]
    assert cli_main(["--journal", str(path), "why", "AAPL", "--at", first["ts"]]) == 0
    then = capsys.readouterr().out.splitlines()
    assert _verdict_line(first, "AAPL") in then, then
    assert _verdict_line(last, "AAPL") not in then
    assert cli_main(["--journal", str(path), "why", "AAPL"]) == 0
    assert _verdict_line(last, "AAPL") in capsys.readouterr().out.splitlines()
