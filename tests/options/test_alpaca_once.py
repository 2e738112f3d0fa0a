"""One options cycle against the loopback Alpaca fakes with the real alpaca-py clients.

The venue's clock stands at 2023-09-14 15:30 New York; the data fake serves the real Cboe SPY
chain of that day as Alpaca option snapshots and the real SPY daily bars. With the threshold
at 0 the engine opens one SPY structure: one POST of one ``mleg`` order, every leg in it.

Crashes around an order (entry, close, roll): the process dies before or after the send, is
restarted from its book file and journal, and must send nothing twice and hold what the fake
holds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.alpaca_data import (
    FakeAlpacaData,
    bars_from_csv,
    contracts_from_snapshots,
    snapshots_from_csv,
)
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.options_world import Ctx, RecordingNotifier, Threshold
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.clock import SimClock
from v28quant.data.alpaca import AlpacaData
from v28quant.execution import Executor
from v28quant.journal import Journal
from v28quant.options.config import OptionsConfig
from v28quant.options.context import OptionsCycle
from v28quant.options.engine import OptionsEngine
from v28quant.signals import RegimeState

ET = ZoneInfo("America/New_York")
NOW = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
KEY, SECRET = "PKTESTKEY", "test-secret-value"


@pytest.fixture
def fakes(shared_data: Path) -> Iterator[tuple[FakeAlpacaTrading, FakeAlpacaData]]:
    """Serve the 2023-09-14 SPY chain and bars from the trading and data fakes."""
    snaps = snapshots_from_csv(shared_data / "options" / "SPY_2023-09-14_cboe.csv")
    bars = bars_from_csv(shared_data / "equities/yahoo_raw_2019_2023/SPY.csv", end="2023-09-14")
    trading = FakeAlpacaTrading(now=NOW).start()
    # the trading fake lists (and values for buying power) the contracts it has quotes for
    for sym, snap in snaps["SPY"].items():
        q = snap["latestQuote"]
        trading.set_quote(sym, str(q["bp"]), str(q["ap"]))
    trading.set_quote("SPY", "450.80", "450.82")
    try:
        with FakeAlpacaData(
            bars={"SPY": bars},
            option_snapshots=snaps,
            contracts=contracts_from_snapshots(snaps),
            now=NOW,
        ) as data:
            yield trading, data
    finally:
        trading.stop()


def _world(
    tmp_path: Path, trading: FakeAlpacaTrading, data: FakeAlpacaData
) -> tuple[Ctx, AlpacaBroker, AlpacaData]:
    """Return an options context on the fakes at ``NOW`` (the executor notifies as the runner's)."""
    limiter = RateLimiter(rate=60_000, burst=1000)
    broker = AlpacaBroker(KEY, SECRET, url=trading.url, limiter=limiter, backoff_s=0.0)
    feed = AlpacaData(
        KEY, SECRET, data_url=data.url, trading_url=data.url, now=lambda: NOW, limiter=limiter
    )
    clock = SimClock(NOW)
    journal = Journal(tmp_path / "journal.sqlite")
    notifier = RecordingNotifier()
    regime = RegimeState("sideways", {"sideways": 1.0}, "test", NOW)
    executor = Executor(broker, journal, clock=clock, notifier=notifier)
    ctx = Ctx(
        "paper",
        clock,
        broker,
        feed,
        journal,
        executor,
        None,
        notifier,
        ("SPY",),
        Threshold(0.0),
        regime,
    )
    return ctx, broker, feed


@pytest.mark.asyncio
async def test_once_opens_a_spy_structure_as_one_order(
    tmp_path: Path, fakes: tuple[FakeAlpacaTrading, FakeAlpacaData]
) -> None:
    """Premarket + one cycle at the venue's time place exactly one multi-leg order."""
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    try:
        eng = OptionsEngine()
        await eng.premarket(ctx)
        report = await eng.cycle(ctx)
    finally:
        await broker.aclose()
        await feed.aclose()
    assert report.orders == 1
    posts = [r for r in trading.requests if r[0] == "POST" and r[1] == "/v2/orders"]
    assert len(posts) == 1
    body = posts[0][2]
    assert body["order_class"] == "mleg"
    assert len(body["legs"]) == 4
    assert str(body["client_order_id"]).startswith("v28-options-iron_condor-")
    (order,) = trading.orders.values()
    assert order["order_class"] == "mleg"
    assert {leg["symbol"] for leg in order["legs"]} == {leg["symbol"] for leg in body["legs"]}
    assert all(leg["symbol"].startswith("SPY23") for leg in body["legs"])


@pytest.mark.slow
def test_runner_once_opens_a_spy_structure_as_one_order(
    tmp_path: Path,
    fakes: tuple[FakeAlpacaTrading, FakeAlpacaData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``run_v28_production.py --mode paper --once`` at the venue's 2023-09-14 15:30.

    With ``[paper] min_confidence = 0`` the options engine opens one SPY structure as one
    ``mleg`` order, through the real alpaca-py clients, whatever the equity engine does.
    """
    from v28quant.runner_setup import build_and_run

    trading, data = fakes
    for var, value in (
        ("APCA_API_KEY_ID", KEY),
        ("APCA_API_SECRET_KEY", SECRET),
        ("APCA_API_BASE_URL", trading.url),
        ("APCA_API_DATA_URL", data.url),
    ):
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("V28_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    # whatever regime the pre-market job finds, the table row is an iron condor, and one
    # condor (max loss about $1,840) fits the limit for any regime risk multiplier above 0.19
    labels = ("default", "bull_quiet", "sideways", "bear_volatile", "crisis")
    rows = "".join(f'{x} = ["iron_condor"]\n' for x in labels)
    cfg = tmp_path / "v28.toml"
    cfg.write_text(
        "[paper]\nmin_confidence = 0.0\n\n[options]\nmax_loss_per_structure = 10000.0\n\n"
        f"[options.strategies]\n{rows}",
        "utf-8",
    )
    code = build_and_run(
        [
            "--mode",
            "paper",
            "--once",
            "--universe",
            "SPY",
            "--config",
            str(cfg),
            "--journal",
            str(tmp_path / "journal.sqlite"),
        ]
    )
    assert code == 0
    posts = [
        r[2]
        for r in trading.requests
        if r[0] == "POST"
        and r[1] == "/v2/orders"
        and str(r[2].get("client_order_id", "")).startswith("v28-options-")
    ]
    assert len(posts) == 1
    assert posts[0]["order_class"] == "mleg"
    assert len(posts[0]["legs"]) == 4


def _order_posts(trading: FakeAlpacaTrading) -> list[dict[str, Any]]:
    """Return the bodies of the orders the fake received, in order."""
    return [r[2] for r in trading.requests if r[:2] == ("POST", "/v2/orders")]


def _journal_rows(tmp_path: Path, action: str) -> list[dict[str, Any]]:
    """Read the options engine's decisions of ``action`` straight from the SQLite file."""
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        rows = db.execute(
            "SELECT reasoning FROM decisions WHERE engine = 'options' AND action = ?", (action,)
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


@pytest.mark.asyncio
async def test_a_refusal_for_the_options_level_stops_opening_for_the_session(
    tmp_path: Path, fakes: tuple[FakeAlpacaTrading, FakeAlpacaData]
) -> None:
    """Alpaca answers 403 to the first opening order: no second one goes out that session.

    The account read level 3 at pre-market and lost its approval during the session (the
    fake now refuses every option order). Of two cycles only the first sends an order; the
    refusal is journaled once with Alpaca's message and notified once, and the second
    cycle's report says why it opens nothing. The next session, approved again, opens.
    """
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    eng = OptionsEngine()
    try:
        await eng.premarket(ctx)
        trading.options_level = 0
        await eng.cycle(ctx)
        after_first = list(ctx.notifier.notices)
        ctx.clock.advance(timedelta(minutes=5))
        second = await eng.cycle(ctx)
        (refused,) = _order_posts(trading)
        answers = [r[2] for r in trading.responses if r[:2] == ("POST", "/v2/orders")]
        assert answers == [403]
        (paused,) = _journal_rows(tmp_path, "opening_paused")
        assert "not eligible" in paused["reason"]
        assert ctx.notifier.notices == after_first  # the second cycle notified nothing
        assert sum("until the next session" in n for n in after_first) == 1
        # one notice for the refusal: the engine's, not the executor's generic one as well
        assert [n for n in after_first if "not eligible" in n] == [
            f"OPTIONS: no opening orders until the next session: {paused['reason']}"
        ], after_first
        assert "not eligible" in (second.note or "")
        assert second.orders == 0
        # the next session: approval came back overnight
        nxt = datetime(2023, 9, 15, 10, 0, tzinfo=ET)
        trading.options_level = 3
        trading.advance_to(nxt)
        ctx.clock.set(nxt)
        await eng.premarket(ctx)
        third = await eng.cycle(ctx)
    finally:
        await broker.aclose()
        await feed.aclose()
        ctx.journal.close()
    assert third.orders == 1
    posts = _order_posts(trading)
    assert len(posts) == 2
    assert posts[0] is refused
    answers = [r[2] for r in trading.responses if r[:2] == ("POST", "/v2/orders")]
    assert answers[1] == 200


@pytest.mark.asyncio
async def test_a_level_one_account_is_offered_no_spreads(
    tmp_path: Path, fakes: tuple[FakeAlpacaTrading, FakeAlpacaData]
) -> None:
    """Options level 1 (covered calls, cash-secured puts): the pre-market read skips spreads.

    The sideways row is iron condor, cash-secured put, debit vertical: the condor and the
    vertical are never sent (no 403 from Alpaca), the skip is journaled once with the level,
    and the cash-secured put goes out as one single-leg sell to open.
    """
    trading, data = fakes
    trading.options_level = 1
    ctx, broker, feed = _world(tmp_path, trading, data)
    eng = OptionsEngine()
    try:
        await eng.premarket(ctx)
        report = await eng.cycle(ctx)
    finally:
        await broker.aclose()
        await feed.aclose()
        ctx.journal.close()
    (level,) = _journal_rows(tmp_path, "options_level")
    assert level["options_level"] == 1
    assert {"iron_condor", "bull_put", "bear_call", "bull_call", "bear_put"} == set(
        level["skipped"]
    )
    assert sorted(level["allowed"]) == ["cash_secured_put", "covered_call"]
    assert sum("options level 1" in n for n in ctx.notifier.notices) == 1
    assert 403 not in [r[2] for r in trading.responses]
    (post,) = _order_posts(trading)
    assert post.get("order_class") != "mleg"
    assert (post["side"], post["position_intent"]) == ("sell", "sell_to_open")
    assert post["symbol"][9] == "P"  # SPY230929P...: a put
    assert report.orders == 1


@pytest.mark.asyncio
async def test_a_crash_after_the_entry_leaves_the_order_in_the_saved_book(
    tmp_path: Path,
    fakes: tuple[FakeAlpacaTrading, FakeAlpacaData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies right after the entry, before the cycle's own save (a SIGKILL, an OOM).

    The book file, read with json, must already name the order Alpaca received; an engine
    restarted from that file follows it to its fill and holds the condor, leg for leg as
    the POST asked (buy +1, sell -1 per unit).
    """
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    path = tmp_path / "book.json"
    entered = OptionsEngine._enter

    async def enter_then_die(self: OptionsEngine, *args: Any) -> None:
        await entered(self, *args)
        raise SystemExit("killed after the entry")  # nothing of the cycle runs after this

    monkeypatch.setattr(OptionsEngine, "_enter", enter_then_die)
    try:
        eng = OptionsEngine(book_path=path)
        await eng.premarket(ctx)
        with pytest.raises(SystemExit):
            await eng.cycle(ctx)
        monkeypatch.undo()
        (post,) = [r[2] for r in trading.requests if r[0] == "POST" and r[1] == "/v2/orders"]
        saved = json.loads(path.read_text("utf-8"))
        assert list(saved["pending"]) == [post["client_order_id"]]
        # the condor fills while the engine is down: every sell at 10.00, every buy at 0.01
        for leg in post["legs"]:
            px = "10.00" if leg["side"] == "sell" else "0.01"
            trading.set_quote(leg["symbol"], px, px)
        trading.process()
        again = OptionsEngine(book_path=path)
        book = again._book_of(ctx)
        await again._pending(ctx, book, {}, OptionsCycle("options", NOW))
    finally:
        await broker.aclose()
        await feed.aclose()
        ctx.journal.close()
    (held,) = book.held.values()
    asked = {
        leg["symbol"]: (1 if leg["side"] == "buy" else -1) * int(leg["ratio_qty"])
        for leg in post["legs"]
    }
    assert (held.legs, held.units) == (asked, int(post["qty"]))
    assert held.client_order_id == post["client_order_id"]
    assert not book.pending


@pytest.mark.asyncio
async def test_a_crash_between_the_submit_and_the_book_save_opens_nothing_twice(
    tmp_path: Path,
    fakes: tuple[FakeAlpacaTrading, FakeAlpacaData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies once Alpaca has answered the entry and the journal holds the order.

    Nothing after the execution service's answer runs: the book's own save of the order is
    lost with the process. Restarted five minutes later (another decision time, so another
    client order id for a second entry), the engine must follow the one order to its fill and
    hold the condor: one opening POST in all, the fake's option positions the book's legs
    times its units, and the order's cash reservation still held by the journal.
    """
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    path = tmp_path / "book.json"
    send = ctx.executor.place

    async def place_then_die(*args: Any, **kwargs: Any) -> Any:
        await send(*args, **kwargs)
        raise SystemExit("killed once the order is journaled")

    try:
        eng = OptionsEngine(book_path=path)
        await eng.premarket(ctx)
        await _cycle_killed(eng, ctx, monkeypatch, place_then_die)
        (post,) = _order_posts(trading)
        cid = post["client_order_id"]
        with sqlite3.connect(tmp_path / "journal.sqlite") as db:
            (status,) = db.execute(
                "SELECT status FROM orders WHERE client_order_id = ?", (cid,)
            ).fetchone()
        assert status in ("new", "accepted")  # journaled as the venue answered it
        for leg in post["legs"]:  # the condor fills while the engine is down
            px = "10.00" if leg["side"] == "sell" else "0.01"
            trading.set_quote(leg["symbol"], px, px)
        trading.process()
        again = await _restarted(ctx, path)
        reserved = ctx.journal.reservations()
    finally:
        await broker.aclose()
        await feed.aclose()
        ctx.journal.close()
    opening = [
        p
        for p in _order_posts(trading)
        if all(g["position_intent"].endswith("open") for g in p["legs"])
    ]
    assert [p["client_order_id"] for p in opening] == [cid]
    assert again.book is not None
    (held,) = again.book.held.values()
    assert held.client_order_id == cid
    options = {s: int(q) for s, (q, _) in trading.positions.items() if len(s) > 6}
    assert {s: q * held.units for s, q in held.legs.items()} == options
    assert [r["client_order_id"] for r in reserved] == [cid]


@pytest.mark.asyncio
async def test_a_crash_before_the_send_leaves_a_pending_order_the_restart_drops(
    tmp_path: Path,
    fakes: tuple[FakeAlpacaTrading, FakeAlpacaData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The book names the entry, then the process dies before the journal or Alpaca sees it.

    The restart finds no journal row and no order at the venue: the pending order is dropped
    (no look-up error every cycle) and the engine decides afresh, sending one order in all.
    """
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    path = tmp_path / "book.json"

    async def die(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("killed before the send")

    try:
        eng = OptionsEngine(book_path=path)
        await eng.premarket(ctx)
        await _cycle_killed(eng, ctx, monkeypatch, die)
        (named,) = json.loads(path.read_text("utf-8"))["pending"]
        assert _order_posts(trading) == []
        again = await _restarted(ctx, path)
    finally:
        await broker.aclose()
        await feed.aclose()
        ctx.journal.close()
    (post,) = _order_posts(trading)
    assert again.book is not None
    assert list(again.book.pending) == [post["client_order_id"]]
    assert named not in again.book.pending
    assert not [n for n in ctx.notifier.notices if n.startswith("ERROR")]


def _die_after(ctx: Ctx, decision: str) -> Callable[..., Awaitable[Any]]:
    """Return a ``place`` that kills the process once it sent an order of that decision id."""
    send = ctx.executor.place

    async def place_then_die(d: Any, *args: Any, **kwargs: Any) -> Any:
        out = await send(d, *args, **kwargs)
        if d.request.owner.decision_id.startswith(decision):
            raise SystemExit(f"killed once the {decision} order is journaled")
        return out

    return place_then_die


async def _cycle_killed(
    eng: OptionsEngine,
    ctx: Ctx,
    monkeypatch: pytest.MonkeyPatch,
    place: Callable[..., Awaitable[Any]],
) -> None:
    """Run one cycle with ``place`` standing in for the executor's: it kills the process."""
    monkeypatch.setattr(ctx.executor, "place", place)
    with pytest.raises(SystemExit):
        await eng.cycle(ctx)
    monkeypatch.undo()


async def _restarted(ctx: Ctx, path: Path, cfg: OptionsConfig | None = None) -> OptionsEngine:
    """Five minutes later, a new engine on the saved book: its pre-market job and one cycle."""
    ctx.clock.advance(timedelta(minutes=5))
    again = OptionsEngine(cfg, book_path=path)
    await again.premarket(ctx)
    await again.cycle(ctx)
    return again


def _posts_with(trading: FakeAlpacaTrading, intent: str) -> list[dict[str, Any]]:
    """Return the order POSTs with a leg whose position intent ends with ``intent``."""
    return [
        p
        for p in _order_posts(trading)
        if any(g["position_intent"].endswith(intent) for g in p["legs"])
    ]


def _option_positions(trading: FakeAlpacaTrading) -> dict[str, int]:
    return {s: int(q) for s, (q, _) in trading.positions.items() if len(s) > 6 and q != 0}


@pytest.mark.asyncio
async def test_a_crash_between_a_close_and_the_book_save_closes_once(
    tmp_path: Path,
    fakes: tuple[FakeAlpacaTrading, FakeAlpacaData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies once Alpaca has answered a closing order: the restart closes once.

    The condor fills at a credit the chain makes a take profit. Restarted five minutes later,
    the engine follows that order (no second close); once it fills, the book holds no
    structure, the fake holds no option, and the condor's cash reservation is released (the
    only one left is that of the next entry, still resting).
    """
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    path = tmp_path / "book.json"
    try:
        eng = OptionsEngine(book_path=path)
        await eng.premarket(ctx)
        await eng.cycle(ctx)
        (entry,) = _order_posts(trading)
        for leg in entry["legs"]:
            px = "10.00" if leg["side"] == "sell" else "0.01"
            trading.set_quote(leg["symbol"], px, px)
        trading.process()
        ctx.clock.advance(timedelta(minutes=5))
        await _cycle_killed(eng, ctx, monkeypatch, _die_after(ctx, "close:"))
        (close,) = _posts_with(trading, "close")
        again = await _restarted(ctx, path)
        for leg in close["legs"]:  # the close fills at a debit of 0
            trading.set_quote(leg["symbol"], "0.05", "0.05")
        trading.process()
        ctx.clock.advance(timedelta(minutes=5))
        await again.cycle(ctx)
        reserved = ctx.journal.reservations()
    finally:
        await broker.aclose()
        await feed.aclose()
        ctx.journal.close()
    assert [p["client_order_id"] for p in _posts_with(trading, "close")] == [
        close["client_order_id"]
    ]
    assert again.book is not None
    assert again.book.held == {}
    assert [p.kind for p in again.book.pending.values()] == ["open"]
    assert _option_positions(trading) == {}
    assert [r["client_order_id"] for r in reserved] == list(again.book.pending)


@pytest.mark.asyncio
async def test_a_crash_between_a_roll_and_the_book_save_rolls_once(
    tmp_path: Path,
    fakes: tuple[FakeAlpacaTrading, FakeAlpacaData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies once Alpaca has answered a roll: the restart rolls once.

    The condor fills near its mid; a tested side rolls (loose roll rules). Restarted five
    minutes later, the engine follows that roll (no second one); once it fills, the book's
    structures are the fake's option positions leg for leg, and each holds its own reservation.
    """
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    path = tmp_path / "book.json"
    exits = {"roll_dte": 45, "roll_delta": 0.2, "max_rolls": 1}
    cfg = OptionsConfig.load(None, {"exits": exits})
    mid = {s: (b + a) / 2 for s, (b, a, _, _) in trading.quotes.items()}

    def fill_near_mid(order: dict[str, Any]) -> None:
        for leg in order["legs"]:  # 5 cents better than the mid on every leg
            px = mid[leg["symbol"]] + (
                Decimal("0.05") if leg["side"] == "sell" else -Decimal("0.05")
            )
            trading.set_quote(leg["symbol"], str(px), str(px))
        trading.process()

    try:
        eng = OptionsEngine(cfg, book_path=path)
        await eng.premarket(ctx)
        await eng.cycle(ctx)
        (entry,) = _order_posts(trading)
        fill_near_mid(entry)
        ctx.clock.advance(timedelta(minutes=5))
        await _cycle_killed(eng, ctx, monkeypatch, _die_after(ctx, "roll:"))
        (roll,) = _posts_with(trading, "close")
        again = await _restarted(ctx, path, cfg)
        fill_near_mid(roll)
        ctx.clock.advance(timedelta(minutes=5))
        await again.cycle(ctx)
        reserved = ctx.journal.reservations()
    finally:
        await broker.aclose()
        await feed.aclose()
        ctx.journal.close()
    assert [p["client_order_id"] for p in _posts_with(trading, "close")] == [
        roll["client_order_id"]
    ]
    assert again.book is not None
    assert again.book.pending == {}
    book: dict[str, int] = {}
    for h in again.book.held.values():
        for s, q in h.legs.items():
            book[s] = book.get(s, 0) + q * h.units
    assert book == _option_positions(trading)
    assert sorted(h.rolls for h in again.book.held.values()) == [1, 1]
    assert {r["client_order_id"] for r in reserved} == {
        h.client_order_id for h in again.book.held.values()
    }


@pytest.mark.asyncio
async def test_a_resting_order_the_lost_book_does_not_know_is_cancelled_on_restart(
    tmp_path: Path, fakes: tuple[FakeAlpacaTrading, FakeAlpacaData]
) -> None:
    """The book file is lost while the engine's entry rests at Alpaca: the restart cancels it.

    Nothing would walk or cancel an order the book does not know, and its fill would hold
    contracts no structure manages. The fake receives one DELETE of that order, the journal
    holds the cancel with its reason, and one notice names the order.
    """
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    path = tmp_path / "book.json"
    try:
        first = OptionsEngine(book_path=path)
        await first.premarket(ctx)
        assert (await first.cycle(ctx)).orders == 1
        (cid,) = json.loads(path.read_text(encoding="utf-8"))["pending"]
        (resting,) = [o for o in trading.orders.values() if o["client_order_id"] == cid]
        assert resting["status"] == "new", resting["status"]  # at the mid: it rests
        path.unlink()
        ctx.clock.advance(timedelta(minutes=5))
        await OptionsEngine(book_path=path).premarket(ctx)
    finally:
        await broker.aclose()
        await feed.aclose()
    deletes = [url for method, url, _ in trading.requests if method == "DELETE"]
    assert deletes == [f"/v2/orders/{resting['id']}"]
    assert resting["status"] == "canceled"
    db = sqlite3.connect(str(tmp_path / "journal.sqlite"))
    events = db.execute(
        "SELECT json_extract(raw, '$.reason') FROM order_events "
        "WHERE client_order_id = ? AND status = 'cancel_requested'",
        (cid,),
    ).fetchall()
    status = db.execute("SELECT status FROM orders WHERE client_order_id = ?", (cid,)).fetchone()
    db.close()
    assert events == [("not in the options book",)]
    assert status == ("canceled",)
    named = [n for n in ctx.notifier.notices if cid in n]
    assert len(named) == 1, ctx.notifier.notices
    assert "not in the options book" in named[0], named


def _limits_sent(trading: FakeAlpacaTrading) -> list[str]:
    """Return the limit of the entry's POST and of every PATCH, in the order Alpaca got them."""
    return [
        str(body["limit_price"])
        for method, url, body in trading.requests
        if (method, url) == ("POST", "/v2/orders") or method == "PATCH"
    ]


@pytest.mark.asyncio
async def test_a_crash_after_a_walk_reached_alpaca_walks_on_from_its_rung(
    tmp_path: Path,
    fakes: tuple[FakeAlpacaTrading, FakeAlpacaData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies once Alpaca has answered a walk's PATCH, before anything recorded it.

    The condor rests at the mid, -3.87, on the ladder -3.87, -3.86, -3.85; the walk's PATCH
    leaves ``-r1`` resting at -3.86 while the book still names the first order on rung 0.
    Restarted five minutes later (the pre-market job at once, then a cycle), the engine keeps
    ``-r1`` (no DELETE) and walks it on to -3.85: each limit Alpaca receives is a new rung, none
    sent twice, and the book names the one order working there.
    """
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    path = tmp_path / "book.json"
    patch = broker.replace

    class Killed(BaseException):
        """The process dying in the walk's send (a SystemExit there would end the event loop).

        The send runs in a task of its own: only the loop, not the cycle awaiting it, would
        see a SystemExit raised in it.
        """

    async def patch_then_die(*args: Any, **kwargs: Any) -> Any:
        await patch(*args, **kwargs)
        raise Killed("killed once Alpaca answered the PATCH")

    try:
        eng = OptionsEngine(book_path=path)
        await eng.premarket(ctx)
        await eng.cycle(ctx)
        (entry,) = json.loads(path.read_text("utf-8"))["pending"].values()
        ctx.clock.advance(timedelta(minutes=5))
        monkeypatch.setattr(broker, "replace", patch_then_die)
        with pytest.raises(Killed):
            await eng.cycle(ctx)
        monkeypatch.undo()
        assert json.loads(path.read_text("utf-8"))["pending"] == {entry["client_order_id"]: entry}
        again = await _restarted(ctx, path)
    finally:
        await broker.aclose()
        await feed.aclose()
        ctx.journal.close()
    assert entry["ladder"] == ["-3.87", "-3.86", "-3.85"]
    assert _limits_sent(trading) == entry["ladder"]
    assert [method for method, _, _ in trading.requests if method == "DELETE"] == []
    working = [o for o in trading.orders.values() if o["status"] != "replaced"]
    assert [(o["client_order_id"], o["limit_price"]) for o in working] == [
        (entry["client_order_id"] + "-r2", "-3.85")
    ]
    assert again.book is not None
    assert list(again.book.pending) == [entry["client_order_id"] + "-r2"]


@pytest.mark.asyncio
async def test_a_crash_after_a_walked_fill_is_booked_holds_it_once_and_announces_it_once(
    tmp_path: Path,
    fakes: tuple[FakeAlpacaTrading, FakeAlpacaData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The walked condor fills; the process dies once the cycle booked it, before its save.

    The restart must hold the condor leg for leg as the fake's option positions, open nothing
    again (one opening POST in all), and send the fill's notice to Discord once in all: a
    second notice reads as a second condor.
    """
    trading, data = fakes
    ctx, broker, feed = _world(tmp_path, trading, data)
    path = tmp_path / "book.json"

    async def die(*args: Any) -> None:
        raise SystemExit("killed once the fill is booked")

    try:
        eng = OptionsEngine(book_path=path)
        await eng.premarket(ctx)
        await eng.cycle(ctx)
        (entry,) = _order_posts(trading)
        ctx.clock.advance(timedelta(minutes=5))
        await eng.cycle(ctx)  # walked one rung: -r1 rests
        (walked,) = json.loads(path.read_text("utf-8"))["pending"]
        for leg in entry["legs"]:  # -r1 fills: every sell at 10.00, every buy at 0.01
            px = "10.00" if leg["side"] == "sell" else "0.01"
            trading.set_quote(leg["symbol"], px, px)
        trading.process()
        ctx.clock.advance(timedelta(minutes=5))
        monkeypatch.setattr(OptionsEngine, "_reconcile", die)  # the step after the fill's
        with pytest.raises(SystemExit):
            await eng.cycle(ctx)
        monkeypatch.undo()
        again = await _restarted(ctx, path)
    finally:
        await broker.aclose()
        await feed.aclose()
        ctx.journal.close()
    assert walked == entry["client_order_id"] + "-r1"
    assert [p["client_order_id"] for p in _posts_with(trading, "open")] == [
        entry["client_order_id"]
    ]
    assert again.book is not None
    (held,) = again.book.held.values()
    assert held.client_order_id == walked
    assert {s: q * held.units for s, q in held.legs.items()} == _option_positions(trading)
    fills = [n for n in ctx.notifier.notices if n.startswith("FILL") and walked in n]
    assert len(fills) == 1, fills
