"""Closed trades (round trips) read back from the journal's fills.

Fills of one engine (its client order ids start ``v28-<engine>-``) are matched per symbol first
in, first out: a fill against the open side closes the oldest open lots, any remainder opens a
new lot. Each closed piece is a :class:`RoundTrip` with its realised P&L (an option contract is
worth 100 shares) and the log move of the price between entry and exit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from v28quant.occ import is_occ


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One closed lot: ``qty`` units opened at ``entry_price`` and closed at ``exit_price``."""

    engine: str
    symbol: str
    side: str
    qty: Decimal
    entry_ts: datetime
    entry_price: Decimal
    exit_ts: datetime
    exit_price: Decimal
    key: str

    @property
    def pnl(self) -> float:
        """Realised P&L in dollars (before commissions)."""
        mult = 100 if is_occ(self.symbol) else 1
        sign = 1 if self.side == "long" else -1
        return float(sign * self.qty * (self.exit_price - self.entry_price) * mult)

    @property
    def move(self) -> float:
        """Log move of the price from entry to exit."""
        return math.log(float(self.exit_price) / float(self.entry_price))

    @property
    def ret(self) -> float:
        """Realised return on the entry notional, in the trade's direction."""
        return self.move if self.side == "long" else -self.move


def engine_of(client_order_id: str | None) -> str | None:
    """Return the engine that owns an order id ``v28-<engine>-...``, or None."""
    if not client_order_id or not client_order_id.startswith("v28-"):
        return None
    return client_order_id.split("-", 2)[1]


def round_trips(fills: Iterable[Mapping[str, Any]], engine: str | None = None) -> list[RoundTrip]:
    """Return the closed round trips of ``fills`` (oldest first), of ``engine`` when given."""
    lots: dict[tuple[str, str], deque[list[Any]]] = {}
    out: list[RoundTrip] = []
    for f in fills:
        eng = engine_of(f.get("client_order_id"))
        if eng is None or (engine is not None and eng != engine):
            continue
        sym, qty, price = str(f["symbol"]), Decimal(f["qty"]), Decimal(f["price"])
        if price <= 0 or qty <= 0:
            continue
        signed = qty if f["side"] == "buy" else -qty
        book = lots.setdefault((eng, sym), deque())
        while signed != 0 and book and (book[0][0] > 0) != (signed > 0):
            lot = book[0]
            take = min(abs(lot[0]), abs(signed))
            side = "long" if lot[0] > 0 else "short"
            key = f"{lot[3]}>{f['fill_id']}"
            out.append(RoundTrip(eng, sym, side, take, lot[2], lot[1], f["ts"], price, key))
            lot[0] += take if lot[0] < 0 else -take
            signed += take if signed < 0 else -take
            if lot[0] == 0:
                book.popleft()
        if signed != 0:
            book.append([signed, price, f["ts"], f["fill_id"]])
    return out


__all__ = ["RoundTrip", "engine_of", "round_trips"]
