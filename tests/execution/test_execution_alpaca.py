"""Executor through the real alpaca-py client against the loopback fake: failures and crashes.

Each case ends the same way: exactly one order at the venue, and the journal's row for it names
the venue's order id and status.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import v28quant
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.crash_child import KEY, SECRET, decision
from fakes.fixtures import OPEN, FakeTime, until
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.execution import Decision, Executor, JournalLock, JournalLocked
from v28quant.journal import Journal
from v28quant.reconcile import reconcile

BP_403 = {"code": 40310000, "message": "insufficient buying power"}


def make(fake: FakeAlpacaTrading, ft: FakeTime | None = None, **kw: Any) -> AlpacaBroker:
    ft = ft or FakeTime()
    lim = RateLimiter(rate=10_000, burst=1000, now=ft.now, sleep=ft.sleep)
    kw.setdefault("backoff_s", 0.0)
    return AlpacaBroker(KEY, SECRET, url=fake.url, limiter=lim, **kw)


def buy(qty: int, d: str) -> Decision:
    return Decision(OrderRequest.equity("SPY", qty, "buy", owner=Owner("equity", "trend", d)), {})


def one_order_agreeing(fake: FakeAlpacaTrading, journal: Journal, cid: str) -> dict[str, Any]:
    """Exactly one venue order under ``cid``, and the journal's row names it and its status."""
    venue = [o for o in fake.orders.values() if o["client_order_id"] == cid]
    assert len(venue) == 1, fake.orders
    row = journal.order_by_client_id(cid)
    assert row is not None
    assert (row["broker_order_id"], row["status"]) == (venue[0]["id"], venue[0]["status"])
    return venue[0]


@pytest.mark.asyncio
async def test_timeout_after_store_is_settled_by_lookup(fake: FakeAlpacaTrading, tmp_path: Path):
    """The venue stores the order and its answer never arrives in time."""
    answer = threading.Event()
    fake.inject("POST", "/v2/orders", 200, after_store=True, hold=answer)
    journal = Journal(tmp_path / "j.sqlite")
    ex = Executor(make(fake, timeout_s=0.5), journal)
    try:
        out = await ex.place(buy(4, "timeout"))
    finally:
        answer.set()
    assert out.status == "filled", out
    assert [(f.qty, f.price) for f in out.fills] == [(D(4), D("530.10"))]
    one_order_agreeing(fake, journal, out.client_order_id)
    assert fake.count("POST", "/v2/orders") == 1
    assert journal.last_positions() == {"SPY": D(4)}


@pytest.mark.asyncio
async def test_500_after_store_is_settled_by_lookup(fake: FakeAlpacaTrading, tmp_path: Path):
    fake.inject("POST", "/v2/orders", 500, {"message": "internal"}, after_store=True)
    journal = Journal(tmp_path / "j.sqlite")
    out = await Executor(make(fake), journal).place(buy(3, "five-hundred"))
    assert out.status == "filled"
    one_order_agreeing(fake, journal, out.client_order_id)
    assert fake.count("POST", "/v2/orders") == 1


@pytest.mark.asyncio
async def test_429_storm_waits_then_places_once(fake: FakeAlpacaTrading, tmp_path: Path):
    """A 429 storm is waited out; one that outlasts every attempt leaves the order unknown.

    Two 429s with a reset 5 s ahead: the limiter waits them out (simulated time), then one
    POST goes through. A storm that outlasts every attempt leaves the order ``unknown`` (never
    ``rejected``); ``sync`` finds nothing at the venue and marks it ``not_sent``; placing the
    same decision again sends it once.
    """
    ft = FakeTime()
    reset = {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(int(ft.t) + 5)}
    fake.inject("POST", "/v2/orders", 429, {"message": "too many requests"}, headers=reset, times=2)
    journal = Journal(tmp_path / "j.sqlite")
    ex = Executor(make(fake, ft), journal)
    out = await ex.place(buy(1, "storm"))
    assert out.status == "filled"
    assert sum(ft.slept) >= 5.0, ft.slept
    one_order_agreeing(fake, journal, out.client_order_id)

    fake.inject("POST", "/v2/orders", 429, {"message": "too many requests"}, times=3)
    second = await ex.place(buy(2, "storm-2"))
    assert second.status == "unknown"
    assert second.reason
    assert "429" in second.reason
    row = journal.order_by_client_id(second.client_order_id)
    assert row is not None
    assert row["status"] == "unknown"
    settled = await ex.sync()
    assert [(o.client_order_id, o.status) for o in settled] == [
        (second.client_order_id, "not_sent")
    ]
    again = await ex.place(buy(2, "storm-2"))
    assert again.status == "filled"
    one_order_agreeing(fake, journal, again.client_order_id)


