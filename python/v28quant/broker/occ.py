"""OCC option symbols: ``ROOT`` + ``YYMMDD`` + ``C|P`` + strike x 1000 as 8 digits.

``SPY240621C00530000`` is the SPY call expiring 2024-06-21 with strike 530. This is the
form Alpaca uses for option orders, positions and market data (OCC "OSI" symbology without the
padding of the root to six characters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

_OCC = re.compile(r"^([A-Z][A-Z0-9.]{0,5})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")


@dataclass(frozen=True, slots=True)
class OccSymbol:
    """A parsed option symbol; ``strike`` in dollars per share."""

    root: str
    expiry: date
    call: bool
    strike: Decimal

    def __str__(self) -> str:
        return format_occ(self.root, self.expiry, self.call, self.strike)

    @property
    def underlying(self) -> str:
        """The underlying ticker (equal to the root for standard, non-adjusted contracts)."""
        return self.root


def format_occ(root: str, expiry: date, call: bool, strike: Decimal | str | int) -> str:
    """Build an OCC symbol; raises ``ValueError`` for a bad root or a strike off the 1/1000 grid."""
    root = root.strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,5}", root):
        raise ValueError(f"root must be 1-6 letters/digits, got {root!r}")
    k = Decimal(str(strike))
    milli = k * 1000
    if k <= 0 or milli != milli.to_integral_value() or milli >= 10**8:
        raise ValueError(f"strike must be > 0, a multiple of 0.001 and < 100000, got {strike}")
    return f"{root}{expiry:%y%m%d}{'C' if call else 'P'}{int(milli):08d}"


def parse_occ(symbol: str) -> OccSymbol:
    """Parse an OCC symbol; raises ``ValueError`` naming the symbol if it is not one."""
    m = _OCC.match(symbol)
    if m is None:
        raise ValueError(f"not an OCC option symbol: {symbol!r}")
    root, yy, mm, dd, cp, strike = m.groups()
    try:
        expiry = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        raise ValueError(f"not an OCC option symbol (bad date): {symbol!r}") from None
    return OccSymbol(root, expiry, cp == "C", Decimal(int(strike)) / 1000)


def is_occ(symbol: str) -> bool:
    """True when ``symbol`` is a well-formed OCC option symbol."""
    try:
        parse_occ(symbol)
    except ValueError:
        return False
    return True
