"""Replay: a ``DataFeed`` over daily history on a simulated clock.

The runner steps a ``v28quant.clock.SimClock`` through sessions and 5-minute cycles; this feed
answers as a live feed would at ``clock.now()`` and never later:

* ``bars()`` returns only bars that have ended by ``clock.now()``. During a session it also
  returns today's partial daily bar (open, high/low so far, last price), as Alpaca does.
* Between the daily bars, prices follow a synthetic intraday path (``v28quant.data.intraday``)
  seeded per (seed, symbol, session), so the 10:05 quote is the same in every run whatever was
  asked before. Before the open the price is the previous close; once the next session after
  the last recorded one has opened there is no price (``KeyError``), never a stale one.
* Bars frames say in ``attrs["synthetic"]`` (and ``attrs["synthetic_symbols"]``) whether any
  value was model-made: intraday bars, today's partial bar, sample OHLC built from closes.
* Equity quotes: the path price with a spread of ``equity_spread_bps`` (>= a cent), on cents.
* Option chains: a user-supplied real snapshot when one is at most ``snapshot_max_age`` old
  (``synthetic=False``); otherwise a ``v28quant.data.synthetic_chain`` (``synthetic=True``).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from v28quant.broker.ticks import round_out
from v28quant.calendar import ET, ExchangeCalendar, default_calendar
from v28quant.clock import SimClock
from v28quant.data.base import (
    BAR_COLUMNS,
    OptionType,
    chain_frame,
    empty_bars,
    is_occ,
    parse_occ,
    parse_timeframe,
)
from v28quant.data.intraday import intraday_path, session_bars, volume_profile
from v28quant.data.samples import History
from v28quant.data.seeding import stable_seed
from v28quant.data.series import DailySeries
from v28quant.data.snapshots import contracts_of, filter_chain, load_chain_snapshot
from v28quant.data.synthetic_chain import (
    SessionListings,
    SyntheticChainModel,
    chain_rows,
    last_trade_time,
    price_options,
)
from v28quant.quotes import Quote

CENT = Decimal("0.01")
log = logging.getLogger(__name__)


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
        self._series: dict[str, DailySeries] = {}
        for sym, g in hist.bars.groupby("symbol", sort=True):
            g = g.sort_values("timestamp")
            self._series[str(sym)] = DailySeries(str(sym), g, self.calendar)
        self._snapshots: dict[str, list[tuple[datetime, pd.DataFrame]]] = {}
        for s in snapshots:
            frame = load_chain_snapshot(s) if isinstance(s, (str, Path)) else s
            und = str(frame["underlying"].iloc[0])
            self._snapshots.setdefault(und, []).append((frame.attrs["as_of"], frame))
        for lst in self._snapshots.values():
            lst.sort(key=lambda x: x[0])
        self.snapshot_max_age = snapshot_max_age
        # today's path per symbol and the day before's: a larger cache only grows a long run
        self._path = lru_cache(maxsize=max(64, 2 * len(self._series)))(self._path_uncached)
        self._listings = SessionListings(self.model, self.calendar)

    # -- time and prices --------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def _series_of(self, symbol: str) -> DailySeries:
        s = self._series.get(symbol.upper())
        if s is None:
            raise KeyError(f"unknown symbol {symbol!r} (not in the replay history)")
        return s

    def _path_uncached(self, symbol: str, i: int) -> np.ndarray:
        s = self._series[symbol]
        rng = np.random.default_rng(stable_seed(self.seed, symbol, s.days[i].isoformat()))
        return intraday_path(s.o[i], s.h[i], s.l[i], s.c[i], s.minutes(i), rng)

    def price(self, symbol: str, now: datetime | None = None) -> float:
        """Return the price of ``symbol`` at ``now`` (default clock.now()), synthetic intraday."""
        s = self._series_of(symbol)
        now = now or self._now()
        i = s.locate(now)
        if i < 0:
            raise KeyError(f"{symbol}: no history before {now:%Y-%m-%d}")
        if i == len(s.days) - 1 and s.ended_by is not None and now >= s.ended_by:
            raise KeyError(f"{symbol}: the history ends on {s.days[i]}, before {now:%Y-%m-%d}")
        if s.days[i] != now.astimezone(ET).date() or now >= s.closes[i]:
            return float(s.c[i])
        if now < s.opens[i]:
            if i == 0:
                raise KeyError(f"{symbol}: no history before {now:%Y-%m-%d}")
            return float(s.c[i - 1])
        k = int((now - s.opens[i]).total_seconds() // 60)
        return float(self._path(s.symbol, i)[min(k, s.minutes(i))])

    def realised_vol(self, symbol: str) -> float:
        """Return annualised close-to-close vol of the last ``vol_window`` closed sessions.

        Scaled by sqrt(252); ``vol_default`` with fewer than 5 returns.
        """
        closes = self._series_of(symbol).completed_closes(self._now())
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
        """Return bars that have ended by now (``BAR_COLUMNS``; see the module docstring)."""
        n, unit = parse_timeframe(timeframe)
        now = self._now()
        lo = _as_utc(start, end=False)
        hi = min(_as_utc(end, end=True), now) if end is not None else now
        parts, made = [], set()
        for sym in symbols:
            s = self._series_of(sym)
            if unit == "Day" and n == 1:
                part = self._daily(s, lo, hi, now)
                j = s.in_progress(now)  # today's partial bar comes from the synthetic path
                partial = j is not None and part["timestamp"].iloc[-1:].ge(s.day_stamp(j)).any()
                if partial or self.history.synthetic.get(s.symbol):
                    made.add(s.symbol)
            elif unit in ("Min", "Hour"):
                part = self._intraday(s, n * (60 if unit == "Hour" else 1), lo, hi, now)
                made.add(s.symbol)
            else:
                raise ValueError(f"replay supports 1Day and minute/hour bars, got {timeframe!r}")
            if len(part):
                parts.append(part)
            else:
                made.discard(s.symbol)
        out = pd.concat(parts, ignore_index=True)[list(BAR_COLUMNS)] if parts else empty_bars()
        # Labels for whoever records what was computed from these bars (the journal): the
        # intraday path is pinned to the day's high, low and close, so it is not market data.
        out.attrs = {"synthetic": bool(made), "synthetic_symbols": sorted(made), "as_of": now}
        return out

    def _daily(self, s: DailySeries, lo: datetime, hi: datetime, now: datetime) -> pd.DataFrame:
        j = bisect.bisect_right(s.close_utc, now)  # sessions closed by now
        # a daily bar is in range if its session date is within [lo, hi] (dates in New York):
        # the closed sessions a..b-1 are by their bisection, today's partial bar is checked
        first, last = lo.astimezone(ET).date(), hi.astimezone(ET).date()
        a = min(bisect.bisect_left(s.days, first), j)
        b = min(bisect.bisect_right(s.days, last), j)
        rows = pd.DataFrame(
            {
                "timestamp": s.day_stamps[a:b],
                "symbol": s.symbol,
                "open": s.o[a:b],
                "high": s.h[a:b],
                "low": s.l[a:b],
                "close": s.c[a:b],
                "volume": s.v[a:b],
            }
        )
        if s.in_progress(now) == j and first <= s.days[j] <= last:  # today's partial bar
            path = self._path(s.symbol, j)
            k = int((now - s.opens[j]).total_seconds() // 60)
            seen = path[: k + 1]
            frac = volume_profile(s.minutes(j))[k]
            part = pd.DataFrame(
                {
                    "timestamp": [s.day_stamp(j)],
                    "symbol": s.symbol,
                    "open": seen[0],
                    "high": seen.max(),
                    "low": seen.min(),
                    "close": seen[-1],
                    "volume": float(np.floor(s.v[j] * frac)),
                }
            )
            rows = pd.concat([rows, part], ignore_index=True) if len(rows) else part
        return rows

    def _intraday(
        self, s: DailySeries, minutes: int, lo: datetime, hi: datetime, now: datetime
    ) -> pd.DataFrame:
        first = bisect.bisect_left(s.days, lo.astimezone(ET).date())
        last = bisect.bisect_right(s.days, hi.astimezone(ET).date())
        out: list[tuple[datetime, str, float, float, float, float, float]] = []
        for i in range(first, last):
            if s.opens[i] > now:
                break
            out += session_bars(
                s.symbol, self._path(s.symbol, i), s.opens[i], float(s.v[i]), minutes, lo, hi, now
            )
        if not out:
            return empty_bars()
        df = pd.DataFrame(out, columns=list(BAR_COLUMNS))
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
        return df

    # -- quotes -----------------------------------------------------------------------------

    async def latest_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        """Return quotes now of the known ``symbols`` that have a usable one.

        Unknown symbols are left out, and so is a recorded quote that is crossed or negative
        (``Quote`` refuses it), with a warning, as the Alpaca feed drops one.
        """
        out = {}
        for sym in symbols:
            try:
                out[sym] = await self.quote(sym)
            except KeyError:
                continue
            except ValueError as exc:
                log.warning("replay: dropping quote for %s: %s", sym, exc)
        return out

    async def quote(self, symbol: str) -> Quote:
        """Return the quote of an equity or OCC option symbol now; ``KeyError`` if unknown."""
        now = self._now()
        if is_occ(symbol):
            return self._option_quote(symbol.upper(), now)
        px = self.price(symbol, now)
        half = max(0.005, px * self.equity_spread_bps / 2e4)
        bid, ask = round_out(px - half, px + half, CENT)
        return Quote(symbol.upper(), bid, ask, now, 100, 100, synthetic=True)

    def option_quote_cutoff(self) -> None:
        """Return None: every option quote is priced at the clock's time, none is stale."""
        return None

    async def closing_price(self, symbol: str, session: datetime) -> Decimal:
        """Return the official close of the session containing ``session``.

        ``ValueError`` if that session has not closed yet at ``clock.now()`` (no look-ahead).
        """
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
        i = s.locate(now)
        if i < 0:
            raise KeyError(f"{underlying}: no history before {now:%Y-%m-%d}")
        # strikes from the last close before today's session (they don't move intraday)
        today = now.astimezone(ET).date()
        ref_i = i - 1 if s.days[i] == today and i > 0 else i
        return self._listing_for(underlying, today, float(s.c[ref_i]))

    def _listing_for(self, underlying: str, today: date, ref: float) -> pd.DataFrame:
        m = self.model
        return self._listings.get(
            underlying,
            today,
            ref,
            lambda: max(m.vol_floor, self.realised_vol(underlying)) * m.variance_risk_premium,
        )

    def _price_options(
        self,
        underlying: str,
        expiry: NDArray[np.object_],
        strike: NDArray[np.float64],
        is_call: NDArray[np.bool_],
        now: datetime,
    ) -> dict[str, NDArray[np.float64]]:
        return price_options(
            self.model,
            self.calendar,
            underlying,
            spot=self.price(underlying, now),
            div=self._div_yield(underlying),
            realised_vol=self.realised_vol(underlying),
            expiry=expiry,
            strike=strike,
            is_call=is_call,
            now=now,
        )

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
        closes = last_trade_time(self.calendar, occ.root, occ.expiry)
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
        """Return the listed contracts (``CONTRACT_COLUMNS``) of the chain now."""
        chain = await self.option_chain(
            underlying, expiry_from, expiry_to, type, strike_from, strike_to
        )
        return contracts_of(chain)

    async def option_chain(
        self,
        underlying: str,
        expiry_from: date | None = None,
        expiry_to: date | None = None,
        type: OptionType | None = None,
        strike_from: float | None = None,
        strike_to: float | None = None,
    ) -> pd.DataFrame:
        """Return the chain now: a fresh recorded snapshot, else the synthetic chain."""
        underlying = underlying.upper()
        now = self._now()
        snap = self._fresh_snapshot(underlying, now)
        if snap is not None:
            return filter_chain(snap, expiry_from, expiry_to, type, strike_from, strike_to)
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
        exp = lst["expiry"].to_numpy()
        ends = {e: now <= last_trade_time(self.calendar, underlying, e) for e in set(exp)}
        lst = lst[np.fromiter((ends[e] for e in exp), bool, len(exp))].reset_index(drop=True)
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
        rows = chain_rows(
            underlying,
            lst,
            r,
            spot=spot,
            realised_vol=max(self.model.vol_floor, self.realised_vol(underlying)),
        )
        return chain_frame(
            rows,
            underlying_price=spot,
            as_of=now,
            source="synthetic (BSM, SSVI smile fitted to SPY)",
        )

    async def aclose(self) -> None:
        """Close nothing: replay holds no sessions."""

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


__all__ = [
    "ReplayFeed",
    "SyntheticChainModel",
    "intraday_path",
    "load_chain_snapshot",
]
