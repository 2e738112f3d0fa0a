"""Every model family takes part in a keyless run, data to order, read from the journal alone.

One keyless paper run (``--once``: the pre-market job with its training, then one cycle of each
engine on the simulated exchange) on a small universe; the checks open the journal file with
``sqlite3`` (not through the code under test): signals rows per model name, orders the simulated
exchange filled, the training runs of the learned models and the capital split decision.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from v28quant.runner_setup import build_and_run

pytestmark = pytest.mark.slow

UNIVERSE = "AAPL,JPM,XOM"
#: Family -> the names its signals carry in the journal (the options engine prefixes its own).
FAMILIES = {
    "garch": {"garch"},
    "capm": {"capm"},
    "heston": {"heston", "options_heston"},
    "merton": {"merton", "options_merton"},
    "monte_carlo": {"monte_carlo"},
    "xgboost": {"xgboost"},
    "stacked_ensemble": {"stacked_ensemble"},
    "transformer": {"transformer"},
    "sac": {"sac"},
    "hmm": {"hmm"},
    "manifold": {"manifold"},
}


@pytest.fixture(scope="session")
def keyless_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("families")
    cfg = root / "v28.toml"
    cfg.write_text(
        f'[runner]\nmodel_dir = "{root / "models"}"\nruns_dir = "{root / "runs"}"\n'
        f'log_dir = "{root / "logs"}"\n'
        "[paper]\nmin_confidence = 0.0\n[equity]\nmin_trade_weight = 0.0\n"
    )
    journal = root / "journal.sqlite"
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("APCA_", "V28_"))}
    try:
        argv = ["--mode", "paper", "--once", "--config", str(cfg), "--universe", UNIVERSE]
        assert build_and_run([*argv, "--journal", str(journal)]) == 0
    finally:
        os.environ.pop("V28_CONFIG", None)
        os.environ.update(saved)
    return journal


def _rows(path: Path, sql: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(str(path))
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_every_family_signalled(keyless_journal: Path) -> None:
    counts = {
        r["model"]: r["n"]
        for r in _rows(keyless_journal, "SELECT model, COUNT(*) AS n FROM signals GROUP BY model")
    }
    missing = {f for f, names in FAMILIES.items() if not names & set(counts)}
    assert not missing, f"families without a signal: {sorted(missing)}; journal has {counts}"
    for row in _rows(keyless_journal, "SELECT model, confidence, value FROM signals"):
        assert 0.0 <= row["confidence"] <= 1.0, row["model"]
        assert -1.0 <= row["value"] <= 1.0, row["model"]


def test_an_order_reached_the_exchange(keyless_journal: Path) -> None:
    fills = _rows(keyless_journal, "SELECT client_order_id FROM fills")
    assert any(f["client_order_id"].startswith("v28-equity-aggregate-") for f in fills), fills


def test_learned_models_trained_and_capital_split(keyless_journal: Path) -> None:
    runs = {r["model"] for r in _rows(keyless_journal, "SELECT model FROM model_runs")}
    assert {"transformer", "sac", "xgboost", "stacked_ensemble"} <= runs, runs
    (split,) = _rows(
        keyless_journal, "SELECT reasoning FROM decisions WHERE action = 'capital_split'"
    )
    why = json.loads(split["reasoning"])
    assert set(why["split"]) == {"equity", "options"}
    assert sum(why["split"].values()) == pytest.approx(1.0)
    assert 0.0 < why["risk_scale"] <= 1.0


def test_regime_votes_carry_an_untested_record(keyless_journal: Path) -> None:
    # confidence = record x support for every model: the detectors have no directional record,
    # so half (the untested record) of their most likely state's probability
    rows = _rows(
        keyless_journal,
        "SELECT confidence, reasoning FROM signals WHERE model IN ('hmm', 'manifold')",
    )
    assert rows
    for r in rows:
        top = max(json.loads(r["reasoning"])["probabilities"].values())
        assert r["confidence"] == pytest.approx(0.5 * top, abs=1e-4)
