"""Why did we buy X at T? Answered from the journal alone.

:func:`explain` finds the latest aggregate journaled for the symbol at or before the time asked
about, and lays out what produced it: the regime and its probabilities, each model's vote
(value, confidence, weight and its share of the total), the signals behind those votes with
their own reasoning, the threshold, what was dropped as stale, the equity engine's word on the
symbol in its last cycle by then (:func:`equity_verdict`: why it ordered nothing, or what it
ordered), and the engine decisions, orders and fills on that symbol that followed it. A held
stock no model gave a signal has no aggregate: its answer is the equity engine's hold of it in
force, as the operator's ``v28quant why`` shows.

Command line: ``python -m v28quant.why SYMBOL [--at TIME] [--journal PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from v28quant.calendar import ET

if TYPE_CHECKING:
    from v28quant.journal.aggregates import AggregateRecords


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"at must be timezone-aware, got {when!r}")
    return when.astimezone(UTC).isoformat()


def explain(journal: AggregateRecords, symbol: str, at: datetime | None = None) -> dict[str, Any]:
    """Explain from the journal the view on ``symbol`` in force at ``at`` (latest if None).

    A symbol with no aggregate by then, a held stock no model gave a signal, is answered with
    the equity engine's last hold of it (:func:`explain_hold`). Raises ``LookupError`` when
    neither was journaled by then.
    """
    where, params = "symbol = ?", [symbol]
    if at is not None:
        where += " AND ts <= ?"
        params.append(_iso(at))
    rows = journal.query(
        f"SELECT * FROM aggregates WHERE {where} ORDER BY ts DESC, id DESC LIMIT 1", params
    )
    if not rows:
        return explain_hold(journal, symbol, at)
    agg = rows[0]
    contributions = json.loads(agg["contributions"])
    reasoning = json.loads(agg["reasoning"])
    mass = sum(c["weight"] * c["confidence"] for c in contributions.values()) or 1.0
    for c in contributions.values():
        c["share"] = c["weight"] * c["confidence"] / mass
    signals: dict[str, Any] = {}
    cutoff = agg["data_ts"] or agg["ts"]
    for model in contributions:
        sig = journal.query(
            "SELECT ts, value, confidence, reasoning FROM signals WHERE symbol = ? AND model = ? "
            "AND ts <= ? ORDER BY ts DESC, id DESC LIMIT 1",
            (symbol, model, cutoff),
        )
        if sig:
            signals[model] = {**sig[0], "reasoning": json.loads(sig[0]["reasoning"])}
    upto = _iso(at) if at is not None else "9999"
    decisions = _gate_before(journal, symbol, agg["ts"]) + journal.query(
        "SELECT decision_id, ts, engine, strategy, action, reasoning FROM decisions "
        "WHERE symbol = ? AND ts >= ? AND ts <= ? ORDER BY ts",
        (symbol, agg["ts"], upto),
    )
    _add_orders(journal, decisions)
    out: dict[str, Any] = {
        "symbol": symbol,
        "at": None if at is None else _iso(at),
        "aggregate_ts": agg["ts"],
        "data_ts": agg["data_ts"],
        "value": agg["value"],
        "confidence": agg["confidence"],
        "tradable": bool(agg["tradable"]),
        "threshold": reasoning.get("min_confidence"),
        "regime": json.loads(agg["regime"]),
        "contributions": contributions,
        "signals": signals,
        "dropped": reasoning.get("dropped", {}),
        "equity_cycle": equity_verdict(journal, symbol, at),
        "decisions": decisions,
    }
    out["text"] = render(out)
    return out


def equity_verdict(
    journal: AggregateRecords, symbol: str, at: datetime | None = None
) -> dict[str, Any] | None:
    """Return the equity engine's word on ``symbol`` in its last cycle at or before ``at``.

    The runner journals each cycle's ``details`` in its ``cycle`` decision: the engine's word on
    every symbol it judged, each one screened or held ("hold: confidence 0.15 below threshold",
    "buy 7: filled"). The answer has ``cycle_ts`` (the decision's time), ``slot`` (the cycle's
    scheduled time), ``verdict`` (None where the cycle judged no such symbol), ``judged`` (how
    many symbols it judged) and ``note``. None when no equity cycle is journaled by then, or
    the last one kept no details (a journal written before they were).
    """
    rows = journal.query(
        "SELECT ts, reasoning FROM decisions WHERE engine = 'equity' AND action = 'cycle' "
        "AND ts <= ? ORDER BY ts DESC, rowid DESC LIMIT 1",
        (_iso(at) if at is not None else "9999",),
    )
    if not rows:
        return None
    reasoning = json.loads(rows[0]["reasoning"])
    details = reasoning.get("details")
    if not isinstance(details, dict):
        return None
    return {
        "cycle_ts": rows[0]["ts"],
        "slot": reasoning.get("slot") or rows[0]["ts"],
        "verdict": details.get(symbol),
        "judged": len(details),
        "note": reasoning.get("note") or "",
    }


def verdict_line(v: dict[str, Any]) -> str:
    """Return :func:`equity_verdict`'s answer as one line, the cycle named by its New York time.

    A symbol missing from a cycle that judged others was neither screened nor held then: the
    engine judges each of those. A cycle that judged none says why in its note.
    """
    slot = datetime.fromisoformat(v["slot"]).astimezone(ET)
    if v["verdict"] is not None:
        said = str(v["verdict"])
    elif v["judged"] == 0 and v["note"]:
        said = f"not judged: {v['note']}"
    else:
        said = "not judged (neither screened nor held)"
    return f"  equity cycle {slot:%Y-%m-%d %H:%M} ET: {said}"


def explain_hold(
    journal: AggregateRecords, symbol: str, at: datetime | None = None
) -> dict[str, Any]:
    """Explain ``symbol`` from the equity engine's hold of it in force at ``at``.

    The engine journals a hold of a held stock no model gave a signal; with no signal there is
    no aggregate, so the hold is all the journal says of the stock. It journals the hold's end
    too (``hold_ended``). The answer has the keys of :func:`explain`, the aggregate's empty.
    Raises ``LookupError`` when there is no hold in force either.
    """
    upto = _iso(at) if at is not None else "9999"
    holds = journal.query(
        "SELECT decision_id, ts, engine, strategy, action, reasoning FROM decisions "
        "WHERE symbol = ? AND engine = 'equity' AND action IN ('hold', 'hold_ended') "
        "AND ts <= ? ORDER BY ts DESC, rowid DESC LIMIT 1",
        (symbol, upto),
    )
    when = "ever" if at is None else f"at or before {_iso(at)}"
    if not holds:
        raise LookupError(f"no aggregate for {symbol} journaled {when}, nor a hold")
    if holds[0]["action"] != "hold":
        raise LookupError(
            f"no aggregate for {symbol} journaled {when}, nor a hold in force (the last "
            f"ended at {holds[0]['ts']})"
        )
    _add_orders(journal, holds)
    hold = holds[0]
    out: dict[str, Any] = {
        "symbol": symbol,
        "at": None if at is None else _iso(at),
        "aggregate_ts": None,
        "data_ts": None,
        "value": None,
        "confidence": None,
        "tradable": False,
        "threshold": None,
        "regime": None,
        "contributions": {},
        "signals": {},
        "dropped": {},
        "equity_cycle": equity_verdict(journal, symbol, at),
        "decisions": holds,
    }
    lines = [
        f"{symbol}: no aggregate journaled",
        f"  equity hold at {hold['ts']}: {hold['reasoning'].get('reason', '')}",
    ]
    if out["equity_cycle"] is not None:
        lines.append(verdict_line(out["equity_cycle"]))
    out["text"] = "\n".join(lines)
    return out


def _gate_before(journal: AggregateRecords, symbol: str, ts: str) -> list[dict[str, Any]]:
    """Return the stacked ensemble's veto on ``symbol`` journaled before ``ts``, still in force.

    The equity engine journals a veto as it starts, changes and ends (``ungated``), not at
    every cycle's aggregate: one begun earlier still stands behind the aggregate at ``ts``.
    """
    last = journal.query(
        "SELECT decision_id, ts, engine, strategy, action, reasoning FROM decisions "
        "WHERE symbol = ? AND engine = 'equity' AND action IN ('gated', 'ungated') AND ts < ? "
        "ORDER BY ts DESC, rowid DESC LIMIT 1",
        (symbol, ts),
    )
    return [d for d in last if d["action"] == "gated"]


def _add_orders(journal: AggregateRecords, decisions: list[dict[str, Any]]) -> None:
    """Decode each decision's reasoning and attach its orders, each with its fills."""
    for d in decisions:
        d["reasoning"] = json.loads(d["reasoning"])
        d["orders"] = journal.query(
            "SELECT client_order_id, status, filled_qty, filled_avg_price FROM orders "
            "WHERE decision_id = ?",
            (d["decision_id"],),
        )
        for o in d["orders"]:
            o["fills"] = journal.query(
                "SELECT qty, price, side, ts FROM fills WHERE client_order_id = ? ORDER BY ts",
                (o["client_order_id"],),
            )


