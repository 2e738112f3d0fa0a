"""The SQLite journal: round trips, idempotency, secret guard, crash survival.

Independent references: SQLite's own ``PRAGMA integrity_check`` / ``journal_mode`` and a
second, raw ``sqlite3`` connection reading the file (not the Journal class) for storage checks.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import v28quant
from v28quant.journal import Journal
from v28quant.signals import Signal

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def raw(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(str(path))
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_wal_full_sync_and_schema_version(journal: Journal) -> None:
    assert raw(journal.path, "PRAGMA journal_mode")[0][0] == "wal"
    assert journal._read("PRAGMA synchronous")[0][0] == 2  # FULL
    assert journal.schema_version == 6
    journal.close()
    again = Journal(journal.path)  # reopening does not re-run migrations
    assert again.schema_version == 6
    again.close()


def test_refuses_newer_schema(tmp_path: Path) -> None:
    p = tmp_path / "new.sqlite"
    Journal(p).close()
    raw(p, "PRAGMA user_version=99")
    with pytest.raises(RuntimeError, match="schema version 99"):
        Journal(p)


def test_signals_round_trip(journal: Journal) -> None:
    s = Signal("garch", "SPY", -0.25, 0.8, {"sigma": 0.013, "n": 250, "px": Decimal("1.10")}, ts=T0)
    i1 = journal.record_signal(s)
    i2 = journal.record_signal(Signal("hmm", "QQQ", 0.5, 0.1, {}, ts=T0 + timedelta(hours=1)))
    assert (i1, i2) == (1, 2)
    df = journal.signals()
    assert list(df.columns) == ["id", "ts", "model", "symbol", "value", "confidence", "reasoning"]
    assert df.loc[0, "reasoning"] == {"sigma": 0.013, "n": 250, "px": "1.10"}
    assert df.loc[0, "ts"] == T0
    later = journal.signals(since=T0 + timedelta(minutes=30))
    assert later["model"].tolist() == ["hmm"]
    # stored as ISO UTC text, whatever zone the caller used
    ny = timezone(timedelta(hours=-5))
    journal.record_signal(Signal("x", "SPY", 0, 0, {}, ts=datetime(2026, 3, 2, 10, tzinfo=ny)))
    assert (
        raw(journal.path, "SELECT ts FROM signals WHERE id=3")[0][0] == "2026-03-02T15:00:00+00:00"
    )


def test_hourly_last_values_hold_each_local_days_last_reading(journal: Journal) -> None:
    """Per symbol and UTC hour, the last reading: the same day-ends as decoding every row."""
    import random

    rng = random.Random(7)
    start = datetime(2026, 3, 6, 13, 0, tzinfo=UTC)  # spans the 8 March DST change in New York
    for k in range(400):
        ts = start + timedelta(minutes=37 * k)
        sym = rng.choice(["SPY:IV", "QQQ:IV"])
        key = {"atm_iv_30d": round(rng.uniform(0.1, 0.4), 4)} if k % 9 else {}
        journal.record_signal(Signal("options_iv_rank", sym, 0.0, 0.5, key, ts))
        journal.record_signal(Signal("garch", sym, 0.0, 0.5, {"atm_iv_30d": 9.0}, ts))
    since = start + timedelta(hours=20)
    got = journal.hourly_last_values("options_iv_rank", "atm_iv_30d", since)
    every = journal.signals(since=since)
    every = every[every["model"] == "options_iv_rank"]
    ny = "America/New_York"

    def day_ends(df, values):
        d = df.assign(day=df["ts"].dt.tz_convert(ny).dt.date, v=values)
        return d.groupby(["symbol", "day"])["v"].last().to_dict()

    expected = day_ends(every, [r.get("atm_iv_30d") for r in every["reasoning"]])
    assert day_ends(got, got["value"]) == expected
    assert len(expected) > 10
    assert len(got) < len(every)
    assert got["ts"].is_monotonic_increasing
    assert got["ts"].min() >= since
    with pytest.raises(ValueError, match="identifier"):
        journal.hourly_last_values("options_iv_rank", "x') --", since)


def test_decisions_filter_on_any_of_several_actions(journal: Journal) -> None:
    """A tuple of actions returns exactly the rows a Python filter of all rows keeps."""
    for k, action in enumerate(["mark", "halt", "mark", "resume", "deny", "mark", "flatten"]):
        for engine in ("risk", "options"):
            journal.record_decision(
                f"{engine}-{k}", engine, "s", "*", action, {"k": k}, T0 + timedelta(minutes=k)
            )
    wanted = ("halt", "resume", "flatten")
    got = journal.decisions(engine="risk", action=wanted)
    every = [d for d in journal.decisions() if d["engine"] == "risk" and d["action"] in wanted]
    assert [d["decision_id"] for d in got] == [d["decision_id"] for d in every]
    assert [d["reasoning"]["k"] for d in got] == [1, 3, 6]
    assert [d["action"] for d in journal.decisions(action="deny")] == ["deny", "deny"]
    for engine, action in (("risk", "mark"), ("options", "halt"), ("risk", "none")):
        want = len(journal.decisions(engine=engine, action=action))
        assert journal.decision_count(engine, action) == want
    assert journal.decision_count("risk", "mark") == 3


def test_last_decisions_are_each_engines_newest_by_time_then_as_written(
    journal: Journal,
) -> None:
    """The newest by time, a tie going to the row written last; and a symbol's rows alone."""
    rows = [  # (engine, minutes after T0, symbol), in the order written
        ("options", 10, "SPY"),
        ("equity", 5, "AAPL"),
        ("equity", 15, "AAPL"),
        ("equity", 10, "MSFT"),  # written after the 15-minute row, but older
        ("options", 10, "QQQ"),  # the same time as the first: written later, so newer
    ]
    for k, (engine, minutes, symbol) in enumerate(rows):
        at = T0 + timedelta(minutes=minutes)
        journal.record_decision(f"c-{k}", engine, "runner", symbol, "cycle", {"k": k}, at)
    journal.record_decision("m-1", "risk", "watch", "*", "mark", {}, T0 + timedelta(hours=1))
    newest = journal.last_decisions("cycle")
    assert [(d["engine"], d["reasoning"]["k"]) for d in newest] == [("equity", 2), ("options", 4)]
    assert newest[0]["ts"] == T0 + timedelta(minutes=15)
    assert journal.last_decisions("halt") == []
    aapl = journal.decisions(symbol="AAPL", since=T0 + timedelta(minutes=10))
    assert [d["decision_id"] for d in aapl] == ["c-2"]


