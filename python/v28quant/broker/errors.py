"""Broker failures: one hierarchy every venue raises (never a venue SDK's exception)."""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every broker failure. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class BrokerUnavailable(BrokerError):
    """The venue could not be reached or answered 5xx; the outcome of a write is unknown."""


class AuthenticationError(BrokerError):
    """Wrong or missing keys (HTTP 401), or keys for the other environment (paper vs live)."""


class RateLimited(BrokerError):
    """Still rate-limited after waiting as the venue asked."""


class OrderRejected(BrokerError):
    """The venue refused the order (bad field, not tradable, wash trade, options rule...)."""


class InsufficientBuyingPower(OrderRejected):
    """Not enough (options) buying power, shares for a covered call or qty to sell."""


class OptionsLevelError(OrderRejected):
    """The account's options trading level does not permit this order."""


class OrderNotFound(BrokerError):
    """No such order (HTTP 404)."""


class OrderNotCancelable(BrokerError):
    """The order is already filled, canceled or otherwise final (HTTP 422)."""


class SubmitOutcomeUnknown(BrokerUnavailable):
    """A submit whose outcome stays unknown.

    An earlier attempt may have landed (a timeout, a 5xx, an unreadable reply) and the look-up by
    client order id could not settle it: the venue refused a later attempt, or could not be asked.
    Never read this as a refusal: the first attempt may hold buying power at the venue.
    """


class UnreadableResponse(BrokerUnavailable):
    """The venue answered 2xx but the body does not parse: what it did is unknown."""


class ClientOrderIdConflict(BrokerError):
    """One client order id, two different requests.

    The venue (or the journal) already holds an order under this id whose request differs from
    the one being placed: the same ``Owner`` was reused for a different decision, or an
    earlier run sent the decision sized otherwise. ``at_venue``: the venue may hold an order
    under the id (it answered the conflict, or a look-up found one), which works on and is
    for the caller to go on following; False when only the journal holds the id (nothing
    was sent).
    """

    def __init__(self, message: str, *, at_venue: bool = False):
        super().__init__(message)
        self.at_venue = at_venue
