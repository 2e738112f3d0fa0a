"""The full pipeline, data to order, on the simulated exchange.

A short backtest, then checks made from its journal and report alone.

Independent references: the journal file read with ``sqlite3`` (not through the code under
test), the metrics recomputed with pandas from ``metrics.json``'s daily equity curve and the
journal's fills, and the textbook definitions of ``v28quant.backtest.metrics``' docstring.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from v28quant.backtest import BacktestResult, run_backtest
from v28quant.cli import main as cli_main

UNIVERSE = ["AAPL", "JPM", "XOM"]
EQUITY_FAMILIES = {
    "garch",
    "capm",
    "hmm",
    "manifold",
    "xgboost",
    "stacked_ensemble",
    "transformer",
    "sac",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, Path]:
    root = tmp_path_factory.mktemp("pipeline")
    cfg = root / "v28.toml"
    cfg.write_text(
        f'[runner]\nmodel_dir = "{root / "models"}"\nruns_dir = "{root / "runs"}"\n'
        "[aggregator]\nmin_confidence = 0.0\n"
    )
    result = run_backtest(
        cfg,
        "2022-12-21",
        "2022-12-28",
        UNIVERSE,
        {"trials": 4, "min_trade_weight": 0.0},
        journal=root / "journal.sqlite",
        report_dir=root / "report",
    )
    return result, root


def _rows(path: Path, sql: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(str(path))
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_every_family_voted_and_the_engine_traded(run: tuple[BacktestResult, Path]) -> None:
    result, _ = run
    models = {r["model"] for r in _rows(result.journal_path, "SELECT DISTINCT model FROM signals")}
    assert models >= EQUITY_FAMILIES, models
    assert any(m.startswith("options_") for m in models), models  # the options engine ran too
    orders = _rows(result.journal_path, "SELECT * FROM orders WHERE engine = 'equity'")
    assert orders, "min_confidence 0 and non-zero aggregates must trade"
    for o in orders:
        assert o["client_order_id"].startswith("v28-equity-aggregate-")
        decision = _rows(
            result.journal_path,
            f"SELECT reasoning FROM decisions WHERE decision_id = '{o['decision_id']}'",
        )
        why: dict[str, Any] = json.loads(decision[0]["reasoning"])
        assert set(why["contributions"]) <= EQUITY_FAMILIES
        assert why["min_confidence"] == 0.0
    # signals carry data time: the close before the decision, never the wall clock
    ts = pd.to_datetime([r["ts"] for r in _rows(result.journal_path, "SELECT ts FROM signals")])
    assert ts.max() <= pd.Timestamp("2022-12-28 21:00", tz="UTC")
    # only the universe aggregates: the market proxy (SP500) has a GARCH signal, no aggregate
    aggregated = _rows(result.journal_path, "SELECT DISTINCT symbol FROM aggregates")
    assert {r["symbol"] for r in aggregated} <= set(UNIVERSE)
    signalled = _rows(result.journal_path, "SELECT DISTINCT symbol FROM signals")
    assert "SP500" in {r["symbol"] for r in signalled}
    regimes = _rows(result.journal_path, "SELECT * FROM decisions WHERE action = 'regime'")
    assert len(regimes) == len(result.equity_curve)


def test_metrics_recomputed_from_the_curve_and_the_fills(run: tuple[BacktestResult, Path]) -> None:
    result, root = run
    m = json.loads((root / "report" / "metrics.json").read_text())
    for name in ("report.html", "equity_curve.png", "drawdown.png", "exposure.png"):
        assert (root / "report" / name).stat().st_size > 0
    curve = pd.Series({r["date"]: r["equity"] for r in m["equity_curve"]})
    assert list(curve.index) == [d.isoformat() for d in result.equity_curve.index]
    e = pd.concat([pd.Series([m["initial_equity"]]), curve.reset_index(drop=True)])
    r = e.pct_change().dropna()
    assert m["total_return"] == pytest.approx(curve.iloc[-1] / m["initial_equity"] - 1)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std() * math.sqrt(252), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx((1 - e / e.cummax()).max(), abs=1e-12)
    fills = _rows(result.journal_path, "SELECT symbol, qty, price FROM fills")
    # an option symbol is ROOT + YYMMDD + C/P + 8 digits: 100 shares a contract
    option = [len(f["symbol"]) > 15 and f["symbol"][-9] in "CP" for f in fills]
    notional = sum(
        abs(float(f["qty"])) * float(f["price"]) * (100 if o else 1)
        for f, o in zip(fills, option, strict=True)
    )
    shares = sum(abs(float(f["qty"])) for f, o in zip(fills, option, strict=True) if not o)
    assert m["fills"] == len(fills) > 0
    assert m["traded_notional"] == pytest.approx(notional, rel=1e-12)
    assert m["costs"]["commission"] == pytest.approx(0.005 * shares, rel=1e-12)
    assert m["turnover"] == pytest.approx(notional / np.mean(e), rel=1e-9)
    assert m["deflated_sharpe"]["trials"] == 4
    # the equity aggregates' standing, counted from the journal with sqlite3
    agg = _rows(
        result.journal_path,
        "SELECT COUNT(*) AS n, SUM(tradable) AS t, MAX(confidence) AS top FROM aggregates "
        "WHERE symbol NOT LIKE '%:%'",
    )[0]
    assert (m["aggregates"]["aggregates"], m["aggregates"]["tradable"]) == (agg["n"], agg["t"])
    assert m["aggregates"]["highest"]["confidence"] == agg["top"]
    assert m["aggregates"]["min_confidence"] == [0.0]
    page = (root / "report" / "report.html").read_text()
    assert "No order was filled" not in page
    assert f"from {m['sessions']} daily return(s): too few" in page  # a week is no sample


def test_operator_cli_reads_and_writes_the_journal(
    run: tuple[BacktestResult, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    result, _ = run
    j = str(result.journal_path)
    assert cli_main(["--journal", j, "status"]) == 0
    out = capsys.readouterr().out
    assert "mode backtest" in out
    assert "regime:" in out
    assert "last equity cycle" in out
    symbol = _rows(result.journal_path, "SELECT symbol FROM fills LIMIT 1")[0]["symbol"]
    assert cli_main(["--journal", j, "why", symbol]) == 0
    assert "capm" in capsys.readouterr().out
    assert cli_main(["--journal", j, "halt", "--reason", "test"]) == 0
    capsys.readouterr()
    assert cli_main(["--journal", j, "status"]) == 0
    assert "HALTED" in capsys.readouterr().out
    assert cli_main(["--journal", j, "resume"]) == 0
    assert cli_main(["--journal", str(Path(j).with_name("missing.sqlite")), "status"]) == 2
