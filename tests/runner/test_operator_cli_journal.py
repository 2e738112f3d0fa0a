"""The operator CLI on a missing journal and ``status`` on hand-made ones.

Keyless runs journal under ``[runner] runs_dir``/<mode>-<time>/journal.sqlite, never at the
default path, so a bare ``v28quant halt`` finds no journal there. The error must name the newest
of those journals and ask for ``--journal``, and never write to one of them on a guess.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from v28quant.broker.ownership import Owner
from v28quant.broker.requests import Leg, OrderRequest, request_hash
from v28quant.cli import main as cli_main
from v28quant.journal import Journal
from v28quant.signals import RegimeState, Signal, SignalAggregator


def _keyless_journal(path: Path, mtime: float) -> Path:
    path.parent.mkdir(parents=True)
    with Journal(path) as j:
        j.record_decision("d", "runner", "runner", "", "start", {}, datetime.now(UTC))
    os.utime(path, (mtime, mtime))
    return path


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])


@pytest.mark.parametrize("command", ["status", "halt", "flatten"])
def test_a_missing_journal_names_the_newest_keyless_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """Three keyless runs under the configured folder: the two newest are named, none touched."""
    runs = tmp_path / "my-runs"
    config = tmp_path / "v28.toml"
    config.write_text(f'[runner]\nruns_dir = "{runs}"\n')
    monkeypatch.setenv("V28_CONFIG", str(config))
    monkeypatch.setenv("V28_JOURNAL", str(tmp_path / "live.sqlite"))
    old = _keyless_journal(runs / "paper-20261201T090000Z" / "journal.sqlite", 1_000_000)
    mid = _keyless_journal(runs / "backtest-20261202T090000Z" / "journal.sqlite", 2_000_000)
    new = _keyless_journal(runs / "paper-20261203T090000Z" / "journal.sqlite", 3_000_000)
    assert cli_main([command]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: no journal at {tmp_path / 'live.sqlite'} ")
    assert f"the newest: {new}, {mid}: pass --journal PATH" in line
    assert str(old) not in line
    assert [_rows(p) for p in (old, mid, new)] == [1, 1, 1]  # nothing acted on a guess
    assert not (tmp_path / "live.sqlite").exists()


def test_a_missing_journal_without_keyless_runs_says_only_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "v28.toml"
    config.write_text(f'[runner]\nruns_dir = "{tmp_path / "none"}"\n')
    monkeypatch.setenv("V28_CONFIG", str(config))
    missing = tmp_path / "live.sqlite"
    assert cli_main(["--journal", str(missing), "halt"]) == 2
    assert capsys.readouterr().err == (
        f"error: no journal at {missing} (set --journal or V28_JOURNAL)\n"
    )


def test_status_gives_each_engines_last_cycle_and_its_note_only_when_there_is_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.sqlite"
    at = datetime(2022, 12, 28, 20, 45, tzinfo=UTC)
    cycles = {
        "equity": {"signals": 0, "orders": 0, "denied": 0, "note": ""},
        "options": {"signals": 96, "orders": 1, "denied": 2, "note": "max_open_structures reached"},
    }
    with Journal(path) as j:
        for engine, reasoning in cycles.items():
            j.record_decision(f"{engine}-cycle", engine, "runner", "*", "cycle", reasoning, at)
    assert cli_main(["--journal", str(path), "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "last equity cycle: 2022-12-28 20:45Z, 0 new signal(s), 0 order(s), 0 denied" in out
    assert (
        "last options cycle: 2022-12-28 20:45Z, 96 new signal(s), 1 order(s), 2 denied; "
        "max_open_structures reached"
    ) in out


def _mark(j: Journal, at: datetime, equity: str, day_start: str, peak: str) -> None:
    reasoning = {"equity": equity, "day_start": day_start, "peak": peak}
    j.record_decision(f"risk-mark-{at.isoformat()}", "risk", "watch", "*", "mark", reasoning, at)


def test_status_gives_the_closing_equity_once_the_day_is_rolled_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:
        _mark(j, datetime(2022, 12, 28, 14, 45, tzinfo=UTC), "100300", "100521.56", "100529.56")
        _mark(j, datetime(2022, 12, 28, 20, 45, tzinfo=UTC), "100118.4", "100521.56", "100529.56")
    assert cli_main(["--journal", str(path), "status"]) == 0
    during = (
        "equity 100,118.40; day P&L -403.16; drawdown from peak 0.41% "
        "(last intraday mark, 2022-12-28 20:45Z)"
    )
    assert during in capsys.readouterr().out.splitlines()

    with Journal(path) as j:
        close = {"day": "2022-12-28", "equity": "99998.876750"}
        at = datetime(2022, 12, 28, 21, 1, tzinfo=UTC)
        j.record_decision("eod-2022-12-28", "runner", "runner", "*", "end_of_day", close, at)
    assert cli_main(["--journal", str(path), "status"]) == 0
    # by hand: 99,998.87675 - 100,521.56 = -522.68; (100,529.56 - 99,998.87675) / 100,529.56
    after = (
        "equity 99,998.88 at the close of 2022-12-28; day P&L -522.68; drawdown from peak "
        "0.53% (end-of-day roll-up, 2022-12-28 21:01Z)"
    )
    assert after in capsys.readouterr().out.splitlines()

    with Journal(path) as j:  # the next session's first mark is newer than the roll-up
        _mark(j, datetime(2022, 12, 29, 14, 35, tzinfo=UTC), "100050", "100050", "100529.56")
    assert cli_main(["--journal", str(path), "status"]) == 0
    next_day = (
        "equity 100,050.00; day P&L +0.00; drawdown from peak 0.48% "
        "(last intraday mark, 2022-12-29 14:35Z)"
    )
    assert next_day in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["report", "--day", "2022-13-01"], "error: --day: not a date (YYYY-MM-DD): '2022-13-01'"),
        (["why", "XOM", "--at", "noon"], "error: --at: not an ISO time: 'noon'"),
        # an empty value (an unset shell variable) is no date, not "the latest"
        (["report", "--day", ""], "error: --day: not a date (YYYY-MM-DD): ''"),
        (["why", "XOM", "--at", ""], "error: --at: not an ISO time: ''"),
    ],
)
def test_a_bad_date_or_time_is_one_line_naming_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    path = _keyless_journal(tmp_path / "run" / "journal.sqlite", 1_000_000)
    assert cli_main(["--journal", str(path), *argv]) == 2
    assert capsys.readouterr().err.splitlines() == [line]


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [str(r[0]) for r in rows]


@pytest.mark.parametrize("command", ["status", "halt", "flatten"])
def test_another_programs_sqlite_file_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Another program's SQLite file (the Optuna study beside the journal) is no journal.

    Taken for one, it would get the journal's tables, and a halt written there stops no runner.
    """
    other = tmp_path / "v28_optuna.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE operation_logs (log_id INTEGER PRIMARY KEY, log TEXT)")
    assert cli_main(["--journal", str(other), command]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: journal {other} is not a v28quant journal"), line
    assert _tables(other) == ["operation_logs"]


def _signal(j: Journal, symbol: str, at: datetime, value: float) -> None:
    j.record_signal(Signal("momentum", symbol, value, 0.5, {"ret_20d": value}, at))


def test_why_at_a_bare_date_answers_as_of_that_sessions_close(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--at 2022-12-28`` is 16:00 New York that day (21:00Z): its 20:45Z signal, not the next."""
    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:
        _signal(j, "AAPL", datetime(2022, 12, 28, 20, 45, tzinfo=UTC), 0.25)
        _signal(j, "AAPL", datetime(2022, 12, 29, 20, 45, tzinfo=UTC), -0.75)
    assert cli_main(["--journal", str(path), "why", "AAPL", "--at", "2022-12-28"]) == 0
    out = capsys.readouterr().out
    assert "value +0.250" in out
    assert "value -0.750" not in out
    # a date-time stays as given: 15:00Z on the 28th is before the day's signal
    assert cli_main(["--journal", str(path), "why", "AAPL", "--at", "2022-12-28T15:00Z"]) == 1
    assert capsys.readouterr().out.splitlines() == ["no signals journaled for AAPL"]


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["why", "AAPL"],
        ["report"],
        ["halt"],
        ["resume"],
        ["flatten"],
        ["accept-positions", "--reason", "checked"],
    ],
)
def test_an_empty_file_is_no_journal_and_is_left_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """A halt written to a file no runner reads would stop nothing: refused, nothing written."""
    empty = tmp_path / "e.sqlite"
    empty.touch()
    assert cli_main(["--journal", str(empty), *argv]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: journal {empty} is not a v28quant journal"), line
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.sqlite"]  # no -wal, no -shm


def test_status_gives_the_halts_time_in_the_clis_style(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.sqlite"
    at = datetime(2026, 12, 7, 9, 35, 43, 830913, tzinfo=UTC)
    with Journal(path) as j:
        reasoning = {"reason": "bad fills", "by": "operator"}
        j.record_decision("risk-halt-1", "risk", "kill_switch", "*", "halt", reasoning, at)
    assert cli_main(["--journal", str(path), "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "kill switch: HALTED since 2026-12-07 09:35Z by operator: bad fills" in out


SHORT_PUT, LONG_PUT = "SPY230120P00380000", "SPY230120P00370000"
NEXT_SHORT, NEXT_LONG = "SPY230217P00380000", "SPY230217P00370000"


def _spread_order(j: Journal, key: str, legs: list[Leg], at: datetime, filled_net: str) -> None:
    """Journal a filled bull put order as the executor does, at ``filled_net`` per share."""
    req = OrderRequest.multileg(legs, 1, "-1.00", owner=Owner("options", "bull_put", key))
    j.admit_order(
        client_order_id=req.client_order_id,
        engine="options",
        strategy="bull_put",
        decision_id=key,
        symbol=",".join(leg.occ_symbol for leg in legs),
        request=req.to_dict(),
        request_hash=request_hash(req),
        reasoning={},
        ts=at,
    )
    j.record_order_update(req.client_order_id, f"b-{key}", "filled", "1", filled_net, {}, at)


def test_why_says_what_a_spread_order_did_and_its_net_as_a_credit_or_debit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The venue signs a multi-leg net per share: positive a debit paid, negative a credit."""
    path = tmp_path / "journal.sqlite"
    t1, t2, t3 = (datetime(2022, 12, d, 20, 45, tzinfo=UTC) for d in (27, 28, 29))
    with Journal(path) as j:
        _signal(j, "SPY:IV", t1, -0.5)
        opening = [
            Leg(SHORT_PUT, 1, "sell", "sell_to_open"),
            Leg(LONG_PUT, 1, "buy", "buy_to_open"),
        ]
        _spread_order(j, "open-1", opening, t1, "-1.2")
        rolling = [
            Leg(SHORT_PUT, 1, "buy", "buy_to_close"),
            Leg(LONG_PUT, 1, "sell", "sell_to_close"),
            Leg(NEXT_SHORT, 1, "sell", "sell_to_open"),
            Leg(NEXT_LONG, 1, "buy", "buy_to_open"),
        ]
        _spread_order(j, "roll-1", rolling, t2, "-0.79")
        closing = [
            Leg(NEXT_SHORT, 1, "buy", "buy_to_close"),
            Leg(NEXT_LONG, 1, "sell", "sell_to_close"),
        ]
        _spread_order(j, "close-1", closing, t3, "0.35")
    answers = {}
    for day in ("2022-12-27", "2022-12-28", "2022-12-29"):
        assert cli_main(["--journal", str(path), "why", "SPY", "--at", day]) == 0
        (answers[day],) = (ln for ln in capsys.readouterr().out.splitlines() if "last order" in ln)
    assert (
        "by options/bull_put: open bull_put x1 -> filled 1 at a 1.20 credit per share"
        in (answers["2022-12-27"])
    )
    assert "roll bull_put x1 -> filled 1 at a 0.79 credit per share" in answers["2022-12-28"]
    assert "close bull_put x1 -> filled 1 at a 0.35 debit per share" in answers["2022-12-29"]


def test_report_on_a_day_without_a_session_says_so_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2022-12-25 was a Sunday (the Christmas holiday fell on Monday the 26th)."""
    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:
        _signal(j, "AAPL", datetime(2022, 12, 23, 20, 45, tzinfo=UTC), 0.25)
    for day in ("2022-12-25", "2022-12-26"):
        assert cli_main(["--journal", str(path), "report", "--day", day]) == 1
        assert capsys.readouterr().out.splitlines() == [f"no session on {day} (weekend or holiday)"]
    assert cli_main(["--journal", str(path), "report", "--day", "2022-12-23"]) == 0
    assert '"signals": 1,' in capsys.readouterr().out


@pytest.mark.parametrize("symbol", ["", " ", "A B", "AAPL;"])
def test_why_of_something_that_is_no_ticker_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], symbol: str
) -> None:
    """A typo is not 'nothing on record' (exit 1, as for a symbol never traded): it is refused."""
    path = _keyless_journal(tmp_path / "run" / "journal.sqlite", 1_000_000)
    assert cli_main(["--journal", str(path), "why", symbol]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"error: why: not a ticker symbol: {symbol!r}"]
    assert captured.out == ""


def test_report_on_a_session_the_journal_holds_nothing_of_says_so_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped day (2021 for 2022) is not an all-zero roll-up with exit 0.

    2022-12-22 and 2021-12-23 were sessions (Thursdays); the journal holds one signal of the 23rd.
    """
    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:
        _signal(j, "AAPL", datetime(2022, 12, 23, 20, 45, tzinfo=UTC), 0.25)
    for day in ("2022-12-22", "2021-12-23"):
        assert cli_main(["--journal", str(path), "report", "--day", day]) == 1
        assert capsys.readouterr().out.splitlines() == [f"nothing journaled on {day}"]


@pytest.mark.parametrize(
    "argv", [["halt"], ["resume"], ["flatten"], ["accept-positions", "--reason", "checked"]]
)
def test_a_control_the_journal_refuses_to_store_is_one_line_saying_it_was_not_journaled(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    """The operator's account may not write the service user's journal (SQLite's own error).

    A halt that did not reach the journal stops nothing: the line must say so, not a traceback.
    """
    path = _keyless_journal(tmp_path / "run" / "journal.sqlite", 1_000_000)

    def read_only(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(Journal, "record_decision", read_only)
    assert cli_main(["--journal", str(path), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"error: {argv[0]} NOT journaled: journal {path} cannot be written (attempt to write a "
        "readonly database)"
    ]
    assert captured.out == ""


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["status"], "last equity cycle: 2022-12-28 20:45Z"),
        (["why", "AAPL"], "garch"),
        (["report"], '"day": "2022-12-28"'),
        (["halt"], "halt journaled in"),
        (["resume"], "resume journaled in"),
        (["flatten"], "flatten journaled in"),
        (["accept-positions", "--reason", "checked by hand"], "accept-positions journaled in"),
    ],
)
def test_the_journal_may_follow_the_command(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``v28quant status --journal J`` reads J, as the research commands after theirs do."""
    path = tmp_path / "journal.sqlite"
    at = datetime(2022, 12, 28, 20, 45, tzinfo=UTC)
    with Journal(path) as j:
        j.record_decision("equity-cycle", "equity", "runner", "*", "cycle", {"signals": 3}, at)
        j.record_signal(Signal("garch", "AAPL", 0.1, 0.5, {"vol_forecast": 0.2}, at))
    assert cli_main([*argv, "--journal", str(path)]) == 0
    assert said in capsys.readouterr().out


def test_report_counts_a_sessions_signals_under_the_session_whose_cycle_made_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An equity signal carries its bar's time (the close before): the cycle time places it.

    The cycle of 2022-12-23 at 09:35 New York (14:35Z) journals a signal on the daily bar that
    closed on the 22nd at 16:00 New York (21:00Z): it is a signal of the 23rd's session.
    """
    path = tmp_path / "journal.sqlite"
    bar = datetime(2022, 12, 22, 21, 0, tzinfo=UTC)
    with Journal(path) as j:
        signal = Signal("momentum", "AAPL", 0.25, 0.5, {"ret_20d": 0.25}, bar)
        j.record_cycle([signal], (), datetime(2022, 12, 23, 14, 35, tzinfo=UTC))
    assert cli_main(["--journal", str(path), "report", "--day", "2022-12-23"]) == 0
    assert '"signals": 1,' in capsys.readouterr().out
    assert cli_main(["--journal", str(path), "report", "--day", "2022-12-22"]) == 1
    assert capsys.readouterr().out.splitlines() == ["nothing journaled on 2022-12-22"]
    assert cli_main(["--journal", str(path), "report"]) == 0  # the latest: the 23rd
    assert '"day": "2022-12-23"' in capsys.readouterr().out


def test_why_on_an_older_journal_whose_cycles_kept_no_details_answers_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cycles journaled with their counts only: no line on the cycle, no error."""
    path = tmp_path / "journal.sqlite"
    at = datetime(2022, 12, 28, 20, 45, tzinfo=UTC)
    regime = RegimeState("sideways", {"sideways": 1.0}, "hmm", at)
    with Journal(path) as j:
        signal = Signal("garch", "KO", 0.5, 0.3, {"vol_forecast": 0.2}, at)
        aggregates = SignalAggregator(min_confidence=0.6).aggregate([signal], regime, now=at)
        j.record_cycle([signal], aggregates.values(), at)
        _signal(j, "AAPL", at, 0.25)
        cycle = {"slot": at.isoformat(), "signals": 1, "orders": 0, "denied": 0, "note": ""}
        j.record_decision("equity-cycle", "equity", "runner", "*", "cycle", cycle, at)
    for symbol in ("KO", "AAPL"):  # an aggregate's answer, and the raw signals'
        assert cli_main(["--journal", str(path), "why", symbol]) == 0
        out = capsys.readouterr().out
        assert "value +0." in out
        assert "equity cycle" not in out
