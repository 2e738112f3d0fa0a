"""Replay: a ``DataFeed`` over daily history on a simulated clock.

The runner steps a ``v28quant.clock.SimClock`` through sessions and 5-minute cycles; this feed
answers as a live feed would at ``clock.now()`` and never later:

* ``bars()`` returns only bars that have ended by ``clock.now()``. During a session it also
  returns today's partial daily bar (open, high/low so far, last price), as Alpaca does.
* Between the daily bars, prices follow a synthetic intraday path (labelled synthetic): a
  piecewise Brownian bridge in log price on a 1-minute grid from the open through the day's
  high and low (at seeded random minutes, in a seeded random order) to the close, clipped to
  [low, high]. It is seeded per (seed, symbol, session), so the 10:05 quote is the same in
  every run and whatever was asked before. Before the open the price is the previous close.
* Equity quotes: the path price with a spread of ``equity_spread_bps`` (at least a cent),
  rounded outward to cents.
* Option chains: a user-supplied real snapshot when one is at most ``snapshot_max_age`` old
  (``synthetic=False``); otherwise a synthetic chain (``synthetic=True``) priced by
  Black-Scholes-Merton (``v28quant.options.black_scholes``) from a volatility surface: ATM vol =
  trailing realised vol x a variance-risk-premium factor, a smile
  ``iv = atm * (1 + skew * x + curvature * x**2)`` in standardised moneyness
  ``x = ln(K/F) / (atm sqrt(T))`` (clipped to +-4), and bid/ask spreads of
  ``max(min_width, rel_spread * price)`` rounded outward to the tick (0.01 below $3, 0.05 above,
  0.01 throughout for penny-program underlyings). European prices: the early-exercise premium
  of American options is ignored (small for the short-dated, near-the-money options engines
  trade; zero for calls without dividends).

Listed strikes and expiries of a synthetic chain are fixed per session from the previous close
(strikes don't move intraday), weekly Friday expiries out to ``weekly_days`` and third-Friday
monthlies out to ``monthly_days``, moved to Thursday when Friday is a holiday.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from v28quant.calendar import ET, ExchangeCalendar, default_calendar
from v28quant.clock import SimClock
from v28quant.data.base import (
    BAR_COLUMNS,
    CONTRACT_COLUMNS,
    OptionType,
    chain_frame,
    empty_bars,
    format_occ,
    is_occ,
    parse_occ,
    parse_timeframe,
)
from v28quant.data.samples import History
from v28quant.quotes import Quote

YEAR_SECONDS = 365.0 * 86400.0
PENNY_UNDERLYINGS = frozenset(
    {
        "SPY",
        "QQQ",
        "IWM",
        "DIA",
        "AAPL",
        "MSFT",
        "AMZN",
        "NVDA",
        "TSLA",
        "META",
        "GOOGL",
        "AMD",
        "SPX",
        "SP500",
    }
)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class SyntheticChainModel:
    """How synthetic option chains are priced (see the module docstring)."""

    rate: float = 0.04
    vol_window: int = 21
    vol_floor: float = 0.05
    vol_default: float = 0.25
    variance_risk_premium: float = 1.10
    skew: float = -0.10
    curvature: float = 0.02
    rel_spread: float = 0.03
    min_width: float = 0.02
    weekly_days: int = 35
    monthly_days: int = 120
    strike_sd: float = 3.0
    max_strikes: int = 60


def _seed(*parts: object) -> int:
    return int.from_bytes(
        hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "little"
    )


def intraday_path(
    o: float, h: float, lo: float, c: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """A price path of ``n + 1`` points (minute 0 = open, minute n = close) that starts at
    ``o``, ends at ``c``, touches ``h`` and ``lo`` exactly and stays within [lo, h].

    Piecewise Brownian bridges in log price between the anchors (open, high, low, close; the
    high and low at random interior minutes in random order unless the open or close already
    is the high / low), clipped to [log lo, log h].
    """
    if n < 3:
        raise ValueError(f"intraday path needs at least 3 minutes, got {n}")
    if not (lo <= min(o, c) and h >= max(o, c) and lo > 0):
        raise ValueError(f"bar does not bracket open/close: o={o} h={h} l={lo} c={c}")
    if h - lo <= 1e-12 * h:
        return np.full(n + 1, o)
    tol = 1e-12 * h
    anchors: dict[int, float] = {0: o, n: c}
    need = []
    if abs(o - h) > tol and abs(c - h) > tol:
        need.append(h)
    if abs(o - lo) > tol and abs(c - lo) > tol:
        need.append(lo)
    if need:
        idx = np.sort(rng.choice(np.arange(1, n), size=len(need), replace=False))
        order = rng.permutation(len(need))
        for i, j in zip(idx, order, strict=True):
            anchors[int(i)] = need[int(j)]
    xs = sorted(anchors)
    log_lo, log_hi = math.log(lo), math.log(h)
    sigma_step = (log_hi - log_lo) / math.sqrt(n)  # range ~ sd of the day's path
    x = np.empty(n + 1)
    for a, b in zip(xs[:-1], xs[1:], strict=True):
        m = b - a
        ya, yb = math.log(anchors[a]), math.log(anchors[b])
        w = np.concatenate([[0.0], np.cumsum(rng.standard_normal(m) * sigma_step)])
        t = np.arange(m + 1) / m
        x[a : b + 1] = ya + (yb - ya) * t + w - t * w[-1]
    p = np.clip(np.exp(x), lo, h)  # clip after exp: exp(log h) may round above h
    for i, v in anchors.items():  # exact anchors, no exp/log round-off
        p[i] = v
    return p


def _volume_profile(n: int) -> np.ndarray:
    """Cumulative fraction of a day's volume by minute (U-shaped intraday volume)."""
    u = (np.arange(n) + 0.5) / n
    w = 1.0 + 3.0 * (2.0 * u - 1.0) ** 2
    return np.concatenate([[0.0], np.cumsum(w) / w.sum()])


