"""``SimBroker``: the ``Broker`` protocol over the simulated exchange's parts."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from v28quant.broker.base import (
    Account,
    Activity,
    Asset,
    MarketClock,
    Order,
    OrderNotCancelable,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    Position,
    TradingDay,
    replacement_client_order_id,
)
from v28quant.broker.sim.matching import Matching
from v28quant.broker.sim.persist import dump_state, load_state, read_state, write_atomically
from v28quant.broker.sim.state import (
    NS,
    ZERO,
    SimConfig,
    _asset_class,
    _legs_of,
    _SimOrder,
    log,
)
from v28quant.calendar import ExchangeCalendar
from v28quant.clock import Clock
from v28quant.occ import multiplier, parse_occ
from v28quant.quotes import QuoteSource


class SimBroker(Matching):
    """In-process simulated exchange implementing ``Broker``.

    Parameters
    ----------
    quotes
        Where prices come from (replay data in backtests).
    clock
        The shared clock (a ``SimClock`` in backtests). Default: the clock the quote source runs
        on (a ``ReplayFeed``'s simulated clock); a source without one needs ``clock=``, since
        the simulator never falls back to wall time against recorded data.
    config
        Starting cash, options level, slippage, commissions, partial fills.
    calendar
        Sessions and option cut-offs (default: the shared NYSE calendar).
    state_path
        Where to keep the account between runs (``persist.state_path_for(journal)``). When the
        file exists the account is restored from it; after every call that changed the books it
        is rewritten atomically. None keeps the account in memory only.
    """

    name = "sim"

    def __init__(
        self,
        quotes: QuoteSource,
        clock: Clock | None = None,
        config: SimConfig | None = None,
        calendar: ExchangeCalendar | None = None,
        *,
        state_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(quotes, _one_clock(quotes, clock), config, calendar)
        self._state_path: Path | None = None
        self._saved = ""
        if state_path is not None:
            self.keep_state(state_path)

    def keep_state(self, state_path: str | os.PathLike[str]) -> None:
        """Keep the account in ``state_path`` from now on, restored from it if it exists.

        Raises ``ValueError`` once the account has traded (its books would be overwritten) and
        ``SimStateError`` for a saved state it cannot use.
        """
        if self._orders or self._activities:
            raise ValueError("SimBroker.keep_state: the account has already traded")
        path = Path(state_path)
        doc = read_state(path)
        if doc is not None:
            load_state(self, doc)
            log.warning(
                "sim: restored the simulated account from %s (cash %s, %d positions, "
                "%d open orders, as of %s)",
                path,
                self._cash,
                len(self._positions),
                sum(o.is_open for o in self._orders.values()),
                self._last_sync.isoformat(),
            )
        self._state_path = path
        self._saved = self._fingerprint()

    @staticmethod
    def saved_clock(state_path: str | os.PathLike[str]) -> datetime | None:
        """Return the simulated time a saved state had reached, or None if nothing is saved.

        A restart starts its simulated clock there, so the account and the market resume where
        they stopped.
        """
        doc = read_state(Path(state_path))
        return None if doc is None else datetime.fromisoformat(doc["clock"])

    @asynccontextmanager
    async def _step(self) -> AsyncIterator[None]:
        """Hold the books, catch up with the clock, and save them afterwards if they changed."""
        async with self._lock:
            await self._sync()
            try:
                yield
            finally:
                self._save()

    def _fingerprint(self) -> str:
        doc = dump_state(self)
        del doc["clock"]  # time alone passing is no change worth a write
        return json.dumps(doc, sort_keys=True, default=str)

    def _save(self) -> None:
        if self._state_path is None:
            return
        now = self._fingerprint()
        if now != self._saved:
            doc = dump_state(self)
            write_atomically(self._state_path, json.dumps(doc, indent=1, default=str))
            self._saved = now

    # ------------------------------------------------------------------ protocol

    async def account(self) -> Account:
        """Balances, equity and buying power as of the clock."""
        async with self._step():
            longs, shorts = ZERO, ZERO
            for sym, p in self._positions.items():
                mv = p.qty * await self._mark(sym, p) * multiplier(sym)
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
                shorting_enabled=self._cfg.multiplier == 2,  # a cash account cannot short
            )

    async def asset(self, symbol: str) -> Asset:
        """Every quoted stock is tradable and fractionable; shortable unless hard to borrow."""
        async with self._step():
            await self._quote(symbol)  # an unquoted symbol is refused as an order for it is
            lends = symbol not in self._cfg.hard_to_borrow
            return Asset(symbol, True, lends, lends, True)

    async def positions(self) -> list[Position]:
        """Open positions, marked at the current mid (entry price without a quote)."""
        async with self._step():
            out = []
            for sym in sorted(self._positions):
                p = self._positions[sym]
                price = await self._mark(sym, p)
                m = multiplier(sym)
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
        """Orders by status, newest first."""
        if status not in ("open", "closed", "all"):
            raise ValueError(f"status must be 'open', 'closed' or 'all', got {status!r}")
        async with self._step():
            sel = [
                o
                for o in self._orders.values()
                if status == "all" or (o.is_open == (status == "open"))
            ]
            sel.sort(key=lambda o: (o.submitted_at, o.id), reverse=True)
            return [self._view(o) for o in sel]

    async def order_by_client_id(self, client_order_id: str) -> Order | None:
        """Return the order with ``client_order_id``, or None."""
        async with self._step():
            oid = self._by_cid.get(client_order_id)
            return None if oid is None else self._view(self._orders[oid])

    async def submit(self, request: OrderRequest) -> Order:
        """Accept ``request`` (idempotent on its client order id) and match it if tradable."""
        async with self._step():
            existing = self._by_cid.get(request.client_order_id)
            if existing is not None:  # idempotent: same decision, same order
                return self._view(self._orders[existing])
            o = await self._admit(
                request, request.client_order_id, request.qty, request.limit_price
            )
            if self._tradable(o.req, self._clock.now()):
                o.status = OrderStatus.NEW
                await self._match(o)
            view = self._view(o)
            if view.reason is not None:
                log.warning("sim: order %s accepted, not filling: %s", o.cid, view.reason)
            return view

    async def cancel(self, order_id: str) -> None:
        """Cancel an open order; ``OrderNotCancelable`` once it is terminal."""
        async with self._step():
            o = self._get(order_id)
            if not o.is_open:
                raise OrderNotCancelable(
                    f"order is not cancelable (status {o.status.value})", status=422, code=42210000
                )
            self._finish(o, OrderStatus.CANCELED)

    async def replace(
        self, order_id: str, qty: Decimal | int | None = None, limit_price: Decimal | None = None
    ) -> Order:
        """Replace an open order with a new qty and/or limit (Alpaca semantics)."""
        async with self._step():
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
        """Return the market clock at the simulated time."""
        now = self._clock.now()
        return MarketClock(
            ts=now,
            is_open=self._cal.is_open(now),
            next_open=self._cal.next_open(now),
            next_close=self._cal.next_close(now),
        )

    async def calendar(self, start: date, end: date) -> list[TradingDay]:
        """Sessions between ``start`` and ``end`` inclusive."""
        out = []
        for d in self._cal.sessions(start, end):
            s = self._cal.session(d)
            out.append(TradingDay(d, s.open, s.close))
        return out

    async def activities(self, since: datetime | None = None) -> list[Activity]:
        """Return fills, exercises, assignments and expiries after ``since``."""
        async with self._step():
            return [a for a in self._activities if since is None or a.ts > since]

    async def aclose(self) -> None:
        """Nothing to close: the simulated exchange holds no sessions."""
        return None

    async def process(self) -> None:
        """Catch up with the clock: expire, settle and match as of now."""
        async with self._step():
            pass

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
            coll_cash = ZERO
        else:
            hold_cash, hold_shares, shorts, coll_cash = await self._check_options(
                _legs_of(req), qty, limit, multileg=req.kind == "mleg"
            )
        n = self._next()
        oid = str(uuid.uuid5(NS, f"order-{n}"))
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
            leg_ids=tuple(str(uuid.uuid5(NS, f"order-{n}-leg-{i}")) for i in range(len(req.legs))),
            hold_cash=hold_cash,
            hold_shares=hold_shares,
            coll_shorts=shorts,
            coll_cash=coll_cash,
        )
        self._orders[oid] = o
        self._by_cid[cid] = oid
        return o

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
            reason=self._reason(o),
        )

    # Test and runner conveniences --------------------------------------------------

    def set_options_level(self, level: int) -> None:
        """Change the account's options level (as Alpaca's account configuration does)."""
        if level not in (0, 1, 2, 3):
            raise ValueError(f"options level must be 0-3, got {level}")
        self._level = level


def _one_clock(quotes: QuoteSource, clock: Clock | None) -> Clock:
    """Return the clock the simulator runs on: ``clock``, or else the quote source's own."""
    own = getattr(quotes, "clock", None)
    if own is not None and not isinstance(own, Clock):
        own = None
    if clock is None:
        if own is None:
            raise ValueError(
                "SimBroker needs clock=: its quote source has no clock of its own, and the "
                "simulated exchange does not run on wall time by default (pass a SimClock, or "
                "WallClock() for live quotes)"
            )
        return own
    if own is not None and own is not clock:
        raise ValueError(
            "SimBroker: clock= is not the clock its quote source runs on; orders would fill at "
            "prices from another time (pass the source's clock, or none)"
        )
    return clock
