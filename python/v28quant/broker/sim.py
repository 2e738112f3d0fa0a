"""SimBroker: the built-in simulated exchange (paper mode without keys, and backtests).

Orders fill against a ``QuoteSource`` on a ``Clock``; nothing here is random, so a run is
reproducible. Rules follow Alpaca's where they matter to an engine (research/alpaca.md §3, §6):

- Market orders fill at the ask (buy) / bid (sell), moved against us by ``slippage_bps``; limit
  orders fill when marketable, at the (slipped) quote capped by the limit. With
  ``partial_fills`` a fill takes at most the quote's displayed size; the rest waits for the next
  ``process()``. Orders sent while the market is closed are ``accepted`` and fill after the open.
- Multi-leg orders fill all legs together, at the net of the legs' quotes, when the net is at or
  better than the limit (positive = debit, negative = credit).
- Sessions, holidays and cut-offs come from ``v28quant.calendar``: equity orders trade from
  the open to the close; option orders until the calendar's option close (16:15 for the late-
  close ETFs it lists, except on the series' expiry day, when it is the equity close). ``day``
  orders left open at their cut-off expire there (a multi-leg order at its earliest leg's).
- A cash account by default (``SimConfig.multiplier=1``): buying power is cash less what open
  orders and option collateral hold, and stock cannot be sold short. ``multiplier=2`` is a
  Reg-T-like margin account, as Alpaca paper gives for marginable stocks: the excess equity is
  cash + 50 % of long stock - 150 % of short stock (the short's proceeds plus 50 %) less what
  orders and option collateral hold; equity buying power is twice that (overnight; no 4x
  intraday), and short sales of stock are allowed against it (an order may not take a long
  through zero into a short). Options are not marginable: premiums and collateral come out of
  the excess itself (``options_buying_power``). No margin interest or borrow fees. Options
  levels as Alpaca's: 1 covered calls (shares held) and
  cash-secured puts (strike x 100 held), 2 long options, 3 multi-leg orders, whose worst payoff
  at expiry (over all prices of the underlying) is held; structures with unlimited loss are
  refused. Calendars are assessed as if all legs expired together (intrinsic values).
- At the close of an expiry day each option position is settled on the underlying's official
  close: in the money by >= $0.01, a long is exercised (OPEXC + OPTRD) and a short assigned
  (OPASN + OPTRD) into shares at the strike; otherwise it expires (OPEXP).

Time moves only with the clock: every call first catches up on the session closes passed since
the last call (expiring day orders, settling options) and then matches open orders if the market
is open. ``process()`` does just that, for a runner stepping a simulated clock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from v28quant.broker.base import (
    CONTRACT_SIZE,
    Account,
    Activity,
    InsufficientBuyingPower,
    Leg,
    MarketClock,
    OptionsLevelError,
    Order,
    OrderNotCancelable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    Position,
    TradingDay,
    replacement_client_order_id,
)
from v28quant.calendar import ET, ExchangeCalendar, default_calendar
from v28quant.clock import Clock
from v28quant.occ import is_occ, parse_occ
from v28quant.quotes import Quote, QuoteSource

log = logging.getLogger(__name__)

_NS = uuid.UUID("5f0c2d7e-8a3b-4c1d-9e2f-28a1b0c0ffee")
_ZERO = Decimal(0)
_OPEN = (OrderStatus.ACCEPTED, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Simulated account and execution settings (money in dollars)."""

    cash: Decimal = Decimal(100_000)
    options_level: int = 3
    slippage_bps: Decimal = _ZERO
    equity_commission_per_share: Decimal = _ZERO
    option_commission_per_contract: Decimal = _ZERO
    partial_fills: bool = True
    multiplier: int = 1  # Alpaca's account ``multiplier``: 1 cash, 2 Reg-T margin

    def __post_init__(self) -> None:
        if self.multiplier not in (1, 2):
            raise ValueError(
                f"SimConfig.multiplier must be 1 (cash) or 2 (margin), got {self.multiplier}"
            )
        if self.cash < 0:
            raise ValueError(f"SimConfig.cash must be >= 0, got {self.cash}")
        if self.options_level not in (0, 1, 2, 3):
            raise ValueError(f"SimConfig.options_level must be 0-3, got {self.options_level}")
        if self.slippage_bps < 0:
            raise ValueError(f"SimConfig.slippage_bps must be >= 0, got {self.slippage_bps}")


