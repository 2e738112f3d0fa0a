"""``AsyncJournal``: the journal from async code without blocking the event loop.

SQLite calls block (an fsync per commit; up to ``BUSY_TIMEOUT_S`` when another connection
holds the write lock). Each call runs on one dedicated worker thread, in submission order, so the
trading loop keeps running while the journal waits.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from v28quant.journal.records import Journal

P = ParamSpec("P")
T = TypeVar("T")


class AsyncJournal:
    """Await any ``Journal`` method on a worker thread: ``await aj.run(j.open_orders)``.

    Parameters
    ----------
    journal : Journal
        The journal to serve; available as ``sync`` for code that is not async.
    """

    def __init__(self, journal: Journal) -> None:
        self.sync = journal
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` on the journal's thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Stop the worker thread after the calls already queued (the journal stays open)."""
        self._pool.shutdown(wait=True)
