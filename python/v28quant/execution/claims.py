"""What an order spends, and what the account holds to spend it from.

A sell of shares spends shares of that stock; a call sold to open spends 100 shares a contract
as cover; a buy spends cash (quantity x price x contract size); a put sold to open spends its
strike x 100 a contract as collateral; a multi-leg debit spends its net debit. These are the
amounts checked against reservations held by other owners (``journal.reservations``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from v28quant.broker.base import CONTRACT_SIZE, Broker, OrderRequest
from v28quant.journal.reservations import Claim
from v28quant.occ import parse_occ
from v28quant.quotes import QuoteSource
from v28quant.risk import held_legs_need

Capacity = dict[tuple[str, str | None], Decimal]


class Unpriced(ValueError):
    """A market order's cash cannot be valued (no limit, no estimate, no quote source)."""


async def spend_of(
    request: OrderRequest, est_price: Decimal | None, quotes: QuoteSource | None
) -> Claim | None:
    """Return the shares or cash ``request`` spends (None: nothing a reservation guards).

    Raises
    ------
    Unpriced
        A buy with no limit price, no ``est_price`` and no quote to value it.
    """
    if request.kind == "equity":
        assert request.symbol is not None
        if request.side == "sell":
            return Claim("shares", request.symbol, request.qty)
        price = await _price(request, est_price, quotes)
        return Claim("cash", None, request.qty * price)
    if request.kind == "option":
        assert request.symbol is not None
        occ = parse_occ(request.symbol)
        if request.intent == "sell_to_open":
            if occ.type == "call":
                return Claim("shares", occ.underlying, request.qty * CONTRACT_SIZE)
            return Claim("cash", None, request.qty * CONTRACT_SIZE * occ.strike)
        if request.side == "buy":
            price = await _price(request, est_price, quotes)
            return Claim("cash", None, request.qty * CONTRACT_SIZE * price)
        return None
    net = request.limit_price if request.limit_price is not None else est_price
    if net is None:
        raise Unpriced("a market multi-leg order needs est_price (net debit per unit)")
    return Claim("cash", None, request.qty * CONTRACT_SIZE * net) if net > 0 else None


def pays_cash(request: Mapping[str, Any]) -> bool:
    """Whether filling the journaled ``request`` pays out of the account what it reserved.

    True for a buy and a multi-leg net debit (limit > 0) whose opened legs hold nothing at
    expiry (a debit spread); False for a sale, an option written (its collateral stays in the
    account), a multi-leg debit whose opened legs still hold collateral (a put sold in a roll
    paid for: its strike x 100, not the debit) and a market multi-leg order, whose net is
    unknown here (its reservation is then kept until the position closes: never spent twice).
    """
    legs = request.get("legs")
    if legs:
        net = request.get("limit_price")
        return net is not None and Decimal(str(net)) > 0 and not _opens_collateral(legs)
    return request.get("side") == "buy"


def _opens_collateral(legs: list[Mapping[str, Any]]) -> bool:
    """Whether the legs a multi-leg order opens hold collateral once filled (``risk``'s rule)."""
    opened = {
        str(g["occ_symbol"]): int(g["ratio"]) * (1 if g["side"] == "buy" else -1)
        for g in legs
        if str(g["intent"]).endswith("_to_open")
    }
    need = held_legs_need(opened)
    return need is None or need > 0


async def _price(
    request: OrderRequest, est_price: Decimal | None, quotes: QuoteSource | None
) -> Decimal:
    if request.limit_price is not None:
        return request.limit_price
    if est_price is not None:
        return est_price
    if quotes is None:
        raise Unpriced(
            f"cannot value a market buy of {request.symbol}: give a limit price, "
            "Decision.est_price, or the executor a quote source"
        )
    assert request.symbol is not None
    return (await quotes.quote(request.symbol)).ask


async def capacity_for(broker: Broker, claims: list[Claim]) -> Capacity:
    """Return what the account holds for each claim's kind and symbol: long shares, or cash."""
    out: Capacity = {}
    if any(c.kind == "shares" for c in claims):
        held = {p.symbol: p.qty for p in await broker.positions()}
        for c in claims:
            if c.kind == "shares":
                out[("shares", c.symbol)] = max(held.get(c.symbol or "", Decimal(0)), Decimal(0))
    if any(c.kind == "cash" for c in claims):
        out[("cash", None)] = max((await broker.account()).cash, Decimal(0))
    return out
