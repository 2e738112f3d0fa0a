"""Keyless paper resumes where the simulated account saved beside its journal stopped.

And never before the runner's last record in the journal: a session it has traded to the end
(or, under ``--once``, at all) is not traded again. Independent references: the journal and the
account written here with their own APIs, the exchange calendar's trading end (15:45 New York
on a full day), and the journal read back with ``sqlite3``.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from fakes.fixtures import StaticQuotes
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.sim import SimBroker, state_path_for
from v28quant.calendar import ET
from v28quant.clock import SimClock
from v28quant.config import RunConfig, load_config
from v28quant.engines import CycleReport, EngineContext
from v28quant.journal import Journal
from v28quant.runner_args import RunArgs, UsageError
from v28quant.runner_setup import build_and_run, run_with
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


def _runner_record(journal: Path, when: datetime, action: str) -> None:
    with Journal(journal) as j:
        j.record_decision(
            f"t-{action}-{when.isoformat()}", "runner", "runner", "*", action, {}, when
        )


@pytest.mark.asyncio
async def test_the_journal_past_the_saved_account_moves_to_the_next_session(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    await _trade_at(journal, datetime.combine(SESSIONS[0], time(10, 5), ET))  # last fill
    _runner_record(journal, datetime.combine(SESSIONS[0], time(16, 1), ET), "end_of_day")
    nxt = datetime.combine(SESSIONS[1], time(8, 55), ET)
    assert _resume(journal, SESSIONS, START) == (SESSIONS[1:], nxt)


def test_a_journal_stopped_inside_a_session_goes_on_from_there(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    stopped = datetime.combine(SESSIONS[1], time(11, 0), ET)
    _runner_record(journal, stopped, "cycle")
    assert _resume(journal, SESSIONS, START) == (SESSIONS[1:], stopped)
    # at the trading end (15:45) the session is left only for its end-of-day roll-up
    last_cycle = datetime.combine(SESSIONS[1], time(15, 45), ET)
    _runner_record(journal, last_cycle, "cycle")
    assert _resume(journal, SESSIONS, START) == (SESSIONS[1:], last_cycle)
    # once that is journaled the session is done
    with Journal(journal) as j:
        j.record_decision(
            f"runner-end-of-day-{SESSIONS[1]}",
            "runner",
            "runner",
            "*",
            "end_of_day",
            {},
            datetime.combine(SESSIONS[1], time(16, 1), ET),
        )
    assert _resume(journal, SESSIONS, START)[0] == SESSIONS[2:]


def test_a_journal_at_the_last_session_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    _runner_record(journal, datetime.combine(SESSIONS[-1], time(16, 1), ET), "end_of_day")
    with pytest.raises(UsageError, match="no later session"):
        _resume(journal, SESSIONS, START)


def test_once_on_a_session_it_ran_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    at = datetime.combine(SESSIONS[-1], time(10, 0), ET)
    _runner_record(journal, at, "start")
    with pytest.raises(UsageError, match="no later session"):
        _resume(journal, SESSIONS[-1:], at, once=True)


def test_wall_clock_records_are_not_simulated_time(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    with Journal(journal) as j:  # e.g. a promotion, stamped when it was made
        j.record_decision("promote-1", "optimizer", "promote", "*", "promote", {}, datetime.now(ET))
    assert _resume(journal, SESSIONS, START) == (SESSIONS, START)


class Quiet:
    """An engine that trades nothing and counts its pre-market jobs."""

    name = "quiet"

    def __init__(self) -> None:
        self.premarkets = 0

    async def premarket(self, ctx: EngineContext) -> None:
        self.premarkets += 1

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        return CycleReport(self.name, ctx.now)

    async def end_of_day(self, ctx: EngineContext) -> None:
        return None


def test_once_twice_on_one_journal_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    journal = tmp_path / "j.sqlite"
    quiet = Quiet()

    def engines(cfg: RunConfig, params: dict[str, Any]) -> list[Quiet]:
        return [quiet]

    settings, cfg = load_config(None, journal_path=journal)
    args = RunArgs("paper", None, ("AAPL", "MSFT"), journal, None, None, None, True, "INFO", None)
    assert run_with(args, settings, cfg, engines=engines).exit_code == 0
    assert quiet.premarkets == 1
    capsys.readouterr()
    argv = ["--mode", "paper", "--once", "--universe", "AAPL,MSFT", "--journal", str(journal)]
    assert build_and_run(argv) == 2  # refused before any engine is built
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error: --journal"), err
    assert "no later session" in err[0]
    db = sqlite3.connect(str(journal))
    (starts,) = db.execute("SELECT COUNT(*) FROM decisions WHERE action = 'start'").fetchone()
    db.close()
    assert starts == 1


def test_a_resumed_runs_report_covers_the_sessions_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report of a resumed run reads the account's sessions from the journal, not only its own.

    Its fills were always the whole journal's; its equity curve was only this process's, so a
    resumed day reported one session, a turnover of both days in one, and no drawdown from the
    earlier peak. Reference: the closing equities written below, by hand.
    """
    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    journal = tmp_path / "j.sqlite"
    first = date(2022, 12, 27)  # the earlier run closed this session at 100,500
    with Journal(journal) as j:
        j.record_decision(
            f"runner-end-of-day-{first}",
            "runner",
            "runner",
            "*",
            "end_of_day",
            {"day": first.isoformat(), "equity": "100500", "exposure": "2500"},
            datetime.combine(first, time(16, 1), ET),
        )

    def engines(cfg: RunConfig, params: dict[str, Any]) -> list[Quiet]:
        return [Quiet()]

    settings, cfg = load_config(None, journal_path=journal)
    args = RunArgs("paper", None, ("AAPL", "MSFT"), journal, None, None, 2, False, "INFO", None)
    outcome = run_with(args, settings, cfg, engines=engines)
    assert outcome.exit_code == 0
    assert [d for d, _, _ in outcome.equity] == [date(2022, 12, 28)]  # this run: one session
    m = outcome.metrics
    assert [p["date"] for p in m["equity_curve"]] == ["2022-12-27", "2022-12-28"]
    assert m["sessions"] == 2
    assert m["equity_curve"][0]["equity"] == 100500.0
    # a fresh simulated account (none saved beside the journal) closes the second day at 100,000
    assert m["final_equity"] == 100000.0
    assert m["max_drawdown"] == pytest.approx(500 / 100500, rel=1e-12)
