"""The broker seam: one async protocol and the domain types every venue returns.

Engines see only these types. Money and quantities are ``Decimal`` (prices per share; option
premiums per share, x100 per contract). ``AlpacaBroker`` (alpaca-py) and ``SimBroker`` (the
built-in simulated exchange) both implement ``Broker``.

Ownership: every order carries an ``Owner`` (engine, strategy, decision). Its
``client_order_id`` is deterministic, so resubmitting the same decision can never create a
second order, and it is parseable, so two engines sharing one account can tell their orders apart
(``parse_client_order_id``). Orders that do not parse belong to someone else (a human, another
program) and are never touched by the engines.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from v28quant.broker.ticks import TickScheme, round_limit, round_net_limit
from v28quant.decimals import to_decimal
from v28quant.occ import is_occ, parse_occ

Side = Literal["buy", "sell"]
Intent = Literal["buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close"]
OrderType = Literal["market", "limit"]
AssetClass = Literal["us_equity", "us_option"]
OrderKind = Literal["equity", "option", "mleg"]

SIDES = ("buy", "sell")
INTENTS = ("buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close")
CONTRACT_SIZE = Decimal(100)


class OrderStatus(StrEnum):
    """Alpaca's order states (the simulator uses the same names)."""

    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    DONE_FOR_DAY = "done_for_day"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    PENDING_REVIEW = "pending_review"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding"
    STOPPED = "stopped"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    CALCULATED = "calculated"
    HELD = "held"

    @property
    def terminal(self) -> bool:
        """No further fills can happen."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REPLACED,
        OrderStatus.REJECTED,
    }
)


# ---------------------------------------------------------------------------- errors


class BrokerError(Exception):
    """Base of every broker failure. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class BrokerUnavailable(BrokerError):
    """The venue could not be reached or answered 5xx; the outcome of a write is unknown."""


class AuthenticationError(BrokerError):
    """Wrong or missing keys (HTTP 401), or keys for the other environment (paper vs live)."""


class RateLimited(BrokerError):
    """Still rate-limited after waiting as the venue asked."""


class OrderRejected(BrokerError):
    """The venue refused the order (bad field, not tradable, wash trade, options rule...)."""


class InsufficientBuyingPower(OrderRejected):
    """Not enough (options) buying power, shares for a covered call or qty to sell."""


class OptionsLevelError(OrderRejected):
    """The account's options trading level does not permit this order."""


class OrderNotFound(BrokerError):
    """No such order (HTTP 404)."""


class OrderNotCancelable(BrokerError):
    """The order is already filled, canceled or otherwise final (HTTP 422)."""


class SubmitOutcomeUnknown(BrokerUnavailable):
    """A submit whose outcome stays unknown.

    An earlier attempt may have landed (a timeout, a 5xx, an unreadable reply) and the look-up by
    client order id could not settle it: the venue refused a later attempt, or could not be asked.
    Never read this as a refusal: the first attempt may hold buying power at the venue.
    """


class UnreadableResponse(BrokerUnavailable):
    """The venue answered 2xx but the body does not parse: what it did is unknown."""


class ClientOrderIdConflict(BrokerError):
    """One client order id, two different requests.

    The venue (or the journal) already holds an order under this id whose request differs from
    the one being placed: the same ``Owner`` was reused for a different decision.
    """


# ---------------------------------------------------------------------------- ownership

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CID = re.compile(
    r"^v28-([a-z][a-z0-9_]{0,7})-([a-z][a-z0-9_]{0,15})-([0-9a-f]{12})"
    r"(?:-r(\d{1,2}))?$"
)
MAX_CLIENT_ORDER_ID = 48


@dataclass(frozen=True, slots=True)
class OrderTag:
    """What a ``client_order_id`` tells about its order.

    Who placed it, and for which decision (a 48-bit digest of the decision id; ``revision`` counts
    replacements).
    """

    engine: str
    strategy: str
    digest: str
    revision: int = 0

    def same_decision(self, other: OrderTag) -> bool:
        """Whether other names the same engine, strategy and decision digest."""
        return (self.engine, self.strategy, self.digest) == (
            other.engine,
            other.strategy,
            other.digest,
        )


