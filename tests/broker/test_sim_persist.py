"""SimBroker keeps its account across a restart: a file beside the journal, replaced atomically.

The reference is the broker that never stopped: the same calls on one that runs through and on
one restarted in the middle must give the same account, positions, orders and activities, to the
cent (money is Decimal and the simulator is deterministic).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes.fixtures import StaticQuotes
from v28quant.broker import OrderRequest, OrderStatus, Owner
from v28quant.broker.sim import SimBroker, SimConfig, SimStateError, state_path_for
from v28quant.clock import SimClock

OPEN = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)  # Mon 2024-06-03 10:30 New York
EXPIRY = date(2024, 6, 7)
P520 = "SPY240607P00520000"


def _own(decision: str, engine: str = "options") -> Owner:
    return Owner(engine, "wheel", decision)


def _quotes(clock: SimClock) -> StaticQuotes:
    q = StaticQuotes(clock)
    q.set("SPY", "530.00", "530.10", bid_size=500, ask_size=500)
    q.set(P520, "3.00", "3.10")
    q.set_close("SPY", EXPIRY, "518.00")  # the 520 put ends in the money: assigned
    return q


async def _first_half(b: SimBroker) -> str:
    await b.submit(OrderRequest.equity("SPY", 100, "buy", owner=_own("s", "equity")))
    await b.submit(OrderRequest.option(P520, 1, "sell", "sell_to_open", owner=_own("csp")))
    rest = await b.submit(
        OrderRequest.equity("SPY", 50, "buy", "limit", Decimal("520"), owner=_own("lim", "equity"))
    )
    assert rest.status == OrderStatus.NEW  # rests below the market
    await b.submit(OrderRequest.equity("SPY", 1000, "buy", owner=_own("big", "equity")))
    return rest.client_order_id


async def _second_half(b: SimBroker, clock: SimClock, q: StaticQuotes, cid: str) -> None:
    again = await b.submit(
        OrderRequest.equity("SPY", 50, "buy", "limit", Decimal("520"), owner=_own("lim", "equity"))
    )
    assert again.client_order_id == cid  # the same decision is still the same order
    q.set("SPY", "519.50", "519.90", bid_size=1000, ask_size=1000)
    clock.set(datetime(2024, 6, 3, 15, 0, tzinfo=UTC))  # same session: the day order fills
    await b.process()
    clock.set(datetime(2024, 6, 7, 21, 0, tzinfo=UTC))  # after Friday's close: expiry
    await b.process()


async def _books(b: SimBroker) -> dict[str, Any]:
    return {
        "account": await b.account(),
        "positions": await b.positions(),
        "orders": await b.orders("all"),
        "activities": [(a, a.raw) for a in await b.activities()],
    }


@pytest.mark.asyncio
async def test_a_restart_resumes_the_account(tmp_path: Path) -> None:
    clock = SimClock(OPEN)
    q = _quotes(clock)
    through = SimBroker(q, clock, SimConfig(cash=Decimal(700_000)))
    cid = await _first_half(through)
    await _second_half(through, clock, q, cid)
    want = await _books(through)

    path = state_path_for(tmp_path / "journal.sqlite")
    clock = SimClock(OPEN)
    q = _quotes(clock)
    first = SimBroker(q, clock, SimConfig(cash=Decimal(700_000)), state_path=path)
    cid = await _first_half(first)
    mid = await _books(first)
    del first  # the process ends
    assert SimBroker.saved_clock(path) == OPEN
    # A new process: different starting cash in its config, which the saved account overrides.
    clock = SimClock(OPEN)
    q = _quotes(clock)
    second = SimBroker(q, clock, SimConfig(cash=Decimal(1)), state_path=path)
    assert await _books(second) == mid
    await _second_half(second, clock, q, cid)
    got = await _books(second)
    assert got == want
    kinds = sorted(a.type for a, _ in got["activities"] if a.type != "FILL")
    assert kinds == ["OPASN", "OPTRD"], kinds  # the restored short put was assigned
    [limit] = [o for o in got["orders"] if o.client_order_id == cid]
    assert limit.status == OrderStatus.FILLED
    assert limit.filled_avg_price == Decimal("519.90")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.asyncio
async def test_a_failed_write_leaves_the_last_state_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.sqlite.sim-state.json"
    clock = SimClock(OPEN)
    b = SimBroker(_quotes(clock), clock, state_path=path)
    await b.submit(OrderRequest.equity("SPY", 10, "buy", owner=_own("a", "equity")))
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        await b.submit(OrderRequest.equity("SPY", 5, "buy", owner=_own("b", "equity")))
    assert path.read_bytes() == before
    assert json.loads(before)["cash"] == str(Decimal(100_000) - 10 * Decimal("530.10"))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.asyncio
async def test_a_clock_behind_the_saved_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    clock = SimClock(datetime(2024, 6, 4, 14, 30, tzinfo=UTC))
    b = SimBroker(_quotes(clock), clock, state_path=path)
    await b.submit(OrderRequest.equity("SPY", 1, "buy", owner=_own("a", "equity")))
    early = SimClock(OPEN)
    with pytest.raises(SimStateError, match="behind the saved simulator state"):
        SimBroker(_quotes(early), early, state_path=path)


def test_an_unreadable_state_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    clock = SimClock(OPEN)
    with pytest.raises(SimStateError, match="not valid JSON"):
        SimBroker(_quotes(clock), clock, state_path=path)
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(SimStateError, match="format"):
        SimBroker(_quotes(clock), clock, state_path=path)


@pytest.mark.asyncio
async def test_keep_state_attaches_before_trading_only(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    clock = SimClock(OPEN)
    first = SimBroker(_quotes(clock), clock, state_path=path)
    await first.submit(OrderRequest.equity("SPY", 2, "buy", owner=_own("k", "equity")))
    later = SimBroker(_quotes(clock), clock)  # built first, told where its account lives after
    later.keep_state(path)
    assert [(p.symbol, p.qty) for p in await later.positions()] == [("SPY", Decimal(2))]
    with pytest.raises(ValueError, match="already traded"):
        later.keep_state(tmp_path / "other.json")
