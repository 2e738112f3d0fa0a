"""The execution service: every order from decision to confirmed fill goes through here.

``Executor.place(Decision)`` journals the intent before sending, submits idempotently, tracks
the order and journals fills with the position snapshot; ``Reservation`` lets two engines share
one account; ``JournalLock`` keeps one running instance per journal.
"""

from __future__ import annotations

from v28quant.execution.executor import Executor
from v28quant.execution.lock import JournalLock, JournalLocked
from v28quant.execution.types import Decision, Fill, OrderOutcome, Reservation

__all__ = [
    "Decision",
    "Executor",
    "Fill",
    "JournalLock",
    "JournalLocked",
    "OrderOutcome",
    "Reservation",
]