@dataclass(frozen=True, slots=True)
class Owner:
    """Who places an order.

    ``engine`` (<= 8 chars), ``strategy`` (<= 16 chars), both ``[a-z][a-z0-9_]*``, and
    ``decision_id``, the journal's id of the decision (any string).

    ``client_order_id`` is ``v28-<engine>-<strategy>-<sha256(decision_id)[:12]>`` (at most 42
    characters; a replacement appends ``-r<n>``, at most 46 < Alpaca's 48).
    """

    engine: str
    strategy: str
    decision_id: str

    def __post_init__(self) -> None:
        """Check the engine and strategy names fit a client order id."""
        if not (_NAME.match(self.engine) and len(self.engine) <= 8):
            raise ValueError(
                f"Owner.engine must match [a-z][a-z0-9_]* and be <= 8 chars, got {self.engine!r}"
            )
        if not (_NAME.match(self.strategy) and len(self.strategy) <= 16):
            raise ValueError(
                f"Owner.strategy must match [a-z][a-z0-9_]* and be <= 16 chars, "
                f"got {self.strategy!r}"
            )
        if not self.decision_id:
            raise ValueError("Owner.decision_id must be a non-empty string")

    @property
    def digest(self) -> str:
        """Return the 48-bit hex digest of the decision id."""
        return hashlib.sha256(self.decision_id.encode("utf-8")).hexdigest()[:12]

    @property
    def client_order_id(self) -> str:
        """Return the deterministic client order id of this decision."""
        return f"v28-{self.engine}-{self.strategy}-{self.digest}"

    @property
    def tag(self) -> OrderTag:
        """Return the OrderTag this owner encodes."""
        return OrderTag(self.engine, self.strategy, self.digest)


