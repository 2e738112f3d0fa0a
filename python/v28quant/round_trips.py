"""Closed trades (round trips) read back from the journal's fills.

Fills of one engine (its client order ids start ``v28-<engine>-``) are matched per symbol first
in, first out: a fill against the open side closes the oldest open lots, any remainder opens a
new lot. Each closed piece is a :class:`RoundTrip` with its realised P&L (an option contract is
worth 100 shares) and the log move of the price between entry and exit. The matching itself,
:func:`close_fifo` over a queue of :class:`Lot`, is shared with the backtest report
(:mod:`v28quant.backtest.metrics`).
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


@dataclass(slots=True)
class Lot:
    """An open piece of a position: ``qty`` units (> 0 long, < 0 short) bought or sold at ``price``.

    ``opened`` is whatever the caller keeps of the trade that opened it (a fill, an order key).
    """

    qty: Decimal
    price: Decimal
    opened: Any


def close_oldest(lots: deque[Lot], signed: Decimal) -> tuple[Lot, Decimal] | None:
    """Close the oldest lot of ``lots`` as far as a trade of ``signed`` units (> 0 bought) goes.

    Returns the lot and the units closed, signed as the lot was (> 0: a long closed), the lot
    reduced by them and dropped from ``lots`` once spent; None when ``lots`` holds nothing on
    the trade's other side.
    """
    if signed == 0 or not lots or (lots[0].qty > 0) == (signed > 0):
        return None
    lot = lots[0]
    closed = min(abs(lot.qty), abs(signed)) * (1 if lot.qty > 0 else -1)
    lot.qty -= closed
    if lot.qty == 0:
        lots.popleft()
    return lot, closed


def close_fifo(lots: deque[Lot], signed: Decimal) -> tuple[list[tuple[Lot, Decimal]], Decimal]:
    """Close the oldest lots of ``lots`` against a trade of ``signed`` units (> 0 bought).

    Returns the pieces closed (as :func:`close_oldest` gives them, oldest first) and the units
    of the trade left over, which open a new lot on its side.
    """
    pieces = []
    while (piece := close_oldest(lots, signed)) is not None:
        pieces.append(piece)
        signed += piece[1]
    return pieces, signed


def engine_of(client_order_id: str | None) -> str | None:
    """Return the engine that owns an order id ``v28-<engine>-...``, or None."""
    if not client_order_id or not client_order_id.startswith("v28-"):
        return None
    return client_order_id.split("-", 2)[1]


def round_trips(fills: Iterable[Mapping[str, Any]], engine: str | None = None) -> list[RoundTrip]:
    """Return the closed round trips of ``fills`` (oldest first), of ``engine`` when given."""
    lots: dict[tuple[str, str], deque[Lot]] = {}
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
        pieces, rest = close_fifo(book, signed)
        for lot, closed in pieces:
            side = "long" if closed > 0 else "short"
            key = f"{lot.opened['fill_id']}>{f['fill_id']}"
            entry_ts, entry_price = lot.opened["ts"], lot.price
            out.append(
                RoundTrip(eng, sym, side, abs(closed), entry_ts, entry_price, f["ts"], price, key)
            )
        if rest != 0:
            book.append(Lot(rest, price, f))
    return out


__all__ = ["Lot", "RoundTrip", "close_fifo", "close_oldest", "engine_of", "round_trips"]
