"""The journal: one SQLite file holding everything the system decided and did.

Signals, decisions, order intents and every order state change, fills, position snapshots,
account activities (fills, option exercise / assignment / expiry), model runs and reconcile
results, with timestamps. On restart the runner reads it back (``open_orders``,
``last_positions``, ``seen_activity_ids``) and reconciles it with the broker before trading.

Durability
----------
WAL mode with ``synchronous=FULL``: every write is its own transaction, committed (and the WAL
fsynced) before the method returns, so a row the caller has seen acknowledged survives a crash
of the process *and* of the machine. ``NORMAL`` would survive a process crash only; the journal
writes a few rows per 5-minute cycle, so the fsync per commit costs nothing that matters.

Storage conventions
-------------------
Money and quantities are ``Decimal`` stored as TEXT exactly (``str(Decimal)``); datetimes are
timezone-aware and stored as ISO 8601 in UTC (``2024-06-03T14:30:00+00:00``); free-form dicts
are JSON. JSON never holds secrets: the value of a dict key named like a credential (``key``,
``secret``, ``token``, ``webhook``, ``password``, ``authorization``...), a Discord webhook URL
or a ``SecretStr`` is replaced by ``"[redacted]"`` before it is written; the row itself is kept.

Thread-safe: one connection guarded by a lock (the runner writes from the event loop and from
executor threads).
"""

from __future__ import annotations

import enum
import json
import logging
import math
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from v28quant.signals import Aggregate, Signal

ET = ZoneInfo("America/New_York")
log = logging.getLogger(__name__)

#: Order statuses after which the broker sends no more updates (Alpaca's vocabulary).
TERMINAL_STATUSES = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})
#: Status of an order journaled before it was sent (``record_order_intent``).
INTENT_STATUS = "intent"

_SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "secret",
        "token",
        "webhook",
        "password",
        "passwd",
        "authorization",
        "auth",
        "credential",
        "credentials",
        "bearer",
        "cookie",
    }
)
_WEBHOOK_URL = re.compile(r"discord(app)?\.com/api/webhooks/", re.IGNORECASE)


def _key_words(name: str) -> list[str]:
    # "apiKey" -> ["api", "key"]; "X-Api-Key" -> ["x", "api", "key"]; "webhook_url" -> [...]
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


REDACTED = "[redacted]"


def _redact(obj: Any, path: str) -> Any:
    """A copy of ``obj`` with credential-like fields replaced by ``REDACTED``.

    The row is kept (nothing journaled is ever dropped) and the secret never reaches the file;
    a warning names the path, never the value.
    """
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if any(w in _SECRET_WORDS for w in _key_words(str(k))):
                log.warning("journal: redacted %s.%s (named like a credential)", path, k)
                out[k] = REDACTED
            else:
                out[k] = _redact(v, f"{path}.{k}")
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_redact(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, str) and _WEBHOOK_URL.search(obj):
        log.warning("journal: redacted a Discord webhook URL at %s", path)
        return REDACTED
    if type(obj).__name__ == "SecretStr":
        log.warning("journal: redacted a SecretStr at %s", path)
        return REDACTED
    return obj