def request_hash(request: OrderRequest) -> str:
    """SHA-256 (hex) of the request's canonical JSON: one key, one request.

    Parameters
    ----------
    request : OrderRequest
        The order as built by the engine (owner and client order id included).

    Returns
    -------
    str
        64 hex digits; equal for equal requests, whatever the process or the platform.
    """
    text = json.dumps(request.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def request_differences(order: Order, request: OrderRequest) -> list[str]:
    """How the venue's ``order`` differs from ``request`` (empty: it is that request's order).

    Compares what the engine asked for: symbol, quantity, side, type, limit price and, for a
    multi-leg order, each leg's symbol, side and ratio. A replacement (``-r<n>`` client order id)
    may differ in quantity and limit price by design: compare it with its own request.
    """
    diffs = []

    def cmp(name: str, have: Any, want: Any) -> None:
        if have != want:
            diffs.append(f"{name} {have!r} != requested {want!r}")

    cmp("qty", order.qty, request.qty)
    cmp("limit_price", order.limit_price, request.limit_price)
    if request.kind == "mleg":
        have = sorted((leg.symbol, leg.side, leg.ratio) for leg in order.legs)
        want = sorted((leg.occ_symbol, leg.side, leg.ratio) for leg in request.legs)
        cmp("legs", have, want)
    else:
        cmp("symbol", order.symbol, request.symbol)
        cmp("side", order.side, request.side)
        if order.type is not None:
            cmp("type", order.type, request.type)
    return diffs


def parse_client_order_id(cid: str | None) -> OrderTag | None:
    """Return the ``OrderTag`` encoded in ``cid``, or ``None`` if the order is not ours."""
    if not cid:
        return None
    m = _CID.match(cid)
    if m is None:
        return None
    engine, strategy, digest, rev = m.groups()
    return OrderTag(engine, strategy, digest, int(rev) if rev else 0)


def replacement_client_order_id(cid: str) -> str:
    """Return the client order id for the replacement of order ``cid`` (revision + 1).

    Alpaca gives a replacement a new order id and needs a new unique ``client_order_id``; keeping
    the owner in it keeps the replacement ours.
    """
    tag = parse_client_order_id(cid)
    if tag is None:
        raise ValueError(f"not a v28 client_order_id: {cid!r}")
    if tag.revision >= 99:
        raise ValueError(f"order {cid!r} has been replaced too many times")
    return f"v28-{tag.engine}-{tag.strategy}-{tag.digest}-r{tag.revision + 1}"


# ---------------------------------------------------------------------------- requests


def _whole(q: Decimal, name: str) -> None:
    if q != q.to_integral_value():
        raise ValueError(f"{name} must be a whole number of contracts, got {q}")


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a multi-leg option order: ``ratio`` contracts per strategy unit."""

    occ_symbol: str
    ratio: int
    side: Side
    intent: Intent

    def __post_init__(self) -> None:
        """Check that the leg's symbol is a valid OCC option symbol."""
        parse_occ(self.occ_symbol)
        if not isinstance(self.ratio, int) or self.ratio < 1:
            raise ValueError(f"Leg.ratio must be an integer >= 1, got {self.ratio!r}")
        if self.side not in SIDES:
            raise ValueError(f"Leg.side must be 'buy' or 'sell', got {self.side!r}")
        if self.intent not in INTENTS or not self.intent.startswith(self.side):
            raise ValueError(f"Leg.intent {self.intent!r} does not match side {self.side!r}")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order to submit. Build one with ``equity``, ``option`` or ``multileg``.

    ``limit_price`` for ``mleg`` is the net per strategy unit: positive = debit, negative =
    credit. Option orders are ``day`` orders (Alpaca accepts no other TIF for options).
    """

    kind: OrderKind
    symbol: str | None
    qty: Decimal
    side: Side | None
    type: OrderType
    limit_price: Decimal | None
    owner: Owner
    intent: Intent | None = None
    legs: tuple[Leg, ...] = ()
    time_in_force: Literal["day", "gtc"] = "day"

    @property
    def client_order_id(self) -> str:
        """Return the owner's client order id."""
        return self.owner.client_order_id

    @property
    def asset_class(self) -> AssetClass:
        """Return Alpaca's asset class of the order."""
        return "us_equity" if self.kind == "equity" else "us_option"

    @classmethod
    def equity(
        cls,
        symbol: str,
        qty: Decimal | int | str,
        side: Side,
        type: OrderType = "market",
        limit_price: Decimal | str | None = None,
        *,
        owner: Owner,
        time_in_force: Literal["day", "gtc"] = "day",
    ) -> OrderRequest:
        """Build a stock/ETF order; ``qty`` in shares (fractions allowed for market day orders)."""
        sym = symbol.strip().upper()
        if not sym or is_occ(sym):
            raise ValueError(f"equity symbol must be a ticker, got {symbol!r}")
        q = to_decimal(qty, "qty")
        return cls._build("equity", sym, q, side, type, limit_price, owner, None, (), time_in_force)

    @classmethod
    def option(
        cls,
        occ_symbol: str,
        qty: Decimal | int | str,
        side: Side,
        intent: Intent,
        limit_price: Decimal | str | None = None,
        *,
        owner: Owner,
        tick_scheme: TickScheme = "penny_pilot",
    ) -> OrderRequest:
        """Build a single-leg option ``day`` order.

        ``qty`` whole contracts; a limit order when a price is given, which is rounded to the tick
        conservatively (buys down, sells up: ``v28quant.broker.ticks``).
        """
        parse_occ(occ_symbol)
        q = to_decimal(qty, "qty")
        _whole(q, "qty")
        if intent not in INTENTS or not intent.startswith(side):
            raise ValueError(f"intent {intent!r} does not match side {side!r}")
        typ: OrderType = "market" if limit_price is None else "limit"
        lp = (
            None
            if limit_price is None
            else round_limit(to_decimal(limit_price, "limit_price"), side, tick_scheme)
        )
        return cls._build("option", occ_symbol, q, side, typ, lp, owner, intent, (), "day")

    @classmethod
    def multileg(
        cls,
        legs: list[Leg] | tuple[Leg, ...],
        qty: Decimal | int | str,
        limit_price: Decimal | str | None = None,
        *,
        owner: Owner,
        tick_scheme: TickScheme = "penny_pilot",
    ) -> OrderRequest:
        """Build a 2-4 leg option order (Alpaca ``order_class=mleg``), filled all legs together.

        ``limit_price`` is the net per unit (debit > 0, credit < 0), floored to the tick
        (a smaller debit or a larger credit: never a worse price than asked).
        """
        legs = tuple(legs)
        if not 2 <= len(legs) <= 4:
            raise ValueError(f"a multi-leg order needs 2-4 legs, got {len(legs)}")
        syms = [leg.occ_symbol for leg in legs]
        if len(set(syms)) != len(syms):
            raise ValueError(f"multi-leg symbols must be unique, got {syms}")
        roots = {parse_occ(s).root for s in syms}
        if len(roots) != 1:
            raise ValueError(f"all legs must be on one underlying, got {sorted(roots)}")
        q = to_decimal(qty, "qty")
        _whole(q, "qty")
        typ: OrderType = "market" if limit_price is None else "limit"
        lp = (
            None
            if limit_price is None
            else round_net_limit(to_decimal(limit_price, "limit_price"), tick_scheme)
        )
        return cls._build("mleg", None, q, None, typ, lp, owner, None, legs, "day")

    @classmethod
    def _build(
        cls,
        kind: OrderKind,
        symbol: str | None,
        q: Decimal,
        side: Side | None,
        typ: str,
        limit_price: Any,
        owner: Owner,
        intent: Intent | None,
        legs: tuple[Leg, ...],
        tif: str,
    ) -> OrderRequest:
        if q <= 0:
            raise ValueError(f"qty must be > 0, got {q}")
        if side is not None and side not in SIDES:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        if typ not in ("market", "limit"):
            raise ValueError(f"type must be 'market' or 'limit', got {typ!r}")
        if tif not in ("day", "gtc"):
            raise ValueError(f"time_in_force must be 'day' or 'gtc', got {tif!r}")
        lp = None if limit_price is None else to_decimal(limit_price, "limit_price")
        if typ == "limit" and lp is None:
            raise ValueError("a limit order needs limit_price")
        if typ == "market" and lp is not None:
            raise ValueError("a market order takes no limit_price")
        if lp is not None and kind != "mleg" and lp <= 0:
            raise ValueError(f"limit_price must be > 0, got {lp}")
        if not isinstance(owner, Owner):
            raise ValueError("owner must be an Owner(engine, strategy, decision_id)")
        return cls(kind, symbol, q, side, typ, lp, owner, intent, legs, tif)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description (Decimals as strings) for the journal."""
        return {
            "kind": self.kind,
            "symbol": self.symbol,
            "qty": str(self.qty),
            "side": self.side,
            "type": self.type,
            "time_in_force": self.time_in_force,
            "limit_price": None if self.limit_price is None else str(self.limit_price),
            "intent": self.intent,
            "client_order_id": self.client_order_id,
            "owner": {
                "engine": self.owner.engine,
                "strategy": self.owner.strategy,
                "decision_id": self.owner.decision_id,
            },
            "legs": [
                {
                    "occ_symbol": leg.occ_symbol,
                    "ratio": leg.ratio,
                    "side": leg.side,
                    "intent": leg.intent,
                }
                for leg in self.legs
            ],
        }


# ---------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Account:
    """Account balances (dollars).

    ``options_level``: 0 none, 1 covered calls / cash-secured puts, 2 + long calls/puts, 3 + spreads
    (multi-leg).
    """

    id: str
    status: str
    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    options_buying_power: Decimal
    options_level: int
    portfolio_value: Decimal
    long_market_value: Decimal = Decimal(0)
    short_market_value: Decimal = Decimal(0)
    trading_blocked: bool = False
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class Position:
    """A holding. ``qty`` is signed (short < 0); option prices per share, values per position."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    asset_class: AssetClass
    market_value: Decimal | None = None
    cost_basis: Decimal | None = None
    current_price: Decimal | None = None

    @property
    def side(self) -> Literal["long", "short"]:
        """Return long for a positive quantity, short for a negative one."""
        return "long" if self.qty >= 0 else "short"


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the venue reports it.

    For ``mleg`` orders ``symbol``/``side``/``type`` are ``None`` at the parent and ``legs`` hold
    the child orders (``ratio`` per leg).
    """

    id: str
    client_order_id: str
    symbol: str | None
    qty: Decimal
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    side: Side | None
    type: OrderType | None
    limit_price: Decimal | None
    status: OrderStatus
    order_class: str = "simple"
    asset_class: AssetClass | None = None
    intent: Intent | None = None
    time_in_force: str = "day"
    legs: tuple[Order, ...] = ()
    ratio: int | None = None
    submitted_at: datetime | None = None
    updated_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    reason: str | None = None  # why an open order is not filling, where the venue says

    @property
    def owner(self) -> OrderTag | None:
        """Who placed it (``None``: not a v28 order)."""
        return parse_client_order_id(self.client_order_id)

    @property
    def is_open(self) -> bool:
        """Whether the venue may still fill or change the order."""
        return not self.status.terminal

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (Decimals as strings) for the journal's ``raw`` column."""

        def s(v: Any) -> Any:
            if isinstance(v, Decimal):
                return str(v)
            if isinstance(v, datetime):
                return v.isoformat()
            return v

        out = {k: s(getattr(self, k)) for k in self.__slots__ if k != "legs"}
        out["status"] = self.status.value
        out["legs"] = [leg.to_dict() for leg in self.legs]
        return out


ActivityType = str  # FILL, OPEXC, OPASN, OPEXP, OPTRD, OPCSH, ... (Alpaca's names)


@dataclass(frozen=True, slots=True)
class Activity:
    """An account event.

    ``qty`` is the signed change of the position in ``symbol`` (a buy fill +, a sell fill -, an
    exercised long call -n contracts, its OPTRD +100n shares). ``price`` per share (the strike for
    exercise/assignment stock legs).
    """

    id: str
    type: ActivityType
    symbol: str
    qty: Decimal
    price: Decimal | None
    ts: datetime
    order_id: str | None = None
    side: Side | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class MarketClock:
    """The exchange clock at ``ts`` (all times timezone-aware)."""

    ts: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


@dataclass(frozen=True, slots=True)
class TradingDay:
    """One exchange session: ``open`` and ``close`` timezone-aware (early closes included)."""

    date: date
    open: datetime
    close: datetime


# ---------------------------------------------------------------------------- protocol


@runtime_checkable
class Broker(Protocol):
    """What the engines may ask of a venue.

    Every method is async; all raise ``BrokerError`` subclasses (never a venue SDK's exception).
    """

    name: str

    async def account(self) -> Account:
        """Return the account's balances."""

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
