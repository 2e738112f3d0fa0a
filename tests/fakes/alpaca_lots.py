"""Average entry price of the fake Alpaca's positions, as Alpaca's page documents it.

"Position Average Entry Price Calculation"
(https://docs.alpaca.markets/docs/position-average-entry-price-calculation): the weighted
average for intraday positions, compressed FIFO for positions from previous trading days.
Intraday a buy moves the average and a sale leaves it. At the start of each New York day
(Alpaca's beginning-of-day job, before any split of that day) the average becomes that of the
position's daily lots: each day's buys one lot at the average of that day's buys, a sale taking
the oldest day's lot first. 100 bought at 10 one day, 100 at 20 the next and 100 sold the third
average 15 through the third day and 20 from the fourth.

A model of the venue of its own: it shares no code with ``v28quant.venue_lots``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

from fakes.alpaca_common import NY


@dataclass(frozen=True)
class _DayLot:
    """What is left (``qty``, signed) of the shares one ``day`` opened at ``cost`` / ``opened``."""

    day: date
    qty: Decimal
    opened: Decimal
    cost: Decimal


class LotsMixin:
    """Daily lots of ``FakeAlpacaTrading``'s positions (called under its lock)."""

    def _lots_of(self, sym: str) -> list[_DayLot]:
        """Return ``sym``'s lots, one lot older than any when the test set the position by hand.

        A position a test wrote into ``positions`` differs from the one the lots were left at
        (as does one whose lots a split rounded apart from it).
        """
        lots, left_at = self.day_lots.get(sym, ([], None))
        held = self.positions.get(sym)
        if held is None:
            return []
        if left_at != tuple(held) or sum((lot.qty for lot in lots), Decimal(0)) != held[0]:
            qty, avg = held
            return [_DayLot(date.min, qty, qty, qty * avg)]
        return lots

    def _keep_lots(self, sym: str, lots: list[_DayLot]) -> None:
        if sym in self.positions:
            self.day_lots[sym] = (lots, tuple(self.positions[sym]))
        else:
            self.day_lots.pop(sym, None)

    def _lots_after(self, sym: str, signed: Decimal, px: Decimal) -> list[_DayLot]:
        """Return ``sym``'s lots after ``signed`` shares traded at ``px`` now.

        A sale takes the oldest lots first; what opens joins today's lot at today's average.
        """
        lots = self._lots_of(sym)
        held = sum((lot.qty for lot in lots), Decimal(0))
        if held != 0 and (held > 0) != (signed > 0):
            left = []
            for lot in lots:
                taken = signed if abs(signed) < abs(lot.qty) else -lot.qty
                signed -= taken
                if lot.qty + taken != 0:
                    left.append(replace(lot, qty=lot.qty + taken))
            lots = left
        if signed == 0:
            return lots
        today = self.now.astimezone(NY).date()
        if lots and lots[-1].day == today:
            last = lots[-1]
            joined = _DayLot(
                today, last.qty + signed, last.opened + signed, last.cost + signed * px
            )
            return [*lots[:-1], joined]
        return [*lots, _DayLot(today, signed, signed, signed * px)]

    def _start_day(self, day: date) -> None:
        """Alpaca's beginning-of-day job for ``day``: each average becomes its lots' average."""
        if self.lots_day == day:
            return
        self.lots_day = day
        for sym in list(self.day_lots):
            lots = self._lots_of(sym)
            qty = sum((lot.qty for lot in lots), Decimal(0))
            if qty == 0:  # no longer held (an option settled)
                continue
            avg = sum((lot.qty * lot.cost / lot.opened for lot in lots), Decimal(0)) / qty
            self.positions[sym][1] = avg
            self._keep_lots(sym, lots)

    def _split_lots(self, sym: str, ratio: Fraction) -> list[_DayLot]:
        """Return ``sym``'s lots split ``ratio``-for-1: shares x ratio to 1e-9, same cost."""
        num, den = Decimal(ratio.numerator), Decimal(ratio.denominator)
        return [
            replace(
                lot,
                qty=(lot.qty * num / den).quantize(Decimal("1e-9")),
                opened=lot.opened * num / den,
            )
            for lot in self._lots_of(sym)
        ]
