"""A session the venue does not open, though the installed exchange calendar has it.

An unscheduled closure (a national day of mourning, announced days ahead) is in the venue's
calendar (Alpaca's ``/v2/calendar``) before it is in any release of exchange_calendars. The
keyed runner, started the morning of such a day against the loopback Alpaca fakes with the real
alpaca-py clients, must follow the venue: no pre-market job, no cycle and no order that day,
and the closure said in the journal, then wait for the next session's pre-market job.

Independent references: the fake's calendar (XNYS less its ``closed_days``), its record of the
requests it received, and the journal file read with ``sqlite3``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.alpaca_data import FakeAlpacaData, bars_from_csv
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import follow_fake_clock, point_runner_at_fakes
from v28quant.calendar import default_calendar
from v28quant.config import load_config
from v28quant.runner_args import parse_args
from v28quant.runner_setup import run_with

NY = ZoneInfo("America/New_York")
CLOSED = date(2023, 9, 14)  # a Thursday XNYS has as a session
START = datetime(2023, 9, 14, 8, 30, tzinfo=NY)
NEXT_PREMARKET = datetime(2023, 9, 15, 9, 0, tzinfo=NY)
KEY, SECRET = "PKTESTKEY0003", "test-secret-value"


@pytest.fixture
def own_calendar() -> Iterator[None]:
    """Give each test a calendar of its own: the runner changes the process' shared one."""
    default_calendar.cache_clear()
    yield
    default_calendar.cache_clear()


def _run(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, calendar_down: bool
) -> tuple[FakeAlpacaTrading, list[datetime], Path]:
    """Run the keyed paper runner from 08:30 of the closed day until it waits into a session."""
    trading = FakeAlpacaTrading(now=START).start()
    trading.closed_days.add(CLOSED)
    if calendar_down:
        trading.inject("GET", "/v2/calendar", 500, {"message": "down"}, times=100)
    files = {
        "AAPL": shared_data / "equities/yf_adjusted_2019_2025/AAPL.csv",
        "SPY": shared_data / "equities/yahoo_raw_2019_2023/SPY.csv",
    }
    bars = {s: bars_from_csv(p, end="2023-09-13") for s, p in files.items()}
    waits: list[datetime] = []
    try:
        with FakeAlpacaData(bars=bars, now=START) as data:

            async def wait(when: datetime) -> None:
                waits.append(when)
                if when.astimezone(NY).date() == CLOSED or when >= NEXT_PREMARKET:
                    os.kill(os.getpid(), signal.SIGTERM)  # enough seen: the operator stops it
                    await asyncio.sleep(3600)  # cancelled by the runner's stop
                trading.advance_to(when)
                data.now = when

            follow_fake_clock(monkeypatch, lambda: trading.now, wait)
            point_runner_at_fakes(monkeypatch, trading.url, data.url, KEY, SECRET)
            monkeypatch.chdir(tmp_path)
            (tmp_path / "v28.toml").write_text(
                '[equity]\nmarket_symbol = "SPY"\n[options]\nunderlyings = ["SPY"]\n'
                "[offhours]\ntune = false\n"
            )
            journal = tmp_path / "j.sqlite"
            argv = ["--mode", "paper", "--config", "v28.toml", "--universe", "AAPL"]
            args = parse_args([*argv, "--journal", str(journal)])
            settings, cfg = load_config(args.config, journal_path=journal)
            assert run_with(args, settings, cfg).exit_code == 0
    finally:
        trading.stop()
    return trading, waits, journal


@pytest.mark.usefixtures("own_calendar")
def test_a_closure_only_the_venue_knows_is_not_traded(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    trading, waits, journal = _run(shared_data, monkeypatch, tmp_path, calendar_down=False)
    # the runner slept through the closed day, to the next session's pre-market job
    assert [w for w in waits if w.astimezone(NY).date() == CLOSED] == []
    assert max(waits) == NEXT_PREMARKET
    assert trading.count("POST", "/v2/orders") == 0
    db = sqlite3.connect(str(journal))
    try:
        assert db.execute("SELECT COUNT(*) FROM reconciles").fetchone()[0] == 0
        rows = db.execute(
            "SELECT reasoning FROM decisions WHERE engine = 'runner' AND action = 'calendar'"
        ).fetchall()
    finally:
        db.close()
    assert len(rows) == 1
    changes = json.loads(rows[0][0])["changes"]
    assert changes == ["2023-09-14: closed (the installed calendar has a session 09:30-16:00)"]


@pytest.mark.usefixtures("own_calendar")
def test_an_unread_venue_calendar_leaves_the_installed_one(
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, waits, _ = _run(shared_data, monkeypatch, tmp_path, calendar_down=True)
    # the runner went for the installed calendar's pre-market job of the day (stopped there)
    assert waits == [datetime(2023, 9, 14, 9, 0, tzinfo=NY)]
    assert "venue calendar unread" in caplog.text
