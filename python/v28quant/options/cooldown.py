"""Whipsaw protection: no new structure on an underlying for a while after a stop loss there.

The record is the journal's stop-loss close decision (its reasoning's ``rule`` is
``stop_loss``, from ``lifecycle.exit_rule``), so a runner restarted mid-session finds the
cooldown where it was; the book file forgets a structure once it is closed. The clock starts
when the stop fires, not when its close fills: from then on the engine has given up on that
underlying's move.

The strategy table's ``close`` row (``manage.manage_one`` labels its closes ``stop_loss`` too,
with ``rule`` "strategy table says close") starts no cooldown: it closes every structure
whatever its P&L and opens nothing while the regime keeps that row, and once the regime's row
opens again that row is the engine's view; nothing was learnt about one underlying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from v28quant.calendar import ET

#: The ``rule`` of the decision that closes a structure at its stop.
STOP_RULE = "stop_loss"


@dataclass(frozen=True, slots=True)
class Cooldown:
    """An underlying shut to new structures for ``minutes`` after the stop ``decision_id``."""

    underlying: str
    decision_id: str
    stopped_at: datetime
    minutes: int

    @property
    def until(self) -> datetime:
        """When the underlying may open again."""
        return self.stopped_at + timedelta(minutes=self.minutes)

    def reasoning(self) -> dict[str, Any]:
        """Return the journal's account of the refusal (times on the exchange's clock)."""
        return {
            "rule": "reentry_cooldown",
            "reentry_cooldown_minutes": self.minutes,
            "stop_loss_decision": self.decision_id,
            "stopped_at": self.stopped_at.astimezone(ET).isoformat(),
            "until": self.until.astimezone(ET).isoformat(),
            "closing_orders": "still sent",
        }


def cooldown_of(
    journal: Any, engine: str, underlying: str, now: datetime, minutes: int
) -> Cooldown | None:
    """Return the cooldown ``underlying`` is in at ``now``, or None (``minutes`` 0: never)."""
    if minutes <= 0:
        return None
    stops = journal.decisions_by_rule(
        engine, STOP_RULE, underlying, now - timedelta(minutes=minutes)
    )
    live = [Cooldown(underlying, str(s["decision_id"]), s["ts"], minutes) for s in stops]
    live = [c for c in live if c.stopped_at <= now < c.until]
    return live[-1] if live else None
