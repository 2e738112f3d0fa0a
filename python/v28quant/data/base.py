"""The ``DataFeed`` seam: what engines may ask of market data, whoever provides it.

Implementations: ``v28quant.data.alpaca.AlpacaData`` (Alpaca's data API) and
``v28quant.data.replay.ReplayFeed`` (history on a simulated clock). A DataFeed is also a
``v28quant.quotes.QuoteSource`` so ``SimBroker`` can fill against it. A source that refuses or
fails a request (an HTTP error, a timeout) raises ``DataError``, so callers can drop what it
was for without importing the feed's client library.

Frames
------
Bars (``bars()``) come in long format, one row per (symbol, bar), sorted by symbol then time,
with exactly the columns ``BAR_COLUMNS``:

* ``timestamp``: bar start, timezone-aware UTC. A daily bar starts at midnight New York time of
  its session (Alpaca's convention: 04:00Z in summer, 05:00Z in winter), so
  ``timestamp.dt.tz_convert("America/New_York").dt.date`` is the session date.
* ``symbol`` (str); ``open``, ``high``, ``low``, ``close`` (float64, currency per share);
  ``volume`` (float64, shares).

Option chains (``option_chain()``) have exactly the columns ``CHAIN_COLUMNS``, one row per
contract:

* ``symbol`` OCC symbol, ``underlying``, ``expiry`` (datetime64, the expiration date at
  midnight, naive), ``strike`` (float64), ``type`` (``"call"`` / ``"put"``);
* ``bid``, ``ask``, ``mid`` (per-share premium; NaN when there is no quote);
* ``iv`` (annualised, 0.2 = 20 %), ``delta``, ``gamma``, ``theta`` (per YEAR of calendar time),
  ``vega`` (per 1.00 of vol), the vocabulary of ``v28quant.options.black_scholes``: Alpaca's
  per-day theta and per-vol-point vega are converted. NaN when the source did not compute them;
* ``open_interest``, ``volume`` (contracts, float64, NaN when unknown);
* ``penny`` (bool): the contract is in the Penny Interval Program (Alpaca's ``ppind``), so it
  trades in $0.01 below $3.00 and $0.05 above; outside it, $0.05 and $0.10. True where the
  source does not say (the bundled history and the synthetic chains are quoted in pennies);
* ``synthetic`` (bool): True where the row was produced by a model instead of recorded.

``frame.attrs`` carries ``underlying_price`` (float or NaN), ``as_of`` (datetime) and
``source`` (str) where known.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from v28quant.occ import OccSymbol, format_occ, is_occ, parse_occ
from v28quant.quotes import Quote

__all__ = [
    "BAR_COLUMNS",
    "CHAIN_COLUMNS",
    "CONTRACT_COLUMNS",
    "DataError",
    "DataFeed",
    "OccSymbol",
    "OptionType",
    "chain_frame",
    "empty_bars",
    "empty_chain",
    "format_occ",
    "is_occ",
    "parse_occ",
    "parse_timeframe",
]

BAR_COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")
CHAIN_COLUMNS = (
    "symbol",
    "underlying",
    "expiry",
    "strike",
    "type",
    "bid",
    "ask",
    "mid",
    "iv",
    "delta",
    "gamma",
    "theta",
    "vega",
    "open_interest",
    "volume",
    "penny",
    "synthetic",
)
CONTRACT_COLUMNS = (
    "symbol",
    "underlying",
    "expiry",
    "strike",
    "type",
    "style",
    "size",
    "open_interest",
    "close_price",
    "tradable",
)

OptionType = Literal["call", "put"]

_TIMEFRAME = re.compile(r"^(\d+)(Min|Hour|Day|Week|Month)$")


def parse_timeframe(timeframe: str) -> tuple[int, str]:
    """``"5Min"`` -> ``(5, "Min")``; the units are Alpaca's (Min, Hour, Day, Week, Month)."""
    m = _TIMEFRAME.match(timeframe) if isinstance(timeframe, str) else None
    if m is None or int(m.group(1)) < 1:
        raise ValueError(f"timeframe must look like '1Day', '5Min', '1Hour', got {timeframe!r}")
    return int(m.group(1)), m.group(2)


def empty_bars() -> pd.DataFrame:
    """Return a bars frame with no rows and the ``BAR_COLUMNS`` dtypes."""
    return pd.DataFrame(
        {
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "symbol": pd.Series([], dtype=object),
            **{
                c: pd.Series([], dtype=np.float64)
                for c in ("open", "high", "low", "close", "volume")
            },
        }
    )


#: The float columns of a chain frame (the others: names, the expiry and the synthetic flag).
_NUMERIC_CHAIN_COLUMNS = tuple(
    c
    for c in CHAIN_COLUMNS
    if c not in ("symbol", "underlying", "expiry", "type", "penny", "synthetic")
)


def empty_chain() -> pd.DataFrame:
    """Return a chain frame with no rows and the ``CHAIN_COLUMNS`` dtypes."""
    cols: dict[str, pd.Series] = {}
    for c in CHAIN_COLUMNS:
        if c in ("symbol", "underlying", "type"):
            cols[c] = pd.Series([], dtype=object)
        elif c == "expiry":
            cols[c] = pd.Series([], dtype="datetime64[ns]")
        elif c in ("penny", "synthetic"):
            cols[c] = pd.Series([], dtype=bool)
        else:
            cols[c] = pd.Series([], dtype=np.float64)
    return pd.DataFrame(cols)


