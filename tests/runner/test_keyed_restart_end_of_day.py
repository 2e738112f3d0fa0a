"""A keyed runner restarted after the day's last cycle (15:45) still rolls that day up, once.

``systemd`` restarts a runner that crashed at 15:50; the restart must write the day's end-of-day
roll-up (the report's equity curve reads it) without trading: no pre-market job, no cycle after
15:45. A restart after 16:01 whose day has no roll-up writes it at once, stamped with the time it
is written; one whose day is rolled up writes nothing more. An unbroken afternoon writes one.

The real alpaca-py clients talk to the loopback fakes; the fake exchange's clock is the runner's
(``VenueClock``'s ``wait`` moves it) and the operator stops the runner once the venue is asked to
move past 16:01. Independent references: the journal read with ``sqlite3``, the fakes' own
records of the requests they received, the fake's cash (no positions: the account's equity), the
XNYS slots by hand (09:45 to 15:45 every 5 minutes) and what the engines were asked to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.alpaca_data import FakeAlpacaData, bars_from_csv
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import follow_fake_clock, point_runner_at_fakes
from v28quant.config import RunConfig, load_config
from v28quant.engines import CycleReport, EngineContext
from v28quant.runner_args import parse_args
from v28quant.runner_setup import run_with

NY = ZoneInfo("America/New_York")
DAY = datetime(2023, 9, 14).date()  # a Thursday, a full session
EVE = "2023-09-13"
ROLL_UP = datetime.combine(DAY, time(16, 1), NY)  # one minute after the close
CASH = Decimal("100000")
KEY, SECRET = "PKTESTKEY0003", "test-secret-value"


class Recorder:
    """An engine that trades nothing and records what the runner asks of it, at what time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.premarkets: list[datetime] = []
        self.cycles: list[datetime] = []
        self.ends: list[datetime] = []

    async def premarket(self, ctx: EngineContext) -> None:
        self.premarkets.append(ctx.now)

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        self.cycles.append(ctx.now)
        return CycleReport(self.name, ctx.now)

    async def end_of_day(self, ctx: EngineContext) -> None:
        self.ends.append(ctx.now)


Start = Callable[..., tuple[FakeAlpacaTrading, FakeAlpacaData, Recorder]]


@pytest.fixture
def keyed(shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Start]:
    """Yield ``start(at)``: run a keyed paper runner on one journal from ``at`` New York time.

    ``account_down``, ``positions_down``: the venue answers that many account (positions)
    reads with a 500 first.
    """
    monkeypatch.chdir(tmp_path)
    toml = '[equity]\nmarket_symbol = "SPY"\n[offhours]\ntune = false\n'
    (tmp_path / "v28.toml").write_text(toml)
    equities = shared_data / "equities"
    bars = {
        "AAPL": bars_from_csv(equities / "yf_adjusted_2019_2025" / "AAPL.csv", end=EVE),
        "SPY": bars_from_csv(equities / "yahoo_raw_2019_2023" / "SPY.csv", end=EVE),
    }
    fakes = contextlib.ExitStack()

    def start(
        at: datetime, account_down: int = 0, positions_down: int = 0
    ) -> tuple[FakeAlpacaTrading, FakeAlpacaData, Recorder]:
        trading = FakeAlpacaTrading(now=at, cash=CASH).start()
        if account_down:
            trading.inject("GET", "/v2/account", 500, {"message": "down"}, times=account_down)
        if positions_down:
            trading.inject("GET", "/v2/positions", 500, {"message": "down"}, times=positions_down)
        fakes.callback(trading.stop)
        data = fakes.enter_context(FakeAlpacaData(bars=bars, now=at))

        async def wait(when: datetime) -> None:
            if when > ROLL_UP:  # the day is done: the operator stops the runner
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(3600)  # cancelled by the runner's stop
            trading.advance_to(when)
            data.now = when

        follow_fake_clock(monkeypatch, lambda: trading.now, wait)
        point_runner_at_fakes(monkeypatch, trading.url, data.url, KEY, SECRET)
        monkeypatch.setenv("V28_ALPACA_RATE_LIMIT", "10000")

        recorder = Recorder("recorder")

        def engines(cfg: RunConfig, params: dict[str, Any]) -> list[Recorder]:
            return [recorder]

        journal = tmp_path / "j.sqlite"
        argv = ["--mode", "paper", "--config", "v28.toml", "--universe", "AAPL"]
        args = parse_args([*argv, "--journal", str(journal)])
        settings, cfg = load_config(args.config, journal_path=journal)
        assert run_with(args, settings, cfg, engines=engines).exit_code == 0
        return trading, data, recorder

    with fakes:
        yield start


