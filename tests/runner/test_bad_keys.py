"""Keys Alpaca refuses end the runner at once with one ``error:`` line, not an endless wait.

``run_v28_production.py --mode paper`` (no ``--once``: the service's way of running) as a child
process against the loopback trading fake answering every request 401, as Alpaca does for a
wrong key or a paper key on the live host. An outage is waited out; wrong keys never mend, so
the run must stop, say which settings to check, exit 2 and never print the keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import v28quant
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET = "PKWRONGKEY42", "wrong-secret-value-42"


def test_keys_refused_with_401_end_the_run_with_one_error_line(tmp_path: Path) -> None:
    """Every read answered 401: exit 2, one ``error:`` line naming the key settings."""
    fake = FakeAlpacaTrading(now=OPEN).start()
    unauthorized = {"message": "request is not authorized"}
    for method in ("GET", "POST", "PATCH", "DELETE"):
        fake.inject(method, "/.*", 401, unauthorized, times=10**6)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "V28_", "DISCORD_"))}
    env.update(
        PYTHONPATH=str(Path(v28quant.__file__).resolve().parents[1]),
        APCA_API_KEY_ID=KEY,
        APCA_API_SECRET_KEY=SECRET,
        APCA_API_BASE_URL=fake.url,
        APCA_API_DATA_URL=fake.url,
    )
    argv = ["--mode", "paper", "--universe", "SPY", "--journal", str(tmp_path / "j.sqlite")]
    try:
        out = subprocess.run(
            [sys.executable, str(ROOT / "run_v28_production.py"), *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        fake.stop()
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(errors) == 1, out.stderr[-2000:]
    assert "APCA_API_KEY_ID" in errors[0]
    assert "401" in errors[0]
    assert "Traceback" not in out.stderr
    for text in (out.stdout, out.stderr):
        assert KEY not in text
        assert SECRET not in text