def test_aggregate_summary_is_the_equity_books_standing(journal: Journal) -> None:
    """Counts, thresholds and the most confident equity aggregate, as a Python pass finds them."""
    import random

    from v28quant.backtest.report import nothing_traded
    from v28quant.signals import Aggregate, RegimeState

    assert journal.aggregate_summary() == {}
    rng = random.Random(3)
    regime = RegimeState("sideways", {"sideways": 1.0}, "hmm", T0)
    made = []
    for k in range(60):
        sym = rng.choice(["AAPL", "XOM", "MRK", "AAPL:IV", "XOM:IV"])
        conf = rng.random() if ":" in sym else 0.7 * rng.random()
        need = 0.6 if k < 40 else 0.2
        agg = Aggregate(
            sym, rng.uniform(-1, 1), conf, conf >= need, regime, {}, {"min_confidence": need}
        )
        journal.record_aggregate(agg, T0 + timedelta(minutes=k))
        made.append((agg, T0 + timedelta(minutes=k)))
    equity = [(a, ts) for a, ts in made if ":" not in a.symbol]
    top, top_ts = max(equity, key=lambda x: x[0].confidence)
    got = journal.aggregate_summary()
    assert got["aggregates"] == len(equity)
    assert got["tradable"] == sum(a.tradable for a, _ in equity)
    assert got["min_confidence"] == [0.2, 0.6]
    assert got["highest"]["symbol"] == top.symbol
    assert got["highest"]["confidence"] == top.confidence
    assert datetime.fromisoformat(got["highest"]["ts"]) == top_ts
    why = nothing_traded({"fills": 0, "aggregates": got, "options_declined": 7})
    assert f"the most confident, {top.symbol} at " in why
    assert f"had {top.confidence:.3f} against min_confidence 0.2 / 0.6" in why
    assert "options: 7 entries declined" in why
    assert nothing_traded({"fills": 3, "aggregates": got}) == ""
    assert (
        nothing_traded({"fills": 0, "aggregates": {}})
        == "No order was filled: no engine journaled a view."
    )


