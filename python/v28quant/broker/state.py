"""What a venue reports: account, assets, positions, orders, activities, clock and calendar.

Money and quantities are ``Decimal`` (prices per share; option premiums per share, x100 per
contract).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from v28quant.broker.ownership import OrderTag, parse_client_order_id
from v28quant.broker.vocabulary import AssetClass, Intent, OrderStatus, OrderType, Side


@dataclass(frozen=True, slots=True)
class Account:
    """Account balances (dollars).

    ``options_level``: 0 none, 1 covered calls / cash-secured puts, 2 + long calls/puts, 3 + spreads
    (multi-leg). ``daytrade_count``: the venue's day trades in the last five sessions, None
    where it reports none. ``last_equity``: the equity at the previous session's close (Alpaca:
    "as of previous trading day at 16:00:00 ET"), None where the venue reports none.
    ``shorting_enabled``: whether the account may sell stock short (Alpaca's flag: a margin
    account; the simulated exchange's margin account, ``multiplier=2``).
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
    daytrade_count: int | None = None
    last_equity: Decimal | None = None
    shorting_enabled: bool = False


@dataclass(frozen=True, slots=True)
class Asset:
    """What the venue allows on one stock (Alpaca's asset entity).

    ``shortable`` and ``easy_to_borrow`` both: the venue lends it for a short sale (Alpaca's
    Trading API sells short only easy-to-borrow stocks). ``fractionable``: it takes fractional
    quantities (on market day orders).
    """

    symbol: str
    tradable: bool
    shortable: bool
    easy_to_borrow: bool
    fractionable: bool

    @property
    def lends(self) -> bool:
        """Whether the venue lends the stock for a short sale."""
        return self.shortable and self.easy_to_borrow


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
