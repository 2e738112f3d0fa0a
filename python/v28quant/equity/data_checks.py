"""Whether one symbol's data is fit to trade on this cycle: the reason when it is not."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from v28quant.quotes import Quote

#: Daily closes checked for garbage (NaN, zero, negative) before a symbol is traded.
RECENT_CLOSES = 30
#: A quote older than this at decision time is stale: a halted symbol, or a silent feed.
STALE_QUOTE = timedelta(minutes=15)


def unusable_data(
    symbol: str, quote: Quote | None, closes: pd.DataFrame, now: datetime | None = None
) -> str | None:
    """Return why ``symbol`` must not be traded on this data, or None when it may.

    Parameters
    ----------
    symbol : str
        The ticker.
    quote : Quote or None
        Its latest quote (None: the feed had none).
    closes : DataFrame
        Daily closes, one column per symbol (prices per share).
    now : datetime, optional
        Decision time; given, a quote older than ``STALE_QUOTE`` (or from the future: a clock
        that jumped) is refused.

    Returns
    -------
    str or None
        A short reason (no quote, a non-positive price, a recorded quote with no size, a stale
        quote, bad recent closes), or None.
    """
    if quote is None:
        return "no quote"
    if not (quote.bid > 0 and quote.ask > 0):
        return f"quote price not positive (bid {quote.bid}, ask {quote.ask})"
    if not quote.synthetic and (quote.bid_size <= 0 or quote.ask_size <= 0):
        return f"quote with no size (bid size {quote.bid_size}, ask size {quote.ask_size})"
    if now is not None and not quote.synthetic:
        age = now - quote.ts
        if age > STALE_QUOTE or age < -STALE_QUOTE:
            return f"stale quote ({quote.ts.isoformat()} at {now.isoformat()}): halted or no feed"
    if symbol in closes.columns:
        # NaN here is a missing close on a day other symbols traded: a gap, not a quiet day
        recent = closes[symbol].tail(RECENT_CLOSES).to_numpy(dtype=float)
        if not np.all(np.isfinite(recent)) or np.any(recent <= 0):
            return "recent closes missing, NaN, zero or negative"
    return None
