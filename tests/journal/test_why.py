"""The why-query answers from the journal file alone.

A recorded session (signals, aggregates, a decision, its order and fill) is explained after the
process that wrote it has closed the file.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from v28quant.journal import Journal
from v28quant.journal.store import JournalError
from v28quant.signals import RegimeState, Signal, SignalAggregator
from v28quant.why import main

T1 = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
T2 = T1 + timedelta(minutes=5)
REGIME = RegimeState(
    "bear_volatile", {"bull_quiet": 0.0, "sideways": 0.0, "bear_volatile": 1.0}, "hierarchical", T1
)


def _session(path: Path) -> None:
    agg = SignalAggregator({"bear_volatile": {"garch": 2.0, "capm": 1.0, "hmm": 1.0}})
    stale = Signal("xgboost", "XOM", 0.9, 0.9, {"prob_up": 0.95}, T1 - timedelta(days=9))
    first = [
        Signal("garch", "XOM", 0.2, 0.5, {"vol_forecast": 0.31}, T1),
        Signal("capm", "XOM", -0.1, 0.4, {"alpha_t": -0.8}, T1),
    ]
    second = [
        Signal("garch", "XOM", 0.6, 0.9, {"vol_forecast": 0.25}, T2),
        Signal("capm", "XOM", 0.3, 0.8, {"alpha_t": 2.9}, T2),
        Signal("hmm", "XOM", 0.5, 0.7, {"sharpe_annual": 1.1}, T2),
        stale,
    ]
    with Journal(path) as j:
        for sigs, ts in ((first, T1), (second, T2)):
            aggs = agg.aggregate(sigs, REGIME, now=ts)
            j.record_cycle(sigs, aggs.values(), ts)
        j.record_decision("d-1", "equity", "aggregate", "XOM", "buy 10", {"value": 0.5}, T2)
        j.record_order_intent("v28-equity-1", "equity", "aggregate", "d-1", {"qty": "10"}, T2)
        j.record_order_update("v28-equity-1", "b-1", "filled", "10", "101.5", {}, T2)
        j.record_fill("f-1", "v28-equity-1", "XOM", Decimal("10"), Decimal("101.5"), "buy", T2)


def test_why_did_we_buy_xom(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _session(path)
    with Journal(path) as j:
        w = j.why("XOM", at=T2 + timedelta(minutes=1))
    print(w["text"])
    assert w["aggregate_ts"] == T2.isoformat()
    assert w["regime"]["label"] == "bear_volatile"
    assert w["threshold"] == 0.6
    c = w["contributions"]
    assert set(c) == {"garch", "capm", "hmm"}
    assert c["garch"]["weight"] == 2.0
    # the aggregate recomputed by hand from the journaled votes: sum w c v / sum w c
    mass = 2.0 * 0.9 + 1.0 * 0.8 + 1.0 * 0.7
    assert w["value"] == pytest.approx((2.0 * 0.9 * 0.6 + 0.8 * 0.3 + 0.7 * 0.5) / mass)
    assert c["garch"]["share"] == pytest.approx(1.8 / mass)
    assert w["signals"]["capm"]["reasoning"] == {"alpha_t": 2.9}
    assert "stale" in w["dropped"]["xgboost"]
    (d,) = w["decisions"]
    assert d["action"] == "buy 10"
    assert d["orders"][0]["status"] == "filled"
    assert d["orders"][0]["fills"][0]["price"] == "101.5"
    assert "tradable" in w["text"]
    assert "garch" in w["text"]


def test_why_at_an_earlier_time_and_before_anything(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _session(path)
    with Journal(path) as j:
        early = j.why("XOM", at=T1 + timedelta(minutes=1))
        assert early["aggregate_ts"] == T1.isoformat()
        assert set(early["contributions"]) == {"garch", "capm"}
        assert early["decisions"] == []
        with pytest.raises(LookupError, match="no aggregate for XOM"):
            j.why("XOM", at=T1 - timedelta(minutes=1))
        with pytest.raises(ValueError, match="SELECT"):
            j.query("DELETE FROM signals")


def test_every_signal_and_aggregate_is_on_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _session(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == 6
        rows = db.execute("SELECT tradable, reasoning FROM aggregates ORDER BY id").fetchall()
    assert len(rows) == 2
    assert json.loads(rows[1][1])["min_confidence"] == 0.6


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.sqlite"
    _session(path)
    assert main(["XOM", "--journal", str(path), "--at", T2.isoformat()]) == 0
    out = capsys.readouterr().out
    assert out.startswith("XOM at 2024-03-01T15:05:00+00:00")
    assert main(["AAPL", "--journal", str(path)]) == 1
    assert main(["XOM", "--journal", str(tmp_path / "missing.sqlite")]) == 1


def test_the_v28quant_why_command_uses_the_journal_answer(tmp_path: Path) -> None:
    from v28quant import cli

    path = tmp_path / "journal.sqlite"
    _session(path)
    with Journal(path) as j:
        j.record_signal(Signal("capm", "AAPL", 0.2, 0.5, {"alpha_t": 1.0}, T1))
        lines = cli.why(j, "xom", T2)
        assert lines[0].startswith("XOM at 2024-03-01T15:05:00+00:00")
        assert any("garch" in ln for ln in lines)
        # no aggregate on record for AAPL: the raw signals answer instead
        assert cli.why(j, "AAPL", None)[1].strip().startswith("capm")


def test_why_covers_the_options_engine_and_says_when_nothing_is_on_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from v28quant import cli

    path = tmp_path / "journal.sqlite"
    _session(path)
    with Journal(path) as j:  # the options engine's rows for an underlying are "BBY:IV"
        j.record_signal(Signal("options_iv_rank", "BBY:IV", -0.8, 0.4, {"iv_rank": 0.08}, T1))
        j.record_signal(Signal("options_surface", "BBYX:IV", 0.5, 0.4, {}, T2))  # not BBY's
        lines = cli.why(j, "bby", None)
    assert lines[0].startswith("BBY at 2024-03-01 15:00:00")
    assert len(lines) == 2
    assert "options_iv_rank (BBY:IV)" in lines[1]
    assert cli.main(["--journal", str(path), "why", "BBY"]) == 0
    assert cli.main(["--journal", str(path), "why", "ZZZZ"]) == 1
    assert capsys.readouterr().out.strip().endswith("no signals journaled for ZZZZ")


def test_the_operator_commands_refuse_what_is_not_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from v28quant import cli

    text = tmp_path / "settings.toml"
    text.write_text("[risk]\nmax_positions = 3\n")
    assert cli.main(["--journal", str(text), "status"]) == 2
    assert "not a usable SQLite file" in capsys.readouterr().err
    folder = tmp_path / "runs"
    folder.mkdir()
    with pytest.raises(JournalError, match="is a directory"):
        Journal(folder)


def test_why_names_the_last_order_on_the_stock_or_its_contracts(tmp_path: Path) -> None:
    from v28quant import cli

    path = tmp_path / "journal.sqlite"
    _session(path)
    legs = "BBY230127C00080000,BBY230127C00084000"
    with Journal(path) as j:
        j.record_signal(Signal("options_iv_rank", "BBY:IV", -0.8, 0.4, {}, T1))
        j.record_decision("o-1", "options", "bull_call", legs, f"mleg 1 {legs}", {}, T1)
        j.record_order_intent("v28-options-1", "options", "bull_call", "o-1", {"qty": "1"}, T1)
        j.record_order_update("v28-options-1", "b-2", "filled", "1", "1.68", {}, T1)
        # a contract on another root that starts with the same letters is not BBY's
        j.record_decision("o-2", "options", "bull_call", "BBYX230127C00010000", "buy", {}, T2)
        j.record_order_intent("v28-options-2", "options", "bull_call", "o-2", {"qty": "1"}, T2)
        bby = cli.why(j, "BBY", None)
        xom = cli.why(j, "XOM", None)
        before = cli.why(j, "XOM", T1)
    assert bby[-1] == (
        f"  last order 2024-03-01 15:00Z by options/bull_call: mleg 1 {legs} -> filled 1 @ 1.68 "
        "(v28-options-1)"
    )
    assert xom[-1] == (
        "  last order 2024-03-01 15:05Z by equity/aggregate: buy 10 -> filled 10 @ 101.5 "
        "(v28-equity-1)"
    )
    assert not any("last order" in line for line in before)  # placed after T1

    # a spread on XOM's contracts beside its stock buy: the newest order of each engine
    xom_legs = "XOM240419C00100000,XOM240419C00105000"
    with Journal(path) as j:
        j.record_decision("o-3", "options", "bull_call", xom_legs, f"mleg 1 {xom_legs}", {}, T2)
        j.record_order_intent(
            "v28-options-3", "options", "bull_call", "o-3", {"qty": "1"}, T2 + timedelta(minutes=5)
        )
        both = [ln for ln in cli.why(j, "XOM", None) if "last order" in ln]
    assert [ln.split(" by ")[1].split(":")[0] for ln in both] == [
        "options/bull_call",
        "equity/aggregate",
    ]


def test_why_says_when_the_capm_screen_left_the_stock_out(tmp_path: Path) -> None:
    """An unscreened stock has no equity aggregate: the answer names the screen that dropped it."""
    from v28quant import cli

    path = tmp_path / "journal.sqlite"
    _session(path)
    with Journal(path) as j:
        j.record_signal(Signal("options_iv_rank", "BBY:IV", -0.8, 0.4, {"iv_rank": 0.08}, T2))
        screen = {"kept": ["XOM", "CVX"], "universe": ["XOM", "CVX", "BBY"], "keep": 2}
        j.record_decision("equity-screen-1", "equity", "capm_screen", "*", "screen", screen, T1)
        bby = cli.why(j, "BBY", None)
        xom = cli.why(j, "XOM", None)
        before = cli.why(j, "BBY", T1 - timedelta(minutes=1))
        j.record_signal(Signal("options_iv_rank", "PFE:IV", 0.1, 0.4, {"iv_rank": 0.5}, T2))
        pfe = cli.why(j, "PFE", None)
    assert bby[-1] == (
        "  equity: left out by the CAPM screen of 2024-03-01 15:00Z (kept 2 of 3: XOM, CVX); "
        "no equity aggregate unless held"
    )
    assert not any("CAPM screen" in ln for ln in xom)  # kept: its aggregate answers
    assert before == ["no signals journaled for BBY"]  # nothing on record before T1
    assert (
        pfe[-1]
        == "  equity: not in the equity engine's universe at its screen of 2024-03-01 15:00Z"
    )


def test_command_line_refuses_an_empty_file_and_a_time_without_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty file is no journal (left empty); a time without its zone is one error line."""
    empty = tmp_path / "e.sqlite"
    empty.write_bytes(b"")
    assert main(["XOM", "--journal", str(empty)]) == 2
    assert empty.read_bytes() == b""
    assert "not a v28quant journal" in capsys.readouterr().err
    path = tmp_path / "journal.sqlite"
    _session(path)
    assert main(["XOM", "--journal", str(path), "--at", "2024-03-01T15:05:00"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: --at 2024-03-01T15:05:00: give its zone")


def _cycle(j: Journal, at: datetime, reasoning: dict[str, object]) -> None:
    """Journal an equity cycle at ``at`` as the runner does: counts, note and details."""
    row = {"slot": at.isoformat(), "signals": 0, "orders": 0, "denied": 0, **reasoning}
    j.record_decision(f"equity-cycle-{at.isoformat()}", "equity", "runner", "*", "cycle", row, at)


def test_why_gives_the_last_equity_cycles_word_on_the_symbol(tmp_path: Path) -> None:
    """2024-03-01 was in winter time: 15:00Z is 10:00 New York."""
    from v28quant import cli

    path = tmp_path / "journal.sqlite"
    _session(path)
    t3 = T2 + timedelta(minutes=5)
    with Journal(path) as j:
        _cycle(j, T1, {"note": "", "details": {"XOM": "hold: confidence 0.42 below threshold"}})
        _cycle(j, T2, {"note": "", "details": {"XOM": "buy 10: filled", "CVX": "skipped: x"}})
        early = j.why("XOM", at=T1 + timedelta(minutes=1))
        latest = j.why("XOM")
        # the next cycle judged CVX alone: XOM was neither screened nor held then
        _cycle(j, t3, {"note": "", "details": {"CVX": "hold: at its target of 3 shares"}})
        later = cli.why(j, "XOM", None)
    assert early["equity_cycle"]["verdict"] == "hold: confidence 0.42 below threshold"
    assert early["text"].splitlines()[3] == (
        "  equity cycle 2024-03-01 10:00 ET: hold: confidence 0.42 below threshold"
    )
    assert latest["equity_cycle"]["cycle_ts"] == T2.isoformat()
    assert "  equity cycle 2024-03-01 10:05 ET: buy 10: filled" in latest["text"].splitlines()
    assert "  equity cycle 2024-03-01 10:10 ET: not judged (neither screened nor held)" in later


def test_why_says_why_a_cycle_judged_nothing(tmp_path: Path) -> None:
    # an engine without its pre-market data judges no symbol and says so in the cycle's note
    path = tmp_path / "journal.sqlite"
    _session(path)
    with Journal(path) as j:
        _cycle(j, T2, {"note": "no pre-market data; nothing to do", "details": {}})
        text = j.why("XOM")["text"].splitlines()
    assert "  equity cycle 2024-03-01 10:05 ET: not judged: no pre-market data; nothing to do" in (
        text
    )


def test_why_gives_the_cycles_word_beside_a_hold_and_beside_raw_signals(tmp_path: Path) -> None:
    """With no aggregate, the answer still ends with the equity cycle's word on the symbol."""
    from v28quant import cli

    path = tmp_path / "journal.sqlite"
    reason = "no model gave it a signal (its data may be missing): held, nothing to size by"
    with Journal(path) as j:
        hold = {"reason": reason, "held_qty": "30"}
        j.record_decision("equity-hold-1", "equity", "aggregate", "KO", "hold", hold, T1)
        j.record_signal(Signal("options_iv_rank", "BBY:IV", -0.8, 0.4, {"iv_rank": 0.08}, T1))
        _cycle(j, T1, {"note": "", "details": {"KO": f"hold: {reason}"}})
        ko = j.why("KO")
        bby = cli.why(j, "BBY", None)
    assert ko["aggregate_ts"] is None
    assert ko["text"].splitlines()[-1] == f"  equity cycle 2024-03-01 10:00 ET: hold: {reason}"
    assert bby[-1] == "  equity cycle 2024-03-01 10:00 ET: not judged (neither screened nor held)"


def test_an_older_journals_cycles_without_details_add_nothing(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _session(path)
    with Journal(path) as j:
        _cycle(j, T2, {"note": ""})  # as journaled before the cycle's details were
        w = j.why("XOM")
    assert w["equity_cycle"] is None
    assert not any("equity cycle" in line for line in w["text"].splitlines())
    assert w["text"].splitlines()[2].startswith("  aggregate value")