@dataclass(slots=True)
class _Pos:
    qty: Decimal = _ZERO
    avg: Decimal = _ZERO


@dataclass(slots=True)
class _Collateral:
    """What a filled short-option structure holds until its short legs are gone."""

    shorts: dict[str, Decimal]  # short option contracts per unit, by symbol
    units: Decimal
    cash_per_unit: Decimal
    shares_symbol: str | None
    shares_per_unit: Decimal


@dataclass(slots=True)
class _SimOrder:
    id: str
    cid: str
    req: OrderRequest
    qty: Decimal
    limit: Decimal | None
    status: OrderStatus
    submitted_at: datetime
    updated_at: datetime
    expires_at: datetime
    leg_ids: tuple[str, ...]
    filled: Decimal = _ZERO
    notional: Decimal = _ZERO  # sum of fill qty x price (net per unit for mleg)
    leg_notional: dict[str, Decimal] = field(default_factory=dict)
    # Held per unfilled unit: excess equity (cost estimate / multiplier + collateral), shares.
    hold_cash: Decimal = _ZERO
    hold_shares: Decimal = _ZERO
    coll_shorts: dict[str, Decimal] = field(default_factory=dict)
    coll_cash: Decimal = _ZERO
    replaced_by: str | None = None
    replaces: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN


