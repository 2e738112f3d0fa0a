"""Order handling of the fake Alpaca trading API: submit, replace, matching, fills, expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fakes.alpaca_common import _NS, _OPEN, NY, _err, _iso, _occ, _Reply, _s


class OrdersMixin:
    """Order state changes of ``FakeAlpacaTrading`` (called under its lock)."""

    def _next_id(self) -> str:
        self._seq += 1
        return str(uuid.uuid5(_NS, f"order-{self._seq}"))

    def _order(
        self,
        oid: str,
        cid: str,
        sym: str,
        qty: Decimal,
        side: str,
        typ: str,
        tif: str,
        limit: Decimal | None,
        intent: str,
        order_class: str,
        legs: list[dict[str, Any]] | None,
        ratio: str | None = None,
    ) -> dict[str, Any]:
        t = _iso(self.now)
        return {
            "id": oid,
            "client_order_id": cid,
            "created_at": t,
            "updated_at": t,
            "submitted_at": t,
            "filled_at": None,
            "expired_at": None,
            "expires_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(_NS, sym)) if sym else "",
            "symbol": sym,
            "asset_class": ("us_option" if _occ(sym) else "us_equity") if sym else "",
            "notional": None,
            "qty": _s(qty),
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": order_class,
            "order_type": typ,
            "type": typ,
            "side": side,
            "position_intent": intent,
            "time_in_force": tif,
            "limit_price": _s(limit),
            "stop_price": None,
            "status": "accepted",
            "extended_hours": False,
            "legs": legs,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "ratio_qty": ratio,
        }

    def _validate_option(self, sym: str, side: str, intent: str, qty: Decimal, tif: str) -> None:
        if sym not in self.quotes:
            raise _err(422, 40010001, f'asset "{sym}" not found')
        if tif != "day":
            raise _err(
                422, 42210000, "order_time_in_force provided not supported for options trading"
            )
        if qty != qty.to_integral_value():
            raise _err(422, 40010001, "qty must be integer for options")
        if self.options_level < 1:
            raise _err(403, 40310000, "account not eligible to trade options")
        if intent.endswith("_to_close"):
            have = self.positions.get(sym, [Decimal(0)])[0]
            if (have if side == "sell" else -have) < qty:
                raise _err(
                    403,
                    40310000,
                    f"insufficient qty available for order "
                    f"(requested: {qty}, available: {max(have, Decimal(0))})",
                )

    def _validate_stock_side(self, sym: str, side: str, qty: Decimal, have: Decimal) -> None:
        """Alpaca's rules for a stock order against the position ``have`` (signed shares).

        One order never turns a long into a short or a short into a long; a short sale needs
        an account allowed to short, whole shares, and a stock easy to borrow (the Trading API
        shorts no hard-to-borrow stock).
        """
        if side == "sell" and have > 0 and qty > have:
            raise _err(
                403,
                40310000,
                f"insufficient qty available for order (requested: {qty}, available: {have})",
            )
        if side == "buy" and have < 0 and qty > -have:
            raise _err(
                403,
                40310000,
                f"insufficient qty available for order (requested: {qty}, available: {-have})",
            )
        if side == "sell" and have <= 0:
            if not self.shorting_enabled:
                raise _err(
                    403,
                    40310000,
                    f"insufficient qty available for order (requested: {qty}, available: 0)",
                )
            if qty != qty.to_integral_value():
                raise _err(422, 42210000, "fractional orders cannot be sold short")
            asset = self._asset(sym)
            if not (asset["shortable"] and asset["easy_to_borrow"]):
                raise _err(403, 40310000, f"asset {sym} cannot be sold short")

    def _submit(self, b: dict[str, Any]) -> dict[str, Any]:
        cid = b.get("client_order_id") or str(uuid.uuid4())
        if any(o["client_order_id"] == cid for o in self.orders.values()):
            raise _err(422, 40010001, "client_order_id must be unique")
        qty = Decimal(str(b.get("qty", "0")))
        if qty <= 0:
            raise _err(422, 40010001, "qty must be > 0")
        typ, tif = b.get("type", "market"), b.get("time_in_force", "day")
        limit = Decimal(str(b["limit_price"])) if b.get("limit_price") is not None else None
        oid = self._next_id()
        if b.get("order_class") == "mleg":
            if self.options_level < 3:
                raise _err(
                    403,
                    40310000,
                    "account not eligible for multi-leg options (options level 3 required)",
                )
            if typ not in ("market", "limit"):
                raise _err(422, 42210000, "invalid order type for options trading")
            legs, spec = [], []
            for leg in b.get("legs", []):
                ratio = Decimal(str(leg["ratio_qty"]))
                self._validate_option(
                    leg["symbol"], leg["side"], leg["position_intent"], qty * ratio, tif
                )
                lo = self._order(
                    self._next_id(),
                    cid,
                    leg["symbol"],
                    qty * ratio,
                    leg["side"],
                    "",
                    tif,
                    None,
                    leg["position_intent"],
                    "mleg",
                    None,
                    _s(ratio),
                )
                lo["order_type"] = lo["type"] = ""
                legs.append(lo)
                spec.append((leg["symbol"], leg["side"], leg["position_intent"], ratio))
            net = sum(
                (
                    (1 if side == "buy" else -1) * r * self.quotes[sym][1 if side == "buy" else 0]
                    for sym, side, _, r in spec
                ),
                Decimal(0),
            )
            hold = self._hold_for(spec, qty, net if limit is None else limit)
            o = self._order(oid, cid, "", qty, "", typ, tif, limit, "", "mleg", legs)
            o["side"] = o["type"] = o["order_type"] = o["position_intent"] = ""
        else:
            sym, side = b.get("symbol", ""), b.get("side", "buy")
            intent = b.get("position_intent") or (
                "buy_to_open" if side == "buy" else "sell_to_close"
            )
            occ = _occ(sym)
            if occ:
                self._validate_option(sym, side, intent, qty, tif)
                if typ not in ("market", "limit", "stop", "stop_limit"):
                    raise _err(422, 42210000, "invalid order type for options trading")
                ask = self.quotes[sym][1]
                if intent == "buy_to_open" and self.options_level < 2:
                    raise _err(403, 40310000, "options level 2 required to buy options")
                if intent == "sell_to_open" and occ[2]:
                    held = self.positions.get(occ[0], [Decimal(0)])[0]
                    covered = (
                        sum(
                            (
                                -q
                                for s, (q, _) in self.positions.items()
                                if q < 0 and (p := _occ(s)) and p[0] == occ[0] and p[2]
                            ),
                            Decimal(0),
                        )
                        * 100
                    )
                    avail = held - covered
                    if avail < qty * 100:
                        raise _err(
                            403,
                            40310000,
                            f"insufficient underlying qty available for "
                            f"covered call (required: {qty * 100}, available: {avail})",
                            required_qty=_s(qty * 100),
                            available_qty=_s(avail),
                            symbol=occ[0],
                        )
                hold = self._hold_for(
                    [(sym, side, intent, Decimal(1))],
                    qty,
                    (limit or ask) if side == "buy" else Decimal(0),
                )
            else:
                if sym not in self.quotes:
                    raise _err(422, 40010001, f'asset "{sym}" not found')
                _bid, ask = self.quotes[sym][:2]
                have = self.positions.get(sym, [Decimal(0)])[0]
                if qty != qty.to_integral_value() and not self._asset(sym)["fractionable"]:
                    # only closing the position (DELETE /v2/positions/{symbol}) sells a fraction
                    raise _err(422, 42210000, f"asset {sym} is not fractionable")
                self._validate_stock_side(sym, side, qty, have)
                opens_short = side == "sell" and have <= 0
                hold = (limit or ask) if side == "buy" or opens_short else Decimal(0)
            o = self._order(oid, cid, sym, qty, side, typ, tif, limit, intent, "simple", None)
        if hold * qty > self._bp():
            kind = "options buying power" if o["asset_class"] != "us_equity" else "buying power"
            raise _err(403, 40310000, f"insufficient {kind}")
        o["_hold"] = str(hold)
        self.orders[oid] = o
        if self._is_open():
            o["status"] = "new"
            for leg in o["legs"] or []:
                leg["status"] = "new"
            self._emit("new", o)
            self._match(o)
        return self._public(o)

    def _public(self, o: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in o.items() if not k.startswith("_")}

    def _replace(self, o: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        if o["status"] not in _OPEN:
            raise _err(422, 42210000, "order is not replaceable")
        qty = Decimal(str(b["qty"])) if b.get("qty") is not None else Decimal(o["qty"])
        limit = (
            Decimal(str(b["limit_price"]))
            if b.get("limit_price") is not None
            else (Decimal(o["limit_price"]) if o["limit_price"] else None)
        )
        was = Decimal(o["limit_price"]) if o["limit_price"] else None
        if qty == Decimal(o["qty"]) and limit == was:
            raise _err(422, 42210000, "order parameters are not changed")
        o["status"] = "replaced"
        o["replaced_at"] = o["updated_at"] = _iso(self.now)
        cid = b.get("client_order_id") or str(uuid.uuid4())
        body: dict[str, Any] = {
            "symbol": o["symbol"],
            "qty": qty,
            "side": o["side"],
            "type": o["type"],
            "time_in_force": o["time_in_force"],
            "limit_price": limit,
            "position_intent": o["position_intent"],
            "client_order_id": cid,
        }
        if o["order_class"] == "mleg":  # the same legs, as one new multi-leg order
            body = {
                "order_class": "mleg",
                "qty": qty,
                "type": "market" if limit is None else "limit",
                "time_in_force": o["time_in_force"],
                "limit_price": limit,
                "client_order_id": cid,
                "legs": [
                    {k: leg[k] for k in ("symbol", "side", "position_intent", "ratio_qty")}
                    for leg in o["legs"]
                ],
            }
        for leg in o["legs"] or []:
            leg["status"] = "replaced"
        try:
            new = self._submit(body)
        except _Reply:
            o["status"] = "new"
            for leg in o["legs"] or []:
                leg["status"] = "new"
            raise
        o["replaced_by"] = new["id"]
        self.orders[new["id"]]["replaces"] = o["id"]
        new["replaces"] = o["id"]
        return new

    def _match(self, o: dict[str, Any]) -> None:
        remaining = Decimal(o["qty"]) - Decimal(o["filled_qty"])
        if o["order_class"] == "mleg":
            legs = o["legs"]
            prices, units = {}, remaining
            for leg in legs:
                bid, ask, bs, as_ = self.quotes[leg["symbol"]]
                prices[leg["symbol"]] = ask if leg["side"] == "buy" else bid
                size = as_ if leg["side"] == "buy" else bs
                if size:
                    units = min(units, Decimal(size) // Decimal(leg["ratio_qty"]))
            net = sum(
                (
                    (1 if leg["side"] == "buy" else -1)
                    * Decimal(leg["ratio_qty"])
                    * prices[leg["symbol"]]
                    for leg in legs
                ),
                Decimal(0),
            )
            lim = o["limit_price"]
            if units <= 0 or (lim is not None and net > Decimal(lim)):
                return
            for leg in legs:
                q = units * Decimal(leg["ratio_qty"])
                self._fill(leg, q, prices[leg["symbol"]])
            self._fill(o, units, net, record=False)
            return
        bid, ask, bs, as_ = self.quotes[o["symbol"]]
        buy = o["side"] == "buy"
        px, size = (ask, as_) if buy else (bid, bs)
        lim = Decimal(o["limit_price"]) if o["limit_price"] else None
        if px <= 0 or (lim is not None and (px > lim if buy else px < lim)):
            return
        if lim is not None:
            px = min(px, lim) if buy else max(px, lim)
        q = min(remaining, Decimal(size)) if size else remaining
        self._fill(o, q, px)

    def _fill(self, o: dict[str, Any], q: Decimal, px: Decimal, record: bool = True) -> None:
        filled = Decimal(o["filled_qty"])
        avg = Decimal(o["filled_avg_price"] or 0)
        new_filled = filled + q
        o["filled_avg_price"] = _s((avg * filled + px * q) / new_filled)
        o["filled_qty"] = _s(new_filled)
        done = new_filled >= Decimal(o["qty"])
        o["status"] = "filled" if done else "partially_filled"
        o["updated_at"] = _iso(self.now)
        if done:
            o["filled_at"] = _iso(self.now)
        if o["order_class"] != "mleg" or not record:  # legs report through their parent
            self._emit("fill" if done else "partial_fill", o)
        if not record:
            return
        sym = o["symbol"]
        signed = q if o["side"] == "buy" else -q
        self.cash -= signed * px * self._mult(sym)
        self._move(sym, signed, px)
        self._activity(
            {
                "activity_type": "FILL",
                "transaction_time": _iso(self.now),
                "type": "fill" if done else "partial_fill",
                "price": _s(px),
                "qty": _s(q),
                "side": o["side"],
                "symbol": sym,
                "leaves_qty": _s(Decimal(o["qty"]) - new_filled),
                "order_id": o["id"],
                "cum_qty": _s(new_filled),
                "order_status": o["status"],
            },
            self.now,
        )

    def _move(self, sym: str, signed: Decimal, px: Decimal) -> None:
        """Trade ``signed`` shares of ``sym`` at ``px``: the intraday weighted average moves.

        A sale leaves the average until the next day starts (``fakes.alpaca_lots``).
        """
        self._start_day(self.now.astimezone(NY).date())
        lots = self._lots_after(sym, signed, px)
        qty, avg = self.positions.get(sym, [Decimal(0), Decimal(0)])
        new = qty + signed
        if qty == 0 or (qty > 0) == (signed > 0):
            avg = (qty * avg + signed * px) / new if new else Decimal(0)
        elif new != 0 and (new > 0) != (qty > 0):
            avg = px
        if new == 0:
            self.positions.pop(sym, None)
        else:
            self.positions[sym] = [new, avg]
        self._keep_lots(sym, lots)

    def _activity(self, row: dict[str, Any], ts: datetime) -> None:
        self._seq += 1
        row = {
            "id": f"{ts.astimezone(UTC):%Y%m%d%H%M%S%f}::{uuid.uuid5(_NS, str(self._seq))}",
            **row,
            "_ts": ts,
        }
        self.activities.append(row)

    def _settle(self, day: date, close: datetime) -> None:
        for sym in sorted(self.positions):
            p = _occ(sym)
            if not p or p[1] != day:
                continue
            root, _, call, k = p
            spot = self.closes[(root, day)]
            qty = self.positions.pop(sym)[0]
            itm = (spot - k) if call else (k - spot)
            nta = {
                "date": day.isoformat(),
                "net_amount": "0",
                "symbol": sym,
                "qty": _s(-qty),
                "status": "executed",
            }
            if itm >= Decimal("0.01"):
                kind = "OPEXC" if qty > 0 else "OPASN"
                desc = "Option Exercise" if qty > 0 else "Option Assignment"
                self._activity({"activity_type": kind, "description": desc, **nta}, close)
                shares = 100 * qty * (1 if call else -1)
                self.cash -= shares * k
                self._move(root, shares, k)
                self._activity(
                    {
                        "activity_type": "OPTRD",
                        "date": day.isoformat(),
                        "net_amount": _s(-shares * k),
                        "description": "Option Trade",
                        "symbol": root,
                        "qty": _s(shares),
                        "price": _s(k),
                        "status": "executed",
                    },
                    close,
                )
            else:
                self._activity(
                    {"activity_type": "OPEXP", "description": "Option Expiry", **nta}, close
                )