@pytest.mark.asyncio
async def test_403_after_an_ambiguous_attempt_is_not_a_rejection(
    fake: FakeAlpacaTrading, tmp_path: Path
):
    """A refusal after an ambiguous attempt resolves to the order that landed.

    Attempt 1 is stored, answered 500; the look-up lags (404); attempt 2 is refused for
    buying power. The executor reports the order the first attempt placed.
    """
    fake.inject("POST", "/v2/orders", 500, {"message": "boom"}, after_store=True)
    fake.inject("GET", "/v2/orders:by_client_order_id", 404, {"message": "order not found"})
    fake.inject("POST", "/v2/orders", 403, BP_403)
    journal = Journal(tmp_path / "j.sqlite")
    out = await Executor(make(fake), journal).place(buy(5, "amb"))
    assert out.status == "filled"
    one_order_agreeing(fake, journal, out.client_order_id)


@pytest.mark.asyncio
async def test_403_after_ambiguity_with_nothing_found_stays_unknown_until_lookup(
    fake: FakeAlpacaTrading, tmp_path: Path
):
    fake.inject("POST", "/v2/orders", 503, {"message": "busy"})
    fake.inject("POST", "/v2/orders", 403, BP_403)
    journal = Journal(tmp_path / "j.sqlite")
    ex = Executor(make(fake), journal)
    out = await ex.place(buy(5, "amb2"))
    assert out.status == "unknown"
    assert "insufficient buying power" in (out.reason or "")
    row = journal.order_by_client_id(out.client_order_id)
    assert row is not None
    assert row["status"] == "unknown"
    assert [o.status for o in await ex.sync()] == ["not_sent"]


@pytest.mark.asyncio
async def test_first_attempt_403_is_rejected_and_never_retried(
    fake: FakeAlpacaTrading, tmp_path: Path
):
    fake.inject("POST", "/v2/orders", 403, BP_403)
    journal = Journal(tmp_path / "j.sqlite")
    ex = Executor(make(fake), journal)
    d = buy(5, "definite")
    assert (await ex.place(d)).status == "rejected"
    assert (await ex.place(d)).status == "rejected"
    assert fake.count("POST", "/v2/orders") == 1
    assert fake.orders == {}


@pytest.mark.asyncio
async def test_a_place_cancelled_while_the_venue_holds_the_submit_journals_the_order(
    fake: FakeAlpacaTrading, tmp_path: Path
):
    """A cycle cancelled at its time limit in the middle of a submit.

    The venue holds the order request; the task placing it is cancelled; then the venue stores
    the order and answers. The journal's row names that order and its status: never an order
    at the venue that the journal knows only as an intent.
    """
    answer = threading.Event()
    fake.inject("POST", "/v2/orders", 200, hold=answer)
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    d = buy(6, "cancelled")
    cid = d.request.client_order_id
    placing = asyncio.ensure_future(Executor(make(fake, timeout_s=30.0), journal).place(d))
    try:
        await until(lambda: fake.count("POST", "/v2/orders") == 1, "the order was never sent")
        placing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await placing
    finally:
        answer.set()
    await until(lambda: len(fake.orders) == 1, "the venue never stored the order")

    def journaled_venue_id() -> bool:
        with sqlite3.connect(path) as db:
            row = db.execute(
                "SELECT broker_order_id FROM orders WHERE client_order_id = ?", (cid,)
            ).fetchone()
        return row is not None and row[0] is not None

    await until(journaled_venue_id, "the order at the venue is not in the journal")
    assert one_order_agreeing(fake, journal, cid)["status"] == "filled"


