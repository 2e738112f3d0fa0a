"""Each engine's dollar P&L in a real backtest adds up to the account's equity change.

A keyless backtest in which both engines open and close positions, then checks made from its
report, its journal and the simulated exchange's closing equity.

Independent references: the journal file read with ``sqlite3`` (the commission each engine paid:
$0.005 a share of its stock fills, the engine from the fills' client order ids; the positions
the last roll-up marked), and the equity curve, the simulated exchange's own account at each
close: the engines' realised + unrealised - commission must be its change, to the cent.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from v28quant.backtest import BacktestResult, run_backtest

SESSIONS = ("2022-11-01", "2022-11-15")  # both engines close trips and hold lots at the end
COMMISSION_PER_SHARE = 0.005  # [backtest] commission_per_share of the defaults


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, dict[str, Any]]:
    root = tmp_path_factory.mktemp("engine-pnl")
    cfg = root / "v28.toml"
    cfg.write_text(
        f'[runner]\nmodel_dir = "{root / "models"}"\nruns_dir = "{root / "runs"}"\n'
        f"[backtest]\ncommission_per_share = {COMMISSION_PER_SHARE}\n"
    )
    result = run_backtest(
        cfg,
        *SESSIONS,
        params={"min_confidence": 0.2},
        journal=root / "journal.sqlite",
        report_dir=root / "report",
    )
    assert result.report_dir is not None
    metrics = json.loads((result.report_dir / "metrics.json").read_text())
    return result, metrics


def _rows(path: Path, sql: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(str(path))
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _is_option(symbol: str) -> bool:
    return len(symbol) > 15 and symbol[-9] in "CP"  # ROOT + YYMMDD + C/P + 8 digits


def test_engines_net_pnl_adds_up_to_the_equity_change(
    run: tuple[BacktestResult, dict[str, Any]],
) -> None:
    result, m = run
    engines = m["engines"]
    for name in ("equity", "options"):
        assert engines[name]["round_trips"] > 0, (name, engines[name])
    assert any(e["open_positions"] for e in engines.values()), engines
    change = float(result.equity_curve.iloc[-1]) - m["initial_equity"]
    net = sum(e["net_pnl"] for e in engines.values())
    assert net == pytest.approx(change, abs=0.005), (engines, change)
    for name, e in engines.items():
        parts = e["realised_pnl"] + e["unrealised_pnl"] - e["commission"]
        assert e["net_pnl"] == pytest.approx(parts, abs=1e-6), name
    assert m["realised_pnl"] == pytest.approx(sum(e["realised_pnl"] for e in engines.values()))
    assert m["round_trips"] == sum(e["round_trips"] for e in engines.values())


def test_each_engine_pays_the_commission_of_its_own_fills(
    run: tuple[BacktestResult, dict[str, Any]],
) -> None:
    result, m = run
    paid: dict[str, float] = {}
    for f in _rows(result.journal_path, "SELECT client_order_id, symbol, qty FROM fills"):
        if not _is_option(f["symbol"]):
            engine = f["client_order_id"].split("-")[1]
            paid[engine] = paid.get(engine, 0.0) + abs(float(f["qty"])) * COMMISSION_PER_SHARE
    got = {name: e["commission"] for name, e in m["engines"].items() if e["commission"]}
    assert got == pytest.approx(paid, abs=1e-9)


def test_the_engines_hold_what_the_last_close_marked(
    run: tuple[BacktestResult, dict[str, Any]],
) -> None:
    result, m = run
    sql = "SELECT reasoning FROM decisions WHERE action = 'end_of_day' AND engine = 'runner'"
    last = max(
        (json.loads(r["reasoning"]) for r in _rows(result.journal_path, sql)),
        key=lambda r: r["day"],
    )
    held: dict[str, float] = {}
    for e in m["engines"].values():
        for symbol, qty in e["open_positions"].items():
            held[symbol] = held.get(symbol, 0.0) + qty
    assert {s for s, q in held.items() if q != 0} == set(last["marks"])
    page = (result.report_dir / "report.html").read_text()
    assert "<h2>Engines (USD)</h2>" in page
    assert f"Account equity change: {m['final_equity'] - m['initial_equity']:,.2f}" in page
