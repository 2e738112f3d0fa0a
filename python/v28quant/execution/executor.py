"""``Executor``: one path from an engine's decision to a confirmed order, journaled throughout.

For each ``Decision``:

1. If the journal holds this client order id for a different request (by hash), refuse loudly:
   one key, one request. If it holds it already sent, never send again: look it up.
2. Check what the order spends against reservations held by other owners, and journal the
   decision, the intent (request and its hash) and any new reservation in one transaction,
   before the first byte leaves. A refusal is journaled with its reason.
3. Submit through the broker's idempotent ``submit`` (unless a venue outage pauses new orders:
   ``v28quant.execution.breaker``). A first-attempt refusal by the venue is
   ``rejected`` and never retried; anything else that is not an order (timeout, 5xx, 429s,
   an unreadable reply, a refusal after an ambiguous attempt) is ``unknown`` until a look-up by
   client order id settles it (``sync``, or ``reconcile`` on restart).
4. Journal the acknowledgement, and whenever the order has fills, the new account activities,
   their fills and the position snapshot in one transaction.

Tracking to a terminal state uses the venue's trade-updates stream where it has one
(``follow``: each pushed update is journaled as it comes and wakes ``track``) and polls
otherwise, and as the fallback for anything a stream missed (``track``, ``sync``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any, Protocol

from v28quant.broker.base import (
    Broker,
    BrokerError,
    BrokerUnavailable,
    ClientOrderIdConflict,
    Order,
    OrderNotCancelable,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    OrderTag,
    SubmitOutcomeUnknown,
    parse_client_order_id,
    replacement_client_order_id,
    request_differences,
    request_hash,
    request_held,
)
from v28quant.clock import Clock
from v28quant.execution.breaker import VenueBreaker
from v28quant.execution.claims import Unpriced, capacity_for, pays_cash, spend_of
from v28quant.execution.recording import OrderRecorder
from v28quant.execution.types import Decision, OrderOutcome
from v28quant.journal import (
    FINAL_STATUSES,
    NOT_SENT_STATUS,
    REFUSED_STATUS,
    UNKNOWN_STATUS,
    AsyncJournal,
    Journal,
)
from v28quant.journal.reservations import Claim
from v28quant.notify import Notifier
from v28quant.quotes import QuoteSource
from v28quant.settlement_close import SettlementCloses

log = logging.getLogger(__name__)

#: Journal statuses from which a decision may (re)send its order: nothing is known at the venue.
_SENDABLE = frozenset({"intent", UNKNOWN_STATUS, NOT_SENT_STATUS, "refused"})


class TradeUpdates(Protocol):
    """A venue's push stream of order updates (``v28quant.alpaca.stream.AlpacaTradeUpdates``)."""

    async def start(self, handler: Callable[[Order], Coroutine[Any, Any, None]]) -> None:
        """Deliver every order update to ``handler``."""
        ...

    async def aclose(self) -> None:
        """Stop the stream."""
        ...


# One admission lock and one set of orders being placed per journal, shared by every executor
# on it (two engines, one process): one engine's ``sync`` never settles the other's send.
_ADMISSION: weakref.WeakKeyDictionary[Journal, asyncio.Lock] = weakref.WeakKeyDictionary()
_IN_FLIGHT: weakref.WeakKeyDictionary[Journal, set[str]] = weakref.WeakKeyDictionary()
# One breaker per venue (broker), shared by every executor sending to it: an outage one engine
# meets pauses the other's new orders too, and one probe speaks for both.
_BREAKERS: weakref.WeakKeyDictionary[Broker, VenueBreaker] = weakref.WeakKeyDictionary()
#: Journal statuses of an intent admitted earlier that may be at the venue: send again
#: idempotently, without a second admission.
_ADMITTED = frozenset({"intent", UNKNOWN_STATUS})


