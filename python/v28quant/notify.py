"""Discord notices for executions and errors.

``DiscordNotifier(url)`` posts to a Discord webhook from a background task: ``notify()`` only
puts the message on a bounded queue and returns at once, so the trading loop is never blocked
and never sees an exception from here. When the queue is full the message waits in the outbox
(below) and is queued, in order, once there is room; without an outbox it is dropped (and
counted), not awaited. A notice longer than Discord's 2,000 characters is cut to fit and ends
with ``CUT_MARK``.

An error notice, or any notice sent with ``notify_quietly`` (the risk gate's denials), identical
to one sent less than ``REPEAT_QUIET_S`` seconds ago is held back (a condition that persists
cycle after cycle is one notice an hour, not one a cycle); the next one sent says how many were
held back. The log keeps every occurrence.

Rate limits: a client-side spacing of ``min_interval`` seconds (Discord allows about 5 posts per 2 s
per webhook); after a response with ``X-RateLimit-Remaining: 0`` the sender waits
``X-RateLimit-Reset-After`` seconds; a 429 (the webhook's or the global limit) is retried after its
JSON ``retry_after`` (seconds, float) or the ``Retry-After`` header. No answer, a timeout or a 5xx
is retried with backoff doubling up to ``max_backoff``, for as long as the process runs: the notice
waits at the head of the queue, so notices go out in the order queued. A 401, 403 or 404 means the
webhook is gone (deleted, or a wrong URL): that is logged once and nothing more is posted by this
run; the notices stay unsent in the outbox for a start with a working webhook. Only a notice Discord
refuses (another 4xx) is given up. An outage is logged once when notices start failing and once when
one gets through again (each failed attempt in between at DEBUG), so a dead webhook never floods the
log.

Durability: given an outbox (the journal's ``notices`` table, ``NoticeOutbox``), ``notify()`` writes
the notice there before queuing it (one small write on the caller's thread; a held-back repeat
writes nothing), and the sender settles the row off the event loop: posted, or given up with its
reason (refused for good). A notice the process died holding (a crash, a kill, a reboot), or that
``aclose`` could not send in time, stays unsent there. At the next start ``resend_unsent()`` queues
those again, oldest first, before anything new, each prefixed ``(delayed: queued 2026-12-04 15:42 ET
by the run that stopped before posting it)``; it reuses the row, so posting settles it and a later
restart finds nothing to resend. Rows queued over ``RESEND_MAX_AGE`` (a day) ago are given up as
``STALE_REASON``, counted in one log line. Delivery is at least once: a process killed between
Discord's answer and the row's update sends that notice twice.

The webhook URL embeds its token: it is never logged, and neither it nor the other secrets the
notifier is given (the Alpaca keys) reach Discord: every notice is scrubbed before it is queued.
``NullNotifier`` (no URL configured) accepts the same calls, does nothing and keeps nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from v28quant.calendar import ET
from v28quant.redaction import REDACTED, redact

log = logging.getLogger(__name__)
DISCORD_MAX_CONTENT = 2000
#: Ends a notice cut to ``DISCORD_MAX_CONTENT``, so a reader knows its end is missing.
CUT_MARK = " …(cut)"
#: Seconds an error (or quiet) notice identical to one already sent is held back.
REPEAT_QUIET_S = 3600.0
#: Texts the hold-back remembers at most (the oldest are forgotten first).
REPEAT_TEXTS_KEPT = 512
#: Age past which a notice an earlier process left unsent is given up at start, not sent.
RESEND_MAX_AGE = timedelta(days=1)
#: Why such a notice was given up.
STALE_REASON = "stale at restart"
#: Statuses saying the webhook itself is gone (Unknown Webhook, Invalid Webhook Token), not
#: that one notice is wrong.
WEBHOOK_GONE = frozenset({401, 403, 404})


class _WebhookGone(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class NoticeOutbox(Protocol):
    """Where notices are kept until posted: the journal (``v28quant.journal.Journal``)."""

    def record_notice(self, content: str, ts: datetime, *, given_up: str | None = None) -> int:
        """Keep a notice queued at ``ts`` (settled at once with ``given_up``); its row id."""
        ...

    def mark_notice_posted(self, notice_id: int, ts: datetime) -> None:
        """Settle a notice as posted."""
        ...

    def give_up_notices(self, notice_ids: Sequence[int], reason: str, ts: datetime) -> None:
        """Settle notices as given up for ``reason``."""
        ...

    def unsent_notices(self) -> list[dict[str, Any]]:
        """Notices neither posted nor given up, oldest first: ``id``, ``content``, ``queued_ts``."""
        ...


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

    async def resend_unsent(self) -> int:
        """Send nothing: notices kept by an earlier run wait for a run with a webhook."""
        return 0

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
        Notices queued to be sent; beyond it they wait in the outbox (without one, dropped).
    min_interval : float
        Seconds between posts (client-side rate limit).
    timeout : float
        HTTP timeout per post, seconds.
    username : str
        Name the posts appear under.
    secrets : sequence of str
        Other secrets (the Alpaca keys) to scrub from every notice, beside the webhook's own.
    backoff, max_backoff : float
        Seconds before the first retry after a transient failure, and the most between retries.
    outbox : NoticeOutbox, optional
        Where each notice is kept from ``notify()`` until it is posted or given up, so that
        ``resend_unsent()`` at the next start sends what this process could not.
    """

    def __init__(
        self,
        url: Any,
        *,
        max_queue: int = 200,
        min_interval: float = 0.5,
        timeout: float = 10.0,
        username: str = "v28quant",
        secrets: Sequence[str] = (),
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        outbox: NoticeOutbox | None = None,
    ) -> None:
        super().__init__()
        raw = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
        if not raw.startswith(("https://", "http://")):
            raise ValueError("DISCORD_WEBHOOK_URL must be an http(s) URL")
        self._url = raw
        # the URL, and its id and token wherever they appear alone
        webhook_parts = urlsplit(raw).path.rstrip("/").split("/")[-2:]
        self._secrets = [
            raw,
            *(p for p in webhook_parts if len(p) >= 6),
            *(s for s in secrets if s),
        ]
        self._filter = _RedactFilter(self._secrets)
        logging.getLogger("httpx").addFilter(self._filter)
        # (outbox row id or None, text to post)
        self._queue: asyncio.Queue[tuple[int | None, str]] | None = None
        self._max_queue = max_queue
        self._min_interval = min_interval
        self._timeout = timeout
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._username = username
        self._outbox = outbox
        # the first row this notifier kept: rows before it are an earlier process's
        self._first_own_id: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight = False  # a notice taken off the queue and not yet settled
        # notices kept in the outbox beyond a full queue, waiting for room (outbox only)
        self._backlog = False
        self._refilling = False
        self._last_queued_id = 0
        self._client: httpx.AsyncClient | None = None
        self._next_send = 0.0
        self._closing = False
        self._failing = False
        self._gone = False  # the webhook answered 401/403/404: posting stops for the run
        self._limited = False  # 429s since the last post Discord took
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
            self._take_over_from_finished_loop()
            log.info("Discord notifier restarted on a new event loop")
        self._queue = asyncio.Queue(self._max_queue)
        self._client = httpx.AsyncClient(timeout=self._timeout)
        self._task = loop.create_task(self._run(), name="discord-notifier")
        return True

    def _take_over_from_finished_loop(self) -> None:
        """Pick up what the sender of a finished event loop left unsent.

        With an outbox, what its queue held and what waited behind it are all there, unsent:
        the new sender reads them back, in order, before anything new. Without one, what its
        queue held is lost.
        """
        if self._outbox is not None:
            self._last_queued_id = 0
            self._backlog = True
            return
        lost = self._queue.qsize() if self._queue is not None else 0
        if lost:
            self.dropped += lost
            log.warning("Discord: %d notice(s) left unsent by a finished event loop", lost)

    def notify(self, content: str) -> bool:
        """Queue a notice; returns False (and counts it) if it was dropped. Never raises.

        With an outbox the notice is kept there first; one that cannot be queued now (closing,
        no event loop) stays unsent there for the next start, and one beyond a full queue waits
        there until the queue has room (see ``_refill``). Without an outbox, one beyond a full
        queue is dropped.
        """
        try:
            text = _fit(self._redact(str(content)))
            if self._closing or self._gone or not self._ensure_started():
                self._keep(text)
                self.dropped += 1
                return False
            assert self._queue is not None
            if self._outbox is not None and (
                self._backlog or self._refilling or self._queue.full()
            ):
                return self._keep_in_backlog(text)
            if self._queue.full():
                self._drop(f"queue full ({self._max_queue} waiting)")
                return False
            self._put(self._keep(text), text)
            return True
        except Exception as exc:  # the trading loop must never see a notifier failure
            self.dropped += 1
            log.warning("Discord notice dropped: %s", self._redact(repr(exc)))
            return False

    def _keep_in_backlog(self, text: str) -> bool:
        """Keep a notice in the outbox only, to be queued by ``_refill``; False if not kept.

        Every notice after it waits there too until the backlog is queued, so order holds.
        """
        if self._keep(text) is None:
            self.dropped += 1
            return False
        self._backlog = True
        return True

    async def _refill(self) -> None:
        """Queue, oldest first, the notices kept in the outbox beyond a full queue.

        Those written while the outbox is read may be missing from what it returns: the
        backlog stays open for them (``notify`` keeps adding to it) until a read finds all
        that remain fit. An outbox that cannot be read closes the backlog: what waits there
        goes out at the next start.
        """
        assert self._outbox is not None
        assert self._queue is not None
        self._backlog = False
        self._refilling = True
        try:
            rows = await asyncio.to_thread(self._outbox.unsent_notices)
        except Exception as exc:
            log.warning(
                "Discord: notices waiting in the journal not read back (sent at the next "
                "start): %s",
                self._redact(repr(exc)),
            )
            return
        finally:
            self._refilling = False
        waiting = [r for r in rows if r["id"] > self._last_queued_id]
        room = self._max_queue - self._queue.qsize()
        for r in waiting[:room]:
            earlier_run = self._first_own_id is None or r["id"] < self._first_own_id
            text = _late(r["content"], r["queued_ts"]) if earlier_run else r["content"]
            self._put(r["id"], text)
        if len(waiting) > room:
            self._backlog = True

    async def _queue_backlog(self) -> None:
        """Once the queue is empty, queue what waits in the outbox behind it (``_refill``)."""
        assert self._queue is not None
        while self._backlog and self._queue.empty():
            await self._refill()

    def _put(self, notice_id: int | None, text: str) -> None:
        assert self._queue is not None
        self._queue.put_nowait((notice_id, text))
        if notice_id is not None:
            self._last_queued_id = max(self._last_queued_id, notice_id)

    def _keep(self, text: str, given_up: str | None = None) -> int | None:
        """Write the notice to the outbox (one row, on the caller's thread); its id, if kept.

        A journal that cannot take it is logged; the notice is still sent.
        """
        if self._outbox is None:
            return None
        try:
            notice_id = self._outbox.record_notice(text, datetime.now(UTC), given_up=given_up)
        except Exception as exc:
            log.warning("Discord notice not kept in the journal: %s", self._redact(repr(exc)))
            return None
        if self._first_own_id is None:
            self._first_own_id = notice_id
        return notice_id

    async def resend_unsent(self, max_age: timedelta = RESEND_MAX_AGE) -> int:
        """Queue again, oldest first, the notices an earlier process kept but never settled.

        Called once at start, before anything is notified. Each goes out with a prefix saying
        it is late and when it was queued, and settles its own row (posted or given up), so a
        further restart sends it again only if it is still unsent then. Notices older than
        ``max_age`` are given up (``STALE_REASON``), in one log line; those beyond the queue's
        room wait in the outbox behind it, as a full queue's do. Returns how many were queued
        or left waiting.
        """
        outbox = self._outbox
        if outbox is None or self._closing or not self._ensure_started():
            return 0
        assert self._queue is not None
        now = datetime.now(UTC)
        try:
            rows = await asyncio.to_thread(outbox.unsent_notices)
            rows = [r for r in rows if self._first_own_id is None or r["id"] < self._first_own_id]
            stale = [r["id"] for r in rows if now - r["queued_ts"] > max_age]
            await asyncio.to_thread(outbox.give_up_notices, stale, STALE_REASON, now)
        except Exception as exc:
            log.warning("Discord: unsent notices not read back: %s", self._redact(repr(exc)))
            return 0
        if stale:
            log.warning(
                "Discord: %d notice(s) left unsent by an earlier run, queued over %g h ago, "
                "given up (%s)",
                len(stale),
                max_age.total_seconds() / 3600,
                STALE_REASON,
            )
        late = [r for r in rows if now - r["queued_ts"] <= max_age]
        room = self._max_queue - self._queue.qsize()
        for r in late[:room]:
            self._put(r["id"], _late(r["content"], r["queued_ts"]))
        if late:
            log.warning("Discord: re-sending %d notice(s) an earlier run left unsent", len(late))
        if len(late) > room:
            self._backlog = True
        return len(late)

    async def _run(self) -> None:
        assert self._queue is not None
        await self._queue_backlog()  # what a finished loop's sender left
        while True:
            notice_id, content = await self._queue.get()
            self._in_flight = True
            try:
                await self._send(notice_id, content)
                await self._queue_backlog()
            finally:
                self._in_flight = False
                self._queue.task_done()

    async def _send(self, notice_id: int | None, content: str) -> None:
        """Post one notice, count it, and settle its outbox row.

        Once the webhook is gone nothing is posted and the row stays unsent.
        """
        if self._gone:
            self.dropped += 1
            return
        try:
            why = await self._post(content)
        except _WebhookGone as exc:
            self._webhook_gone(exc.status)
            self.dropped += 1
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            why = self._redact(repr(exc))
        if why is None:
            self._delivered()
        else:
            self._drop(why)
        if notice_id is not None:
            await self._settle(notice_id, why)

    async def _settle(self, notice_id: int, given_up: str | None) -> None:
        """Mark the row posted, or given up for ``given_up``, off the event loop."""
        if given_up is not None:
            await self._give_up([notice_id], given_up)
            return
        assert self._outbox is not None
        try:
            await asyncio.to_thread(self._outbox.mark_notice_posted, notice_id, datetime.now(UTC))
        except Exception as exc:
            log.warning(
                "Discord notice %d not marked posted: %s", notice_id, self._redact(repr(exc))
            )

    async def _give_up(self, notice_ids: list[int], why: str) -> None:
        """Mark the rows given up for ``why``, off the event loop."""
        assert self._outbox is not None
        try:
            await asyncio.to_thread(
                self._outbox.give_up_notices, notice_ids, why, datetime.now(UTC)
            )
        except Exception as exc:
            log.warning("Discord notices not marked given up: %s", self._redact(repr(exc)))

    async def _post(self, content: str) -> str | None:
        """Post ``content`` until Discord takes it (None) or refuses it for good (the reason).

        429s wait as long as Discord asks; transient failures wait with backoff. Neither ends
        the tries: a notice is lost only by a refusal, or left in the outbox by the stop.
        """
        assert self._client is not None
        backoff = self._backoff
        while True:
            await self._wait_turn()
            try:
                r = await self._client.post(
                    self._url, json={"content": content, "username": self._username}
                )
            except httpx.HTTPError as exc:
                why = self._redact(type(exc).__name__ + ": " + str(exc))
            else:
                self._respect_bucket(r.headers)
                if r.status_code == 429:
                    self._rate_limited(_retry_after(r))
                    continue
                if 200 <= r.status_code < 300:
                    self._limited = False
                    return None
                if r.status_code in WEBHOOK_GONE:
                    raise _WebhookGone(r.status_code)
                if r.status_code < 500:
                    return f"refused with HTTP {r.status_code}"
                why = f"HTTP {r.status_code}"
            self._attempt_failed(why, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _wait_turn(self) -> None:
        """Wait out the client-side spacing and any wait Discord asked for, then take the turn."""
        delay = self._next_send - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._next_send = time.monotonic() + self._min_interval

    def _rate_limited(self, wait: float) -> None:
        """Wait as Discord asks; a run of 429s is one warning, the rest DEBUG until a post lands."""
        level = logging.DEBUG if self._limited else logging.WARNING
        self._limited = True
        log.log(level, "Discord rate limited; retrying in %.2f s", wait)
        self._next_send = max(self._next_send, time.monotonic() + wait)

    def _attempt_failed(self, why: str, retry_in: float) -> None:
        if not self._failing:
            self._failing = True
            log.warning("Discord notices failing (%s); trading goes on without them", why)
        log.debug("Discord post failed (%s); retrying in %.2f s", why, retry_in)

    def _webhook_gone(self, status: int) -> None:
        self._gone = True
        kept = ", each kept in the journal for a start with a working one" if self._outbox else ""
        log.warning(
            "Discord webhook gone (HTTP %d: deleted, or DISCORD_WEBHOOK_URL is wrong); "
            "no notice is posted for the rest of this run%s",
            status,
            kept,
        )

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
            unsent = self._queue.qsize() + self._in_flight
            kept = "; kept in the journal for the next start" if self._outbox else ""
            log.warning("Discord notifier closed with %d notice(s) unsent%s", unsent, kept)
            self.dropped += unsent
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


def _late(content: str, queued: datetime) -> str:
    """Return the text of a notice sent by a later process than the one that queued it."""
    when = queued.astimezone(ET).strftime("%Y-%m-%d %H:%M")
    prefix = f"(delayed: queued {when} ET by the run that stopped before posting it) "
    return _fit(prefix + content)


def _fit(text: str) -> str:
    """Return ``text`` within Discord's limit, ending with ``CUT_MARK`` where it was cut."""
    if len(text) <= DISCORD_MAX_CONTENT:
        return text
    return text[: DISCORD_MAX_CONTENT - len(CUT_MARK)] + CUT_MARK


def make_notifier(
    url: Any | None, outbox: NoticeOutbox | None = None, secrets: Sequence[str] = ()
) -> DiscordNotifier | NullNotifier:
    """Return a ``DiscordNotifier`` when a webhook URL is configured, else a ``NullNotifier``.

    ``outbox`` (the journal) keeps the Discord notifier's notices until they are posted;
    ``secrets`` (the Alpaca keys) are scrubbed from every notice.
    """
    if url is None:
        return NullNotifier()
    raw = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
    return DiscordNotifier(url, outbox=outbox, secrets=secrets) if raw else NullNotifier()