def _plain(obj: Any) -> Any:
    """JSON-able copy: Decimal -> str (exact), datetime -> ISO UTC, numpy -> Python,
    non-finite floats -> "NaN"/"Infinity"/"-Infinity" (JSON has no such numbers)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((_plain(v) for v in obj), key=str)
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime):
        return _ts(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return _plain(obj.value)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return _plain(obj.item())
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy array
        return _plain(obj.tolist())
    return str(obj)


def _json(obj: Any, what: str) -> str:
    return json.dumps(_plain(_redact(obj, what)), sort_keys=True, allow_nan=False)


def _ts(when: datetime) -> str:
    if not isinstance(when, datetime):
        raise ValueError(f"expected a datetime, got {when!r}")
    if when.tzinfo is None:
        raise ValueError(f"datetime must be timezone-aware, got {when!r}")
    return when.astimezone(UTC).isoformat()


def _dec(x: Any, what: str) -> str | None:
    """Exact decimal text; floats go through ``repr`` (shortest round-trip), not binary."""
    if x is None:
        return None
    if isinstance(x, bool):
        raise ValueError(f"{what} must be a number, got {x!r}")
    try:
        d = x if isinstance(x, Decimal) else Decimal(str(x))
    except Exception:
        raise ValueError(f"{what} must be a decimal number, got {x!r}") from None
    if not d.is_finite():
        raise ValueError(f"{what} must be finite, got {x!r}")
    return str(d)


def _from_iso(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


_Stmt = tuple[str, tuple[Any, ...]]


def _fill_stmt(
    fill_id: str,
    client_order_id: str | None,
    symbol: str,
    qty: Any,
    price: Any,
    side: str,
    ts: datetime,
) -> _Stmt:
    return (
        "INSERT INTO fills (fill_id, client_order_id, symbol, qty, price, side, ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(fill_id) DO NOTHING",
        (fill_id, client_order_id, symbol, _dec(qty, "qty"), _dec(price, "price"), side, _ts(ts)),
    )


def _activity_stmt(
    activity_id: str,
    activity_type: str,
    symbol: str | None,
    qty: Any,
    price: Any,
    ts: datetime,
    raw: Mapping[str, Any],
) -> _Stmt:
    return (
        "INSERT INTO activities (activity_id, activity_type, symbol, qty, price, ts, raw) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(activity_id) DO NOTHING",
        (
            activity_id,
            activity_type,
            symbol,
            _dec(qty, "qty"),
            _dec(price, "price"),
            _ts(ts),
            _json(raw, "raw"),
        ),
    )


def _positions_stmts(snapshot: list[Mapping[str, Any]], ts: datetime) -> list[_Stmt]:
    """A snapshot row, then its positions; they must run in one transaction, in this order
    (each position names the snapshot as the newest one)."""
    stmts: list[_Stmt] = [("INSERT INTO position_snapshots (ts) VALUES (?)", (_ts(ts),))]
    for i, pos in enumerate(snapshot):
        if "symbol" not in pos or "qty" not in pos:
            raise ValueError(f"snapshot[{i}] needs 'symbol' and 'qty', got {sorted(pos)}")
        stmts.append(
            (
                "INSERT INTO positions (snapshot_id, symbol, qty, data) "
                "VALUES ((SELECT MAX(id) FROM position_snapshots), ?, ?, ?)",
                (
                    str(pos["symbol"]),
                    _dec(pos["qty"], f"snapshot[{i}].qty"),
                    _json(pos, f"snapshot[{i}]"),
                ),
            )
        )
    return stmts


def _signal_stmt(signal: Signal) -> _Stmt:
    return (
        "INSERT INTO signals (ts, model, symbol, value, confidence, reasoning) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            _ts(signal.ts),
            signal.model,
            signal.symbol,
            float(signal.value),
            float(signal.confidence),
            _json(dict(signal.reasoning), "reasoning"),
        ),
    )


def _aggregate_stmt(a: Aggregate, ts: datetime) -> _Stmt:
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
            _ts(ts),
            None if a.ts is None else _ts(a.ts),
            a.symbol,
            float(a.value),
            float(a.confidence),
            1 if a.tradable else 0,
            _json(regime, "regime"),
            _json(contributions, "contributions"),
            _json(a.reasoning, "reasoning"),
        ),
    )


# Each entry migrates the schema from version i to i + 1; never edit a released entry, append.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE signals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL, model TEXT NOT NULL, symbol TEXT NOT NULL,
        value REAL NOT NULL, confidence REAL NOT NULL, reasoning TEXT NOT NULL);
    CREATE INDEX signals_ts ON signals(ts);
    CREATE TABLE decisions (
        decision_id TEXT PRIMARY KEY, ts TEXT NOT NULL, engine TEXT NOT NULL,
        strategy TEXT NOT NULL, symbol TEXT NOT NULL, action TEXT NOT NULL,
        reasoning TEXT NOT NULL);
    CREATE INDEX decisions_ts ON decisions(ts);
    CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY, engine TEXT, strategy TEXT, decision_id TEXT,
        request TEXT, intent_ts TEXT, broker_order_id TEXT, status TEXT NOT NULL,
        filled_qty TEXT, filled_avg_price TEXT, updated_ts TEXT NOT NULL);
    CREATE INDEX orders_status ON orders(status);
    CREATE TABLE order_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, client_order_id TEXT NOT NULL,
        broker_order_id TEXT, status TEXT NOT NULL, filled_qty TEXT, filled_avg_price TEXT,
        raw TEXT NOT NULL, ts TEXT NOT NULL);
    CREATE INDEX order_events_cid ON order_events(client_order_id);
    CREATE TABLE fills (
        fill_id TEXT PRIMARY KEY, client_order_id TEXT, symbol TEXT NOT NULL,
        qty TEXT NOT NULL, price TEXT NOT NULL, side TEXT NOT NULL, ts TEXT NOT NULL);
    CREATE INDEX fills_ts ON fills(ts);
    CREATE TABLE position_snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL);
    CREATE TABLE positions (
        snapshot_id INTEGER NOT NULL REFERENCES position_snapshots(id),
        symbol TEXT NOT NULL, qty TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, symbol));
    CREATE TABLE activities (
        activity_id TEXT PRIMARY KEY, activity_type TEXT NOT NULL, symbol TEXT,
        qty TEXT, price TEXT, ts TEXT NOT NULL, raw TEXT NOT NULL);
    CREATE TABLE model_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, version TEXT NOT NULL,
        started TEXT NOT NULL, finished TEXT NOT NULL, params TEXT NOT NULL,
        metrics TEXT NOT NULL);
    CREATE TABLE reconciles (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, ok INTEGER NOT NULL,
        differences TEXT NOT NULL);
    """,
    # 2: the aggregator's combined view per symbol, and the why-query's lookups
    """
    CREATE TABLE aggregates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL, data_ts TEXT, symbol TEXT NOT NULL, value REAL NOT NULL,
        confidence REAL NOT NULL, tradable INTEGER NOT NULL, regime TEXT NOT NULL,
        contributions TEXT NOT NULL, reasoning TEXT NOT NULL);
    CREATE INDEX aggregates_symbol_ts ON aggregates(symbol, ts);
    CREATE INDEX signals_symbol_ts ON signals(symbol, ts);
    CREATE INDEX decisions_symbol_ts ON decisions(symbol, ts);
    """,
)


