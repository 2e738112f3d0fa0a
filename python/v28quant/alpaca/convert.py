"""alpaca-py's models and errors to ours, and our order requests to alpaca-py's.

Shared by the broker adapter and the trade-updates stream; pure conversions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderClass, OrderSide, PositionIntent, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, OptionLegRequest

from v28quant.broker.base import (
    Activity,
    AuthenticationError,
    BrokerError,
    BrokerUnavailable,
    InsufficientBuyingPower,
    OptionsLevelError,
    Order,
    OrderNotCancelable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    RateLimited,
    Side,
)
from v28quant.calendar import ET


def _safe(getter: Callable[[], Any]) -> Any:
    try:
        return getter()
    except Exception:  # APIError.code/.message json-decode the body on every access
        return None


def map_api_error(err: APIError) -> BrokerError:
    """Turn alpaca-py's ``APIError`` into the matching ``BrokerError``."""
    status = err.status_code
    code = _safe(lambda: err.code)
    message = _safe(lambda: err.message) or str(err)[:200] or f"HTTP {status}"
    text = f"Alpaca {status}: {message}"
    low = message.lower()
    kw = {"status": status, "code": code if isinstance(code, int) else None}
    if status == 401:
        return AuthenticationError(
            "Alpaca rejected the API keys (401 unauthorized): check "
            "APCA_API_KEY_ID / APCA_API_SECRET_KEY and paper vs live",
            **kw,
        )
    if status == 403:
        if "level" in low or "eligible" in low:
            return OptionsLevelError(text, **kw)
        if "insufficient" in low:
            return InsufficientBuyingPower(text, **kw)
        return OrderRejected(text, **kw)
    if status == 404:
        return OrderNotFound(text, **kw)
    if status == 422:
        if "not cancelable" in low or "not replaceable" in low:
            return OrderNotCancelable(text, **kw)
        return OrderRejected(text, **kw)
    if status == 429:
        return RateLimited(text, **kw)
    if status is not None and status >= 500:
        return BrokerUnavailable(text, **kw)
    return BrokerError(text, **kw)


def is_duplicate_cid(err: BrokerError) -> bool:
    """Tell whether ``err`` is Alpaca's 422 for a client order id it already holds."""
    low = str(err).lower()
    return (
        err.status == 422 and "client_order_id" in low and ("unique" in low or "duplicate" in low)
    )


def dec_or_none(x: Any) -> Decimal | None:
    """Read an optional number of alpaca-py's (None or "" stays None) as a ``Decimal``."""
    if x is None or x == "":
        return None
    return Decimal(str(x))


def enum_value(e: Any) -> Any:
    """Return an alpaca-py enum's value (None stays None; a plain value is returned as is)."""
    return None if e is None else getattr(e, "value", e)


def to_order(o: Any) -> Order:
    """alpaca-py ``Order`` -> our ``Order``."""
    return Order(
        id=str(o.id),
        client_order_id=o.client_order_id,
        symbol=o.symbol or None,
        qty=dec_or_none(o.qty) or Decimal(0),
        filled_qty=dec_or_none(o.filled_qty) or Decimal(0),
        filled_avg_price=dec_or_none(o.filled_avg_price),
        side=enum_value(o.side),
        type=enum_value(o.type),
        limit_price=dec_or_none(o.limit_price),
        status=OrderStatus(enum_value(o.status)),
        order_class=enum_value(o.order_class) or "simple",
        asset_class=enum_value(o.asset_class),
        intent=enum_value(o.position_intent),
        time_in_force=enum_value(o.time_in_force),
        legs=tuple(to_order(leg) for leg in (o.legs or ())),
        ratio=int(Decimal(str(o.ratio_qty))) if o.ratio_qty not in (None, "") else None,
        submitted_at=o.submitted_at,
        updated_at=o.updated_at,
        replaced_by=str(o.replaced_by) if o.replaced_by else None,
        replaces=str(o.replaces) if o.replaces else None,
    )


def _trade_side(side: str | None) -> Side | None:
    """Return a trade activity's execution side as ``buy`` or ``sell`` (None when neither).

    Alpaca reports it in full: ``sell_short``, ``sell_short_exempt`` and ``sell_plus`` are
    sales and ``buy_minus`` a purchase, each moving the position as a plain sell or buy does.
    """
    if side is None:
        return None
    if side == "buy" or side.startswith("buy_"):
        return "buy"
    if side == "sell" or side.startswith("sell_"):
        return "sell"
    return None


def to_activity(r: dict[str, Any]) -> Activity:
    """Convert a raw ``/v2/account/activities`` row to an ``Activity`` (qty signed)."""
    kind = r["activity_type"]
    if "transaction_time" in r:
        ts = datetime.fromisoformat(str(r["transaction_time"]).replace("Z", "+00:00"))
    elif "date" in r:  # non-trade activities carry a date only: they happen at/after that session
        ts = datetime.combine(date.fromisoformat(r["date"]), time(16, 0), tzinfo=ET)
    else:
        raise BrokerError(f"Alpaca activity {r.get('id')!r} has neither transaction_time nor date")
    qty = dec_or_none(r.get("qty")) or Decimal(0)
    side = _trade_side(r.get("side") or None)
    if kind in ("FILL", "PARTIAL_FILL") and side == "sell":
        qty = -qty
    return Activity(
        id=str(r["id"]),
        type=kind,
        symbol=r.get("symbol") or "",
        qty=qty,
        price=dec_or_none(r.get("price")),
        ts=ts.astimezone(UTC),
        order_id=r.get("order_id"),
        side=side,
        raw=r,
    )


def to_sdk_request(req: OrderRequest, client_order_id: str | None = None) -> Any:
    """Convert our ``OrderRequest`` to an alpaca-py order request.

    Floats on the wire, as the SDK types them; prices are already on the tick grid, so the
    float is exact to the cent.
    """
    common: dict[str, Any] = {
        "qty": float(req.qty),
        "time_in_force": TimeInForce(req.time_in_force),
        "client_order_id": client_order_id or req.client_order_id,
    }
    if req.kind == "mleg":
        common["order_class"] = OrderClass.MLEG
        common["legs"] = [
            OptionLegRequest(
                symbol=leg.occ_symbol,
                ratio_qty=float(leg.ratio),
                side=OrderSide(leg.side),
                position_intent=PositionIntent(leg.intent),
            )
            for leg in req.legs
        ]
    else:
        common["symbol"] = req.symbol
        common["side"] = OrderSide(req.side)
        if req.intent:
            common["position_intent"] = PositionIntent(req.intent)
    if req.type == "limit":
        return LimitOrderRequest(limit_price=float(req.limit_price), **common)  # type: ignore[arg-type]
    return MarketOrderRequest(**common)


def whole_qty(qty: Decimal | int) -> int:
    """alpaca-py's replace takes whole quantities only: refuse a fraction, never truncate it."""
    d = Decimal(str(qty))
    if d != d.to_integral_value() or d <= 0:
        raise ValueError(f"replace qty must be a positive whole number, got {qty}")
    return int(d)