def test_order_lifecycle_and_idempotency(journal: Journal) -> None:
    req = {
        "symbol": "SPY",
        "qty": Decimal("10"),
        "side": "buy",
        "type": "limit",
        "limit_price": Decimal("450.05"),
    }
    assert journal.record_order_intent("eq-mom-1", "equity", "momentum", "d1", req, T0)
    assert not journal.record_order_intent("eq-mom-1", "equity", "momentum", "d1", req, T0)
    o = journal.order_by_client_id("eq-mom-1")
    assert o is not None
    assert o["status"] == "intent"
    assert o["broker_order_id"] is None
    assert o["request"]["limit_price"] == "450.05"
    assert [x["client_order_id"] for x in journal.open_orders()] == ["eq-mom-1"]

    journal.record_order_update(
        "eq-mom-1", "b-1", "new", "0", None, {"status": "new"}, T0 + timedelta(seconds=1)
    )
    journal.record_order_update(
        "eq-mom-1",
        "b-1",
        "partially_filled",
        Decimal("4"),
        Decimal("450.01"),
        {},
        T0 + timedelta(seconds=2),
    )
    # an update that arrives late (older ts) is kept as an event but does not win
    journal.record_order_update(
        "eq-mom-1", None, "accepted", "0", None, {}, T0 + timedelta(milliseconds=500)
    )
    o = journal.order_by_client_id("eq-mom-1")
    assert o["status"] == "partially_filled"
    assert o["filled_qty"] == Decimal("4")
    assert o["filled_avg_price"] == Decimal("450.01")
    journal.record_order_update(
        "eq-mom-1", "b-1", "filled", "10", "450.0130", {}, T0 + timedelta(seconds=3)
    )
    assert journal.open_orders() == []
    events = journal.order_events("eq-mom-1")
    assert [e["status"] for e in events] == [
        "intent",
        "new",
        "partially_filled",
        "accepted",
        "filled",
    ]
    # exact decimal text, no float round trip
    assert raw(journal.path, "SELECT filled_avg_price FROM orders")[0][0] == "450.0130"
    assert journal.order_by_client_id("nope") is None

    # an order found only at the broker (reconciliation) still gets a row
    journal.record_order_update("ext-1", "b-9", "new", "0", None, {}, T0)
    assert journal.order_by_client_id("ext-1")["engine"] is None
    assert [x["client_order_id"] for x in journal.open_orders()] == ["ext-1"]


