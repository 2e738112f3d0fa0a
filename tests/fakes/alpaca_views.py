"""Read-only answers of the fake Alpaca trading API: clock, calendar, account, positions, lists.

Buying power follows research/alpaca.md §6: premiums in full, and the option book's worst value at
expiry over every underlying price held as collateral.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from fakes.alpaca_common import _NS, _OPEN, NY, _cal, _err, _occ, _parse_ts, _s


class ViewsMixin:
    """The GET endpoints of ``FakeAlpacaTrading`` and the buying power they report."""

    def _is_open(self) -> bool:
        if self.now.astimezone(NY).date() in self.closed_days:
            return False
        return bool(_cal().is_open_on_minute(pd.Timestamp(self.now).floor("min")))

    def _next(self, edge: str, t: pd.Timestamp) -> pd.Timestamp:
        """Return the next session open or close after ``t`` that the venue keeps."""
        step = _cal().next_open if edge == "open" else _cal().next_close
        nxt = step(t)
        while nxt.tz_convert(NY).date() in self.closed_days:
            nxt = step(nxt)
        return nxt

    def _clock(self) -> dict[str, Any]:
        t = pd.Timestamp(self.now).floor("min")
        return {
            "timestamp": self.now.astimezone(NY).isoformat(),
            "is_open": self._is_open(),
            "next_open": self._next("open", t).tz_convert(NY).isoformat(),
            "next_close": self._next("close", t).tz_convert(NY).isoformat(),
        }

    def _calendar(self, q: dict[str, str]) -> list[dict[str, Any]]:
        sched = _cal().schedule.loc[q.get("start", "2024-01-01") : q.get("end", "2024-12-31")]
        out = []
        for d, o, c in zip(sched.index, sched["open"], sched["close"], strict=True):
            if d.date() in self.closed_days:
                continue
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
            "last_equity": _s(eq if self.last_equity is None else self.last_equity),
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
            "multiplier": "2" if self.shorting_enabled else "1",
            "shorting_enabled": self.shorting_enabled,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "trade_suspended_by_user": False,
            "created_at": "2024-01-02T15:00:00Z",
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "daytrade_count": self.daytrade_count,
            "pattern_day_trader": False,
            "options_approved_level": self.options_level,
            "options_trading_level": self.options_level,
        }

    def _asset(self, sym: str) -> dict[str, Any]:
        """Alpaca's asset entity of the stock ``sym`` (``assets`` overrides its flags)."""
        if sym not in self.quotes:
            raise _err(404, 40410000, f"asset not found for {sym}")
        flags = {"shortable": True, "easy_to_borrow": True, "fractionable": True}
        return {
            "id": str(uuid.uuid5(_NS, sym)),
            "class": "us_equity",
            "exchange": "NASDAQ",
            "symbol": sym,
            "name": sym,
            "status": "active",
            "tradable": True,
            "marginable": True,
            **flags,
            **self.assets.get(sym, {}),
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
