"""The broker seam: one async protocol and the domain types every venue returns.

Engines see only these types. Money and quantities are ``Decimal`` (prices per share; option
premiums per share, x100 per contract). ``AlpacaBroker`` (alpaca-py) and ``SimBroker`` (the
built-in simulated exchange) both implement ``Broker``. The types live beside it, one module each:
``vocabulary`` (sides, intents, order states), ``errors``, ``ownership`` (``Owner`` and the client
order id), ``requests`` (what to submit) and ``state`` (what the venue reports); this module
re-exports them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from v28quant.broker.errors import (
    AuthenticationError,
    BrokerError,
    BrokerUnavailable,
    ClientOrderIdConflict,
    InsufficientBuyingPower,
    OptionsLevelError,
    OrderNotCancelable,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    SubmitOutcomeUnknown,
    UnreadableResponse,
)
from v28quant.broker.ownership import (
    MAX_CLIENT_ORDER_ID,
    OrderTag,
    Owner,
    parse_client_order_id,
    replacement_client_order_id,
)
from v28quant.broker.requests import (
    Leg,
    OrderRequest,
    request_differences,
    request_hash,
    request_held,
)
from v28quant.broker.state import (
    Account,
    Activity,
    ActivityType,
    Asset,
    MarketClock,
    Order,
    Position,
    TradingDay,
)
from v28quant.broker.vocabulary import (
    CONTRACT_SIZE,
    INTENTS,
    SIDES,
    TERMINAL_STATUSES,
    AssetClass,
    Intent,
    OrderKind,
    OrderStatus,
    OrderType,
    Side,
)


@runtime_checkable
class Broker(Protocol):
    """What the engines may ask of a venue.

    Every method is async; all raise ``BrokerError`` subclasses (never a venue SDK's exception).
    """

    name: str

    async def account(self) -> Account:
        """Return the account's balances."""

    async def asset(self, symbol: str) -> Asset:
        """Return what the venue allows on the stock ``symbol`` (shorting, fractions)."""
        ...

    async def positions(self) -> list[Position]:
        """Return the open positions."""

    async def orders(self, status: Literal["open", "closed", "all"] = "open") -> list[Order]:
        """Return the orders with status open, closed or all."""

    async def order_by_client_id(self, client_order_id: str) -> Order | None:
        """Return the order with this ``client_order_id``, or ``None`` if the venue has none."""
        ...

    async def submit(self, request: OrderRequest) -> Order:
        """Submit idempotently: the same request (same ``Owner``) never makes two orders."""
        ...

    async def cancel(self, order_id: str) -> None:
        """Cancel order order_id."""

    async def replace(
        self, order_id: str, qty: Decimal | int | None = None, limit_price: Decimal | None = None
    ) -> Order:
        """Replace an open order; returns the new order (the old one becomes ``replaced``)."""
        ...

    async def clock(self) -> MarketClock:
        """Return the venue's market clock."""

    async def calendar(self, start: date, end: date) -> list[TradingDay]:
        """Return the trading days from start to end."""

    async def activities(self, since: datetime | None = None) -> list[Activity]:
        """Return fills and option events (exercise, assignment, expiry), oldest first."""
        ...

    async def aclose(self) -> None:
        """Close the venue's sessions."""


__all__ = [
    "CONTRACT_SIZE",
    "INTENTS",
    "MAX_CLIENT_ORDER_ID",
    "SIDES",
    "TERMINAL_STATUSES",
    "Account",
    "Activity",
    "ActivityType",
    "Asset",
    "AssetClass",
    "AuthenticationError",
    "Broker",
    "BrokerError",
    "BrokerUnavailable",
    "ClientOrderIdConflict",
    "InsufficientBuyingPower",
    "Intent",
    "Leg",
    "MarketClock",
    "OptionsLevelError",
    "Order",
    "OrderKind",
    "OrderNotCancelable",
    "OrderNotFound",
    "OrderRejected",
    "OrderRequest",
    "OrderStatus",
    "OrderTag",
    "OrderType",
    "Owner",
    "Position",
    "RateLimited",
    "Side",
    "SubmitOutcomeUnknown",
    "TradingDay",
    "UnreadableResponse",
    "parse_client_order_id",
    "replacement_client_order_id",
    "request_differences",
    "request_hash",
    "request_held",
]
