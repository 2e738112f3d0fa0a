"""The keyless run's progress bar draws only on a terminal.

Every log line is written through the bar (so that, on a terminal, it prints above it), and each
such write redraws the bar. When stderr is a file or a pipe (the systemd journal, a redirect) each
redraw is one more line of text, thousands in a run of a few sessions. Independent reference:
the text the process wrote to its captured stderr, and tqdm's own bar format (``N/M [`` then
``session/s`` or ``s/session``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from v28quant.config import RunConfig, load_config
from v28quant.engines import CycleReport, EngineContext
from v28quant.runner_args import RunArgs
from v28quant.runner_setup import run_with

BAR = re.compile(r"\d+/\d+ \[.*(session/s|s/session)")


class Idle:
    """An engine that trades nothing; the runner still logs one line for each of its cycles."""

    name = "idle"

    async def premarket(self, ctx: EngineContext) -> None:
        return None

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        return CycleReport(self.name, ctx.now)

    async def end_of_day(self, ctx: EngineContext) -> None:
        return None


def test_a_keyless_run_draws_no_bar_on_a_captured_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    journal = tmp_path / "j.sqlite"

    def engines(cfg: RunConfig, params: dict[str, Any]) -> list[Idle]:
        return [Idle()]

    settings, cfg = load_config(None, journal_path=journal)
    args = RunArgs("paper", None, ("AAPL", "MSFT"), journal, None, None, 2, False, "INFO", None)
    assert run_with(args, settings, cfg, engines=engines).exit_code == 0
    out, err = capsys.readouterr()
    assert not sys.stderr.isatty()  # captured, as by systemd or a redirect
    cycles = out.count("v28quant.runner: idle cycle")
    assert cycles > 10, out[-2000:]  # the log lines are kept
    bars = [line for line in re.split(r"[\r\n]", err) if BAR.search(line)]
    assert bars == [], f"{len(bars)} bar lines for {cycles} log lines, e.g. {bars[:3]}"
