"""Reservations: shares or cash an owner has set aside, and the check that guards them.

Shares that back a covered call and cash that backs a cash-secured put belong to the strategy
that wrote the option. An order of another owner that would spend them is refused. The check and
the intent it admits are one ``BEGIN IMMEDIATE`` transaction, so two owners admitted at the same
moment (two engines, two threads, two connections) are checked one after the other, each seeing
what the other reserved or is about to spend.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any, Literal

from v28quant.journal._codec import from_iso, json_text, ts_text
from v28quant.journal.schema import FINAL_STATUSES, NOT_SENT_STATUS, REFUSED_STATUS
from v28quant.journal.store import JournalStore

ReserveKind = Literal["shares", "cash"]


@dataclass(frozen=True, slots=True)
class Claim:
    """Shares of ``symbol`` or cash (``symbol`` None), ``amount`` of it (shares or dollars)."""

    kind: ReserveKind
    symbol: str | None
    amount: Decimal

    def __post_init__(self) -> None:
        """Check the fields; a bad one is a ValueError naming it."""
        if self.kind not in ("shares", "cash"):
            raise ValueError(f"kind must be 'shares' or 'cash', got {self.kind!r}")
        if self.kind == "shares" and not self.symbol:
            raise ValueError("a shares claim needs the symbol")
        if self.kind == "cash" and self.symbol is not None:
            raise ValueError(
                f"a cash claim is account-wide: symbol must be None, got {self.symbol}"
            )
        if not self.amount > 0:
            raise ValueError(f"amount must be > 0, got {self.amount}")

    @property
    def what(self) -> str:
        """``"shares of SPY"`` or ``"cash"``, for messages."""
        return f"shares of {self.symbol}" if self.kind == "shares" else "cash"


class ReservationBook(JournalStore):
    """Reservation queries and releases (mixed into ``Journal``)."""

    def reservations(self, *, active: bool = True) -> list[dict[str, Any]]:
        """Reservations, oldest first; only those not released when ``active``."""
        where = "WHERE released_ts IS NULL " if active else ""
        rows = self._read(f"SELECT * FROM reservations {where}ORDER BY id")
        out = []
        for r in rows:
            d = dict(r)
            d["amount"] = Decimal(d["amount"])
            d["created_ts"] = from_iso(d["created_ts"])
            d["released_ts"] = from_iso(d["released_ts"])
            out.append(d)
        return out

    def release_reservations(
        self,
        *,
        reason: str,
        ts: datetime,
        reservation_id: int | None = None,
        client_order_id: str | None = None,
        engine: str | None = None,
        strategy: str | None = None,
        claim: Claim | None = None,
    ) -> int:
        """Release active reservations matching every filter given; returns how many.

        At least one filter is required (releasing everything by accident is refused).
        """
        conds: list[str] = ["released_ts IS NULL"]
        params: list[Any] = []
        for col, val in (
            ("id", reservation_id),
            ("client_order_id", client_order_id),
            ("engine", engine),
            ("strategy", strategy),
        ):
            if val is not None:
                conds.append(f"{col} = ?")
                params.append(val)
        if claim is not None:
            conds += ["kind = ?", "symbol IS ?"]
            params += [claim.kind, claim.symbol]
        if len(conds) == 1:
            raise ValueError("release_reservations needs at least one filter")
        where = " AND ".join(conds)
        cur = self._write(
            f"UPDATE reservations SET released_ts = ?, release_reason = ? WHERE {where}",
            (ts_text(ts), reason, *params),
        )
        return int(cur.rowcount)

    def release_unsent_reservations(self, *, reason: str, ts: datetime) -> list[str]:
        """Release the reservations of orders the venue never took; return their orders.

        An order journaled ``rejected``, ``not_sent`` or ``refused`` with no venue id holds
        nothing at the venue, so what it reserves is free: its own release was lost (a process
        that died between the two writes). One statement, so an order admitted again meanwhile
        (an intent once more, its reservation held anew) keeps what it holds.
        """
        ended = ("rejected", NOT_SENT_STATUS, REFUSED_STATUS)
        unsent = (
            "SELECT client_order_id FROM orders WHERE broker_order_id IS NULL "
            "AND status IN (?, ?, ?)"
        )
        with self._transaction() as db:
            held = db.execute(
                f"SELECT DISTINCT client_order_id FROM reservations WHERE released_ts IS NULL "
                f"AND client_order_id IN ({unsent}) ORDER BY client_order_id",
                ended,
            ).fetchall()
            if held:  # every sync asks: write only when there is something to release
                db.execute(
                    "UPDATE reservations SET released_ts = ?, release_reason = ? "
                    f"WHERE released_ts IS NULL AND client_order_id IN ({unsent})",
                    (ts_text(ts), reason, *ended),
                )
        return [str(r[0]) for r in held]

    def hold_reservation(
        self, engine: str, strategy: str, decision_id: str, claim: Claim, ts: datetime
    ) -> bool:
        """Reserve what the account already holds for an owner, with no order behind it.

        For shares that arrive by assignment and wait for the covered call that will spend
        them. Idempotent on ``decision_id``: a repeat while that reservation is active changes
        nothing and returns False.
        """
        with self._transaction():
            held = self._db.execute(
                "SELECT COUNT(*) FROM reservations WHERE decision_id = ? AND engine = ? "
                "AND released_ts IS NULL",
                (decision_id, engine),
            ).fetchone()[0]
            if not held:
                self._db.execute(
                    "INSERT INTO reservations (engine, strategy, decision_id, kind, symbol, "
                    "amount, client_order_id, created_ts) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                    (
                        engine,
                        strategy,
                        decision_id,
                        claim.kind,
                        claim.symbol,
                        str(claim.amount),
                        ts_text(ts),
                    ),
                )
        return not held

    def shrink_reservations(
        self, client_order_id: str, kept: int, of: int, *, reason: str, ts: datetime
    ) -> int:
        """Cut an order's active reservations to ``kept`` of the ``of`` units they were for.

        For an order that ended with only some of its units filled: each is released with
        ``reason`` and held again, same owner and order, for the units kept (shares whole,
        cash rounded up to the cent), so the journal keeps both. Returns how many were cut.
        """
        if not 0 < kept < of:
            raise ValueError(f"kept must be in (0, of={of}), got {kept}")
        with self._transaction() as db:
            return _resize(
                db, client_order_id, reason, ts, lambda r: Decimal(r["amount"]) * kept / of
            )

    def set_cash_reservation(
        self, client_order_id: str, amount: Decimal, *, reason: str, ts: datetime
    ) -> int:
        """Set the cash an order's active reservations hold to ``amount`` (0 frees it).

        For a position that now needs another amount than its order reserved (a structure
        that lost a leg): each active row is released with ``reason`` and, for an amount above
        0, one row is held again, same owner and order, rounded up to the cent, so the journal
        keeps both. An order with none holds nothing new. Returns how many rows were released.
        """
        if amount < 0:
            raise ValueError(f"amount must be >= 0, got {amount}")
        with self._transaction() as db:
            rows = db.execute(
                "SELECT * FROM reservations WHERE client_order_id = ? AND released_ts IS NULL",
                (client_order_id,),
            ).fetchall()
            shares = [r["symbol"] for r in rows if r["kind"] != "cash"]
            if shares:
                raise ValueError(
                    f"order {client_order_id} reserves shares of {', '.join(shares)}, not cash"
                )
            for r in rows:
                db.execute(
                    "UPDATE reservations SET released_ts = ?, release_reason = ? WHERE id = ?",
                    (ts_text(ts), reason, r["id"]),
                )
            if rows and amount > 0:
                db.execute(
                    "INSERT INTO reservations (engine, strategy, decision_id, kind, symbol, "
                    "amount, client_order_id, created_ts) VALUES (?, ?, ?, 'cash', NULL, ?, ?, ?)",
                    (
                        rows[0]["engine"],
                        rows[0]["strategy"],
                        rows[0]["decision_id"],
                        str(amount.quantize(Decimal("0.01"), ROUND_CEILING)),
                        client_order_id,
                        ts_text(ts),
                    ),
                )
        return len(rows)

    def restate_order(
        self,
        client_order_id: str,
        request: Mapping[str, Any],
        spend: Claim | None,
        *,
        reason: str,
        ts: datetime,
    ) -> int:
        """Journal ``request`` (and ``spend``) as what order ``client_order_id`` is at the venue.

        For an order the venue holds under the id for another request (an earlier run sent it,
        sized otherwise). The row's request hash stays the decision's: placed again, the
        decision finds its row sent and looks the venue up. Each active reservation of the
        order is released with ``reason`` and held again, same owner and order, scaled to the
        venue's order: by what it spends where the reservation guards that (a buy's cash), else
        by its quantity (a put's collateral a contract), shares rounded up to whole ones and
        cash to the cent. Returns how many were resized; none when the row says ``request``.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT request, spend_kind, spend_symbol, spend_amount FROM orders "
                "WHERE client_order_id = ?",
                (client_order_id,),
            ).fetchone()
            if row is None:
                raise ValueError(f"order {client_order_id} is not journaled")
            old = json.loads(row["request"]) if row["request"] else None
            if old == json.loads(json_text(request, "request")):
                return 0
            db.execute(
                "UPDATE orders SET request = ?, spend_kind = ?, spend_symbol = ?, "
                "spend_amount = ? WHERE client_order_id = ?",
                (
                    json_text(request, "request"),
                    None if spend is None else spend.kind,
                    None if spend is None else spend.symbol,
                    None if spend is None else str(spend.amount),
                    client_order_id,
                ),
            )
            if old is None:  # nothing the reservations were sized on
                return 0
            by_qty = Decimal(str(request["qty"])) / Decimal(str(old["qty"]))
            spent = None
            if row["spend_amount"] is not None:
                spent = Claim(row["spend_kind"], row["spend_symbol"], Decimal(row["spend_amount"]))
            return _resize(
                db,
                client_order_id,
                reason,
                ts,
                lambda r: (
                    Decimal(r["amount"])
                    * _held_scale((r["kind"], r["symbol"]), spent, spend, by_qty)
                ),
            )

    def move_reservations(self, old_client_order_id: str, new_client_order_id: str) -> int:
        """Hand an order's active reservations to its replacement; returns how many moved."""
        cur = self._write(
            "UPDATE reservations SET client_order_id = ? "
            "WHERE client_order_id = ? AND released_ts IS NULL",
            (new_client_order_id, old_client_order_id),
        )
        return int(cur.rowcount)

    def _claims_in_tx(self, claim: Claim) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Read the reservations and open-order spends on ``claim``'s kind and symbol.

        Runs inside the caller's transaction. A spend counts only its unfilled part, and only
        beyond what the order's own reservation already sets aside: a cash-secured put reserves
        the collateral its order spends, which is one amount, not two.
        """
        reserved = [
            dict(r)
            for r in self._db.execute(
                "SELECT engine, strategy, amount, client_order_id FROM reservations "
                "WHERE released_ts IS NULL AND kind = ? AND symbol IS ?",
                (claim.kind, claim.symbol),
            ).fetchall()
        ]
        own: dict[str, Decimal] = {}
        for r in reserved:
            if r["client_order_id"] is not None:
                own[r["client_order_id"]] = own.get(r["client_order_id"], Decimal(0)) + Decimal(
                    r["amount"]
                )
        marks = ",".join("?" * len(FINAL_STATUSES))
        spends = []
        for r in self._db.execute(
            "SELECT client_order_id, engine, strategy, spend_amount, request, filled_qty "
            f"FROM orders WHERE spend_kind = ? AND spend_symbol IS ? AND status NOT IN ({marks})",
            (claim.kind, claim.symbol, *sorted(FINAL_STATUSES)),
        ).fetchall():
            amount = Decimal(r["spend_amount"])
            qty = Decimal(json.loads(r["request"])["qty"]) if r["request"] else Decimal(0)
            filled = Decimal(r["filled_qty"] or 0)
            if qty > 0:
                amount = amount * max(qty - filled, Decimal(0)) / qty
            amount = max(amount - own.get(r["client_order_id"], Decimal(0)), Decimal(0))
            spends.append({"engine": r["engine"], "strategy": r["strategy"], "amount": amount})
        return reserved, spends


def _held_scale(
    key: tuple[str, str | None], spent: Claim | None, spend: Claim | None, by_qty: Decimal
) -> Decimal:
    """How much a reservation on ``key`` grows to the venue's order (``restate_order``).

    By what the order spends where both the requested and the venue's order spend ``key``;
    else by quantity.
    """
    if (
        spent is None
        or spend is None
        or not (spent.kind, spent.symbol) == (spend.kind, spend.symbol) == key
    ):
        return by_qty
    return spend.amount / spent.amount


def _resize(
    db: sqlite3.Connection,
    client_order_id: str,
    reason: str,
    ts: datetime,
    amount: Callable[[sqlite3.Row], Decimal],
) -> int:
    """Release each active reservation of an order with ``reason``; hold it again for ``amount``.

    The journal keeps both rows. Returns how many were resized.
    """
    rows = db.execute(
        "SELECT * FROM reservations WHERE client_order_id = ? AND released_ts IS NULL",
        (client_order_id,),
    ).fetchall()
    for r in rows:
        db.execute(
            "UPDATE reservations SET released_ts = ?, release_reason = ? WHERE id = ?",
            (ts_text(ts), reason, r["id"]),
        )
        _hold_again(db, r, amount(r), ts)
    return len(rows)


def _hold_again(db: sqlite3.Connection, r: sqlite3.Row, amount: Decimal, ts: datetime) -> None:
    """Hold reservation ``r`` again for ``amount`` (rounded up: whole shares, cash to cents)."""
    step = Decimal(1) if r["kind"] == "shares" else Decimal("0.01")
    db.execute(
        "INSERT INTO reservations (engine, strategy, decision_id, kind, symbol, "
        "amount, client_order_id, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            r["engine"],
            r["strategy"],
            r["decision_id"],
            r["kind"],
            r["symbol"],
            str(amount.quantize(step, ROUND_CEILING)),
            r["client_order_id"],
            ts_text(ts),
        ),
    )


def check_claims(
    owner: tuple[str, str],
    spend: Claim | None,
    reserve: Claim | None,
    capacity: Mapping[tuple[str, str | None], Decimal],
    reserved: Mapping[tuple[str, str | None], list[dict[str, Any]]],
    spends: Mapping[tuple[str, str | None], list[dict[str, Any]]],
) -> str | None:
    """Why the order may not go (None: it may).

    Parameters
    ----------
    owner : (engine, strategy)
        Who places the order; its own reservations are its to spend.
    spend, reserve : Claim or None
        What the order spends, and what it asks to set aside.
    capacity : mapping
        (kind, symbol) -> what the account holds now (shares long, or cash).
    reserved, spends : mapping
        (kind, symbol) -> active reservations / unfilled spends of open orders, as rows with
        ``engine``, ``strategy`` and ``amount``.
    """

    def others(rows: list[dict[str, Any]]) -> Decimal:
        return sum((r["amount"] for r in rows if (r["engine"], r["strategy"]) != owner), Decimal(0))

    def total(rows: list[dict[str, Any]]) -> Decimal:
        return sum((Decimal(r["amount"]) for r in rows), Decimal(0))

    def holders(rows: list[dict[str, Any]]) -> str:
        who = sorted(
            {
                f"{r['engine']}/{r['strategy']}"
                for r in rows
                if (r["engine"], r["strategy"]) != owner
            }
        )
        return ", ".join(who)

    if spend is not None:
        key = (spend.kind, spend.symbol)
        res = [{**r, "amount": Decimal(r["amount"])} for r in reserved.get(key, [])]
        held = others(res)
        if held > 0:
            spending = others(spends.get(key, []))
            free = capacity.get(key, Decimal(0)) - held - spending
            if spend.amount > free:
                return (
                    f"would spend {spend.what} reserved by {holders(res)}: needs {spend.amount}, "
                    f"{max(free, Decimal(0))} free of {capacity.get(key, Decimal(0))} "
                    f"({held} reserved by other owners, {spending} more being spent by their "
                    "open orders)"
                )
    if reserve is not None:
        key = (reserve.kind, reserve.symbol)
        held, spending = total(reserved.get(key, [])), total(spends.get(key, []))
        free = capacity.get(key, Decimal(0)) - held - spending
        if reserve.amount > free:
            return (
                f"cannot reserve {reserve.amount} {reserve.what}: {max(free, Decimal(0))} free of "
                f"{capacity.get(key, Decimal(0))} ({held} reserved, {spending} more being spent "
                "by open orders)"
            )
    return None
