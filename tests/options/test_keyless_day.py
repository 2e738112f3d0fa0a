"""The keyless default: ``run_v28_production.py --mode paper`` opens option structures.

The runner replays a session of the bundled sample history on the simulated exchange with the
shipped settings. The journal must hold at least one options order, every multi-leg structure
as one ``mleg`` order with two to four legs, each behind a decision whose reasoning names the
strategy-table rule, the vol view, the score against the paper threshold and the structure;
with ``[paper] min_confidence = 0`` a structure opens on a liquid chain in one cycle.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from v28quant.runner_setup import build_and_run


def _keyless(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    for var in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "V28_CONFIG", "DISCORD_WEBHOOK_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(where)


def _options_orders(journal: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Return (request, decision reasoning) of every options order in the journal."""
    db = sqlite3.connect(str(journal))
    rows = db.execute(
        "SELECT o.request, d.reasoning FROM orders o JOIN decisions d "
        "ON d.decision_id = o.decision_id AND d.engine = o.engine "
        "WHERE o.client_order_id LIKE 'v28-options-%' ORDER BY o.intent_ts"
    ).fetchall()
    db.close()
    return [(json.loads(r), json.loads(w)) for r, w in rows]


@pytest.mark.slow
def test_the_keyless_paper_day_opens_a_structure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shipped settings, one replayed session: an options structure opens, with its reasons."""
    _keyless(monkeypatch, tmp_path)
    journal = tmp_path / "journal.sqlite"
    args = ["--mode", "paper", "--days", "1", "--universe", "PG,BBY,MRK", "--journal"]
    assert build_and_run([*args, str(journal)]) == 0
    orders = _options_orders(journal)
    opens = [(req, why) for req, why in orders if str(why.get("rule", "")).startswith("strategy")]
    assert opens, "no options structure opened on the keyless default day"
    for req, why in opens:
        structure = why["structure"]
        legs = structure["legs"]
        if len(legs) > 1:  # a multi-leg structure is one mleg order, never legged in
            assert req["kind"] == "mleg"
            assert len(req["legs"]) == len(legs)
            assert 2 <= len(req["legs"]) <= 4
        assert why["score"] >= why["threshold"]
        assert why["threshold"] == pytest.approx(0.15)  # [paper] options_min_confidence
        for key in ("vol_view", "regime", "analysis", "greeks_after", "units", "touch"):
            assert key in why
        if "entry" in why:  # a debit vertical bought with the trend
            assert why["entry"] == "debit_vertical"
            trend = why["trend"]
            assert abs(trend["t_stat"]) >= 1.0
            assert structure["strategy"] == ("bull_call" if trend["t_stat"] > 0 else "bear_put")


@pytest.mark.slow
def test_with_threshold_zero_a_liquid_chain_opens_a_structure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[paper] min_confidence = 0``: one cycle on one liquid chain opens one structure."""
    _keyless(monkeypatch, tmp_path)
    cfg = tmp_path / "v28.toml"
    cfg.write_text("[paper]\nmin_confidence = 0.0\n", encoding="utf-8")
    journal = tmp_path / "journal.sqlite"
    args = ["--mode", "paper", "--once", "--universe", "KO", "--config", str(cfg), "--journal"]
    assert build_and_run([*args, str(journal)]) == 0
    orders = _options_orders(journal)
    assert len(orders) == 1
    req, why = orders[0]
    assert why["threshold"] == 0.0
    assert req["kind"] == ("mleg" if len(why["structure"]["legs"]) > 1 else "option")
