"""A stock position's average entry price as Alpaca keeps it: compressed FIFO over daily lots.

Alpaca documents ("Position Average Entry Price Calculation",
https://docs.alpaca.markets/docs/position-average-entry-price-calculation) that it uses the
weighted average for intraday positions and compressed FIFO for positions from previous trading
days: each day's trades are compressed into one lot at the weighted average of the day's
purchases, and a sale takes the oldest day's lot first. A sale therefore moves the average of
what remains: 100 bought at 10 one day and 100 at 20 the next average 15; selling 100 the third
day leaves 100 at 20, not at 15. The page leaves open when: at the sale, or (the weighted average
keeping 15 through the third day, ``weighted_average``) at the next day's start.

Reconcile rebuilds these lots from the journal's trades to read a stock split from the venue's
position (``v28quant.reconcile.find_split``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from v28quant.calendar import ET
from v28quant.round_trips import SPLIT_RATIO, VENUE_QTY


@dataclass(frozen=True, slots=True)
class DayLot:
    """Shares opened on one New York ``day``: ``qty`` of them left (signed, short below zero).

    Its price is the average of the day's opening trades (``cost`` / ``opened``), whatever
    part of it was sold since: a sale takes shares out of a lot at the lot's price.
    """

    day: date
    qty: Decimal
    opened: Decimal
    cost: Decimal

    @property
    def price(self) -> Decimal:
        """Return the lot's entry price per share."""
        return self.cost / self.opened


def snapshot_lot(qty: Decimal, price: Decimal) -> list[DayLot]:
    """Return a position known only by its quantity and average price: one lot older than any."""
    return [DayLot(date.min, qty, qty, qty * price)] if qty != 0 else []


def trade_lots(lots: list[DayLot], when: datetime, signed: Decimal, price: Decimal) -> list[DayLot]:
    """Return ``lots`` after a trade of ``signed`` shares at ``price`` made at ``when``.

    A trade that opens or adds joins the lot of its day; one that reduces takes the oldest lots
    first; one that goes through flat opens the rest as a lot of its own.
    """
    day = when.astimezone(ET).date()
    held = sum((lot.qty for lot in lots), Decimal(0))
    if held == 0 or (held > 0) == (signed > 0):
        return _opened(lots, day, signed, price)
    left = list(lots)
    while left and signed != 0:
        oldest = left[0]
        if abs(signed) < abs(oldest.qty):
            left[0] = replace(oldest, qty=oldest.qty + signed)
            signed = Decimal(0)
        else:
            signed += oldest.qty
            left.pop(0)
    return _opened(left, day, signed, price) if signed != 0 else left


def _opened(lots: list[DayLot], day: date, signed: Decimal, price: Decimal) -> list[DayLot]:
    if lots and lots[-1].day == day:
        last = lots[-1]
        joined = DayLot(day, last.qty + signed, last.opened + signed, last.cost + signed * price)
        return [*lots[:-1], joined]
    return [*lots, DayLot(day, signed, signed, signed * price)]


def split_lots(lots: list[DayLot], ratio: Fraction) -> list[DayLot]:
    """Return ``lots`` after an r-for-1 split: each lot's shares x r at its price / r."""
    num, den = Decimal(ratio.numerator), Decimal(ratio.denominator)
    return [replace(lot, qty=lot.qty * num / den, opened=lot.opened * num / den) for lot in lots]


def average_price(lots: list[DayLot]) -> Decimal:
    """Return the average entry price of ``lots`` (0 when flat)."""
    qty = sum((lot.qty for lot in lots), Decimal(0))
    if qty == 0:
        return Decimal(0)
    return sum((lot.qty * lot.price for lot in lots), Decimal(0)) / qty


def weighted_average(
    qty: Decimal, avg: Decimal, signed: Decimal, price: Decimal
) -> tuple[Decimal, Decimal]:
    """Return ``qty`` shares at ``avg`` after ``signed`` more at ``price``, by weighted average.

    A trade that opens or adds moves the average, one that reduces leaves it, one that goes
    through flat opens the rest at its own price.
    """
    new = qty + signed
    if new == 0:
        return new, Decimal(0)
    if qty == 0 or (qty > 0) == (signed > 0):
        return new, (qty * avg + signed * price) / new
    return new, price if (new > 0) != (qty > 0) else avg


def journal_lots(symbol: str, trades: Iterable[Mapping[str, Any]]) -> list[DayLot]:
    """Return ``symbol``'s lots after the journal's ``trades`` (``round_trips.journal_trades``).

    Its fills and settlement trades move them, its splits re-base them. A transfer (accepted
    positions) leaves the position the venue reported: its quantity at its average entry
    price, the venue's lots behind it being unknown.
    """
    lots: list[DayLot] = []
    for t in trades:
        if t["symbol"] != symbol:
            continue
        if SPLIT_RATIO in t:
            lots = split_lots(lots, Fraction(t[SPLIT_RATIO]))
            continue
        if VENUE_QTY in t:
            lots = [] if t["price"] is None else snapshot_lot(t[VENUE_QTY], t["price"])
            continue
        signed = t["qty"] if t["side"] == "buy" else -t["qty"]
        lots = trade_lots(lots, t["ts"], Decimal(signed), Decimal(t["price"]))
    return lots
