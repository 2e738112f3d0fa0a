"""A token bucket for Alpaca's per-minute request budget, shared by every call of one client.

Alpaca allows 200 requests a minute per account on the trading API and, separately, 200 a
minute on the free market-data plan. The bucket refills continuously at ``per_minute / 60``
tokens a second up to ``burst``; ``acquire()`` waits (asynchronously) for a token. After a 429,
``pause_until(reset)`` holds every caller until the server's ``X-Ratelimit-Reset`` (epoch
seconds), capped so a bad header cannot stall the bot for long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping


class TokenBucket:
    """Async token bucket.

    Parameters
    ----------
    per_minute : float
        Sustained rate (default 180, under Alpaca's 200/min to leave room for the other engine
        and for clock skew).
    burst : int
        Bucket size: how many calls may go at once after a quiet spell.
    max_pause : float
        Longest wait honoured from a 429's reset header, seconds.
    clock : callable
        Monotonic seconds (tests may inject one).
    """

    def __init__(self, per_minute: float = 180.0, burst: int = 10, max_pause: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError(f"per_minute must be > 0 and burst >= 1, got {per_minute}, {burst}")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_pause = max_pause
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self) -> None:
        """Wait until a request may be sent, then take one token."""
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)

    def pause_for(self, seconds: float) -> float:
        """Hold every caller for ``seconds`` (capped at ``max_pause``); returns the pause."""
        seconds = min(max(seconds, 0.0), self.max_pause)
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = 0.0
        return seconds

    def pause_from_headers(self, headers: Mapping[str, str], default: float = 1.0) -> float:
        """Pause after a 429 per ``X-Ratelimit-Reset`` (epoch seconds) or ``Retry-After``
        (seconds); ``default`` when neither is usable. Returns the pause in seconds."""
        h = {k.lower(): v for k, v in headers.items()}
        wait = default
        try:
            if "x-ratelimit-reset" in h:
                wait = float(h["x-ratelimit-reset"]) - time.time()
            elif "retry-after" in h:
                wait = float(h["retry-after"])
        except ValueError:
            wait = default
        return self.pause_for(max(wait, 0.05))
