"""The options book follows the broker: structures closed outside the engine leave it.

Two spreads are opened on SimBroker over the real SPY chain of 2023-09-14 and entered in the
engine's book; then the runner's flatten (or single closing orders) changes what the account
holds. The book persisted beside the journal is read back with ``json``, the journal's rows
with sqlite3, and both are compared with the simulated broker's own positions.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import Ctx, make_world
from v28quant.broker.base import OrderRequest, Owner
from v28quant.broker.errors import BrokerUnavailable
from v28quant.broker.requests import Leg
from v28quant.calendar import default_calendar
from v28quant.execution import Decision
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held
from v28quant.premarket import flatten
from v28quant.risk import FLATTEN, RESUME, record_control

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
EXPIRY = date(2023, 10, 20)
CALL_LONG, CALL_SHORT = "SPY231020C00450000", "SPY231020C00455000"
PUT_SHORT, PUT_LONG = "SPY231020P00440000", "SPY231020P00427000"


def _config() -> OptionsConfig:
    return OptionsConfig.load(
        None, {"strategies": {"sideways": ["iron_condor"]}, "max_open_structures": 2}
    )


async def _place(ctx: Ctx, req: OrderRequest) -> None:
    out = await ctx.executor.place(Decision(req, {"why": "test"}))
    assert out.status == "filled", (req.client_order_id, out)


async def _book_two_spreads(ctx: Ctx) -> OptionsEngine:
    """Open a bull call spread (2 units) and a bull put spread (1 unit); book them both."""
    call = Owner("options", "bull_call", "a")
    put = Owner("options", "bull_put", "b")
    await _place(
        ctx,
        OrderRequest.multileg(
            [Leg(CALL_LONG, 1, "buy", "buy_to_open"), Leg(CALL_SHORT, 1, "sell", "sell_to_open")],
            2,
            owner=call,
        ),
    )
    await _place(
        ctx,
        OrderRequest.multileg(
            [Leg(PUT_SHORT, 1, "sell", "sell_to_open"), Leg(PUT_LONG, 1, "buy", "buy_to_open")],
            1,
            owner=put,
        ),
    )
    eng = OptionsEngine(_config())
    await eng.premarket(ctx)
    assert eng.book is not None
    eng.book.opened(
        Held("a", "bull_call", "SPY", EXPIRY, {CALL_LONG: 1, CALL_SHORT: -1}, 2, 2.7, 270.0,
             START, call.client_order_id)
    )  # fmt: skip
    eng.book.opened(
        Held("b", "bull_put", "SPY", EXPIRY, {PUT_SHORT: -1, PUT_LONG: 1}, 1, -1.5, 1150.0,
             START, put.client_order_id)
    )  # fmt: skip
    eng.book.save()
    return eng


def _persisted(ctx: Ctx) -> dict[str, dict[str, object]]:
    path = Path(f"{ctx.journal.path}.options.json")
    held: dict[str, dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))["held"]
    return held


def _reconcile_rows(ctx: Ctx) -> dict[str, tuple[str, dict[str, object]]]:
    db = sqlite3.connect(str(ctx.journal.path))
    rows = db.execute(
        "SELECT action, reasoning FROM decisions WHERE engine = 'options'"
        " AND decision_id LIKE 'options-reconcile-%'"
    ).fetchall()
    db.close()
    out = {}
    for action, text in rows:
        why = json.loads(text)
        out[str(why["structure_id"])] = (str(action), why)
    return out


async def _broker_options(ctx: Ctx) -> dict[str, int]:
    return {p.symbol: int(p.qty) for p in await ctx.broker.positions() if len(p.symbol) > 6}


@pytest.mark.asyncio
async def test_flattened_structures_leave_the_book_and_free_its_slots(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways")
    await _book_two_spreads(ctx)
    record_control(ctx.journal, FLATTEN, "test", "operator", START)
    await flatten(ctx)  # type: ignore[arg-type]
    assert await ctx.broker.positions() == []
    # the next run (a restart: a new engine reads the persisted book)
    ctx.clock.advance(timedelta(minutes=5))
    eng = OptionsEngine(_config())
    await eng.premarket(ctx)
    assert _persisted(ctx) == {}
    rows = _reconcile_rows(ctx)
    assert {k: a for k, (a, _) in rows.items()} == {"a": "closed_out", "b": "closed_out"}
    assert "no leg is held" in str(rows["a"][1]["reason"])
    # resumed, with its two slots free again, the engine opens a structure
    record_control(ctx.journal, RESUME, "test", "operator", ctx.now)
    report = await eng.cycle(ctx)
    assert report.note != "max_open_structures reached"
    assert report.orders == 1


@pytest.mark.asyncio
async def test_a_structure_partly_closed_outside_keeps_what_the_broker_holds(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways")
    eng = await _book_two_spreads(ctx)
    # one unit of the call spread closed whole; the put spread's long leg sold alone
    await _place(
        ctx,
        OrderRequest.multileg(
            [Leg(CALL_SHORT, 1, "buy", "buy_to_close"), Leg(CALL_LONG, 1, "sell", "sell_to_close")],
            1,
            owner=Owner("test", "outside", "c1"),
        ),
    )
    await _place(
        ctx,
        OrderRequest.option(PUT_LONG, 1, "sell", "sell_to_close", owner=Owner("test", "o", "p")),
    )
    ctx.clock.advance(timedelta(minutes=5))
    await eng.cycle(ctx)
    held = _persisted(ctx)
    assert set(held) == {"a", "b"}
    # the book's legs x units are exactly the broker's option positions
    book: dict[str, int] = {}
    for h in held.values():
        legs = h["legs"]
        assert isinstance(legs, dict)
        for s, q in legs.items():
            book[s] = book.get(s, 0) + int(q) * int(str(h["units"]))
    broker = await _broker_options(ctx)
    assert {s: q for s, q in broker.items() if s in book} == book
    assert book == {CALL_LONG: 1, CALL_SHORT: -1, PUT_SHORT: -1}
    rows = _reconcile_rows(ctx)
    assert {k: a for k, (a, _) in rows.items()} == {"a": "trimmed", "b": "partial"}
    assert rows["b"][1]["before"] == {"legs": {PUT_SHORT: -1, PUT_LONG: 1}, "units": 1}
    assert any("partial" in n for n in ctx.notifier.notices)


def test_a_partial_structure_carries_the_max_loss_of_what_is_left() -> None:
    from v28quant.options.lifecycle import Book, legs_max_loss

    # hand arithmetic, dollars per unit (100 shares a contract)
    spread = {CALL_LONG: 1, CALL_SHORT: -1}
    paid = {CALL_LONG: 5.0, CALL_SHORT: 3.0}
    assert legs_max_loss(spread, paid) == pytest.approx(200.0)  # the 2.00 debit
    assert legs_max_loss({CALL_SHORT: -1}, paid) == float("inf")  # a naked short call
    put_entry = {PUT_SHORT: 2.0, PUT_LONG: 0.5}
    assert legs_max_loss({PUT_SHORT: -1}, put_entry) == pytest.approx(100 * (440 - 2.0))
    assert legs_max_loss({PUT_SHORT: -1, PUT_LONG: 1}, put_entry) == pytest.approx(
        100 * (440 - 427 - 1.5)
    )
    book = Book()
    for sid, legs, entry, loss in (("a", spread, paid, 200.0), ("b", {PUT_SHORT: -1, PUT_LONG: 1},
                                   put_entry, 1150.0)):  # fmt: skip
        book.opened(
            Held(sid, "x", "SPY", EXPIRY, legs, 1, 0.0, loss, START, f"c-{sid}", leg_entry=entry)
        )
    # the broker holds the call spread's short leg and the put spread's short leg alone
    changes = book.reconcile({CALL_SHORT: -1, PUT_SHORT: -1}, {})
    assert [c.kind for c in changes] == ["partial", "partial"]
    assert book.held["a"].max_loss == float("inf")
    assert book.held["b"].max_loss == pytest.approx(43_800.0)
    assert book.defined_risk_loss() == float("inf")  # no new defined-risk entry fits beside it


def test_a_partial_structure_is_judged_on_the_entry_of_the_legs_left() -> None:
    from v28quant.options.lifecycle import Book, ExitRules, Marks, exit_rule

    # a bull put opened for a 1.50 credit: short 440 at 2.00, long 427 at 0.50
    book = Book()
    book.opened(
        Held("b", "bull_put", "SPY", EXPIRY, {PUT_SHORT: -1, PUT_LONG: 1}, 1, -1.5, 1150.0,
             START, "c-b", leg_entry={PUT_SHORT: 2.0, PUT_LONG: 0.5})
    )  # fmt: skip
    # the short leg was bought back at the venue: the broker holds the long put alone
    (change,) = book.reconcile({PUT_LONG: 1}, {})
    assert change.kind == "partial"
    left = book.held["b"]
    assert left.entry_net == pytest.approx(0.5)  # the long put's own debit
    # by hand: sold at 0.40 it has lost 0.10, 20 % of 0.50; below the 50 % stop: held
    marks = Marks(-0.4, {PUT_LONG: -0.1}, {PUT_LONG: 0.4}, 445.0)
    cutoff = datetime(2023, 10, 20, 16, 0, tzinfo=ET)
    assert exit_rule(left, marks, now=START, cutoff=cutoff, rules=ExitRules()) is None


def _unmanaged_rows(ctx: Ctx) -> list[dict[str, int]]:
    db = sqlite3.connect(str(ctx.journal.path))
    try:
        rows = db.execute(
            "SELECT reasoning FROM decisions WHERE engine = 'options' AND action = 'unmanaged'"
        ).fetchall()
    finally:
        db.close()
    return [json.loads(r[0])["contracts"] for r in rows]


@pytest.mark.asyncio
async def test_contracts_no_structure_names_are_journaled_and_notified_at_pre_market(
    tmp_path: Path, shared_data: Path
) -> None:
    ctx = make_world(tmp_path, shared_data, START, snapshot=True)
    eng = await _book_two_spreads(ctx)  # its pre-market job ran before the spreads were booked
    loose = {CALL_LONG: 2, CALL_SHORT: -2, PUT_SHORT: -1, PUT_LONG: 1}
    assert _unmanaged_rows(ctx) == [loose]
    notices = [n for n in ctx.notifier.notices if "does not manage" in n]
    assert len(notices) == 1
    assert all(s in notices[0] for s in loose)
    ctx.clock.advance(timedelta(days=1))  # booked now: the next session finds nothing loose
    await eng.premarket(ctx)
    assert _unmanaged_rows(ctx) == [loose]
    assert len([n for n in ctx.notifier.notices if "does not manage" in n]) == 1


@pytest.mark.asyncio
async def test_a_structure_expiring_today_asks_for_a_cycle_in_its_last_half_hour(
    tmp_path: Path, shared_data: Path
) -> None:
    # both spreads expire 2023-10-20 (a 16:00 close): the first 5-minute slot inside the last
    # 30 minutes is 15:30 that day; no slot the day before
    ctx = make_world(tmp_path, shared_data, START, snapshot=True)
    eng = await _book_two_spreads(ctx)
    cal = default_calendar()
    expiry_grid = list(cal.windows(EXPIRY).cycles)
    assert eng.extra_cycle_slots(ctx, expiry_grid) == [datetime(2023, 10, 20, 15, 30, tzinfo=ET)]
    day_before = list(cal.windows(EXPIRY - timedelta(days=1)).cycles)
    assert eng.extra_cycle_slots(ctx, day_before) == []


@pytest.mark.asyncio
async def test_a_venue_error_listing_positions_for_the_report_leaves_the_pre_market_job_whole(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the reconcile's listing answers, the report's (the second) fails: the job still reads
    # the daily closes, and the failure is one error notice naming what failed
    ctx = make_world(tmp_path, shared_data, START, snapshot=True)
    eng = await _book_two_spreads(ctx)
    eng._closes.clear()
    calls, listing = [0], ctx.broker.positions

    async def second_fails() -> list[Any]:
        calls[0] += 1
        if calls[0] == 2:
            raise BrokerUnavailable("Alpaca 503: Service Unavailable", status=503)
        return await listing()

    monkeypatch.setattr(ctx.broker, "positions", second_fails)
    ctx.clock.advance(timedelta(days=1))
    await eng.premarket(ctx)
    assert calls[0] == 2
    assert "SPY" in eng._closes
    errors = [n for n in ctx.notifier.notices if "outside the book" in n]
    assert len(errors) == 1
    assert errors[0].startswith("ERROR"), errors
