"""The operator's way past a position reconcile cannot explain: ``v28quant accept-positions``.

Two AAPL shares arrive at the venue with no fill the journal can see (a transfer in). Reconcile
refuses to trade; ``status`` says why and what to do; after ``accept-positions`` the next
reconcile takes the venue's 12 shares once, journals and notifies it, and a later unexplained
change stops trading again.

References: the fake Alpaca's positions, the journal read with sqlite3, the Discord fake's posts
and the CLI's printed lines.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.discord import FakeDiscord
from fakes.fixtures import OPEN, fake_broker
from v28quant.accept_positions import reconcile_for_trading
from v28quant.broker import OrderRequest, Owner
from v28quant.cli import main as cli
from v28quant.clock import SimClock
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.notify import DiscordNotifier, NullNotifier


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
