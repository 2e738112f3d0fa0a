"""``v28quant.alpaca.ratelimit.RateLimiter``: the one client-side limiter of both Alpaca adapters.

References: Alpaca's documented budget (200 requests/minute per API, trading and market data
metered separately) and its 429 headers ``X-Ratelimit-Remaining`` / ``X-Ratelimit-Reset``
(epoch seconds), research/alpaca.md §5. Time is a fake that moves only when the limiter sleeps,
so every expected wait is exact (tolerance: float rounding, ``pytest.approx`` defaults).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fakes.alpaca_data import FakeAlpacaData
from fakes.fixtures import FakeTime
from v28quant.alpaca.ratelimit import MAX_RESET_WAIT_S, RateLimiter, account_limiter
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.data.alpaca import AlpacaData


def _host_now() -> datetime:
    return datetime.now(UTC)


async def test_bucket_burst_then_one_interval_and_reset_cap():
    ft = FakeTime()
    lim = RateLimiter(rate=190, per=60, burst=10, now=ft.now, sleep=ft.sleep)

    async def go():
        for _ in range(11):
            await lim.acquire()

    await go()
    # 10 from the burst, the 11th waits one interval, 60/190 s.
    assert sum(ft.slept) == pytest.approx(60 / 190), ft.slept
    assert lim.block_until(ft.t + 3600) == pytest.approx(MAX_RESET_WAIT_S)


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="rate, per must be > 0"):
        RateLimiter(rate=0)
    with pytest.raises(ValueError, match="burst >= 1"):
        RateLimiter(burst=0)


@pytest.mark.parametrize(
    ("headers", "want"),
    [
        ({"X-Ratelimit-Reset": "1717425007"}, 7.0),  # Alpaca: epoch seconds
        ({"x-ratelimit-reset": "1717425004"}, 4.0),  # header names are case-insensitive
        ({"Retry-After": "2"}, 2.0),  # seconds
        # both: the response's own instruction, not the window's refill
        ({"Retry-After": "2", "X-Ratelimit-Reset": "1717425060"}, 2.0),
        ({"Retry-After": "later", "X-Ratelimit-Reset": "1717425005"}, 5.0),  # malformed: the reset
        ({}, 1.0),  # neither: the fallback
        ({"X-Ratelimit-Reset": "soon"}, 1.0),  # malformed: the fallback
        ({"X-Ratelimit-Reset": "1717425000"}, 0.0),  # a reset already passed: no pause
    ],
)
async def test_on_429_waits_for_the_advertised_reset(headers, want):
    ft = FakeTime()
    lim = RateLimiter(now=ft.now, sleep=ft.sleep)
    assert lim.on_429(headers) == pytest.approx(want), headers
    await lim.acquire()
    # A 429 also empties the bucket: at least one refill interval (60/190 s) passes.
    assert sum(ft.slept) == pytest.approx(max(want, 60 / 190)), (headers, ft.slept)


async def test_remaining_zero_blocks_until_reset_and_other_values_do_not():
    ft = FakeTime()
    lim = RateLimiter(now=ft.now, sleep=ft.sleep)
    lim.observe({"X-Ratelimit-Remaining": "5", "X-Ratelimit-Reset": str(int(ft.t) + 9)})
    lim.observe({"X-Ratelimit-Remaining": "x", "X-Ratelimit-Reset": str(int(ft.t) + 9)})
    await lim.acquire()
    assert ft.slept == []
    lim.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(ft.t) + 3)})
    await lim.acquire()
    assert sum(ft.slept) == pytest.approx(3.0), ft.slept


async def test_broker_and_data_of_one_account_share_one_bucket():
    """Alpaca's 200 requests a minute are the account's.

    A 429 from the data API pauses the trading calls too, and adapters built without a limiter for
    one key share one bucket.
    """
    t = FakeTime()
    quotes = {
        "SPY": {
            "t": "2025-07-09T14:59:59Z",
            "ax": "V",
            "ap": 528.02,
            "as": 2,
            "bx": "V",
            "bp": 527.9,
            "bs": 3,
            "c": ["R"],
            "z": "B",
        }
    }
    shared = RateLimiter(now=t.now, sleep=t.sleep)
    with FakeAlpacaData(quotes=quotes) as fake:
        fake.fail(
            "GET",
            r"/v2/stocks/quotes/latest",
            429,
            {"message": "too many requests."},
            {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(int(t.t) + 5)},
        )
        c = AlpacaData(
            "k", "s", now=_host_now, data_url=fake.url, trading_url=fake.url, limiter=shared
        )
        assert "SPY" in await c.latest_quotes(["SPY"])
        assert sum(t.slept) == pytest.approx(5.0), t.slept
        # The data API's 429 blocked the bucket; the trading call waits out what is left.
        shared.block_until(t.t + 2)
        await c.option_contracts("SPY")
        await c.aclose()
    assert sum(t.slept) == pytest.approx(7.0), t.slept
    url = "http://127.0.0.1:9"  # never called: only the construction is looked at
    b1, b2 = AlpacaBroker("k1", "s", url=url), AlpacaBroker("k1", "s", url=url)
    d1 = AlpacaData("k1", "s", now=_host_now, data_url=url, trading_url=url)
    other = AlpacaBroker("k2", "s", url=url)
    assert b1.limiter is b2.limiter is d1.limiter is account_limiter("k1")
    assert other.limiter is not b1.limiter
    for x in (b1, b2, d1, other):
        await x.aclose()
