"""A stock split of a held stock, as a trader holding AAPL through a 4-for-1 split meets it.

On the ex-date Alpaca multiplies the position's quantity by the ratio, divides its average entry
price by it and quotes the stock at a quarter; it lists a non-trade SPLIT activity whose fields
it does not document. The journal's fills still say 10 shares at the old price.

References: the fake Alpaca's own record of the requests it was sent and of its positions, the
journal read with sqlite3, and P&L worked out by hand from the fake's fill prices.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal as D
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.equity_world import aapl_engine
from fakes.fixtures import OPEN, fake_broker
from v28quant.allocation import daily_returns
from v28quant.broker import OrderRequest, Owner
from v28quant.clock import SimClock
from v28quant.config import load_config
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.reconcile import reconcile
from v28quant.round_trips import journal_trades, pair_trades, round_trips
from v28quant.signals import RegimeState
from v28quant.venue_lots import DayLot, average_price, trade_lots

EX_DATE = date(2024, 6, 4)
PREMARKET = datetime(2024, 6, 4, 13, 0, tzinfo=UTC)  # 09:00 New York on the ex-date
MIDDAY = datetime(2024, 6, 4, 16, 0, tzinfo=UTC)


async def place(journal: Journal, broker: Any, req: OrderRequest) -> None:
    """Place ``req`` through the execution service, which journals it and its fills."""
    await Executor(broker, journal).place(Decision(req, {}))


@pytest.fixture
async def held(tmp_path: Path) -> AsyncIterator[tuple[FakeAlpacaTrading, Any, Journal, SimClock]]:
    """10 AAPL bought by the equity engine at the 200.01 ask, reconciled into the journal."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "199.99", "200.01", 1000, 1000)
    broker = fake_broker(trading.url)
    journal = Journal(tmp_path / "journal.sqlite")
    clock = SimClock(OPEN)
    try:
        buy = OrderRequest.equity("AAPL", 10, "buy", owner=Owner("equity", "aggregate", "d1"))
        await place(journal, broker, buy)
        assert (await reconcile(journal, broker, clock)).ok
        yield trading, broker, journal, clock
    finally:
        await broker.aclose()
        journal.close()
        trading.stop()


def split_overnight(trading: FakeAlpacaTrading, clock: SimClock) -> None:
    """AAPL splits 4-for-1 with the ex-date the next session; the clock at its pre-market."""
    trading.split("AAPL", 4, EX_DATE)
    trading.set_quote("AAPL", "49.99", "50.01", 1000, 1000)
    trading.now = PREMARKET
    clock.set(PREMARKET)


def split_decisions(path: Path) -> list[tuple[str, dict[str, Any]]]:
    with sqlite3.connect(str(path)) as con:
        rows = con.execute(
            "SELECT symbol, reasoning FROM decisions WHERE action = 'split' ORDER BY ts"
        ).fetchall()
    return [(sym, json.loads(r)) for sym, r in rows]


