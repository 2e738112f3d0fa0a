"""The soak's process: keyless paper for ``--days N`` with both engines, measured from inside.

Run as ``python soak_run.py OUT.json RUNNER-ARGS...``. It starts as ``run_v28_production.py``
does (on the system allocator) and runs ``build_and_run`` unchanged, and
records, at each session's end, the process's resident memory (``/proc/self/statm``), its open
file descriptors (``/proc/self/fd``) and the asyncio tasks alive; for each engine cycle, the wall
seconds it took and how late (simulated time) it started after its slot. The figures are
rewritten to ``OUT.json`` after every session (a run cut short keeps what it measured).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import date, datetime
from typing import Any

from v28quant.memory import use_system_allocator
from v28quant.runner import Runner
from v28quant.runner_setup import build_and_run

PAGE = os.sysconf("SC_PAGE_SIZE")
FIGURES: dict[str, Any] = {"sessions": [], "cycles": []}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _write() -> None:
    with open(sys.argv[1], "w") as f:
        json.dump(FIGURES, f)


def _wrap() -> None:
    cycle, end_of_day = Runner._cycle, Runner.end_of_day

    async def timed_cycle(self: Runner, engine: Any, slot: datetime) -> Any:
        late = (self.ctx.now - slot).total_seconds()
        t0 = time.perf_counter()
        try:
            return await cycle(self, engine, slot)
        finally:
            FIGURES["cycles"].append(
                {"engine": engine.name, "wall_s": time.perf_counter() - t0, "late_s": late}
            )

    async def measured_end_of_day(self: Runner, day: date) -> None:
        await end_of_day(self, day)
        FIGURES["sessions"].append(
            {
                "day": day.isoformat(),
                "rss": _rss_bytes(),
                "fds": len(os.listdir("/proc/self/fd")),
                "tasks": len(asyncio.all_tasks()),
                "skipped": self.state.skipped,
                "errors": self.state.errors,
            }
        )
        _write()

    Runner._cycle = timed_cycle  # type: ignore[method-assign]
    Runner.end_of_day = measured_end_of_day  # type: ignore[method-assign]


if __name__ == "__main__":
    use_system_allocator()  # as run_v28_production.py starts
    _wrap()
    code = build_and_run(sys.argv[2:])
    FIGURES["exit_code"] = code
    _write()
    sys.exit(code)
