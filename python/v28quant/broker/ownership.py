"""Who placed an order: ``Owner`` and the client order id it encodes.

Every order carries an ``Owner`` (engine, strategy, decision). Its ``client_order_id`` is
deterministic, so resubmitting the same decision can never create a second order, and it is
parseable, so two engines sharing one account can tell their orders apart
(``parse_client_order_id``). Orders that do not parse belong to someone else (a human, another
program) and are never touched by the engines.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CID = re.compile(
    r"^v28-([a-z][a-z0-9_]{0,7})-([a-z][a-z0-9_]{0,15})-([0-9a-f]{12})"
    r"(?:-r(\d{1,2}))?$"
)
MAX_CLIENT_ORDER_ID = 48


@dataclass(frozen=True, slots=True)
class OrderTag:
    """What a ``client_order_id`` tells about its order.

    Who placed it, and for which decision (a 48-bit digest of the decision id; ``revision`` counts
    replacements).
    """

    engine: str
    strategy: str
    digest: str
    revision: int = 0

    def same_decision(self, other: OrderTag) -> bool:
        """Whether other names the same engine, strategy and decision digest."""
        return (self.engine, self.strategy, self.digest) == (
            other.engine,
            other.strategy,
            other.digest,
        )


@dataclass(frozen=True, slots=True)
class Owner:
    """Who places an order.

    ``engine`` (<= 8 chars), ``strategy`` (<= 16 chars), both ``[a-z][a-z0-9_]*``, and
    ``decision_id``, the journal's id of the decision (any string).

    ``client_order_id`` is ``v28-<engine>-<strategy>-<sha256(decision_id)[:12]>`` (at most 42
    characters; a replacement appends ``-r<n>``, at most 46 < Alpaca's 48).
    """

    engine: str
    strategy: str
    decision_id: str

    def __post_init__(self) -> None:
        """Check the engine and strategy names fit a client order id."""
        if not (_NAME.match(self.engine) and len(self.engine) <= 8):
            raise ValueError(
                f"Owner.engine must match [a-z][a-z0-9_]* and be <= 8 chars, got {self.engine!r}"
            )
        if not (_NAME.match(self.strategy) and len(self.strategy) <= 16):
            raise ValueError(
                f"Owner.strategy must match [a-z][a-z0-9_]* and be <= 16 chars, "
                f"got {self.strategy!r}"
            )
        if not self.decision_id:
            raise ValueError("Owner.decision_id must be a non-empty string")

    @property
    def digest(self) -> str:
        """Return the 48-bit hex digest of the decision id."""
        return hashlib.sha256(self.decision_id.encode("utf-8")).hexdigest()[:12]

    @property
    def client_order_id(self) -> str:
        """Return the deterministic client order id of this decision."""
        return f"v28-{self.engine}-{self.strategy}-{self.digest}"

    @property
    def tag(self) -> OrderTag:
        """Return the OrderTag this owner encodes."""
        return OrderTag(self.engine, self.strategy, self.digest)


def parse_client_order_id(cid: str | None) -> OrderTag | None:
    """Return the ``OrderTag`` encoded in ``cid``, or ``None`` if the order is not ours."""
    if not cid:
        return None
    m = _CID.match(cid)
    if m is None:
        return None
    engine, strategy, digest, rev = m.groups()
    return OrderTag(engine, strategy, digest, int(rev) if rev else 0)


def replacement_client_order_id(cid: str) -> str:
    """Return the client order id for the replacement of order ``cid`` (revision + 1).

    Alpaca gives a replacement a new order id and needs a new unique ``client_order_id``; keeping
    the owner in it keeps the replacement ours.
    """
    tag = parse_client_order_id(cid)
    if tag is None:
        raise ValueError(f"not a v28 client_order_id: {cid!r}")
    if tag.revision >= 99:
        raise ValueError(f"order {cid!r} has been replaced too many times")
    return f"v28-{tag.engine}-{tag.strategy}-{tag.digest}-r{tag.revision + 1}"
