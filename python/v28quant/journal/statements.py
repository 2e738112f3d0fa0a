"""SQL statements that several journal writes share (so they can run in one transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from v28quant.broker.base import OrderStatus
from v28quant.journal._codec import dec_text, json_text, ts_text
from v28quant.journal.reservations import Claim
from v28quant.journal.schema import INTENT_STATUS, NOT_SENT_STATUS, REFUSED_STATUS
from v28quant.journal.store import Statement

#: An order's intent returns from these when tried again: it never reached the venue. A venue's
#: rejection is not among them: an order it rejected is never sent again.
ORDER_RETRY_STATUSES = (REFUSED_STATUS, NOT_SENT_STATUS)
#: A replacement's intent also returns from the venue's rejection: the order it replaces kept
#: working, and the venue holds nothing under the ``-r<n>`` id, which the next try asks again.
REPLACEMENT_RETRY_STATUSES = (*ORDER_RETRY_STATUSES, OrderStatus.REJECTED.value)


def fill_stmt(
    fill_id: str,
    client_order_id: str | None,
    symbol: str,
    qty: Any,
    price: Any,
    side: str,
    ts: datetime,
) -> Statement:
    """Insert one execution (a repeat of ``fill_id`` changes nothing)."""
    return (
        "INSERT INTO fills (fill_id, client_order_id, symbol, qty, price, side, ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(fill_id) DO NOTHING",
        (
            fill_id,
            client_order_id,
            symbol,
            dec_text(qty, "qty"),
            dec_text(price, "price"),
            side,
            ts_text(ts),
        ),
    )


def activity_stmt(
    activity_id: str,
    activity_type: str,
    symbol: str | None,
    qty: Any,
    price: Any,
    ts: datetime,
    raw: Mapping[str, Any],
) -> Statement:
    """Insert one account activity (a repeat of ``activity_id`` changes nothing)."""
    return (
        "INSERT INTO activities (activity_id, activity_type, symbol, qty, price, ts, raw) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(activity_id) DO NOTHING",
        (
            activity_id,
            activity_type,
            symbol,
            dec_text(qty, "qty"),
            dec_text(price, "price"),
            ts_text(ts),
            json_text(raw, "raw"),
        ),
    )


def positions_stmts(snapshot: list[Mapping[str, Any]], ts: datetime) -> list[Statement]:
    """Build a snapshot row, then its positions.

    They must run in one transaction, in this order (each position names the snapshot as the
    newest one).
    """
    stmts: list[Statement] = [("INSERT INTO position_snapshots (ts) VALUES (?)", (ts_text(ts),))]
    for i, pos in enumerate(snapshot):
        if "symbol" not in pos or "qty" not in pos:
            raise ValueError(f"snapshot[{i}] needs 'symbol' and 'qty', got {sorted(pos)}")
        stmts.append(
            (
                "INSERT INTO positions (snapshot_id, symbol, qty, data) "
                "VALUES ((SELECT MAX(id) FROM position_snapshots), ?, ?, ?)",
                (
                    str(pos["symbol"]),
                    dec_text(pos["qty"], f"snapshot[{i}].qty"),
                    json_text(pos, f"snapshot[{i}]"),
                ),
            )
        )
    return stmts


def decision_stmt(
    decision_id: str,
    engine: str,
    strategy: str,
    symbol: str,
    action: str,
    reasoning: Mapping[str, Any],
    ts: datetime,
) -> Statement:
    """Insert a decision with its reasoning (a repeat of ``decision_id`` changes nothing)."""
    return (
        "INSERT INTO decisions (decision_id, ts, engine, strategy, symbol, action, reasoning)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(decision_id) DO NOTHING",
        (
            decision_id,
            ts_text(ts),
            engine,
            strategy,
            symbol,
            action,
            json_text(reasoning, "reasoning"),
        ),
    )


def intent_stmts(
    client_order_id: str,
    engine: str,
    strategy: str,
    decision_id: str | None,
    request: Mapping[str, Any],
    ts: datetime,
    request_hash: str | None,
    spend: Claim | None,
    refused: str | None,
    retry_statuses: tuple[str, ...] = ORDER_RETRY_STATUSES,
) -> list[Statement]:
    """Build the intent row (or its return from one of ``retry_statuses``) and its event.

    A return takes the request and spend given now: an order's own request is unchanged (its
    hash was checked), but a replacement tried again after a refusal or a rejection asks a new
    price. A row in any other status is left as it is.
    """
    if not client_order_id:
        raise ValueError("client_order_id must be a non-empty string")
    ts_s, req = ts_text(ts), json_text(request, "request")
    status = INTENT_STATUS if refused is None else REFUSED_STATUS
    return [
        (
            "INSERT INTO orders (client_order_id, engine, strategy, decision_id, request, "
            "intent_ts, status, updated_ts, request_hash, reason, spend_kind, spend_symbol, "
            "spend_amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(client_order_id) DO UPDATE SET status = excluded.status, "
            "reason = excluded.reason, updated_ts = excluded.updated_ts, "
            "request = excluded.request, "
            "request_hash = COALESCE(excluded.request_hash, orders.request_hash), "
            "spend_kind = excluded.spend_kind, spend_symbol = excluded.spend_symbol, "
            "spend_amount = excluded.spend_amount "
            f"WHERE orders.status IN ({', '.join('?' * len(retry_statuses))})",
            (
                client_order_id,
                engine,
                strategy,
                decision_id,
                req,
                ts_s,
                status,
                ts_s,
                request_hash,
                refused,
                None if spend is None else spend.kind,
                None if spend is None else spend.symbol,
                None if spend is None else str(spend.amount),
                *retry_statuses,
            ),
        ),
        (
            "INSERT INTO order_events (client_order_id, status, raw, ts) "
            "SELECT ?, ?, ?, ? WHERE changes() = 1",
            (
                client_order_id,
                status,
                req if refused is None else json_text({"reason": refused}, "raw"),
                ts_s,
            ),
        ),
    ]