def test_only_a_replacement_returns_from_the_venues_rejection(journal: Journal) -> None:
    """A rejected order's intent stays rejected; a rejected replacement takes the retry's request.

    The venue rejects an order for good: journaling its intent again (a different request
    under the same id included) changes nothing. A replacement it rejected left the old order
    working, so the retry under the same ``-r1`` id journals the new limit as an intent.
    """
    req = {"symbol": "SPY", "qty": "92", "side": "buy", "type": "limit", "limit_price": "545"}
    retry = {**req, "limit_price": "510"}
    for cid in ("eq-dip-1", "eq-dip-2-r1"):
        assert journal.record_order_intent(cid, "equity", "dip", "d1", req, T0)
        journal.record_order_update(cid, None, "rejected", "0", None, {}, T0, reason="no cash")
    assert not journal.record_order_intent("eq-dip-1", "equity", "dip", "d1", retry, T0)
    later = T0 + timedelta(seconds=1)
    refused = journal.admit_replacement(
        "eq-dip-2-r1", "equity", "dip", "d1", retry, later, spend=None, capacity=None
    )
    assert refused is None
    rows = raw(journal.path, "SELECT client_order_id, status, request FROM orders ORDER BY 1")
    assert [(c, st, json.loads(r)["limit_price"]) for c, st, r in rows] == [
        ("eq-dip-1", "rejected", "545"),
        ("eq-dip-2-r1", "intent", "510"),
    ]


def test_a_leg_id_names_its_multi_leg_parent(journal: Journal) -> None:
    """The venue's fills of a multi-leg order name each leg's own order id, not the parent's."""
    req = {"kind": "mleg", "qty": "1", "limit_price": "-1.00"}
    assert journal.record_order_intent("op-ic-1", "options", "condor", "d1", req, T0)
    legs = [{"id": "leg-a", "symbol": "SPY231020P00440000"}, {"id": "leg-b", "symbol": "X"}]
    journal.record_order_update(
        "op-ic-1", "parent-1", "new", "0", None, {"id": "parent-1", "legs": legs}, T0
    )
    assert journal.client_order_id_for("parent-1") == "op-ic-1"
    assert journal.client_order_id_for("leg-b") is None  # a cancel by venue id: orders only
    assert journal.client_order_id_for("leg-b", legs=True) == "op-ic-1"
    assert journal.client_order_id_for("leg-z", legs=True) is None


def test_order_update_skew_and_terminal_never_lost(journal: Journal, caplog) -> None:
    # The intent is stamped by the local clock, 5 s AHEAD of the broker's clock. Expected
    # states follow Alpaca's order lifecycle: an intent is only ever superseded; a terminal
    # status (filled) is final; anything else older than the row is stale.
    caplog.set_level(logging.WARNING, logger="v28quant.journal")
    journal.record_order_intent("eq-skew-1", "equity", "m", "d1", {}, T0 + timedelta(seconds=5))
    journal.record_order_update("eq-skew-1", "b-1", "new", "0", None, {}, T0 + timedelta(seconds=1))
    o = journal.order_by_client_id("eq-skew-1")
    assert o["status"] == "new", o
    assert o["broker_order_id"] == "b-1", o
    assert o["updated_ts"] == T0 + timedelta(seconds=1), o  # the broker's clock from now on
    assert caplog.records == []

    # a later partial fill (broker time) still wins over the acknowledgement
    journal.record_order_update(
        "eq-skew-1", "b-1", "partially_filled", "4", "450", {}, T0 + timedelta(seconds=3)
    )
    assert journal.order_by_client_id("eq-skew-1")["status"] == "partially_filled"

    # a genuinely stale non-terminal update is not applied, but it is not silent
    journal.record_order_update("eq-skew-1", None, "accepted", "0", None, {}, T0)
    assert journal.order_by_client_id("eq-skew-1")["status"] == "partially_filled"
    assert len(caplog.records) == 1, caplog.text
    assert "eq-skew-1" in caplog.text, caplog.text
    assert "accepted" in caplog.text

    # the terminal status stamped earlier than the partial fill is still applied ...
    journal.record_order_update(
        "eq-skew-1", "b-1", "filled", "10", "450.2", {}, T0 + timedelta(seconds=2)
    )
    o = journal.order_by_client_id("eq-skew-1")
    assert o["status"] == "filled", o
    assert o["filled_qty"] == Decimal(10), o
    assert journal.open_orders() == []
    # ... and a late non-terminal one cannot undo it
    journal.record_order_update(
        "eq-skew-1", "b-1", "partially_filled", "4", "450", {}, T0 + timedelta(seconds=2.5)
    )
    assert journal.order_by_client_id("eq-skew-1")["status"] == "filled"
    assert len(caplog.records) == 2
    # every update is an event, applied or not
    assert [e["status"] for e in journal.order_events("eq-skew-1")] == [
        "intent",
        "new",
        "partially_filled",
        "accepted",
        "filled",
        "partially_filled",
    ]


