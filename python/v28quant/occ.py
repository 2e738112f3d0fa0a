"""OCC option symbols: ``ROOT`` + ``YYMMDD`` + ``C|P`` + strike x 1000 as 8 digits.

``SPY240621C00530000`` is the SPY call expiring 2024-06-21 with strike 530. This is the
form Alpaca uses for option orders, positions and market data (OCC "OSI" symbology without the
padding of the root to six characters). The one parser of the project, shared by the broker
and the data layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

#: Shares of the underlying one standard listed option contract covers.
CONTRACT_SIZE = Decimal(100)

_OCC = re.compile(r"^([A-Z][A-Z0-9.]{0,5})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")


@dataclass(frozen=True, slots=True)
class OccSymbol:
    """A parsed option symbol; ``strike`` in dollars per share."""

    root: str
    expiry: date
    call: bool
    strike: Decimal

    def __str__(self) -> str:
        """Return the OCC symbol, e.g. ``SPY240621C00530000``."""
        return format_occ(self.root, self.expiry, self.call, self.strike)

    @property
    def type(self) -> Literal["call", "put"]:
        """``"call"`` or ``"put"`` (the chain frames' vocabulary)."""
        return "call" if self.call else "put"

    @property
    def underlying(self) -> str:
        """The underlying ticker (equal to the root for standard, non-adjusted contracts)."""
        return self.root


_CALL_PUT = {"call": True, "c": True, "put": False, "p": False}


def _root(root: str) -> str:
    """Return the OCC root upper-cased; raises ``ValueError`` for a bad one."""
    root = root.strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,5}", root):
        raise ValueError(f"root must be 1-6 letters/digits, got {root!r}")
    return root


def format_occ(
    root: str, expiry: date, call: bool | str, strike: Decimal | str | int | float
) -> str:
    """Build an OCC symbol; ``call`` is a bool or ``"call"``/``"put"``/``"C"``/``"P"``.

    Raises ``ValueError`` for a bad root, type, or a strike off the 1/1000 grid.
    """
    if isinstance(call, str):
        if call.lower() not in _CALL_PUT:
            raise ValueError(f"type must be 'call' or 'put', got {call!r}")
        call = _CALL_PUT[call.lower()]
    root = _root(root)
    try:
        k = Decimal(str(strike))
    except InvalidOperation:
        raise ValueError(f"strike must be a number, got {strike!r}") from None
    milli = k * 1000
    if not k.is_finite() or k <= 0 or milli != milli.to_integral_value() or milli >= 10**8:
        raise ValueError(f"strike must be > 0, a multiple of 0.001 and < 100000, got {strike}")
    return f"{root}{expiry:%y%m%d}{'C' if call else 'P'}{int(milli):08d}"


def format_occ_many(root: str, expiry: ArrayLike, call: ArrayLike, strike: ArrayLike) -> list[str]:
    """OCC symbols of many contracts of one root: ``format_occ`` element by element.

    ``expiry`` holds dates, ``call`` bools, ``strike`` floats in dollars. A strike must be the
    double nearest a multiple of 0.001 (what ``format_occ`` accepts as the shortest ``repr``
    of a float); raises ``ValueError`` naming the first one that is not.
    """
    root = _root(root)
    k = np.asarray(strike, dtype=np.float64)
    milli = np.rint(k * 1000.0)
    bad = ~((k > 0) & (milli / 1000.0 == k) & (milli < 1e8))
    if bad.any():
        raise ValueError(
            "strike must be > 0, a multiple of 0.001 and < 100000, "
            f"got {float(k[np.argmax(bad)])!r}"
        )
    expiries = np.asarray(expiry, dtype=object)
    days = {e: f"{e:%y%m%d}" for e in set(expiries.tolist())}
    cp = np.where(np.asarray(call, dtype=bool), "C", "P")
    return [
        f"{root}{days[e]}{c}{m:08d}"
        for e, c, m in zip(
            expiries.tolist(), cp.tolist(), milli.astype(np.int64).tolist(), strict=True
        )
    ]


def parse_occ(symbol: str) -> OccSymbol:
    """Parse an OCC symbol; raises ``ValueError`` naming the symbol if it is not one."""
    m = _OCC.match(symbol) if isinstance(symbol, str) else None
    if m is None:
        raise ValueError(f"not an OCC option symbol: {symbol!r}")
    root, yy, mm, dd, cp, strike = m.groups()
    try:
        expiry = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        raise ValueError(f"not an OCC option symbol (bad date): {symbol!r}") from None
    return OccSymbol(root, expiry, cp == "C", Decimal(int(strike)) / 1000)


def multiplier(symbol: str) -> Decimal:
    """Shares per unit of ``symbol``: ``CONTRACT_SIZE`` for an OCC option, 1 for a stock."""
    return CONTRACT_SIZE if is_occ(symbol) else Decimal(1)


def is_occ(symbol: str) -> bool:
    """Return True when ``symbol`` is a well-formed OCC option symbol (a valid date included)."""
    try:
        parse_occ(symbol)
    except ValueError:
        return False
    return True


def underlying_of(symbol: str) -> str:
    """Return the underlying of an OCC option symbol, or ``symbol`` itself for a stock."""
    try:
        return parse_occ(symbol).underlying
    except ValueError:
        return symbol
