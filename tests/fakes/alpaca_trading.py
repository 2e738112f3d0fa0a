"""A loopback fake of Alpaca's trading API (``/v2/...``) for tests that drive the real alpaca-py.

Shapes, codes and messages follow research/alpaca.md §3, §5 and §8 (captured from alpaca-py
0.44 and Alpaca's docs). The fake is stateful and deterministic:

- orders go ``accepted`` (market closed) or ``new``, then ``partially_filled``/``filled`` against
  quotes the test sets (at most the quote's size per matching pass), ``canceled``,
  ``replaced``, or ``expired`` (day orders, at the session close);
- mleg orders fill all legs at once at the net of the legs' quotes;
- option expiry at a session close: OPEXC/OPASN + OPTRD, or OPEXP, as account activities;
- options levels (1: covered call / cash-secured put, 2: long options, 3: mleg), covered calls
  need the shares, buying power is checked: premiums in full, and the option book's worst value
  at expiry over every underlying price (shares held count; a cash-secured put holds strike x
  100, a vertical its width x 100) held as collateral, research/alpaca.md §6 "buying power >=
  max loss of the structure";
- faults: any status/body/headers for a method+path (a body of its own replaces the answer
  whatever the status: a proxy's HTML 200), optionally *after* the request was processed (an
  order stored, then a 500), slow responses, and requests held until the test releases them
  (``hold``: a POST that lands late, or, with ``after_store``, one stored whose answer never
  comes in time, with no race against the client's timeout);
- ``responses`` records what each request was answered.

Time is the fake's own (``advance_to``), the calendar is exchange_calendars' XNYS.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pandas as pd

from fakes.loopback import serve, stop

NY = ZoneInfo("America/New_York")
_NS = uuid.UUID("a1a1a1a1-0000-4000-8000-000000000001")
_OPEN = {"accepted", "new", "partially_filled", "pending_new", "pending_cancel", "pending_replace"}
_OCC = re.compile(r"^([A-Z.]{1,6})(\d{6})([CP])(\d{8})$")
_XNYS = None


def _cal():
    global _XNYS
    if _XNYS is None:
        _XNYS = xc.get_calendar("XNYS")
    return _XNYS


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _s(d: Decimal | None) -> str | None:
    return None if d is None else format(d.normalize(), "f")


def _occ(sym: str) -> tuple[str, date, bool, Decimal] | None:
    m = _OCC.match(sym)
    if not m:
        return None
    root, ymd, cp, k = m.groups()
    return (
        root,
        date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:])),
        cp == "C",
        Decimal(int(k)) / 1000,
    )


class _Reply(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def _err(status: int, code: int | None, message: str, **extra: Any) -> _Reply:
    body: dict[str, Any] = {"message": message, **extra}
    if code is not None:
        body = {"code": code, **body}
    return _Reply(status, body)


@dataclass
class Fault:
    method: str
    path: str  # regex matched against the path (query excluded)
    status: int = 500
    body: Any = None
    headers: dict[str, str] | None = None
    times: int = 1
    after_store: bool = False  # process the request, then answer with this fault
    delay_s: float = 0.0  # sleep before answering (with or without a fault status)
    hold: threading.Event | None = None  # wait for the test to set it before processing
    # (with after_store: after processing, before answering)

    @property
    def replaces_answer(self) -> bool:
        """An error status, or any status with a body of its own (a proxy's HTML 200)."""
        return self.status >= 400 or self.body is not None


class FakeAlpacaTrading:
    """State and HTTP server. ``url`` is what alpaca-py's ``url_override`` takes."""

    def __init__(self, now: datetime, cash: Decimal = Decimal(100_000), options_level: int = 3):
        self.now = now
        self.cash = Decimal(cash)
        self.options_level = options_level
        self.account_id = "e6fe16f3-64a4-4921-8928-cadf02f92f98"
        self.quotes: dict[str, tuple[Decimal, Decimal, int, int]] = {}
        self.closes: dict[tuple[str, date], Decimal] = {}
        self.positions: dict[str, list[Decimal]] = {}  # symbol -> [qty, avg]
        self.orders: dict[str, dict[str, Any]] = {}
        self.activities: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.responses: list[tuple[str, str, int, Any]] = []  # what each request was answered
        # Called with (event, public order) on each order event, as Alpaca's trade-updates
        # stream pushes them (``fakes.alpaca_stream`` broadcasts them to websocket clients).
        self.on_event: Any = None
        self._seq = 0
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> FakeAlpacaTrading:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _go(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PATCH = do_DELETE = _go

        self._server = serve(Handler)
        return self

    def stop(self) -> None:
        stop(self._server)
        self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def set_quote(
        self, symbol: str, bid: str, ask: str, bid_size: int = 0, ask_size: int = 0
    ) -> None:
        with self._lock:
            self.quotes[symbol] = (Decimal(bid), Decimal(ask), bid_size, ask_size)

    def set_close(self, symbol: str, day: date, price: str) -> None:
        with self._lock:
            self.closes[(symbol, day)] = Decimal(price)

    def inject(
        self,
        method: str,
        path: str,
        status: int = 500,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after_store: bool = False,
        delay_s: float = 0.0,
        hold: threading.Event | None = None,
    ) -> None:
        with self._lock:
            self.faults.append(
                Fault(
                    method.upper(), path, status, body, headers, times, after_store, delay_s, hold
                )
            )

    def reject(self, order_id: str) -> None:
        """Reject an accepted or new order, as an asynchronous risk check does."""
        with self._lock:
            o = self.orders[order_id]
            o["status"] = "rejected"
            o["failed_at"] = o["updated_at"] = _iso(self.now)
            self._emit("rejected", o)

    def _emit(self, event: str, o: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event, self._public(o))

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and re.fullmatch(path, p))

    def advance_to(self, when: datetime) -> None:
        """Move time on.

        expire day orders and settle options at each close passed, then match open orders if the
        market is open.
        """
        with self._lock:
            sched = _cal().schedule
            lo, hi = pd.Timestamp(self.now), pd.Timestamp(when)
            for day, close in zip(sched.index, sched["close"], strict=True):
                if lo < close <= hi:
                    close_dt = close.to_pydatetime()
                    for o in self.orders.values():
                        if o["status"] in _OPEN and o["time_in_force"] == "day":
                            o["status"] = "expired"
                            o["expired_at"] = o["updated_at"] = _iso(close_dt)
                            for leg in o["legs"] or []:
                                leg["status"] = "expired"
                            self._emit("expired", o)
                    self._settle(day.date(), close_dt)
            self.now = when
            self.process()

    def process(self) -> None:
        """Match every open order against the current quotes (if the market is open)."""
        with self._lock:
            if not self._is_open():
                return
            for o in sorted(self.orders.values(), key=lambda o: o["submitted_at"]):
                if o["status"] in _OPEN:
                    self._match(o)

    # ------------------------------------------------------------------ HTTP

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        u = urlparse(h.path)
        path, query = u.path, {k: v[-1] for k, v in parse_qs(u.query).items()}
        n = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(n)) if n else None
        method = h.command
        with self._lock:
            self.requests.append((method, path, body if body is not None else query))
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.method == method and f.times > 0 and re.fullmatch(f.path, path)
                ),
                None,
            )
            if fault is not None:
                fault.times -= 1
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        if fault is not None and fault.hold is not None and not fault.after_store:
            fault.hold.wait(timeout=60)
        try:
            if not (h.headers.get("APCA-API-KEY-ID") and h.headers.get("APCA-API-SECRET-KEY")):
                raise _err(401, None, "unauthorized")
            if fault is not None and not fault.after_store and fault.replaces_answer:
                raise _Reply(fault.status, fault.body, fault.headers)
            with self._lock:
                result = self._route(method, path, query, body)
            if fault is not None and fault.after_store and fault.hold is not None:
                fault.hold.wait(timeout=60)  # stored; the answer waits for the test
            if fault is not None and fault.after_store and fault.replaces_answer:
                raise _Reply(fault.status, fault.body, fault.headers)
            status, payload = (204, None) if result is None else (200, result)
            headers = dict(fault.headers or {}) if fault is not None else {}
        except _Reply as r:
            status, payload, headers = r.status, r.body, r.headers
        with self._lock:
            self.responses.append((method, path, status, payload))
        self._send(h, status, payload, headers)

    def _send(
        self, h: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str]
    ) -> None:
        if payload is None:
            data = b""
        elif isinstance(payload, str | bytes):
            data = payload.encode() if isinstance(payload, str) else payload
        else:
            data = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            reset = int(time.time()) + 60
            base = {
                "X-Ratelimit-Limit": "200",
                "X-Ratelimit-Remaining": "199",
                "X-Ratelimit-Reset": str(reset),
            }
            for k, v in {**base, **headers}.items():
                h.send_header(k, v)
            h.end_headers()
            if data:
                h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to tell it

    def _route(self, method: str, path: str, q: dict[str, str], body: Any) -> Any:
        if path == "/v2/account" and method == "GET":
            return self._account()
        if path == "/v2/clock" and method == "GET":
            return self._clock()
        if path == "/v2/calendar" and method == "GET":
            return self._calendar(q)
        if path == "/v2/positions" and method == "GET":
            return [self._position(s) for s in sorted(self.positions)]
        if path == "/v2/orders" and method == "POST":
            return self._submit(body or {})
        if path == "/v2/orders" and method == "GET":
            return self._list_orders(q)
        if path == "/v2/orders:by_client_order_id" and method == "GET":
            cid = q.get("client_order_id", "")
            o = next((o for o in self.orders.values() if o["client_order_id"] == cid), None)
            if o is None:
                raise _err(404, 40410000, "order not found")
            return o
        m = re.fullmatch(r"/v2/orders/([0-9a-f-]{36})", path)
        if m:
            o = self.orders.get(m.group(1))
            if o is None:
                raise _err(404, 40410000, "order not found")
            if method == "GET":
                return o
            if method == "DELETE":
                if o["status"] not in _OPEN:
                    raise _err(422, 42210000, "order is not cancelable")
                o["status"] = "canceled"
                o["canceled_at"] = o["updated_at"] = _iso(self.now)
                for leg in o["legs"] or []:
                    leg["status"] = "canceled"
                self._emit("canceled", o)
                return None
            if method == "PATCH":
                return self._replace(o, body or {})
        if path == "/v2/account/activities" and method == "GET":
            return self._list_activities(q)
        if path == "/v2/options/contracts" and method == "GET":
            return self._contracts(q)
        raise _err(404, 40410000, f"endpoint not found: {method} {path}")

    # ------------------------------------------------------------------ views

    def _is_open(self) -> bool:
        return bool(_cal().is_open_on_minute(pd.Timestamp(self.now).floor("min")))

    def _clock(self) -> dict[str, Any]:
        t = pd.Timestamp(self.now).floor("min")
        return {
            "timestamp": self.now.astimezone(NY).isoformat(),
            "is_open": self._is_open(),
            "next_open": _cal().next_open(t).tz_convert(NY).isoformat(),
            "next_close": _cal().next_close(t).tz_convert(NY).isoformat(),
        }

    def _calendar(self, q: dict[str, str]) -> list[dict[str, Any]]:
        sched = _cal().schedule.loc[q.get("start", "2024-01-01") : q.get("end", "2024-12-31")]
        out = []
        for d, o, c in zip(sched.index, sched["open"], sched["close"], strict=True):
            out.append(
                {
                    "date": d.strftime("%Y-%m-%d"),
                    "open": o.tz_convert(NY).strftime("%H:%M"),
                    "close": c.tz_convert(NY).strftime("%H:%M"),
                    "session_open": "0400",
                    "session_close": "2000",
                    "settlement_date": d.strftime("%Y-%m-%d"),
                }
            )
        return out

    def _mult(self, sym: str) -> Decimal:
        return Decimal(100) if _occ(sym) else Decimal(1)

    def _mid(self, sym: str, fallback: Decimal) -> Decimal:
        q = self.quotes.get(sym)
        return (q[0] + q[1]) / 2 if q else fallback

    def _collateral(self, extra: tuple[tuple[str, Decimal], ...] = ()) -> Decimal | None:
        """Cash the option book (plus ``extra`` (symbol, signed contracts)) could cost at expiry.

        per underlying, minus the lowest value of options + shares held over S >= 0 (piecewise
        linear: the minimum is at 0, at a strike or, if net short calls exceed the shares,
        unbounded: None).
        """
        book: dict[str, list[tuple[bool, Decimal, Decimal]]] = {}
        for sym, n in [*((s, q) for s, (q, _) in self.positions.items()), *extra]:
            p = _occ(sym)
            if p:
                book.setdefault(p[0], []).append((p[2], p[3], n))
        out = Decimal(0)
        for root, legs in book.items():
            shares = max(self.positions.get(root, [Decimal(0)])[0], Decimal(0))
            if sum((n for call, _, n in legs if call), Decimal(0)) * 100 + shares < 0:
                return None

            def value(x: Decimal, legs=legs, shares=shares) -> Decimal:
                return shares * x + sum(
                    (
                        n * 100 * max((x - k) if call else (k - x), Decimal(0))
                        for call, k, n in legs
                    ),
                    Decimal(0),
                )

            worst = min(value(x) for x in [Decimal(0), *(k for _, k, _ in legs)])
            out += max(-worst, Decimal(0))
        return out

    def _hold_for(
        self, legs: list[tuple[str, str, str, Decimal]], qty: Decimal, debit: Decimal
    ) -> Decimal:
        """Buying power one unit of an option order holds.

        its debit and the collateral its opening legs (symbol, side, intent, ratio) add to the book.
        """
        now = self._collateral()
        extra = tuple(
            (sym, (ratio if side == "buy" else -ratio) * qty)
            for sym, side, intent, ratio in legs
            if intent.endswith("_to_open")
        )
        after = self._collateral(extra)
        if after is None:
            raise _err(403, 40310000, "insufficient options buying power (uncovered short calls)")
        return max(debit, Decimal(0)) * 100 + (after - (now or Decimal(0))) / qty

    def _holds(self) -> Decimal:
        out = Decimal(0)
        for o in self.orders.values():
            if o["status"] in _OPEN:
                out += Decimal(o["_hold"]) * (Decimal(o["qty"]) - Decimal(o["filled_qty"]))
        return out

    def _bp(self) -> Decimal:
        return self.cash - (self._collateral() or Decimal(0)) - self._holds()

    def _account(self) -> dict[str, Any]:
        longs = shorts = Decimal(0)
        for sym, (qty, avg) in self.positions.items():
            mv = qty * self._mid(sym, avg) * self._mult(sym)
            longs, shorts = (longs + mv, shorts) if mv >= 0 else (longs, shorts + mv)
        eq = self.cash + longs + shorts
        bp = self._bp()
        return {
            "id": self.account_id,
            "account_number": "PA3FAKE0001",
            "status": "ACTIVE",
            "currency": "USD",
            "cash": _s(self.cash),
            "equity": _s(eq),
            "last_equity": _s(eq),
            "portfolio_value": _s(eq),
            "buying_power": _s(bp),
            "regt_buying_power": _s(bp),
            "non_marginable_buying_power": _s(bp),
            "options_buying_power": _s(bp),
            "long_market_value": _s(longs),
            "short_market_value": _s(shorts),
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "multiplier": "1",
            "shorting_enabled": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "trade_suspended_by_user": False,
            "created_at": "2024-01-02T15:00:00Z",
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "options_approved_level": self.options_level,
            "options_trading_level": self.options_level,
        }

    def _position(self, sym: str) -> dict[str, Any]:
        qty, avg = self.positions[sym]
        m = self._mult(sym)
        px = self._mid(sym, avg)
        return {
            "asset_id": str(uuid.uuid5(_NS, sym)),
            "symbol": sym,
            "exchange": "" if _occ(sym) else "ARCA",
            "asset_class": "us_option" if _occ(sym) else "us_equity",
            "asset_marginable": False,
            "qty": _s(qty),
            "qty_available": _s(qty),
            "side": "long" if qty > 0 else "short",
            "avg_entry_price": _s(avg),
            "market_value": _s(qty * px * m),
            "cost_basis": _s(qty * avg * m),
            "unrealized_pl": _s(qty * (px - avg) * m),
            "current_price": _s(px),
            "lastday_price": _s(px),
            "change_today": "0",
        }

    def _list_orders(self, q: dict[str, str]) -> list[dict[str, Any]]:
        """Alpaca's paging.

        at most ``limit`` (<= 500) orders, ``after``/``until`` exclusive bounds on ``submitted_at``,
        newest first unless ``direction=asc``; no page token.
        """
        st = q.get("status", "open")
        limit = int(q.get("limit", 50))
        if not 1 <= limit <= 500:
            raise _err(422, 40010001, "limit must be between 1 and 500")
        sel = [
            o
            for o in self.orders.values()
            if st == "all" or ((o["status"] in _OPEN) == (st == "open"))
        ]
        for bound, keep in (("after", lambda t, b: t > b), ("until", lambda t, b: t < b)):
            if bound in q:
                b = _parse_ts(q[bound])
                sel = [o for o in sel if keep(_parse_ts(o["submitted_at"]), b)]
        sel.sort(
            key=lambda o: (_parse_ts(o["submitted_at"]), o["id"]),
            reverse=q.get("direction", "desc") == "desc",
        )
        return sel[:limit]

    def _list_activities(self, q: dict[str, str]) -> list[dict[str, Any]]:
        rows = list(self.activities)
        if "activity_types" in q:
            types = set(q["activity_types"].split(","))
            rows = [r for r in rows if r["activity_type"] in types]
        if "after" in q:
            after = datetime.fromisoformat(q["after"].replace("Z", "+00:00"))
            rows = [r for r in rows if r["_ts"] > after]
        if q.get("direction", "desc") == "desc":
            rows.reverse()
        if "page_token" in q:
            ids = [r["id"] for r in rows]
            rows = rows[ids.index(q["page_token"]) + 1 :] if q["page_token"] in ids else []
        rows = rows[: int(q.get("page_size", 100))]
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]

    def _contracts(self, q: dict[str, str]) -> dict[str, Any]:
        unders = set(q.get("underlying_symbols", "").split(",")) - {""}
        syms = sorted(s for s in self.quotes if _occ(s) and (not unders or _occ(s)[0] in unders))  # type: ignore[index]
        start = int(q.get("page_token", 0))
        limit = int(q.get("limit", 100))
        page = syms[start : start + limit]
        out = []
        for s in page:
            root, exp, call, k = _occ(s)  # type: ignore[misc]
            out.append(
                {
                    "id": str(uuid.uuid5(_NS, s)),
                    "symbol": s,
                    "name": f"{root} {exp:%b %d %Y} {k} {'Call' if call else 'Put'}",
                    "status": "active",
                    "tradable": True,
                    "expiration_date": exp.isoformat(),
                    "root_symbol": root,
                    "underlying_symbol": root,
                    "underlying_asset_id": str(uuid.uuid5(_NS, root)),
                    "type": "call" if call else "put",
                    "style": "american",
                    "strike_price": _s(k),
                    "size": "100",
                    "open_interest": "100",
                    "open_interest_date": "2024-06-03",
                    "close_price": "1.00",
                    "close_price_date": "2024-06-03",
                }
            )
        nxt = str(start + limit) if start + limit < len(syms) else None
        return {"option_contracts": out, "next_page_token": nxt}

    # ------------------------------------------------------------------ orders

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
                if side == "sell":
                    have = self.positions.get(sym, [Decimal(0)])[0]
                    if have < qty:
                        raise _err(
                            403,
                            40310000,
                            f"insufficient qty available for order "
                            f"(requested: {qty}, available: {have})",
                        )
                hold = (limit or ask) if side == "buy" else Decimal(0)
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
        o["status"] = "replaced"
        o["replaced_at"] = o["updated_at"] = _iso(self.now)
        body = {
            "symbol": o["symbol"],
            "qty": qty,
            "side": o["side"],
            "type": o["type"],
            "time_in_force": o["time_in_force"],
            "limit_price": limit,
            "position_intent": o["position_intent"],
            "client_order_id": b.get("client_order_id") or str(uuid.uuid4()),
        }
        try:
            new = self._submit(body)
        except _Reply:
            o["status"] = "new"
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
