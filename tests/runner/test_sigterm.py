"""SIGTERM to a running keyless paper session.

The cycle in flight finishes, the exit status is 0 and the journal is intact, with no order
sent twice.

Independent reference: POSIX signal delivery to a real child process, and SQLite's own
``PRAGMA integrity_check`` on the journal it leaves.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import v28quant

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sigterm_mid_session_exits_zero_and_keeps_the_journal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "V28_", "DISCORD_"))}
    env["PYTHONPATH"] = str(Path(v28quant.__file__).resolve().parents[1])
    (tmp_path / "v28.toml").write_text("[paper]\nsim_cycle_minutes = 5\nmin_confidence = 0.0\n")
    journal = tmp_path / "j.sqlite"
    cmd = [
        sys.executable,
        str(ROOT / "run_v28_production.py"),
        "--mode",
        "paper",
        "--config",
        "v28.toml",
        "--universe",
        "AAPL,JPM,XOM",
        "--journal",
        str(journal),
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 900
    for line in proc.stdout:
        lines.append(line)
        if "equity cycle" in line:  # trading has started: stop it mid-session
            proc.send_signal(signal.SIGTERM)
            break
        assert time.monotonic() < deadline, "no cycle within 15 minutes"
    rest, _ = proc.communicate(timeout=600)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output[-3000:]
    assert "SIGTERM: finishing the cycle in flight" in output
    assert "end of day" not in output  # stopped before the close
    db = sqlite3.connect(str(journal))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    sent = [r[0] for r in db.execute("SELECT client_order_id FROM orders")]
    db.close()
    assert len(sent) == len(set(sent))
