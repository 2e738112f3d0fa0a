"""The journal: one SQLite file holding everything the system decided and did.

``Journal`` is the synchronous store (``records``); ``AsyncJournal`` runs it off the event loop.
The SQLite plumbing is in ``store``, the tables and order statuses in ``schema``, reservations in
``reservations`` and the human-facing roll-ups in ``reports``. Secrets are redacted on the way in
(``v28quant.redaction``).
"""

from __future__ import annotations

from v28quant.journal.aio import AsyncJournal
from v28quant.journal.records import Journal
from v28quant.journal.reservations import Claim
from v28quant.journal.schema import (
    FINAL_STATUSES,
    INTENT_STATUS,
    NOT_SENT_STATUS,
    REFUSED_STATUS,
    UNKNOWN_STATUS,
)
from v28quant.redaction import REDACTED

__all__ = [
    "FINAL_STATUSES",
    "INTENT_STATUS",
    "NOT_SENT_STATUS",
    "REDACTED",
    "REFUSED_STATUS",
    "UNKNOWN_STATUS",
    "AsyncJournal",
    "Claim",
    "Journal",
]