def test_a_late_copy_of_the_terminal_status_held_is_quiet(journal: Journal, caplog) -> None:
    """A stale update repeating the terminal status the row holds is quiet; another warns.

    The venue's expiry at the close, journaled after the next morning's look-up recorded the
    same status at its own time, changes nothing and warns nothing (a daily backtest did that
    once per order); a stale update of another status still warns.
    """
    opened = datetime(2022, 12, 19, 14, 45, tzinfo=UTC)
    close = datetime(2022, 12, 19, 21, 0, tzinfo=UTC)  # 16:00 New York: the day order expires
    morning = datetime(2022, 12, 20, 14, 0, tzinfo=UTC)  # 09:00 New York: the look-up
    caplog.set_level(logging.DEBUG, logger="v28quant.journal")
    journal.record_order_intent("op-exp-1", "options", "bull_call", "d1", {}, opened)
    journal.record_order_update("op-exp-1", "b-1", "new", "0", None, {}, opened)
    journal.record_order_update("op-exp-1", "b-1", "expired", "0", None, {}, morning)
    journal.record_order_update("op-exp-1", "b-1", "expired", "0", None, {}, close)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == [], caplog.text
    row = "SELECT status, updated_ts FROM orders WHERE client_order_id = 'op-exp-1'"
    assert raw(journal.path, row) == [("expired", morning.isoformat())]
    events = "SELECT status, ts FROM order_events WHERE client_order_id = 'op-exp-1' ORDER BY id"
    assert raw(journal.path, events)[-2:] == [
        ("expired", morning.isoformat()),
        ("expired", close.isoformat()),
    ]

    journal.record_order_update("op-exp-1", "b-1", "canceled", "0", None, {}, close)
    (warned,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "op-exp-1" in warned.getMessage(), warned
    assert "'canceled'" in warned.getMessage(), warned
    assert raw(journal.path, row) == [("expired", morning.isoformat())]


def test_fills_activities_idempotent(journal: Journal) -> None:
    assert journal.record_fill("f1", "c1", "SPY", "5", "450.5", "buy", T0)
    assert not journal.record_fill("f1", "c1", "SPY", "5", "450.5", "buy", T0)
    assert raw(journal.path, "SELECT COUNT(*) FROM fills")[0][0] == 1
    assert journal.record_activity(
        "a1", "OPASN", "SPY240621P00500000", "1", None, T0, {"description": "Option Assignment"}
    )
    assert not journal.record_activity("a1", "OPASN", "SPY240621P00500000", "1", None, T0, {})
    journal.record_activity("a2", "OPEXP", "SPY240621C00600000", "-1", None, T0, {})
    assert journal.seen_activity_ids() == {"a1", "a2"}


def test_positions_snapshots(journal: Journal) -> None:
    assert journal.last_positions() == {}
    journal.record_positions(
        [
            {"symbol": "SPY", "qty": "100", "avg_entry_price": "450.1"},
            {"symbol": "SPY240621C00530000", "qty": Decimal("-1")},
        ],
        T0,
    )
    assert journal.last_positions() == {"SPY": Decimal(100), "SPY240621C00530000": Decimal(-1)}
    journal.record_positions([], T0 + timedelta(hours=1))  # flat is a snapshot too
    assert journal.last_positions() == {}
    with pytest.raises(ValueError, match="needs 'symbol' and 'qty'"):
        journal.record_positions([{"symbol": "SPY"}], T0)


def test_accepted_positions_read_back_as_transfers_at_the_venues_entry_price(
    journal: Journal,
) -> None:
    """Each accepted position: venue less expected, at the price its reconcile's snapshot held.

    On one stamp (a fixed clock) an earlier reconcile's snapshot holds SPY 100 at 450.10, the
    accepting one's 103 at 449.00: the 3 shares that came in are priced 449.00. The 100 QQQ
    that left are not in that snapshot (the venue held none): no price.
    """
    journal.record_positions([{"symbol": "SPY", "qty": "100", "avg_entry_price": "450.10"}], T0)
    journal.record_positions([{"symbol": "SPY", "qty": "103", "avg_entry_price": "449.00"}], T0)
    taken = [
        {"symbol": "SPY", "journal": "100", "expected": "100", "broker": "103"},
        {"symbol": "QQQ", "journal": "100", "expected": "100", "broker": "0"},
    ]
    reasoning = {"request": "accept_positions-1", "reason": "ACATS", "positions": taken}
    decision = "positions_accepted-1"
    journal.record_decision(
        decision, "reconcile", "operator", "*", "positions_accepted", reasoning, T0
    )

    assert journal.transfers() == [
        {
            "symbol": "SPY",
            "ts": T0,
            "qty": Decimal(3),
            "venue_qty": Decimal(103),
            "price": Decimal("449.00"),
            "decision_id": decision,
        },
        {
            "symbol": "QQQ",
            "ts": T0,
            "qty": Decimal(-100),
            "venue_qty": Decimal(0),
            "price": None,
            "decision_id": decision,
        },
    ]


def test_activity_batch_is_all_or_nothing(journal: Journal) -> None:
    # Independent check: a raw sqlite3 connection counts the rows. A trigger makes the LAST
    # statement of the batch (a position row) fail inside the transaction, after the
    # activities, the fill and the snapshot row have been executed.
    acts = [
        {
            "activity_id": "a1",
            "activity_type": "FILL",
            "symbol": "SPY",
            "qty": "10",
            "price": "450.5",
            "ts": T0,
            "raw": {},
        },
        {
            "activity_id": "a2",
            "activity_type": "OPEXP",
            "symbol": "SPY240621C00600000",
            "qty": "-1",
            "price": None,
            "ts": T0,
            "raw": {},
        },
    ]
    fills = [
        {
            "fill_id": "a1",
            "client_order_id": "c1",
            "symbol": "SPY",
            "qty": "10",
            "price": "450.5",
            "side": "buy",
            "ts": T0,
        }
    ]
    snapshot = [{"symbol": "SPY", "qty": "10"}]
    con = sqlite3.connect(str(journal.path))
    con.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON positions BEGIN SELECT RAISE(ABORT, 'injected'); END"
    )
    con.commit()
    with pytest.raises(sqlite3.IntegrityError, match="injected"):
        journal.record_activity_batch(acts, fills, snapshot, T0)
    counts = {
        t: raw(journal.path, f"SELECT COUNT(*) FROM {t}")[0][0]
        for t in ("activities", "fills", "position_snapshots", "positions")
    }
    assert counts == dict.fromkeys(counts, 0), counts
    assert journal.seen_activity_ids() == set()
    assert journal.last_positions() == {}

    con.execute("DROP TRIGGER boom")
    con.commit()
    con.close()
    sid = journal.record_activity_batch(acts, fills, snapshot, T0)
    assert journal.seen_activity_ids() == {"a1", "a2"}
    assert journal.last_positions() == {"SPY": Decimal(10)}
    assert raw(journal.path, "SELECT snapshot_id, qty FROM positions") == [(sid, "10")]
    assert raw(journal.path, "SELECT fill_id, client_order_id FROM fills") == [("a1", "c1")]
    # repeats are ignored, as in record_activity / record_fill; the snapshot is new
    sid2 = journal.record_activity_batch(acts, fills, [], T0 + timedelta(minutes=5))
    assert sid2 > sid
    assert journal.last_positions() == {}
    assert raw(journal.path, "SELECT COUNT(*) FROM activities")[0][0] == 2


