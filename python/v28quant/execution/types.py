"""What the execution service takes (``Decision``) and gives back (``OrderOutcome``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from v28quant.broker.base import Order, OrderRejected, OrderRequest, Owner
from v28quant.decimals import to_decimal
from v28quant.journal.reservations import Claim


@dataclass(frozen=True, slots=True)
class Reservation:
    """Shares or cash an owner sets aside, e.g. the shares behind a covered call.

    Parameters
    ----------
    owner : Owner
        Who holds it; its engine and strategy own it (any decision of theirs may spend it).
    kind : {"shares", "cash"}
        Shares of ``symbol``, or account cash (``symbol`` None).
    symbol : str or None
        The stock whose shares are reserved; None for cash.
    amount : Decimal
        Shares, or dollars; > 0.
    takes_over : str, optional
        The client order id of an order of the same owner whose reservation this order's fill
        frees (the put a roll buys back): the admission counts it as this one's own, so the
        order needs only what it adds. Both stay held until the order ends: never less than
        either side needs.
    """

    owner: Owner
    kind: Literal["shares", "cash"]
    symbol: str | None
    amount: Decimal
    takes_over: str | None = None

    def __post_init__(self) -> None:
        """Check the fields; a bad one is a ValueError naming it."""
        object.__setattr__(self, "amount", to_decimal(self.amount, "Reservation.amount"))
        self.claim()  # validates kind, symbol and amount

    def claim(self) -> Claim:
        """Return the journal's view of it (kind, symbol, amount)."""
        return Claim(self.kind, self.symbol, self.amount)


@dataclass(frozen=True, slots=True)
class Decision:
    """One order an engine wants placed, with why.

    Parameters
    ----------
    request : OrderRequest
        The order; its ``Owner`` makes the client order id.
    reasoning : mapping
        The numbers behind it (journaled with the intent, secrets redacted).
    reserve : Reservation, optional
        Shares or cash to set aside for this owner when the order is admitted (the shares
        behind a covered call, the cash behind a cash-secured put).
    est_price : Decimal, optional
        Price per share to value a market order's cash when no quote source is at hand.
    """

    request: OrderRequest
    reasoning: Mapping[str, Any]
    reserve: Reservation | None = None
    est_price: Decimal | None = None

    def __post_init__(self) -> None:
        """Check the fields; a bad one is a ValueError naming it."""
        own = self.request.owner
        if self.reserve is not None and (
            self.reserve.owner.engine,
            self.reserve.owner.strategy,
        ) != (
            own.engine,
            own.strategy,
        ):
            raise ValueError(
                f"Decision.reserve belongs to {self.reserve.owner.engine}/"
                f"{self.reserve.owner.strategy}, the order to {own.engine}/{own.strategy}"
            )
        if self.est_price is not None:
            object.__setattr__(self, "est_price", to_decimal(self.est_price, "est_price"))


#: ``OrderOutcome.status``: the venue's order status, or one of these local ones.
LOCAL_OUTCOMES = ("refused", "rejected", "unknown", "not_sent")


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an order, as journaled (``qty`` unsigned, ``price`` per share)."""

    fill_id: str
    symbol: str
    qty: Decimal
    price: Decimal
    side: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What became of a decision.

    Attributes
    ----------
    client_order_id : str
        The order's key at the venue and in the journal.
    status : str
        The venue's status (``new``, ``filled``, ...) or ``refused`` (by the reservation check,
        never sent), ``rejected`` (refused by the venue on the first attempt: definite),
        ``unknown`` (sent, answer unknown; a look-up by client order id will settle it) or
        ``not_sent`` (a look-up found it never arrived).
    order : Order or None
        The venue's order, when there is one.
    fills : tuple of Fill
        The executions of this order journaled so far (legs of a multi-leg order included).
    reason : str or None
        Why it was refused, rejected or is unknown.
    error_type : type of OrderRejected or None
        The class of the venue's refusal of a ``rejected`` order when this call received it
        (``OptionsLevelError``...), for callers that act on the kind of refusal.
    """

    client_order_id: str
    status: str
    order: Order | None
    fills: tuple[Fill, ...] = field(default=())
    reason: str | None = None
    error_type: type[OrderRejected] | None = None

    @property
    def filled_qty(self) -> Decimal:
        """Quantity filled so far (0 without an order)."""
        return Decimal(0) if self.order is None else self.order.filled_qty