def snapshot(path: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(str(path)) as con:
        rows = con.execute(
            "SELECT symbol, data FROM positions WHERE snapshot_id = "
            "(SELECT MAX(id) FROM position_snapshots)"
        ).fetchall()
    return {sym: json.loads(data) for sym, data in rows}


@pytest.mark.asyncio
async def test_reconcile_takes_a_split_as_one_and_journals_the_rebasing(held: Any) -> None:
    """The ex-date pre-market: 10 journaled, 40 at the venue at a quarter of the entry price.

    Without this the difference is a position mismatch that stops trading every morning until
    a person adopts the venue's positions by hand.
    """
    trading, broker, journal, clock = held
    split_overnight(trading, clock)
    assert trading.positions["AAPL"] == [D(40), D("200.01") / 4]

    rep = await reconcile(journal, broker, clock)

    assert rep.ok, rep.reason
    (diff,) = rep.differences
    assert (diff["kind"], diff["symbol"], diff["ratio"]) == ("position_split", "AAPL", "4")
    assert (diff["journal"], diff["broker"]) == ("10", "40")
    assert snapshot(journal.path)["AAPL"]["qty"] == "40"
    ((sym, why),) = split_decisions(journal.path)
    assert (sym, why["ratio"], why["journal_qty"], why["broker_qty"]) == ("AAPL", "4", "10", "40")
    again = await reconcile(journal, broker, clock)
    assert again.ok, again.reason
    assert again.differences == ()
    assert len(split_decisions(journal.path)) == 1


@pytest.mark.asyncio
async def test_a_reverse_split_that_leaves_a_fraction_of_a_share_is_a_split(held: Any) -> None:
    """10 AAPL at 200.01 split 1-for-3: Alpaca pays the fraction as shares, 3.333333333.

    By hand: 10 / 3 = 3.333333333 to the venue's nine decimals, at 3 x 200.01 = 600.03 a
    share. Taken as a 1/3 split, the open lot becomes the venue's 3.333333333 at 600.03 and
    its sale at 610 books 3.333333333 x 9.97 = +33.23 with nothing left open. Before, the
    rounded quantity was no small ratio of 10: a position mismatch that stopped trading.
    """
    trading, broker, journal, clock = held
    trading.split("AAPL", Fraction(1, 3), EX_DATE)
    trading.now = PREMARKET
    clock.set(PREMARKET)
    assert trading.positions["AAPL"][0] == D("3.333333333")

    rep = await reconcile(journal, broker, clock)

    assert rep.ok, rep.reason
    (diff,) = rep.differences
    assert (diff["kind"], diff["symbol"], diff["ratio"]) == ("position_split", "AAPL", "1/3")
    assert snapshot(journal.path)["AAPL"]["qty"] == "3.333333333"
    sale = {
        "symbol": "AAPL",
        "side": "sell",
        "qty": D("3.333333333"),
        "price": D(610),
        "ts": MIDDAY,
        "client_order_id": "v28-equity-aggregate-d2",
    }
    trades = journal_trades([*journal.fills(), sale], journal.settlements(), journal.splits())
    (trip,) = round_trips(trades, engine="equity")
    assert (trip.qty, trip.entry_price) == (D("3.333333333"), D("600.03"))
    assert trip.pnl == pytest.approx(3.333333333 * 9.97, abs=1e-9)
    assert pair_trades(trades).lots == {}


@pytest.mark.asyncio
async def test_a_bigger_position_at_the_same_entry_price_is_no_split(held: Any) -> None:
    """Four times the shares at the old average price: no split, a difference to look at."""
    trading, broker, journal, clock = held
    trading.positions["AAPL"] = [D(40), D("200.01")]

    rep = await reconcile(journal, broker, clock)

    assert not rep.ok
    assert [d["kind"] for d in rep.fatal] == ["position_mismatch"]
    assert split_decisions(journal.path) == []
    assert snapshot(journal.path)["AAPL"]["qty"] == "10"


@pytest.mark.asyncio
async def test_the_sale_after_a_split_books_the_trade_at_the_rebased_entry(held: Any) -> None:
    """10 bought at 200.01, split 4-for-1, all 40 sold at the 51.99 bid the same day.

    By hand: 10 x (4 x 51.99 - 200.01) = +79.50 on one round trip of 40 shares entered at
    200.01 / 4 = 50.0025, nothing left open. Without the re-basing the FIFO lots held 10 at
    200.01: the sale booked 10 x (51.99 - 200.01) = -1,480.20 and opened a phantom short of
    30, for the learner, the allocator and the report alike.
    """
    trading, broker, journal, clock = held
    split_overnight(trading, clock)
    assert (await reconcile(journal, broker, clock)).ok
    trading.now = MIDDAY
    clock.set(MIDDAY)
    trading.set_quote("AAPL", "51.99", "52.01", 1000, 1000)
    sell = OrderRequest.equity("AAPL", 40, "sell", owner=Owner("equity", "aggregate", "d2"))
    await place(journal, broker, sell)
    assert (await reconcile(journal, broker, clock)).ok
    assert "AAPL" not in trading.positions
    assert [(f["side"], f["qty"], f["price"]) for f in journal.fills()] == [
        ("buy", D(10), D("200.01")),
        ("sell", D(40), D("51.99")),
    ]

    trades = journal_trades(journal.fills(), journal.settlements(), journal.splits())
    (trip,) = round_trips(trades, engine="equity")
    assert (trip.side, trip.qty, trip.entry_price, trip.exit_price) == (
        "long",
        D(40),
        D("50.0025"),
        D("51.99"),
    )
    assert trip.pnl == pytest.approx(79.5, abs=1e-9)
    assert pair_trades(trades).lots == {}
    returns = daily_returns(
        journal.fills(), 100_000.0, date(2024, 6, 5), journal.settlements(), journal.splits()
    )
    assert returns[EX_DATE]["equity/aggregate"] == pytest.approx(79.5 / 100_000, abs=1e-12)


def test_a_split_rebases_only_what_is_still_open() -> None:
    """Buy 10 at 100, sell 5 at 110, split 2-for-1, sell 10 at 60.

    By hand: the first sale closes 5 at 100 (+50) and keeps it; the 5 left become 10 at 50,
    closed at 60 (+100).
    """

    def fill(i: int, side: str, qty: str, price: str, hour: int) -> dict[str, Any]:
        return {
            "fill_id": f"f{i}",
            "client_order_id": f"v28-equity-aggregate-{i}",
            "symbol": "AAPL",
            "side": side,
            "qty": D(qty),
            "price": D(price),
            "ts": datetime(2024, 6, 3, hour, tzinfo=UTC),
        }

    split = {"symbol": "AAPL", "ts": datetime(2024, 6, 3, 17, tzinfo=UTC), "split_ratio": 2}
    fills = [fill(1, "buy", "10", "100", 14), fill(2, "sell", "5", "110", 15)]
    fills.append(fill(3, "sell", "10", "60", 19))
    trips = round_trips(journal_trades(fills, (), [split]), engine="equity")
    assert [(t.qty, t.entry_price, t.pnl) for t in trips] == [(5, 100, 50.0), (10, 50, 100.0)]


@pytest.mark.asyncio
async def test_the_equity_engine_sizes_from_the_venue_position_not_the_lots(
    tmp_path: Path,
) -> None:
    """25 bought at 400 in the journal, 100 at 100 at the venue after a 4-for-1 split.

    The engine's target at the 100.00 mid is 0.10 x 100,000 / 100 = 100 shares, what the venue
    holds: no order, whatever the journal's lots say. Reference: the fake's record of requests.
    """
    trading = FakeAlpacaTrading(now=OPEN, cash=D(90_000)).start()
    trading.set_quote("AAPL", "99.99", "100.01", 1000, 1000)
    trading.positions["AAPL"] = [D(100), D(100)]
    regime = RegimeState("bull_quiet", {"bull_quiet": 1.0}, "test", OPEN)
    cfg = load_config()[1].equity
    ctx, engine = aapl_engine(
        trading.url, tmp_path / "journal.sqlite", OPEN, 1.0, regime, cfg, (1000, 1000)
    )
    ctx.journal.record_fill("f1", "v28-equity-aggregate-1", "AAPL", 25, "400", "buy", OPEN)
    try:
        report = await engine.cycle(ctx)
    finally:
        await ctx.broker.aclose()
        ctx.journal.close()
        trading.stop()
    assert trading.count("POST", "/v2/orders") == 0
    assert report.orders == 0


def sell_all(qty: str, price: str) -> dict[str, Any]:
    """Return the equity engine's sale of ``qty`` AAPL at ``price`` at MIDDAY, as journaled."""
    return {
        "symbol": "AAPL",
        "side": "sell",
        "qty": D(qty),
        "price": D(price),
        "ts": MIDDAY,
        "client_order_id": "v28-equity-aggregate-d9",
    }


@pytest.mark.asyncio
async def test_a_split_and_a_later_buy_in_one_window_are_taken_as_both(held: Any) -> None:
    """10 at 200.01 split 4-for-1 overnight; 5 more bought at the 50.01 ask before reconcile.

    By hand: the venue holds 10 x 4 + 5 = 45 at (40 x 50.0025 + 5 x 50.01) / 45. Taken as a
    split dated before the buy, the open lots are 40 at 50.0025 and 5 at 50.01, and selling
    all 45 at 52 books 40 x 1.9975 + 5 x 1.99 = 89.85 with nothing left open. Before, the buy
    was taken as the whole explanation: 15 expected, 45 held, a position mismatch.
    """
    trading, broker, journal, clock = held
    split_overnight(trading, clock)
    clock.set(MIDDAY)
    trading.now = MIDDAY
    buy = OrderRequest.equity("AAPL", 5, "buy", owner=Owner("equity", "aggregate", "d2"))
    await place(journal, broker, buy)
    assert trading.positions["AAPL"][0] == D(45)

    rep = await reconcile(journal, broker, clock)

    assert rep.ok, rep.reason
    (diff,) = [d for d in rep.differences if d["symbol"] == "AAPL"]
    assert (diff["kind"], diff["ratio"], diff["journal"], diff["broker"]) == (
        "position_split", "4", "10", "45",
    )  # fmt: skip
    assert snapshot(journal.path)["AAPL"]["qty"] == "45"
    fills = [*journal.fills(), sell_all("45", "52")]
    trades = journal_trades(fills, journal.settlements(), journal.splits())
    trips = round_trips(trades, engine="equity")
    assert sum(t.pnl for t in trips) == pytest.approx(89.85, abs=1e-9)
    assert pair_trades(trades).lots == {}
    again = await reconcile(journal, broker, clock)
    assert again.ok, again.reason
    assert len(split_decisions(journal.path)) == 1


@pytest.mark.asyncio
async def test_a_buy_then_a_split_in_one_window_are_taken_as_both(held: Any) -> None:
    """5 more bought at 210 after the last reconcile (the runner down), then a 4-for-1 split.

    By hand: 15 at (10 x 200.01 + 5 x 210) / 15 = 203.34 become 60 at 50.835. Taken as the
    buy then the split, the open lots are the engine's 40 at 200.01 / 4 = 50.0025 and the
    unknown order's 20 at 210 / 4 = 52.5.
    """
    trading, broker, journal, clock = held
    later = datetime(2024, 6, 3, 18, 0, tzinfo=UTC)
    trading.now = later
    trading._move("AAPL", D(5), D(210))
    fill = {"transaction_time": later.isoformat(), "symbol": "AAPL", "qty": "5", "side": "buy"}
    trading._activity({"activity_type": "FILL", "price": "210", "order_id": "o-x", **fill}, later)
    split_overnight(trading, clock)
    assert trading.positions["AAPL"][0] == D(60)

    rep = await reconcile(journal, broker, clock)

    assert rep.ok, rep.reason
    (diff,) = rep.differences
    assert (diff["kind"], diff["ratio"], diff["journal"], diff["broker"]) == (
        "position_split", "4", "10", "60",
    )  # fmt: skip
    trades = journal_trades(journal.fills(), (), journal.splits())
    lots = [(lot.qty, lot.price) for q in pair_trades(trades).lots.values() for lot in q]
    assert sorted(lots) == [(D(20), D("52.5")), (D(40), D("50.0025"))]


@pytest.mark.asyncio
async def test_a_split_with_a_buy_whose_price_does_not_fit_is_a_mismatch(held: Any) -> None:
    """The venue holds 45 after a 4-for-1 split and a buy of 5, at the old average price.

    No buy price makes 40 at 50.0025 and 5 more average 200.01: a difference to look at.
    """
    trading, broker, journal, clock = held
    split_overnight(trading, clock)
    clock.set(MIDDAY)
    trading.now = MIDDAY
    buy = OrderRequest.equity("AAPL", 5, "buy", owner=Owner("equity", "aggregate", "d2"))
    await place(journal, broker, buy)
    trading.positions["AAPL"] = [D(45), D("200.01")]

    rep = await reconcile(journal, broker, clock)

    assert [d["kind"] for d in rep.fatal] == ["position_mismatch"]
    assert split_decisions(journal.path) == []


def fill_by_hand(trading: FakeAlpacaTrading, ts: datetime, qty: int, price: str) -> None:
    """Fill ``qty`` AAPL (signed) at ``ts`` unseen by the journal, as with the runner down."""
    trading.now = ts
    trading._move("AAPL", D(qty), D(price))
    side = "buy" if qty > 0 else "sell"
    row = {"transaction_time": ts.isoformat(), "symbol": "AAPL", "qty": str(abs(qty))}
    row |= {"side": side, "price": price, "order_id": f"o-{ts:%d}"}
    trading._activity({"activity_type": "FILL", **row}, ts)


def _two_days_bought(tmp_path: Path) -> tuple[FakeAlpacaTrading, Any, Journal, SimClock]:
    """Return venue, broker, journal, clock: 100 AAPL bought at 10 on 30 May, 100 at 20 on 31."""
    first_day = datetime(2024, 5, 30, 14, 0, tzinfo=UTC)
    trading = FakeAlpacaTrading(now=first_day).start()
    fill_by_hand(trading, first_day, 100, "10")
    fill_by_hand(trading, datetime(2024, 5, 31, 14, 0, tzinfo=UTC), 100, "20")
    clock = SimClock(datetime(2024, 5, 31, 21, 0, tzinfo=UTC))
    return trading, fake_broker(trading.url), Journal(tmp_path / "journal.sqlite"), clock


@pytest.mark.asyncio
async def test_a_split_after_a_partial_sale_of_lots_of_two_days_is_a_split(
    tmp_path: Path,
) -> None:
    """100 AAPL bought at 10 one day and 100 at 20 the next, 100 sold the third, split 2-for-1.

    Alpaca keeps the average entry price of positions from earlier days by compressed FIFO
    over daily lots: the sale takes the first day's lot, leaving 100 at 20, which the split
    makes 200 at 10. By hand from the journal's fills: (100 x 10 + 100 x 20 - 100 x 10) / 100
    = 20, / 2 = 10, the venue's. Before, the sale was taken to leave the snapshot's 15 (the
    weighted average of both days): 200 at 7.50 expected, no split, a position mismatch that
    stopped trading in AAPL until accept-positions.
    """
    trading, broker, journal, clock = _two_days_bought(tmp_path)
    try:
        assert (await reconcile(journal, broker, clock)).ok
        assert snapshot(journal.path)["AAPL"]["avg_entry_price"] == "15"
        fill_by_hand(trading, OPEN, -100, "25")
        trading.split("AAPL", 2, EX_DATE)
        trading.now = PREMARKET
        clock.set(PREMARKET)
        assert trading.positions["AAPL"] == [D(200), D(10)]

        rep = await reconcile(journal, broker, clock)
    finally:
        await broker.aclose()
        journal.close()
        trading.stop()

    assert rep.ok, rep.reason
    (diff,) = rep.differences
    assert (diff["kind"], diff["ratio"], diff["journal"], diff["broker"]) == (
        "position_split", "2", "200", "200",
    )  # fmt: skip
    ((sym, why),) = split_decisions(journal.path)
    assert (sym, why["ratio"], why["activities_after"]) == ("AAPL", "2", [])


@pytest.mark.asyncio
async def test_a_split_then_a_sale_the_same_day_is_a_split(tmp_path: Path) -> None:
    """100 AAPL at 10 one day and 100 at 20 the next, split 2-for-1; 100 sold on the ex-date.

    The runner was down and reconciles mid-session on the ex-date. Alpaca's day started with
    the split lots, 200 at 5 and 200 at 10 (average 7.50), and its intraday weighted average
    keeps 7.50 after the sale: 300 at 7.50, the fake's figure. Before, only the compressed
    FIFO average of the next day, (100 x 5 + 200 x 10) / 300 = 8.33, was taken to fit: no
    split, a position mismatch that stopped trading in AAPL for the rest of the day.
    """
    trading, broker, journal, clock = _two_days_bought(tmp_path)
    try:
        assert (await reconcile(journal, broker, clock)).ok
        trading.split("AAPL", 2, EX_DATE)
        fill_by_hand(trading, MIDDAY, -100, "6")
        assert trading.positions["AAPL"] == [D(300), D("7.5")]
        clock.set(MIDDAY)

        rep = await reconcile(journal, broker, clock)
    finally:
        await broker.aclose()
        journal.close()
        trading.stop()

    assert rep.ok, rep.reason
    (diff,) = rep.differences
    assert (diff["kind"], diff["ratio"], diff["journal"], diff["broker"]) == (
        "position_split", "2", "200", "300",
    )  # fmt: skip


def test_daily_lots_give_alpacas_own_compressed_fifo_examples() -> None:
    """Alpaca's worked examples of its average entry price, the figures its page gives.

    Days 1-3: 100 at 10 and 50 at 12, 30 at 15, sell 120: (2,050 - 120 x 1,600 / 150) / 60
    = 770 / 60. One day: 100 at 10, 50 at 9, sell 50, 50 at 11: the sale at the day's average
    of 2,000 / 200 leaves 1,500 / 150 = 10.
    """

    def day(n: int, hour: int = 14) -> datetime:
        return datetime(2024, 6, 2 + n, hour, tzinfo=UTC)

    lots: list[DayLot] = []
    for when, qty, price in [(day(1), 100, 10), (day(1), 50, 12), (day(2), 30, 15)]:
        lots = trade_lots(lots, when, D(qty), D(price))
    lots = trade_lots(lots, day(3), D(-120), D(20))
    assert sum(lot.qty for lot in lots) == 60
    assert float(average_price(lots)) == pytest.approx(770 / 60, abs=1e-12)

    lots = []
    for hour, qty, price in [(14, 100, 10), (15, 50, 9), (16, -50, 12), (17, 50, 11)]:
        lots = trade_lots(lots, day(1, hour), D(qty), D(price))
    assert (sum(lot.qty for lot in lots), average_price(lots)) == (150, 10)
