"""Read-only roll-ups of the journal for people: signals as a frame, the after-close summary."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from v28quant.calendar import ET
from v28quant.journal._codec import from_iso, ts_text
from v28quant.journal.schema import POSITIONS_ACCEPTED_ACTION, RECONCILE_ENGINE, SPLIT_ACTION
from v28quant.journal.store import JournalStore
from v28quant.occ import multiplier


class ReportQueries(JournalStore):
    """Queries that summarise what was journaled (mixed into ``Journal``)."""

    def last_positions(self, before: datetime | None = None) -> dict[str, Decimal]:
        """Signed quantity per symbol in the latest snapshot ({} if none or flat).

        With ``before``, the latest snapshot stamped before that time (a past day's end).
        """
        where = "" if before is None else " WHERE ts < ?"
        rows = self._read(
            "SELECT symbol, qty FROM positions WHERE snapshot_id = "
            f"(SELECT MAX(id) FROM position_snapshots{where})",
            () if before is None else (ts_text(before),),
        )
        return {r["symbol"]: Decimal(r["qty"]) for r in rows}

    def last_reconcile(self) -> dict[str, Any] | None:
        """Return the latest reconcile: ``ts`` (UTC), ``ok`` and its ``differences``; or None."""
        rows = self._read("SELECT ts, ok, differences FROM reconciles ORDER BY id DESC LIMIT 1")
        if not rows:
            return None
        r = rows[0]
        return {"ts": from_iso(r["ts"]), "ok": bool(r["ok"]), "differences": json.loads(r[2])}

    def last_entry_prices(self) -> dict[str, Decimal]:
        """Average entry price per symbol in the latest snapshot, where it was recorded."""
        rows = self._read(
            "SELECT symbol, json_extract(data, '$.avg_entry_price') AS price FROM positions"
            " WHERE snapshot_id = (SELECT MAX(id) FROM position_snapshots)"
        )
        return {r["symbol"]: Decimal(str(r["price"])) for r in rows if r["price"] is not None}

    def splits(self) -> list[dict[str, Any]]:
        """Return the stock splits reconcile took, oldest first.

        Each a dict with ``symbol``, ``ts`` (UTC datetime) and ``split_ratio`` (a Fraction: new
        shares per old share), as :func:`v28quant.round_trips.match_fifo` reads them.
        """
        return [
            {"symbol": d["symbol"], "ts": d["ts"], "split_ratio": Fraction(d["reasoning"]["ratio"])}
            for d in self.decisions(engine=RECONCILE_ENGINE, action=SPLIT_ACTION)
        ]

    def transfers(self) -> list[dict[str, Any]]:
        """Return the position differences the operator accepted, oldest first.

        One per position of each ``positions_accepted`` decision
        (``v28quant.accept_positions``): shares that came in or left with no fill the journal
        holds. Each a dict with ``symbol``, ``ts`` (UTC datetime, the accepting reconcile's),
        ``qty`` (signed: the venue's quantity less the journal's expected one), ``venue_qty``,
        ``price`` (the venue's average entry price in the snapshot that reconcile wrote, None
        where the venue held none) and ``decision_id``, as
        :func:`v28quant.round_trips.transfer_trades` reads them.
        """
        rows = self._read(
            "SELECT decision_id, ts, reasoning FROM decisions WHERE engine = ? AND action = ?"
            " ORDER BY ts, rowid",
            (RECONCILE_ENGINE, POSITIONS_ACCEPTED_ACTION),
        )
        out = []
        for r in rows:
            for p in json.loads(r["reasoning"])["positions"]:
                venue = Decimal(p["broker"])
                out.append(
                    {
                        "symbol": p["symbol"],
                        "ts": from_iso(r["ts"]),
                        "qty": venue - Decimal(p["expected"]),
                        "venue_qty": venue,
                        "price": self._entry_price_taken(r["ts"], p["symbol"], venue),
                        "decision_id": r["decision_id"],
                    }
                )
        return out

    def _entry_price_taken(self, ts: str, symbol: str, qty: Decimal) -> Decimal | None:
        """Return the average entry price of ``qty`` ``symbol`` in a snapshot stamped ``ts``.

        The snapshot of the reconcile that took the position: stamped as its decision and
        holding the quantity taken (another reconcile may share the stamp on a fixed clock).
        """
        rows = self._read(
            "SELECT p.qty, json_extract(p.data, '$.avg_entry_price') AS price FROM positions p"
            " JOIN position_snapshots s ON s.id = p.snapshot_id"
            " WHERE s.ts = ? AND p.symbol = ? ORDER BY s.id",
            (ts, symbol),
        )
        prices = [r["price"] for r in rows if Decimal(r["qty"]) == qty and r["price"] is not None]
        return Decimal(str(prices[0])) if prices else None

    def signals(self, since: datetime | None = None) -> pd.DataFrame:
        """Signals (optionally those at or after ``since``) as a DataFrame.

        Columns: id, ts (UTC), model, symbol, value, confidence, reasoning (dict).
        """
        if since is None:
            rows = self._read("SELECT * FROM signals ORDER BY id")
        else:
            rows = self._read("SELECT * FROM signals WHERE ts >= ? ORDER BY id", (ts_text(since),))
        cols = ["id", "ts", "model", "symbol", "value", "confidence", "reasoning"]
        df = pd.DataFrame([dict(r) for r in rows], columns=cols)
        df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
        df["reasoning"] = [json.loads(s) for s in df["reasoning"]]
        return df

    def last_signal_ts(self) -> datetime | None:
        """Return when the latest signal was journaled: its cycle's time, else its data's.

        An equity signal's data time is its daily bar's close, the session before its cycle.
        """
        rows = self._read("SELECT MAX(COALESCE(cycle_ts, ts)) FROM signals")
        return from_iso(rows[0][0])

    def hourly_last_values(self, model: str, key: str, since: datetime) -> pd.DataFrame:
        """``reasoning[key]`` of ``model``'s last signal in each symbol's UTC hour since ``since``.

        Columns ts (UTC), symbol, value (None where the key is absent), in journal order. A day in
        any whole-hour time zone is a union of UTC hours, so each symbol's last value of a local
        day is among these rows, and no other row is decoded: the options engine reads a year
        of its IV readings (about 1,500 rows a trading day) this way.
        """
        if not key.isidentifier():
            raise ValueError(f"reasoning key must be an identifier, got {key!r}")
        rows = self._read(
            f"SELECT ts, symbol, json_extract(reasoning, '$.{key}') AS value FROM signals "
            "WHERE id IN (SELECT MAX(id) FROM signals WHERE model = ? AND ts >= ? "
            "GROUP BY symbol, substr(ts, 1, 13)) ORDER BY id",
            (model, ts_text(since)),
        )
        df = pd.DataFrame([dict(r) for r in rows], columns=["ts", "symbol", "value"])
        df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
        return df

    def aggregate_summary(self) -> dict[str, Any]:
        """How the equity engine's journaled aggregates stood against their threshold.

        Keys: ``aggregates``, ``tradable`` (counts), ``min_confidence`` (the thresholds in
        force, sorted) and ``highest`` (symbol, ts as UTC ISO text, value and confidence of the
        most confident aggregate); {} when none was journaled. The options engine's views
        (``UND:IV``) are left out: it gates each structure on its own score. A run that traded
        nothing says here why.
        """
        equity = "instr(symbol, ':') = 0"
        r = self._read(
            "SELECT COUNT(*) AS n, SUM(tradable) AS tradable, group_concat(DISTINCT "
            f"json_extract(reasoning, '$.min_confidence')) AS thresholds FROM aggregates "
            f"WHERE {equity}"
        )[0]
        if not r["n"]:
            return {}
        top = self._read(
            f"SELECT symbol, ts, value, confidence FROM aggregates WHERE {equity} "
            "ORDER BY confidence DESC, id LIMIT 1"
        )[0]
        return {
            "aggregates": int(r["n"]),
            "tradable": int(r["tradable"] or 0),
            "min_confidence": sorted(float(x) for x in (r["thresholds"] or "").split(",") if x),
            "highest": {
                "symbol": top["symbol"],
                "ts": top["ts"],
                "value": float(top["value"]),
                "confidence": float(top["confidence"]),
            },
        }

    def decision_count(self, engine: str, action: str) -> int:
        """Count ``engine``'s decisions with ``action`` in SQL (nothing is decoded)."""
        rows = self._read(
            "SELECT COUNT(*) AS n FROM decisions WHERE engine = ? AND action = ?", (engine, action)
        )
        return int(rows[0]["n"])

    def last_decisions(self, action: str) -> list[dict[str, Any]]:
        """Return each engine's newest decision with ``action``, by engine name.

        The newest by ``ts``, then as written; each a dict as :meth:`decisions` gives. One
        indexed look-up per engine, nothing older decoded: a cycle's decision carries its
        details, tens of megabytes over a year of 5-minute cycles.
        """
        engines = self._read(
            "SELECT DISTINCT engine FROM decisions WHERE action = ? ORDER BY engine", (action,)
        )
        out = []
        for e in engines:
            (row,) = self._read(
                "SELECT * FROM decisions WHERE engine = ? AND action = ? "
                "ORDER BY ts DESC, rowid DESC LIMIT 1",
                (e["engine"], action),
            )
            out.append(
                {**dict(row), "ts": from_iso(row["ts"]), "reasoning": json.loads(row["reasoning"])}
            )
        return out

    def decisions(
        self,
        engine: str | None = None,
        action: str | Collection[str] | None = None,
        since: datetime | None = None,
        *,
        symbol: str | None = None,
        as_written: bool = False,
    ) -> list[dict[str, Any]]:
        """Return decisions, oldest first, optionally filtered.

        By ``engine``, ``action`` (one, or any of several), time (at or after ``since``) and
        ``symbol``; each a dict with ``ts`` (UTC datetime) and ``reasoning`` (dict).
        ``as_written`` orders them as they were written instead of by ``ts``: keyless paper
        stamps the runner's records with the simulated clock and the operator's with the wall
        clock, years apart.
        """
        sql, params = "SELECT * FROM decisions WHERE 1 = 1", []
        if engine is not None:
            sql += " AND engine = ?"
            params.append(engine)
        if action is not None:
            actions = [action] if isinstance(action, str) else list(action)
            sql += f" AND action IN ({', '.join('?' * len(actions))})"
            params.extend(actions)
        if since is not None:
            sql += " AND ts >= ?"
            params.append(ts_text(since))
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        out = []
        order = " ORDER BY rowid" if as_written else " ORDER BY ts, rowid"
        for r in self._read(sql + order, params):
            d = dict(r)
            d["ts"] = from_iso(d["ts"])
            d["reasoning"] = json.loads(d["reasoning"])
            out.append(d)
        return out

    def decisions_by_rule(
        self, engine: str, rule: str, underlying: str, since: datetime
    ) -> list[dict[str, Any]]:
        """Return ``engine``'s decisions on ``underlying`` whose reasoning's ``rule`` is ``rule``.

        Oldest first, those at or after ``since``; each a dict with ``decision_id``, ``ts``
        (UTC datetime) and ``symbol``. A decision is on the underlying when it names the stock
        or OCC contracts on it (an options structure's order names its legs, comma-separated).
        The rule is read by SQLite's JSON functions: no reasoning is decoded here.
        """
        rows = self._read(
            "SELECT decision_id, ts, symbol FROM decisions WHERE engine = ? AND ts >= ? "
            "AND (symbol = ? OR symbol GLOB ?) AND json_extract(reasoning, '$.rule') = ? "
            "ORDER BY ts, rowid",
            (engine, ts_text(since), underlying, _contract_glob(underlying), rule),
        )
        return [{**dict(r), "ts": from_iso(r["ts"])} for r in rows]

    def last_orders(
        self, symbol: str, at: datetime | None = None, limit: int = 1
    ) -> list[dict[str, Any]]:
        """Return the newest ``limit`` orders on ``symbol`` placed at or before ``at``.

        An order counts when its decision names the stock itself or OCC contracts on it as the
        underlying (an options structure's decision names its legs). Each row: the order's
        ``client_order_id, engine, strategy, status, filled_qty, filled_avg_price, intent_ts``
        and ``request`` (dict), and its decision's ``action``, ``symbol`` and ``reasoning``
        (dict).
        """
        contract = _contract_glob(symbol)
        rows = self._read(
            "SELECT o.client_order_id, o.engine, o.strategy, o.status, o.filled_qty, "
            "o.filled_avg_price, o.intent_ts, o.request, d.action, d.symbol, d.reasoning "
            "FROM orders o "
            "JOIN decisions d ON d.decision_id = o.decision_id "
            "WHERE (d.symbol = ? OR d.symbol GLOB ?) AND o.intent_ts <= ? "
            "ORDER BY o.intent_ts DESC, o.rowid DESC LIMIT ?",
            (symbol, contract, ts_text(at) if at is not None else "9999", limit),
        )
        out = []
        for r in rows:
            d = dict(r)
            d["intent_ts"] = from_iso(d["intent_ts"])
            d["request"] = json.loads(d["request"] or "{}")
            d["reasoning"] = json.loads(d["reasoning"])
            out.append(d)
        return out

    def fills(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Return fills, oldest first, optionally those at or after ``since``.

        ``qty`` and ``price`` are Decimal, ``ts`` a UTC datetime.
        """
        sql, params = "SELECT * FROM fills", []
        if since is not None:
            sql, params = sql + " WHERE ts >= ?", [ts_text(since)]
        out = []
        for r in self._read(sql + " ORDER BY ts, fill_id", params):
            d = dict(r)
            d["qty"], d["price"] = Decimal(d["qty"]), Decimal(d["price"])
            d["ts"] = from_iso(d["ts"])
            out.append(d)
        return out

    def fill_costs(self) -> dict[str, dict[str, Decimal]]:
        """Return the costs each fill paid in dollars, by fill id, where its venue said them.

        The simulated exchange records ``slippage`` and ``half_spread`` (quote to mid) on its
        FILL activities' ``raw``; a fill maps each cost it records.
        """
        sql = (
            "SELECT activity_id, json_extract(raw, '$.slippage') AS slippage,"
            " json_extract(raw, '$.half_spread') AS half_spread FROM activities"
            " WHERE activity_type = 'FILL'"
        )
        out = {}
        for r in self._read(sql):
            costs = {k: Decimal(r[k]) for k in ("slippage", "half_spread") if r[k] is not None}
            if costs:
                out[r["activity_id"]] = costs
        return out

    def settlements(self) -> list[dict[str, Any]]:
        """Return option expiries, assignments, exercises and their stock trades, oldest first.

        ``qty`` is Decimal, ``price`` Decimal or None, ``ts`` a UTC datetime, ``raw`` a dict.
        """
        sql = (
            "SELECT * FROM activities WHERE activity_type IN ('OPEXP', 'OPASN', 'OPEXC', 'OPTRD')"
            " ORDER BY ts, activity_id"
        )
        out = []
        for r in self._read(sql):
            d = dict(r)
            d["qty"] = Decimal(d["qty"])
            d["price"] = None if d["price"] is None else Decimal(d["price"])
            d["ts"] = from_iso(d["ts"])
            d["raw"] = json.loads(d["raw"])
            out.append(d)
        return out

    def daily_summary(self, day: date, tz: ZoneInfo = ET) -> dict[str, Any]:
        """Roll-up of one trading day for the after-close report.

        ``day`` is read in ``tz`` (US/Eastern by default). Counts of signals (by the time of
        the cycle that journaled them: ``last_signal_ts``), decisions and
        orders by engine and status, fills with bought / sold notional per side (Decimal, price
        x qty, x 100 for an option contract), activities by type, reconciles and the positions
        of the latest snapshot before the day's end (a past day's, not today's).
        """
        lo = datetime.combine(day, time(0), tz)
        end = lo + timedelta(days=1)
        rng = (ts_text(lo), ts_text(end))
        n_signals = self._read(  # by the cycle that made them, not their data's time
            "SELECT COUNT(*) FROM signals WHERE COALESCE(cycle_ts, ts) >= ? AND "
            "COALESCE(cycle_ts, ts) < ?",
            rng,
        )
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
        fills = self._read(
            "SELECT symbol, side, qty, price FROM fills WHERE ts >= ? AND ts < ?", rng
        )
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
                abs(Decimal(f["qty"])) * Decimal(f["price"]) * multiplier(f["symbol"])
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
            "positions": self.last_positions(before=end),
        }


def _contract_glob(underlying: str) -> str:
    """Return the GLOB pattern of OCC symbols on ``underlying``: ROOT + YYMMDD + C/P + strike."""
    return f"{underlying}[0-9][0-9][0-9][0-9][0-9][0-9][CP]*"
