"""Which quotes a cycle's SVI surface is fitted to: a few expiries, a few strikes each.

Each SVI slice costs a fit and each quote a term in it; daily and weekly listings with $1
strikes would otherwise dominate the cycle. The expiries the strategies trade are always kept.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def thin_strikes(rows: pd.DataFrame, spot: float, max_abs_y: float, n: int) -> pd.DataFrame:
    """Keep, per expiry, at most ``n`` strikes within ``|ln(K / S)| <= max_abs_y``.

    Kept strikes are evenly spread, with both types at each, so put-call parity still finds
    the forward; each SVI slice fit costs in proportion to its quotes.
    """
    y = np.log(rows["strike"].to_numpy(float) / spot)
    rows = rows[np.abs(y) <= max_abs_y]
    if rows.empty:
        return rows
    codes, _ = pd.factorize(rows["expiry"], sort=True)
    strikes = rows["strike"].to_numpy(float)
    keep = np.zeros(len(rows), dtype=bool)
    for c in range(codes.max() + 1):
        of = codes == c
        ks = np.unique(strikes[of])
        if len(ks) > n:
            ks = ks[np.unique(np.linspace(0, len(ks) - 1, n).round().astype(int))]
        keep |= of & np.isin(strikes, ks)
    # expiry by expiry, each in its original row order
    idx = np.flatnonzero(keep)
    return rows.iloc[idx[np.argsort(codes[idx], kind="stable")]]


def spread_expiries(rows: pd.DataFrame, n: int, keep: tuple[int, int]) -> pd.DataFrame:
    """Keep at most ``n`` expiries: those inside ``keep`` (DTE) first, then evenly spread.

    Each SVI slice costs a fit; daily and weekly listings would otherwise dominate the cycle.
    """
    dtes = sorted(set(rows["dte"].tolist()))
    if len(dtes) <= n:
        return rows
    inside = [d for d in dtes if keep[0] <= d <= keep[1]]
    picked = set(inside[:: max(1, math.ceil(len(inside) / max(n // 2, 1)))])
    rest = [d for d in dtes if d not in picked]
    room = n - len(picked)
    if room > 0 and rest:
        idx = np.unique(np.linspace(0, len(rest) - 1, room).round().astype(int))
        picked |= {rest[i] for i in idx}
    return rows[rows["dte"].isin(picked)]
