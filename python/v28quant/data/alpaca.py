"""``AlpacaData``: the ``DataFeed`` on Alpaca's market-data API (alpaca-py).

The only module (with ``v28quant.broker.alpaca``) that imports alpaca-py. Behaviour that
matters (see research/alpaca.md §4-§5):

* Daily history is split- and dividend-adjusted (``adjustment=all``; Alpaca's default is as
  traded): a split in the models' window would otherwise read as a crash of 50-90 % to GARCH,
  the regime detectors and the learned models, and the bundled sample history they are trained
  on in backtests is adjusted too. The latest session is as traded, so it matches the quotes.
  ``closing_price`` (what an expiry settles on) is as traded, and read from the SIP tape
  whatever ``feed`` says: an IEX daily bar closes on IEX's last trade, not on the closing
  auction that sets the official close.
* Stocks use ``feed="iex"`` by default (free plan). With ``sip``, ``end`` is clamped to now - 15
  minutes, because the free plan answers 403 to recent SIP data.
* Options use the ``indicative`` feed by default (free, delayed); ``opra`` needs a paid plan.
* Option contracts come from the trading API's ``/v2/options/contracts``, which alpaca-py does
  not paginate: we loop on ``next_page_token`` ourselves.
* The chain snapshot is stamped now, but each contract's quote has its own time: a contract
  last quoted more than ``option_quote_max_age_s`` (``V28_OPTION_QUOTE_MAX_AGE_S``, 5 minutes
  by default) before the newest quote its feed serves (now on ``opra``, now less the
  ``indicative`` feed's 15-minute delay) is left out, so the options engine never prices or
  trades off it.
* Snapshots carry no strike / expiry / type: they are parsed from the OCC symbol. IV and greeks
  are often missing (deep ITM/OTM, outside hours): NaN. Alpaca quotes theta per day and vega
  per vol point; the chain frame uses per year and per 1.00 of vol (x365, x100).
* A quote that is no price (crossed, negative, a side missing) is left out of
  ``latest_quotes``, and a crossed contract out of ``option_chain``, as the replay feed does:
  the rest of the answer stands, and one warning per answer names what went and why.
* alpaca-py is synchronous: every call runs on the worker pool shared with the broker adapter
  (``v28quant.alpaca.sdk``). Its own 429 retry (3 x 3 s sleeps) is switched off; the account's
  ``RateLimiter`` (the same object as the broker's) keeps both under the account's budget,
  pauses when a response says ``X-Ratelimit-Remaining: 0`` and, on a 429, waits for
  ``X-Ratelimit-Reset`` before trying again (``max_attempts`` tries in all).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, OptionsFeed
from alpaca.data.enums import DataFeed as _StockFeed
from alpaca.data.historical import OptionHistoricalDataClient, StockHistoricalDataClient
from alpaca.data.requests import (
    OptionChainRequest,
    OptionLatestQuoteRequest,
    StockBarsRequest,
    StockLatestQuoteRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import ContractType

from v28quant.alpaca.config import AlpacaConfig
from v28quant.alpaca.ratelimit import RateLimiter, account_limiter
from v28quant.alpaca.sdk import limited_call, option_contract_pages, prepare_client
from v28quant.calendar import ET, regular_close
from v28quant.data.base import (
    BAR_COLUMNS,
    CONTRACT_COLUMNS,
    DataError,
    OptionType,
    chain_frame,
    empty_bars,
    is_occ,
    parse_occ,
    parse_timeframe,
)
from v28quant.decimals import to_decimal
from v28quant.quotes import Quote
from v28quant.timeconv import to_utc

log = logging.getLogger(__name__)
T = TypeVar("T")
SIP_DELAY = timedelta(minutes=15)
_UNITS = {
    "Min": TimeFrameUnit.Minute,
    "Hour": TimeFrameUnit.Hour,
    "Day": TimeFrameUnit.Day,
    "Week": TimeFrameUnit.Week,
    "Month": TimeFrameUnit.Month,
}


def _price(x: float | None, side: str) -> Decimal:
    if x is None:  # a missing side is no quote, not a price of 0
        raise ValueError(f"quote has no {side} price")
    return to_decimal(x, side)


CROSSED = "crossed (bid > ask)"
#: How far behind now each option feed's newest quote is: the free ``indicative`` feed is
#: delayed 15 minutes, ``opra`` is real time.
OPTION_FEED_DELAY = {"indicative": timedelta(minutes=15), "opra": timedelta(0)}


def _quote_flaw(bid: float | None, ask: float | None) -> str | None:
    """Return why a quote is no price (a missing side, a negative or crossed one), else None."""
    if bid is None or ask is None:
        return "without a bid or an ask"
    if bid < 0 or ask < 0:
        return "negative"
    return CROSSED if bid > ask else None


def _say_left_out(answer: str, left_out: dict[str, list[str]]) -> None:
    """Log one line for everything left out of one answer, by reason, naming the symbols."""
    if left_out:
        parts = [f"{len(syms)} {why}: {', '.join(syms)}" for why, syms in left_out.items()]
        log.warning("Alpaca data: %s: left out %s", answer, "; ".join(parts))


def _f(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _utc(x: datetime | date | None, *, end: bool) -> datetime | None:
    return None if x is None else to_utc(x, end=end)


class AlpacaData:
    """``DataFeed`` on Alpaca (see the module docstring).

    Parameters
    ----------
    key_id, secret_key : str
        Alpaca API keys.
    data_url : str, optional
        Override of ``https://data.alpaca.markets`` (tests: the loopback fake).
    trading_url : str, optional
        Where ``/v2/options/contracts`` lives (default: Alpaca paper).
    feed : "iex" or "sip"
    options_feed : "indicative" or "opra"
    option_quote_max_age_s : float
        A chain snapshot's contract last quoted longer than this, in seconds, before the
        newest quote the feed serves (``OPTION_FEED_DELAY``) is left out of the chain
        (default 300: a few minutes in live and paper trading).
    limiter : RateLimiter, optional
        The account's request budget, for every call (default: the account's shared one,
        the same object ``AlpacaBroker`` uses).
    max_attempts : int
        Tries per call on 429s (each retry waits for the server's reset).
    timeout_s : float
        Per-request HTTP timeout; a request that runs past it raises ``DataError``.
    now : callable
        The runner's clock: the current time, timezone-aware. In live and paper trading it is
        the venue's (``VenueClock.now``), so a skewed host clock moves neither the SIP tape's
        delay nor when a settlement close is final.
    """

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        now: Callable[[], datetime],
        data_url: str | None = None,
        trading_url: str | None = None,
        feed: str = "iex",
        options_feed: str = "indicative",
        option_quote_max_age_s: float = 300.0,
        limiter: RateLimiter | None = None,
        max_attempts: int = 4,
        timeout_s: float = 30.0,
    ) -> None:
        if feed not in ("iex", "sip"):
            raise ValueError(f"feed must be 'iex' or 'sip', got {feed!r}")
        if options_feed not in ("indicative", "opra"):
            raise ValueError(f"options_feed must be 'indicative' or 'opra', got {options_feed!r}")
        self._stock = StockHistoricalDataClient(key_id, secret_key, url_override=data_url)
        self._option = OptionHistoricalDataClient(key_id, secret_key, url_override=data_url)
        self._trading = TradingClient(key_id, secret_key, paper=True, url_override=trading_url)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if not option_quote_max_age_s > 0:
            raise ValueError(f"option_quote_max_age_s must be > 0, got {option_quote_max_age_s}")
        self.limiter = limiter or account_limiter(key_id)
        for c in (self._stock, self._option, self._trading):
            prepare_client(c, timeout_s, self.limiter)
        self.feed = feed
        self.options_feed = options_feed
        self.option_quote_max_age = timedelta(seconds=option_quote_max_age_s)
        self.max_attempts = max_attempts
        self._now = now
        self._penny: dict[tuple[str, date], bool] = {}

    @classmethod
    def from_config(
        cls,
        config: AlpacaConfig,
        *,
        now: Callable[[], datetime],
        limiter: RateLimiter | None = None,
    ) -> AlpacaData:
        """Build from an ``AlpacaConfig`` on the runner's clock ``now``.

        By default on the account's shared rate limiter.
        """
        return cls(
            config.key_id,
            config.secret_key,
            now=now,
            data_url=config.data_url,
            trading_url=config.trading_url,
            feed=config.feed,
            options_feed=config.options_feed,
            option_quote_max_age_s=config.option_quote_max_age_s,
            limiter=limiter or account_limiter(config.key_id, config.rate_limit_per_min),
            max_attempts=config.max_attempts,
            timeout_s=config.timeout_s,
        )

    @classmethod
    def from_settings(
        cls, settings: Any, *, now: Callable[[], datetime], live: bool = False
    ) -> AlpacaData:
        """Build from ``v28quant.settings.Settings`` (keys, endpoints, feeds) on clock ``now``."""
        return cls.from_config(AlpacaConfig.from_settings(settings, live=live), now=now)

    async def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one SDK call off the loop, under the account's rate limit, retrying 429s.

        ``what`` names what was asked for (``"bars of SPY, QQQ"``) in a ``DataError``.
        """
        try:
            return await limited_call(self.limiter, self.max_attempts, fn, *args)
        except APIError as err:
            raise DataError(
                f"Alpaca data: {what}: API error {err.status_code}: {_body(err)}"
            ) from None
        except requests.RequestException as err:  # timeout, dropped connection, bad body
            raise DataError(f"Alpaca data: {what}: API unreachable: {type(err).__name__}") from None

    # -- bars -------------------------------------------------------------------------------

    async def bars(
        self,
        symbols: list[str],
        start: datetime | date,
        end: datetime | date | None = None,
        timeframe: str = "1Day",
        adjustment: Adjustment = Adjustment.ALL,
        feed: str | None = None,
    ) -> pd.DataFrame:
        """Return bars of stocks and options in the fixed bar columns.

        Stock prices split- and dividend-adjusted unless ``adjustment`` says otherwise (see the
        module docstring); option bars are as traded. Stocks come from ``feed`` (default: the
        feed this client was built with).
        """
        n, unit = parse_timeframe(timeframe)
        lo, hi = _utc(start, end=False), _utc(end, end=True)
        feed = feed or self.feed
        if feed == "sip":  # the free plan refuses SIP data younger than 15 minutes
            cap = self._now() - SIP_DELAY
            hi = cap if hi is None else min(hi, cap)
        stocks = [s.upper() for s in symbols if not is_occ(s)]
        options = [s.upper() for s in symbols if is_occ(s)]
        tf = TimeFrame(n, _UNITS[unit])
        parts = []
        if stocks:
            req = StockBarsRequest(
                symbol_or_symbols=stocks,
                start=lo,
                end=hi,
                timeframe=tf,
                feed=_StockFeed(feed),
                adjustment=adjustment,
            )
            what = f"bars of {', '.join(stocks)}"
            parts.append(_bars_frame(await self._call(what, self._stock.get_stock_bars, req)))
        if options:
            from alpaca.data.requests import OptionBarsRequest

            oreq = OptionBarsRequest(symbol_or_symbols=options, start=lo, end=hi, timeframe=tf)
            what = f"bars of {', '.join(options)}"
            parts.append(_bars_frame(await self._call(what, self._option.get_option_bars, oreq)))
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else empty_bars()

    # -- quotes -----------------------------------------------------------------------------

    async def latest_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        """Return the latest quote of each symbol that has a usable one."""
        stocks = [s.upper() for s in symbols if not is_occ(s)]
        options = [s.upper() for s in symbols if is_occ(s)]
        raw: dict[str, Any] = {}
        if stocks:
            req = StockLatestQuoteRequest(symbol_or_symbols=stocks, feed=_StockFeed(self.feed))
            what = f"latest quotes of {', '.join(stocks)}"
            raw.update(await self._call(what, self._stock.get_stock_latest_quote, req))
        if options:
            oreq = OptionLatestQuoteRequest(
                symbol_or_symbols=options, feed=OptionsFeed(self.options_feed)
            )
            what = f"latest quotes of {', '.join(options)}"
            raw.update(await self._call(what, self._option.get_option_latest_quote, oreq))
        out = {}
        left_out: dict[str, list[str]] = {}
        for sym, q in raw.items():
            flaw = _quote_flaw(q.bid_price, q.ask_price)
            if flaw is not None:
                left_out.setdefault(flaw, []).append(sym)
                continue
            out[sym] = Quote(
                sym,
                _price(q.bid_price, "bid"),
                _price(q.ask_price, "ask"),
                q.timestamp,
                int(q.bid_size or 0),
                int(q.ask_size or 0),
            )
        _say_left_out("latest quotes", left_out)
        return out

    async def quote(self, symbol: str) -> Quote:
        """Return the latest quote of one symbol."""
        q = (await self.latest_quotes([symbol])).get(symbol.upper())
        if q is None:
            raise KeyError(f"no quote for {symbol!r}")
        return q

    def option_quote_cutoff(self) -> datetime:
        """Return the time before which an option quote is stale.

        ``option_quote_max_age`` before the newest quote the feed serves: now on ``opra``, now
        less the ``indicative`` feed's delay.
        """
        return self._now() - OPTION_FEED_DELAY[self.options_feed] - self.option_quote_max_age

    async def closing_price(self, symbol: str, session: datetime) -> Decimal:
        """Return the official close of ``symbol`` on the session of ``session``, as traded.

        From the SIP tape (see the module docstring). ``ValueError`` until that tape serves the
        session to its regular close: the free plan holds back its last 15 minutes, and an
        earlier bar would not be the day's.
        """
        day = session.astimezone(ET).date() if session.tzinfo else session.date()
        final_at = regular_close(day) + SIP_DELAY
        if self._now() < final_at:
            raise ValueError(
                f"the close of {symbol} on {day} is not final on the SIP tape until "
                f"{final_at:%H:%M} New York"
            )
        b = await self.bars([symbol], day, day, "1Day", adjustment=Adjustment.RAW, feed="sip")
        if b.empty:
            raise KeyError(f"no daily bar for {symbol!r} on {day}")
        return Decimal(repr(float(b["close"].iloc[-1])))

    # -- options ----------------------------------------------------------------------------

    async def option_contracts(
        self,
        underlying: str,
        expiry_from: date | None = None,
        expiry_to: date | None = None,
        type: OptionType | None = None,
        strike_from: float | None = None,
        strike_to: float | None = None,
    ) -> pd.DataFrame:
        """Return the option contracts of ``underlying`` matching the filters."""
        try:
            contracts = await option_contract_pages(
                lambda req: self._call(
                    f"option contracts of {underlying.upper()}",
                    self._trading.get_option_contracts,
                    req,
                ),
                underlying,
                expiration_gte=expiry_from,
                expiration_lte=expiry_to,
                type=ContractType(type) if type else None,
                strike_gte=strike_from,
                strike_lte=strike_to,
            )
        except ValueError as exc:  # too many pages
            raise DataError(str(exc)) from None
        rows = [
            {
                "symbol": c.symbol,
                "underlying": c.underlying_symbol,
                "expiry": pd.Timestamp(c.expiration_date),
                "strike": float(c.strike_price),
                "type": c.type.value if hasattr(c.type, "value") else str(c.type),
                "style": c.style.value if hasattr(c.style, "value") else str(c.style),
                "size": _f(c.size),
                "open_interest": _f(c.open_interest),
                "close_price": _f(c.close_price),
                "tradable": bool(c.tradable),
            }
            for c in contracts
        ]
        if not rows:
            return pd.DataFrame({c: [] for c in CONTRACT_COLUMNS})
        df = pd.DataFrame(rows)[list(CONTRACT_COLUMNS)]
        return df.sort_values(["expiry", "type", "strike"], kind="stable").reset_index(drop=True)

    async def option_chain(
        self,
        underlying: str,
        expiry_from: date | None = None,
        expiry_to: date | None = None,
        type: OptionType | None = None,
        strike_from: float | None = None,
        strike_to: float | None = None,
    ) -> pd.DataFrame:
        """Return the chain snapshot of ``underlying`` in the fixed chain columns."""
        req = OptionChainRequest(
            underlying_symbol=underlying.upper(),
            feed=OptionsFeed(self.options_feed),
            type=ContractType(type) if type else None,
            strike_price_gte=strike_from,
            strike_price_lte=strike_to,
            expiration_date_gte=expiry_from,
            expiration_date_lte=expiry_to,
        )
        what = f"option chain of {underlying.upper()}"
        snaps = await self._call(what, self._option.get_option_chain, req)
        penny = await self._penny_program(underlying.upper())
        now = self._now()
        oldest = self.option_quote_cutoff()
        stale = f"stale (quoted before {oldest:%H:%M:%S} UTC)"
        rows = []
        left_out: dict[str, list[str]] = {}
        for sym, s in snaps.items():
            try:
                occ = parse_occ(sym)
            except ValueError:
                log.warning("Alpaca data: skipping non-OCC symbol %r in chain", sym)
                continue
            q, g = s.latest_quote, s.greeks
            if q is not None and _quote_flaw(q.bid_price, q.ask_price) == CROSSED:
                left_out.setdefault(CROSSED, []).append(sym)
                continue
            if q is not None and q.timestamp < oldest:
                left_out.setdefault(stale, []).append(sym)
                continue
            bid = _f(q.bid_price) if q else math.nan
            ask = _f(q.ask_price) if q else math.nan
            rows.append(
                {
                    "symbol": sym,
                    "underlying": underlying.upper(),
                    "expiry": pd.Timestamp(occ.expiry),
                    "strike": float(occ.strike),
                    "type": occ.type,
                    "bid": bid,
                    "ask": ask,
                    "mid": (bid + ask) / 2.0,
                    "iv": _f(s.implied_volatility),
                    "delta": _f(g.delta) if g else math.nan,
                    "gamma": _f(g.gamma) if g else math.nan,
                    "theta": _f(g.theta) * 365.0 if g else math.nan,  # per day -> per year
                    "vega": _f(g.vega) * 100.0 if g else math.nan,  # per vol point -> per 1.00
                    "open_interest": math.nan,
                    "volume": math.nan,
                    "penny": penny,
                    "synthetic": False,
                }
            )
        _say_left_out(f"{underlying.upper()} option chain", left_out)
        return chain_frame(
            rows, as_of=now, source=f"alpaca options snapshots ({self.options_feed})"
        )

    async def _penny_program(self, underlying: str) -> bool:
        """Return whether ``underlying``'s options are in the Penny Interval Program.

        Snapshots do not say; a contract record does (``ppind``), which alpaca-py's model
        drops, so one record is read raw. The program lists whole classes, reviewed twice a
        year: one contract answers for the class, once a day. A record without the field
        (an older API) counts as in the program.
        """
        key = (underlying, self._now().date())
        if key not in self._penny:
            params = {"underlying_symbols": underlying, "limit": 1}
            body = await self._call(
                f"option contracts of {underlying}", self._trading.get, "/options/contracts", params
            )
            records = body.get("option_contracts") or [] if isinstance(body, dict) else []
            self._penny[key] = bool(records[0].get("ppind", True)) if records else True
        return self._penny[key]

    async def aclose(self) -> None:
        """Close the HTTP sessions."""
        for c in (self._stock, self._option, self._trading):
            session = getattr(c, "_session", None)
            if session is not None:
                session.close()


def _body(err: APIError) -> str:
    """Return the error's message without risking ``APIError.code``'s JSON parsing."""
    try:
        return str(err.message)
    except Exception:
        return str(err)[:200]


def _bars_frame(barset: Any) -> pd.DataFrame:
    rows = [
        (b.timestamp, sym, b.open, b.high, b.low, b.close, b.volume)
        for sym, bars in barset.data.items()
        for b in bars
    ]
    if not rows:
        return empty_bars()
    df = pd.DataFrame(rows, columns=list(BAR_COLUMNS))
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    for c in ("open", "high", "low", "close", "volume"):
        df[c] = df[c].astype(np.float64)
    return df.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
