"""Loopback fake of Alpaca's market-data API (and ``/v2/options/contracts``) for tests.

Serves, on 127.0.0.1, the JSON shapes alpaca-py 0.44 parses (research/alpaca.md §4):
``/v2/stocks/bars``, ``/v2/stocks/quotes/latest``, ``/v2/stocks/snapshots``,
``/v1beta1/options/snapshots[/{underlying}]``, ``/v1beta1/options/quotes/latest``,
``/v1beta1/options/bars`` and ``/v2/options/contracts`` (paginated with ``next_page_token``).
Data comes from fixtures given to the constructor (helpers below build them from
../shared/data files). ``page_size`` forces small pages so pagination is exercised.

Daily stock bars are served as traded (Alpaca's default ``adjustment=raw``); with
``adjustment=all`` a symbol's ``adjusted_bars`` fixture is served where one is given (split-
and dividend-adjusted, as ``bars_from_csv(..., adjusted=True)`` builds it; a symbol without one
is taken to have had no corporate action in its fixture). ``split`` or ``dividend`` alone are
answered 422, so a test never passes on an adjustment the fake cannot express. With
``feed=iex`` a symbol's ``iex_bars`` fixture is served where one is given: IEX's own trades,
whose close is IEX's last trade of the day, not the official (consolidated) close.

Fault injection: ``fail(method, path_regex, status, body, headers, times)`` answers the next
``times`` matching requests with that status. Without both key headers every request gets
``401 {"message":"unauthorized"}``. Free-plan rule: ``feed=sip`` bars ending within 15 minutes
of ``now`` get ``403 subscription does not permit querying recent SIP data``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pandas as pd

from fakes.loopback import serve, stop

ET = ZoneInfo("America/New_York")
_OCC = re.compile(r"^([A-Z][A-Z0-9.]{0,5})(\d{6})([CP])(\d{8})$")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(s: str) -> datetime:
    if len(s) == 10:
        return datetime.combine(date.fromisoformat(s), time(0), UTC)
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _occ_parts(sym: str) -> tuple[str, date, str, float]:
    m = _OCC.match(sym)
    assert m, sym
    root, ymd, cp, k = m.groups()
    return (
        root,
        date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:])),
        "call" if cp == "C" else "put",
        int(k) / 1000,
    )


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int


class FakeAlpacaData:
    """The fake server. Use as a context manager; ``url`` is its base URL."""

    def __init__(
        self,
        *,
        bars: dict[str, list[dict]] | None = None,
        adjusted_bars: dict[str, list[dict]] | None = None,
        iex_bars: dict[str, list[dict]] | None = None,
        quotes: dict[str, dict] | None = None,
        option_snapshots: dict[str, dict[str, dict]] | None = None,
        option_bars: dict[str, list[dict]] | None = None,
        contracts: list[dict] | None = None,
        page_size: int = 10_000,
        now: datetime | None = None,
    ) -> None:
        self.bars = bars or {}
        self.adjusted_bars = adjusted_bars or {}
        self.iex_bars = iex_bars or {}
        self.quotes = quotes or {}
        self.option_snapshots = option_snapshots or {}
        self.option_bars = option_bars or {}
        self.contracts = contracts or []
        self.page_size = page_size
        self.now = now or datetime.now(UTC)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control ----------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        with self._lock:
            self._faults.append(
                Fault(
                    method.upper(),
                    re.compile(path_regex),
                    status,
                    body if body is not None else {"message": "injected"},
                    headers or {},
                    times,
                )
            )

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.method == method and f.path.search(path) and f.times > 0:
                    f.times -= 1
                    return f
        return None

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeAlpacaData:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                fake._handle(self)

        self._server = serve(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self._server)
        self._server = None

    # -- routing ----------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        u = urlparse(h.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        self.requests.append(("GET", u.path, q))
        if not (h.headers.get("APCA-API-KEY-ID") and h.headers.get("APCA-API-SECRET-KEY")):
            return self._send(h, 401, {"message": "unauthorized"})
        fault = self._take_fault("GET", u.path)
        if fault is not None:
            return self._send(h, fault.status, fault.body, fault.headers)
        routes = [
            (r"^/v2/stocks/bars$", self._stock_bars),
            (r"^/v2/stocks/quotes/latest$", self._stock_quotes),
            (r"^/v2/stocks/snapshots$", self._stock_snapshots),
            (r"^/v1beta1/options/snapshots/(?P<und>[A-Z.]+)$", self._chain),
            (r"^/v1beta1/options/snapshots$", self._option_snapshots),
            (r"^/v1beta1/options/quotes/latest$", self._option_quotes),
            (r"^/v1beta1/options/bars$", self._option_bars_route),
            (r"^/v2/options/contracts$", self._contracts),
        ]
        for pattern, fn in routes:
            m = re.match(pattern, u.path)
            if m:
                status, body = fn(q, **m.groupdict())
                return self._send(h, status, body)
        self._send(h, 404, {"code": 40410000, "message": "endpoint not found"})

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _page(self, items: list, q: dict[str, str]) -> tuple[list, str | None]:
        start = int(base64.b64decode(q["page_token"]).decode()) if q.get("page_token") else 0
        size = min(int(q.get("limit", self.page_size)), self.page_size)
        page = items[start : start + size]
        nxt = start + size
        token = base64.b64encode(str(nxt).encode()).decode() if nxt < len(items) else None
        return page, token

    # -- handlers ---------------------------------------------------------------------------

    def _stock_bars(self, q: dict[str, str]) -> tuple[int, Any]:
        symbols = q.get("symbols", "").split(",")
        lo = _parse_time(q["start"]) if "start" in q else datetime.min.replace(tzinfo=UTC)
        hi = _parse_time(q["end"]) if "end" in q else self.now
        if q.get("feed") == "sip" and hi > self.now - timedelta(minutes=15):
            return 403, {"message": "subscription does not permit querying recent SIP data"}
        if q.get("timeframe") not in ("1Day", "1D"):
            return 200, {"bars": {}, "next_page_token": None}
        adjustment = q.get("adjustment", "raw")
        if adjustment not in ("raw", "all"):
            return 422, {"message": f"the fake serves adjustment raw or all, not {adjustment}"}
        source = {**self.bars, **self.adjusted_bars} if adjustment == "all" else self.bars
        if q.get("feed") == "iex":
            source = {**source, **self.iex_bars}
        return self._bars_page(source, symbols, lo, hi, q)

    def _bars_page(
        self,
        source: dict[str, list[dict]],
        symbols: list[str],
        lo: datetime,
        hi: datetime,
        q: dict[str, str],
    ) -> tuple[int, Any]:
        flat = [
            (s, b)
            for s in sorted(symbols)
            for b in source.get(s, [])
            if lo <= _parse_time(b["t"]) <= hi
        ]
        page, token = self._page(flat, q)
        out: dict[str, list[dict]] = {}
        for s, b in page:
            out.setdefault(s, []).append(b)
        return 200, {"bars": out, "next_page_token": token}

    def _stock_quotes(self, q: dict[str, str]) -> tuple[int, Any]:
        syms = q.get("symbols", "").split(",")
        return 200, {"quotes": {s: self.quotes[s] for s in syms if s in self.quotes}}

    def _stock_snapshots(self, q: dict[str, str]) -> tuple[int, Any]:
        out = {}
        for s in q.get("symbols", "").split(","):
            bars = self.bars.get(s, [])
            if s in self.quotes or bars:
                out[s] = {
                    "latestQuote": self.quotes.get(s),
                    "dailyBar": bars[-1] if bars else None,
                    "prevDailyBar": bars[-2] if len(bars) > 1 else None,
                }
        return 200, out

    def _all_snapshots(self) -> dict[str, dict]:
        return {k: v for chain in self.option_snapshots.values() for k, v in chain.items()}

    def _chain(self, q: dict[str, str], und: str) -> tuple[int, Any]:
        chain = self.option_snapshots.get(und, {})
        keep = []
        for sym in sorted(chain):
            _, exp, typ, k = _occ_parts(sym)
            if q.get("type") and typ != q["type"]:
                continue
            if "strike_price_gte" in q and k < float(q["strike_price_gte"]):
                continue
            if "strike_price_lte" in q and k > float(q["strike_price_lte"]):
                continue
            if "expiration_date" in q and exp != date.fromisoformat(q["expiration_date"]):
                continue
            if "expiration_date_gte" in q and exp < date.fromisoformat(q["expiration_date_gte"]):
                continue
            if "expiration_date_lte" in q and exp > date.fromisoformat(q["expiration_date_lte"]):
                continue
            keep.append(sym)
        page, token = self._page(keep, q)
        return 200, {"snapshots": {s: chain[s] for s in page}, "next_page_token": token}

    def _option_snapshots(self, q: dict[str, str]) -> tuple[int, Any]:
        allsnap = self._all_snapshots()
        syms = [s for s in q.get("symbols", "").split(",") if s in allsnap]
        page, token = self._page(syms, q)
        return 200, {"snapshots": {s: allsnap[s] for s in page}, "next_page_token": token}

    def _option_quotes(self, q: dict[str, str]) -> tuple[int, Any]:
        allsnap = self._all_snapshots()
        syms = q.get("symbols", "").split(",")
        return 200, {
            "quotes": {
                s: allsnap[s]["latestQuote"]
                for s in syms
                if s in allsnap and allsnap[s].get("latestQuote")
            }
        }

    def _option_bars_route(self, q: dict[str, str]) -> tuple[int, Any]:
        lo = _parse_time(q["start"]) if "start" in q else datetime.min.replace(tzinfo=UTC)
        hi = _parse_time(q["end"]) if "end" in q else self.now
        return self._bars_page(self.option_bars, q.get("symbols", "").split(","), lo, hi, q)

    def _contracts(self, q: dict[str, str]) -> tuple[int, Any]:
        unds = set(q.get("underlying_symbols", "").split(",")) - {""}
        keep = []
        for c in self.contracts:
            exp, k = date.fromisoformat(c["expiration_date"]), float(c["strike_price"])
            if unds and c["underlying_symbol"] not in unds:
                continue
            if q.get("status") and c["status"] != q["status"]:
                continue
            if q.get("type") and c["type"] != q["type"]:
                continue
            if "strike_price_gte" in q and k < float(q["strike_price_gte"]):
                continue
            if "strike_price_lte" in q and k > float(q["strike_price_lte"]):
                continue
            if "expiration_date_gte" in q and exp < date.fromisoformat(q["expiration_date_gte"]):
                continue
            if "expiration_date_lte" in q and exp > date.fromisoformat(q["expiration_date_lte"]):
                continue
            keep.append(c)
        page, token = self._page(keep, q)
        return 200, {"option_contracts": page, "next_page_token": token}


# -- fixture builders from ../shared/data files ----------------------------------------------


def bars_from_csv(
    path: Path, start: str | None = None, end: str | None = None, *, adjusted: bool = False
) -> list[dict]:
    """Read daily bars of a ``date,open,high,low,close,...,volume`` file in Alpaca's JSON shape.

    ``t`` is midnight New York of the session, in UTC. ``adjusted``: prices scaled by the
    file's ``adj_close / close`` and volume by its inverse, as Alpaca's ``adjustment=all``
    serves them.
    """
    df = pd.read_csv(path)
    if start:
        df = df[df["date"] >= start]
    if end:
        df = df[df["date"] <= end]
    if adjusted:
        factor = df["adj_close"] / df["close"]
        df = df.assign(
            open=df["open"] * factor,
            high=df["high"] * factor,
            low=df["low"] * factor,
            close=df["adj_close"],
            volume=(df["volume"] / factor).round(),
        )
    out = []
    for r in df.itertuples():
        t = datetime.combine(date.fromisoformat(r.date), time(0), ET)
        out.append(
            {
                "t": _iso(t),
                "o": float(r.open),
                "h": float(r.high),
                "l": float(r.low),
                "c": float(r.close),
                "v": int(r.volume),
                "n": 1000,
                "vw": round((r.high + r.low + r.close) / 3, 4),
            }
        )
    return out


def snapshots_from_csv(path: Path) -> dict[str, dict[str, dict]]:
    """Read option snapshots (underlying -> OCC -> snapshot JSON) from a shared chain file.

    The file is in the shared long format; IV / greeks only where it has them (all five greeks,
    or none).
    """
    df = pd.read_csv(path)
    out: dict[str, dict[str, dict]] = {}
    for r in df.to_dict("records"):
        qt = r.get("quote_time")
        t = (
            _iso(pd.Timestamp(qt).to_pydatetime())
            if isinstance(qt, str)
            else _iso(datetime.combine(date.fromisoformat(r["quote_date"]), time(16), ET))
        )
        snap: dict[str, Any] = {
            "latestQuote": {
                "t": t,
                "ax": "C",
                "ap": float(r["ask"]),
                "as": int(r.get("ask_size") or 1),
                "bx": "N",
                "bp": float(r["bid"]),
                "bs": int(r.get("bid_size") or 1),
                "c": "A",
            }
        }
        if pd.notna(r.get("last")):
            snap["latestTrade"] = {"t": t, "x": "C", "p": float(r["last"]), "s": 1, "c": "I"}
        if pd.notna(r.get("iv")):
            snap["impliedVolatility"] = float(r["iv"])
        if all(pd.notna(r.get(g)) for g in ("delta", "gamma", "theta", "vega", "rho")):
            snap["greeks"] = {g: float(r[g]) for g in ("delta", "gamma", "rho", "theta", "vega")}
        out.setdefault(r["underlying"], {})[r["contract_symbol"]] = snap
    return out


def contracts_from_snapshots(snaps: dict[str, dict[str, dict]]) -> list[dict]:
    """``/v2/options/contracts`` records for every snapshot symbol."""
    import uuid

    out = []
    for und, chain in snaps.items():
        for sym in sorted(chain):
            root, exp, typ, k = _occ_parts(sym)
            out.append(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, sym)),
                    "symbol": sym,
                    "name": f"{und} {exp:%b %d %Y} {k:g} {typ.title()}",
                    "status": "active",
                    "tradable": True,
                    "expiration_date": exp.isoformat(),
                    "root_symbol": root,
                    "underlying_symbol": und,
                    "underlying_asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, und)),
                    "type": typ,
                    "style": "american",
                    "strike_price": f"{k:g}",
                    "size": "100",
                    "open_interest": "100",
                    "open_interest_date": exp.isoformat(),
                    "close_price": "1.00",
                    "close_price_date": exp.isoformat(),
                    "ppind": True,
                }
            )
    return out
