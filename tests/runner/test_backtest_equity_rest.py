"""A daily backtest fills the rest of an equity order the quote's displayed size cut short.

The simulated exchange fills a market order up to the quote's displayed size (100 shares on the
replay's synthetic quotes) and the rest from the next quote. With one cycle a session the next
look at the order used to be the close, where the rest expired; between cycles the runner now
lets the equity engine look up its working orders at the 5-minute slots, as its cycles would in
live trading, so the rest fills minutes later.

Independent reference: the journal file read with ``sqlite3`` (the orders table's quantities
and statuses) and the exchange calendar's 5-minute grid.
"""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
from v28quant.backtest import run_backtest
from v28quant.calendar import default_calendar

SESSIONS = ("2022-12-21", "2022-12-23")
UNIVERSE = ["KO", "MRK", "PEP", "XOM"]


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> list[sqlite3.Row]:
    root = tmp_path_factory.mktemp("backtest-equity")
    cfg = root / "v28.toml"
    cfg.write_text(
        f'[runner]\nmodel_dir = "{root / "models"}"\nruns_dir = "{root / "runs"}"\n'
        "[aggregator]\nmin_confidence = 0.0\n"
        # an account large enough that its orders are several quotes' displayed size
        "[backtest]\ncash = 2000000.0\n[risk]\nmax_order_notional = 1000000.0\n"
    )
    result = run_backtest(
        cfg, *SESSIONS, UNIVERSE, journal=root / "journal.sqlite", report_dir=root / "report"
    )
    db = sqlite3.connect(str(result.journal_path))
    db.row_factory = sqlite3.Row
    try:
        return db.execute(
            "SELECT client_order_id, status, json_extract(request, '$.qty') AS qty, filled_qty, "
            "intent_ts, updated_ts FROM orders "
            "WHERE engine = 'equity' ORDER BY intent_ts"
        ).fetchall()
    finally:
        db.close()


def test_orders_beyond_the_displayed_size_fill_within_the_session(
    orders: list[sqlite3.Row],
) -> None:
    large = [o for o in orders if float(o["qty"]) > 100]
    assert large, f"no equity order above the displayed 100 shares: {[tuple(o) for o in orders]}"
    for o in orders:
        assert o["status"] == "filled", tuple(o)
        assert float(o["filled_qty"]) == float(o["qty"]), tuple(o)


def test_the_rest_fills_at_the_five_minute_slots_not_at_the_close(
    orders: list[sqlite3.Row],
) -> None:
    cal = default_calendar()
    grid = {t for day in cal.sessions(*SESSIONS) for t in cal.windows(day).cycles}
    for o in orders:
        if float(o["qty"]) > 100:
            done = pd.Timestamp(o["updated_ts"]).to_pydatetime()
            assert done in grid, f"{o['client_order_id']} filled at {done}, off the 5-minute grid"
