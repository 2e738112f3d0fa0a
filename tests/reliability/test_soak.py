"""Soak: keyless paper for many simulated sessions with both engines, in a process of its own.

``SESSIONS`` sessions (20 in the full run, 2 bounded) of the real runner on the simulated
exchange (``soak_run.py`` measures from inside the process: resident memory, open file
descriptors and asyncio tasks at each session's end; each cycle's wall time and start). Passes
when memory grows by at most ``RSS_CEILING`` after the first session and, in a run of 10
sessions or more, by at most ``RSS_FLAT`` per session on average over its second half (the
first sessions warm caches and the journal), descriptors and tasks end no higher than after the
first session, no slot was skipped and every cycle started on its slot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import v28quant
from reliability.tally import FIGURES, FULL
from v28quant.runner import SLOT_GRACE

SESSIONS = 20 if FULL else 2
MIB = 1024 * 1024
#: Allowed resident-memory growth after the first session in all, and per session on average
#: over the second half of a long run.
RSS_CEILING = 128 * MIB
RSS_FLAT = 2 * MIB


def test_soak_keyless_paper_both_engines(tmp_path: Path, tally: Counter[str]) -> None:
    here = Path(__file__).resolve().parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "V28_", "DISCORD_"))}
    env["PYTHONPATH"] = str(Path(v28quant.__file__).parents[1])
    (tmp_path / "v28.toml").write_text(
        "[paper]\nmin_confidence = 0.0\n[equity]\nmin_trade_weight = 0.0\n"
    )
    out = tmp_path / "soak.json"
    args = ["--mode", "paper", "--days", str(SESSIONS), "--config", "v28.toml"]
    proc = subprocess.run(
        [sys.executable, str(here / "soak_run.py"), str(out), *args, "--journal", "j.sqlite"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    sessions, cycles = figures["sessions"], figures["cycles"]
    assert len(sessions) == SESSIONS
    engines = {c["engine"] for c in cycles}
    assert engines == {"equity", "options"}, engines
    rss = [s["rss"] for s in sessions]
    growth = rss[-1] - rss[0]
    half = SESSIONS // 2
    flat = (rss[-1] - rss[half]) / max(1, SESSIONS - 1 - half)
    wall = np.array([c["wall_s"] for c in cycles])
    p50, p95, top = np.percentile(wall, [50, 95, 100])
    FIGURES["soak_sessions"] = f"{SESSIONS} sessions, {len(cycles)} cycles"
    FIGURES["soak_rss"] = (
        f"{growth / MIB:+.1f} MiB after session 1 ({rss[0] / MIB:.0f} -> {rss[-1] / MIB:.0f} MiB)"
        + (f"; second half {flat / MIB:+.2f} MiB/session" if SESSIONS >= 10 else "")
    )
    FIGURES["soak_cycle"] = f"{p50:.2f} / {p95:.2f} / {top:.2f} s"
    print("soak sessions:", json.dumps(sessions))
    leaks = max(0, sessions[-1]["fds"] - sessions[0]["fds"])
    leaks += max(0, sessions[-1]["tasks"] - sessions[0]["tasks"])
    tally["resource_leaks"] += leaks
    assert leaks == 0, sessions
    assert growth <= RSS_CEILING, FIGURES["soak_rss"]
    if SESSIONS >= 10:
        assert flat <= RSS_FLAT, FIGURES["soak_rss"]
    assert sessions[-1]["skipped"] == 0
    late = [c for c in cycles if c["late_s"] > SLOT_GRACE.total_seconds()]
    assert late == [], late[:5]
