"""Bad input at every edge of ``run_v28_production.py``: one clear line, non-zero exit, no start.

Each case runs the real entry point as a child process (keyless paper ``--once``, so a start
that should not have happened would trade on the simulated exchange) and checks, independently
of the runner's code: the exit status, that stderr ends in exactly one ``error:`` line and holds
no traceback, that no journal or run folder was created, and that a journal given on the command
line is byte-for-byte untouched.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import v28quant

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "V28_", "DISCORD_"))}
    env["PYTHONPATH"] = str(Path(v28quant.__file__).resolve().parents[1])
    return env


def _newer_journal(p: Path) -> None:
    db = sqlite3.connect(str(p))
    db.execute("CREATE TABLE t (x)")
    db.execute("PRAGMA user_version = 999")
    db.commit()
    db.close()


def _corrupt_journal(p: Path) -> None:
    p.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)


def _write(name: str, text: str | bytes) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        data = text.encode() if isinstance(text, str) else text
        (folder / name).write_bytes(data)

    return make


# (case id, files to create in the run folder, extra argv, what the error line must name)
CASES: list[tuple[str, list[Callable[[Path], None]], list[str], str]] = [
    (
        "toml-syntax",
        [_write("v.toml", "[paper]\nmin_confidence = \n")],
        ["--config", "v.toml"],
        "TOML",
    ),
    (
        "toml-not-utf8",
        [_write("v.toml", b"universe = '\xff\xfe'\n")],
        ["--config", "v.toml"],
        "v.toml",
    ),
    ("toml-missing", [], ["--config", "nope.toml"], "nope.toml"),
    (
        "toml-unknown-risk-key",
        [_write("v.toml", "[risk]\nbogus = 1\n")],
        ["--config", "v.toml"],
        "bogus",
    ),
    (
        "toml-unknown-top-level-key",
        [_write("v.toml", "univers = ['AAPL']\n")],
        ["--config", "v.toml"],
        "univers",
    ),
    (
        "toml-unknown-section",
        [_write("v.toml", "[rsik]\nmax_positions = 3\n")],
        ["--config", "v.toml"],
        "rsik",
    ),
    (
        "toml-key-with-whitespace",
        [_write("v.toml", '[paper]\n" min_confidence" = 0.1\n')],
        ["--config", "v.toml"],
        "min_confidence",
    ),
    (
        "toml-wrong-type",
        [_write("v.toml", "[risk]\nmax_positions = 'many'\n")],
        ["--config", "v.toml"],
        "max_positions",
    ),
    (
        "toml-secret-in-file",
        [_write("v.toml", "alpaca_secret_key = 'x'\n")],
        ["--config", "v.toml"],
        "alpaca_secret_key",
    ),
    (
        "toml-bad-universe",
        [_write("v.toml", "universe = ['AA PL!']\n")],
        ["--config", "v.toml"],
        "universe",
    ),
    ("env-bad-feed", [_write(".env", "V28_DATA_FEED=bloomberg\n")], [], "V28_DATA_FEED"),
    ("env-bad-url", [_write(".env", "APCA_API_BASE_URL=paper-api.alpaca.markets\n")], [], "URL"),
    (
        "env-bad-webhook",
        [_write(".env", "DISCORD_WEBHOOK_URL=not a url\n")],
        [],
        "DISCORD_WEBHOOK_URL",
    ),
    (
        "env-universe-whitespace-symbol",
        [_write(".env", "V28_UNIVERSE=AAPL,MS FT;X\n")],
        [],
        "universe",
    ),
    ("env-half-keys", [_write(".env", "APCA_API_KEY_ID=PKHALF0001\n")], [], "APCA_API_SECRET_KEY"),
    ("journal-newer-schema", [], ["--journal", "j.sqlite"], "newer"),
    ("journal-corrupt", [], ["--journal", "j.sqlite"], "j.sqlite"),
    ("arg-bad-universe", [], ["--universe", "AAPL,$$$"], "--universe"),
    ("arg-unknown-symbol", [], ["--universe", "ZZZZQ"], "ZZZZQ"),
]
JOURNAL_MAKERS = {"journal-newer-schema": _newer_journal, "journal-corrupt": _corrupt_journal}


@pytest.mark.parametrize(("case", "makers", "extra", "names"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_no_start(
    case: str,
    makers: list[Callable[[Path], None]],
    extra: list[str],
    names: str,
    tmp_path: Path,
    tally: Counter[str],
) -> None:
    for make in makers:
        make(tmp_path)
    journal = tmp_path / "j.sqlite"
    if case in JOURNAL_MAKERS:
        JOURNAL_MAKERS[case](journal)
    before = hashlib.sha256(journal.read_bytes()).hexdigest() if journal.exists() else None
    argv = ["--mode", "paper", "--once", *extra]
    if "--universe" not in extra:
        argv += ["--universe", "AAPL"]
    tally["bad_inputs"] += 1
    out = subprocess.run(
        [sys.executable, str(ROOT / "run_v28_production.py"), *argv],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    err = out.stderr.strip().splitlines()
    assert out.returncode != 0, f"{case}: started anyway\n{out.stdout[-1500:]}"
    assert "Traceback" not in out.stderr, f"{case}: traceback\n{out.stderr[-2000:]}"
    errors = [line for line in err if "error" in line.lower()]
    assert len(errors) == 1, f"{case}: want one error line, got\n{out.stderr[-2000:]}"
    assert names.lower() in errors[0].lower(), f"{case}: {errors[0]!r} does not name {names!r}"
    # no partial start: no run folder, no journal created, a given journal untouched
    assert not (tmp_path / "runs").exists(), f"{case}: a run folder was created"
    if before is None:
        assert not journal.exists(), f"{case}: a journal was created"
    else:
        assert hashlib.sha256(journal.read_bytes()).hexdigest() == before, (
            f"{case}: journal changed"
        )
