"""The fake Alpaca keeps a position's average entry price the way Alpaca's page says it does.

Reference: Alpaca, "Position Average Entry Price Calculation"
(https://docs.alpaca.markets/docs/position-average-entry-price-calculation), its two worked
examples of compressed FIFO, and the weighted average it uses intraday, worked by hand. Orders
go through alpaca-py to the fake and the average is read back from ``GET /v2/positions``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal as D
from itertools import count
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import fake_broker
from v28quant.broker import OrderRequest, Owner


def session(day: int, hour: int = 15) -> datetime:
    """``hour`` UTC on June ``day`` 2024 (3 to 7: Monday to Friday, the market open 13:30-20:00)."""
    return datetime(2024, 6, day, hour, tzinfo=UTC)


class Venue:
    """The fake and alpaca-py's clients on it: trade AAPL at a price, read its average."""

    def __init__(self) -> None:
        self.trading = FakeAlpacaTrading(now=session(3), cash=D(1_000_000)).start()
        self.broker = fake_broker(self.trading.url)
        self.decisions = count(1)

    async def trade(self, when: datetime, qty: int, price: str) -> None:
        self.trading.now = when
        self.trading.set_quote("AAPL", price, price, 1000, 1000)
        side = "buy" if qty > 0 else "sell"
        owner = Owner("equity", "aggregate", f"d{next(self.decisions)}")
        await self.broker.submit(OrderRequest.equity("AAPL", abs(qty), side, owner=owner))

    async def average(self, when: datetime) -> tuple[D, D]:
        self.trading.now = when
        (pos,) = await self.broker.positions()
        return pos.qty, pos.avg_entry_price


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    v = Venue()
    try:
        yield v
    finally:
        await v.broker.aclose()
        v.trading.stop()


def close_to(got: tuple[D, D], qty: int, price: float) -> bool:
    return got[0] == qty and float(got[1]) == pytest.approx(price, abs=1e-12)


@pytest.mark.asyncio
async def test_alpacas_first_example_a_sale_takes_the_oldest_days_lot(venue: Any) -> None:
    """Day 1: 100 at 10 and 50 at 12; day 2: 30 at 15; day 3: sell 120.

    The page: (2,050 - 120 x 1,600 / 150) / 60 = 770 / 60 = 12.83 once the day is over.
    Intraday on day 3 the weighted average of 2,050 / 180 stays (a sale leaves it).
    """
    await venue.trade(session(3), 100, "10")
    await venue.trade(session(3, 16), 50, "12")
    await venue.trade(session(4), 30, "15")
    await venue.trade(session(5), -120, "20")

    intraday = await venue.average(session(5, 19))
    next_day = await venue.average(session(6, 13))

    assert close_to(intraday, 60, 2050 / 180), intraday
    assert close_to(next_day, 60, 770 / 60), next_day


@pytest.mark.asyncio
async def test_alpacas_second_example_one_days_buys_are_one_lot(venue: Any) -> None:
    """One day: 100 at 10, 50 at 9, sell 50, 50 at 11.

    The page, at the end of the day: (2,000 - 50 x 2,000 / 200) / 150 = 10. Intraday the
    weighted average: 1,450 / 150 after the buys, kept by the sale, then (100 x 1,450 / 150 +
    550) / 150 after the last buy.
    """
    await venue.trade(session(3), 100, "10")
    await venue.trade(session(3, 16), 50, "9")
    await venue.trade(session(3, 17), -50, "12")
    after_sale = await venue.average(session(3, 17))
    await venue.trade(session(3, 18), 50, "11")

    intraday = await venue.average(session(3, 19))
    next_day = await venue.average(session(4, 13))

    assert close_to(after_sale, 100, 1450 / 150), after_sale
    assert close_to(intraday, 150, (100 * 1450 / 150 + 550) / 150), intraday
    assert close_to(next_day, 150, 10), next_day


@pytest.mark.asyncio
async def test_a_split_rebases_each_days_lot(venue: Any) -> None:
    """100 at 10 one day, 100 at 20 the next, 100 sold the third; 2-for-1 overnight.

    By hand: the sale takes the first day's lot, 100 at 20 left; split, 200 at 10.
    """
    await venue.trade(session(3), 100, "10")
    await venue.trade(session(4), 100, "20")
    await venue.trade(session(5), -100, "25")
    venue.trading.split("AAPL", 2, session(6).date())

    assert await venue.average(session(6, 13)) == (200, 10)
