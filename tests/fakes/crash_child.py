"""A trading process the crash tests kill: it places one decision through the Executor.

Run as ``python crash_child.py URL JOURNAL MODE``. MODE ``before_submit`` stops inside the
broker's submit, after the intent is journaled and before any byte leaves (it prints
``SUBMITTING`` and waits to be killed); MODE ``place`` submits for real (the test holds the
venue's answer and kills the process once the order is stored); MODE ``second`` is a second
instance, which must exit at once because the journal is held.
"""

from __future__ import annotations

import asyncio
import sys

from v28quant.broker import Order, OrderRequest, Owner
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.execution import Decision, Executor, JournalLock
from v28quant.journal import Journal

KEY, SECRET = "PKCRASHTEST01", "crash-secret-01"


def decision() -> Decision:
    """Build the one decision both the killed process and its restart place."""
    req = OrderRequest.equity("SPY", 7, "buy", owner=Owner("equity", "trend", "crash-1"))
    return Decision(req, {"signal": 0.7})


async def main(url: str, path: str, mode: str) -> None:
    """Hold the journal lock and place the decision (MODE ``second``: only try the lock)."""
    JournalLock(path).acquire_or_exit()
    if mode == "second":
        print("LOCKED BY A SECOND INSTANCE", flush=True)
        return
    broker = AlpacaBroker(KEY, SECRET, url=url, timeout_s=60.0, backoff_s=0.0)
    if mode == "before_submit":

        async def stall(request: OrderRequest) -> Order:
            print("SUBMITTING", flush=True)
            await asyncio.sleep(3600)
            raise AssertionError("killed before this")

        broker.submit = stall  # type: ignore[method-assign]
    ex = Executor(broker, Journal(path))
    print("LOCKED", flush=True)
    out = await ex.place(decision())
    print("DONE", out.status, flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
