"""SQL statements that several journal writes share (so they can run in one transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from v28quant.journal._codec import dec_text, json_text, ts_text
from v28quant.journal.store import Statement


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
    """A snapshot row, then its positions.

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
