"""The aggregator's record: every signal and aggregate of a cycle, and the why-query over them.

An aggregate row keeps the regime (label, probabilities, source, data time), each model's vote
(value, confidence, weight) and the aggregator's reasoning (threshold, dispersion, dropped
signals), so :meth:`AggregateRecords.why` answers "why did we buy X at T" from the file alone
(:mod:`v28quant.why`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from v28quant.journal._codec import json_text, ts_text
from v28quant.journal.store import JournalStore, Statement
from v28quant.signals import Aggregate, Signal


def signal_stmt(signal: Signal, cycle_ts: datetime | None = None) -> Statement:
    """Insert one model signal, journaled by the cycle at ``cycle_ts`` (None: by no cycle)."""
    return (
        "INSERT INTO signals (ts, model, symbol, value, confidence, reasoning, cycle_ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            ts_text(signal.ts),
            signal.model,
            signal.symbol,
            float(signal.value),
            float(signal.confidence),
            json_text(dict(signal.reasoning), "reasoning"),
            None if cycle_ts is None else ts_text(cycle_ts),
        ),
    )


def aggregate_stmt(a: Aggregate, ts: datetime) -> Statement:
    """Insert one aggregate decided at ``ts`` (its own ``ts``, the data time, kept beside)."""
    regime = {
        "label": a.regime.label,
        "probabilities": dict(a.regime.probabilities),
        "source": a.regime.source,
        "ts": a.regime.ts,
    }
    contributions = {
        m: {"value": v, "confidence": c, "weight": w} for m, (v, c, w) in a.contributions.items()
    }
    return (
        "INSERT INTO aggregates (ts, data_ts, symbol, value, confidence, tradable, regime, "
        "contributions, reasoning) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ts_text(ts),
            None if a.ts is None else ts_text(a.ts),
            a.symbol,
            float(a.value),
            float(a.confidence),
            1 if a.tradable else 0,
            json_text(regime, "regime"),
            json_text(contributions, "contributions"),
            json_text(a.reasoning, "reasoning"),
        ),
    )


class AggregateRecords(JournalStore):
    """Writes of aggregates and cycles, a read-only query, and the why-query."""

    def record_aggregate(self, aggregate: Aggregate, ts: datetime) -> int:
        """Journal one aggregate decided at ``ts`` (venue or simulated clock); returns its id."""
        cur = self._write(*aggregate_stmt(aggregate, ts))
        return int(cur.lastrowid or 0)

    def record_cycle(
        self, signals: Iterable[Signal], aggregates: Iterable[Aggregate], ts: datetime
    ) -> None:
        """Journal a cycle's signals and aggregates in ONE transaction (one fsync, not hundreds).

        The same rows as ``record_signal`` for each signal, with the cycle's time ``ts`` beside
        its data time, and ``record_aggregate(a, ts)`` for each aggregate; all or nothing.
        """
        stmts = [signal_stmt(s, ts) for s in signals]
        stmts += [aggregate_stmt(a, ts) for a in aggregates]
        if stmts:
            self._write_many(stmts)

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Run a read-only ``SELECT`` (reports, the why-query); rows as dicts."""
        if not sql.lstrip().upper().startswith("SELECT"):
            raise ValueError("Journal.query runs SELECT statements only")
        return [dict(r) for r in self._read(sql, params)]

    def why(self, symbol: str, at: datetime | None = None) -> dict[str, Any]:
        """Explain the view on ``symbol`` in force at ``at`` (see :func:`v28quant.why.explain`)."""
        from v28quant.why import explain

        return explain(self, symbol, at)
