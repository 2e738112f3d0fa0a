"""``OrderRecorder``: how the execution service writes what the venue says into the journal.

Order updates, local statuses (``unknown``, ``not_sent``, ``refused``, ``rejected``), events
(``cancel_requested``), reservations released, and fills with the position snapshot in one
transaction. ``Executor`` builds on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from v28quant.broker.base import (
    Activity,
    Broker,
    Order,
    OrderStatus,
    OrderTag,
    parse_client_order_id,
    replacement_client_order_id,
)
from v28quant.clock import Clock
from v28quant.execution.claims import pays_cash
from v28quant.execution.types import Fill, OrderOutcome
from v28quant.journal import AsyncJournal, Journal
from v28quant.notify import Notifier
from v28quant.reconcile import POSITION_ACTIVITIES, activities_since
from v28quant.settlement_close import SettlementCloses

log = logging.getLogger(__name__)


class OrderRecorder:
    """Journal writes shared by every step of the execution service.

    Parameters
    ----------
    broker : Broker
        The venue (asked for activities and positions when an order fills).
    journal : Journal or AsyncJournal
        Where everything is written; a plain ``Journal`` is wrapped to run off the event loop.
    notifier : Notifier, optional
        Gets a notice for each order's fills (one per order, its legs listed) and each error.
    clock : Clock, optional
        Time stamps for the journal; wall time by default.
    announced_elsewhere : callable, optional
        Whether the engine owning an order (by its ``OrderTag``) announces the order's fills
        itself; those get no notice here, so that each fill is announced once.
    settlement_closes : SettlementCloses, optional
        Adds the underlying's close to option settlements journaled without one (Alpaca's).
    """

    def __init__(
        self,
        broker: Broker,
        journal: Journal | AsyncJournal,
        *,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        announced_elsewhere: Callable[[OrderTag], bool] | None = None,
        settlement_closes: SettlementCloses | None = None,
    ) -> None:
        self.broker = broker
        self.journal = journal if isinstance(journal, AsyncJournal) else AsyncJournal(journal)
        self._j = self.journal.sync
        self._notifier = notifier
        self._clock = clock
        self._announced_elsewhere = announced_elsewhere or (lambda tag: False)
        self._settlement_closes = settlement_closes
        self._settle_lock = asyncio.Lock()

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    async def release(self, reservation_id: int, reason: str) -> int:
        """Release one reservation (the covered call closed, the put expired...)."""
        return await self.journal.run(
            self._j.release_reservations,
            reason=reason,
            ts=self._now(),
            reservation_id=reservation_id,
        )

    async def _release_closed(self) -> None:
        """Release reservations whose order filled and whose position is now closed.

        The shares behind a covered call are free once the call is bought back, expires or is
        assigned; the cash behind a put once the put is gone.
        """
        held = await self.journal.run(self._j.last_positions)
        for r in await self.journal.run(self._j.reservations):
            cid = r["client_order_id"]
            row = await self.journal.run(self._j.order_by_client_id, cid) if cid else None
            if row is None or not row.get("filled_qty") or not row.get("request"):
                continue
            req = row["request"]
            symbols = [leg["occ_symbol"] for leg in req.get("legs") or []] or [req.get("symbol")]
            if all(held.get(s, Decimal(0)) == 0 for s in symbols):
                await self.journal.run(
                    self._j.release_reservations,
                    reason=f"position {', '.join(symbols)} closed",
                    ts=self._now(),
                    reservation_id=r["id"],
                )

    async def _record(self, order: Order, *, reason: str | None = None) -> None:
        before = await self.journal.run(self._j.order_by_client_id, order.client_order_id)
        had = (before or {}).get("filled_qty") or Decimal(0)
        await self.journal.run(
            self._j.record_order_update,
            order.client_order_id,
            order.id,
            order.status.value,
            order.filled_qty,
            order.filled_avg_price,
            order.to_dict(),
            order.updated_at or self._now(),
            reason=reason,
        )
        if order.filled_qty > had:
            await self._settle()
        if order.status is OrderStatus.REPLACED and parse_client_order_id(order.client_order_id):
            # not over: the replacement carries on with what this order reserved
            new_cid = replacement_client_order_id(order.client_order_id)
            await self.journal.run(self._j.move_reservations, order.client_order_id, new_cid)
        elif order.status.terminal:
            await self._release_finished(order, (before or {}).get("request") or {})

    async def _release_finished(self, order: Order, request: Mapping[str, Any]) -> None:
        """Release what a finished order reserved, unless it still backs an open position.

        Unfilled, it spent nothing. Filled and paid in cash (a buy, a net debit), the account's
        cash already shows the payment, so holding the reservation too would count it twice.
        An option written keeps its collateral until the position closes (``_release_closed``),
        however often the finished order is recorded again.
        """
        if order.filled_qty == 0:
            reason = f"order {order.status.value} unfilled"
        elif pays_cash(request):
            reason = f"order {order.status.value}: its cash is paid"
        else:
            return
        await self._release(order.client_order_id, reason)

    async def _local_status(self, cid: str, status: str, reason: str) -> None:
        await self.journal.run(
            self._j.record_order_update,
            cid,
            None,
            status,
            None,
            None,
            {"reason": reason},
            self._now(),
            reason=reason,
        )

    async def _event(self, cid: str, oid: str, what: str, reason: str) -> None:
        await self.journal.run(
            self._j.record_order_event, cid, oid, what, {"reason": reason}, self._now()
        )

    async def _release(self, cid: str, reason: str) -> None:
        n = await self.journal.run(
            self._j.release_reservations, reason=reason, ts=self._now(), client_order_id=cid
        )
        if n:
            log.info("released %d reservation(s) of %s: %s", n, cid, reason)

    async def _settle(self) -> None:
        """Journal new activities, their fills and the position snapshot in one transaction.

        The snapshot must reflect exactly the activities seen (reconcile relies on it): the
        venue's positions are written only when they equal the last snapshot plus the new
        activities; otherwise (the venue has not posted an activity yet) nothing is written
        and the next look or reconcile catches up.
        """
        async with self._settle_lock:
            j = self._j
            last_ts = await self.journal.run(j.last_activity_ts)
            acts = await self.broker.activities(activities_since(last_ts))
            seen = await self.journal.run(j.seen_activity_ids)
            new = [a for a in acts if a.id not in seen]
            if not new:
                return
            positions = await self.broker.positions()
            last = await self.journal.run(j.last_positions)
            expected: dict[str, Decimal] = defaultdict(Decimal, last)
            for a in new:
                if a.type in POSITION_ACTIVITIES and a.symbol:
                    expected[a.symbol] += a.qty
            actual = {p.symbol: p.qty for p in positions if p.qty != 0}
            if {k: v for k, v in expected.items() if v != 0} != actual:
                log.warning(
                    "positions at the venue do not yet match the journal plus %d new "
                    "activities; fills will be journaled on the next look",
                    len(new),
                )
                return
            if self._settlement_closes is not None:
                new = await self._settlement_closes.annotate(new, seen=self._now())
            fills = []
            by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for a in new:
                if a.type == "FILL" and a.price is not None:
                    cid = a.raw.get("client_order_id") if a.raw else None
                    if cid is None and a.order_id:
                        cid = await self.journal.run(j.client_order_id_for, a.order_id, legs=True)
                    fills.append(_fill_row(a, cid))
                    by_order[cid or a.order_id or a.id].append(fills[-1])
            await self.journal.run(
                j.record_activity_batch,
                [_activity_row(a) for a in new],
                fills,
                [
                    {
                        "symbol": p.symbol,
                        "qty": p.qty,
                        "avg_entry_price": p.avg_entry_price,
                        "asset_class": p.asset_class,
                    }
                    for p in positions
                ],
                self._now(),
            )
            self._announce(by_order.values())

    def _announce(self, orders: Iterable[list[dict[str, Any]]]) -> None:
        """Notify each order's new fills in one notice, unless its engine announces them."""
        if self._notifier is None:
            return
        for legs in orders:
            cid = legs[0]["client_order_id"]
            tag = parse_client_order_id(cid)
            if tag is not None and self._announced_elsewhere(tag):
                continue
            fills = "; ".join(f"{f['side']} {f['qty']} {f['symbol']} @ {f['price']}" for f in legs)
            self._notifier.notify(f"fill {fills} ({cid})")

    async def _outcome(self, order: Order) -> OrderOutcome:
        rows = await self.journal.run(self._j.fills_for, order.client_order_id)
        fills = tuple(
            Fill(r["fill_id"], r["symbol"], r["qty"], r["price"], r["side"], r["ts"]) for r in rows
        )
        return OrderOutcome(order.client_order_id, order.status.value, order, fills, None)

    def _notify_error(self, text: str) -> None:
        log.warning("%s", text)
        if self._notifier is not None:
            self._notifier.error("execution", text)


def _activity_row(a: Activity) -> dict[str, Any]:
    return {
        "activity_id": a.id,
        "activity_type": a.type,
        "symbol": a.symbol,
        "qty": a.qty,
        "price": a.price,
        "ts": a.ts,
        "raw": dict(a.raw) or {"order_id": a.order_id, "side": a.side},
    }


def _fill_row(a: Activity, cid: str | None) -> dict[str, Any]:
    return {
        "fill_id": a.id,
        "client_order_id": cid,
        "symbol": a.symbol,
        "qty": abs(a.qty),
        "price": a.price,
        "side": a.side or ("buy" if a.qty > 0 else "sell"),
        "ts": a.ts,
    }
