"""Alpaca's option settlements journaled with the underlying's close of their session.

Alpaca's OPASN / OPEXC / OPEXP activities carry no price of the underlying; the journal gets
the close of the settlement's session from the data feed's daily bars, so the options sleeve's
day shows an assignment's loss past the strike. References: the loopback fakes' own records
(the trading fake's fill price, the bars the data fake serves), the journal read with sqlite3,
and the P&L worked out by hand.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.alpaca_data import FakeAlpacaData
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import NY, OPEN, StaticQuotes, fake_broker
from v28quant.allocation import allocate
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.base import Activity
from v28quant.calendar import ExchangeCalendar
from v28quant.clock import SimClock
from v28quant.data.alpaca import AlpacaData
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.reconcile import reconcile
from v28quant.settlement_close import SettlementCloses

PUT_500 = "SPY240607P00500000"
CALENDAR = ExchangeCalendar("2024-01-01", "2024-12-31")
#: Monday 10 June 2024, 09:00 New York: the pre-market after expiry Friday.
MONDAY_PREMARKET = datetime(2024, 6, 10, 13, tzinfo=UTC)
#: SPY's daily closes the data fake serves: Friday 7 June, the expiry, closes at 490.
SPY_CLOSES = {date(2024, 6, 6): 495.0, date(2024, 6, 7): 490.0, date(2024, 6, 10): 480.0}


def _bar(day: date, close: float) -> dict[str, Any]:
    t = datetime.combine(day, time(0), NY).astimezone(UTC)
    return {"t": t.isoformat().replace("+00:00", "Z"), "o": close, "h": close, "l": close,
            "c": close, "v": 1_000_000, "n": 1000, "vw": close}  # fmt: skip


@pytest.fixture
def data_fake() -> Iterator[FakeAlpacaData]:
    bars = {"SPY": [_bar(d, c) for d, c in sorted(SPY_CLOSES.items())]}
    with FakeAlpacaData(bars=bars, now=MONDAY_PREMARKET) as f:
        yield f


def _feed(fake: FakeAlpacaData) -> AlpacaData:
    limiter = RateLimiter(rate=60_000, burst=1000)
    return AlpacaData(
        "PKTESTKEY",
        "secret",
        now=lambda: MONDAY_PREMARKET,  # the runner's (venue's) clock: the fake's time
        data_url=fake.url,
        trading_url=fake.url,
        limiter=limiter,
    )


def _journaled(path: Path, kind: str) -> list[dict[str, Any]]:
    """Return the raw of each journaled activity of ``kind``, read with sqlite3."""
    db = sqlite3.connect(str(path))
    try:
        rows = db.execute("SELECT raw FROM activities WHERE activity_type = ?", (kind,)).fetchall()
    finally:
        db.close()
    return [json.loads(r[0]) for r in rows]


@pytest.mark.parametrize("journaled_by", ["premarket_reconcile", "executor_fill"])
async def test_an_assigned_put_books_its_loss_past_the_strike_on_the_expiry_day(
    tmp_path: Path,
    fake_trading: FakeAlpacaTrading,
    data_fake: FakeAlpacaData,
    journaled_by: str,
) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    broker = fake_broker(fake_trading.url)
    feed = _feed(data_fake)
    clock = SimClock(OPEN)
    closes = SettlementCloses(feed, CALENDAR)
    ex = Executor(broker, journal, clock=clock, settlement_closes=closes)
    try:
        fake_trading.set_quote("SPY", "530.00", "530.10", 100, 100)
        fake_trading.set_quote(PUT_500, "3.00", "3.10", 10, 10)
        put = OrderRequest.option(
            PUT_500, 1, "sell", "sell_to_open", owner=Owner("options", "csp", "d1")
        )
        await ex.place(Decision(put, {}), wait_s=1.0)
        (order,) = fake_trading.orders.values()
        credit = Decimal(order["filled_avg_price"])
        # Friday's close (the trading fake's own, which it assigns on) and the weekend pass.
        fake_trading.set_close("SPY", date(2024, 6, 7), "490")
        if journaled_by == "premarket_reconcile":
            fake_trading.advance_to(MONDAY_PREMARKET)
            clock.set(MONDAY_PREMARKET)
            report = await reconcile(journal, broker, clock, closes=closes)
            assert report.ok, report.reason
        else:  # Monday's first fill journals the weekend's activities with it
            monday_open = datetime(2024, 6, 10, 14, tzinfo=UTC)
            fake_trading.advance_to(monday_open)
            clock.set(monday_open)
            sell = OrderRequest.equity("SPY", 100, "sell", owner=Owner("options", "flat", "d2"))
            await ex.place(Decision(sell, {}), wait_s=1.0)
        (assigned,) = _journaled(path, "OPASN")
        assert Decimal(assigned["underlying_close"]) == Decimal("490")
        # By hand: sold at the credit, assigned 10.00 in the money at 490: the sleeve's
        # 7 June is (credit - 10.00) x 100 over the 100_000 of equity, fed on Tuesday.
        ctx: Any = SimpleNamespace(
            shared={},
            now=datetime(2024, 6, 11, 13, tzinfo=UTC),
            journal=journal,
            regime=None,
            calendar=CALENDAR,
        )
        allocate(ctx, 100_000.0)
        (row,) = journal.decisions(action="capital_split")
        friday = row["reasoning"]["sessions_fed"]["2024-06-07"]
        loss = (credit - Decimal("10.00")) * 100
        assert friday["options/structures"] == pytest.approx(float(loss) / 100_000)
        assert loss == Decimal(-700)  # the fake sold at its 3.00 bid
    finally:
        await ex.aclose()
        await broker.aclose()
        await feed.aclose()
        journal.close()


def _activity(kind: str, symbol: str, day: date, raw: dict[str, Any] | None = None) -> Activity:
    ts = datetime.combine(day, time(16), NY).astimezone(UTC)  # Alpaca's date-only rows
    return Activity(f"{kind}-{symbol}-{day}", kind, symbol, Decimal(1), None, ts, raw=raw or {})


def _quotes() -> StaticQuotes:
    q = StaticQuotes(SimClock(MONDAY_PREMARKET))
    for d, c in SPY_CLOSES.items():
        q.set_close("SPY", d, str(c))
    q.set_close("SPY", date(2024, 6, 4), "505")
    q.set_close("QQQ", date(2024, 3, 28), "444")
    return q


async def test_each_settlement_takes_the_close_it_was_decided_on() -> None:
    closes = SettlementCloses(_quotes(), CALENDAR)
    out = await closes.annotate(
        [
            # an expiry Alpaca dates the next session: Friday's close
            _activity("OPASN", PUT_500, date(2024, 6, 10)),
            _activity("OPEXP", PUT_500, date(2024, 6, 10)),
            # an early assignment posted Wednesday: exercised on Tuesday's close
            _activity("OPASN", PUT_500, date(2024, 6, 5)),
            # Good Friday 29 March 2024: the series settled on Thursday's close
            _activity("OPEXC", "QQQ240329C00440000", date(2024, 3, 29)),
            # the simulated exchange's own close is kept; stock legs get none
            _activity("OPASN", PUT_500, date(2024, 6, 7), {"underlying_close": "491"}),
            _activity("OPTRD", "SPY", date(2024, 6, 7)),
        ],
        seen=MONDAY_PREMARKET,
    )
    got = [a.raw.get("underlying_close") for a in out]
    assert [None if c is None else Decimal(c) for c in got] == [490, 490, 505, 444, 491, None]


async def test_an_early_assignment_posted_on_expiry_day_takes_the_close_before_it() -> None:
    """Assigned on Thursday 6 June's close (495), posted dated Friday 7 June, the expiry.

    Seen at Friday's pre-market, before the expiry session closed, it cannot be the expiry's
    settlement: the put closes at its intrinsic on 495 (5.00), the shares are booked at 495,
    not at Friday's 490 (which would move Friday's 5-point fall from the stock's cost into the
    put's trip). Seen only after Friday's close, the date alone cannot tell it from the
    expiry's own assignment (Alpaca dates those on the expiry day too): the expiry's close.
    """
    closes = SettlementCloses(_quotes(), CALENDAR)
    posted = _activity("OPASN", PUT_500, date(2024, 6, 7))
    friday_premarket = datetime(2024, 6, 7, 13, tzinfo=UTC)
    (early,) = await closes.annotate([posted], seen=friday_premarket)
    (later,) = await closes.annotate([posted], seen=MONDAY_PREMARKET)
    assert Decimal(early.raw["underlying_close"]) == 495
    assert Decimal(later.raw["underlying_close"]) == 490


async def test_a_missing_close_keeps_the_activity_and_warns_once_naming_the_symbol(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closes = SettlementCloses(_quotes(), CALENDAR)
    iwm = "IWM240607P00200000"
    acts = [_activity("OPASN", iwm, date(2024, 6, 7)), _activity("OPEXP", iwm, date(2024, 6, 7))]
    with caplog.at_level(logging.WARNING):
        out = await closes.annotate(acts, seen=MONDAY_PREMARKET)
    assert out == acts
    assert [a.raw for a in out] == [{}, {}]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "IWM" in warning.getMessage()
