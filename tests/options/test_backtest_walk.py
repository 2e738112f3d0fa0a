"""A daily backtest walks the options engine's limit orders on the live 5-minute cadence.

With one cycle a session (``[backtest] cycle_minutes = 390``) the options engine places each
order at the mid of its ladder at 09:45; between its cycles the runner lets it follow its resting
orders at the 5-minute slots of the session, so the orders walk towards the natural price as in
live trading and fill, where they used to rest at the mid and expire at the close.

Independent reference: the journal file read with ``sqlite3`` (the orders table: each walk is a
replacement order ``-r<n>`` journaled at its slot) and the exchange calendar's 5-minute grid.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from v28quant.backtest import run_backtest
from v28quant.calendar import ET, default_calendar

SESSIONS = ("2022-12-21", "2022-12-23")
UNIVERSE = ["AAPL", "JPM"]


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("backtest-walk")
    cfg = root / "v28.toml"
    cfg.write_text(
        f'[runner]\nmodel_dir = "{root / "models"}"\nruns_dir = "{root / "runs"}"\n'
        "[aggregator]\nmin_confidence = 0.0\n"  # the options engine enters on any liquid chain
    )
    result = run_backtest(
        cfg, *SESSIONS, UNIVERSE, journal=root / "journal.sqlite", report_dir=root / "report"
    )
    return result.journal_path


def _options_orders(path: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(str(path))
    db.row_factory = sqlite3.Row
    try:
        return db.execute(
            "SELECT client_order_id, status, filled_qty, intent_ts FROM orders "
            "WHERE engine = 'options' ORDER BY intent_ts"
        ).fetchall()
    finally:
        db.close()


def test_options_orders_fill_in_a_daily_backtest(journal: Path) -> None:
    orders = _options_orders(journal)
    assert orders, "the options engine placed no order at min_confidence 0"
    filled = [o for o in orders if o["status"] == "filled"]
    assert filled, f"no options order filled: {[(o[0], o[1]) for o in orders]}"
    assert all(float(o["filled_qty"]) > 0 for o in filled)


def test_walks_run_at_the_five_minute_slots_between_cycles(journal: Path) -> None:
    cal = default_calendar()
    grid: set[datetime] = set()
    cycle_slots: set[datetime] = set()
    for day in cal.sessions(*SESSIONS):
        cycles = list(cal.windows(day).cycles)
        grid.update(cycles)
        cycle_slots.add(cycles[0])  # 390-minute cycles: 09:45 alone
    walks = [o for o in _options_orders(journal) if re.search(r"-r\d+$", o["client_order_id"])]
    assert walks, "no options order was walked between the daily cycles"
    at = [pd.Timestamp(o["intent_ts"]).to_pydatetime() for o in walks]
    for cid, ts in zip((o["client_order_id"] for o in walks), at, strict=True):
        assert ts in grid, f"{cid} walked at {ts.astimezone(ET)}, off the 5-minute grid"
        assert ts not in cycle_slots, f"{cid} walked at the cycle slot {ts.astimezone(ET)}"
