"""A trading process the kill trials SIGKILL: it places a run of orders through the Executor.

Run as ``python crash_orders.py URL JOURNAL COUNT``. It takes the journal lock, prints
``LOCKED``, then places ``COUNT`` decisions one after another (``decisions``), printing
``PLACED <client order id> <status>`` after each acknowledged one.
"""

from __future__ import annotations

import asyncio
import sys

from v28quant.broker import OrderRequest, Owner
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.execution import Decision, Executor, JournalLock
from v28quant.journal import Journal

KEY, SECRET = "PKKILLTRIAL01", "kill-trial-secret"


def decisions(count: int) -> list[Decision]:
    """Return the decisions both the killed process and its restart place (qty ``i + 1``)."""
    return [
        Decision(
            OrderRequest.equity("SPY", i + 1, "buy", owner=Owner("equity", "trend", f"kill-{i}")),
            {"signal": 0.5},
        )
        for i in range(count)
    ]


async def main(url: str, path: str, count: int) -> None:
    """Hold the journal lock and place every decision in turn."""
    JournalLock(path).acquire_or_exit()
    broker = AlpacaBroker(KEY, SECRET, url=url, timeout_s=60.0, backoff_s=0.0)
    ex = Executor(broker, Journal(path))
    print("LOCKED", flush=True)
    for d in decisions(count):
        out = await ex.place(d)
        print("PLACED", out.client_order_id, out.status, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
