"""The operator's way past a position reconcile cannot explain: ``v28quant accept-positions``.

Two AAPL shares arrive at the venue with no fill the journal can see (a transfer in). Reconcile
refuses to trade; ``status`` says why and what to do; after ``accept-positions`` the next
reconcile takes the venue's 12 shares once, journals and notifies it, and a later unexplained
change stops trading again. In the round trips the shares taken are a lot of no engine's: the
equity engine's sale of them books no equity trip, a flatten leaves no lot, and shares that
left close the lot they were in without a trip.

References: the fake Alpaca's positions, the journal read with sqlite3, the Discord fake's posts,
the CLI's printed lines, and P&L worked out by hand from the fake's fill prices.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.discord import FakeDiscord
from fakes.fixtures import OPEN, fake_broker
from v28quant.accept_positions import reconcile_for_trading
from v28quant.allocation import daily_returns
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.base import Side
from v28quant.cli import main as cli
from v28quant.clock import SimClock
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.notify import DiscordNotifier, NullNotifier
from v28quant.risk import FLATTEN_STRATEGY
from v28quant.round_trips import journal_trades, pair_trades, round_trips


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(str(path)) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[FakeAlpacaTrading, Any, Journal, Path]]:
    """10 AAPL bought by the equity engine and reconciled into the journal."""
    trading = FakeAlpacaTrading(now=OPEN).start()
    trading.set_quote("AAPL", "199.99", "200.01", 1000, 1000)
    broker = fake_broker(trading.url)
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    try:
        buy = OrderRequest.equity("AAPL", 10, "buy", owner=Owner("equity", "aggregate", "d1"))
        await Executor(broker, journal).place(Decision(buy, {}))
        yield trading, broker, journal, path
    finally:
        await broker.aclose()
        journal.close()
        trading.stop()


@pytest.mark.asyncio
async def test_accepted_positions_are_taken_once_and_said(
    world: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    trading, broker, journal, path = world
    clock = SimClock(OPEN)
    with FakeDiscord() as discord:
        notifier = DiscordNotifier(discord.webhook_url)
        assert (await reconcile_for_trading(journal, broker, clock, notifier=notifier)).ok
        trading.positions["AAPL"][0] += 2  # a transfer in: no fill, no activity

        refused = await reconcile_for_trading(journal, broker, clock, notifier=notifier)
        assert not refused.ok
        assert cli(["--journal", str(path), "status"]) == 0
        out = capsys.readouterr().out
        assert "last reconcile FAILED" in out
        assert "position_mismatch AAPL" in out
        assert "(journal 10, venue 12)" in out
        assert "v28quant accept-positions --reason" in out

        assert cli(["--journal", str(path), "accept-positions", "--reason", "ACATS of 2"]) == 0
        assert "accept-positions journaled" in capsys.readouterr().out
        assert cli(["--journal", str(path), "status"]) == 0
        assert "accept-positions pending" in capsys.readouterr().out

        taken = await reconcile_for_trading(journal, broker, clock, notifier=notifier)
        assert taken.ok
        again = await reconcile_for_trading(journal, broker, clock, notifier=notifier)
        assert again.ok
        trading.positions["AAPL"][0] += 1
        after = await reconcile_for_trading(journal, broker, clock, notifier=notifier)
        assert not after.ok  # one request, one acceptance
        await notifier.aclose()
        posts = [p["content"] for p in discord.received]

    accepted = rows(path, "SELECT reasoning FROM decisions WHERE action = 'positions_accepted'")
    assert len(accepted) == 1
    record = json.loads(accepted[0][0])
    assert record["reason"] == "ACATS of 2"
    assert record["positions"] == [
        {"symbol": "AAPL", "journal": "10", "expected": "10", "broker": "12"}
    ]
    snapshot = rows(
        path,
        "SELECT qty FROM positions WHERE symbol = 'AAPL' AND snapshot_id = "
        "(SELECT MAX(id) FROM position_snapshots)",
    )
    assert [D(q) for (q,) in snapshot] == [D(12)]
    assert any("venue positions accepted (ACATS of 2): AAPL 10 -> 12" in p for p in posts)
    assert cli(["--journal", str(path), "status"]) == 0
    assert "accept-positions pending" not in capsys.readouterr().out


def test_accept_positions_needs_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    assert cli(["--journal", str(path), "accept-positions", "--reason", "  "]) == 2
    assert "needs a --reason" in capsys.readouterr().err
    assert rows(path, "SELECT COUNT(*) FROM decisions") == [(0,)]


@pytest.mark.asyncio
async def test_acceptance_waits_for_a_reconcile_that_passes(world: Any) -> None:
    """Positions are taken only by the reconcile that lets trading start, and said by it.

    The operator asks to accept a transfer in while an order of ours the journal never saw is
    open at the venue (fatal). That reconcile refuses and must leave the journal's positions
    as they were; once the stray order is gone, the next one takes the venue's 12 shares and
    journals them as taken.
    """
    trading, broker, journal, path = world
    clock = SimClock(OPEN)
    notifier = NullNotifier()
    assert (await reconcile_for_trading(journal, broker, clock, notifier=notifier)).ok
    trading.positions["AAPL"][0] += 2  # a transfer in: no fill, no activity
    stray = OrderRequest.equity(
        "AAPL", 1, "buy", "limit", D("150"), owner=Owner("equity", "aggregate", "stray")
    )
    resting = await broker.submit(stray)
    assert cli(["--journal", str(path), "accept-positions", "--reason", "ACATS of 2"]) == 0

    refused = await reconcile_for_trading(journal, broker, clock, notifier=notifier)
    assert not refused.ok
    last = (
        "SELECT qty FROM positions WHERE symbol = 'AAPL' AND snapshot_id = "
        "(SELECT MAX(id) FROM position_snapshots)"
    )
    assert [D(q) for (q,) in rows(path, last)] == [D(10)]

    await broker.cancel(resting.id)
    taken = await reconcile_for_trading(journal, broker, clock, notifier=notifier)
    assert taken.ok, taken.reason
    assert [D(q) for (q,) in rows(path, last)] == [D(12)]
    accepted = rows(path, "SELECT reasoning FROM decisions WHERE action = 'positions_accepted'")
    assert [json.loads(r)["positions"] for (r,) in accepted] == [
        [{"symbol": "AAPL", "journal": "10", "expected": "10", "broker": "12"}]
    ]


#: When the operator's acceptance is carried out, and when the equity engine trades after it.
ACCEPTED_AT = OPEN + timedelta(hours=1)
TRADED_AT = OPEN + timedelta(hours=2)


async def accept(world: Any, qty: int, avg: str) -> None:
    """Reconcile the 10 bought; the venue then holds ``qty`` at ``avg``, which the operator takes.

    No fill nor activity moves the position (shares transferred in or out).
    """
    trading, broker, journal, path = world
    clock = SimClock(OPEN)
    assert (await reconcile_for_trading(journal, broker, clock, notifier=NullNotifier())).ok
    trading.positions["AAPL"] = [D(qty), D(avg)]
    assert cli(["--journal", str(path), "accept-positions", "--reason", "ACATS"]) == 0
    trading.now = ACCEPTED_AT
    clock.set(ACCEPTED_AT)
    taken = await reconcile_for_trading(journal, broker, clock, notifier=NullNotifier())
    assert taken.ok, taken.reason


async def trade(world: Any, side: Side, qty: int, engine: str, n: int) -> None:
    """Place ``engine``'s market order through the execution service, which journals its fills.

    The ``n``-th trade after the acceptance, ``n`` minutes after ``TRADED_AT``.
    """
    trading, broker, journal, _ = world
    trading.now = TRADED_AT + timedelta(minutes=n)
    owner = Owner(engine, FLATTEN_STRATEGY if engine == "risk" else "aggregate", f"t{n}")
    await Executor(broker, journal).place(
        Decision(OrderRequest.equity("AAPL", qty, side, owner=owner), {})
    )


def trades_of(journal: Journal) -> list[Any]:
    """Return the journal's trades as the learner, the allocator and the report read them."""
    return journal_trades(
        journal.fills(), journal.settlements(), journal.splits(), journal.transfers()
    )


