"""The operator's way past a position reconcile cannot explain: ``v28quant accept-positions``.

Reconcile fails closed on a position the journal cannot explain (shares transferred in or out,
a merger or symbol change, a reverse split paid partly in cash, an order placed by hand that the
venue lists no fill for): no session trades until a person has looked. Having looked, the
operator runs ``v28quant accept-positions --reason "..."``. The next pre-market reconcile takes
the venue's positions as the new baseline once (``reconcile(..., adopt_positions=True)``),
journals what it took (a ``positions_accepted`` decision naming each position's journal and
venue quantities, and the request) and notifies. Anything else reconcile refuses (an order the
venue does not know, an unreachable venue) still stops trading, and the request waits for a
reconcile that passes. A later mismatch needs a new request.

Shares taken this way have no fill in the journal: each position's difference (the venue's
quantity less the journal's expected one) is read back as a transfer (``Journal.transfers``)
at the venue's average entry price in the snapshot the same reconcile wrote. In the round trips
(P&L per trade, the continuous learner, the allocator) shares that came in are a lot of no
engine's (``v28quant.round_trips.TRANSFER_ENGINE``), which an engine's sale closes first;
shares that left close the oldest lots and book no trip (nothing traded at a price).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from v28quant.broker.base import Broker
from v28quant.clock import Clock
from v28quant.journal import Journal
from v28quant.journal.schema import POSITIONS_ACCEPTED_ACTION, RECONCILE_ENGINE
from v28quant.notify import Notifier
from v28quant.reconcile import ReconcileReport, reconcile
from v28quant.settlement_close import SettlementCloses

log = logging.getLogger(__name__)

#: The operator's request (``accept-positions``) and the reconcile that carried it out.
REQUEST, ACCEPTED = "accept_positions", POSITIONS_ACCEPTED_ACTION


def request_acceptance(journal: Journal, reason: str, by: str, ts: datetime) -> None:
    """Journal the operator's request that the next reconcile take the venue's positions."""
    if not reason.strip():
        raise ValueError(
            "accept-positions needs a --reason: what makes the venue's positions right"
        )
    journal.record_decision(
        f"{REQUEST}-{ts.isoformat()}",
        RECONCILE_ENGINE,
        "operator",
        "*",
        REQUEST,
        {"reason": reason, "by": by},
        ts,
    )
    log.warning("positions acceptance requested by %s: %s", by, reason)


def pending_request(journal: Journal) -> dict[str, Any] | None:
    """Return the operator's request not yet carried out, if any (the latest written)."""
    rows = journal.decisions(engine=RECONCILE_ENGINE, action=(REQUEST, ACCEPTED), as_written=True)
    return rows[-1] if rows and rows[-1]["action"] == REQUEST else None


async def reconcile_for_trading(
    journal: Any,
    broker: Broker,
    clock: Clock,
    *,
    notifier: Notifier,
    closes: SettlementCloses | None = None,
) -> ReconcileReport:
    """Reconcile before a session, taking the venue's positions if the operator asked to."""
    # journal reads and writes off the event loop, as reconcile's own (a busy journal waits)
    request = await asyncio.to_thread(pending_request, journal)
    report = await reconcile(
        journal,
        broker,
        clock,
        adopt_positions=request is not None,
        notifier=notifier,
        closes=closes,
    )
    if request is None or not report.ok:
        return report
    taken = [
        {k: d[k] for k in ("symbol", "journal", "expected", "broker")}
        for d in report.differences
        if d["kind"] == "position_adopted"
    ]
    await asyncio.to_thread(
        journal.record_decision,
        f"{ACCEPTED}-{report.ts.isoformat()}",
        RECONCILE_ENGINE,
        "operator",
        "*",
        ACCEPTED,
        {
            "request": request["decision_id"],
            "reason": request["reasoning"]["reason"],
            "positions": taken,
        },
        report.ts,
    )
    what = ", ".join(f"{p['symbol']} {p['expected']} -> {p['broker']}" for p in taken) or "none"
    log.warning(
        "venue positions accepted as the baseline (%s): %s", request["reasoning"]["reason"], what
    )
    notifier.notify(f"venue positions accepted ({request['reasoning']['reason']}): {what}")
    return report
