"""Broker faults through the runner: a keyed paper ``--once`` against a misbehaving venue.

Each case injects one fault into the loopback fake (alpaca-py's real clients talk to it), runs
the whole runner (reconcile, pre-market, both engines' cycles), and checks with the fakes' own
records: the run ends normally, the venue accepted no client order id twice and holds no order
the journal lacks, the log and a Discord notice say what happened, and a second run once the
venue behaves again trades as usual and still sends nothing twice.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from reliability.keyed_world import (
    SYMBOLS,
    TIMEOUT_S,
    KeyedWorld,
    keyed_world,
    load_bars,
    quote_json,
)
from reliability.tally import FULL

ORDERS = "/v2/orders"
EVERYTHING = r"/v2/.*"
#: Every symbol with history in shared/data: enough orders in one cycle for one fault each.
MANY = ("AAPL", "GLD", "IWM", "JPM", "MSFT", "QQQ", "TLT", "XLE")
#: The full run tries each fault in a run of its own; the bounded one all in one run.
each_alone = pytest.mark.skipif(not FULL, reason="full run only (V28_RELIABILITY_FULL=1)")


def _check_clean(world: KeyedWorld, tally: Counter[str]) -> None:
    dup = world.duplicated()
    lost = world.rows_lost()
    tally["duplicated"] += dup
    tally["rows_lost"] += len(lost)
    assert dup == 0, world.accepted()
    assert lost == [], f"venue orders without a journal row: {lost}"


def _equity_orders(world: KeyedWorld) -> list[str]:
    return [c for c in world.accepted() if c.startswith("v28-equity-")]


@pytest.fixture
def world(shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    with keyed_world(shared_data, monkeypatch, tmp_path) as w:
        yield w


@each_alone
def test_a_429_storm_with_retry_after_is_waited_out(world: KeyedWorld, tally: Counter[str]) -> None:
    # two 429s on each of the first orders: the client waits as told and the orders go through
    world.trading.inject(
        "POST",
        ORDERS,
        429,
        {"message": "too many requests"},
        headers={"Retry-After": "1"},
        times=4,
    )
    world.trading.inject(
        "GET",
        r"/v2/account",
        429,
        {"message": "too many requests"},
        headers={"Retry-After": "1"},
        times=2,
    )
    tally["faults"] += 2
    assert world.run_once() == 0
    assert _equity_orders(world), "no order got through after the storm"
    assert sum(1 for r in world.trading.responses if r[2] == 429) == 6
    _check_clean(world, tally)
    assert "rate" in world.log().lower()


@each_alone
def test_a_500_after_the_order_was_stored_resolves_to_that_order(
    world: KeyedWorld, tally: Counter[str]
) -> None:
    world.trading.inject("POST", ORDERS, 500, {"message": "internal error"}, after_store=True)
    tally["faults"] += 1
    assert world.run_once() == 0
    _check_clean(world, tally)
    first = next(b["client_order_id"] for m, p, b in world.trading.requests if m == "POST")
    # the look-up by client order id found the stored order: it was not POSTed again
    assert world.trading.count("POST", ORDERS) == len(world.trading.orders)
    assert world.journal_statuses()[first] in ("new", "accepted", "filled", "partially_filled")


@each_alone
def test_a_timeout_on_submit_is_looked_up_not_resent(
    world: KeyedWorld, tally: Counter[str]
) -> None:
    # the venue stores the order but answers after the client gave up
    world.trading.inject("POST", ORDERS, 200, delay_s=TIMEOUT_S + 0.5)
    tally["faults"] += 1
    assert world.run_once() == 0
    _check_clean(world, tally)
    assert _equity_orders(world)


@each_alone
@pytest.mark.parametrize(
    ("status", "code", "message", "journaled"),
    [
        (403, 40310000, "insufficient buying power", "rejected"),
        (422, 42210000, "qty must be > 0", "rejected"),
    ],
)
def test_a_refused_order_is_journaled_notified_and_the_rest_trade(
    world: KeyedWorld, tally: Counter[str], status: int, code: int, message: str, journaled: str
) -> None:
    world.trading.inject("POST", ORDERS, status, {"code": code, "message": message})
    tally["faults"] += 1
    assert world.run_once() == 0
    _check_clean(world, tally)
    refused = next(b["client_order_id"] for m, p, b in world.trading.requests if m == "POST")
    assert world.journal_statuses()[refused] == journaled
    assert message in world.log()
    assert message in world.notices()
    assert len(world.trading.orders) >= 1, "one refusal stopped the other orders"


def test_a_venue_down_for_the_whole_run_trades_nothing_then_resumes(
    world: KeyedWorld, tally: Counter[str]
) -> None:
    world.trading.inject(
        "GET", EVERYTHING, 503, "<html>503 Service Unavailable</html>", times=10_000
    )
    world.trading.inject(
        "POST", EVERYTHING, 503, "<html>503 Service Unavailable</html>", times=10_000
    )
    tally["faults"] += 1
    assert world.run_once() == 1  # --once cannot do its cycle: a non-zero exit
    assert world.trading.orders == {}
    log = world.log()
    assert "unavailable" in log.lower() or "unreachable" in log.lower()
    assert world.discord.received, "no notice that the venue is down"
    world.trading.faults.clear()
    assert world.run_once() == 0
    assert _equity_orders(world), "trading did not resume once the venue answered"
    _check_clean(world, tally)


def test_the_venue_going_down_mid_cycle_halts_new_orders(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tally: Counter[str]
) -> None:
    # the first order lands; then order requests time out and look-ups get 503s: the first
    # unanswered order pauses new ones, which are journaled as refused and never sent
    with keyed_world(shared_data, monkeypatch, tmp_path, MANY) as world:
        t = world.trading
        t.inject("POST", ORDERS, 200, times=1)
        t.inject("POST", ORDERS, 503, "<html>503</html>", times=10_000)
        t.inject("GET", r"/v2/orders:by_client_order_id", 503, "<html>503</html>", times=10_000)
        tally["faults"] += 1
        assert world.run_once() == 0
        _check_clean(world, tally)
        statuses = world.journal_statuses()
        paused = [c for c, s in statuses.items() if s == "refused"]
        assert paused, f"no order was held back: {statuses}"
        posted = {b["client_order_id"] for m, p, b in t.requests if m == "POST" and p == ORDERS}
        assert not posted & set(paused), "an order refused for the outage was sent"
        assert "new orders paused" in world.log()
        assert "new orders paused" in world.notices()


@each_alone
def test_a_silent_market_data_feed_trades_nothing_and_says_why(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tally: Counter[str]
) -> None:
    bars, quotes = load_bars(shared_data, SYMBOLS)
    # the feed stopped an hour ago: every latest quote it still serves is from then
    quotes = {s: quote_json(q["bp"], t="2024-06-03T13:30:00Z") for s, q in quotes.items()}
    tally["faults"] += 1
    with keyed_world(shared_data, monkeypatch, tmp_path, SYMBOLS, bars, quotes) as world:
        assert world.run_once() == 0
        assert _equity_orders(world) == []
        log = world.log()
        assert all(f"{s} skipped this cycle: stale quote" in log for s in SYMBOLS)


def test_every_order_fault_in_one_run(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tally: Counter[str]
) -> None:
    # successive order requests meet: a 429 storm, a 500 after the order was stored, a 403
    # buying power, a 422 reject, a timeout (stored after the client gave up); later ones pass
    with keyed_world(shared_data, monkeypatch, tmp_path, MANY) as world:
        t = world.trading
        t.inject(
            "POST",
            ORDERS,
            429,
            {"message": "too many requests"},
            headers={"Retry-After": "1"},
            times=2,
        )
        t.inject("POST", ORDERS, 500, {"message": "internal error"}, after_store=True)
        t.inject("POST", ORDERS, 403, {"code": 40310000, "message": "insufficient buying power"})
        t.inject("POST", ORDERS, 422, {"code": 42210000, "message": "qty must be > 0"})
        # last: its late-landing first attempt may meet the resend (the venue keeps one)
        t.inject("POST", ORDERS, 200, delay_s=TIMEOUT_S + 0.5)
        tally["faults"] += 5
        assert world.run_once() == 0
        spent = [f for f in t.faults if f.times > 0]
        assert spent == [], f"the cycle placed too few orders to meet every fault: {spent}"
        _check_clean(world, tally)
        statuses = Counter(world.journal_statuses().values())
        assert statuses["rejected"] == 2, statuses
        notices = world.notices()
        assert "insufficient buying power" in notices
        assert "qty must be > 0" in notices
        # nothing left unsettled: the 500 and the timeout resolved to the stored orders
        assert statuses["unknown"] == 0, statuses
        # a restart resends nothing: every client order id accepted once over both runs
        assert world.run_once() == 0
        _check_clean(world, tally)
