"""The systemd unit, parsed as systemd reads it.

Also checked by ``systemd-analyze verify`` where that tool exists.

Independent reference: systemd.service(5), systemd.exec(5) and systemd.kill(5) (directive names
and the values the issue requires).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "v28_trading_bot.service"


def _parse(text: str) -> dict[str, dict[str, list[str]]]:
    """Systemd's unit syntax: [Section] headers, Key=Value lines, # and ; comments."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            out.setdefault(section, {})
            continue
        assert section is not None, f"a line before any [Section]: {raw!r}"
        assert "=" in line, f"not a unit line: {raw!r}"
        key, value = line.split("=", 1)
        out[section].setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_has_what_a_server_needs() -> None:
    unit = _parse(UNIT.read_text())
    svc = unit["Service"]
    assert svc["User"] == ["v28trader"]
    assert svc["WorkingDirectory"] == ["/opt/trading-bot"]
    assert svc["EnvironmentFile"][0].startswith("/etc/")
    exec_start = svc["ExecStart"][0].split()
    assert exec_start[1].endswith("run_v28_production.py")
    assert "--mode=live" in exec_start
    assert svc["Restart"] == ["on-failure"]
    assert svc["KillSignal"] == ["SIGTERM"]
    assert int(svc["TimeoutStopSec"][0]) >= 120  # a cycle and an order confirmation fit
    assert svc["NoNewPrivileges"] == ["yes"]
    assert svc["ProtectSystem"] == ["strict"]
    writable = svc["ReadWritePaths"][0].split()
    assert "/opt/trading-bot/journal" in writable
    assert "/opt/trading-bot/logs" in writable
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["After"][0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify resolves ExecStart and the user; point them at things that exist here.
    text = UNIT.read_text().replace(
        "/opt/trading-bot/.venv/bin/python", shutil.which("python3") or "/usr/bin/python3"
    )
    text = text.replace("User=v28trader", "User=root").replace("Group=v28trader", "Group=root")
    copy = tmp_path / "v28_trading_bot.service"
    copy.write_text(text)
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        ln
        for ln in out.stderr.splitlines()
        if "v28_trading_bot.service" in ln and "Failed to" not in ln and "bus" not in ln.lower()
    ]
    assert not problems, out.stderr


def test_every_default_write_path_is_writable_under_protect_system_strict() -> None:
    # ProtectSystem=strict makes /opt read-only but for ReadWritePaths; a default path outside
    # them refuses the first start ("cannot write there"). The journal's folder also holds its
    # lock, the options book, the promoted set, the Optuna study and research/. $HOME is
    # read-only too: matplotlib's cache (MPLCONFIGDIR, an absolute path) must be set inside them.
    from v28quant.config import defaults
    from v28quant.settings import Settings

    svc = _parse(UNIT.read_text())["Service"]
    cwd = Path(svc["WorkingDirectory"][0])
    env = dict(line.split("=", 1) for line in svc.get("Environment", []))
    journal = Path(env.get("V28_JOURNAL", str(Settings.model_fields["journal_path"].default)))
    runner = defaults()["runner"]
    written = [cwd / journal] + [cwd / runner[k] for k in ("log_dir", "model_dir", "runs_dir")]
    assert Path(env.get("MPLCONFIGDIR", "")).is_absolute(), "MPLCONFIGDIR unset or relative"
    written.append(Path(env["MPLCONFIGDIR"]))
    writable = [Path(p) for p in svc["ReadWritePaths"][0].split()]
    outside = [p for p in written if not any(p.is_relative_to(w) for w in writable)]
    assert not outside, f"written outside ReadWritePaths: {outside}"
