"""Daily history for replay: the built-in samples and users' own files.

Built-in samples come from packages v28quant depends on, so they work on a fresh machine with
no network:

* ``skfolio.datasets.load_sp500_dataset()``: daily closes of 20 S&P 500 stocks, 1990-2022, and
  ``load_sp500_index()`` (symbol ``SP500``). Only closes exist: open, high, low and volume are
  built by a seeded model and LABELLED synthetic (``History.synthetic``).
* ``arch.data.sp500``: S&P 500 index OHLCV 1999-2018, real (symbol ``SPX``).
* ``arch.data.vix``: VIX closes 2014-2019 (symbol ``VIX``); open/high/low synthetic, volume 0.

Users' files: CSV or Parquet with columns ``date, open, high, low, close, volume`` (case-
insensitive; an optional ``symbol`` column; other columns ignored), see ``load_bars_file``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from v28quant.calendar import ET
from v28quant.data.base import BAR_COLUMNS
from v28quant.data.seeding import stable_seed

_OHLC = ("open", "high", "low", "close")


@dataclass(frozen=True)
class History:
    """Daily bars of several symbols and what in them is synthetic.

    Attributes
    ----------
    bars : DataFrame
        Long format with ``BAR_COLUMNS`` (see ``v28quant.data.base``), daily, sorted.
    synthetic : Mapping[str, frozenset[str]]
        Per symbol, the columns produced by a model rather than recorded (absent = all real).
    source : Mapping[str, str]
        Per symbol, where the numbers come from.
    """

    bars: pd.DataFrame
    synthetic: Mapping[str, frozenset[str]] = field(default_factory=dict)
    source: Mapping[str, str] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        """Return the symbols with bars, sorted."""
        return sorted(self.bars["symbol"].unique())

    def merge(self, other: History) -> History:
        """Both histories; ``other`` wins for a symbol present in both."""
        keep = self.bars[~self.bars["symbol"].isin(other.symbols)]
        bars = pd.concat([keep, other.bars], ignore_index=True)
        bars = bars.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
        return History(bars, {**self.synthetic, **other.synthetic}, {**self.source, **other.source})


def _session_stamps(dates: Iterable[Any]) -> pd.DatetimeIndex:
    """Session dates -> midnight New York in UTC (Alpaca's daily-bar timestamp)."""
    raw = dates if isinstance(dates, pd.Index) else list(dates)  # an index converts in bulk
    idx = pd.DatetimeIndex(pd.to_datetime(raw)).normalize()
    return idx.tz_localize(ET).tz_convert("UTC")


def _long(symbol: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Date-indexed OHLCV -> long format."""
    out = pd.DataFrame(
        {
            "timestamp": _session_stamps(frame.index),
            "symbol": symbol,
            **{c: frame[c].to_numpy(np.float64) for c in (*_OHLC, "volume")},
        }
    )
    return out[list(BAR_COLUMNS)]


def ohlc_from_closes(closes: pd.Series, seed: int = 0, window: int = 20) -> pd.DataFrame:
    """Synthetic open/high/low around real closes (labelled synthetic by the caller).

    Open is the previous close (no overnight gap); high and low extend ``max(open, close)`` and
    ``min(open, close)`` by half-normal moves scaled by the trailing ``window``-day volatility of
    log returns. The expected range of a Brownian day is about 1.6 daily standard deviations
    (Parkinson 1980); half-normal extensions of 0.5 sigma on each side plus the |return| give a
    comparable average range. Seeded by (seed, series name): reproducible.
    """
    c = closes.astype(np.float64).to_numpy()
    if len(c) == 0 or not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"{closes.name}: closes must be finite and > 0")
    r = np.diff(np.log(c), prepend=np.log(c[0]))
    sd = pd.Series(r).rolling(window, min_periods=2).std().bfill().fillna(0.01).to_numpy()
    rng = np.random.default_rng(stable_seed(seed, closes.name, "ohlc"))
    o = np.concatenate([[c[0]], c[:-1]])
    up = np.abs(rng.standard_normal(len(c))) * 0.5 * sd
    dn = np.abs(rng.standard_normal(len(c))) * 0.5 * sd
    h = np.maximum(o, c) * np.exp(up)
    lo = np.minimum(o, c) * np.exp(-dn)
    return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c}, index=closes.index)


def _from_closes(closes: pd.DataFrame, source: str, seed: int) -> History:
    parts, synth, src = [], {}, {}
    for sym in closes.columns:
        s = closes[sym].dropna()
        s.name = sym
        f = ohlc_from_closes(s, seed=seed)
        f["volume"] = 0.0
        parts.append(_long(str(sym), f))
        synth[str(sym)] = frozenset({"open", "high", "low", "volume"})
        src[str(sym)] = source
    return History(pd.concat(parts, ignore_index=True), synth, src)


def sp500_stocks(seed: int = 0) -> History:
    """Skfolio's 20 S&P 500 stocks (daily closes 1990-2022, real) plus the index ``SP500``.

    Open, high and low are synthetic (``ohlc_from_closes``), volume 0 (unknown).
    """
    from skfolio.datasets import load_sp500_dataset, load_sp500_index

    prices = pd.concat([load_sp500_dataset(), load_sp500_index()], axis=1)
    return _from_closes(prices, "skfolio.datasets (S&P 500 constituents, daily closes)", seed)


def sp500_index_ohlcv() -> History:
    """Arch's S&P 500 index daily OHLCV 1999-2018, all real, as symbol ``SPX``."""
    import arch.data.sp500

    raw = arch.data.sp500.load()
    f = raw.rename(columns=str.lower)[[*_OHLC, "volume"]]
    return History(_long("SPX", f), {}, {"SPX": "arch.data.sp500 (Yahoo ^GSPC)"})


def vix(seed: int = 0) -> History:
    """Arch's VIX closes 2014-2019 as symbol ``VIX``; open/high/low synthetic, volume 0."""
    import arch.data.vix

    closes = arch.data.vix.load().rename(columns={"vix": "VIX"})
    return _from_closes(closes[["VIX"]], "arch.data.vix", seed)


#: The bundled series that are indexes: market references for the models, not tradable.
INDEXES = ("SP500", "SPX", "VIX")


def sample_history(seed: int = 0) -> History:
    """Every built-in sample: the 20 stocks + ``SP500`` (skfolio), ``SPX`` and ``VIX`` (arch)."""
    return sp500_stocks(seed).merge(sp500_index_ohlcv()).merge(vix(seed))


def load_bars_file(path: str | Path, symbol: str | None = None) -> History:
    """Load a user's daily bars from CSV or Parquet.

    Columns (case-insensitive): ``date, open, high, low, close, volume``, optionally ``symbol``
    (else ``symbol`` or the file name's stem is used). Rows are sorted by date. Raises
    ``ValueError`` naming the file, column and row for a missing column, an unparsable or
    duplicate date, a non-positive or NaN price, or a high/low that does not bracket open and
    close.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such file")
    try:
        df = pd.read_parquet(p) if p.suffix.lower() in (".parquet", ".pq") else pd.read_csv(p)
    except ImportError:
        raise ValueError(f"{p}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as exc:
        raise ValueError(f"{p}: cannot read as CSV/Parquet: {exc}") from None
    df = df.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in ("date", *_OHLC, "volume") if c not in df]
    if missing:
        raise ValueError(
            f"{p}: missing column(s) {missing}; need date, open, high, low, close, volume"
        )
    if "symbol" in df:
        groups = {str(s).upper(): g for s, g in df.groupby("symbol", sort=True)}
    else:
        groups = {(symbol or p.stem).upper(): df}
    parts = []
    for sym, g in groups.items():
        dates = pd.to_datetime(g["date"], errors="coerce")
        if dates.isna().any():
            row = int(np.flatnonzero(dates.isna().to_numpy())[0])
            raise ValueError(f"{p}: column 'date' row {row}: cannot parse {g['date'].iloc[row]!r}")
        f = g[[*_OHLC, "volume"]].apply(pd.to_numeric, errors="coerce")
        f.index = (
            dates.dt.tz_localize(None).dt.normalize()
            if dates.dt.tz is not None
            else dates.dt.normalize()
        )
        f = f.sort_index()
        if f.index.has_duplicates:
            dup = f.index[f.index.duplicated()][0]
            raise ValueError(f"{p}: {sym}: duplicate date {dup:%Y-%m-%d}")
        for c in _OHLC:
            bad = ~(np.isfinite(f[c].to_numpy()) & (f[c].to_numpy() > 0))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{p}: {sym}: column {c!r} on {f.index[i]:%Y-%m-%d}: must be a "
                    f"positive number, got {f[c].iloc[i]!r}"
                )
        vol = f["volume"].to_numpy()
        if (~np.isfinite(vol) | (vol < 0)).any():
            i = int(np.flatnonzero(~np.isfinite(vol) | (vol < 0))[0])
            raise ValueError(f"{p}: {sym}: column 'volume' on {f.index[i]:%Y-%m-%d}: must be >= 0")
        hi_bad = f["high"] < f[["open", "close"]].max(axis=1) * (1 - 1e-9)
        lo_bad = f["low"] > f[["open", "close"]].min(axis=1) * (1 + 1e-9)
        for col, bad in (("high", hi_bad), ("low", lo_bad)):
            if bad.any():
                d = f.index[bad.to_numpy()][0]
                raise ValueError(
                    f"{p}: {sym}: column {col!r} on {d:%Y-%m-%d} does not bracket open and close"
                )
        parts.append(_long(sym, f))
    return History(pd.concat(parts, ignore_index=True), {}, {s: str(p) for s in groups})


def load_bars_files(paths: Iterable[str | Path]) -> History:
    """Several files (one symbol each, named by stem, or with a ``symbol`` column)."""
    out: History | None = None
    for p in paths:
        h = load_bars_file(p)
        out = h if out is None else out.merge(h)
    if out is None:
        raise ValueError("load_bars_files: no files given")
    return out
