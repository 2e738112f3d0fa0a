"""``VenueBreaker``: no new orders for a while after the venue failed to answer one.

A submit that ends with the venue unreachable (timeouts, 5xx, an unreadable reply after the
broker's own retries) means the next orders would most likely meet the same outage, each one
spending its retries and leaving another ``unknown`` row to settle. After such a failure new
orders are refused (journaled as ``refused`` with the reason) for ``cooldown``; the first order
after it is let through as a probe, and every other order is refused until the probe's answer:
answered, orders resume; unanswered, the pause starts over. A probe that never left (refused
before sending, its cycle cancelled) is withdrawn, and the next order probes instead.
Orders already journaled as sent are never held back (a look-up settles them).

One breaker serves every engine trading on the venue: an outage met by one engine's order pauses
the other's too, and a single probe speaks for both.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

#: How long new orders pause after the venue failed to answer a submit.
COOLDOWN = timedelta(seconds=60)


class VenueBreaker:
    """Tracks whether new orders may go to the venue (see the module docstring).

    Parameters
    ----------
    cooldown : timedelta
        Pause after a failure before one order is let through as a probe.
    """

    def __init__(self, cooldown: timedelta = COOLDOWN) -> None:
        if cooldown <= timedelta(0):
            raise ValueError(f"cooldown must be positive, got {cooldown}")
        self._cooldown = cooldown
        self._since: datetime | None = None  # first failure of the current outage
        self._until: datetime | None = None  # new orders refused before this time
        self._probing = False  # the one order let through after the cooldown awaits its answer
        self._reason = ""

    @property
    def tripped(self) -> bool:
        """Return whether an outage is in progress (paused, or probing)."""
        return self._since is not None

    def refusal(self, now: datetime) -> str | None:
        """Return why a new order must not be sent at ``now``, or None when it may.

        Once the cooldown is over, the order this returns None for is the probe: the caller
        reports its outcome (``answered``, ``failed``) or, when it was not sent, ``withdraw``.
        """
        if self._until is None:
            return None
        since = f"venue unavailable since {self._since:%H:%M:%S %Z}"
        if now < self._until:
            return f"{since}: new orders paused until {self._until:%H:%M:%S %Z} ({self._reason})"
        if self._probing:
            return f"{since}: new orders wait for the answer to the order sent to probe it"
        self._probing = True
        return None

    def withdraw(self) -> None:
        """Forget the probe ``refusal`` let through, which was not sent: the next order probes."""
        self._probing = False

    def failed(self, now: datetime, reason: str) -> bool:
        """Record a submit the venue did not answer; True when this starts an outage."""
        started = self._since is None
        if started:
            self._since = now
        self._until, self._reason = now + self._cooldown, reason
        self._probing = False
        return started

    def answered(self, now: datetime) -> timedelta | None:
        """Record a submit the venue answered; the outage's length when this ends one."""
        if self._since is None:
            return None
        down = now - self._since
        self._since = self._until = None
        self._probing = False
        return down