def test_model_runs_reconciles_and_daily_summary(journal: Journal) -> None:
    journal.record_model_run(
        "garch",
        "1",
        T0,
        T0 + timedelta(seconds=2),
        {"dist": "normal"},
        {"loglik": -1234.5, "converged": True},
    )
    journal.record_reconcile(False, [{"symbol": "SPY", "journal": "100", "broker": "90"}], T0)
    journal.record_reconcile(True, [], T0 + timedelta(minutes=1))
    journal.record_signal(Signal("garch", "SPY", 0.1, 0.5, {}, ts=T0))
    journal.record_decision("d1", "equity", "momentum", "SPY", "buy", {"score": 0.4}, T0)
    journal.record_decision("d1", "equity", "momentum", "SPY", "buy", {"score": 0.4}, T0)
    journal.record_order_intent("c1", "equity", "momentum", "d1", {"qty": "3"}, T0)
    journal.record_order_update("c1", "b1", "filled", "3", "100.5", {}, T0)
    journal.record_fill("f1", "c1", "SPY", "2", "100.5", "buy", T0)
    journal.record_fill("f2", "c1", "SPY", "1", "100.25", "buy", T0)
    journal.record_fill("f3", None, "QQQ", "-2", "10", "sell", T0)
    journal.record_fill("f4", None, "QQQ", "1", "10", "buy", T0 + timedelta(days=1))
    journal.record_fill("f5", None, "SPY260320C00600000", "1", "1.5", "sell", T0)
    s = journal.daily_summary(date(2026, 3, 2))
    assert s["signals"] == 1
    assert s["decisions"] == {"equity": 1}
    assert s["orders"] == {"equity": {"filled": 1}}
    assert s["fills"] == 4
    # 2*100.5 + 1*100.25 = 301.25 ; |-2|*10 + one contract of 100 shares at 1.50 = 170
    assert s["notional"] == {"buy": Decimal("301.25"), "sell": Decimal("170")}
    assert s["reconciles"] == {"ok": 1, "failed": 1}


