"""``Journal``: what the system decided and did, written before and after each act.

Signals, decisions, order intents and every order state change, fills, position snapshots,
account activities (fills, option exercise / assignment / expiry), model runs, reconcile results,
reservations and the outbox of Discord notices, with timestamps. On restart the runner reads it
back (``open_orders``, ``last_positions``, ``seen_activity_ids``) and reconciles it with the
broker before trading.

Money and quantities are ``Decimal`` stored as TEXT exactly; datetimes are timezone-aware and
stored as ISO 8601 in UTC; free-form dicts are JSON with secrets redacted
(``v28quant.redaction``): the row is kept, the secret never reaches the file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from v28quant.journal._codec import dec_text, from_iso, json_text, ts_text
from v28quant.journal.aggregates import AggregateRecords
from v28quant.journal.notices import NoticeRecords
from v28quant.journal.reports import ReportQueries
from v28quant.journal.reservations import Claim, ReservationBook, check_claims
from v28quant.journal.schema import (
    FINAL_STATUSES,
    LOCAL_STATUSES,
    NOT_SENT_STATUS,
)
from v28quant.journal.statements import (
    REPLACEMENT_RETRY_STATUSES,
    activity_stmt,
    decision_stmt,
    fill_stmt,
    intent_stmts,
    positions_stmts,
)
from v28quant.signals import Signal

log = logging.getLogger(__name__)


def _marks(values: Iterable[str]) -> tuple[str, list[str]]:
    vals = sorted(values)
    return ",".join("?" * len(vals)), vals


class Journal(ReportQueries, ReservationBook, AggregateRecords, NoticeRecords):
    """The SQLite journal (see the module docstring and ``JournalStore`` for durability).

    Parameters
    ----------
    path : str or Path
        The database file; created (with its schema) if missing, migrated if older.
    create : bool
        False to refuse a missing or empty file instead (see ``JournalStore``).
    """

    def __enter__(self) -> Journal:
        """Use as a context manager that closes the journal on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the journal."""
        self.close()

    # -- writes -----------------------------------------------------------------------------

    def record_signal(self, signal: Signal) -> int:
        """Journal one model signal; returns its row id."""
        cur = self._write(
            "INSERT INTO signals (ts, model, symbol, value, confidence, reasoning) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                ts_text(signal.ts),
                signal.model,
                signal.symbol,
                float(signal.value),
                float(signal.confidence),
                json_text(dict(signal.reasoning), "reasoning"),
            ),
        )
        return int(cur.lastrowid or 0)

    def record_decision(
        self,
        decision_id: str,
        engine: str,
        strategy: str,
        symbol: str,
        action: str,
        reasoning: Mapping[str, Any],
        ts: datetime,
    ) -> None:
        """Journal an engine's decision (idempotent on ``decision_id``: a repeat is ignored)."""
        self._write(*decision_stmt(decision_id, engine, strategy, symbol, action, reasoning, ts))

    def record_order_intent(
        self,
        client_order_id: str,
        engine: str,
        strategy: str,
        decision_id: str | None,
        request: Mapping[str, Any],
        ts: datetime,
        *,
        request_hash: str | None = None,
        spend: Claim | None = None,
    ) -> bool:
        """Journal an order BEFORE it is submitted, with status ``"intent"``.

        ``spend`` is what the order spends (shares, or cash in dollars), counted against
        reservations while the order is open. Idempotent on ``client_order_id``: a repeat (a
        retried submit after a crash) changes nothing and returns False; the first call returns
        True.
        """
        stmts = intent_stmts(
            client_order_id, engine, strategy, decision_id, request, ts, request_hash, spend, None
        )
        return self._write_many(stmts)[0].rowcount == 1

    def admit_order(
        self,
        *,
        client_order_id: str,
        engine: str,
        strategy: str,
        decision_id: str,
        symbol: str,
        request: Mapping[str, Any],
        request_hash: str,
        reasoning: Mapping[str, Any],
        ts: datetime,
        spend: Claim | None = None,
        reserve: Claim | None = None,
        capacity: Mapping[tuple[str, str | None], Decimal] | None = None,
        takes_over: str | None = None,
    ) -> str | None:
        """Check an order against the reservations and journal it, in one transaction.

        Writes the decision (with its reasoning), the order intent (with the request's hash and
        what it spends) and, when ``reserve`` is given, the reservation; or, when the order
        would spend what another owner reserved (or cannot reserve what it asks), the intent
        with status ``"refused"`` and the reason. An intent already journaled as ``refused`` or
        ``not_sent`` becomes an intent again; one in any other state is left as it is.
        ``takes_over``: the client order id of an order of the same owner whose reservation
        the order's fill frees (``Reservation.takes_over``): ``reserve`` may count it as free.

        Returns
        -------
        str or None
            The refusal reason, or None when the order may be sent.
        """
        caps = capacity or {}
        with self._transaction():
            reason = self._check_in_tx((engine, strategy), spend, reserve, caps, takes_over)
            action = f"{request.get('side') or 'mleg'} {request.get('qty')} {symbol}"
            stmts = [decision_stmt(decision_id, engine, strategy, symbol, action, reasoning, ts)]
            stmts += intent_stmts(
                client_order_id,
                engine,
                strategy,
                decision_id,
                request,
                ts,
                request_hash,
                spend,
                reason,
            )
            cursors = [self._db.execute(sql, tuple(p)) for sql, p in stmts]
            held = self._db.execute(
                "SELECT COUNT(*) FROM reservations WHERE client_order_id = ? "
                "AND released_ts IS NULL",
                (client_order_id,),
            ).fetchone()[0]
            if reason is None and reserve is not None and not held:
                self._db.execute(
                    "INSERT INTO reservations (engine, strategy, decision_id, kind, symbol, "
                    "amount, client_order_id, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        engine,
                        strategy,
                        decision_id,
                        reserve.kind,
                        reserve.symbol,
                        str(reserve.amount),
                        client_order_id,
                        ts_text(ts),
                    ),
                )
            del cursors
        if reason is not None:
            log.warning("order %s refused: %s", client_order_id, reason)
        return reason

    def admit_replacement(
        self,
        client_order_id: str,
        engine: str,
        strategy: str,
        decision_id: str | None,
        request: Mapping[str, Any],
        ts: datetime,
        *,
        spend: Claim | None,
        capacity: Mapping[tuple[str, str | None], Decimal] | None,
    ) -> str | None:
        """Journal a replacement's intent, its ``spend`` checked first when ``capacity`` is given.

        The check is ``admit_order``'s, in the same transaction as the intent: the spend must
        fit in what other owners neither reserved nor spend on their open orders. A refusal is
        journaled as the intent with status ``"refused"`` and the reason. Without ``capacity``
        the intent is journaled unchecked (the replacement spends no more than the order it
        replaces). A replacement refused or rejected before takes the new request and spend.

        Returns
        -------
        str or None
            The refusal reason, or None when the replacement may be sent.
        """
        with self._transaction():
            reason = None
            if capacity is not None:
                reason = self._check_in_tx((engine, strategy), spend, None, capacity)
            stmts = intent_stmts(
                client_order_id,
                engine,
                strategy,
                decision_id,
                request,
                ts,
                None,
                spend,
                reason,
                REPLACEMENT_RETRY_STATUSES,
            )
            for sql, p in stmts:
                self._db.execute(sql, tuple(p))
        if reason is not None:
            log.warning("replacement %s refused: %s", client_order_id, reason)
        return reason

    def _check_in_tx(
        self,
        owner: tuple[str, str],
        spend: Claim | None,
        reserve: Claim | None,
        capacity: Mapping[tuple[str, str | None], Decimal],
        takes_over: str | None = None,
    ) -> str | None:
        """``check_claims`` on the reservations and spends read inside the caller's transaction.

        The owner's own reservations of the order ``takes_over`` are left out of what
        ``reserve`` must fit beside: that order's fill frees them for this one.
        """
        reserved: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        spends: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        for c in (spend, reserve):
            if c is not None:
                reserved[(c.kind, c.symbol)], spends[(c.kind, c.symbol)] = self._claims_in_tx(c)
        if reserve is not None and takes_over is not None:
            key = (reserve.kind, reserve.symbol)
            reserved[key] = [
                r
                for r in reserved[key]
                if (r["client_order_id"], r["engine"], r["strategy"]) != (takes_over, *owner)
            ]
        return check_claims(owner, spend, reserve, capacity, reserved, spends)

    def record_order_update(
        self,
        client_order_id: str,
        broker_order_id: str | None,
        status: str,
        filled_qty: Any,
        filled_avg_price: Any,
        raw: Mapping[str, Any],
        ts: datetime,
        *,
        reason: str | None = None,
    ) -> None:
        """Journal one order state change.

        A row in ``order_events`` always, and the ``orders`` row updated to it unless it is
        stale. An order never journaled before (found at the broker during reconciliation) gets
        an ``orders`` row with no owner.

        Stale means stamped before what the row holds, except that a local status (``intent``,
        ``unknown``, ``not_sent``, ``refused``: stamped by the local clock, while updates carry
        the broker's, and skew between them must not hide the broker's answer) is always
        superseded, and a terminal status always replaces a non-terminal one. A skipped update
        is logged as a warning naming the order, unless it repeats the terminal status the row
        holds (logged at debug level: nothing was lost).
        """
        if not client_order_id:
            raise ValueError("client_order_id must be a non-empty string")
        if not status:
            raise ValueError("status must be a non-empty string")
        ts_s = ts_text(ts)
        qty, px = dec_text(filled_qty, "filled_qty"), dec_text(filled_avg_price, "filled_avg_price")
        raw_s = json_text(raw, "raw")
        tmarks, terminal = _marks(FINAL_STATUSES)
        lmarks, local = _marks(LOCAL_STATUSES)
        cursors = self._write_many(
            [
                (
                    "INSERT INTO order_events (client_order_id, broker_order_id, status, "
                    "filled_qty, filled_avg_price, raw, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (client_order_id, broker_order_id, status, qty, px, raw_s, ts_s),
                ),
                (
                    "INSERT INTO orders (client_order_id, broker_order_id, status, filled_qty, "
                    "filled_avg_price, updated_ts, reason) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(client_order_id) DO UPDATE SET "
                    "broker_order_id = COALESCE(excluded.broker_order_id, orders.broker_order_id),"
                    " status = excluded.status,"
                    " filled_qty = COALESCE(excluded.filled_qty, orders.filled_qty),"
                    " filled_avg_price = COALESCE(excluded.filled_avg_price,"
                    " orders.filled_avg_price),"
                    " reason = COALESCE(excluded.reason, orders.reason), "
                    # once the broker has answered, its clock orders the updates
                    f"updated_ts = CASE WHEN orders.status IN ({lmarks}) THEN excluded.updated_ts "
                    "ELSE MAX(excluded.updated_ts, orders.updated_ts) END "
                    f"WHERE orders.status IN ({lmarks}) "
                    "OR excluded.updated_ts >= orders.updated_ts "
                    f"OR (excluded.status IN ({tmarks}) AND orders.status NOT IN ({tmarks}))",
                    (
                        client_order_id,
                        broker_order_id,
                        status,
                        qty,
                        px,
                        ts_s,
                        reason,
                        *local,
                        *local,
                        *terminal,
                        *terminal,
                    ),
                ),
            ]
        )
        if cursors[1].rowcount == 0:
            held = self.order_by_client_id(client_order_id)
            # a late copy of the final status the row holds (the venue's own stamp arriving
            # after a look-up journaled it at the look-up's time) says nothing new
            repeat = held is not None and held["status"] == status and status in FINAL_STATUSES
            log.log(
                logging.DEBUG if repeat else logging.WARNING,
                "journal: order %s: stale update %r at %s not applied; the row keeps %r at %s",
                client_order_id,
                status,
                ts_s,
                held and held["status"],
                held and held["updated_ts"],
            )

    def record_order_event(
        self,
        client_order_id: str,
        broker_order_id: str | None,
        what: str,
        raw: Mapping[str, Any],
        ts: datetime,
    ) -> None:
        """Journal something done to an order (``cancel_requested``...).

        The order's status is left alone: the venue's answer, journaled next, changes it.
        """
        self._write(
            "INSERT INTO order_events (client_order_id, broker_order_id, status, raw, ts) "
            "VALUES (?, ?, ?, ?, ?)",
            (client_order_id, broker_order_id, what, json_text(raw, "raw"), ts_text(ts)),
        )

    def record_fill(
        self,
        fill_id: str,
        client_order_id: str | None,
        symbol: str,
        qty: Any,
        price: Any,
        side: str,
        ts: datetime,
    ) -> bool:
        """Journal one execution; idempotent on ``fill_id`` (True when newly recorded)."""
        stmt = fill_stmt(fill_id, client_order_id, symbol, qty, price, side, ts)
        return self._write(*stmt).rowcount == 1

    def record_positions(self, snapshot: list[Mapping[str, Any]], ts: datetime) -> int:
        """Journal a full position snapshot; returns the snapshot id.

        Each dict has ``symbol`` and ``qty`` (signed); other keys are kept as JSON. An empty
        list records "flat".
        """
        cursors = self._write_many(positions_stmts(snapshot, ts))
        return int(cursors[0].lastrowid or 0)

    def record_activity(
        self,
        activity_id: str,
        activity_type: str,
        symbol: str | None,
        qty: Any,
        price: Any,
        ts: datetime,
        raw: Mapping[str, Any],
    ) -> bool:
        """Journal an account activity (FILL, OPEXC, OPASN, OPEXP, OPTRD, ...).

        Idempotent on ``activity_id`` (True when newly recorded).
        """
        stmt = activity_stmt(activity_id, activity_type, symbol, qty, price, ts, raw)
        return self._write(*stmt).rowcount == 1

    def record_activity_batch(
        self,
        activities: Iterable[Mapping[str, Any]],
        fills: Iterable[Mapping[str, Any]],
        positions: list[Mapping[str, Any]],
        ts: datetime,
        decisions: Iterable[Mapping[str, Any]] = (),
    ) -> int:
        """Journal new activities, their fills and the position snapshot in ONE transaction.

        The last snapshot must reflect exactly the activities already seen (reconciliation
        relies on it); written separately, a crash between them would leave activities seen
        without the snapshot that includes them. Each item of ``activities`` / ``fills`` holds
        the keyword arguments of ``record_activity`` / ``record_fill``; ``positions`` is as for
        ``record_positions``. Activities and fills already journaled are ignored, as there.
        ``decisions`` (keyword arguments of ``record_decision``) are what the snapshot took
        as explained, a stock split: written with it, so none is taken twice.
        Returns the snapshot id.
        """
        stmts = [activity_stmt(**a) for a in activities]
        stmts += [fill_stmt(**f) for f in fills]
        stmts += [decision_stmt(**d) for d in decisions]
        snap = positions_stmts(positions, ts)
        cursors = self._write_many(stmts + snap)
        return int(cursors[len(stmts)].lastrowid or 0)

    def record_model_run(
        self,
        model: str,
        version: str,
        started: datetime,
        finished: datetime,
        params: Mapping[str, Any],
        metrics: Mapping[str, Any],
    ) -> int:
        """Journal one fit / refresh of a model; returns its row id."""
        cur = self._write(
            "INSERT INTO model_runs (model, version, started, finished, params, metrics) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                model,
                version,
                ts_text(started),
                ts_text(finished),
                json_text(params, "params"),
                json_text(metrics, "metrics"),
            ),
        )
        return int(cur.lastrowid or 0)

    def record_reconcile(self, ok: bool, differences: list[Mapping[str, Any]], ts: datetime) -> int:
        """Journal the outcome of a journal-vs-broker reconciliation."""
        cur = self._write(
            "INSERT INTO reconciles (ts, ok, differences) VALUES (?, ?, ?)",
            (ts_text(ts), 1 if ok else 0, json_text(list(differences), "differences")),
        )
        return int(cur.lastrowid or 0)

    # -- queries ----------------------------------------------------------------------------

    @staticmethod
    def _order_dict(r: sqlite3.Row) -> dict[str, Any]:
        d = dict(r)
        d["request"] = json.loads(d["request"]) if d["request"] else None
        for k in ("filled_qty", "filled_avg_price", "spend_amount"):
            d[k] = None if d[k] is None else Decimal(d[k])
        for k in ("intent_ts", "updated_ts"):
            d[k] = from_iso(d[k])
        return d

    def open_orders(self) -> list[dict[str, Any]]:
        """Orders not in a terminal state, oldest first.

        ``intent`` and ``unknown`` are included: they may or may not have reached the broker.
        """
        marks, terminal = _marks(FINAL_STATUSES)
        rows = self._read(
            f"SELECT * FROM orders WHERE status NOT IN ({marks}) "
            "ORDER BY updated_ts, client_order_id",
            terminal,
        )
        return [self._order_dict(r) for r in rows]

    def not_sent_since(self, since: datetime) -> list[dict[str, Any]]:
        """Orders journaled ``not_sent`` at or after ``since``, oldest first.

        A look-up that lagged the venue can call an order never sent whose POST lands later:
        reconcile looks these up again (see ``v28quant.reconcile``).
        """
        rows = self._read(
            "SELECT * FROM orders WHERE status = ? AND updated_ts >= ? "
            "ORDER BY updated_ts, client_order_id",
            (NOT_SENT_STATUS, ts_text(since)),
        )
        return [self._order_dict(r) for r in rows]

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        """Return the latest state of one order, or None if never journaled."""
        rows = self._read("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        return self._order_dict(rows[0]) if rows else None

    def client_order_id_for(self, broker_order_id: str, *, legs: bool = False) -> str | None:
        """Return the client order id journaled for a venue order id (None if none).

        With ``legs``, the id of one leg of a multi-leg order (the venue's fills name the leg)
        gives its parent's client order id, from the parent's journaled states.
        """
        rows = self._read(
            "SELECT client_order_id FROM orders WHERE broker_order_id = ?", (broker_order_id,)
        )
        if not rows and legs:
            rows = self._read(
                "SELECT e.client_order_id FROM order_events e, json_each(e.raw, '$.legs') l "
                "WHERE json_extract(l.value, '$.id') = ? LIMIT 1",
                (broker_order_id,),
            )
        return str(rows[0][0]) if rows else None

    def order_events(self, client_order_id: str) -> list[dict[str, Any]]:
        """Every journaled state of one order, in the order they were recorded."""
        rows = self._read(
            "SELECT * FROM order_events WHERE client_order_id = ? ORDER BY id", (client_order_id,)
        )
        out = []
        for r in rows:
            d = dict(r)
            d["raw"] = json.loads(d["raw"])
            d["ts"] = from_iso(d["ts"])
            for k in ("filled_qty", "filled_avg_price"):
                d[k] = None if d[k] is None else Decimal(d[k])
            out.append(d)
        return out

    def fills_for(self, client_order_id: str) -> list[dict[str, Any]]:
        """Return the journaled executions of one order, oldest first."""
        rows = self._read(
            "SELECT * FROM fills WHERE client_order_id = ? ORDER BY ts, fill_id", (client_order_id,)
        )
        out = []
        for r in rows:
            d = dict(r)
            d["qty"], d["price"] = Decimal(d["qty"]), Decimal(d["price"])
            d["ts"] = from_iso(d["ts"])
            out.append(d)
        return out

    def seen_activity_ids(self) -> set[str]:
        """Ids of every journaled account activity."""
        return {r[0] for r in self._read("SELECT activity_id FROM activities")}

    def last_activity_ts(self) -> datetime | None:
        """Time of the latest journaled account activity (None if none yet)."""
        # ts is UTC ``isoformat()`` text, which sorts in time order (".ffffff" > "+00:00").
        rows = self._read("SELECT MAX(ts) FROM activities")
        return from_iso(rows[0][0]) if rows else None
