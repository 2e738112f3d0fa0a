"""Matching: orders against quotes as the clock moves.

Market orders fill at the ask (buy) / bid (sell), moved against us by ``slippage_bps``; limit
orders fill when the quote is marketable, at the slipped quote capped by the limit (slippage
moves a fill towards its limit, never past it: a limit at the quote fills at its limit). With
``partial_fills`` a fill takes at most the quote's displayed size. Multi-leg orders fill all
legs together when the net of the legs' quotes (positive = debit) is at or better than the
limit, at the slipped legs' net capped by the limit. Each fill's activity records the
slippage and the half spread (quote to mid) it paid, in dollars (``raw["slippage"]``,
``raw["half_spread"]``).
Equity orders trade from the open to the close; option orders until the calendar's option
close; ``day`` orders left open at their cut-off expire there (a multi-leg order at its
earliest leg's).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal

from v28quant.broker.base import Activity, Leg, OrderRequest, OrderStatus
from v28quant.broker.sim.buying_power import BuyingPower
from v28quant.broker.sim.expiry import Expiry
from v28quant.broker.sim.state import (
    ZERO,
    _Collateral,
    _is_option,
    _leg_sign,
    _legs_of,
    _marketable,
    _Pos,
    _SimOrder,
    log,
)
from v28quant.calendar import ET
from v28quant.occ import multiplier, parse_occ
from v28quant.quotes import Quote


class Matching(BuyingPower, Expiry):
    """Catching up with the clock: expiring orders, settling expiries, matching open orders."""

    async def _sync(self) -> None:
        now = self._clock.now()
        if now > self._last_sync:
            for o in list(self._orders.values()):
                if o.is_open and o.req.time_in_force == "day" and o.expires_at <= now:
                    self._finish(o, OrderStatus.EXPIRED, at=o.expires_at)
            for session, close in self._cal.closes_between(self._last_sync, now):
                await self._settle_expiry(session, close)
            self._last_sync = now
        for o in sorted(self._orders.values(), key=lambda o: (o.submitted_at, o.id)):
            if o.is_open and self._tradable(o.req, now):
                if o.status == OrderStatus.ACCEPTED:
                    o.status = OrderStatus.NEW
                try:
                    await self._match(o)
                    self._resting.pop(o.id, None)
                except KeyError as e:  # no quote now: the order rests, as on a halt
                    if o.id not in self._resting:
                        log.warning("sim: no quote for %s; order %s rests", e, o.cid)
                    self._resting[o.id] = f"no quote at {_ny(now)} ({e}): the order rests"

    def _reason(self, o: _SimOrder) -> str | None:
        """Say why open order ``o`` is not filling when it is not the price: closed, no quote."""
        if not o.is_open:
            return None
        now = self._clock.now()
        if not self._tradable(o.req, now):
            return (
                f"the simulated market is closed for this order at {_ny(now)}; it waits for "
                f"the open at {_ny(self._cal.next_open(now))} (expires {_ny(o.expires_at)})"
            )
        return self._resting.get(o.id)

    def _cutoff(self, req: OrderRequest, day: date, close: datetime) -> datetime:
        """When ``req`` stops trading on session ``day`` (equity close ``close``)."""
        if req.kind == "equity":
            return close
        return min(
            self._cal.option_close(occ.underlying, day, expiry=occ.expiry)
            for occ in (parse_occ(leg.occ_symbol) for leg in _legs_of(req))
        )

    def _tradable(self, req: OrderRequest, now: datetime) -> bool:
        """Whether ``req`` can trade at ``now``: in a session, before its cut-off."""
        day = self._cal_day(now)
        times = self._cal.session_times(day)
        return times is not None and times[0] <= now < self._cutoff(req, day, times[1])

    def _expires_at(self, req: OrderRequest, now: datetime) -> datetime:
        """Return the cut-off of the first session (today's or later) that ends after ``now``."""
        day = self._cal_day(now)
        while True:
            times = self._cal.session_times(day)
            if times is not None and (cut := self._cutoff(req, day, times[1])) > now:
                return cut
            day = self._cal.next_session(day)

    async def _match(self, o: _SimOrder) -> None:
        if o.req.kind != "mleg":
            sym, side = o.req.symbol or "", o.req.side or "buy"
            q = await self._quotes.quote(sym)
            quoted = q.ask if side == "buy" else q.bid
            size = Decimal(q.ask_size if side == "buy" else q.bid_size)
            if quoted <= 0 or not _marketable(quoted, o.limit, side == "buy"):
                return
            px = self._slip(quoted, side)
            if o.limit is not None:  # slippage moves a fill towards its limit, never past it
                px = min(px, o.limit) if side == "buy" else max(px, o.limit)
            fill = o.remaining
            if self._cfg.partial_fills and size > 0:
                fill = min(fill, size - self._taken_from(q, side))
            if fill <= 0:
                return  # this quote's displayed size is used up: wait for the next one
            self._take(q, side, fill)
            self._fill(o, [(sym, side, fill, px, q)], px, fill, synthetic=q.synthetic)
            return
        legs = o.req.legs
        quotes = {leg.occ_symbol: await self._quotes.quote(leg.occ_symbol) for leg in legs}
        leg_quotes: dict[str, Decimal] = {}
        units = o.remaining
        for leg in legs:
            q = quotes[leg.occ_symbol]
            leg_quotes[leg.occ_symbol] = q.ask if leg.side == "buy" else q.bid
            if leg.side == "buy" and leg_quotes[leg.occ_symbol] <= 0:
                return  # no offer: nothing to buy
            size = Decimal(q.ask_size if leg.side == "buy" else q.bid_size)
            if self._cfg.partial_fills and size > 0:
                left = size - self._taken_from(q, leg.side)
                units = min(units, (left / leg.ratio).to_integral_value(rounding=ROUND_FLOOR))
        if units <= 0 or not _marketable(_net(legs, leg_quotes), o.limit, True):
            return
        prices = self._slipped_legs(legs, leg_quotes, o.limit)
        net = _net(legs, prices)
        fills = [
            (
                leg.occ_symbol,
                leg.side,
                units * leg.ratio,
                prices[leg.occ_symbol],
                quotes[leg.occ_symbol],
            )
            for leg in legs
        ]
        for leg in legs:
            self._take(quotes[leg.occ_symbol], leg.side, units * leg.ratio)
        synthetic = any(q.synthetic for q in quotes.values())
        self._fill(o, fills, net, units, synthetic=synthetic)

    def _slipped_legs(
        self, legs: Sequence[Leg], quoted: dict[str, Decimal], limit: Decimal | None
    ) -> dict[str, Decimal]:
        """Return each leg's fill price: its quote slipped, the net never past ``limit``.

        Where full slippage would take the net past the limit, every leg takes the same share
        ``a`` of its slippage, with ``a`` the one that puts the net at the limit.
        """
        slipped = {leg.occ_symbol: self._slip(quoted[leg.occ_symbol], leg.side) for leg in legs}
        at_quote, full = _net(legs, quoted), _net(legs, slipped)
        if limit is None or full <= limit or full == at_quote:
            return slipped
        share = (limit - at_quote) / (full - at_quote)
        return {s: quoted[s] + share * (slipped[s] - quoted[s]) for s in slipped}

    def _taken_from(self, q: Quote, side: str) -> Decimal:
        """Shares or contracts already filled against this quote's displayed size on ``side``.

        Displayed size is liquidity at one moment: orders take it once, however often the book is
        read, until the quote changes (a new time, price or size).
        """
        seen = self._taken.get((q.symbol, side))
        return seen[1] if seen is not None and seen[0] == _book_key(q, side) else ZERO

    def _take(self, q: Quote, side: str, qty: Decimal) -> None:
        self._taken[(q.symbol, side)] = (_book_key(q, side), self._taken_from(q, side) + qty)

    def _fill(
        self,
        o: _SimOrder,
        fills: Sequence[tuple[str, str, Decimal, Decimal, Quote]],
        unit_price: Decimal,
        units: Decimal,
        *,
        synthetic: bool,
    ) -> None:
        now = self._clock.now()
        for i, (sym, side, q, px, quote) in enumerate(fills):
            quoted = quote.ask if side == "buy" else quote.bid
            signed = q if side == "buy" else -q
            self._cash -= signed * px * multiplier(sym)
            self._cash -= self._commission(sym, q)
            before = self._positions.get(sym, _Pos()).qty
            self._move_position(sym, signed, px)
            if before < 0 < signed and _is_option(sym):
                self._release_shorts(sym, min(signed, -before))
            leg_oid = o.leg_ids[i] if o.req.kind == "mleg" else o.id
            o.leg_notional[sym] = o.leg_notional.get(sym, ZERO) + q * px
            self._record(
                Activity(
                    id=self._activity_id(now),
                    type="FILL",
                    symbol=sym,
                    qty=signed,
                    price=px,
                    ts=now,
                    order_id=leg_oid,
                    side=side,  # type: ignore[arg-type]
                    # A fill against a model-made quote (replay's synthetic intraday path or
                    # chain) says so, for the journal; and what slippage and half the spread
                    # cost it in dollars, for the backtest's costs (a limit caps the slippage,
                    # quotes on whole cents widen the spread: neither is a flat rate).
                    raw={
                        "parent_order_id": o.id,
                        "client_order_id": o.cid,
                        "synthetic": synthetic,
                        "slippage": str(abs(px - quoted) * q * multiplier(sym)),
                        "half_spread": str(abs(quoted - quote.mid) * q * multiplier(sym)),
                    },
                )
            )
        if o.coll_shorts and (o.coll_cash or o.hold_shares):
            shares_sym = parse_occ(next(iter(o.coll_shorts))).underlying if o.hold_shares else None
            self._collateral.append(
                _Collateral(dict(o.coll_shorts), units, o.coll_cash, shares_sym, o.hold_shares)
            )
        o.filled += units
        o.notional += units * unit_price
        o.updated_at = now
        o.status = OrderStatus.FILLED if o.remaining <= 0 else OrderStatus.PARTIALLY_FILLED

    def _commission(self, sym: str, q: Decimal) -> Decimal:
        if _is_option(sym):
            return self._cfg.option_commission_per_contract * q
        return self._cfg.equity_commission_per_share * q


def _book_key(q: Quote, side: str) -> tuple[datetime, Decimal, int]:
    """Identify the displayed liquidity of ``q`` on ``side``: its time, price and size."""
    if side == "buy":
        return (q.ts, q.ask, q.ask_size)
    return (q.ts, q.bid, q.bid_size)


def _ny(t: datetime) -> str:
    return f"{t.astimezone(ET):%Y-%m-%d %H:%M} New York"


def _net(legs: Sequence[Leg], prices: dict[str, Decimal]) -> Decimal:
    """Signed net per unit of ``legs`` at ``prices`` (debit > 0)."""
    return sum((_leg_sign(leg) * leg.ratio * prices[leg.occ_symbol] for leg in legs), ZERO)
