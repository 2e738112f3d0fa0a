"""The options package's data conditions: chains whose quotes cannot carry an analysis."""

from __future__ import annotations


class ChainUnusable(ValueError):
    """An option chain whose quotes cannot carry an analysis: a data condition, not a fault.

    Raised for a chain that is empty, has no liquid contract, gives no underlying price, no
    expiry with enough usable quotes, or no arbitrage-free SVI surface near its quotes. The
    options engine skips the underlying for the cycle with one warning and no traceback; any
    other exception there is logged as an error with its traceback.

    Parameters
    ----------
    reason : str
        The condition in a few words, the same every time it occurs (a notice that repeats it
        is held back as a repeat, whatever the numbers of the moment).
    detail : str
        The numbers of this occurrence (counts, fit errors), appended to the message.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        # both in args: a copy (pickle, copy.copy) is rebuilt from them
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        """Return ``reason (detail)``, or the reason alone."""
        return f"{self.reason} ({self.detail})" if self.detail else self.reason