def test_daily_summary_holds_the_positions_at_that_days_end(journal: Journal) -> None:
    """A past day's roll-up shows what was held when it ended, not what is held now.

    Reference: the two snapshots written below, one on each day.
    """
    journal.record_positions([{"symbol": "SPY", "qty": "100"}], T0)  # 2026-03-02, 10:00 ET
    journal.record_positions([], T0 + timedelta(days=1))  # flattened the next day
    assert journal.daily_summary(date(2026, 3, 2))["positions"] == {"SPY": Decimal(100)}
    assert journal.daily_summary(date(2026, 3, 3))["positions"] == {}
    assert journal.daily_summary(date(2026, 3, 1))["positions"] == {}  # before any snapshot


@pytest.mark.parametrize(
    "reasoning",
    [
        {"api_key": "s3cr3t"},
        {"API_KEY": "s3cr3t"},
        {"nested": {"APCA-API-SECRET-KEY": "s3cr3t"}},
        {"webhookUrl": "s3cr3t"},
        {"auth_token": "s3cr3t"},
        {"list": [{"password": "s3cr3t"}]},
        {"note": "https://discord.com/api/webhooks/1/s3cr3t"},
    ],
)
def test_secret_guard(journal: Journal, reasoning: dict) -> None:
    """A credential-like field is redacted: the row is kept, the secret never hits the file."""
    journal.record_decision("d", "e", "s", "SPY", "buy", reasoning, T0)
    (stored,) = raw(journal.path, "SELECT reasoning FROM decisions")[0]
    assert "s3cr3t" not in stored, stored
    assert "[redacted]" in stored, stored
    journal.close()
    assert b"s3cr3t" not in journal.path.read_bytes()


