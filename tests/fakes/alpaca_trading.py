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

Time is the fake's own (``advance_to``), the calendar is exchange_calendars' XNYS less
``closed_days``: sessions the venue does not open, as on a closure announced after the
installed calendar was published (its clock, calendar, matching and closes skip them).
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd

from fakes.alpaca_common import _OPEN, NY, Fault, _cal, _err, _iso, _Reply
from fakes.alpaca_lots import LotsMixin
from fakes.alpaca_orders import OrdersMixin
from fakes.alpaca_views import ViewsMixin
from fakes.loopback import serve, stop


class FakeAlpacaTrading(ViewsMixin, OrdersMixin, LotsMixin):
    """State and HTTP server. ``url`` is what alpaca-py's ``url_override`` takes."""

    def __init__(self, now: datetime, cash: Decimal = Decimal(100_000), options_level: int = 3):
        self.now = now
        self.cash = Decimal(cash)
        self.options_level = options_level
        # a margin account that may sell short (Alpaca's ``shorting_enabled``); a cash account
        # by default
        self.shorting_enabled = False
        # each stock's asset flags where they differ from a shortable, easy-to-borrow,
        # fractionable stock, e.g. {"GME": {"easy_to_borrow": False}}
        self.assets: dict[str, dict[str, Any]] = {}
        self.daytrade_count = 0  # Alpaca's count of day trades in the last five sessions
        # Alpaca's ``last_equity`` (the previous close's equity); None: the equity now
        self.last_equity: Decimal | None = None
        self.closed_days: set[date] = set()
        self.account_id = "e6fe16f3-64a4-4921-8928-cadf02f92f98"
        self.quotes: dict[str, tuple[Decimal, Decimal, int, int]] = {}
        self.closes: dict[tuple[str, date], Decimal] = {}
        self.positions: dict[str, list[Decimal]] = {}  # symbol -> [qty, avg]
        # symbol -> (its daily lots, the [qty, avg] they left it at), ``fakes.alpaca_lots``
        self.day_lots: dict[str, tuple[list[Any], tuple[Decimal, ...]]] = {}
        self.lots_day = now.astimezone(NY).date()  # the New York day the averages were set for
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

    def split(self, symbol: str, ratio: int | Fraction, day: date) -> None:
        """Split ``symbol`` ``ratio``-for-1 on its ex-date ``day``, as Alpaca does overnight.

        The day starts first (``fakes.alpaca_lots``: the average becomes the daily lots'), then
        the position's quantity is multiplied and its average entry price divided by the
        ratio, and a non-trade ``SPLIT`` activity dated ``day`` is listed. A fraction of a share
        is paid as such (no cash in lieu), the quantity rounded to Alpaca's nine decimals: 10
        shares split 1-for-3 are 3.333333333. Alpaca documents none of that activity's fields
        beyond the common ones: its ``qty`` here is the shares added, one reading among
        several, which the client must not rely on.
        """
        num, den = Fraction(ratio).numerator, Fraction(ratio).denominator
        with self._lock:
            self._start_day(day)
            qty, avg = self.positions[symbol]
            lots = self._split_lots(symbol, Fraction(num, den))
            new = (qty * num / den).quantize(Decimal("1e-9"))
            self.positions[symbol] = [new, avg * den / num]
            self._keep_lots(symbol, lots)
            row = {
                "activity_type": "SPLIT",
                "date": day.isoformat(),
                "net_amount": "0",
                "symbol": symbol,
                "qty": str(new - qty),
                "status": "executed",
            }
            self._activity(row, datetime.combine(day, time_of_day(9, 0), tzinfo=UTC))

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
                if lo < close <= hi and day.date() not in self.closed_days:
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
            self._start_day(when.astimezone(NY).date())
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
                self._start_day(self.now.astimezone(NY).date())
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
        m = re.fullmatch(r"/v2/assets/([A-Z.]+)", path)
        if m and method == "GET":
            return self._asset(m.group(1))
        if path == "/v2/account/activities" and method == "GET":
            return self._list_activities(q)
        if path == "/v2/options/contracts" and method == "GET":
            return self._contracts(q)
        raise _err(404, 40410000, f"endpoint not found: {method} {path}")


__all__ = ["FakeAlpacaTrading", "Fault"]