def render(w: dict[str, Any]) -> str:
    """Plain-text account of :func:`explain`'s answer."""
    reg = w["regime"]
    probs = ", ".join(f"{k} {v:.2f}" for k, v in sorted(reg["probabilities"].items()))
    lines = [
        f"{w['symbol']} at {w['aggregate_ts']} (data {w['data_ts']}):",
        f"  regime {reg['label']} ({reg['source']}: {probs})",
        f"  aggregate value {w['value']:+.3f}, confidence {w['confidence']:.3f} vs threshold "
        f"{w['threshold']}: {'tradable' if w['tradable'] else 'not tradable'}",
    ]
    if w.get("equity_cycle") is not None:  # None: no equity cycle with details by then
        lines.append(verdict_line(w["equity_cycle"]))
    ranked = sorted(w["contributions"].items(), key=lambda kv: -kv[1]["share"])
    for model, c in ranked:
        lines.append(
            f"  {model:>16}: value {c['value']:+.3f} confidence {c['confidence']:.3f} "
            f"weight {c['weight']:.2f} share {c['share']:.0%}"
        )
        sig = w["signals"].get(model)
        if sig:
            lines.append(f"  {'':>16}  {json.dumps(sig['reasoning'], sort_keys=True)}")
    for model, why in sorted(w["dropped"].items()):
        lines.append(f"  {model:>16}: dropped, {why}")
    for d in w["decisions"]:
        lines.append(f"  decision {d['decision_id']} {d['engine']}/{d['strategy']}: {d['action']}")
        for o in d["orders"]:
            fills = ", ".join(f"{f['side']} {f['qty']} @ {f['price']}" for f in o["fills"])
            lines.append(f"    order {o['client_order_id']} {o['status']} {fills}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m v28quant.why SYMBOL [--at TIME] [--journal PATH]``; prints the account."""
    from v28quant.journal import Journal
    from v28quant.journal.store import JournalError

    p = argparse.ArgumentParser(prog="v28quant why", description=__doc__.splitlines()[0])
    p.add_argument("symbol")
    p.add_argument("--at", help="ISO time with zone, e.g. 2024-03-01T15:30:00-05:00")
    p.add_argument("--journal", default=os.environ.get("V28_JOURNAL", "v28_journal.sqlite"))
    args = p.parse_args(argv)
    try:
        at = None if args.at is None else datetime.fromisoformat(args.at)
    except ValueError as exc:
        print(f"error: --at {args.at}: {exc}", file=sys.stderr)
        return 2
    if at is not None and at.tzinfo is None:
        print(f"error: --at {args.at}: give its zone, e.g. {args.at}-05:00", file=sys.stderr)
        return 2
    if not os.path.exists(args.journal):
        print(f"no journal at {args.journal}")
        return 1
    try:  # an existing v28quant journal only: an empty or foreign file is left as it is
        journal = Journal(args.journal, create=False)
    except JournalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with journal as j:
        try:
            print(explain(j, args.symbol, at)["text"])
        except LookupError as exc:
            print(exc)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