class Executor(OrderRecorder):
    """Places, tracks, cancels and replaces orders for every engine (see the module docstring).

    Parameters
    ----------
    broker : Broker
        The venue.
    journal : Journal or AsyncJournal
        Where every step is written; a plain ``Journal`` is wrapped to run off the event loop.
    notifier : Notifier, optional
        Gets a notice for each refusal, rejection, unknown outcome and order's fills.
    clock : Clock, optional
        Time stamps for the journal (the simulated clock in backtests); wall time by default.
    quotes : QuoteSource, optional
        Values market buys for the reservation check.
    poll_interval_s : float
        Seconds between looks at the venue while ``track`` waits.
    sleep : callable
        The async sleep ``track`` uses (tests pass one that moves a simulated clock).
    announced_elsewhere : callable, optional
        Whether the engine owning an order (by its ``OrderTag``) announces its fills itself
        (``engines.fills_announced_by``); those orders' fills get no notice here.
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
        quotes: QuoteSource | None = None,
        poll_interval_s: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        announced_elsewhere: Callable[[OrderTag], bool] | None = None,
        settlement_closes: SettlementCloses | None = None,
    ) -> None:
        if not poll_interval_s > 0:
            raise ValueError(f"poll_interval_s must be > 0, got {poll_interval_s}")
        super().__init__(
            broker,
            journal,
            notifier=notifier,
            clock=clock,
            announced_elsewhere=announced_elsewhere,
            settlement_closes=settlement_closes,
        )
        self._quotes = quotes
        self._poll_s = poll_interval_s
        self._sleep = sleep
        self._admission = _ADMISSION.setdefault(self._j, asyncio.Lock())
        self._in_flight = _IN_FLIGHT.setdefault(self._j, set())
        self._updates: TradeUpdates | None = None
        self._waiters: dict[str, asyncio.Event] = {}
        # the sends going on: the event loop holds a task only weakly, and a send whose caller
        # was cancelled is awaited by nobody else (a collected send never journals its answer)
        self._sends: dict[str, asyncio.Future[OrderOutcome]] = {}
        self.breaker = _BREAKERS.setdefault(broker, VenueBreaker())

    # ------------------------------------------------------------------ place

    async def place(
        self,
        decision: Decision,
        *,
        wait_s: float = 0.0,
        caller_notifies: tuple[type[OrderRejected], ...] = (),
        caller_notifies_refusal: bool = False,
    ) -> OrderOutcome:
        """Journal, check, submit and journal the answer; see the module docstring.

        Parameters
        ----------
        decision : Decision
            The order and its reasons.
        wait_s : float
            Seconds to keep polling for a terminal state after the acknowledgement (0: return
            with the venue's first answer).
        caller_notifies : tuple of OrderRejected subclasses
            Venue refusals the caller sends its own notice for (the options engine's pause on
            ``OptionsLevelError``): journaled and returned with their ``error_type`` as any
            other, but not notified here, so one refusal makes one notice.
        caller_notifies_refusal : bool
            The caller sends its own notice for a refusal against the reservations (the
            options engine's close or roll, tried again each cycle as a new order, says one
            refusal once): journaled and returned as any other, but not notified here.

        Raises
        ------
        ClientOrderIdConflict
            The client order id is journaled, or held at the venue, for a different request
            (the venue's order is then journaled under it as the venue holds it, and the
            conflict says ``at_venue``).
        """
        req = decision.request
        cid = req.client_order_id
        digest = request_hash(req)
        if cid in self._in_flight:
            raise RuntimeError(f"order {cid} is already being placed")
        self._in_flight.add(cid)
        probe = sending = False
        try:
            row = await self.journal.run(self._j.order_by_client_id, cid)
            if row is not None and row.get("request_hash") not in (None, digest):
                reason = (
                    f"client_order_id {cid} is journaled for a different request "
                    f"(owner {req.owner.engine}/{req.owner.strategy}, decision "
                    f"{req.owner.decision_id!r}); one decision id, one order"
                )
                self._notify_error(reason)
                raise ClientOrderIdConflict(reason)
            if row is not None and row["status"] not in _SENDABLE:
                return await self._already_sent(cid, req, row)
            if row is None or row["status"] not in _ADMITTED:
                paused = self.breaker.refusal(self._now())
                if paused is not None:  # the outage was notified when it began
                    log.warning("order %s not sent: %s", cid, paused)
                    await self._admit_row(decision, digest, None, None, {}, paused)
                    return OrderOutcome(cid, "refused", None, (), paused)
                probe = self.breaker.tripped  # let through after the cooldown: the probe
                refused = await self._admit_probe(decision, digest, probe)
                if refused is not None:
                    text = f"order {cid} refused: {refused}"
                    if caller_notifies_refusal:
                        log.warning("%s", text)
                    else:
                        self._notify_error(text)
                    return OrderOutcome(cid, "refused", None, (), refused)
            sending = True
            return await self._send_to_the_end(req, wait_s, caller_notifies, probe)
        finally:
            if not sending:  # a send in progress leaves the in-flight set when it ends
                self._in_flight.discard(cid)

    def sending(self) -> frozenset[str]:
        """Return the client order ids being placed now, by any executor on this journal.

        A send goes on after its caller was cancelled (``_send_to_the_end``): until the venue
        takes the request, only this set knows the order may yet land.
        """
        return frozenset(self._in_flight)

    async def _admit_probe(self, decision: Decision, digest: str, probe: bool) -> str | None:
        """``_admit``; a ``probe`` not admitted is withdrawn, so that another order may probe."""
        refused: str | None = "not admitted"
        try:
            refused = await self._admit(decision, digest)
        finally:
            if probe and refused is not None:
                self.breaker.withdraw()
        return refused

    async def _admit(self, decision: Decision, digest: str) -> str | None:
        req = decision.request
        reserve = decision.reserve.claim() if decision.reserve is not None else None
        async with self._admission:
            try:
                spend = await spend_of(req, decision.est_price, self._quotes)
            except Unpriced as exc:
                spend = None
                held = await self.journal.run(self._j.reservations)
                others = [
                    r
                    for r in held
                    if r["kind"] == "cash"
                    and (r["engine"], r["strategy"]) != (req.owner.engine, req.owner.strategy)
                ]
                if others:
                    return await self._admit_row(decision, digest, None, None, {}, str(exc))
            claims = [c for c in (spend, reserve) if c is not None]
            capacity = await capacity_for(self.broker, claims) if claims else {}
            return await self._admit_row(decision, digest, spend, reserve, capacity, None)

    async def _admit_row(
        self,
        decision: Decision,
        digest: str,
        spend: Claim | None,
        reserve: Claim | None,
        capacity: dict[tuple[str, str | None], Decimal],
        refuse: str | None,
    ) -> str | None:
        req = decision.request
        reasoning = dict(decision.reasoning)
        if refuse is not None:  # refused before any claim was checked: journal it as such
            reasoning["refused"] = refuse
            spend = reserve = None
            capacity = {}
        reason = await self.journal.run(
            self._j.admit_order,
            client_order_id=req.client_order_id,
            engine=req.owner.engine,
            strategy=req.owner.strategy,
            decision_id=req.owner.decision_id,
            symbol=req.symbol or ",".join(leg.occ_symbol for leg in req.legs),
            request=req.to_dict(),
            request_hash=digest,
            reasoning=reasoning,
            ts=self._now(),
            spend=spend,
            reserve=reserve,
            capacity=capacity,
            takes_over=decision.reserve.takes_over if decision.reserve is not None else None,
        )
        if refuse is not None:
            await self.journal.run(
                self._j.record_order_update,
                req.client_order_id,
                None,
                "refused",
                None,
                None,
                {"reason": refuse},
                self._now(),
                reason=refuse,
            )
            return refuse
        return reason

    async def _send_to_the_end(
        self,
        req: OrderRequest,
        wait_s: float,
        caller_notifies: tuple[type[OrderRejected], ...],
        probe: bool,
    ) -> OrderOutcome:
        """``_send``, shielded: it runs to its end even if the caller is cancelled.

        A cycle cancelled at its time limit may be waiting on a submit the venue is taking:
        abandoning it would leave an order at the venue that the journal knows only as an
        intent. So the send goes on and journals the venue's answer, and its client order id
        stays in flight (out of another engine's ``sync``) until then.
        """
        send = self._send(req, wait_s, caller_notifies, probe)
        return await self._to_the_end(req.client_order_id, send)

    async def _to_the_end(self, cid: str, send: Coroutine[Any, Any, OrderOutcome]) -> OrderOutcome:
        """Run ``send`` of the order ``cid`` (in flight) to its end, whatever befalls the caller.

        The send is held here until it ends (the event loop holds a task only weakly), and
        ``cid`` leaves the in-flight set then.
        """
        sending = asyncio.ensure_future(send)
        self._sends[cid] = sending
        sending.add_done_callback(lambda _: self._sends.pop(cid, None))
        sending.add_done_callback(lambda _: self._in_flight.discard(cid))
        try:
            return await asyncio.shield(sending)
        except asyncio.CancelledError:
            sending.add_done_callback(_log_abandoned_failure)
            raise

    async def _send(
        self,
        req: OrderRequest,
        wait_s: float,
        caller_notifies: tuple[type[OrderRejected], ...],
        probe: bool,
    ) -> OrderOutcome:
        try:
            return await self._submit(req, wait_s, caller_notifies)
        finally:
            if probe:  # no answer either way (a conflict, a cancel): the next order probes
                self.breaker.withdraw()

    async def _submit(
        self,
        req: OrderRequest,
        wait_s: float,
        caller_notifies: tuple[type[OrderRejected], ...],
    ) -> OrderOutcome:
        cid = req.client_order_id
        try:
            order = await self.broker.submit(req)
        except ClientOrderIdConflict as exc:  # the venue's order under this id is another one
            held = await self.broker.order_by_client_id(cid)
            if held is None:  # the look-up lags the venue's answer: sync settles it
                await self._unknown(cid, exc)
            else:
                await self._held_for_another(req, held)
            raise ClientOrderIdConflict(str(exc), at_venue=True) from exc
        except OrderRejected as exc:
            if isinstance(exc, SubmitOutcomeUnknown):  # defensive: it is not a definite refusal
                return await self._unknown(cid, exc)
            self._venue_answered()
            reason = f"{type(exc).__name__}: {exc}"
            await self._local_status(cid, "rejected", reason)
            await self._release(cid, "order rejected by the venue")
            text = f"order {cid} rejected: {reason}"
            if isinstance(exc, caller_notifies):  # the caller's own notice says it better
                log.warning("%s", text)
            else:
                self._notify_error(text)
            return OrderOutcome(cid, "rejected", None, (), reason, type(exc))
        except BrokerError as exc:
            if isinstance(exc, BrokerUnavailable) and self.breaker.failed(self._now(), str(exc)):
                self._notify_error(f"venue not answering orders: new orders paused ({exc})")
            return await self._unknown(cid, exc)
        self._venue_answered()
        if request_differences(order, req):
            raise ClientOrderIdConflict(await self._held_for_another(req, order), at_venue=True)
        await self._record(order)
        if wait_s > 0 and not order.status.terminal:
            order = await self.track(cid, wait_s)
        return await self._outcome(order)

    def _venue_answered(self) -> None:
        down = self.breaker.answered(self._now())
        if down is not None:
            text = f"venue answers orders again after {down}; new orders resume"
            log.warning("%s", text)
            if self._notifier is not None:
                self._notifier.notify(text)

    async def _unknown(self, cid: str, exc: BaseException) -> OrderOutcome:
        reason = f"{type(exc).__name__}: {exc}"
        await self._local_status(cid, UNKNOWN_STATUS, reason)
        self._notify_error(f"order {cid} outcome unknown (a look-up will settle it): {reason}")
        return OrderOutcome(cid, UNKNOWN_STATUS, None, (), reason)

    async def _already_sent(self, cid: str, req: OrderRequest, row: dict[str, Any]) -> OrderOutcome:
        if row["status"] == "rejected":  # definite: never retried
            return OrderOutcome(cid, "rejected", None, (), row.get("reason"))
        order = await self.broker.order_by_client_id(cid)
        if order is None:
            raise BrokerError(
                f"order {cid} is journaled as {row['status']} with venue id "
                f"{row.get('broker_order_id')} but the venue has no such order; "
                "reconcile before trading"
            )
        if request_differences(order, req):
            said = row.get("reason")
            conflict = await self._held_for_another(req, order, said=said)
            raise ClientOrderIdConflict(conflict, at_venue=True)
        await self._record(order)
        return await self._outcome(order)

    async def _held_for_another(
        self, req: OrderRequest, order: Order, *, said: str | None = None
    ) -> str:
        """Journal the venue's ``order`` under ``req``'s client order id, sent for another request.

        An earlier run sent it: the journal says what the venue holds (its status, its fills,
        its reservation kept while it works), so sync follows it and nothing sends it again.
        The row takes the venue's request, what it spends and reservations sized to it
        (``Journal.restate_order``). The conflict is notified unless ``said`` (the row's
        reason) already says it. Returns the conflict.
        """
        cid = req.client_order_id
        diffs = "; ".join(request_differences(order, req))
        reason = f"venue holds order {order.id} under {cid} for another request: {diffs}"
        held = request_held(order, req)
        spend = await self._held_spend(held)
        await self.journal.run(
            self._j.restate_order, cid, held.to_dict(), spend, reason=reason, ts=self._now()
        )
        await self._record(order, reason=reason)
        if said != reason:
            self._notify_error(reason)
        return reason

    async def _held_spend(self, held: OrderRequest) -> Claim | None:
        """Return what the venue's order ``held`` spends, valued as a new order's.

        A market buy with no quote to value it spends the journaled estimate a unit.
        """
        try:
            return await spend_of(held, None, self._quotes)
        except Unpriced:
            row = await self.journal.run(self._j.order_by_client_id, held.client_order_id)
            if row is None or row.get("spend_amount") is None or not row.get("request"):
                return None
            a_unit = row["spend_amount"] / Decimal(row["request"]["qty"])
            return Claim(row["spend_kind"], row["spend_symbol"], a_unit * held.qty)

    async def venue_order(self, client_order_id: str) -> OrderOutcome | None:
        """Return the venue's order under ``client_order_id``, journaled; None if it has none.

        For a caller whose order an earlier run may have sent under the same id, sized on what
        the account held then: the order sent is the answer, never a second one.
        """
        order = await self.broker.order_by_client_id(client_order_id)
        if order is None:
            return None
        await self._record(order)
        return await self._outcome(order)

    # ------------------------------------------------------------------ tracking

    async def track(self, client_order_id: str, timeout_s: float) -> Order:
        """Poll the venue until the order is terminal or ``timeout_s`` has passed.

        Every change is journaled (with fills and a position snapshot when it filled).

        Returns
        -------
        Order
            The venue's latest view of the order.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # Registered before the first look, cleared before each: no pushed update is lost
        # between a look and the wait that follows it.
        pushed = self._waiters.setdefault(client_order_id, asyncio.Event())
        try:
            while True:
                pushed.clear()
                order = await self.broker.order_by_client_id(client_order_id)
                if order is None:
                    raise BrokerError(f"the venue has no order {client_order_id}")
                await self._record(order)
                if order.status.terminal or loop.time() >= deadline:
                    return order
                await self._next_update(pushed, min(self._poll_s, deadline - loop.time()))
        finally:
            self._waiters.pop(client_order_id, None)

    async def _next_update(self, pushed: asyncio.Event, timeout_s: float) -> None:
        """Until the stream pushes an update of the order, or ``timeout_s`` passes."""
        if self._updates is None:
            await self._sleep(max(timeout_s, 0.0))  # the caller's deadline, not a whole interval
            return
        try:
            await asyncio.wait_for(pushed.wait(), max(timeout_s, 0.0))
        except TimeoutError:
            pass

    async def follow(self, updates: TradeUpdates) -> None:
        """Journal every order update the venue pushes from now on (until ``aclose``)."""
        self._updates = updates
        await updates.start(self.on_update)

    async def on_update(self, order: Order) -> None:
        """Journal an order update pushed by the venue (a trade-updates stream)."""
        if parse_client_order_id(order.client_order_id) is None:
            return  # not ours: another program's order is reported by reconcile, never touched
        await self._record(order)
        waiter = self._waiters.get(order.client_order_id)
        if waiter is not None:
            waiter.set()

    async def aclose(self) -> None:
        """Wait for the sends going on, then stop the venue's stream and the journal's thread.

        A send whose cycle was cut still journals the venue's answer before the journal closes.
        """
        if self._sends:
            log.warning("waiting for %d order send(s) to get the venue's answer", len(self._sends))
            await asyncio.wait(set(self._sends.values()))
        if self._updates is not None:
            await self._updates.aclose()
            self._updates = None
        await asyncio.to_thread(self.journal.close)

    async def sync(self) -> list[OrderOutcome]:
        """Look up every order the journal holds open and journal what the venue says.

        An ``unknown`` or ``intent`` row the venue has no order for becomes ``not_sent`` (the
        look-up by client order id among open and closed orders settled it). Orders being
        placed by this executor right now are left alone. What an order journaled final still
        reserves is released, or moved to its replacement, once the venue says it ended too;
        without asking it for an order it never took (``rejected``, ``not_sent``, ``refused``
        with no venue id).
        """
        out = []
        for row in await self.journal.run(self._j.open_orders):
            cid = row["client_order_id"]
            if cid in self._in_flight or parse_client_order_id(cid) is None:
                continue
            order = await self.broker.order_by_client_id(cid)
            if order is None:
                if row["status"] in ("intent", UNKNOWN_STATUS) and not row.get("broker_order_id"):
                    await self._local_status(cid, NOT_SENT_STATUS, "look-up: the venue has none")
                    await self._release(cid, "order never reached the venue")
                    out.append(OrderOutcome(cid, NOT_SENT_STATUS, None, (), row.get("reason")))
                continue
            await self._record(order)
            out.append(await self._outcome(order))
        await self._settle()  # fills a previous look deferred
        await self._release_unsent()
        await self._release_ended()
        await self._release_closed()
        return out

    async def _release_unsent(self) -> None:
        """Release what an order the venue never took still reserves, without asking the venue.

        Journaled ``rejected``, ``not_sent`` or ``refused`` with no venue id, it holds nothing
        there: a release lost between the two writes (a process that died) is done here.
        """
        released = await self.journal.run(
            self._j.release_unsent_reservations,
            reason="order never taken by the venue",
            ts=self._now(),
        )
        for cid in released:
            log.info("released the reservation(s) of %s: the venue never took it", cid)

    async def _release_ended(self) -> None:
        """Release, or move to its replacement, what an order journaled final still reserves.

        ``_record`` does it as it journals an order's end; an end journaled otherwise (reconcile
        at start, a run that died between the two) is looked at by nothing else when no book
        follows the order. Each is looked up once: only an order the venue holds final too is
        recorded again, which releases it or moves it along its walk to the order it ends on.
        """
        for cid in await self._ended_reserving():
            while cid not in self._in_flight:
                order = await self.broker.order_by_client_id(cid)
                if order is None or not order.status.terminal:
                    break  # working at the venue: its look, or reconcile's difference
                await self._record(order)
                if order.status is not OrderStatus.REPLACED:
                    break
                cid = replacement_client_order_id(cid)

    async def _ended_reserving(self) -> list[str]:
        """Return the orders journaled final at the venue whose reservation is due to end.

        A filled order that backs a position (an option written) keeps its reservation until
        the position closes (``_release_closed``): not looked up here every sync.
        """
        ended = []
        for cid in {r["client_order_id"] for r in await self.journal.run(self._j.reservations)}:
            row = await self.journal.run(self._j.order_by_client_id, cid) if cid else None
            if row is None or not row.get("broker_order_id") or row["status"] not in FINAL_STATUSES:
                continue
            due = (
                row["status"] == OrderStatus.REPLACED.value
                or not row.get("filled_qty")
                or pays_cash(row.get("request") or {})
            )
            if due and parse_client_order_id(cid) is not None:
                ended.append(cid)
        return sorted(ended)

    # ------------------------------------------------------------------ cancel / replace

    async def cancel(self, order: str, reason: str) -> OrderOutcome:
        """Cancel one of our orders by venue id or client order id; the reason is journaled.

        An order already final is journaled as the venue reports it, not an error.
        """
        cid, oid = await self._resolve(order)
        await self._event(cid, oid, "cancel_requested", reason)
        try:
            await self.broker.cancel(oid)
        except OrderNotCancelable as exc:
            log.info("cancel of %s: %s", cid, exc)
        found = await self.broker.order_by_client_id(cid)
        if found is None:
            raise BrokerError(f"the venue has no order {cid} after cancelling it")
        await self._record(found)
        return await self._outcome(found)

    async def replace(
        self,
        order: str,
        *,
        reason: str,
        qty: Decimal | int | None = None,
        limit_price: Decimal | None = None,
    ) -> OrderOutcome:
        """Replace one of our open orders (new quantity and/or limit price).

        The replacement's intent (``-r<n>`` client order id) is journaled before the request
        leaves, with the old order's owner and what it spends at its new quantity and price
        (``spend_of``, as for a new order): the old order's spend ends when it is ``replaced``,
        so cash committed by a walked order counts once, whatever the number of replaces (twice
        only while the venue has not answered: an over-count, never an under-count).
        Reservations follow the order to its replacement.

        A replacement that spends more than the order it replaces is checked as a new order
        is, against what other owners reserved and spend: one that needs more than is free is
        ``refused`` (journaled with its reason, nothing sent, the order left working). One that
        spends the same or less always goes. A replacement refused here or rejected by the
        venue may be tried again: its ``-r<n>`` row then takes the new request and spend.
        One whose outcome is unknown (a timeout, a 5xx, a crash after its intent) is looked up
        first: a ``-r<n>`` the venue holds is followed as it stands (never sent twice); one it
        lacks is journaled ``not_sent`` and the retry goes with the new request and spend.
        Only its first refusal, and its first rejection, is notified (a walk retries every
        cycle until cash frees or the order ends); the journal keeps each with its reason.
        As a new order's send, a replace whose caller is cancelled (a cycle cut at its time
        limit) goes on to the venue's answer and journals it, its ``-r<n>`` in ``sending``
        (out of ``sync``) from its intent until then.

        Raises
        ------
        OrderRejected
            The venue rejected the replacement (journaled ``rejected``): the order it would
            have replaced keeps working as it was.
        """
        cid, oid = await self._resolve(order)
        new_cid = replacement_client_order_id(cid)
        if new_cid in self._in_flight:
            raise RuntimeError(f"order {new_cid} is already being placed")
        # out of another engine's sync from its intent to the venue's answer, as a new order is
        self._in_flight.add(new_cid)
        try:
            return await self._replace(cid, oid, new_cid, reason, qty, limit_price)
        finally:
            if new_cid not in self._sends:  # a send in progress leaves the set when it ends
                self._in_flight.discard(new_cid)

    async def _replace(
        self,
        cid: str,
        oid: str,
        new_cid: str,
        reason: str,
        qty: Decimal | int | None,
        limit_price: Decimal | None,
    ) -> OrderOutcome:
        row = await self.journal.run(self._j.order_by_client_id, cid)
        request = dict((row or {}).get("request") or {})
        request.update(client_order_id=new_cid, replaces=cid)
        if qty is not None:
            request["qty"] = str(qty)
        if limit_price is not None:
            request["limit_price"] = str(limit_price)
        earlier = await self.journal.run(self._j.order_by_client_id, new_cid)
        was = None if earlier is None else earlier["status"]
        if was in _ADMITTED:  # an earlier try may have reached the venue: ask before sending
            found = await self.broker.order_by_client_id(new_cid)
            if found is not None:
                log.info("replacement %s already at the venue: followed, not sent again", new_cid)
                return await self._follow_replacement(cid, found)
            await self._local_status(new_cid, NOT_SENT_STATUS, "look-up: the venue has none")
        refused = await self._admit_replacement(cid, row, request, reason)
        if refused is not None:
            if was != REFUSED_STATUS:
                self._notify_error(f"replacement {new_cid} of {cid} refused: {refused}")
            return OrderOutcome(new_cid, "refused", None, (), refused)
        send = self._replace_at_venue(cid, oid, new_cid, was, qty, limit_price)
        return await self._to_the_end(new_cid, send)

    async def _replace_at_venue(
        self,
        cid: str,
        oid: str,
        new_cid: str,
        was: str | None,
        qty: Decimal | int | None,
        limit_price: Decimal | None,
    ) -> OrderOutcome:
        """Send the replace of ``cid`` as ``new_cid`` and journal the venue's answer."""
        try:
            new = await self.broker.replace(oid, qty=qty, limit_price=limit_price)
        except OrderRejected as exc:
            rejected = f"{type(exc).__name__}: {exc}"
            await self._local_status(new_cid, "rejected", rejected)
            text = f"replacement {new_cid} of {cid} rejected: {rejected}"
            if was == OrderStatus.REJECTED.value:
                log.warning("%s", text)
            else:
                self._notify_error(text)
            raise
        except BrokerError as exc:
            await self._local_status(new_cid, UNKNOWN_STATUS, f"{type(exc).__name__}: {exc}")
            raise
        return await self._follow_replacement(cid, new)

    async def _follow_replacement(self, cid: str, new: Order) -> OrderOutcome:
        """Journal the venue's replacement ``new`` of ``cid`` (and the old order's end)."""
        old = await self.broker.order_by_client_id(cid)
        if old is not None:
            await self._record(old)
        await self._record(new)
        await self.journal.run(self._j.move_reservations, cid, new.client_order_id)
        return await self._outcome(new)

    async def _admit_replacement(
        self, cid: str, row: dict[str, Any] | None, request: dict[str, Any], reason: str
    ) -> str | None:
        """Journal the intent of ``cid``'s replacement; return why it may not go, or None."""
        tag = parse_client_order_id(cid)
        assert tag is not None
        spend = await self._replacement_spend(request)
        async with self._admission:
            added = spend if _spends_more(spend, row) else None
            capacity = await capacity_for(self.broker, [added]) if added is not None else None
            refused: str | None = await self.journal.run(
                self._j.admit_replacement,
                request["client_order_id"],
                tag.engine,
                tag.strategy,
                (row or {}).get("decision_id"),
                {**request, "reason": reason},
                self._now(),
                spend=spend,
                capacity=capacity,
            )
            return refused

    async def _replacement_spend(self, request: dict[str, Any]) -> Claim | None:
        """Return what a replacement's journaled ``request`` spends, by the rule of a new order."""
        if "owner" not in request:  # the old order was never journaled: nothing to value
            return None
        try:
            return await spend_of(OrderRequest.from_dict(request), None, self._quotes)
        except Unpriced as exc:  # a market buy with no quote to value it: its cash is unknown
            log.warning("replacement %s: %s", request["client_order_id"], exc)
            return None

    async def _resolve(self, order: str) -> tuple[str, str]:
        """(client order id, venue id) of one of our orders named either way."""
        if parse_client_order_id(order) is not None:
            row = await self.journal.run(self._j.order_by_client_id, order)
            oid = row.get("broker_order_id") if row else None
            if not oid:
                found = await self.broker.order_by_client_id(order)
                if found is None:
                    raise BrokerError(f"the venue has no order {order}")
                oid = found.id
            return order, str(oid)
        cid = await self.journal.run(self._j.client_order_id_for, order)
        if cid is None or parse_client_order_id(cid) is None:
            raise ValueError(
                f"order {order} is not one of ours (no v28 client order id in the journal); "
                "the engines never touch another program's orders"
            )
        return cid, order


def _log_abandoned_failure(sending: asyncio.Future[OrderOutcome]) -> None:
    """Log how a send whose caller was cancelled failed: nobody else will see it."""
    if not sending.cancelled() and sending.exception() is not None:
        log.error(
            "an order's send ended in an error after its caller was cancelled: %r",
            sending.exception(),
        )


def _spends_more(spend: Claim | None, replaced: dict[str, Any] | None) -> bool:
    """Whether a replacement's ``spend`` asks for more than the order it replaces spent."""
    if spend is None:
        return False
    old = replaced or {}
    if old.get("spend_amount") is None or (old.get("spend_kind"), old.get("spend_symbol")) != (
        spend.kind,
        spend.symbol,
    ):
        return True
    return bool(spend.amount > old["spend_amount"])
