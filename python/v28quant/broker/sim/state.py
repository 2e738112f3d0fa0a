"""Account state of the simulated exchange: configuration, orders, positions, collateral.

``SimState`` holds what every part of ``SimBroker`` reads and writes, with the few operations on
it that all of them share (positions, activities, collateral release).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from v28quant.broker.base import (
    Activity,
    Leg,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
)
from v28quant.calendar import ET, ExchangeCalendar, default_calendar
from v28quant.clock import Clock
from v28quant.occ import is_occ
from v28quant.quotes import QuoteSource

log = logging.getLogger("v28quant.broker.sim")

NS = uuid.UUID("5f0c2d7e-8a3b-4c1d-9e2f-28a1b0c0ffee")
ZERO = Decimal(0)
OPEN = (OrderStatus.ACCEPTED, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Simulated account and execution settings (money in dollars)."""

    cash: Decimal = Decimal(100_000)
    options_level: int = 3
    slippage_bps: Decimal = ZERO
    equity_commission_per_share: Decimal = ZERO
    option_commission_per_contract: Decimal = ZERO
    partial_fills: bool = True
    multiplier: int = 1  # Alpaca's account ``multiplier``: 1 cash, 2 Reg-T margin
    # stocks not lent for a short sale (Alpaca's Trading API shorts only easy-to-borrow ones)
    hard_to_borrow: frozenset[str] = frozenset()

    def __post_init__(self) -> None:  # noqa: D105 - validation only
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
    qty: Decimal = ZERO
    avg: Decimal = ZERO


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
    filled: Decimal = ZERO
    notional: Decimal = ZERO  # sum of fill qty x price (net per unit for mleg)
    leg_notional: dict[str, Decimal] = field(default_factory=dict)
    # Held per unfilled unit: excess equity (cost estimate / multiplier + collateral), shares.
    hold_cash: Decimal = ZERO
    hold_shares: Decimal = ZERO
    coll_shorts: dict[str, Decimal] = field(default_factory=dict)
    coll_cash: Decimal = ZERO
    replaced_by: str | None = None
    replaces: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


class SimState:
    """The simulated account's books and the operations every part of the exchange shares."""

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
        self._resting: dict[str, str] = {}  # order id -> why it rests (no quote), not persisted
        # Displayed size already taken, per (symbol, side): the quote it was taken from, qty.
        self._taken: dict[tuple[str, str], tuple[tuple[datetime, Decimal, int], Decimal]] = {}
        self._last_sync = clock.now()
        self._lock = asyncio.Lock()

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

    def _move_position(self, sym: str, signed: Decimal, px: Decimal) -> None:
        p = self._positions.setdefault(sym, _Pos())
        new = p.qty + signed
        if p.qty == 0 or (p.qty > 0) == (signed > 0):
            p.avg = (p.qty * p.avg + signed * px) / new if new else ZERO
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

    @staticmethod
    def _cal_day(now: datetime) -> date:
        return now.astimezone(ET).date()

    def _slip(self, price: Decimal, side: str) -> Decimal:
        k = self._cfg.slippage_bps / Decimal(10_000)
        return price * (1 + k) if side == "buy" else price * (1 - k)


def _legs_of(req: OrderRequest) -> tuple[Leg, ...]:
    """Return the legs of ``req``: a single-leg option order as a one-leg structure."""
    if req.kind == "option":
        return (Leg(req.symbol or "", 1, req.side or "buy", req.intent or "buy_to_open"),)
    return req.legs


def _is_option(sym: str) -> bool:
    return is_occ(sym)


def _asset_class(sym: str) -> Literal["us_equity", "us_option"]:
    return "us_option" if _is_option(sym) else "us_equity"


def _leg_sign(leg: Leg) -> int:
    return 1 if leg.side == "buy" else -1


def _marketable(price: Decimal, limit: Decimal | None, buy: bool) -> bool:
    if limit is None:
        return True
    return price <= limit if buy else price >= limit