def test_innocent_keys_pass(journal: Journal) -> None:
    """Words that merely contain a credential word are not redacted: the values survive."""
    reasoning = {"monkey": 1, "keystone": 2, "tokenizer_vocab": 3, "n_keys": 4}
    journal.record_decision("d", "e", "s", "SPY", "buy", reasoning, T0)
    (stored,) = raw(journal.path, "SELECT reasoning FROM decisions")[0]
    assert json.loads(stored) == reasoning
    assert "[redacted]" not in stored


def test_a_stock_named_like_a_credential_word_keeps_its_reasoning(journal: Journal) -> None:
    """KeyCorp trades as KEY: its entry in a map keyed by symbol is the stock's, kept whole."""
    reasoning = {"details": {"KEY": "hold: at its target of 40 shares", "KO": "buy 3: filled"}}
    journal.record_decision("d", "equity", "runner", "*", "cycle", reasoning, T0)
    (stored,) = raw(journal.path, "SELECT reasoning FROM decisions")[0]
    assert json.loads(stored) == reasoning


def test_bad_inputs(journal: Journal) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        journal.record_fill("f", None, "SPY", "1", "1", "buy", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="qty must be a decimal"):
        journal.record_fill("f", None, "SPY", "abc", "1", "buy", T0)
    with pytest.raises(ValueError, match="price must be finite"):
        journal.record_fill("f", None, "SPY", "1", float("nan"), "buy", T0)


def test_thread_safety(journal: Journal) -> None:
    def work(k: int) -> None:
        for i in range(50):
            journal.record_fill(f"t{k}-{i}", None, "SPY", "1", "1", "buy", T0)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert raw(journal.path, "SELECT COUNT(*) FROM fills")[0][0] == 200


CHILD = textwrap.dedent("""
    import sys
    from datetime import datetime, UTC
    from v28quant.journal import Journal
    j = Journal(sys.argv[1])
    t = datetime(2026, 3, 2, 15, tzinfo=UTC)
    i = 0
    while True:
        j.record_fill(f"fill-{i}", f"c-{i}", "SPY", str(i), "450.25", "buy", t)
        j.record_order_update(f"c-{i}", f"b-{i}", "filled", str(i), "450.25",
                              {"i": i, "pad": "x" * 2000}, t)
        print(i, flush=True)
        i += 1
""")


def test_survives_sigkill_mid_write(tmp_path: Path) -> None:
    """Every row the child acknowledged (printed after the call returned) survives SIGKILL."""
    path = tmp_path / "crash.sqlite"
    env = dict(os.environ, PYTHONPATH=str(Path(v28quant.__file__).resolve().parents[1]))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    acked = []
    assert child.stdout is not None
    for line in child.stdout:
        acked.append(int(line))
        if len(acked) >= 150:
            break
    child.send_signal(signal.SIGKILL)  # no cleanup, no close: a hard crash mid-loop
    child.wait(timeout=10)
    for line in child.stdout:  # anything flushed between our last read and the kill
        if line.strip():
            acked.append(int(line))
    assert child.returncode == -signal.SIGKILL

    j = Journal(path)
    try:
        assert j.integrity_check() == "ok"
        fills = {r[0] for r in raw(path, "SELECT fill_id FROM fills")}
        missing = [i for i in acked if f"fill-{i}" not in fills]
        assert not missing, f"acknowledged fills lost after SIGKILL: {missing[:10]}"
        for i in acked:
            o = j.order_by_client_id(f"c-{i}")
            assert o is not None, f"order c-{i} lost: {o}"
            assert o["status"] == "filled", f"order c-{i} lost: {o}"
            assert o["filled_qty"] == Decimal(i)
    finally:
        j.close()
