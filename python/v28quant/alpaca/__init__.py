"""Plumbing shared by the Alpaca adapters (``broker.alpaca``, ``data.alpaca``).

``AlpacaConfig`` (frozen, from settings), the account's ``RateLimiter``, the timeout session
and the one way both adapters call alpaca-py off the event loop.
"""

from __future__ import annotations

from v28quant.alpaca.config import AlpacaConfig
from v28quant.alpaca.ratelimit import RateLimiter, account_limiter

__all__ = ["AlpacaConfig", "RateLimiter", "account_limiter"]
