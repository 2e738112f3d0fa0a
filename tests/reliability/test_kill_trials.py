"""Crash consistency: SIGKILL a process placing orders at a random moment, restart, reconcile.

Each trial: a child process (``crash_orders.py``) places ``ORDERS`` decisions through the
Executor with the real alpaca-py client against the loopback fake, the fake slowing each order
(before or after storing it, alternating by trial) so kills land between journal intent and
submit, between submit and acknowledgement, and inside journal writes; the test kills it after a
random delay (seeded, printed), restarts as the runner does (lock, journal, reconcile) and places
the same decisions again. Independent references: the fake's own request log and order book
(one venue order per decision, none POSTed twice), SQLite's ``PRAGMA integrity_check``, and the
child's own ``PLACED`` lines (a row acknowledged before the kill is still in the journal).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import v28quant
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN
from reliability.crash_orders import KEY, SECRET, decisions
from reliability.tally import FULL
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.execution import Executor, JournalLock
from v28quant.journal import Journal
from v28quant.reconcile import reconcile

TRIALS = 20 if FULL else 3
ORDERS = 5
SEED = int(os.environ.get("V28_RELIABILITY_SEED", "20240603"))


def _child(url: str, path: Path, out: Path) -> subprocess.Popen[bytes]:
    here = Path(__file__).resolve().parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(v28quant.__file__).parents[1]), str(here)])
    with out.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, str(here / "crash_orders.py"), url, str(path), str(ORDERS)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _wait_for(out: Path, word: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # bounds the child's start-up; not a timing assertion
    while word not in out.read_text(errors="replace"):
        assert child.poll() is None, out.read_text(errors="replace")[-2000:]
        assert time.monotonic() < deadline, "child never started"
        time.sleep(0.02)


@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.asyncio
async def test_kill_at_a_random_moment_then_restart(
    trial: int, tmp_path: Path, tally: Counter[str]
) -> None:
    rng = random.Random(SEED + trial)
    fake = FakeAlpacaTrading(now=OPEN).start()
    try:
        fake.set_quote("SPY", "530.00", "530.10")
        after_store = trial % 2 == 1
        fake.inject("POST", "/v2/orders", 200, times=ORDERS, after_store=after_store, delay_s=0.15)
        tally["faults"] += 1
        path, out = tmp_path / "j.sqlite", tmp_path / "child.out"
        child = _child(fake.url, path, out)
        try:
            _wait_for(out, "LOCKED", child)
            time.sleep(rng.uniform(0.0, 0.25 * ORDERS))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
        tally["trials"] += 1
        acked = [ln.split()[1] for ln in out.read_text().splitlines() if ln.startswith("PLACED")]
        print(f"trial {trial} seed {SEED + trial}: killed after {len(acked)} acknowledged")

        db = sqlite3.connect(str(path))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        # Restarted at once: a request the dead process had in flight may land at the venue
        # while reconcile reads it, which must still see one consistent book.
        JournalLock(path).acquire()  # the killed holder's lock died with it
        journal = Journal(path)
        lost = [cid for cid in acked if journal.order_by_client_id(cid) is None]
        tally["rows_lost"] += len(lost)
        assert lost == [], f"acknowledged rows missing after the kill: {lost}"
        broker = AlpacaBroker(KEY, SECRET, url=fake.url, timeout_s=60.0, backoff_s=0.0)
        ex = Executor(broker, journal)
        report = await reconcile(journal, broker)
        assert report.ok, report.reason
        for d in decisions(ORDERS):
            await ex.place(d)

        # A POST still in flight at the kill may land after the restart re-sent its decision:
        # the venue refuses the second one (its client order id is taken), so what counts is
        # how often each id was accepted.
        posted = Counter(
            b["client_order_id"]
            for m, p, status, b in fake.responses
            if m == "POST" and p == "/v2/orders" and status < 300
        )
        per_decision = Counter(int(Decimal(o["qty"])) for o in fake.orders.values())
        dup = sum(n - 1 for n in posted.values() if n > 1)
        dup += sum(n - 1 for n in per_decision.values() if n > 1)
        tally["duplicated"] += dup
        assert dup == 0, (posted, per_decision)
        assert sorted(per_decision) == list(range(1, ORDERS + 1))
        missing = 0
        for o in fake.orders.values():
            row = journal.order_by_client_id(o["client_order_id"])
            if row is None:
                missing += 1
                continue
            assert (row["broker_order_id"], row["status"]) == (o["id"], o["status"])
        tally["rows_lost"] += missing
        assert missing == 0
        total = sum(range(1, ORDERS + 1))
        assert journal.last_positions() == {"SPY": Decimal(total)}
        db = sqlite3.connect(str(path))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        await ex.aclose()
    finally:
        fake.stop()
