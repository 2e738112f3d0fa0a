"""The operator CLI without a journal: it names the keyless runs' journals, and acts on none.

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
from v28quant.cli import main as cli_main
from v28quant.journal import Journal


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


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["report", "--day", "2022-13-01"], "error: --day: not a date (YYYY-MM-DD): '2022-13-01'"),
        (["why", "XOM", "--at", "noon"], "error: --at: not an ISO time: 'noon'"),
    ],
)
def test_a_bad_date_or_time_is_one_line_naming_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    path = _keyless_journal(tmp_path / "run" / "journal.sqlite", 1_000_000)
    assert cli_main(["--journal", str(path), *argv]) == 2
    assert capsys.readouterr().err.splitlines() == [line]
