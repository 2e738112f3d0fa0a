"""The pieces under the executor.

The pieces under the executor: journal schema 2 and its migration, the journal lock, the
Alpaca configuration, the account's shared rate limit, and the one redaction marker.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import v28quant
from v28quant.alpaca.config import AlpacaConfig
from v28quant.alpaca.ratelimit import account_limiter
from v28quant.execution import JournalLock, JournalLocked
from v28quant.journal import Journal
from v28quant.journal.schema import MIGRATIONS
from v28quant.notify import DiscordNotifier
from v28quant.redaction import REDACTED

T0 = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)


def test_a_schema_1_journal_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
        db.execute(
            "INSERT INTO orders (client_order_id, status, updated_ts) VALUES (?, ?, ?)",
            ("v28-equity-trend-000000000001", "new", T0.isoformat()),
        )
    with Journal(path) as j:
        assert j.schema_version == len(MIGRATIONS)  # every migration since schema 1 applied
        row = j.order_by_client_id("v28-equity-trend-000000000001")
        assert row is not None
        assert (row["status"], row["request_hash"], row["reason"]) == ("new", None, None)
        assert j.reservations() == []


def test_journal_lock_names_the_holder_and_is_free_after_release(tmp_path: Path) -> None:
    import os

    path = tmp_path / "j.sqlite"
    with JournalLock(path) as held:
        assert held.held
        assert held.path.read_text().strip() == str(os.getpid())
        # flock is per open file: a second lock object is refused even in one process.
        with pytest.raises(JournalLocked, match=rf"in use by process {os.getpid()}"):
            JournalLock(path).acquire()
    assert held.path.read_text() == ""
    with JournalLock(path) as again:
        assert again.held


def test_alpaca_config_hides_keys_and_checks_its_numbers() -> None:
    cfg = AlpacaConfig("PKID", "sEcReT")
    assert "sEcReT" not in repr(cfg)
    assert "PKID" not in repr(cfg)
    assert (cfg.timeout_s, cfg.max_attempts, cfg.rate_limit_per_min) == (10.0, 3, 200)
    with pytest.raises(ValueError, match="max_attempts"):
        AlpacaConfig("PKID", "s", max_attempts=0)
    with pytest.raises(ValueError, match="timeout_s"):
        AlpacaConfig("PKID", "s", timeout_s=0)
    with pytest.raises(ValueError, match="both required"):
        AlpacaConfig("", "s")


def test_the_account_limiter_runs_under_200_a_minute() -> None:
    """The default bucket refills at 95% of 200 requests a minute: 60 / 190 s a request."""
    from fakes.fixtures import FakeTime

    lim = account_limiter("PK-RATE-TEST")
    assert lim is account_limiter("PK-RATE-TEST")
    ft = FakeTime()
    lim._now, lim._sleep, lim._last = ft.now, ft.sleep, ft.t  # time that moves only by sleeping
    import asyncio

    async def burst(n: int) -> None:
        for _ in range(n):
            await lim.acquire()

    asyncio.run(burst(10 + 190))  # the burst of 10, then 190 at the refill rate
    assert sum(ft.slept) == pytest.approx(60.0, rel=1e-6), sum(ft.slept)


def test_journal_and_notifier_redact_with_one_marker(tmp_path: Path) -> None:
    url = "https://discord.com/api/webhooks/123456/abcdefTOKENxyz"
    n = DiscordNotifier(url)
    assert n._redact(f"failed posting to {url}") == f"failed posting to {REDACTED}"
    with Journal(tmp_path / "j.sqlite") as j:
        j.record_decision("d", "e", "s", "SPY", "buy", {"webhook": url}, T0)
        (stored,) = j._read("SELECT reasoning FROM decisions")[0]
    assert REDACTED in stored
    assert "TOKEN" not in stored


def test_a_second_runner_on_one_journal_exits_naming_the_holder(tmp_path: Path) -> None:
    """A second runner on a held journal exits naming the holder.

    While this process holds the journal, ``run_v28_production.py`` on it ends in one
    ``error: --journal PATH: in use by process PID (...)`` line and exit status 2, like any
    other bad argument, before its banner and before any trading.
    """
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    journal = tmp_path / "j.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "V28_", "DISCORD_"))}
    env["PYTHONPATH"] = str(Path(v28quant.__file__).resolve().parents[1])
    with JournalLock(journal):
        out = subprocess.run(
            [
                sys.executable,
                str(root / "run_v28_production.py"),
                *("--mode", "paper", "--once", "--journal", str(journal)),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
            env=env,
        )
    assert out.returncode == 2, out.stderr[-2000:]
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"error: --journal {journal}: in use by process {os.getpid()} (lock ")
    assert "SIMULATED TRADING" not in out.stdout + out.stderr  # no banner
    assert not journal.exists()  # refused before the journal was opened