def open_lots(journal: Journal) -> dict[tuple[str, str], list[tuple[D, D]]]:
    lots = pair_trades(trades_of(journal)).lots
    return {k: [(lot.qty, lot.price) for lot in v] for k, v in lots.items()}


@pytest.mark.asyncio
async def test_the_equity_engines_sale_of_accepted_shares_books_no_equity_trip(world: Any) -> None:
    """The equity engine sells accepted shares: their lot's trip, not an equity trip.

    2 AAPL come in (the venue then holds 12 at an average of 198.00), accepted; the equity
    engine sells all 12 at the 199.99 bid, then buys 2 back at the 200.01 ask.

    By hand: the equity trip is its own 10 x (199.99 - 200.01) = -0.20; the accepted 2 are a
    lot of their own at the venue's 198.00, closed as 2 x (199.99 - 198.00) = +3.98; the buy
    opens an equity lot of 2 at 200.01. Before, the accepted 2 had no lot: the sale opened an
    equity short of 2 at 199.99, which the buy closed as an invented equity trip of -0.04.
    """
    journal = world[2]
    await accept(world, 12, "198.00")  # 2 transferred in

    (taken,) = journal.transfers()
    assert (taken["symbol"], taken["qty"], taken["venue_qty"], taken["price"]) == (
        "AAPL",
        D(2),
        D(12),
        D("198.00"),
    )
    assert taken["ts"] == ACCEPTED_AT
    await trade(world, "sell", 12, "equity", 1)
    await trade(world, "buy", 2, "equity", 2)
    assert [(f["side"], f["qty"], f["price"]) for f in journal.fills()] == [
        ("buy", D(10), D("200.01")),
        ("sell", D(12), D("199.99")),
        ("buy", D(2), D("200.01")),
    ]

    trips = round_trips(trades_of(journal), engine="equity")
    assert [(t.side, t.qty, t.entry_price, t.exit_price) for t in trips] == [
        ("long", D(10), D("200.01"), D("199.99"))
    ]
    assert trips[0].pnl == pytest.approx(-0.20, abs=1e-9)
    (accepted,) = round_trips(trades_of(journal), engine="accepted")
    assert (accepted.qty, accepted.entry_price) == (D(2), D("198.00"))
    assert accepted.pnl == pytest.approx(3.98, abs=1e-9)
    assert open_lots(journal) == {("equity", "AAPL"): [(D(2), D("200.01"))]}
    returns = daily_returns(
        journal.fills(),
        100_000.0,
        date(2024, 6, 4),
        journal.settlements(),
        journal.splits(),
        journal.transfers(),
    )
    assert returns[OPEN.date()]["equity/aggregate"] == pytest.approx(-0.20 / 100_000, abs=1e-12)