def _sorted_chain(df: pd.DataFrame) -> bool:
    """Whether the rows are already in (expiry, type, strike) order with no missing key."""
    codes, _ = pd.factorize(df["type"], sort=True)
    order = np.lexsort((df["strike"].to_numpy(), codes, df["expiry"].to_numpy()))
    keys_known = df["expiry"].notna().all() and (codes >= 0).all() and df["strike"].notna().all()
    return bool(keys_known and np.array_equal(order, np.arange(len(df))))


def chain_frame(
    rows: list[dict[str, Any]] | pd.DataFrame,
    *,
    underlying_price: float = float("nan"),
    as_of: datetime | None = None,
    source: str = "",
) -> pd.DataFrame:
    """Build a chain DataFrame with exactly ``CHAIN_COLUMNS``.

    Dtypes are normalised and rows sorted by expiry, type and strike. ``rows`` may be a list
    of dicts or a frame already holding the columns.
    """
    if isinstance(rows, pd.DataFrame):
        df, rows = (rows, [{}]) if len(rows) else (empty_chain(), [])
    else:
        df = empty_chain() if not rows else pd.DataFrame(rows)
    # a frame already in the chain's columns, dtypes and index is taken as it is
    ready = tuple(df.columns) == CHAIN_COLUMNS and df.index.equals(pd.RangeIndex(len(df)))
    cols = {c: df[c] if c in df else pd.Series(np.nan, index=df.index) for c in CHAIN_COLUMNS}
    if rows:
        if cols["expiry"].dtype != "datetime64[ns]":
            cols["expiry"] = pd.to_datetime(cols["expiry"]).astype("datetime64[ns]")
            ready = False
        for c in _NUMERIC_CHAIN_COLUMNS:
            if cols[c].dtype != np.float64:  # a float column needs no conversion
                cols[c] = pd.to_numeric(cols[c], errors="coerce").astype(np.float64)
                ready = False
        if cols["synthetic"].dtype != bool:
            cols["synthetic"] = cols["synthetic"].fillna(False).astype(bool)
            ready = False
        if cols["penny"].dtype != bool:
            cols["penny"] = cols["penny"].astype(object).fillna(True).astype(bool)
            ready = False
    # else one frame from the normalised columns' arrays (no index to align): a column set at
    # a time costs more than the rows
    df = df.copy(deep=False) if ready else pd.DataFrame({c: v.array for c, v in cols.items()})
    if rows and not _sorted_chain(df):
        df = df.sort_values(["expiry", "type", "strike"], kind="stable").reset_index(drop=True)
    df.attrs.update(underlying_price=float(underlying_price), as_of=as_of, source=source)
    return df


class DataError(RuntimeError):
    """A feed's source refused or failed a request; the message says why (never the keys)."""


@runtime_checkable
class DataFeed(Protocol):
    """Market data for the engines (async; see the module docstring for the frames)."""

    async def bars(
        self,
        symbols: list[str],
        start: datetime | date,
        end: datetime | date | None = None,
        timeframe: str = "1Day",
    ) -> pd.DataFrame:
        """Return bars of ``symbols`` in long format, ``BAR_COLUMNS``.

        From ``start`` to ``end`` (inclusive; None = now) at ``timeframe`` (``"1Day"``,
        ``"5Min"``, ...). Stock prices are adjusted for splits and dividends (the latest
        session as traded), so the models' returns have no jump at a split; an expiry's
        settlement uses ``closing_price``, the close as traded.
        """
        ...

    async def latest_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        """Return the latest top-of-book quote per symbol (equity tickers or OCC symbols).

        Symbols with no quote are absent from the result.
        """
        ...

    async def option_contracts(
        self,
        underlying: str,
        expiry_from: date | None = None,
        expiry_to: date | None = None,
        type: OptionType | None = None,
        strike_from: float | None = None,
        strike_to: float | None = None,
    ) -> pd.DataFrame:
        """Return listed contracts (``CONTRACT_COLUMNS``): the reference data, no quotes."""
        ...

    async def option_chain(
        self,
        underlying: str,
        expiry_from: date | None = None,
        expiry_to: date | None = None,
        type: OptionType | None = None,
        strike_from: float | None = None,
        strike_to: float | None = None,
    ) -> pd.DataFrame:
        """Return a snapshot of the option chain now (``CHAIN_COLUMNS``)."""
        ...

    async def quote(self, symbol: str) -> Quote:
        """``QuoteSource.quote``: latest quote; ``KeyError`` naming an unknown symbol."""
        ...

    def option_quote_cutoff(self) -> datetime | None:
        """Return the time before which an option quote is stale, or None if none is.

        ``option_chain`` leaves out the contracts last quoted earlier; an option quote from
        ``latest_quotes`` stamped earlier must not price an order either.
        """
        ...

    async def closing_price(self, symbol: str, session: datetime) -> Decimal:
        """Return the official close of the session containing ``session``.

        The feed's side of ``QuoteSource.closing_price``.
        """
        ...

    async def aclose(self) -> None:
        """Release sessions and threads."""
        ...
