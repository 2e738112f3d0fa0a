"""Discord notices for executions and errors.

``DiscordNotifier(url)`` posts to a Discord webhook from a background task: ``notify()`` only
puts the message on a bounded queue and returns at once, so the trading loop is never blocked
and never sees an exception from here. When the queue is full the message is dropped (and
counted), not awaited.

An error notice, or any notice sent with ``notify_quietly`` (the risk gate's denials), identical
to one sent less than ``REPEAT_QUIET_S`` seconds ago is held back (a condition that persists
cycle after cycle is one notice an hour, not one a cycle); the next one sent says how many were
held back. The log keeps every occurrence.

Rate limits: a client-side spacing of ``min_interval`` seconds (Discord allows about 5 posts
per 2 s per webhook); after a response with ``X-RateLimit-Remaining: 0`` the sender waits
``X-RateLimit-Reset-After`` seconds; a 429 is retried after its JSON ``retry_after`` (seconds,
float) or the ``Retry-After`` header. Other failures are retried with backoff, then dropped.
An outage is logged once when notices start failing and once when one gets through again
(each failed attempt in between at DEBUG), so a dead webhook never floods the log.

The webhook URL embeds its token: it is never logged, and exception text is scrubbed of it.
``NullNotifier`` (no URL configured) accepts the same calls and does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

import httpx

from v28quant.redaction import REDACTED, redact

log = logging.getLogger(__name__)
DISCORD_MAX_CONTENT = 2000
#: Seconds an error (or quiet) notice identical to one already sent is held back.
REPEAT_QUIET_S = 3600.0
#: Texts the hold-back remembers at most (the oldest are forgotten first).
REPEAT_TEXTS_KEPT = 512


class Notifier(Protocol):
    """Where trading notices go: Discord, or nowhere."""

    def notify(self, content: str) -> bool:
        """Queue ``content``; False when it was dropped."""

    def execution(
        self,
        symbol: str,
        side: str,
        qty: Decimal | int | str,
        price: Decimal | float | str,
        **extra: Any,
    ) -> bool:
        """Queue a fill notice."""

    def error(self, where: str, message: str) -> bool:
        """Queue an error notice naming ``where`` it happened."""

    def notify_quietly(self, content: str) -> bool:
        """Queue ``content`` unless the same text went out less than ``REPEAT_QUIET_S`` ago."""

    async def aclose(self, timeout: float = 5.0) -> None:
        """Send what is queued, waiting at most ``timeout`` seconds, then close."""


class _Formatting(ABC):
    """The notice texts, shared by every notifier; subclasses say where a notice goes."""

    def __init__(self) -> None:
        # quiet text -> (monotonic time it was last sent, repeats held back since)
        self._quiet_sent: dict[str, tuple[float, int]] = {}

    def execution(
        self,
        symbol: str,
        side: str,
        qty: Decimal | int | str,
        price: Decimal | float | str,
        **extra: Any,
    ) -> bool:
        """Notice of a fill: ``FILL buy 10 SPY @ 450.05 (engine=equity ...)``."""
        tail = " ".join(f"{k}={v}" for k, v in extra.items())
        return self.notify(f"FILL {side} {qty} {symbol} @ {price}" + (f" ({tail})" if tail else ""))

    def error(self, where: str, message: str) -> bool:
        """Notice of an error: ``ERROR in equity cycle: KeyError: 'AAPL'``, repeats held back."""
        return self.notify_quietly(f"ERROR in {where}: {message}")

    def notify_quietly(self, content: str) -> bool:
        """Notice of a condition that may persist: repeats within ``REPEAT_QUIET_S`` held back.

        The first notice after the quiet period says how many repeats were held back.
        """
        now = time.monotonic()
        sent_at, held = self._quiet_sent.get(content, (None, 0))
        if sent_at is not None and now - sent_at < REPEAT_QUIET_S:
            self._quiet_sent[content] = (sent_at, held + 1)
            return True
        self._quiet_sent[content] = (now, 0)
        self._forget_quiet_texts(now)
        return self.notify(content + (f" (again; {held} repeat(s) held back)" if held else ""))

    def _forget_quiet_texts(self, now: float) -> None:
        """Bound the hold-back table: many texts carry order ids or times, never to recur.

        Texts whose quiet period ended with nothing held back go (their next occurrence is
        sent as new either way), then the oldest beyond ``REPEAT_TEXTS_KEPT``.
        """
        sent = self._quiet_sent
        for text in [
            t for t, (at, held) in sent.items() if not held and now - at >= REPEAT_QUIET_S
        ]:
            del sent[text]
        for text in sorted(sent, key=lambda t: sent[t][0])[: max(len(sent) - REPEAT_TEXTS_KEPT, 0)]:
            del sent[text]

    @abstractmethod
    def notify(self, content: str) -> bool:
        """Queue one notice; False when it was dropped."""


class _RedactFilter(logging.Filter):
    """Scrub the webhook URL and token from records of the ``httpx`` logger.

    That logger writes every request's full URL at INFO.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if any(s in msg for s in self._secrets):
            record.msg, record.args = redact(msg, "log", secrets=self._secrets), ()
        return True