@pytest.mark.asyncio
async def test_a_replace_cancelled_while_the_venue_holds_it_is_journaled_as_the_venue_has_it(
    fake: FakeAlpacaTrading, tmp_path: Path
):
    """A cycle cancelled at its time limit in the middle of a replace (a walked limit order).

    The venue holds the replace; the task replacing is cancelled; the next slot's look-up
    (``sync``) comes while the request is still in flight; then the venue takes it. The
    journal must end with the replacement as the venue holds it: never one working at the
    venue that the journal calls not sent.
    """
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    executor = Executor(make(fake, timeout_s=30.0), journal)
    owner = Owner("equity", "trend", "walked")
    resting = OrderRequest.equity("SPY", 3, "buy", "limit", "520.00", owner=owner)
    await executor.place(Decision(resting, {}))
    cid = resting.client_order_id
    answer = threading.Event()
    fake.inject("PATCH", "/v2/orders/.+", 200, hold=answer)
    replacing = asyncio.ensure_future(executor.replace(cid, reason="walk", limit_price=D("521")))
    try:
        await until(lambda: fake.count("PATCH", "/v2/orders/.+") == 1, "no replace was sent")
        replacing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await replacing
        await executor.sync()  # the next slot's look-up, the replace still in flight
        assert f"{cid}-r1" in executor.sending()  # the next walk leaves it be
    finally:
        answer.set()
    new_cid = f"{cid}-r1"
    await until(
        lambda: any(o["client_order_id"] == new_cid for o in fake.orders.values()),
        "the venue never took the replacement",
    )
    for _ in range(100):
        row = journal.order_by_client_id(new_cid)
        if row is not None and row["broker_order_id"] is not None:
            break
        await asyncio.sleep(0.02)
    await executor.sync()
    assert one_order_agreeing(fake, journal, new_cid)["status"] == "new"


# ---------------------------------------------------------------- crashes


def start_child(
    fake: FakeAlpacaTrading, path: Path, mode: str, stderr: int | None = None
) -> subprocess.Popen[str]:
    here = Path(__file__).resolve().parents[1] / "fakes"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(v28quant.__file__).parents[1]), str(here)])
    return subprocess.Popen(
        [sys.executable, str(here / "crash_child.py"), fake.url, str(path), mode],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )


def wait_line(child: subprocess.Popen[str], want: str) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip() == want:
            return
    raise AssertionError(f"child exited (rc={child.wait()}) before printing {want}")


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL


async def restart(fake: FakeAlpacaTrading, path: Path) -> tuple[Journal, Executor, Any]:
    """Restart as a runner does: take the lock, open the journal, reconcile."""
    JournalLock(path).acquire()  # the killed holder's lock went with it
    journal = Journal(path)
    ex = Executor(make(fake), journal)
    report = await reconcile(journal, ex.broker)
    return journal, ex, report


@pytest.mark.asyncio
async def test_sigkill_between_intent_and_submit(fake: FakeAlpacaTrading, tmp_path: Path):
    """Killed between intent and submit: the restart sends the order once.

    Killed after journaling the intent, before a byte left: the restart finds no order at
    the venue, marks the intent ``not_sent`` and sends it once. A second instance started
    while the first runs is refused, naming the holder's pid.
    """
    path = tmp_path / "j.sqlite"
    child = start_child(fake, path, "before_submit")
    try:
        wait_line(child, "LOCKED")
        with pytest.raises(JournalLocked, match=rf"in use by process {child.pid}") as held:
            JournalLock(path).acquire()
        assert held.value.holder_pid == child.pid
        second = start_child(fake, path, "second", stderr=subprocess.PIPE)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 1
        assert f"in use by process {child.pid}" in err
        assert "LOCKED" not in out
        wait_line(child, "SUBMITTING")
    finally:
        kill(child)
    assert fake.count("POST", "/v2/orders") == 0
    journal, ex, report = await restart(fake, path)
    assert report.ok, report.reason
    assert [d["kind"] for d in report.differences] == ["intent_never_submitted"]
    out = await ex.place(decision())
    assert out.status == "filled"
    one_order_agreeing(fake, journal, out.client_order_id)
    assert fake.count("POST", "/v2/orders") == 1