class SimBroker:
    """In-process simulated exchange implementing ``Broker``.

    Parameters
    ----------
    quotes
        Where prices come from (replay data in backtests).
    clock
        The shared clock (a ``SimClock`` in backtests).
    config
        Starting cash, options level, slippage, commissions, partial fills.
    calendar
        Sessions and option cut-offs (default: the shared NYSE calendar).
    """

    name = "sim"

    def __init__(
        self,
        quotes: QuoteSource,
        clock: Clock,
        config: SimConfig | None = None,
        calendar: ExchangeCalendar | None = None,
    ) -> None:
        self._quotes = quotes
        self._clock = clock
        self._cal = calendar or default_calendar()
        self._cfg = config or SimConfig()
        self._cash = Decimal(self._cfg.cash)
        self._level = self._cfg.options_level
        self._positions: dict[str, _Pos] = {}
        self._orders: dict[str, _SimOrder] = {}
        self._by_cid: dict[str, str] = {}
        self._activities: list[Activity] = []
        self._collateral: list[_Collateral] = []
        self._seq = 0
        self._last_sync = clock.now()
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ protocol

    async def account(self) -> Account:
        async with self._lock:
            await self._sync()
            longs, shorts = _ZERO, _ZERO
            for sym, p in self._positions.items():
                mv = p.qty * await self._mark(sym, p) * _mult(sym)
                if mv >= 0:
                    longs += mv
                else:
                    shorts += mv
            excess = await self._excess()
            equity = self._cash + longs + shorts
            return Account(
                id="sim-account",
                status="ACTIVE",
                cash=self._cash,
                equity=equity,
                buying_power=excess * self._cfg.multiplier,
                options_buying_power=excess,
                options_level=self._level,
                portfolio_value=equity,
                long_market_value=longs,
                short_market_value=shorts,
            )

    async def positions(self) -> list[Position]:
        async with self._lock:
            await self._sync()
            out = []
            for sym in sorted(self._positions):
                p = self._positions[sym]
                price = await self._mark(sym, p)
                m = _mult(sym)
                out.append(
                    Position(
                        symbol=sym,
                        qty=p.qty,
                        avg_entry_price=p.avg,
                        asset_class=_asset_class(sym),
                        market_value=p.qty * price * m,
                        cost_basis=p.qty * p.avg * m,
                        current_price=price,
                    )
                )
            return out

    async def orders(self, status: Literal["open", "closed", "all"] = "open") -> list[Order]:
        if status not in ("open", "closed", "all"):
            raise ValueError(f"status must be 'open', 'closed' or 'all', got {status!r}")
        async with self._lock:
            await self._sync()
            sel = [
                o
                for o in self._orders.values()
                if status == "all" or (o.is_open == (status == "open"))
            ]
            sel.sort(key=lambda o: (o.submitted_at, o.id), reverse=True)
            return [self._view(o) for o in sel]

    async def order_by_client_id(self, client_order_id: str) -> Order | None:
        async with self._lock:
            await self._sync()
            oid = self._by_cid.get(client_order_id)
            return None if oid is None else self._view(self._orders[oid])

    async def submit(self, request: OrderRequest) -> Order:
        async with self._lock:
            await self._sync()
            existing = self._by_cid.get(request.client_order_id)
            if existing is not None:  # idempotent: same decision, same order
                return self._view(self._orders[existing])
            o = await self._admit(
                request, request.client_order_id, request.qty, request.limit_price
            )
            if self._tradable(o.req, self._clock.now()):
                o.status = OrderStatus.NEW
                await self._match(o)
            return self._view(o)

    async def cancel(self, order_id: str) -> None:
        async with self._lock:
            await self._sync()
            o = self._get(order_id)
            if not o.is_open:
                raise OrderNotCancelable(
                    f"order is not cancelable (status {o.status.value})", status=422, code=42210000
                )
            self._finish(o, OrderStatus.CANCELED)

    async def replace(
        self, order_id: str, qty: Decimal | int | None = None, limit_price: Decimal | None = None
    ) -> Order:
        async with self._lock:
            await self._sync()
            old = self._get(order_id)
            if not old.is_open:
                raise OrderNotCancelable(
                    f"order is not replaceable (status {old.status.value})",
                    status=422,
                    code=42210000,
                )
            new_qty = old.qty if qty is None else Decimal(qty)
            new_limit = old.limit if limit_price is None else Decimal(limit_price)
            if new_qty <= 0:
                raise OrderRejected(f"qty must be > 0, got {new_qty}", status=422)
            if old.req.type == "market" and limit_price is not None:
                raise OrderRejected("a market order takes no limit_price", status=422)
            # The old order stops holding before the new one is checked, as at Alpaca.
            prior = old.status
            self._finish(old, OrderStatus.REPLACED)
            try:
                new = await self._admit(
                    old.req, replacement_client_order_id(old.cid), new_qty, new_limit
                )
            except Exception:
                old.status = prior
                raise
            old.replaced_by, new.replaces = new.id, old.id
            if self._tradable(new.req, self._clock.now()):
                new.status = OrderStatus.NEW
                await self._match(new)
            return self._view(new)

    async def clock(self) -> MarketClock:
        now = self._clock.now()
        return MarketClock(
            ts=now,
            is_open=self._cal.is_open(now),
            next_open=self._cal.next_open(now),
            next_close=self._cal.next_close(now),
        )

    async def calendar(self, start: date, end: date) -> list[TradingDay]:
        out = []
        for d in self._cal.sessions(start, end):
            s = self._cal.session(d)
            out.append(TradingDay(d, s.open, s.close))
        return out

    async def activities(self, since: datetime | None = None) -> list[Activity]:
        async with self._lock:
            await self._sync()
            return [a for a in self._activities if since is None or a.ts > since]

    async def aclose(self) -> None:
        return None

    async def process(self) -> None:
        """Catch up with the clock: expire, settle and match as of now."""
        async with self._lock:
            await self._sync()

    # ------------------------------------------------------------------ admission

    async def _admit(
        self, req: OrderRequest, cid: str, qty: Decimal, limit: Decimal | None
    ) -> _SimOrder:
        """Validate ``req`` as Alpaca would and store it; raises ``OrderRejected`` & co."""
        now = self._clock.now()
        for leg in _legs_of(req):
            occ = parse_occ(leg.occ_symbol)
            last = self._cal.expiry_session(occ.expiry)
            if now >= self._cal.option_close(occ.underlying, last, expiry=last):
                raise OrderRejected(
                    f"asset {leg.occ_symbol} is not tradable (expired)", status=422, code=42210000
                )
        if req.kind == "equity":
            hold_cash, hold_shares = await self._check_equity(req, qty, limit)
            shorts: dict[str, Decimal] = {}
            coll_cash = _ZERO
        else:
            hold_cash, hold_shares, shorts, coll_cash = await self._check_options(
                _legs_of(req), qty, limit, multileg=req.kind == "mleg"
            )
        n = self._next()
        oid = str(uuid.uuid5(_NS, f"order-{n}"))
        o = _SimOrder(
            id=oid,
            cid=cid,
            req=req,
            qty=qty,
            limit=limit,
            status=OrderStatus.ACCEPTED,
            submitted_at=now,
            updated_at=now,
            expires_at=self._expires_at(req, now),
            leg_ids=tuple(str(uuid.uuid5(_NS, f"order-{n}-leg-{i}")) for i in range(len(req.legs))),
            hold_cash=hold_cash,
            hold_shares=hold_shares,
            coll_shorts=shorts,
            coll_cash=coll_cash,
        )
        self._orders[oid] = o
        self._by_cid[cid] = oid
        return o

    async def _quote(self, symbol: str) -> Quote:
        try:
            return await self._quotes.quote(symbol)
        except KeyError:
            raise OrderRejected(
                f"asset {symbol} is not tradable (no quote)", status=422, code=42210000
            ) from None

    async def _check_equity(
        self, req: OrderRequest, qty: Decimal, limit: Decimal | None
    ) -> tuple[Decimal, Decimal]:
        sym = req.symbol or ""
        q = await self._quote(sym)
        m = self._cfg.multiplier
        if req.side == "sell":
            avail = self._shares_available(sym)
            if m == 1 or avail > 0 or self._positions.get(sym, _Pos()).qty > 0:
                if qty > avail:
                    raise InsufficientBuyingPower(
                        f"insufficient qty available for order (requested: {qty}, "
                        f"available: {max(avail, _ZERO)})",
                        status=403,
                        code=40310000,
                    )
                return _ZERO, Decimal(1)
        # A buy, or (margin account, no long shares) a short sale: both use buying power.
        side = req.side or "buy"
        price = limit if limit is not None else self._slip(q.ask if side == "buy" else q.bid, side)
        per_share = price + self._cfg.equity_commission_per_share
        need, bp = per_share * qty, await self._excess() * m
        if need > bp:
            raise InsufficientBuyingPower(
                f"insufficient buying power (need {need:.2f}, have {bp:.2f})",
                status=403,
                code=40310000,
            )
        return per_share / m, _ZERO

    async def _check_options(
        self, legs: tuple[Leg, ...], qty: Decimal, limit: Decimal | None, multileg: bool
    ) -> tuple[Decimal, Decimal, dict[str, Decimal], Decimal]:
        """Options-level, position and buying-power checks. Returns what one unfilled unit
        holds (cash, shares) and the collateral a filled unit keeps (short legs, cash)."""
        if self._level == 0:
            raise OptionsLevelError(
                "account is not approved for options trading", status=403, code=40310000
            )
        if multileg and self._level < 3:
            raise OptionsLevelError(
                f"multi-leg orders need options level 3, account has {self._level}",
                status=403,
                code=40310000,
            )
        quotes = {leg.occ_symbol: await self._quote(leg.occ_symbol) for leg in legs}
        for leg in legs:
            if leg.intent.endswith("_to_close"):
                have = self._positions.get(leg.occ_symbol, _Pos()).qty
                need_sign = 1 if leg.intent == "sell_to_close" else -1
                closing = self._closing_held(leg.occ_symbol, leg.side)
                avail = have * need_sign - closing
                if avail < qty * leg.ratio:
                    raise InsufficientBuyingPower(
                        f"insufficient qty available for order (requested: {qty * leg.ratio}, "
                        f"available: {max(avail, _ZERO)}, symbol: {leg.occ_symbol})",
                        status=403,
                        code=40310000,
                    )
        opening = [leg for leg in legs if leg.intent.endswith("_to_open")]
        shorts = {leg.occ_symbol: Decimal(leg.ratio) for leg in opening if leg.side == "sell"}
        # Net premium per unit at the current quotes (debit > 0), or the limit if given.
        net = sum(
            (
                _leg_sign(leg)
                * leg.ratio
                * (quotes[leg.occ_symbol].ask if leg.side == "buy" else quotes[leg.occ_symbol].bid)
                for leg in legs
            ),
            _ZERO,
        )
        if limit is None:
            price = net
        else:  # a single-leg limit is a price per share; a sell receives it
            price = limit if multileg else _leg_sign(legs[0]) * limit
        debit = max(price, _ZERO) * CONTRACT_SIZE
        coll_cash, shares_symbol, shares_per_unit = _ZERO, None, _ZERO
        if multileg:
            coll_cash = _worst_payoff_loss(opening)
        elif opening:
            leg = opening[0]
            occ = parse_occ(leg.occ_symbol)
            if leg.side == "buy" and self._level < 2:
                raise OptionsLevelError(
                    f"buying options needs options level 2, account has {self._level}",
                    status=403,
                    code=40310000,
                )
            if leg.side == "sell" and occ.call:
                shares_symbol, shares_per_unit = occ.underlying, CONTRACT_SIZE
                avail = self._shares_available(occ.underlying)
                if avail < CONTRACT_SIZE * qty:
                    raise InsufficientBuyingPower(
                        f"insufficient underlying qty available for covered call (required: "
                        f"{CONTRACT_SIZE * qty}, available: {avail})",
                        status=403,
                        code=40310000,
                    )
            elif leg.side == "sell":
                coll_cash = occ.strike * CONTRACT_SIZE
        commission = self._cfg.option_commission_per_contract * sum(
            (Decimal(leg.ratio) for leg in legs), _ZERO
        )
        per_unit = debit + coll_cash + commission
        excess = await self._excess()
        if per_unit * qty > excess:
            raise InsufficientBuyingPower(
                f"insufficient options buying power (need {per_unit * qty:.2f}, have {excess:.2f})",
                status=403,
                code=40310000,
            )
        if shares_symbol is not None:
            shorts = {legs[0].occ_symbol: Decimal(1)}
            return debit + commission, shares_per_unit, shorts, coll_cash
        return debit + coll_cash + commission, _ZERO, shorts, coll_cash

    async def _excess(self) -> Decimal:
        """Excess equity: what new positions may use (x multiplier for stock)."""
        held = sum((o.remaining * o.hold_cash for o in self._orders.values() if o.is_open), _ZERO)
        coll = sum((c.units * c.cash_per_unit for c in self._collateral), _ZERO)
        excess = self._cash - held - coll
        if self._cfg.multiplier == 1:
            return excess  # a cash account: long stock is fully paid, no shorts
        for sym, p in self._positions.items():
            if _is_option(sym):
                continue
            mv = p.qty * await self._mark(sym, p)
            # Reg T initial margin: 50 % of a long; 150 % of a short (proceeds + 50 %).
            excess += mv / 2 if mv > 0 else mv * Decimal("1.5")
        return excess

    def _shares_available(self, symbol: str) -> Decimal:
        have = self._positions.get(symbol, _Pos()).qty
        held = _ZERO
        for o in self._orders.values():
            if not o.is_open or not o.hold_shares:
                continue
            if o.req.kind == "equity" and o.req.symbol == symbol:
                held += o.remaining
            elif o.req.kind == "option" and parse_occ(o.req.symbol or "").underlying == symbol:
                held += o.remaining * o.hold_shares
        held += sum(
            (c.units * c.shares_per_unit for c in self._collateral if c.shares_symbol == symbol),
            _ZERO,
        )
        return have - held

    def _closing_held(self, symbol: str, side: str) -> Decimal:
        """Contracts of ``symbol`` already being closed by open orders on ``side``."""
        total = _ZERO
        for o in self._orders.values():
            if not o.is_open:
                continue
            for leg in _legs_of(o.req):
                if (
                    leg.occ_symbol == symbol
                    and leg.side == side
                    and leg.intent.endswith("_to_close")
                ):
                    total += o.remaining * leg.ratio
        return total

    # ------------------------------------------------------------------ matching

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
                except KeyError as e:  # no quote now: the order rests, as on a halt
                    log.warning("sim: no quote for %s; order %s rests", e, o.cid)

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
        """The cut-off of the first session (today's or later) that ends after ``now``."""
        day = self._cal_day(now)
        while True:
            times = self._cal.session_times(day)
            if times is not None and (cut := self._cutoff(req, day, times[1])) > now:
                return cut
            day = self._cal.next_session(day)

    @staticmethod
    def _cal_day(now: datetime) -> date:
        return now.astimezone(ET).date()

    def _slip(self, price: Decimal, side: str) -> Decimal:
        k = self._cfg.slippage_bps / Decimal(10_000)
        return price * (1 + k) if side == "buy" else price * (1 - k)

    async def _match(self, o: _SimOrder) -> None:
        if o.req.kind != "mleg":
            sym, side = o.req.symbol or "", o.req.side or "buy"
            q = await self._quotes.quote(sym)
            px = self._slip(q.ask if side == "buy" else q.bid, side)
            size = Decimal(q.ask_size if side == "buy" else q.bid_size)
            if px <= 0 or not _marketable(px, o.limit, side == "buy"):
                return
            if o.limit is not None:  # a limit fills at the limit or better
                px = min(px, o.limit) if side == "buy" else max(px, o.limit)
            fill = o.remaining
            if self._cfg.partial_fills and size > 0:
                fill = min(fill, size)
            self._fill(o, [(sym, side, fill, px)], px, fill)
            return
        legs = o.req.legs
        quotes = {leg.occ_symbol: await self._quotes.quote(leg.occ_symbol) for leg in legs}
        prices: dict[str, Decimal] = {}
        units = o.remaining
        for leg in legs:
            q = quotes[leg.occ_symbol]
            raw = q.ask if leg.side == "buy" else q.bid
            if leg.side == "buy" and raw <= 0:
                return  # no offer: nothing to buy
            prices[leg.occ_symbol] = self._slip(raw, leg.side)
            size = Decimal(q.ask_size if leg.side == "buy" else q.bid_size)
            if self._cfg.partial_fills and size > 0:
                units = min(units, (size / leg.ratio).to_integral_value(rounding=ROUND_FLOOR))
        net = sum((_leg_sign(leg) * leg.ratio * prices[leg.occ_symbol] for leg in legs), _ZERO)
        if units <= 0 or not _marketable(net, o.limit, True):
            return
        fills = [
            (leg.occ_symbol, leg.side, units * leg.ratio, prices[leg.occ_symbol]) for leg in legs
        ]
        self._fill(o, fills, net, units)

    def _fill(
        self,
        o: _SimOrder,
        fills: Sequence[tuple[str, str, Decimal, Decimal]],
        unit_price: Decimal,
        units: Decimal,
    ) -> None:
        now = self._clock.now()
        for i, (sym, side, q, px) in enumerate(fills):
            signed = q if side == "buy" else -q
            self._cash -= signed * px * _mult(sym)
            self._cash -= self._commission(sym, q)
            before = self._positions.get(sym, _Pos()).qty
            self._move_position(sym, signed, px)
            if before < 0 < signed and _is_option(sym):
                self._release_shorts(sym, min(signed, -before))
            leg_oid = o.leg_ids[i] if o.req.kind == "mleg" else o.id
            o.leg_notional[sym] = o.leg_notional.get(sym, _ZERO) + q * px
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
                    raw={"parent_order_id": o.id, "client_order_id": o.cid},
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

    def _move_position(self, sym: str, signed: Decimal, px: Decimal) -> None:
        p = self._positions.setdefault(sym, _Pos())
        new = p.qty + signed
        if p.qty == 0 or (p.qty > 0) == (signed > 0):
            p.avg = (p.qty * p.avg + signed * px) / new if new else _ZERO
        elif (new > 0) != (p.qty > 0) and new != 0:
            p.avg = px  # flipped through zero: the remainder was opened at this price
        p.qty = new
        if p.qty == 0:
            del self._positions[sym]

    def _release_shorts(self, sym: str, contracts: Decimal) -> None:
        """Short contracts of ``sym`` are gone: free the collateral they held."""
        for c in self._collateral:
            per = c.shorts.get(sym)
            if not per or contracts <= 0:
                continue
            u = min(c.units, contracts / per)
            c.units -= u
            contracts -= u * per
        self._collateral = [c for c in self._collateral if c.units > 0]

    def _finish(self, o: _SimOrder, status: OrderStatus, at: datetime | None = None) -> None:
        o.status = status
        o.updated_at = at or self._clock.now()

    # ------------------------------------------------------------------ expiry

    async def _settle_expiry(self, session: date, close: datetime) -> None:
        for sym in sorted(self._positions):
            if not _is_option(sym):
                continue
            occ = parse_occ(sym)
            if occ.expiry != session:
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
            if itm >= _CENT:
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

    # ------------------------------------------------------------------ helpers

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _activity_id(self, ts: datetime) -> str:
        return f"{ts:%Y%m%d%H%M%S%f}::{self._next():08d}"

    def _record(self, a: Activity) -> None:
        self._activities.append(a)
        log.info("sim %s %s qty=%s price=%s", a.type, a.symbol, a.qty, a.price)

    def _get(self, order_id: str) -> _SimOrder:
        o = self._orders.get(order_id)
        if o is None:
            raise OrderNotFound(f"order not found: {order_id}", status=404, code=40410000)
        return o

    async def _mark(self, sym: str, p: _Pos) -> Decimal:
        try:
            return (await self._quotes.quote(sym)).mid
        except KeyError:
            return p.avg

    def _view(self, o: _SimOrder) -> Order:
        avg = (o.notional / o.filled) if o.filled else None
        legs: tuple[Order, ...] = ()
        if o.req.kind == "mleg":
            legs = tuple(
                Order(
                    id=lid,
                    client_order_id=o.cid,
                    symbol=leg.occ_symbol,
                    qty=o.qty * leg.ratio,
                    filled_qty=o.filled * leg.ratio,
                    filled_avg_price=(o.leg_notional[leg.occ_symbol] / (o.filled * leg.ratio))
                    if o.filled
                    else None,
                    side=leg.side,
                    type=None,
                    limit_price=None,
                    status=o.status,
                    order_class="mleg",
                    asset_class="us_option",
                    intent=leg.intent,
                    ratio=leg.ratio,
                    submitted_at=o.submitted_at,
                    updated_at=o.updated_at,
                )
                for lid, leg in zip(o.leg_ids, o.req.legs, strict=True)
            )
        return Order(
            id=o.id,
            client_order_id=o.cid,
            symbol=o.req.symbol,
            qty=o.qty,
            filled_qty=o.filled,
            filled_avg_price=avg,
            side=o.req.side,
            type=None if o.req.kind == "mleg" else o.req.type,
            limit_price=o.limit,
            status=o.status,
            order_class="mleg" if o.req.kind == "mleg" else "simple",
            asset_class=None if o.req.kind == "mleg" else o.req.asset_class,
            intent=o.req.intent,
            time_in_force=o.req.time_in_force,
            legs=legs,
            submitted_at=o.submitted_at,
            updated_at=o.updated_at,
            replaced_by=o.replaced_by,
            replaces=o.replaces,
        )

    # Test and runner conveniences --------------------------------------------------

    def set_options_level(self, level: int) -> None:
        """Change the account's options level (as Alpaca's account configuration does)."""
        if level not in (0, 1, 2, 3):
            raise ValueError(f"options level must be 0-3, got {level}")
        self._level = level


