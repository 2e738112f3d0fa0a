"""Which quotes a cycle's SVI surface is fitted to: a few expiries, a few strikes each.

Each SVI slice costs a fit and each quote a term in it; daily and weekly listings with $1
strikes would otherwise dominate the cycle. The expiries the strategies trade are always kept.
Both steps work on a chain's columns as arrays and say which rows to keep, so the fit's quotes
are taken from the chain once.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import NDArray


def thin_strikes(
    strike: NDArray[np.float64],
    expiry: NDArray[np.generic],
    spot: float,
    max_abs_y: float,
    n: int,
) -> NDArray[np.intp]:
    """Return the rows of at most ``n`` strikes per expiry within ``|ln(K / S)| <= max_abs_y``.

    Kept strikes are evenly spread, with both types at each, so put-call parity still finds
    the forward; each SVI slice fit costs in proportion to its quotes. Positions come expiry by
    expiry (earliest first), each expiry's in their original order.
    """
    within = np.flatnonzero(np.abs(np.log(strike / spot)) <= max_abs_y)
    if not within.size:
        return within
    codes, _ = pd.factorize(expiry[within], sort=True)
    strikes = strike[within]
    keep = np.zeros(len(within), dtype=bool)
    for c in range(codes.max() + 1):
        of = codes == c
        ks = np.unique(strikes[of])
        if len(ks) > n:
            ks = ks[np.unique(np.linspace(0, len(ks) - 1, n).round().astype(int))]
        keep |= of & np.isin(strikes, ks)
    idx = np.flatnonzero(keep)
    return within[idx[np.argsort(codes[idx], kind="stable")]]


def spread_expiries(dte: NDArray[np.int64], n: int, keep: tuple[int, int]) -> NDArray[np.bool_]:
    """Return which rows to keep: those of at most ``n`` expiries (days to expiry ``dte``).

    The expiries inside ``keep`` (DTE) come first, then others evenly spread. Each SVI slice
    costs a fit; daily and weekly listings would otherwise dominate the cycle.
    """
    dtes = sorted(set(dte.tolist()))
    if len(dtes) <= n:
        return np.ones(len(dte), dtype=bool)
    inside = [d for d in dtes if keep[0] <= d <= keep[1]]
    picked = set(inside[:: max(1, math.ceil(len(inside) / max(n // 2, 1)))])
    rest = [d for d in dtes if d not in picked]
    room = n - len(picked)
    if room > 0 and rest:
        idx = np.unique(np.linspace(0, len(rest) - 1, room).round().astype(int))
        picked |= {rest[i] for i in idx}
    return np.isin(dte, sorted(picked))