class Journal:
    """The SQLite journal (see the module docstring for durability and storage rules).

    Parameters
    ----------
    path : str or Path
        The database file; created (with its schema) if missing, migrated if older.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per write.
        self._db = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._db.row_factory = sqlite3.Row
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"journal {self.path}: could not switch to WAL mode ({mode})")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            if version > len(_MIGRATIONS):
                raise RuntimeError(
                    f"journal {self.path} has schema version {version}, newer "
                    f"than this v28quant ({len(_MIGRATIONS)}); upgrade v28quant"
                )
            for i in range(version, len(_MIGRATIONS)):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in _MIGRATIONS[i].split(";"):
                        if stmt.strip():
                            self._db.execute(stmt)
                    self._db.execute(f"PRAGMA user_version={i + 1}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self._write_many([(sql, params)])[-1]

    def _write_many(self, stmts: Sequence[tuple[str, Iterable[Any]]]) -> list[sqlite3.Cursor]:
        """Run the statements in one committed transaction; return their cursors."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursors = [self._db.execute(sql, tuple(p)) for sql, p in stmts]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cursors

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a healthy file."""
        return str(self._read("PRAGMA integrity_check")[0][0])

    # -- writes -----------------------------------------------------------------------------

    def record_signal(self, signal: Signal) -> int:
        """Journal one model signal; returns its row id."""
        cur = self._write(*_signal_stmt(signal))
        return int(cur.lastrowid or 0)

    def record_aggregate(self, aggregate: Aggregate, ts: datetime) -> int:
        """Journal one aggregate with its regime, contributions and reasoning; returns its id.

        ``ts`` is the decision time (venue or simulated clock); the aggregate's own ``ts`` (the
        data time of its newest signal) is kept beside it.
        """
        cur = self._write(*_aggregate_stmt(aggregate, ts))
        return int(cur.lastrowid or 0)

    def record_cycle(
        self, signals: Iterable[Signal], aggregates: Iterable[Aggregate], ts: datetime
    ) -> None:
        """Journal a cycle's signals and aggregates in ONE transaction (one fsync, not hundreds).

        Equivalent to ``record_signal`` for each signal and ``record_aggregate(a, ts)`` for each
        aggregate; all or nothing.
        """
        stmts = [_signal_stmt(s) for s in signals]
        stmts += [_aggregate_stmt(a, ts) for a in aggregates]
        if stmts:
            self._write_many(stmts)

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Run a read-only ``SELECT`` (reports, the why-query); rows as dicts."""
        if not sql.lstrip().upper().startswith("SELECT"):
            raise ValueError("Journal.query runs SELECT statements only")
        return [dict(r) for r in self._read(sql, params)]

    def why(self, symbol: str, at: datetime | None = None) -> dict[str, Any]:
        """Why the system stood where it did on ``symbol`` at ``at`` (default: the latest).

        See :func:`v28quant.why.explain`.
        """
        from v28quant.why import explain

        return explain(self, symbol, at)

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
        self._write(
            "INSERT INTO decisions (decision_id, ts, engine, strategy, symbol, action, reasoning)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(decision_id) DO NOTHING",
            (decision_id, _ts(ts), engine, strategy, symbol, action, _json(reasoning, "reasoning")),
        )

    def record_order_intent(
        self,
        client_order_id: str,
        engine: str,
        strategy: str,
        decision_id: str | None,
        request: Mapping[str, Any],
        ts: datetime,
    ) -> bool:
        """Journal an order BEFORE it is submitted, with status ``"intent"``.

        Idempotent on ``client_order_id``: a repeat (a retried submit after a crash) changes
        nothing and returns False; the first call returns True.
        """
        if not client_order_id:
            raise ValueError("client_order_id must be a non-empty string")
        ts_s, req = _ts(ts), _json(request, "request")
        with self._lock:
            cur = self._write_many(
                [
                    (
                        "INSERT INTO orders (client_order_id, engine, strategy, decision_id, "
                        "request, intent_ts, status, updated_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT(client_order_id) DO NOTHING",
                        (
                            client_order_id,
                            engine,
                            strategy,
                            decision_id,
                            req,
                            ts_s,
                            INTENT_STATUS,
                            ts_s,
                        ),
                    ),
                    (
                        "INSERT INTO order_events (client_order_id, status, raw, ts) "
                        "SELECT ?, ?, ?, ? WHERE changes() = 1",
                        (client_order_id, INTENT_STATUS, req, ts_s),
                    ),
                ]
            )
            return cur[0].rowcount == 1

    def record_order_update(
        self,
        client_order_id: str,
        broker_order_id: str | None,
        status: str,
        filled_qty: Any,
        filled_avg_price: Any,
        raw: Mapping[str, Any],
        ts: datetime,
    ) -> None:
        """Journal one order state change: a row in ``order_events`` always, and the ``orders``
        row updated to it unless it is stale. An order never journaled before (found at the
        broker during reconciliation) gets an ``orders`` row with no owner.

        Stale means stamped before what the row holds, except that an ``intent`` is always
        superseded (its time is the local clock, the update's the broker's: skew between them
        must not hide the broker's answer) and a terminal status always replaces a
        non-terminal one. A skipped update is logged as a warning naming the order."""
        if not client_order_id:
            raise ValueError("client_order_id must be a non-empty string")
        if not status:
            raise ValueError("status must be a non-empty string")
        ts_s = _ts(ts)
        qty, px = _dec(filled_qty, "filled_qty"), _dec(filled_avg_price, "filled_avg_price")
        raw_s = _json(raw, "raw")
        terminal = sorted(TERMINAL_STATUSES)
        marks = ",".join("?" * len(terminal))
        cursors = self._write_many(
            [
                (
                    "INSERT INTO order_events (client_order_id, broker_order_id, status, "
                    "filled_qty, filled_avg_price, raw, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (client_order_id, broker_order_id, status, qty, px, raw_s, ts_s),
                ),
                (
                    "INSERT INTO orders (client_order_id, broker_order_id, status, filled_qty, "
                    "filled_avg_price, updated_ts) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(client_order_id) DO UPDATE SET "
                    "broker_order_id = COALESCE(excluded.broker_order_id, orders.broker_order_id), "
                    "status = excluded.status, filled_qty = excluded.filled_qty, "
                    "filled_avg_price = excluded.filled_avg_price, "
                    # once the broker has answered, its clock orders the updates
                    "updated_ts = CASE WHEN orders.status = ? THEN excluded.updated_ts "
                    "ELSE MAX(excluded.updated_ts, orders.updated_ts) END "
                    "WHERE orders.status = ? OR excluded.updated_ts >= orders.updated_ts "
                    f"OR (excluded.status IN ({marks}) AND orders.status NOT IN ({marks}))",
                    (
                        client_order_id,
                        broker_order_id,
                        status,
                        qty,
                        px,
                        ts_s,
                        INTENT_STATUS,
                        INTENT_STATUS,
                        *terminal,
                        *terminal,
                    ),
                ),
            ]
        )
        if cursors[1].rowcount == 0:
            held = self.order_by_client_id(client_order_id)
            log.warning(
                "journal: order %s: stale update %r at %s not applied; the row keeps %r at %s",
                client_order_id,
                status,
                ts_s,
                held and held["status"],
                held and held["updated_ts"],
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
        stmt = _fill_stmt(fill_id, client_order_id, symbol, qty, price, side, ts)
        return self._write(*stmt).rowcount == 1

    def record_positions(self, snapshot: list[Mapping[str, Any]], ts: datetime) -> int:
        """Journal a full position snapshot (each dict has ``symbol`` and ``qty``, signed;
        other keys are kept as JSON). An empty list records "flat". Returns the snapshot id."""
        cursors = self._write_many(_positions_stmts(snapshot, ts))
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
        """Journal an account activity (FILL, OPEXC, OPASN, OPEXP, OPTRD, ...); idempotent on
        ``activity_id`` (True when newly recorded)."""
        stmt = _activity_stmt(activity_id, activity_type, symbol, qty, price, ts, raw)
        return self._write(*stmt).rowcount == 1

    def record_activity_batch(
        self,
        activities: Iterable[Mapping[str, Any]],
        fills: Iterable[Mapping[str, Any]],
        positions: list[Mapping[str, Any]],
        ts: datetime,
    ) -> int:
        """Journal new activities, their fills and the position snapshot that includes them in
        ONE transaction: either all of it is committed or none of it.

        The last snapshot must reflect exactly the activities already seen (reconciliation
        relies on it); written separately, a crash between them would leave activities seen
        without the snapshot that includes them. Each item of ``activities`` / ``fills`` holds
        the keyword arguments of ``record_activity`` / ``record_fill``; ``positions`` is as for
        ``record_positions``. Activities and fills already journaled are ignored, as there.
        Returns the snapshot id.
        """
        stmts = [_activity_stmt(**a) for a in activities]
        stmts += [_fill_stmt(**f) for f in fills]
        snap = _positions_stmts(positions, ts)
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
                _ts(started),
                _ts(finished),
                _json(params, "params"),
                _json(metrics, "metrics"),
            ),
        )
        return int(cur.lastrowid or 0)

    def record_reconcile(self, ok: bool, differences: list[Mapping[str, Any]], ts: datetime) -> int:
        """Journal the outcome of a journal-vs-broker reconciliation."""
        cur = self._write(
            "INSERT INTO reconciles (ts, ok, differences) VALUES (?, ?, ?)",
            (_ts(ts), 1 if ok else 0, _json(list(differences), "differences")),
        )
        return int(cur.lastrowid or 0)

    # -- queries ----------------------------------------------------------------------------

    @staticmethod
    def _order_dict(r: sqlite3.Row) -> dict[str, Any]:
        d = dict(r)
        d["request"] = json.loads(d["request"]) if d["request"] else None
        for k in ("filled_qty", "filled_avg_price"):
            d[k] = None if d[k] is None else Decimal(d[k])
        for k in ("intent_ts", "updated_ts"):
            d[k] = _from_iso(d[k])
        return d

    def open_orders(self) -> list[dict[str, Any]]:
        """Orders not in a terminal state (``intent`` included: it may or may not have
        reached the broker), oldest first."""
        marks = ",".join("?" * len(TERMINAL_STATUSES))
        rows = self._read(
            f"SELECT * FROM orders WHERE status NOT IN ({marks}) "
            "ORDER BY updated_ts, client_order_id",
            sorted(TERMINAL_STATUSES),
        )
        return [self._order_dict(r) for r in rows]

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        """The latest state of one order, or None if never journaled."""
        rows = self._read("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        return self._order_dict(rows[0]) if rows else None

    def order_events(self, client_order_id: str) -> list[dict[str, Any]]:
        """Every journaled state of one order, in the order they were recorded."""
        rows = self._read(
            "SELECT * FROM order_events WHERE client_order_id = ? ORDER BY id", (client_order_id,)
        )
        out = []
        for r in rows:
            d = dict(r)
            d["raw"] = json.loads(d["raw"])
            d["ts"] = _from_iso(d["ts"])
            for k in ("filled_qty", "filled_avg_price"):
                d[k] = None if d[k] is None else Decimal(d[k])
            out.append(d)
        return out

    def last_positions(self) -> dict[str, Decimal]:
        """Signed quantity per symbol in the latest snapshot ({} if none or flat)."""
        rows = self._read(
            "SELECT symbol, qty FROM positions WHERE snapshot_id = "
            "(SELECT MAX(id) FROM position_snapshots)"
        )
        return {r["symbol"]: Decimal(r["qty"]) for r in rows}

    def seen_activity_ids(self) -> set[str]:
        return {r[0] for r in self._read("SELECT activity_id FROM activities")}

    def last_activity_ts(self) -> datetime | None:
        """Time of the latest journaled account activity (None if none yet)."""
        # ts is UTC ``isoformat()`` text, which sorts in time order (".ffffff" > "+00:00").
        rows = self._read("SELECT MAX(ts) FROM activities")
        return _from_iso(rows[0][0]) if rows else None

    def signals(self, since: datetime | None = None) -> pd.DataFrame:
        """Signals (optionally those at or after ``since``) as a DataFrame with columns
        id, ts (UTC), model, symbol, value, confidence, reasoning (dict)."""
        if since is None:
            rows = self._read("SELECT * FROM signals ORDER BY id")
        else:
            rows = self._read("SELECT * FROM signals WHERE ts >= ? ORDER BY id", (_ts(since),))
        cols = ["id", "ts", "model", "symbol", "value", "confidence", "reasoning"]
        df = pd.DataFrame([dict(r) for r in rows], columns=cols)
        df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
        df["reasoning"] = [json.loads(s) for s in df["reasoning"]]
        return df

    def daily_summary(self, day: date, tz: ZoneInfo = ET) -> dict[str, Any]:
        """Roll-up of one trading day (``day`` in ``tz``, US/Eastern by default) for the
        after-close report: counts of signals, decisions and orders by engine and status,
        fills with bought / sold notional per side (Decimal, price x qty; options per share
        of premium, not x100), activities by type, reconciles and the latest positions."""
        lo = datetime.combine(day, time(0), tz)
        lo_s, hi_s = _ts(lo), _ts(lo + timedelta(days=1))
        rng = (lo_s, hi_s)
        n_signals = self._read("SELECT COUNT(*) FROM signals WHERE ts >= ? AND ts < ?", rng)
        decisions = self._read(
            "SELECT engine, COUNT(*) n FROM decisions WHERE ts >= ? AND "
            "ts < ? GROUP BY engine ORDER BY engine",
            rng,
        )
        orders = self._read(
            "SELECT COALESCE(engine, '') engine, status, COUNT(*) n FROM orders "
            "WHERE COALESCE(intent_ts, updated_ts) >= ? AND "
            "COALESCE(intent_ts, updated_ts) < ? GROUP BY 1, 2 ORDER BY 1, 2",
            rng,
        )
        fills = self._read("SELECT side, qty, price FROM fills WHERE ts >= ? AND ts < ?", rng)
        acts = self._read(
            "SELECT activity_type, COUNT(*) n FROM activities WHERE ts >= ? AND "
            "ts < ? GROUP BY 1 ORDER BY 1",
            rng,
        )
        recs = self._read(
            "SELECT ok, COUNT(*) n FROM reconciles WHERE ts >= ? AND ts < ? GROUP BY ok", rng
        )
        notional: dict[str, Decimal] = {}
        for f in fills:
            notional[f["side"]] = notional.get(f["side"], Decimal(0)) + (
                abs(Decimal(f["qty"])) * Decimal(f["price"])
            )
        orders_by: dict[str, dict[str, int]] = {}
        for r in orders:
            orders_by.setdefault(r["engine"], {})[r["status"]] = int(r["n"])
        rec = {bool(r["ok"]): int(r["n"]) for r in recs}
        return {
            "day": day.isoformat(),
            "signals": int(n_signals[0][0]),
            "decisions": {r["engine"]: int(r["n"]) for r in decisions},
            "orders": orders_by,
            "fills": len(fills),
            "notional": notional,
            "activities": {r["activity_type"]: int(r["n"]) for r in acts},
            "reconciles": {"ok": rec.get(True, 0), "failed": rec.get(False, 0)},
            "positions": self.last_positions(),
        }
