"""The options book against the loopback Alpaca fake (real alpaca-py): what the venue settles.

Independent reference: the fake's own record of the positions it holds and the activities it
lists, the book file read back with json, the journal read with sqlite3, hand arithmetic.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import fake_broker
from fakes.options_world import Ctx, venue_ctx
from v28quant.broker import Leg, OrderRequest, Owner
from v28quant.execution import Decision, Reservation
from v28quant.journal import Journal
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Book, Held

ET = ZoneInfo("America/New_York")
NOW = datetime(2023, 10, 20, 15, 30, tzinfo=ET)
EXPIRY = date(2023, 10, 20)
CALL_190 = "AAPL231020C00190000"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeAlpacaTrading, Ctx]]:
    """Yield the trading fake at 2023-10-20 15:30 New York and an options context on it."""
    trading = FakeAlpacaTrading(now=NOW).start()
    ctx = venue_ctx(fake_broker(trading.url), tmp_path / "journal.sqlite", NOW, ("AAPL",))
    try:
        yield trading, ctx
    finally:
        ctx.journal.close()
        trading.stop()


def _covered_call(sid: str, opened: datetime, units: int = 1) -> Held:
    return Held(
        sid, "covered_call", "AAPL", EXPIRY, {CALL_190: -1}, units, -2.00, 0.0, opened,
        f"v28-options-covered_call-{sid}", wheel=True,
    )  # fmt: skip


@pytest.mark.asyncio
async def test_an_assignment_settles_every_structure_short_the_contract(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """Two covered calls on the 190C, opened on different days, over the wheel's 200 shares.

    AAPL closes at 195 on expiry day: the venue assigns its 2 short calls in one OPASN of 2
    contracts and calls the 200 shares away. By hand: the book then holds no covered call, the
    wheel no shares, back at its cash stage, one cycle done.
    """
    trading, ctx = world
    trading.positions[CALL_190] = [Decimal(-2), Decimal("2.00")]
    trading.positions["AAPL"] = [Decimal(200), Decimal("180.00")]
    trading.set_close("AAPL", EXPIRY, "195.00")
    book = Book(tmp_path / "book.json")
    w = book.stage("AAPL")
    w.stage, w.shares, w.basis = "covered_call", 200, 180.0
    book.opened(_covered_call("cc-b", datetime(2023, 10, 2, 10, 0, tzinfo=ET)))
    book.opened(_covered_call("cc-a", datetime(2023, 10, 3, 10, 0, tzinfo=ET)))
    book.save()
    trading.advance_to(datetime(2023, 10, 23, 9, 0, tzinfo=ET))
    assert CALL_190 not in trading.positions
    assert "AAPL" not in trading.positions
    (asn,) = [a for a in trading.activities if a["activity_type"] == "OPASN"]
    assert Decimal(asn["qty"]) == 2
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    try:
        await eng._activities(ctx, book)
    finally:
        await ctx.broker.aclose()
    saved = json.loads((tmp_path / "book.json").read_text(encoding="utf-8"))
    assert saved["held"] == {}
    assert saved["wheel"]["AAPL"]["shares"] == 0
    assert (saved["wheel"]["AAPL"]["stage"], saved["wheel"]["AAPL"]["cycles"]) == ("cash", 1)


SHORT_195 = "AAPL231117C00195000"
LONG_200 = "AAPL231117C00200000"


def _active_reservations(journal: Journal, cid: str) -> list[Decimal]:
    db = sqlite3.connect(str(journal.path))
    rows = db.execute(
        "SELECT amount FROM reservations WHERE client_order_id = ? AND released_ts IS NULL",
        (cid,),
    ).fetchall()
    db.close()
    return [Decimal(r[0]) for r in rows]


@pytest.mark.asyncio
async def test_a_structure_trimmed_by_reconcile_holds_collateral_for_the_units_left(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """A bear call of 2 units opened at Alpaca with $800 of collateral ($400 a unit).

    A person closes one unit at the venue; the book is trimmed to the 1 unit held. By hand:
    the collateral still reserved for its opening order is $400, not $800.
    """
    trading, ctx = world
    trading.set_quote("AAPL", "190.00", "190.02")
    trading.set_quote(SHORT_195, "2.00", "2.05")
    trading.set_quote(LONG_200, "0.90", "0.95")
    owner = Owner("options", "bear_call", "open-1")
    legs = [Leg(SHORT_195, 1, "sell", "sell_to_open"), Leg(LONG_200, 1, "buy", "buy_to_open")]
    req = OrderRequest.multileg(legs, 2, "-1.05", owner=owner)
    reserve = Reservation(owner, "cash", None, Decimal(800))
    out = await ctx.executor.place(Decision(req, {"why": "a bear call"}, reserve))
    assert out.status == "filled"
    assert _active_reservations(ctx.journal, req.client_order_id) == [Decimal(800)]
    book = Book(tmp_path / "book.json")
    book.opened(
        Held("bc-1", "bear_call", "AAPL", date(2023, 11, 17), {SHORT_195: -1, LONG_200: 1}, 2,
             -1.05, 400.0, NOW, req.client_order_id)
    )  # fmt: skip
    trading.positions[SHORT_195][0] = Decimal(-1)  # closed at the venue by hand
    trading.positions[LONG_200][0] = Decimal(1)
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    try:
        await eng._reconcile(ctx, book)
    finally:
        await ctx.broker.aclose()
    assert (
        json.loads((tmp_path / "book.json").read_text(encoding="utf-8"))["held"]["bc-1"]["units"]
        == 1
    )
    assert _active_reservations(ctx.journal, req.client_order_id) == [Decimal(400)]


PUT_185 = "AAPL231117P00185000"
PUT_180 = "AAPL231117P00180000"


async def _two_unit_spread(
    trading: FakeAlpacaTrading, ctx: Ctx, tmp_path: Path, strategy: str, short: str, long: str
) -> tuple[Book, str]:
    """Open 2 units of a $5-wide credit spread at 1.05 ($395 a unit reserved); book it."""
    trading.set_quote("AAPL", "190.00", "190.02")
    trading.set_quote(short, "2.00", "2.05")
    trading.set_quote(long, "0.90", "0.95")
    owner = Owner("options", strategy, "open-1")
    legs = [Leg(short, 1, "sell", "sell_to_open"), Leg(long, 1, "buy", "buy_to_open")]
    req = OrderRequest.multileg(legs, 2, "-1.05", owner=owner)
    reserve = Reservation(owner, "cash", None, Decimal(790))
    out = await ctx.executor.place(Decision(req, {"why": f"a {strategy}"}, reserve))
    assert out.status == "filled"
    book = Book(tmp_path / "book.json")
    book.opened(
        Held("s-1", strategy, "AAPL", date(2023, 11, 17), {short: -1, long: 1}, 2, -1.05,
             395.0, NOW, req.client_order_id, leg_entry={short: 2.00, long: 0.95})
    )  # fmt: skip
    return book, req.client_order_id


@pytest.mark.asyncio
async def test_a_bull_put_left_with_its_short_put_reserves_the_puts_collateral(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """A bull put of 2 units whose long 180 puts a person sold at the venue.

    What is left is 2 short 185 puts, each backed by its strike x 100 in cash: by hand
    2 x 185 x 100 = $37,000 reserved for the opening order, not the spread's $790.
    """
    trading, ctx = world
    book, cid = await _two_unit_spread(trading, ctx, tmp_path, "bull_put", PUT_185, PUT_180)
    del trading.positions[PUT_180]  # sold at the venue by hand
    try:
        await OptionsEngine(OptionsConfig.load(None, {}))._reconcile(ctx, book)
    finally:
        await ctx.broker.aclose()
    assert book.held["s-1"].legs == {PUT_185: -1}
    assert _active_reservations(ctx.journal, cid) == [Decimal(37000)]


@pytest.mark.asyncio
async def test_a_bear_call_left_with_its_long_call_frees_its_collateral(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """A bear call of 2 units whose short 195 calls a person bought back at the venue.

    What is left is 2 long 200 calls, paid for already: nothing stays reserved.
    """
    trading, ctx = world
    book, cid = await _two_unit_spread(trading, ctx, tmp_path, "bear_call", SHORT_195, LONG_200)
    del trading.positions[SHORT_195]  # bought back at the venue by hand
    try:
        await OptionsEngine(OptionsConfig.load(None, {}))._reconcile(ctx, book)
    finally:
        await ctx.broker.aclose()
    assert book.held["s-1"].legs == {LONG_200: 1}
    assert _active_reservations(ctx.journal, cid) == []


@pytest.mark.asyncio
async def test_a_bull_put_whose_short_put_is_assigned_early_frees_its_collateral(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """The venue assigns both short 185 puts of a 2-unit bull put early (one OPASN of 2).

    The book keeps the 2 long 180 puts, paid for already: nothing stays reserved for them.
    """
    trading, ctx = world
    book, cid = await _two_unit_spread(trading, ctx, tmp_path, "bull_put", PUT_185, PUT_180)
    del trading.positions[PUT_185]
    trading.positions["AAPL"] = [Decimal(200), Decimal("185.00")]
    assignment = {"date": "2023-10-20", "net_amount": "0", "symbol": PUT_185, "qty": "2"}
    trading._activity({"activity_type": "OPASN", "status": "executed", **assignment}, NOW)
    try:
        await OptionsEngine(OptionsConfig.load(None, {}))._activities(ctx, book)
    finally:
        await ctx.broker.aclose()
    assert book.held["s-1"].legs == {PUT_180: 1}
    assert _active_reservations(ctx.journal, cid) == []


async def _book_activities(ctx: Ctx, book_path: Path) -> Book:
    """One engine cycle's activity step on the book read afresh from its file (a restart)."""
    book = Book(book_path)
    await OptionsEngine(OptionsConfig.load(None, {}))._activities(ctx, book)
    return book


