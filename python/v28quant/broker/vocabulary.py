"""The words of the broker seam: sides, intents, order kinds and Alpaca's order states."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from v28quant.occ import CONTRACT_SIZE as CONTRACT_SIZE  # defined with the OCC symbols

Side = Literal["buy", "sell"]
Intent = Literal["buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close"]
OrderType = Literal["market", "limit"]
AssetClass = Literal["us_equity", "us_option"]
OrderKind = Literal["equity", "option", "mleg"]

SIDES = ("buy", "sell")
INTENTS = ("buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close")


class OrderStatus(StrEnum):
    """Alpaca's order states (the simulator uses the same names)."""

    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    DONE_FOR_DAY = "done_for_day"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    PENDING_REVIEW = "pending_review"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding"
    STOPPED = "stopped"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    CALCULATED = "calculated"
    HELD = "held"

    @property
    def terminal(self) -> bool:
        """No further fills can happen."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REPLACED,
        OrderStatus.REJECTED,
    }
)
