"""Orders to submit: ``Leg`` and ``OrderRequest`` (equity, single option, multi-leg).

``request_hash`` keys a request for the journal; ``request_differences`` tells whether an order the
venue holds is the one a request asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from v28quant.broker.ownership import Owner
from v28quant.broker.state import Order
from v28quant.broker.ticks import TickScheme, round_limit, round_net_limit
from v28quant.broker.vocabulary import (
    INTENTS,
    SIDES,
    AssetClass,
    Intent,
    OrderKind,
    OrderType,
    Side,
)
from v28quant.decimals import to_decimal
from v28quant.occ import is_occ, parse_occ


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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OrderRequest:
        """Return the request ``to_dict`` described (keys it does not write are ignored)."""
        return cls(
            d["kind"],
            d["symbol"],
            Decimal(d["qty"]),
            d["side"],
            d["type"],
            None if d["limit_price"] is None else Decimal(d["limit_price"]),
            Owner(**d["owner"]),
            d["intent"],
            tuple(Leg(**leg) for leg in d["legs"]),
            d["time_in_force"],
        )

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


def request_held(order: Order, request: OrderRequest) -> OrderRequest:
    """Return the request the venue's ``order`` answers, under ``request``'s client order id.

    What ``request_differences`` compares is the venue's: quantity, limit price, type and, for
    a single order, symbol, side and intent; for a multi-leg order its legs, where the venue
    names each leg's side and intent (else the legs requested). The rest (kind, owner, time in
    force) is the request's: one client order id names both.
    """
    legs = tuple(
        Leg(str(g.symbol), g.ratio or 1, g.side, g.intent)
        for g in order.legs
        if g.side is not None and g.intent is not None
    )
    single = request.kind != "mleg"
    return replace(
        request,
        qty=order.qty,
        limit_price=order.limit_price,
        type=order.type or request.type,
        symbol=order.symbol or request.symbol if single else None,
        side=order.side or request.side if single else None,
        intent=order.intent or request.intent if single else None,
        legs=legs if legs and len(legs) == len(order.legs) else request.legs,
    )
