"""Shared broker-test helpers: hand-set quotes, the fake Alpaca broker, the runner on the fakes."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.broker.base import MarketClock
from v28quant.clock import Clock
from v28quant.quotes import Quote
from v28quant.venue_clock import VenueClock

NY = ZoneInfo("America/New_York")


class StaticQuotes:
    """Quotes set by hand; ``closing_price`` looks up ``set_close`` by New York session date."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._q: dict[str, tuple[Decimal, Decimal, int, int]] = {}
        self._closes: dict[tuple[str, date], Decimal] = {}

    def set(
        self,
        symbol: str,
        bid: str | Decimal,
        ask: str | Decimal,
        bid_size: int = 0,
        ask_size: int = 0,
    ) -> None:
        self._q[symbol] = (Decimal(bid), Decimal(ask), bid_size, ask_size)

    def set_close(self, symbol: str, day: date, price: str | Decimal) -> None:
        self._closes[(symbol, day)] = Decimal(price)

    async def quote(self, symbol: str) -> Quote:
        bid, ask, bs, as_ = self._q[symbol]
        return Quote(symbol, bid, ask, self._clock.now(), bs, as_)

    async def closing_price(self, symbol: str, session: datetime) -> Decimal:
        return self._closes[(symbol, session.astimezone(NY).date())]


class FakeTime:
    """Wall time (epoch seconds) for a ``RateLimiter`` that only moves when it sleeps."""

    def __init__(self, t0: float = 1_717_425_000.0) -> None:
        self.t = t0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


OPEN = datetime(2024, 6, 3, 14, 30, tzinfo=ZoneInfo("UTC"))  # Mon 2024-06-03 10:30 New York


async def until(predicate: Callable[[], bool], what: str, bound_s: float = 60.0) -> None:
    """Yield to the loop until ``predicate()`` holds: the fakes answer from their own threads.

    ``bound_s`` only ends a wait that would otherwise never end; it asserts no timing.
    """
    deadline = time.monotonic() + bound_s
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


def fake_broker(
    url: str, key: str = "PKTESTKEY", secret: str = "secret", *, timeout_s: float = 10.0
) -> AlpacaBroker:
    """Return alpaca-py's clients on a loopback fake at ``url``: no rate wait, no backoff.

    ``timeout_s``: the client's own wait for an answer (a long one, 120 s, waits out a call
    the fake holds, so that only the runner's time limit ends it).
    """
    return AlpacaBroker(
        key,
        secret,
        url=url,
        limiter=RateLimiter(rate=60_000, burst=1000),
        backoff_s=0.0,
        timeout_s=timeout_s,
    )


def with_cycle_limit(seconds: float) -> Any:
    """Return the shipped settings with ``[runner] cycle_limit_seconds`` set to ``seconds``."""
    from v28quant.config import load_config

    _, cfg = load_config(None)
    return dataclasses.replace(
        cfg, runner=dataclasses.replace(cfg.runner, cycle_limit_seconds=seconds)
    )


def point_runner_at_fakes(
    monkeypatch: pytest.MonkeyPatch,
    trading_url: str,
    data_url: str,
    key: str = "PKTESTKEY0001",
    secret: str = "test-secret-value",
) -> None:
    """Set the runner's Alpaca keys and endpoints to the loopback fakes.

    Every other ``APCA_``, ``V28_`` and ``DISCORD_`` variable of the environment is cleared, so
    no setting of the machine running the tests leaks in.
    """
    for k in list(os.environ):
        if k.startswith(("APCA_", "V28_", "DISCORD_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("APCA_API_KEY_ID", key)
    monkeypatch.setenv("APCA_API_SECRET_KEY", secret)
    monkeypatch.setenv("APCA_API_BASE_URL", trading_url)
    monkeypatch.setenv("APCA_API_DATA_URL", data_url)


def follow_fake_clock(
    monkeypatch: pytest.MonkeyPatch,
    now: Callable[[], datetime],
    wait: Callable[[datetime], Awaitable[None]],
) -> None:
    """Make the runner's venue clock the trading fake's: its time, and ``wait`` for its sleeps.

    ``now`` is the fake's time; ``wait(when)`` moves the fakes to ``when`` where the runner
    would sleep until then.
    """

    def shared_clock(fetch: Callable[[], Awaitable[MarketClock]]) -> VenueClock:
        return VenueClock(fetch, monotonic=lambda: now().timestamp(), wait=wait)

    monkeypatch.setattr("v28quant.venue.VenueClock", shared_clock)
