"""Recorded option-chain snapshots as chain frames, and filtering a chain like a venue query."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from v28quant.calendar import ET
from v28quant.data.base import CONTRACT_COLUMNS, chain_frame, format_occ


def filter_chain(
    df: pd.DataFrame,
    expiry_from: date | None,
    expiry_to: date | None,
    type: str | None,
    strike_from: float | None,
    strike_to: float | None,
) -> pd.DataFrame:
    """Return the rows of chain ``df`` within the given expiry, type and strike bounds."""
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
    """Load a recorded option-chain snapshot as a chain frame (``synthetic=False``).

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


def contracts_of(chain: pd.DataFrame) -> pd.DataFrame:
    """Return the listed contracts (``CONTRACT_COLUMNS``) of chain frame ``chain``."""
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