def _roll_ups(journal: Path) -> list[tuple[str, datetime, Decimal]]:
    db = sqlite3.connect(str(journal))
    try:
        rows = db.execute(
            "SELECT json_extract(reasoning, '$.day'), ts, json_extract(reasoning, '$.equity') "
            "FROM decisions WHERE strategy = 'runner' AND action = 'end_of_day' ORDER BY ts"
        ).fetchall()
    finally:
        db.close()
    return [(d, datetime.fromisoformat(ts).astimezone(NY), Decimal(eq)) for d, ts, eq in rows]


def _ny(hour: int, minute: int) -> datetime:
    return datetime.combine(DAY, time(hour, minute), NY)


def _orders_sent(trading: FakeAlpacaTrading) -> int:
    return sum(1 for m, p, _ in trading.requests if m in ("POST", "PATCH") and "orders" in p)


def test_a_restart_at_1550_rolls_the_day_up_once_without_trading(
    keyed: Start, tmp_path: Path
) -> None:
    trading, data, recorder = keyed(_ny(15, 50))
    assert _roll_ups(tmp_path / "j.sqlite") == [(DAY.isoformat(), ROLL_UP, CASH)]
    assert recorder.ends == [ROLL_UP]
    assert recorder.premarkets == recorder.cycles == []  # no trading after 15:45
    assert data.requests == []  # no pre-market job: no history read
    assert _orders_sent(trading) == 0

    # restarted again at 16:05: that day is rolled up, nothing more is written
    _, _, again = keyed(_ny(16, 5))
    assert _roll_ups(tmp_path / "j.sqlite") == [(DAY.isoformat(), ROLL_UP, CASH)]
    assert again.ends == again.premarkets == again.cycles == []


def test_a_restart_after_1601_writes_the_missing_roll_up_when_it_starts(
    keyed: Start, tmp_path: Path
) -> None:
    trading, data, recorder = keyed(_ny(16, 10))
    # stamped with the time it was written, not back-dated to 16:01
    assert _roll_ups(tmp_path / "j.sqlite") == [(DAY.isoformat(), _ny(16, 10), CASH)]
    assert recorder.ends == [_ny(16, 10)]
    assert recorder.premarkets == recorder.cycles == []
    assert data.requests == []
    assert _orders_sent(trading) == 0


def test_an_unbroken_afternoon_rolls_up_once(keyed: Start, tmp_path: Path) -> None:
    _, _, recorder = keyed(_ny(15, 30))
    assert recorder.premarkets == [_ny(15, 30)]
    assert recorder.cycles == [_ny(15, m) for m in (30, 35, 40, 45)]
    assert recorder.ends == [ROLL_UP]
    assert _roll_ups(tmp_path / "j.sqlite") == [(DAY.isoformat(), ROLL_UP, CASH)]


def test_a_roll_up_whose_account_read_fails_is_not_retried_in_a_loop(
    keyed: Start, tmp_path: Path
) -> None:
    """The account does not answer at 16:10 (three tries): the day stays unmarked, as at 16:01."""
    trading, _, recorder = keyed(_ny(16, 10), account_down=3)
    assert trading.count("GET", "/v2/account") == 3  # one read, three tries: no second roll-up
    assert recorder.ends == [_ny(16, 10)]
    assert _roll_ups(tmp_path / "j.sqlite") == []


def test_a_roll_up_whose_positions_read_fails_still_marks_the_days_equity(
    keyed: Start, tmp_path: Path
) -> None:
    """The positions do not answer at 16:10: the day's equity is still rolled up, without marks.

    The marks only value the report's open lots; the equity curve must not lose the day.
    """
    trading, _, _ = keyed(_ny(16, 10), positions_down=3)
    assert trading.count("GET", "/v2/positions") == 3
    assert _roll_ups(tmp_path / "j.sqlite") == [(DAY.isoformat(), _ny(16, 10), CASH)]
    db = sqlite3.connect(str(tmp_path / "j.sqlite"))
    try:
        (marks,) = db.execute(
            "SELECT json_extract(reasoning, '$.marks') FROM decisions WHERE action = 'end_of_day'"
        ).fetchone()
    finally:
        db.close()
    assert marks is None
