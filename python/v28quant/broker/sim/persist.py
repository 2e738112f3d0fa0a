"""Saving and restoring the simulated account, so a restart of keyless paper trading resumes it.

The state (cash, options level, positions, orders, collateral, activities, the simulated time it
has caught up to, the displayed size already taken) is one JSON document, written atomically:
to a temporary file in the same folder, flushed and fsynced, then renamed over the old one (and
the folder fsynced), so a crash leaves either the old state or the new one, never half of one.
Money is kept as decimal strings; times as ISO 8601 with their offset.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from v28quant.broker.base import Activity, OrderRequest, OrderStatus
from v28quant.broker.sim.state import SimState, _Collateral, _Pos, _SimOrder

FORMAT = "v28quant.sim-state/1"


class SimStateError(ValueError):
    """A saved simulator state that cannot be used (unreadable, another format, or from later)."""


def state_path_for(journal_path: str | os.PathLike[str]) -> Path:
    """Return where the simulator keeps its state for the journal at ``journal_path``."""
    p = Path(journal_path)
    return p.with_name(p.name + ".sim-state.json")


def dump_state(sim: SimState) -> dict[str, Any]:
    """Return the JSON-ready state of ``sim`` (see the module docstring)."""
    return {
        "format": FORMAT,
        "clock": sim._last_sync.isoformat(),
        "cash": str(sim._cash),
        "options_level": sim._level,
        "seq": sim._seq,
        "positions": {s: [str(p.qty), str(p.avg)] for s, p in sorted(sim._positions.items())},
        "orders": [_order_out(o) for o in sim._orders.values()],
        "collateral": [
            {
                "shorts": _decs_out(c.shorts),
                "units": str(c.units),
                "cash_per_unit": str(c.cash_per_unit),
                "shares_symbol": c.shares_symbol,
                "shares_per_unit": str(c.shares_per_unit),
            }
            for c in sim._collateral
        ],
        "activities": [_activity_out(a) for a in sim._activities],
        "taken": [
            [sym, side, key[0].isoformat(), str(key[1]), key[2], str(qty)]
            for (sym, side), (key, qty) in sim._taken.items()
        ],
    }


def load_state(sim: SimState, doc: Mapping[str, Any]) -> None:
    """Replace the books of ``sim`` with the saved ``doc``; ``SimStateError`` if unusable."""
    if doc.get("format") != FORMAT:
        raise SimStateError(f"not a simulator state of format {FORMAT}: {doc.get('format')!r}")
    saved = datetime.fromisoformat(doc["clock"])
    now = sim._clock.now()
    if now < saved:
        raise SimStateError(
            f"the clock ({now.isoformat()}) is behind the saved simulator state "
            f"({saved.isoformat()}); start the simulated clock at or after it"
        )
    sim._last_sync = saved
    sim._cash = Decimal(doc["cash"])
    sim._level = int(doc["options_level"])
    sim._seq = int(doc["seq"])
    sim._positions = {s: _Pos(Decimal(q), Decimal(a)) for s, (q, a) in doc["positions"].items()}
    sim._orders = {}
    sim._by_cid = {}
    for row in doc["orders"]:
        o = _order_in(row)
        sim._orders[o.id] = o
        sim._by_cid[o.cid] = o.id
    sim._collateral = [
        _Collateral(
            _decs_in(c["shorts"]),
            Decimal(c["units"]),
            Decimal(c["cash_per_unit"]),
            c["shares_symbol"],
            Decimal(c["shares_per_unit"]),
        )
        for c in doc["collateral"]
    ]
    sim._activities = [_activity_in(a) for a in doc["activities"]]
    sim._taken = {
        (sym, side): ((datetime.fromisoformat(ts), Decimal(px), int(size)), Decimal(qty))
        for sym, side, ts, px, size, qty in doc["taken"]
    }


def read_state(path: Path) -> dict[str, Any] | None:
    """Return the saved document at ``path``, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return cast(dict[str, Any], json.loads(text))
    except json.JSONDecodeError as e:
        raise SimStateError(f"simulator state {path} is not valid JSON: {e}") from None


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut only once the folder is synced
    finally:
        os.close(dir_fd)


def _decs_out(d: Mapping[str, Decimal]) -> dict[str, str]:
    return {k: str(v) for k, v in d.items()}


def _decs_in(d: Mapping[str, str]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in d.items()}


def _opt_dec(x: str | None) -> Decimal | None:
    return None if x is None else Decimal(x)


def _order_out(o: _SimOrder) -> dict[str, Any]:
    return {
        "id": o.id,
        "cid": o.cid,
        "req": o.req.to_dict(),
        "qty": str(o.qty),
        "limit": None if o.limit is None else str(o.limit),
        "status": o.status.value,
        "submitted_at": o.submitted_at.isoformat(),
        "updated_at": o.updated_at.isoformat(),
        "expires_at": o.expires_at.isoformat(),
        "leg_ids": list(o.leg_ids),
        "filled": str(o.filled),
        "notional": str(o.notional),
        "leg_notional": _decs_out(o.leg_notional),
        "hold_cash": str(o.hold_cash),
        "hold_shares": str(o.hold_shares),
        "coll_shorts": _decs_out(o.coll_shorts),
        "coll_cash": str(o.coll_cash),
        "replaced_by": o.replaced_by,
        "replaces": o.replaces,
    }


def _order_in(d: Mapping[str, Any]) -> _SimOrder:
    return _SimOrder(
        id=d["id"],
        cid=d["cid"],
        req=OrderRequest.from_dict(d["req"]),
        qty=Decimal(d["qty"]),
        limit=_opt_dec(d["limit"]),
        status=OrderStatus(d["status"]),
        submitted_at=datetime.fromisoformat(d["submitted_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        expires_at=datetime.fromisoformat(d["expires_at"]),
        leg_ids=tuple(d["leg_ids"]),
        filled=Decimal(d["filled"]),
        notional=Decimal(d["notional"]),
        leg_notional=_decs_in(d["leg_notional"]),
        hold_cash=Decimal(d["hold_cash"]),
        hold_shares=Decimal(d["hold_shares"]),
        coll_shorts=_decs_in(d["coll_shorts"]),
        coll_cash=Decimal(d["coll_cash"]),
        replaced_by=d["replaced_by"],
        replaces=d["replaces"],
    )


def _activity_out(a: Activity) -> dict[str, Any]:
    d = asdict(a)
    d["qty"] = str(a.qty)
    d["price"] = None if a.price is None else str(a.price)
    d["ts"] = a.ts.isoformat()
    return d


def _activity_in(d: Mapping[str, Any]) -> Activity:
    return Activity(
        id=d["id"],
        type=d["type"],
        symbol=d["symbol"],
        qty=Decimal(d["qty"]),
        price=_opt_dec(d["price"]),
        ts=datetime.fromisoformat(d["ts"]),
        order_id=d["order_id"],
        side=d["side"],
        raw=dict(d["raw"]),
    )