@pytest.mark.asyncio
async def test_an_assignment_posted_late_and_dated_before_the_books_cursor_settles(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """Tuesday night the venue assigns 1 of the 2 short 190 calls early (over 200 shares).

    Wednesday 10:00 the book reads an AAPL fill (its cursor moves there); only then does the
    venue post the OPASN, dated Tuesday (a date, read as Tuesday's close) and listed only after
    that date. By hand: the older covered call is called away, the other stays, the wheel keeps
    100 shares, still short a call against them; read again after two more restarts, the
    assignment settles nothing more.
    """
    await _assigned_after_a_later_fill(
        world, tmp_path, datetime(2023, 10, 18, 10, 0, tzinfo=ET), date(2023, 10, 17)
    )


@pytest.mark.asyncio
async def test_an_assignment_dated_friday_posted_after_a_monday_fill_settles(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """Friday night the venue assigns 1 of the 2 short 190 calls early (over 200 shares).

    Monday 10:00 the book reads an AAPL fill (its cursor moves there); only then does the
    venue post the OPASN, dated Friday (read as Friday's close, 16:00), three days before the
    cursor, over a weekend. By hand: the older covered call is called away, the other stays,
    the wheel keeps 100 shares; read again after a restart, it settles nothing more.
    """
    monday = datetime(2023, 10, 16, 10, 0, tzinfo=ET)
    await _assigned_after_a_later_fill(world, tmp_path, monday, date(2023, 10, 13))


@pytest.mark.asyncio
async def test_the_book_keeps_only_the_seen_ids_a_later_read_can_list_again(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path
) -> None:
    """A fill on Monday 10-09, an OPASN dated Tuesday 10-17, a fill Wednesday 10-18 10:00.

    After the read, the next one starts at Tuesday 00:00 (the day of the session before the
    cursor's): the Monday fill can never be listed again and its id leaves the book file; the
    other two stay. By hand: read again after two restarts (both listed again), the
    assignment settles nothing more: the older covered call called away, the wheel 100 shares.
    """
    trading, ctx = world
    path = tmp_path / "book.json"
    book = Book(path)
    w = book.stage("AAPL")
    w.stage, w.shares, w.basis = "covered_call", 200, 180.0
    book.opened(_covered_call("cc-b", datetime(2023, 10, 2, 10, 0, tzinfo=ET)))
    book.opened(_covered_call("cc-a", datetime(2023, 10, 3, 10, 0, tzinfo=ET)))
    book.save()

    def fill(at: datetime) -> None:
        row = {"transaction_time": at.isoformat(), "symbol": "AAPL", "qty": "1", "side": "buy"}
        trading._activity({"activity_type": "FILL", "price": "190", **row}, at)

    fill(datetime(2023, 10, 9, 10, 0, tzinfo=ET))
    assignment = {"date": "2023-10-17", "net_amount": "0", "symbol": CALL_190, "qty": "1"}
    trading._activity({"activity_type": "OPASN", "status": "executed", **assignment},
                      datetime(2023, 10, 17, 16, 0, tzinfo=ET))  # fmt: skip
    fill(datetime(2023, 10, 18, 10, 0, tzinfo=ET))
    monday, opasn, wednesday = (row["id"] for row in trading.activities)
    trading.positions[CALL_190] = [Decimal(-1), Decimal("2.00")]
    try:
        await _book_activities(ctx, path)
        seen = set(json.loads(path.read_text(encoding="utf-8"))["seen_activities"])
        await _book_activities(ctx, path)
        await _book_activities(ctx, path)
    finally:
        await ctx.broker.aclose()
    assert seen == {opasn, wednesday}, (monday, seen)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert set(saved["seen_activities"]) == {opasn, wednesday}
    assert list(saved["held"]) == ["cc-a"]
    wheel = saved["wheel"]["AAPL"]
    assert (wheel["shares"], wheel["stage"]) == (100, "covered_call")


async def _assigned_after_a_later_fill(
    world: tuple[FakeAlpacaTrading, Ctx], tmp_path: Path, fill_at: datetime, assigned_on: date
) -> None:
    """Two short AAPL 190 calls over 200 wheel shares; a fill at ``fill_at`` read first.

    Then the venue posts an OPASN of one call dated ``assigned_on`` (read as that day's close),
    before the book's cursor; the book reads twice from its file. The older covered call must
    be called away, the other stay, the wheel keep 100 shares.
    """
    trading, ctx = world
    path = tmp_path / "book.json"
    book = Book(path)
    w = book.stage("AAPL")
    w.stage, w.shares, w.basis = "covered_call", 200, 180.0
    book.opened(_covered_call("cc-b", datetime(2023, 10, 2, 10, 0, tzinfo=ET)))
    book.opened(_covered_call("cc-a", datetime(2023, 10, 3, 10, 0, tzinfo=ET)))
    book.save()
    fill = {"transaction_time": fill_at.isoformat(), "symbol": "AAPL", "qty": "1", "side": "buy"}
    trading._activity({"activity_type": "FILL", "price": "190", **fill}, fill_at)
    try:
        assert (await _book_activities(ctx, path)).activity_cursor == fill_at
        trading.positions[CALL_190] = [Decimal(-1), Decimal("2.00")]
        assignment = {
            "date": assigned_on.isoformat(),
            "net_amount": "0",
            "symbol": CALL_190,
            "qty": "1",
        }
        close = datetime.combine(assigned_on, time(16, 0), ET)
        trading._activity({"activity_type": "OPASN", "status": "executed", **assignment}, close)
        await _book_activities(ctx, path)
        await _book_activities(ctx, path)
    finally:
        await ctx.broker.aclose()
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert list(saved["held"]) == ["cc-a"]
    wheel = saved["wheel"]["AAPL"]
    assert (wheel["shares"], wheel["stage"]) == (100, "covered_call")
