"""Shared broker-test helpers: a hand-set QuoteSource and the fake Alpaca trading server fixture."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.clock import Clock
from v28quant.quotes import Quote

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


def fake_broker(url: str, key: str = "PKTESTKEY", secret: str = "secret") -> AlpacaBroker:
    """Return alpaca-py's clients on a loopback fake at ``url``: no rate wait, no backoff."""
    return AlpacaBroker(
        key, secret, url=url, limiter=RateLimiter(rate=60_000, burst=1000), backoff_s=0.0
    )