@pytest.mark.asyncio
async def test_a_flatten_after_acceptance_leaves_no_lot(world: Any) -> None:
    """2 AAPL come in and are accepted; the operator's flatten sells the 12.

    By hand: the flatten closes the equity engine's 10 at 200.01 (its trip: -0.20) and the
    accepted 2 at 198.00; no lot is left. Before, the 2 it sold past the equity lot opened a
    short of 2 of the ``risk`` engine that nothing ever closed.
    """
    trading, journal = world[0], world[2]
    await accept(world, 12, "198.00")

    await trade(world, "sell", 12, "risk", 1)

    assert "AAPL" not in trading.positions
    (trip,) = round_trips(trades_of(journal), engine="equity")
    assert trip.pnl == pytest.approx(-0.20, abs=1e-9)
    assert open_lots(journal) == {}


@pytest.mark.asyncio
async def test_shares_that_left_close_the_lot_without_a_trip(world: Any) -> None:
    """Shares that left the account, accepted, close the equity lot at no price.

    2 of the equity engine's 10 AAPL leave (the venue then holds 8), accepted; the equity
    engine then sells its 8 at the 199.99 bid.

    By hand: the transfer out closes 2 of the equity lot at no price, so no trip; 8 at 200.01
    are left, and the sale books 8 x (199.99 - 200.01) = -0.16 with nothing open. Before, the
    equity lot kept all 10 and the sale left 2 at 200.01 open that the account no longer had.
    """
    journal = world[2]
    await accept(world, 8, "200.01")  # 2 transferred out

    assert pair_trades(trades_of(journal)).trips == []
    assert open_lots(journal) == {("equity", "AAPL"): [(D(8), D("200.01"))]}
    await trade(world, "sell", 8, "equity", 1)

    (trip,) = round_trips(trades_of(journal), engine="equity")
    assert (trip.qty, trip.entry_price, trip.exit_price) == (D(8), D("200.01"), D("199.99"))
    assert trip.pnl == pytest.approx(-0.16, abs=1e-9)
    assert open_lots(journal) == {}


@pytest.mark.asyncio
async def test_a_split_after_acceptance_is_taken(world: Any) -> None:
    """12 AAPL at 198.00 accepted, split 2-for-1 the next day: the venue holds 24 at 99.00.

    Reconcile rebuilds the venue's lots from the journal's trades to read the split: after the
    acceptance they are the venue's 12 at 198.00, whose split is 24 at 99.00. Counted as
    the equity lot of 10 at 200.01 beside a lot of 2 at 198.00 they would average 199.675, a
    split to 99.84, and the position would stop trading as a mismatch.
    """
    trading, broker, journal, _ = world
    await accept(world, 12, "198.00")
    trading.split("AAPL", 2, date(2024, 6, 4))
    premarket = datetime(2024, 6, 4, 13, 0, tzinfo=UTC)
    trading.now = premarket

    rep = await reconcile_for_trading(journal, broker, SimClock(premarket), notifier=NullNotifier())

    assert rep.ok, rep.reason
    assert [(d["kind"], d.get("ratio")) for d in rep.differences] == [("position_split", "2")]
