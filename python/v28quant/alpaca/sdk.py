"""How both Alpaca adapters use alpaca-py: client set-up, blocking calls, 429s, paging.

alpaca-py is synchronous. Every call runs on one shared worker pool (``call_off_loop``), so the
event loop never blocks and the broker and data adapters of a process use one way.

We set two private attributes on alpaca-py's clients: ``_retry`` (0: 429s are ours, the SDK
would sleep a blind 3 s x 3) and ``_session`` (a session whose requests time out; the SDK sets
no timeout, and whose every request passes the account's rate limiter: the adapter takes a
token before a call, and each further request of the same call, the pages alpaca-py follows by
itself through ``next_page_token``, waits for one of its own). ``prepare_client`` checks both
exist first: a release that renames them would otherwise silently drop the timeouts.
pyproject.toml bounds alpaca-py to the versions tested.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version
from typing import Any, TypeVar

from alpaca.common.exceptions import APIError
from alpaca.trading.requests import GetOptionContractsRequest

from v28quant.alpaca.http import TimeoutSession
from v28quant.alpaca.ratelimit import RateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Private attributes of alpaca-py's REST clients that the adapters set (see the docstring).
PRIVATE_ATTRIBUTES = ("_retry", "_session")
#: Most pages of option contracts read for one query before asking the caller to narrow it.
MAX_CONTRACT_PAGES = 1000

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
#: The SDK call a worker thread is running (see ``_SdkCall``).
_CALL = threading.local()


@dataclass
class _SdkCall:
    """One SDK call on a worker thread.

    ``loop`` awaits the call; ``token_unspent``: the token the caller took before the call has
    not paid for a request yet (it pays for the first).
    """

    loop: asyncio.AbstractEventLoop
    token_unspent: bool = True


def _rate_gate(limiter: RateLimiter) -> Callable[[], None]:
    """Return the hook that makes every request of an SDK call pass ``limiter``."""

    def before_send() -> None:
        call: _SdkCall | None = getattr(_CALL, "current", None)
        if call is None:
            raise RuntimeError("an Alpaca request outside call_off_loop would skip the limiter")
        if call.token_unspent:
            call.token_unspent = False
            return
        # a later page: wait for a token on the loop, where the limiter's clock and sleep run
        asyncio.run_coroutine_threadsafe(limiter.acquire(), call.loop).result()

    return before_send


def prepare_client(client: Any, timeout_s: float, limiter: RateLimiter) -> None:
    """Switch off the SDK's own 429 sleeps and give its requests our timeout and limiter.

    Raises
    ------
    RuntimeError
        The client lacks an attribute we rely on: this alpaca-py is not one we tested.
    """
    missing = [a for a in PRIVATE_ATTRIBUTES if not hasattr(client, a)]
    if missing:
        raise RuntimeError(
            f"{type(client).__name__} has no {', '.join(missing)} in alpaca-py "
            f"{version('alpaca-py')}: request timeouts and rate limiting cannot be set; "
            "install the alpaca-py version pyproject.toml names"
        )
    client._retry = 0
    session = TimeoutSession(timeout_s, before_send=_rate_gate(limiter))
    session.hooks["response"].append(limiter.response_hook)
    client._session = session


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="alpaca")
        return _POOL


def _run_call(loop: asyncio.AbstractEventLoop, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    _CALL.current = _SdkCall(loop)
    try:
        return fn(*args)
    finally:
        _CALL.current = None


async def call_off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run one blocking alpaca-py call on the shared worker pool and await it.

    The caller has taken one token of the client's rate limiter for the call's first request;
    each further request (a page alpaca-py follows by itself) waits for its own.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(_run_call, loop, fn, args))


async def limited_call(
    limiter: RateLimiter, max_attempts: int, fn: Callable[..., T], *args: Any
) -> T:
    """Call ``fn`` off the loop under ``limiter``; a 429 waits for the reset and tries again.

    Raises
    ------
    APIError
        The last 429 after ``max_attempts`` tries, or any other API error at once.
    """
    for attempt in range(max_attempts):
        await limiter.acquire()
        try:
            return await call_off_loop(fn, *args)
        except APIError as err:
            if err.status_code != 429 or attempt + 1 >= max_attempts:
                raise
            headers = err.response.headers if err.response is not None else {}
            wait = limiter.on_429(headers)
            log.warning("Alpaca 429: waiting %.1f s before retrying", wait)
    raise AssertionError("unreachable")  # the loop returns or raises


async def option_contract_pages(
    fetch: Callable[[GetOptionContractsRequest], Any],
    underlying: str,
    *,
    expiration_gte: date | None = None,
    expiration_lte: date | None = None,
    type: Any = None,
    strike_gte: float | None = None,
    strike_lte: float | None = None,
    page_size: int = 1000,
) -> list[Any]:
    """Every active option contract of ``underlying``, following ``next_page_token``.

    ``fetch`` is an awaitable-returning callable that sends one request (the adapter's own
    rate-limited call of ``TradingClient.get_option_contracts``); alpaca-py returns one page.
    """
    token: str | None = None
    out: list[Any] = []
    for _ in range(MAX_CONTRACT_PAGES):
        req = GetOptionContractsRequest(
            underlying_symbols=[underlying.upper()],
            expiration_date_gte=expiration_gte,
            expiration_date_lte=expiration_lte,
            type=type,
            strike_price_gte=None if strike_gte is None else str(strike_gte),
            strike_price_lte=None if strike_lte is None else str(strike_lte),
            limit=page_size,
            page_token=token,
        )
        resp = await fetch(req)
        out.extend(resp.option_contracts or [])
        token = resp.next_page_token
        if not token:
            return out
    raise ValueError(
        f"option contracts of {underlying}: more than {MAX_CONTRACT_PAGES} pages; narrow the query"
    )
