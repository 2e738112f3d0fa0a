"""reconcile(journal, broker).

What happened while we were down is journaled; what cannot be explained stops trading (fail closed).

Scenarios follow the restart failures the trading anchors list (research/trading_anchors.md §2
items 5-7: orders filled or cancelled during downtime, lost orders, phantom positions) and
Alpaca's option events (OPEXC/OPASN/OPEXP + OPTRD, research/alpaca.md §3.6). The broker is the
in-process SimBroker (same protocol as AlpacaBroker, see test_broker_contract.py), except for the
unreachable-broker case, which uses AlpacaBroker against a closed port.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from datetime import UTC, date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from fakes.fixtures import OPEN, StaticQuotes
from v28quant.broker import OrderRequest, OrderStatus, Owner
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.broker.sim import SimBroker, SimConfig
from v28quant.clock import SimClock
from v28quant.execution import Executor
from v28quant.journal import Journal
from v28quant.reconcile import reconcile

C535 = "SPY240607C00535000"
P520 = "SPY240607P00520000"


@pytest.fixture
def venue():
    clock = SimClock(OPEN)
    q = StaticQuotes(clock)
    q.set("SPY", "530.00", "530.10")
    q.set(C535, "2.05", "2.15")
    q.set(P520, "3.00", "3.10")
    return clock, q, SimBroker(q, clock, SimConfig(cash=D(200_000)))


async def place(journal, broker, clock, req: OrderRequest):
    """Do what the runner does: journal the intent, submit, journal the acknowledgement."""
    o = req.owner
    journal.record_order_intent(
        req.client_order_id, o.engine, o.strategy, o.decision_id, req.to_dict(), clock.now()
    )
    ack = await broker.submit(req)
    journal.record_order_update(
        ack.client_order_id,
        ack.id,
        ack.status.value,
        ack.filled_qty,
        ack.filled_avg_price,
        ack.to_dict(),
        clock.now(),
    )
    return ack


def kinds(report) -> list[str]:
    return sorted(d["kind"] for d in report.differences)


async def test_new_journal_rebuilds_positions_from_activities(journal, venue):
    clock, _q, b = venue
    await b.submit(OrderRequest.equity("SPY", 10, "buy", owner=Owner("equity", "t", "x")))
    rep = await reconcile(journal, b, clock)
    assert rep.ok, rep
    assert kinds(rep) == ["position_explained"], rep
    assert journal.last_positions() == {"SPY": D(10)}
    again = await reconcile(journal, b, clock)
    assert again.ok, again
    assert again.differences == (), again


async def test_crash_while_journaling_activities_leaves_no_half_batch(journal, venue):
    # A failure injected (SQLite trigger) into the position-snapshot write, after the new
    # activities and fills were written in the same transaction, must leave none of them:
    # activities seen without their snapshot would make every later reconcile fail with
    # position_mismatch. Independent check: raw sqlite3 row counts.
    import sqlite3

    clock, _q, b = venue
    await b.submit(OrderRequest.equity("SPY", 10, "buy", owner=Owner("equity", "t", "x")))
    con = sqlite3.connect(str(journal.path))
    con.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON position_snapshots "
        "BEGIN SELECT RAISE(ABORT, 'injected crash'); END"
    )
    con.commit()
    with pytest.raises(sqlite3.IntegrityError, match="injected crash"):
        await reconcile(journal, b, clock)
    counts = [
        con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("activities", "fills", "position_snapshots")
    ]
    assert counts == [0, 0, 0], counts
    con.execute("DROP TRIGGER boom")
    con.commit()
    con.close()
    # the restart after the crash reconciles cleanly from the same activities
    rep = await reconcile(journal, b, clock)
    assert rep.ok, rep
    assert kinds(rep) == ["position_explained"], rep
    assert journal.last_positions() == {"SPY": D(10)}
    assert len(journal.seen_activity_ids()) == 1


async def test_fill_during_downtime_is_journaled(journal, venue):
    clock, q, b = venue

    async def go():
        await reconcile(journal, b, clock)
        ack = await place(
            journal,
            b,
            clock,
            OrderRequest.equity(
                "SPY", 5, "buy", "limit", D("529"), owner=Owner("equity", "trend", "d1")
            ),
        )
        assert ack.status == OrderStatus.NEW
        # -- process stops; the market comes down to our limit --
        q.set("SPY", "528.90", "528.95")
        clock.set(datetime(2024, 6, 3, 15, 0, tzinfo=UTC))
        return ack, await reconcile(journal, b, clock)

    ack, rep = await go()
    assert rep.ok, rep.reason
    assert kinds(rep) == ["order_changed", "position_explained"], rep.differences
    row = journal.order_by_client_id(ack.client_order_id)
    assert row["status"] == "filled"
    assert row["filled_qty"] == D(5)
    assert journal.last_positions() == {"SPY": D(5)}
    assert len(journal.seen_activity_ids()) == 1


async def test_cancel_during_downtime_and_intent_never_sent(journal, venue):
    clock, _q, b = venue

    async def go():
        await reconcile(journal, b, clock)
        ack = await place(
            journal,
            b,
            clock,
            OrderRequest.equity(
                "SPY", 1, "buy", "limit", D("500"), owner=Owner("equity", "trend", "c1")
            ),
        )
        await b.cancel(ack.id)  # e.g. canceled by hand on the dashboard
        lost = OrderRequest.equity("SPY", 1, "buy", owner=Owner("equity", "trend", "c2"))
        journal.record_order_intent(
            lost.client_order_id, "equity", "trend", "c2", lost.to_dict(), clock.now()
        )  # crash before the POST
        return ack, lost, await reconcile(journal, b, clock)

    ack, lost, rep = await go()
    assert rep.ok, rep.reason
    assert kinds(rep) == ["intent_never_submitted", "order_changed"]
    assert journal.order_by_client_id(ack.client_order_id)["status"] == "canceled"
    assert journal.order_by_client_id(lost.client_order_id)["status"] == "not_sent"
    assert journal.open_orders() == []


async def test_acknowledged_order_missing_at_broker_fails_closed(journal, venue):
    clock, _q, b = venue
    await reconcile(journal, b, clock)
    journal.record_order_intent(
        "v28-equity-trend-0123456789ab", "equity", "trend", "gone", {"kind": "equity"}, clock.now()
    )
    journal.record_order_update(
        "v28-equity-trend-0123456789ab",
        "3f1c0000-0000-4000-8000-000000000001",
        "new",
        D(0),
        None,
        {},
        clock.now(),
    )
    rep = await reconcile(journal, b, clock)
    assert not rep.ok, rep
    assert "own_order_missing" in rep.reason, rep


async def test_unknown_own_order_fails_closed_and_foreign_is_reported(journal, venue):
    clock, _q, b = venue

    async def go():
        await reconcile(journal, b, clock)
        # An order with our id pattern that the journal never saw (another instance?).
        await b.submit(
            OrderRequest.equity(
                "SPY", 1, "buy", "limit", D("500"), owner=Owner("options", "wheel", "ghost")
            )
        )
        return await reconcile(journal, b, clock)

    rep = await go()
    assert not rep.ok
    assert "unknown_own_order" in rep.reason
    assert rep.fatal[0]["engine"] == "options"
    assert rep.fatal[0]["strategy"] == "wheel"


async def test_replacement_while_down_is_adopted(journal, venue):
    clock, _q, b = venue

    async def go():
        await reconcile(journal, b, clock)
        ack = await place(
            journal,
            b,
            clock,
            OrderRequest.equity(
                "SPY", 1, "buy", "limit", D("500"), owner=Owner("equity", "trend", "r1")
            ),
        )
        new = await b.replace(ack.id, limit_price=D("510"))  # journal never told
        return ack, new, await reconcile(journal, b, clock)

    _ack, new, rep = await go()
    assert rep.ok, rep.reason
    assert kinds(rep) == ["order_changed", "replacement_adopted"]
    assert journal.order_by_client_id(new.client_order_id)["status"] == "new"


async def test_expiry_and_assignment_while_down_explain_positions(journal, venue):
    clock, q, b = venue

    async def go():
        for req in [
            OrderRequest.equity("SPY", 100, "buy", owner=Owner("equity", "wheel", "s")),
            OrderRequest.option(
                C535, 1, "sell", "sell_to_open", owner=Owner("options", "wheel", "cc")
            ),
            OrderRequest.option(
                P520, 1, "sell", "sell_to_open", owner=Owner("options", "wheel", "csp")
            ),
        ]:
            await place(journal, b, clock, req)
        rep0 = await reconcile(journal, b, clock)
        assert rep0.ok
        # Down over expiry Friday: SPY closes at 518, the put is assigned, the call expires.
        q.set_close("SPY", date(2024, 6, 7), "518.00")
        clock.set(datetime(2024, 6, 10, 13, 35, tzinfo=UTC))
        return await reconcile(journal, b, clock)

    rep = await go()
    assert rep.ok, rep.reason
    by_sym = {d["symbol"]: d for d in rep.differences if d["kind"] == "position_explained"}
    assert set(by_sym) == {"SPY", C535, P520}, rep.differences
    assert any(x.startswith("OPASN:") for x in by_sym[P520]["activities"])
    assert any(x.startswith("OPEXP:") for x in by_sym[C535]["activities"])
    assert journal.last_positions() == {"SPY": D(200)}


async def test_unexplained_position_difference_fails_closed(journal, venue):
    clock, _q, b = venue
    await b.submit(OrderRequest.equity("SPY", 10, "buy", owner=Owner("equity", "t", "x")))
    await reconcile(journal, b, clock)
    journal.record_positions([{"symbol": "SPY", "qty": D(100)}], clock.now())  # wrong belief
    rep = await reconcile(journal, b, clock)
    assert not rep.ok
    assert "position_mismatch" in rep.reason
    assert rep.fatal[0]["broker"] == "10"
    assert rep.fatal[0]["expected"] == "100"
    assert journal.last_positions() == {"SPY": D(100)}  # not overwritten
    # The operator checks the account and adopts the broker's positions explicitly.
    rep = await reconcile(journal, b, clock, adopt_positions=True)
    assert rep.ok
    assert kinds(rep) == ["position_adopted"]
    assert journal.last_positions() == {"SPY": D(10)}
    assert (await reconcile(journal, b, clock)).ok


async def test_unreachable_broker_fails_closed(journal):
    b = AlpacaBroker(
        "k", "s", url="http://127.0.0.1:9", timeout_s=0.5, backoff_s=0.0, max_attempts=1
    )
    rep = await reconcile(journal, b)
    assert not rep.ok
    assert "broker_unreachable" in rep.reason


async def test_failed_reconcile_is_posted_to_discord(journal):
    """Announce a failed reconcile on Discord.

    Fail closed is also announced: the loopback Discord receiver gets one error notice that
    names the reason.
    """
    from fakes.discord import FakeDiscord
    from v28quant.notify import DiscordNotifier

    b = AlpacaBroker(
        "k", "s", url="http://127.0.0.1:9", timeout_s=0.5, backoff_s=0.0, max_attempts=1
    )

    async def go(url):
        n = DiscordNotifier(url, min_interval=0.0)
        rep = await reconcile(journal, b, notifier=n)
        await n.aclose()
        return rep

    with FakeDiscord() as discord:
        rep = await go(discord.webhook_url)
        assert not rep.ok
        posted = " ".join(str(m) for m in discord.received)
    assert "reconcile" in posted, discord.received
    assert "broker_unreachable" in posted, discord.received


async def test_activities_are_fetched_since_the_last_seen_one(journal, venue):
    """Fetch only the activities since the last journaled one.

    The second reconcile asks only for activities from the day of the session before the last
    journaled one (the documented overlap), not the whole history; a fill in between is still
    picked up.
    """
    clock, _q, b = venue
    asked: list = []
    fetch = b.activities

    async def spy(since=None):
        asked.append(since)
        return await fetch(since)

    b.activities = spy

    async def go():
        await b.submit(OrderRequest.equity("SPY", 10, "buy", owner=Owner("equity", "t", "a")))
        first = await reconcile(journal, b, clock)
        clock.set(datetime(2024, 6, 4, 14, 0, tzinfo=UTC))  # next day, 10:00 New York
        await b.submit(OrderRequest.equity("SPY", 5, "buy", owner=Owner("equity", "t", "b")))
        second = await reconcile(journal, b, clock)
        return first, second

    first, second = await go()
    assert first.ok, (first, second)
    assert second.ok, (first, second)
    assert asked[0] is None
    # the first fill was at OPEN, a Monday: read from the day of the session before (Friday)
    assert asked[1] == datetime(2024, 5, 31, tzinfo=ZoneInfo("America/New_York")), asked
    assert journal.last_activity_ts() == datetime(2024, 6, 4, 14, 0, tzinfo=UTC)
    assert journal.last_positions() == {"SPY": D(15)}


@pytest.mark.parametrize("fault", ["500", "timeout"])
async def test_broker_outage_keeps_the_intent_and_raises_a_domain_error(tmp_path, fault):
    """Keep the intent through a broker outage and raise a domain error.

    During an outage (every POST and look-up answers 500, or hangs past the client's
    timeout) submit raises BrokerUnavailable, a BrokerError the engine catches; the intent row
    journaled before it is on disk (a fresh connection sees it); once the venue is back,
    reconcile explains it (a 500 never stored the order; a hung POST did, late) and the same
    decision resubmitted gives exactly one order.
    """
    from fakes.alpaca_trading import FakeAlpacaTrading
    from v28quant.alpaca.ratelimit import RateLimiter
    from v28quant.broker import BrokerError, BrokerUnavailable

    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    fake = FakeAlpacaTrading(now=OPEN).start()
    fake.set_quote("SPY", "530.00", "530.10")
    # A hung venue holds every request until the test releases it (no sleep races the timeout).
    hung = threading.Event()
    kw = (
        {"hold": hung, "status": 200}
        if fault == "timeout"
        else {"status": 500, "body": {"message": "internal server error"}}
    )
    fake.inject("POST", "/v2/orders", times=3, **kw)
    fake.inject("GET", "/v2/orders:by_client_order_id", times=10, **kw)
    b = AlpacaBroker(
        "k",
        "s",
        url=fake.url,
        timeout_s=0.5,
        backoff_s=0.0,
        max_attempts=2,
        limiter=RateLimiter(rate=10_000, burst=1000),
    )
    clock = SimClock(OPEN)
    req = OrderRequest.equity("SPY", 3, "buy", owner=Owner("equity", "trend", f"out-{fault}"))
    try:
        with pytest.raises(BrokerUnavailable) as ei:
            await place(journal, b, clock, req)
        assert isinstance(ei.value, BrokerError)
        with Journal(path) as other:  # another connection: the row is committed
            row = other.order_by_client_id(req.client_order_id)
            assert row is not None, row
            assert row["status"] == "intent", row
        fake.faults.clear()
        hung.set()
        if fault == "timeout":  # the held POSTs land late: wait for the venue to answer them
            deadline = time.monotonic() + 30.0
            while (
                fake.count("POST", "/v2/orders")
                > sum(1 for r in fake.responses if r[:2] == ("POST", "/v2/orders"))
                and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            assert len(fake.orders) == 1, fake.orders
        rep = await reconcile(journal, b, clock)
        want = "order_changed" if fault == "timeout" else "intent_never_submitted"
        assert rep.ok, rep
        assert want in kinds(rep), rep
        o = await b.submit(req)
        again = await b.submit(req)
        assert o.id == again.id
        assert o.status == OrderStatus.FILLED
        assert (
            sum(1 for x in fake.orders.values() if x["client_order_id"] == req.client_order_id) == 1
        )
    finally:
        hung.set()
        await b.aclose()
        fake.stop()
        journal.close()


async def test_an_order_journaled_not_sent_that_lands_and_fills_later_is_tied_back(
    journal, venue, tmp_path
):
    # A look-up that lagged the venue journals an order not_sent (its reservation released);
    # the POST then lands and fills. The next reconcile must find it under its client order
    # id, journal the fill under it (not under no order) and stop trading until a person has
    # looked: the engine believed it had no such position.
    clock, _q, b = venue

    async def go():
        await reconcile(journal, b, clock)
        late = OrderRequest.equity("SPY", 2, "buy", owner=Owner("equity", "trend", "late"))
        journal.record_order_intent(
            late.client_order_id, "equity", "trend", "late", late.to_dict(), clock.now()
        )
        first = await reconcile(journal, b, clock)  # the venue has none yet: not_sent
        ack = await b.submit(late)  # the POST lands after all and fills
        return late, ack, first, await reconcile(journal, b, clock)

    late, ack, first, rep = await go()
    assert kinds(first) == ["intent_never_submitted"]
    row = journal.order_by_client_id(late.client_order_id)
    assert (row["status"], row["broker_order_id"], row["filled_qty"]) == ("filled", ack.id, D(2))
    with closing(sqlite3.connect(tmp_path / "journal.sqlite")) as db:
        fills = db.execute("SELECT client_order_id, qty FROM fills WHERE symbol = 'SPY'").fetchall()
    assert [(cid, D(qty)) for cid, qty in fills] == [(late.client_order_id, D(2))]
    assert not rep.ok
    assert [d["kind"] for d in rep.fatal] == ["not_sent_reached_venue"], rep
    assert journal.last_positions() == {"SPY": D(2)}  # the fill still explains the position


async def test_an_order_journaled_not_sent_that_lands_unfilled_is_journaled_not_fatal(
    journal, venue
):
    clock, _q, b = venue

    async def go():
        await reconcile(journal, b, clock)
        late = OrderRequest.equity(
            "SPY", 2, "buy", "limit", D("500"), owner=Owner("equity", "trend", "late")
        )
        journal.record_order_intent(
            late.client_order_id, "equity", "trend", "late", late.to_dict(), clock.now()
        )
        await reconcile(journal, b, clock)
        ack = await b.submit(late)
        await b.cancel(ack.id)
        return late, await reconcile(journal, b, clock)

    late, rep = await go()
    assert rep.ok, rep.reason
    assert kinds(rep) == ["not_sent_reached_venue"]
    assert journal.order_by_client_id(late.client_order_id)["status"] == "canceled"


@pytest.mark.parametrize("reader", ["reconcile", "executor"])
async def test_an_assignment_dated_friday_posted_after_a_monday_fill_is_read(tmp_path, reader):
    """Alpaca posts an option event dated Friday only after a Monday fill was journaled.

    The loopback fake lists a short call sold Thursday and 200 AAPL shares, then a Monday
    10:00 fill of 1 share: the first reconcile journals them (its last activity: Monday 10:00).
    Then the venue posts an OPASN dated Friday (read as Friday's close) with its OPTRD of -100
    shares. By hand: the call is gone and 101 shares are left, which the journal explains only
    if the next reader (a reconcile, or the executor's settling) reads back over the weekend to
    Friday.
    """
    from fakes.alpaca_trading import FakeAlpacaTrading
    from fakes.fixtures import fake_broker

    et = ZoneInfo("America/New_York")
    monday = datetime(2023, 10, 16, 10, 0, tzinfo=et)
    thursday = datetime(2023, 10, 12, 10, 0, tzinfo=et)
    friday_close = datetime(2023, 10, 13, 16, 0, tzinfo=et)
    call = "AAPL231020C00190000"
    fake = FakeAlpacaTrading(now=monday).start()
    b = fake_broker(fake.url)
    journal = Journal(tmp_path / "journal.sqlite")

    def fill(symbol: str, qty: str, side: str, price: str, at: datetime) -> None:
        row = {"transaction_time": at.isoformat(), "symbol": symbol, "qty": qty, "side": side}
        fake._activity({"activity_type": "FILL", "price": price, **row}, at)

    try:
        fill("AAPL", "200", "buy", "180", thursday)
        fill(call, "1", "sell", "2.00", thursday)
        fill("AAPL", "1", "buy", "190", monday)
        fake.positions["AAPL"] = [D(201), D("180.05")]
        fake.positions[call] = [D(-1), D("2.00")]
        first = await reconcile(journal, b, SimClock(monday))
        assert first.ok, first
        assert journal.last_activity_ts() == monday
        settled = {"date": "2023-10-13", "net_amount": "0", "status": "executed"}
        fake._activity({"activity_type": "OPASN", "symbol": call, "qty": "1", **settled},
                       friday_close)  # fmt: skip
        fake._activity({"activity_type": "OPTRD", "symbol": "AAPL", "qty": "-100",
                        "price": "190", **settled}, friday_close)  # fmt: skip
        fake.positions.pop(call)
        fake.positions["AAPL"] = [D(101), D("180.05")]
        later = SimClock(monday.replace(hour=11))
        if reader == "reconcile":
            second = await reconcile(journal, b, later)
            assert second.ok, second
        else:
            await Executor(b, journal, clock=later).sync()
    finally:
        await b.aclose()
        fake.stop()
    with closing(sqlite3.connect(tmp_path / "journal.sqlite")) as db:
        kinds_read = [k for (k,) in db.execute("SELECT activity_type FROM activities")]
    assert sorted(kinds_read) == ["FILL", "FILL", "FILL", "OPASN", "OPTRD"], kinds_read
    assert journal.last_positions() == {"AAPL": D(101)}
    journal.close()
