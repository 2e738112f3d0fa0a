"""Exact decimal numbers from whatever a caller or a venue hands over.

Money and quantities are ``Decimal`` in the broker layer and TEXT in the journal; a float is read
through its shortest round-trip ``repr`` (``0.1`` -> ``Decimal("0.1")``), never its binary
expansion.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


def to_decimal(x: Any, name: str) -> Decimal:
    """``x`` as a finite ``Decimal``.

    Parameters
    ----------
    x : Decimal, int, str or float
        The number (numpy scalars are read as Python ones).
    name : str
        What ``x`` is, for the error message.

    Returns
    -------
    Decimal
        The exact value; a float through its shortest round-trip text.

    Raises
    ------
    ValueError
        ``x`` is None, a bool, not a number, NaN or infinite; the message names ``name``.
    """
    if x is None or isinstance(x, bool):
        raise ValueError(f"{name} must be a number, got {x!r}")
    try:
        if isinstance(x, Decimal | int | str):
            d = Decimal(x)
        elif hasattr(x, "item") and not isinstance(x, float):  # numpy scalar
            return to_decimal(x.item(), name)
        else:
            d = Decimal(repr(float(x)))
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {x!r}") from None
    if not d.is_finite():
        raise ValueError(f"{name} must be finite, got {x!r}")
    return d