def _round_out(bid: float, ask: float, tick: Decimal) -> tuple[Decimal, Decimal]:
    b = (Decimal(repr(max(float(bid), 0.0))) / tick).to_integral_value(ROUND_FLOOR) * tick
    a = (Decimal(repr(float(ask))) / tick).to_integral_value(ROUND_CEILING) * tick
    if a <= b:
        a = b + tick
    return b, a


def _third_friday(y: int, m: int) -> date:
    d = date(y, m, 15)
    return d + timedelta(days=(4 - d.weekday()) % 7)


class _Series:
    """One symbol's daily bars as arrays, with session times."""

    def __init__(self, symbol: str, frame: pd.DataFrame, cal: ExchangeCalendar) -> None:
        self.symbol = symbol
        days = frame["timestamp"].dt.tz_convert(ET).dt.date.to_list()
        self.days: list[date] = days
        self.o, self.h, self.l, self.c, self.v = (
            frame[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")
        )
        self.opens: list[datetime] = []
        self.closes: list[datetime] = []
        for d in days:
            times = cal.session_times(d)
            if times is None:  # outside the calendar or not a session there: regular hours
                op = datetime.combine(d, time(9, 30), ET)
                cl = datetime.combine(d, time(16, 0), ET)
            else:
                op, cl = times
            self.opens.append(op)
            self.closes.append(cl)
        self.close_utc = [x.astimezone(UTC) for x in self.closes]

    def minutes(self, i: int) -> int:
        return int((self.closes[i] - self.opens[i]).total_seconds() // 60)


class ReplayFeed:
    """``DataFeed`` over daily ``History`` on a ``SimClock`` (see the module docstring).

    Parameters
    ----------
    history : History or DataFrame
        Daily bars (``BAR_COLUMNS``), e.g. ``v28quant.data.samples.sample_history()``.
    clock : SimClock
        The simulated clock the runner steps.
    calendar : ExchangeCalendar, optional
        Session times (default: the shared NYSE calendar).
    seed : int
        Seed of the synthetic intraday paths (one stream per symbol and session).
    dividend_yield : float or mapping symbol -> float
        Continuous dividend yield used for option pricing.
    equity_spread_bps : float
        Quoted equity spread in basis points of price (at least one cent).
    chain_model : SyntheticChainModel
        Parameters of synthetic option chains.
    snapshots : iterable of DataFrame or path
        Real option-chain snapshots (see ``load_chain_snapshot``) used when fresh enough.
    snapshot_max_age : timedelta
        How long after its time a snapshot is still served.
    """

    def __init__(
        self,
        history: History | pd.DataFrame,
        clock: SimClock,
        *,
        calendar: ExchangeCalendar | None = None,
        seed: int = 0,
        dividend_yield: float | Mapping[str, float] = 0.0,
        equity_spread_bps: float = 2.0,
        chain_model: SyntheticChainModel | None = None,
        snapshots: Iterable[pd.DataFrame | str | Path] = (),
        snapshot_max_age: timedelta = timedelta(hours=24),
    ) -> None:
        hist = history if isinstance(history, History) else History(history)
        missing = [c for c in BAR_COLUMNS if c not in hist.bars]
        if missing:
            raise ValueError(f"history bars lack column(s) {missing}")
        self.history = hist
        self.clock = clock
        self.calendar = calendar or default_calendar()
        self.seed = int(seed)
        self.equity_spread_bps = float(equity_spread_bps)
        self.model = chain_model or SyntheticChainModel()
        self._div = dividend_yield
        self._series: dict[str, _Series] = {}
        for sym, g in hist.bars.groupby("symbol", sort=True):
            g = g.sort_values("timestamp")
            self._series[str(sym)] = _Series(str(sym), g, self.calendar)
        self._snapshots: dict[str, list[tuple[datetime, pd.DataFrame]]] = {}
        for s in snapshots:
            frame = load_chain_snapshot(s) if isinstance(s, (str, Path)) else s
            und = str(frame["underlying"].iloc[0])
            self._snapshots.setdefault(und, []).append((frame.attrs["as_of"], frame))
        for lst in self._snapshots.values():
            lst.sort(key=lambda x: x[0])
        self.snapshot_max_age = snapshot_max_age
        self._path = lru_cache(maxsize=4096)(self._path_uncached)

    # -- time and prices --------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def _series_of(self, symbol: str) -> _Series:
        s = self._series.get(symbol.upper())
        if s is None:
            raise KeyError(f"unknown symbol {symbol!r} (not in the replay history)")
        return s

    def _path_uncached(self, symbol: str, i: int) -> np.ndarray:
        s = self._series[symbol]
        rng = np.random.default_rng(_seed(self.seed, symbol, s.days[i].isoformat()))
        return intraday_path(s.o[i], s.h[i], s.l[i], s.c[i], s.minutes(i), rng)

    def _locate(self, s: _Series, now: datetime) -> int:
        """Index of the last session whose date is <= now's New York date (-1 if none)."""
        return bisect.bisect_right(s.days, now.astimezone(ET).date()) - 1

    def price(self, symbol: str, now: datetime | None = None) -> float:
        """The (synthetic between bars) price of ``symbol`` at ``now`` (default clock.now())."""
        s = self._series_of(symbol)
        now = now or self._now()
        i = self._locate(s, now)
        if i < 0:
            raise KeyError(f"{symbol}: no history before {now:%Y-%m-%d}")
        if s.days[i] != now.astimezone(ET).date() or now >= s.closes[i]:
            return float(s.c[i])
        if now < s.opens[i]:
            if i == 0:
                raise KeyError(f"{symbol}: no history before {now:%Y-%m-%d}")
            return float(s.c[i - 1])
        k = int((now - s.opens[i]).total_seconds() // 60)
        return float(self._path(s.symbol, i)[min(k, s.minutes(i))])

    def _completed_closes(self, s: _Series, now: datetime) -> np.ndarray:
        """Closes of the sessions that have closed by ``now``."""
        j = bisect.bisect_right(s.close_utc, now)
        return np.asarray(s.c[:j])

    def realised_vol(self, symbol: str) -> float:
        """Annualised close-to-close volatility over the last ``vol_window`` completed
        sessions (sqrt(252) scaling); ``vol_default`` with fewer than 5 returns."""
        closes = self._completed_closes(self._series_of(symbol), self._now())
        r = np.diff(np.log(closes[-(self.model.vol_window + 1) :]))
        if len(r) < 5:
            return self.model.vol_default
        return float(np.std(r, ddof=1) * math.sqrt(252.0))

    # -- DataFeed: bars ---------------------------------------------------------------------

    async def bars(
        self,
        symbols: list[str],
        start: datetime | date,
        end: datetime | date | None = None,
        timeframe: str = "1Day",
    ) -> pd.DataFrame:
        n, unit = parse_timeframe(timeframe)
        now = self._now()
        lo = _as_utc(start, end=False)
        hi = min(_as_utc(end, end=True), now) if end is not None else now
        parts = []
        for sym in symbols:
            s = self._series_of(sym)
            if unit == "Day" and n == 1:
                parts.append(self._daily(s, lo, hi, now))
            elif unit in ("Min", "Hour"):
                parts.append(self._intraday(s, n * (60 if unit == "Hour" else 1), lo, hi, now))
            else:
                raise ValueError(f"replay supports 1Day and minute/hour bars, got {timeframe!r}")
        parts = [p for p in parts if len(p)]
        if not parts:
            return empty_bars()
        return pd.concat(parts, ignore_index=True)[list(BAR_COLUMNS)]

    def _daily(self, s: _Series, lo: datetime, hi: datetime, now: datetime) -> pd.DataFrame:
        j = bisect.bisect_right(s.close_utc, now)  # sessions closed by now
        stamps = pd.DatetimeIndex([datetime.combine(d, time(0), ET) for d in s.days[:j]])
        rows = pd.DataFrame(
            {
                "timestamp": stamps.tz_convert("UTC")
                if len(stamps)
                else pd.DatetimeIndex([], tz="UTC"),
                "symbol": s.symbol,
                "open": s.o[:j],
                "high": s.h[:j],
                "low": s.l[:j],
                "close": s.c[:j],
                "volume": s.v[:j],
            }
        )
        if j < len(s.days) and s.opens[j] <= now < s.closes[j]:  # today's partial bar
            path = self._path(s.symbol, j)
            k = int((now - s.opens[j]).total_seconds() // 60)
            seen = path[: k + 1]
            frac = _volume_profile(s.minutes(j))[k]
            part = pd.DataFrame(
                {
                    "timestamp": [
                        pd.Timestamp(datetime.combine(s.days[j], time(0), ET)).tz_convert("UTC")
                    ],
                    "symbol": s.symbol,
                    "open": seen[0],
                    "high": seen.max(),
                    "low": seen.min(),
                    "close": seen[-1],
                    "volume": float(np.floor(s.v[j] * frac)),
                }
            )
            rows = pd.concat([rows, part], ignore_index=True) if len(rows) else part
        # a daily bar is in range if its session date is within [lo, hi] (dates in New York)
        d = rows["timestamp"].dt.tz_convert(ET).dt.date
        keep = (d >= lo.astimezone(ET).date()) & (d <= hi.astimezone(ET).date())
        return rows[keep.to_numpy()].reset_index(drop=True)

    def _intraday(
        self, s: _Series, minutes: int, lo: datetime, hi: datetime, now: datetime
    ) -> pd.DataFrame:
        first = bisect.bisect_left(s.days, lo.astimezone(ET).date())
        last = bisect.bisect_right(s.days, hi.astimezone(ET).date())
        out = []
        for i in range(first, last):
            if s.opens[i] > now:
                break
            path, n = self._path(s.symbol, i), s.minutes(i)
            cum = _volume_profile(n)
            for a in range(0, n, minutes):
                b = min(a + minutes, n)
                t0 = s.opens[i] + timedelta(minutes=a)
                t1 = s.opens[i] + timedelta(minutes=b)
                if t1 > now:  # bars are returned only once they have ended
                    break
                if t0 < lo or t0 > hi:
                    continue
                seg = path[a : b + 1]
                out.append(
                    (
                        t0.astimezone(UTC),
                        s.symbol,
                        seg[0],
                        seg.max(),
                        seg.min(),
                        seg[-1],
                        float(np.floor(s.v[i] * (cum[b] - cum[a]))),
                    )
                )
        if not out:
            return empty_bars()
        df = pd.DataFrame(out, columns=list(BAR_COLUMNS))
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
        return df

    # -- quotes -----------------------------------------------------------------------------

    async def latest_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        out = {}
        for sym in symbols:
            try:
                out[sym] = await self.quote(sym)
            except KeyError:
                continue
        return out

    async def quote(self, symbol: str) -> Quote:
        now = self._now()
        if is_occ(symbol):
            return self._option_quote(symbol.upper(), now)
        px = self.price(symbol, now)
        half = max(0.005, px * self.equity_spread_bps / 2e4)
        bid, ask = _round_out(px - half, px + half, CENT)
        return Quote(symbol.upper(), bid, ask, now, 100, 100, synthetic=True)

    async def closing_price(self, symbol: str, session: datetime) -> Decimal:
        """Official close of the session containing ``session``; ``ValueError`` if that
        session has not closed yet at ``clock.now()`` (no look-ahead)."""
        now = self._now()
        day = session.astimezone(ET).date() if session.tzinfo else session.date()
        if is_occ(symbol):
            occ = parse_occ(symbol)
            s = self._series_of(occ.root)
            i = s.days.index(day) if day in s.days else -1
            if i < 0:
                raise KeyError(f"{occ.root}: no session on {day}")
            if now < s.closes[i]:
                raise ValueError(f"{symbol}: session {day} has not closed at {now}")
            q = self._option_quote(symbol.upper(), s.closes[i].astimezone(UTC))
            return q.mid
        s = self._series_of(symbol)
        if day not in s.days:
            raise KeyError(f"{symbol}: no session on {day}")
        i = s.days.index(day)
        if now < s.closes[i]:
            raise ValueError(f"{symbol}: session {day} has not closed at {now}")
        return Decimal(repr(float(s.c[i]))).quantize(Decimal("0.0001")).normalize()

    # -- options ----------------------------------------------------------------------------

    def _div_yield(self, underlying: str) -> float:
        if isinstance(self._div, Mapping):
            return float(self._div.get(underlying, 0.0))
        return float(self._div)

    def _fresh_snapshot(self, underlying: str, now: datetime) -> pd.DataFrame | None:
        best = None
        for as_of, frame in self._snapshots.get(underlying, []):
            if as_of <= now <= as_of + self.snapshot_max_age:
                best = frame
        return best

    def _listing(self, underlying: str, now: datetime) -> pd.DataFrame:
        """Synthetic listed contracts (expiry, strike, type) for the session of ``now``."""
        s = self._series_of(underlying)
        i = self._locate(s, now)
        if i < 0:
            raise KeyError(f"{underlying}: no history before {now:%Y-%m-%d}")
        # strikes from the last close before today's session (they don't move intraday)
        today = now.astimezone(ET).date()
        ref_i = i - 1 if s.days[i] == today and i > 0 else i
        return self._listing_for(underlying, today, float(s.c[ref_i]))

    @lru_cache(maxsize=1024)  # noqa: B019 - the feed lives as long as the run
    def _listing_for(self, underlying: str, today: date, ref: float) -> pd.DataFrame:
        m = self.model
        expiries: set[date] = set()
        d = today
        while d <= today + timedelta(days=m.monthly_days):
            if d.weekday() == 4:
                weekly = d <= today + timedelta(days=m.weekly_days)
                if weekly or d == _third_friday(d.year, d.month):
                    try:
                        e = self.calendar.expiry_session(d)
                    except ValueError:
                        e = d
                    if e >= today:
                        expiries.add(e)
            d += timedelta(days=1)
        vol = max(self.model.vol_floor, self.realised_vol(underlying)) * m.variance_risk_premium
        inc = next(
            x for x in (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0) if ref / x <= 120 or x == 100.0
        )
        rows = []
        for e in sorted(expiries):
            t = max((e - today).days, 1) / 365.0
            width = max(0.05, m.strike_sd * vol * math.sqrt(t))
            lo_k = math.ceil(ref * math.exp(-width) / inc) * inc
            hi_k = math.floor(ref * math.exp(width) / inc) * inc
            step = inc
            while (hi_k - lo_k) / step + 1 > m.max_strikes:
                step *= 2
            centre = round(ref / step) * step
            ks = np.arange(
                centre - step * math.floor((centre - lo_k) / step), hi_k + step / 2, step
            )
            for k in ks:
                if k <= 0:
                    continue
                for typ in ("call", "put"):
                    rows.append((e, round(float(k), 4), typ))
        return pd.DataFrame(rows, columns=["expiry", "strike", "type"])

    def _price_options(
        self,
        underlying: str,
        expiry: np.ndarray,
        strike: np.ndarray,
        is_call: np.ndarray,
        now: datetime,
    ) -> dict[str, np.ndarray]:
        from v28quant.options import black_scholes as bsm

        m = self.model
        spot = self.price(underlying, now)
        q = self._div_yield(underlying)
        atm = max(m.vol_floor, self.realised_vol(underlying)) * m.variance_risk_premium
        closes = {
            e: self.calendar.option_close(underlying, e, expiry=e)
            if self.calendar.is_session(e)
            else datetime.combine(e, time(16), ET)
            for e in set(expiry.tolist())
        }
        t = np.array([max((closes[e] - now).total_seconds(), 0.0) / YEAR_SECONDS for e in expiry])
        fwd = spot * np.exp((m.rate - q) * t)
        x = np.clip(
            np.log(strike / fwd) / (atm * np.sqrt(np.maximum(t, 1.0 / (365 * 24)))), -4.0, 4.0
        )
        iv = atm * (1.0 + m.skew * x + m.curvature * x * x)
        price = np.asarray(bsm.price(spot, strike, t, m.rate, q, iv, is_call), dtype=float)
        g = bsm.greeks(spot, strike, t, m.rate, q, iv, is_call)
        width = np.maximum(m.min_width, m.rel_spread * price)
        penny = underlying in PENNY_UNDERLYINGS
        bid, ask = np.empty_like(price), np.empty_like(price)
        for j, p in enumerate(price):
            tick = CENT if penny or p < 3.0 else Decimal("0.05")
            b, a = _round_out(p - width[j] / 2, p + width[j] / 2, tick)
            bid[j], ask[j] = float(b), float(a)
        return {
            "spot": np.full_like(price, spot),
            "t": t,
            "iv": iv,
            "price": price,
            "bid": bid,
            "ask": ask,
            "delta": np.asarray(g.delta, float),
            "gamma": np.asarray(g.gamma, float),
            "theta": np.asarray(g.theta, float),
            "vega": np.asarray(g.vega, float),
        }

    def _option_quote(self, symbol: str, now: datetime) -> Quote:
        occ = parse_occ(symbol)
        snap = self._fresh_snapshot(occ.root, now)
        if snap is not None:
            row = snap[snap["symbol"] == symbol]
            if len(row) and np.isfinite(row["bid"].iloc[0]) and np.isfinite(row["ask"].iloc[0]):
                return Quote(
                    symbol,
                    Decimal(repr(float(row["bid"].iloc[0]))),
                    Decimal(repr(float(row["ask"].iloc[0]))),
                    now,
                    synthetic=False,
                )
        closes = (
            self.calendar.option_close(occ.root, occ.expiry, expiry=occ.expiry)
            if self.calendar.is_session(occ.expiry)
            else datetime.combine(occ.expiry, time(16), ET)
        )
        if now > closes:
            raise KeyError(f"{symbol}: expired at {closes:%Y-%m-%d %H:%M %Z}")
        r = self._price_options(
            occ.root,
            np.array([occ.expiry], dtype=object),
            np.array([float(occ.strike)]),
            np.array([occ.type == "call"]),
            now,
        )
        return Quote(
            symbol,
            Decimal(repr(float(r["bid"][0]))),
            Decimal(repr(float(r["ask"][0]))),
            now,
            10,
            10,
            synthetic=True,
        )

    async def option_contracts(
        self,
        underlying: str,
        expiry_from: date | None = None,
        expiry_to: date | None = None,
        type: OptionType | None = None,
        strike_from: float | None = None,
        strike_to: float | None = None,
    ) -> pd.DataFrame:
        chain = await self.option_chain(
            underlying, expiry_from, expiry_to, type, strike_from, strike_to
        )
        out = pd.DataFrame(
            {
                "symbol": chain["symbol"],
                "underlying": chain["underlying"],
                "expiry": chain["expiry"],
                "strike": chain["strike"],
                "type": chain["type"],
                "style": "american",
                "size": 100.0,
                "open_interest": chain["open_interest"],
                "close_price": np.nan,
                "tradable": True,
            }
        )
        return out[list(CONTRACT_COLUMNS)]

    async def option_chain(
        self,
        underlying: str,
        expiry_from: date | None = None,
        expiry_to: date | None = None,
        type: OptionType | None = None,
        strike_from: float | None = None,
        strike_to: float | None = None,
    ) -> pd.DataFrame:
        underlying = underlying.upper()
        now = self._now()
        snap = self._fresh_snapshot(underlying, now)
        if snap is not None:
            return _filter_chain(snap, expiry_from, expiry_to, type, strike_from, strike_to)
        lst = self._listing(underlying, now)
        today = now.astimezone(ET).date()
        keep = np.ones(len(lst), bool)
        if expiry_from is not None:
            keep &= lst["expiry"].to_numpy() >= max(expiry_from, today)
        if expiry_to is not None:
            keep &= lst["expiry"].to_numpy() <= expiry_to
        if type is not None:
            keep &= (lst["type"] == type).to_numpy()
        if strike_from is not None:
            keep &= (lst["strike"] >= strike_from).to_numpy()
        if strike_to is not None:
            keep &= (lst["strike"] <= strike_to).to_numpy()
        lst = lst[keep]
        # contracts whose last trading time has passed are gone from the chain
        alive = [
            now
            <= (
                self.calendar.option_close(underlying, e, expiry=e)
                if self.calendar.is_session(e)
                else datetime.combine(e, time(16), ET)
            )
            for e in lst["expiry"]
        ]
        lst = lst[np.asarray(alive, bool)].reset_index(drop=True)
        spot = self.price(underlying, now)
        if lst.empty:
            return chain_frame([], underlying_price=spot, as_of=now, source="synthetic")
        r = self._price_options(
            underlying,
            lst["expiry"].to_numpy(),
            lst["strike"].to_numpy(float),
            (lst["type"] == "call").to_numpy(),
            now,
        )
        atm = max(self.model.vol_floor, self.realised_vol(underlying))
        x = np.log(lst["strike"].to_numpy(float) / spot) / (
            atm * np.sqrt(np.maximum(r["t"], 1 / 365))
        )
        oi = np.floor(5000.0 * np.exp(-0.5 * x * x) / (1.0 + 4.0 * r["t"])) + 10.0
        rows = pd.DataFrame(
            {
                "symbol": [
                    format_occ(underlying, e, ty, Decimal(repr(float(k))))
                    for e, k, ty in zip(lst["expiry"], lst["strike"], lst["type"], strict=True)
                ],
                "underlying": underlying,
                "expiry": lst["expiry"],
                "strike": lst["strike"],
                "type": lst["type"],
                "bid": r["bid"],
                "ask": r["ask"],
                "mid": (r["bid"] + r["ask"]) / 2.0,
                "iv": r["iv"],
                "delta": r["delta"],
                "gamma": r["gamma"],
                "theta": r["theta"],
                "vega": r["vega"],
                "open_interest": oi,
                "volume": np.floor(oi * 0.2),
                "synthetic": True,
            }
        )
        return chain_frame(
            rows.to_dict("records"),
            underlying_price=spot,
            as_of=now,
            source="synthetic (BSM, realised-vol smile)",
        )

    async def aclose(self) -> None:
        return None

    # -- runner helpers ---------------------------------------------------------------------

    def sessions(self) -> list[date]:
        """Every session date present in the history (union over symbols)."""
        return sorted({d for s in self._series.values() for d in s.days})


def _as_utc(x: datetime | date | None, *, end: bool) -> datetime:
    if isinstance(x, datetime):
        if x.tzinfo is None:
            raise ValueError("bars() needs timezone-aware datetimes (or plain dates)")
        return x.astimezone(UTC)
    if isinstance(x, date):
        t = time(23, 59, 59) if end else time(0)
        return datetime.combine(x, t, ET).astimezone(UTC)
    raise ValueError(f"expected a date or datetime, got {x!r}")


def _filter_chain(
    df: pd.DataFrame,
    expiry_from: date | None,
    expiry_to: date | None,
    type: str | None,
    strike_from: float | None,
    strike_to: float | None,
) -> pd.DataFrame:
    keep = np.ones(len(df), bool)
    exp = df["expiry"].dt.date.to_numpy()
    if expiry_from is not None:
        keep &= exp >= expiry_from
    if expiry_to is not None:
        keep &= exp <= expiry_to
    if type is not None:
        keep &= (df["type"] == type).to_numpy()
    if strike_from is not None:
        keep &= (df["strike"] >= strike_from).to_numpy()
    if strike_to is not None:
        keep &= (df["strike"] <= strike_to).to_numpy()
    out = df[keep].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


def load_chain_snapshot(
    source: str | Path | pd.DataFrame,
    *,
    theta_per_day: bool = True,
    vega_per_point: bool = True,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """A recorded option-chain snapshot as a chain frame (``synthetic=False``).

    Accepts the long format ``quote_date, underlying, underlying_price, expiration, strike,
    type, bid, ask, iv, volume, open_interest, delta, gamma[, theta, vega, quote_time],
    contract_symbol`` (Cboe and Alpaca exports normalised to it). Vendors quote theta per day
    and vega per vol point; they are converted to per year and per 1.00 of vol unless
    ``theta_per_day`` / ``vega_per_point`` say otherwise. ``as_of`` defaults to the latest
    ``quote_time`` or else 16:00 New York on ``quote_date``.
    """
    df = pd.read_csv(source) if isinstance(source, (str, Path)) else source.copy()
    need = ["quote_date", "underlying", "expiration", "strike", "type", "bid", "ask"]
    missing = [c for c in need if c not in df]
    if missing:
        raise ValueError(f"chain snapshot lacks column(s) {missing}")
    if as_of is None:
        if "quote_time" in df and df["quote_time"].notna().any():
            as_of = pd.to_datetime(df["quote_time"], utc=True).max().to_pydatetime()
        else:
            qd = pd.to_datetime(df["quote_date"].iloc[0]).date()
            as_of = datetime.combine(qd, time(16), ET)
    sym = (
        df["contract_symbol"]
        if "contract_symbol" in df
        else [
            format_occ(u, pd.Timestamp(e).date(), t, Decimal(repr(float(k))))
            for u, e, t, k in zip(
                df["underlying"], df["expiration"], df["type"], df["strike"], strict=True
            )
        ]
    )
    theta = df["theta"] * (365.0 if theta_per_day else 1.0) if "theta" in df else np.nan
    vega = df["vega"] * (100.0 if vega_per_point else 1.0) if "vega" in df else np.nan
    bid, ask = df["bid"].astype(float), df["ask"].astype(float)
    rows = pd.DataFrame(
        {
            "symbol": sym,
            "underlying": df["underlying"].str.upper(),
            "expiry": pd.to_datetime(df["expiration"]),
            "strike": df["strike"].astype(float),
            "type": df["type"].str.lower(),
            "bid": bid,
            "ask": ask,
            "mid": (bid + ask) / 2.0,
            "iv": df.get("iv", np.nan),
            "delta": df.get("delta", np.nan),
            "gamma": df.get("gamma", np.nan),
            "theta": theta,
            "vega": vega,
            "open_interest": df.get("open_interest", np.nan),
            "volume": df.get("volume", np.nan),
            "synthetic": False,
        }
    )
    und_px = (
        float(df["underlying_price"].dropna().iloc[0])
        if "underlying_price" in df and df["underlying_price"].notna().any()
        else float("nan")
    )
    return chain_frame(
        rows.to_dict("records"), underlying_price=und_px, as_of=as_of, source="snapshot"
    )
