"""A backtest's reported slippage is the slippage its fills paid, not a flat 2 bps of notional.

The simulated exchange moves a market fill 2 bps past the quote, but a limit order's fill only
towards its limit, never past it: the options engine's orders walk to the natural and fill at
their limit, paying less slippage than 2 bps of their premium, or none.

Independent reference: the journal file read with ``sqlite3`` (each fill's price, side and
time) and, for each fill, the quote the replay feed gave at that time (the same bundled history
on its own clock): slippage paid = |fill price - the quote's bid (sell) or ask (buy)| x qty x
the contract multiplier (100 for an option, 1 for a share), by hand.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from v28quant.backtest import run_backtest
from v28quant.clock import SimClock
from v28quant.data.replay import ReplayFeed
from v28quant.data.samples import sample_history

SESSION = "2022-12-21"  # the options engine's puts fill at their limit, the equity engine buys
UNIVERSE = ["AAPL", "JPM"]
SPREAD_BPS = 4.0  # [backtest] spread_bps of the defaults


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("costs-paid")
    cfg = root / "v28.toml"
    cfg.write_text(
        f'[runner]\nmodel_dir = "{root / "models"}"\nruns_dir = "{root / "runs"}"\n'
        "[aggregator]\nmin_confidence = 0.0\n"  # both engines trade on the first day
    )
    result = run_backtest(
        cfg,
        SESSION,
        SESSION,
        UNIVERSE,
        journal=root / "journal.sqlite",
        report_dir=root / "report",
    )
    assert result.report_dir is not None
    metrics = json.loads((result.report_dir / "metrics.json").read_text())
    return result.journal_path, metrics


def _fills(path: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(str(path))
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT symbol, side, qty, price, ts FROM fills").fetchall()
    finally:
        db.close()


async def _costs_paid(fills: list[sqlite3.Row]) -> tuple[Decimal, Decimal]:
    """Return (slippage, half spread of the stock fills) paid, by hand from the quotes."""
    history, slippage, half_spread = sample_history(), Decimal(0), Decimal(0)
    for f in fills:
        feed = ReplayFeed(
            history, SimClock(datetime.fromisoformat(f["ts"])), equity_spread_bps=SPREAD_BPS
        )
        q = await feed.quote(f["symbol"])
        quoted = q.ask if f["side"] == "buy" else q.bid
        qty, option = Decimal(f["qty"]), len(f["symbol"]) > 15
        slippage += abs(Decimal(f["price"]) - quoted) * qty * (100 if option else 1)
        if not option:
            half_spread += abs(quoted - (q.bid + q.ask) / 2) * qty
    return slippage, half_spread


async def test_reported_slippage_is_what_the_fills_paid(
    run: tuple[Path, dict[str, Any]],
) -> None:
    journal, m = run
    fills = _fills(journal)
    options = [f for f in fills if len(f["symbol"]) > 15]
    assert options, "needs option fills"
    assert len(options) < len(fills), "needs stock fills"
    paid, _ = await _costs_paid(fills)
    flat = m["traded_notional"] * 2e-4
    assert float(paid) < flat  # the option fills at their limit paid less than 2 bps
    assert m["costs"]["slippage"] == pytest.approx(float(paid), abs=1e-9)
    total = m["costs"]["commission"] + m["costs"]["slippage"] + m["costs"]["half_spread"]
    assert m["costs"]["total"] == pytest.approx(total)


async def test_reported_half_spread_is_what_the_stock_fills_paid(
    run: tuple[Path, dict[str, Any]],
) -> None:
    # the replay quotes on whole cents, rounded outwards: JPM at 127.8387 is 127.81 x 127.87,
    # 3 cents from the mid where 2 bps would be 2.56 cents
    journal, m = run
    _, paid = await _costs_paid(_fills(journal))
    assert paid > 0
    assert m["costs"]["half_spread"] == pytest.approx(float(paid), abs=1e-9)
