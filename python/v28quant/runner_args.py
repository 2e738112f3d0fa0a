"""Command-line arguments of ``run_v28_production.py``: parsed, checked, one line per mistake.

Every bad argument ends in a single ``error: ...`` line on stderr and exit status 2, never a
traceback: an unknown mode or flag, a date that is not a date, ``--from`` after ``--to``,
``--days`` below 1 or with ``--once``. Checks that need the data (a symbol unknown to the feed,
dates outside the bundled history, a range without a session) are made by ``v28quant.venue``
with the same one-line errors.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NoReturn

from v28quant.settings import SettingsError


class UsageError(SettingsError):
    """A command-line argument is wrong; the message names it."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


@dataclass(frozen=True, slots=True)
class RunArgs:
    """The runner's arguments after checking."""

    mode: str
    config: Path | None
    universe: tuple[str, ...] | None
    journal: Path | None
    start: date | None
    end: date | None
    days: int | None
    once: bool
    log_level: str
    report_dir: Path | None
    tune_off_hours: bool = False


def _date(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: not a date (YYYY-MM-DD): {text!r}") from None


def _path(text: str | None, flag: str) -> Path | None:
    """Return ``text`` as a path; an empty one (an unset shell variable) is refused.

    ``Path("")`` is the current folder: the report would land among the user's files.
    """
    if text is None:
        return None
    if not text:
        raise UsageError(f"{flag}: empty path")
    return Path(text)


def build_parser(prog: str = "run_v28_production.py") -> argparse.ArgumentParser:
    """Return the argument parser (its ``--help`` documents every flag)."""
    p = _Parser(
        prog=prog,
        description="v28quant production runner: both engines through the trading day, on "
        "Alpaca (with keys) or on the built-in simulated exchange (without).",
    )
    p.add_argument("--mode", choices=("live", "paper", "backtest"), default="paper")
    p.add_argument("--config", help="TOML settings file (default: V28_CONFIG)")
    p.add_argument("--universe", help="comma-separated symbols (default: settings)")
    p.add_argument("--journal", help="SQLite journal (default: V28_JOURNAL)")
    p.add_argument("--from", dest="start", help="backtest: first session (YYYY-MM-DD)")
    p.add_argument("--to", dest="end", help="backtest: last session (YYYY-MM-DD)")
    p.add_argument("--days", type=int, help="keyless paper: simulated sessions to run")
    p.add_argument(
        "--once",
        action="store_true",
        help="pre-market job and one cycle of each engine at the venue's time, then exit",
    )
    p.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    p.add_argument("--report", dest="report_dir", help="report folder")
    p.add_argument(
        "--tune-off-hours",
        action="store_true",
        help="keyless paper: run Bayesian tuning on the simulated nights too (slow)",
    )
    return p


def parse_args(argv: list[str] | None = None) -> RunArgs:
    """Parse and check ``argv``.

    Raises
    ------
    UsageError
        One line naming the argument (argparse's own errors exit 2 directly).
    """
    ns = build_parser().parse_args(argv)
    universe = None
    if ns.universe is not None:
        # a symbol named twice is one symbol, kept where it first appears
        universe = tuple(
            dict.fromkeys(s.strip().upper() for s in ns.universe.split(",") if s.strip())
        )
        bad = [s for s in universe if not s.replace(".", "").isalnum()]
        if bad or not universe:
            raise UsageError(f"--universe: not a list of ticker symbols: {ns.universe!r}")
    start = _date(ns.start, "--from") if ns.start is not None else None
    end = _date(ns.end, "--to") if ns.end is not None else None
    config = _path(ns.config, "--config")
    journal = _path(ns.journal, "--journal")
    report_dir = _path(ns.report_dir, "--report")
    if start and end and start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    if ns.mode != "backtest" and (start or end):
        raise UsageError("--from/--to: only with --mode backtest")
    if ns.days is not None and ns.days < 1:
        raise UsageError(f"--days: must be >= 1, got {ns.days}")
    if ns.days is not None and ns.mode != "paper":
        raise UsageError("--days: only with --mode paper (keyless simulated sessions)")
    if ns.once and ns.mode == "backtest":
        raise UsageError("--once: not with --mode backtest")
    if ns.once and ns.days is not None:  # --once is one cycle of one session, not N sessions
        raise UsageError("--days: not with --once (one cycle of one session)")
    if ns.tune_off_hours and (ns.mode == "backtest" or ns.once):
        raise UsageError("--tune-off-hours: not with --mode backtest or --once")
    if journal is not None and journal.is_dir():
        raise UsageError(f"--journal: {journal} is a directory; give the journal file's path")
    return RunArgs(
        mode=ns.mode,
        config=config,
        universe=universe,
        journal=journal,
        start=start,
        end=end,
        days=ns.days,
        once=bool(ns.once),
        log_level=ns.log_level,
        report_dir=report_dir,
        tune_off_hours=bool(ns.tune_off_hours),
    )