@pytest.mark.asyncio
async def test_sigkill_between_submit_and_acknowledgement(fake: FakeAlpacaTrading, tmp_path: Path):
    """Killed between submit and acknowledgement: the restart sends nothing more.

    Killed after the venue stored the order, before its answer arrived: the restart's
    reconcile finds it by client order id, and placing the decision again sends nothing.
    """
    path = tmp_path / "j.sqlite"
    answer = threading.Event()
    fake.inject("POST", "/v2/orders", 200, after_store=True, hold=answer)
    child = start_child(fake, path, "place")
    try:
        wait_line(child, "LOCKED")
        deadline = time.monotonic() + 60  # bounds the wait for the child's POST; not a timing
        while not fake.orders and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.orders, "the child's POST never reached the venue"
    finally:
        kill(child)
        answer.set()
    journal, ex, report = await restart(fake, path)
    assert report.ok, report.reason
    assert [d["kind"] for d in report.differences] == ["order_changed", "position_explained"]
    out = await ex.place(decision())
    assert out.status == "filled"
    venue = one_order_agreeing(fake, journal, out.client_order_id)
    assert fake.count("POST", "/v2/orders") == 1
    assert [(f.qty, f.price) for f in out.fills] == [(D(7), D(venue["filled_avg_price"]))]
    assert journal.last_positions() == {"SPY": D(7)}


@pytest.mark.asyncio
async def test_fill_posted_late_is_journaled_under_its_order_by_reconcile(
    fake: FakeAlpacaTrading, tmp_path: Path
):
    """A fill the venue posts after the executor journaled its order filled keeps its order.

    The activities list is empty when the order fills (Alpaca posts activities late), so the
    executor journals the order ``filled`` and leaves its fill for later; the process stops.
    Reconcile on restart journals the fill: under the order's client order id (read back with
    sqlite3), so the round trips credit it to its engine.
    """
    fake.inject("GET", "/v2/account/activities", 200, [])
    journal = Journal(tmp_path / "j.sqlite")
    out = await Executor(make(fake), journal).place(buy(2, "late-fill"))
    assert out.status == "filled", out
    assert out.fills == ()
    journal.close()

    journal = Journal(tmp_path / "j.sqlite")
    report = await reconcile(journal, make(fake))
    assert report.ok, report.reason
    journal.close()
    con = sqlite3.connect(tmp_path / "j.sqlite")
    rows = con.execute("SELECT client_order_id, symbol, qty, side FROM fills").fetchall()
    con.close()
    assert rows == [(out.client_order_id, "SPY", "2", "buy")], rows


@pytest.mark.asyncio
async def test_duplicate_id_the_look_up_misses_is_unknown_not_rejected(
    fake: FakeAlpacaTrading, tmp_path: Path
):
    """A 422 "client_order_id must be unique" says the venue holds the order: never a rejection.

    The process died after its POST landed (the journal holds the intent). On restart the same
    decision is placed again: the venue answers 422 for the id it holds, and the look-up that
    follows lags (404). The order exists, so its outcome is ``unknown`` until a look-up settles
    it, never a definite ``rejected`` that nothing looks at again.
    """
    decision = buy(3, "landed-before-crash")
    req = decision.request
    journal = Journal(tmp_path / "j.sqlite")
    journal.record_order_intent(
        req.client_order_id, "equity", "trend", "landed-before-crash", req.to_dict(), OPEN
    )
    await make(fake).submit(req)  # the POST that landed before the crash
    fake.inject("GET", "/v2/orders:by_client_order_id", 404, {"message": "order not found"})
    ex = Executor(make(fake), journal)
    out = await ex.place(decision)
    assert out.status == "unknown", out
    assert fake.count("POST", "/v2/orders") == 2  # the landed one and the refused repeat
    await ex.sync()
    one_order_agreeing(fake, journal, req.client_order_id)
