"""Expiry, exercise and assignment of option positions at the close of their expiry day.

Each option position expiring on a session is settled on the underlying's official close: in
the money by >= $0.01, a long is exercised (OPEXC + OPTRD) and a short assigned (OPASN + OPTRD)
into shares at the strike; otherwise it expires (OPEXP).
"""

from __future__ import annotations

from datetime import date, datetime

from v28quant.broker.base import CONTRACT_SIZE, Activity
from v28quant.broker.sim.state import CENT, SimState, _is_option, log
from v28quant.occ import parse_occ


class Expiry(SimState):
    """Settlement of expiring option positions."""

    async def _settle_expiry(self, session: date, close: datetime) -> None:
        for sym in sorted(self._positions):
            if not _is_option(sym):
                continue
            occ = parse_occ(sym)
            # a series dated on a holiday last trades, and settles, the session before
            if self._cal.expiry_session(occ.expiry) != session:
                continue
            try:
                spot = await self._quotes.closing_price(occ.underlying, close)
            except KeyError:
                log.error(
                    "sim expiry: no close for %s on %s; %s left open", occ.underlying, session, sym
                )
                continue
            qty = self._positions[sym].qty
            itm = (spot - occ.strike) if occ.call else (occ.strike - spot)
            self._positions.pop(sym)
            if qty < 0:
                self._release_shorts(sym, -qty)
            if itm >= CENT:
                kind = "OPEXC" if qty > 0 else "OPASN"
                # Long call / short put: receive shares; long put / short call: deliver them.
                shares = CONTRACT_SIZE * qty * (1 if occ.call else -1)
                self._record(
                    Activity(
                        id=self._activity_id(close),
                        type=kind,
                        symbol=sym,
                        qty=-qty,
                        price=None,
                        ts=close,
                        raw={"underlying_close": str(spot)},
                    )
                )
                self._cash -= shares * occ.strike
                self._move_position(occ.underlying, shares, occ.strike)
                self._record(
                    Activity(
                        id=self._activity_id(close),
                        type="OPTRD",
                        symbol=occ.underlying,
                        qty=shares,
                        price=occ.strike,
                        ts=close,
                        side="buy" if shares > 0 else "sell",
                        raw={"option": sym},
                    )
                )
            else:
                self._record(
                    Activity(
                        id=self._activity_id(close),
                        type="OPEXP",
                        symbol=sym,
                        qty=-qty,
                        price=None,
                        ts=close,
                        raw={"underlying_close": str(spot)},
                    )
                )