class NullNotifier(_Formatting):
    """No webhook configured: every notice is accepted and discarded."""

    def notify(self, content: str) -> bool:
        """Accept and drop ``content``."""
        return True

    async def aclose(self, timeout: float = 5.0) -> None:
        """Do nothing: there is nothing to send."""
        return None


class DiscordNotifier(_Formatting):
    """Async Discord webhook poster (see the module docstring).

    Parameters
    ----------
    url : str or SecretStr
        The webhook URL (a secret: never logged).
    max_queue : int
        Notices waiting to be sent; beyond it new ones are dropped.
    min_interval : float
        Seconds between posts (client-side rate limit).
    max_attempts : int
        Tries per notice (429s and transient errors).
    timeout : float
        HTTP timeout per post, seconds.
    username : str
        Name the posts appear under.
    """

    def __init__(
        self,
        url: Any,
        *,
        max_queue: int = 200,
        min_interval: float = 0.5,
        max_attempts: int = 5,
        timeout: float = 10.0,
        username: str = "v28quant",
    ) -> None:
        super().__init__()
        raw = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
        if not raw.startswith(("https://", "http://")):
            raise ValueError("DISCORD_WEBHOOK_URL must be an http(s) URL")
        self._url = raw
        self._secrets = [raw] + [p for p in raw.rstrip("/").split("/")[-2:] if len(p) >= 6]
        self._filter = _RedactFilter(self._secrets)
        logging.getLogger("httpx").addFilter(self._filter)
        self._queue: asyncio.Queue[str] | None = None
        self._max_queue = max_queue
        self._min_interval = min_interval
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._username = username
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._next_send = 0.0
        self._closing = False
        self._failing = False
        self._dropped_while_failing = 0
        self.sent = 0
        self.dropped = 0

    def __repr__(self) -> str:
        """Show the notifier without its webhook URL."""
        return f"DiscordNotifier(url={REDACTED})"

    def _redact(self, text: str) -> str:
        return str(redact(text, "notice", secrets=self._secrets))

    def _ensure_started(self) -> bool:
        """Make sure a sender task runs on the current event loop; False (logged) when none runs.

        A sender left by an earlier loop (``asyncio.run`` ended and cancelled it) is replaced:
        its queue and client belong to that loop and would never send again.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("Discord notice dropped: no running event loop")
            return False
        if self._task is not None:
            if not self._task.done() and self._task.get_loop() is loop:
                return True
            old = self._task.get_loop()
            if not self._task.done() and old.is_running():
                log.warning("Discord notice dropped: the sender runs on another event loop")
                return False
            lost = self._queue.qsize() if self._queue is not None else 0
            if lost:
                self.dropped += lost
                log.warning("Discord: %d notice(s) left unsent by a finished event loop", lost)
            log.info("Discord notifier restarted on a new event loop")
        self._queue = asyncio.Queue(self._max_queue)
        self._client = httpx.AsyncClient(timeout=self._timeout)
        self._task = loop.create_task(self._run(), name="discord-notifier")
        return True

    def notify(self, content: str) -> bool:
        """Queue a notice; returns False (and counts it) if it was dropped. Never raises."""
        try:
            if self._closing or not self._ensure_started():
                self.dropped += 1
                return False
            assert self._queue is not None
            self._queue.put_nowait(str(content)[:DISCORD_MAX_CONTENT])
            return True
        except asyncio.QueueFull:
            self._drop(f"queue full ({self._max_queue} waiting)")
            return False
        except Exception as exc:  # the trading loop must never see a notifier failure
            self.dropped += 1
            log.warning("Discord notice dropped: %s", self._redact(repr(exc)))
            return False

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            content = await self._queue.get()
            try:
                await self._post(content)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._drop(self._redact(repr(exc)))
            finally:
                self._queue.task_done()

    async def _post(self, content: str) -> None:
        assert self._client is not None
        backoff = 0.5
        for attempt in range(1, self._max_attempts + 1):
            delay = self._next_send - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next_send = time.monotonic() + self._min_interval
            try:
                r = await self._client.post(
                    self._url, json={"content": content, "username": self._username}
                )
            except httpx.HTTPError as exc:
                self._attempt_failed(attempt, self._redact(type(exc).__name__ + ": " + str(exc)))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            self._respect_bucket(r.headers)
            if r.status_code == 429:
                wait = _retry_after(r)
                log.warning("Discord rate limited; retrying in %.2f s", wait)
                self._next_send = max(self._next_send, time.monotonic() + wait)
                continue
            if 200 <= r.status_code < 300:
                self._delivered()
                return
            if r.status_code >= 500:
                self._attempt_failed(attempt, f"HTTP {r.status_code}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            self._drop(f"refused with HTTP {r.status_code}")
            return
        self._drop(f"no answer after {self._max_attempts} attempts")

    def _attempt_failed(self, attempt: int, why: str) -> None:
        if not self._failing:
            self._failing = True
            log.warning("Discord notices failing (%s); trading goes on without them", why)
        log.debug("Discord post failed (attempt %d/%d): %s", attempt, self._max_attempts, why)

    def _drop(self, why: str) -> None:
        """Count a notice lost; the first loss of an outage is a warning, the rest DEBUG."""
        self.dropped += 1
        if self._failing:
            self._dropped_while_failing += 1
            log.debug("Discord notice dropped: %s", why)
            return
        self._failing = True
        self._dropped_while_failing = 1
        log.warning("Discord notices failing (notice dropped: %s); trading goes on", why)

    def _delivered(self) -> None:
        self.sent += 1
        if self._failing:
            self._failing = False
            log.warning(
                "Discord notices delivered again (%d dropped meanwhile)",
                self._dropped_while_failing,
            )
            self._dropped_while_failing = 0

    def _respect_bucket(self, headers: Mapping[str, str]) -> None:
        try:
            if headers.get("x-ratelimit-remaining") == "0":
                after = float(headers.get("x-ratelimit-reset-after", "0"))
                self._next_send = max(self._next_send, time.monotonic() + after)
        except ValueError:
            pass

    async def aclose(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most ``timeout`` seconds), then stop."""
        self._closing = True
        if self._task is None:
            logging.getLogger("httpx").removeFilter(self._filter)
            return
        assert self._queue is not None
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            log.warning("Discord notifier closed with %d notice(s) unsent", self._queue.qsize())
            self.dropped += self._queue.qsize()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._client is not None:
            await self._client.aclose()
        logging.getLogger("httpx").removeFilter(self._filter)


def _retry_after(r: httpx.Response) -> float:
    """Seconds to wait after a 429.

    Taken from the JSON ``retry_after`` (float seconds), else the ``Retry-After`` header, else
    1 s; capped at 60 s.
    """
    wait = None
    try:
        wait = float(r.json().get("retry_after"))
    except Exception:
        try:
            wait = float(r.headers.get("retry-after", ""))
        except ValueError:
            wait = None
    return min(max(wait if wait is not None else 1.0, 0.0), 60.0)


def make_notifier(url: Any | None) -> DiscordNotifier | NullNotifier:
    """Return a ``DiscordNotifier`` when a webhook URL is configured, else a ``NullNotifier``."""
    if url is None:
        return NullNotifier()
    raw = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
    return DiscordNotifier(url) if raw else NullNotifier()
