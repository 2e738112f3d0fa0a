"""Client-side rate limiting for one Alpaca account (200 requests/minute by default).

The broker and data adapters of one account draw from one ``RateLimiter``
(``account_limiter``), so together they stay under the account's limit.

A token bucket (``rate`` requests per ``per`` seconds, burst ``burst``) that every request passes
through, plus a "blocked until" time set from the venue's own signals: after a 429 we wait until
``X-Ratelimit-Reset`` (epoch seconds; ``Retry-After`` seconds as a fallback), and when any
response reports ``X-Ratelimit-Remaining: 0`` we hold the next request until the reset as well.
The bucket runs at 95% of the limit (190 of 200 a minute, burst 10): a little room for clock
skew between us and the venue.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

#: Longest wait we accept from a ``X-Ratelimit-Reset`` header; a bogus far-future reset
#: must not freeze the bot.
MAX_RESET_WAIT_S = 60.0


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class RateLimiter:
    """Async token bucket with venue-driven pauses.

    Parameters
    ----------
    rate, per
        ``rate`` requests per ``per`` seconds on average.
    burst
        Bucket size (requests that may go at once after a quiet spell).
    max_reset_wait_s
        Longest pause honoured from a reset header, seconds.
    now, sleep
        Wall-clock time in epoch seconds and an async sleep; injectable for tests.
    """

    def __init__(
        self,
        rate: float = 190,
        per: float = 60.0,
        burst: int = 10,
        *,
        max_reset_wait_s: float = MAX_RESET_WAIT_S,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or per <= 0 or burst < 1:
            raise ValueError(f"rate, per must be > 0 and burst >= 1, got {rate}, {per}, {burst}")
        self._interval = per / rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._max_wait = max_reset_wait_s
        self._now = now
        self._sleep = sleep
        self._last = now()
        self._blocked_until = 0.0
        self._lock = threading.Lock()  # headers arrive from executor threads
        self.waited_s = 0.0  # total time spent waiting (for logs and tests)

    def _take(self) -> float:
        """Take a token if one is free; else return how long to wait for one."""
        with self._lock:
            t = self._now()
            if t < self._blocked_until:
                return self._blocked_until - t
            self._tokens = min(self._burst, self._tokens + (t - self._last) / self._interval)
            self._last = t
            wait = (1.0 - self._tokens) * self._interval
            # Under a millisecond counts as free: epoch floats (~0.2 us apart) must not spin.
            if wait < 1e-3:
                self._tokens = max(self._tokens - 1.0, 0.0)
                return 0.0
            return wait

    async def acquire(self) -> None:
        """Wait until a request may be sent."""
        while (wait := self._take()) > 0:
            self.waited_s += wait
            await self._sleep(wait)

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` with the limiter's sleep (a back-off between retries)."""
        if seconds > 0:
            self.waited_s += seconds
            await self._sleep(seconds)

    def block_until(self, epoch_s: float) -> float:
        """Send nothing before ``epoch_s`` (capped at ``max_reset_wait_s`` from now).

        Returns the wait in seconds that this imposes.
        """
        with self._lock:
            t = self._now()
            until = min(max(epoch_s, t), t + self._max_wait)
            self._blocked_until = max(self._blocked_until, until)
            self._tokens = 0.0
            return self._blocked_until - t

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read ``X-Ratelimit-Remaining``/``-Reset`` from any response."""
        h = _lower(headers)
        remaining, reset = h.get("x-ratelimit-remaining"), h.get("x-ratelimit-reset")
        if remaining is None or reset is None:
            return
        try:
            if int(remaining) <= 0:
                self.block_until(float(reset))
        except ValueError:
            pass  # a malformed header is ignored; the bucket still protects us

    def response_hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """Feed every response of a ``requests`` session to ``observe``.

        Install with ``session.hooks["response"].append(lim.response_hook)``.
        """
        self.observe(response.headers)

    def on_429(self, headers: Mapping[str, str], fallback_s: float = 1.0) -> float:
        """Pause after a 429 and return the wait in seconds.

        For ``Retry-After`` seconds when the venue says so (its instruction for this response,
        RFC 9110 10.2.3), else until ``X-Ratelimit-Reset`` (epoch seconds: when the whole
        window refills), else for ``fallback_s``.
        """
        h = _lower(headers)
        t = self._now()
        target = t + fallback_s
        deadlines: tuple[tuple[str, Callable[[float], float]], ...] = (
            ("retry-after", lambda v: t + v),
            ("x-ratelimit-reset", lambda v: v),
        )
        for name, at in deadlines:
            try:
                target = at(float(h[name]))
                break
            except (KeyError, ValueError):
                continue
        return self.block_until(target)


#: Share of the venue's limit the bucket uses (room for clock skew).
HEADROOM = 0.95
_ACCOUNTS: dict[tuple[str, int], RateLimiter] = {}
_ACCOUNTS_LOCK = threading.Lock()


def account_limiter(key_id: str, per_minute: int = 200) -> RateLimiter:
    """Return the one ``RateLimiter`` of this process for the account of ``key_id``.

    Parameters
    ----------
    key_id : str
        The account's API key id (kept only as a SHA-256 digest).
    per_minute : int
        The account's limit in requests per minute; the bucket runs at ``HEADROOM`` of it.

    Returns
    -------
    RateLimiter
        The same object for every adapter of that account and limit.
    """
    if per_minute < 1:
        raise ValueError(f"per_minute must be >= 1, got {per_minute}")
    digest = hashlib.sha256(key_id.encode("utf-8")).hexdigest()
    with _ACCOUNTS_LOCK:
        lim = _ACCOUNTS.get((digest, per_minute))
        if lim is None:
            lim = RateLimiter(rate=per_minute * HEADROOM, per=60.0)
            _ACCOUNTS[(digest, per_minute)] = lim
        return lim