def _legs_of(req: OrderRequest) -> tuple[Leg, ...]:
    """A single-leg option order seen as a one-leg structure (equity orders have none)."""
    if req.kind == "option":
        return (Leg(req.symbol or "", 1, req.side or "buy", req.intent or "buy_to_open"),)
    return req.legs


def _is_option(sym: str) -> bool:
    return is_occ(sym)


def _mult(sym: str) -> Decimal:
    return CONTRACT_SIZE if _is_option(sym) else Decimal(1)


def _asset_class(sym: str) -> Literal["us_equity", "us_option"]:
    return "us_option" if _is_option(sym) else "us_equity"


def _leg_sign(leg: Leg) -> int:
    return 1 if leg.side == "buy" else -1


def _marketable(price: Decimal, limit: Decimal | None, buy: bool) -> bool:
    if limit is None:
        return True
    return price <= limit if buy else price >= limit


def _worst_payoff_loss(legs: list[Leg]) -> Decimal:
    """Largest loss at expiry (dollars per unit, premiums aside) of option legs, over every
    underlying price; ``InsufficientBuyingPower`` if it is unbounded (net short calls).

    The payoff is piecewise linear in the underlying price S with kinks at the strikes, so its
    minimum over S >= 0 is at S = 0, at a strike, or at S -> infinity (slope = net calls held).
    """
    if not legs:
        return _ZERO
    parsed = [(parse_occ(leg.occ_symbol), _leg_sign(leg) * leg.ratio) for leg in legs]
    if sum((n for occ, n in parsed if occ.call), 0) < 0:
        raise InsufficientBuyingPower(
            "uncovered short calls: unlimited loss is not permitted", status=403, code=40310000
        )

    def payoff(s: Decimal) -> Decimal:
        return sum(
            (
                n * (max(s - occ.strike, _ZERO) if occ.call else max(occ.strike - s, _ZERO))
                for occ, n in parsed
            ),
            _ZERO,
        )

    worst = min(payoff(s) for s in [_ZERO, *(occ.strike for occ, _ in parsed)])
    return max(-worst, _ZERO) * CONTRACT_SIZE


__all__ = ["SimBroker", "SimConfig"]
