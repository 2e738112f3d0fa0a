"""Reconcile the journal with the broker before trading (and after any outage).

The journal says what we believed when we stopped: open orders, the last position snapshot, the
account activities already seen. The broker says what is true now. ``reconcile`` brings the
journal up to date with every difference it can explain, records each one, and refuses (``ok``
False, fail closed: the runner must not trade) when it cannot:

explained (journaled, ``ok`` stays True)
    an order filled, canceled, expired or replaced while we were down; an order intent (or an
    ``unknown`` outcome) that a look-up by client order id among open and closed orders does not
    find (the process died before the POST, or the POST never arrived: marked ``not_sent``,
    never ``rejected``);
    a replacement order of one of ours; position changes accounted for by new activities (fills,
    option exercise OPEXC, assignment OPASN, expiry OPEXP, their stock legs OPTRD); another
    program's orders (reported, never touched).
not explained (``ok`` False)
    the broker cannot be reached; an order the broker had acknowledged is unknown to it; an open
    order carrying our client_order_id that the journal never saw, or that the journal holds as
    final (``not_sent``, ``rejected``, ``canceled``...: a late POST landed after all; the
    journal is brought up to date and trading stays stopped until a person has looked); an
    order marked ``not_sent`` that the venue filled (journaled as the venue has it, its fills
    under it; its engine believed it never sent); a
    position that differs from the last snapshot plus the new activities, unless a stock
    split explains it (below).

A stock split (Alpaca re-bases the position on the ex-date: quantity x r, average entry price
/ r) is recognised from the position itself, since the SPLIT activity Alpaca lists has no
documented fields to rely on: a stock whose quantity is a small ratio r of the snapshot's (to
the venue's nine decimals: a fraction of a share is paid as such) and whose average entry price
is the snapshot's / r, once the new trades of the stock are accounted for on whichever side of
the split they fell (``find_split``). The average entry price is followed as Alpaca keeps it,
compressed FIFO over daily lots rebuilt from the journal's trades (``v28quant.venue_lots``): a
sale moves the average of what remains, at once or, as Alpaca shows it intraday, from the next
day's start. It is journaled as a decision (``RECONCILE_ENGINE``,
``SPLIT_ACTION``) with the snapshot that takes it, dated before the first trade after it; the
round trips re-base the open lots by it (``v28quant.round_trips``).

Activities are fetched from ``activities_since`` the last journaled one (not the whole account
history each time): from the start of the day of the session before it, so that the overlap
re-reads rows the venue posts late or dates by day only (Alpaca's option events carry a date,
not a time), over a weekend or holiday too; the seen ids drop repeats.

Every journal call runs on a worker thread (``asyncio.to_thread``): a journal busy with another
connection never stalls the event loop.

Invariant relied on: the last position snapshot reflects exactly the activities already seen.
``reconcile`` keeps it by recording new activities and a fresh snapshot in one transaction, and
only when the positions check out; a runner that records activities itself must snapshot with them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, ParamSpec, Protocol, TypeVar

from v28quant.broker.base import (
    Activity,
    Broker,
    BrokerError,
    BrokerUnavailable,
    Order,
    Position,
    parse_client_order_id,
)
from v28quant.calendar import ET, default_calendar
from v28quant.clock import Clock
from v28quant.journal.schema import (
    FINAL_STATUSES,
    INTENT_STATUS,
    NOT_SENT_STATUS,
    RECONCILE_ENGINE,
    SPLIT_ACTION,
    UNKNOWN_STATUS,
)
from v28quant.notify import Notifier
from v28quant.occ import is_occ
from v28quant.round_trips import SHARE_QUANTUM, journal_trades
from v28quant.settlement_close import SettlementCloses
from v28quant.venue_lots import (
    DayLot,
    average_price,
    journal_lots,
    snapshot_lot,
    split_lots,
    trade_lots,
    weighted_average,
)

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: Activity types that move a position (qty is the signed change, see ``broker.Activity``).
POSITION_ACTIVITIES = frozenset(
    {"FILL", "PARTIAL_FILL", "OPEXC", "OPASN", "OPEXP", "OPTRD", "OPCSH"}
)
#: How long an order journaled ``not_sent`` is looked up again: a POST that lands late does so
#: within seconds; the window spans a long weekend between two pre-market reconciles.
LATE_LANDING_WINDOW = timedelta(days=4)
#: Reads of the positions allowed to find two equal ones around the activities read.
SETTLE_READS = 5
#: The largest numerator and denominator a split ratio is taken to have (20-for-1, 1-for-100).
MAX_SPLIT_TERM = 100
#: How far the venue's re-based average entry price may be from the snapshot's / r: a cent.
SPLIT_PRICE_TOLERANCE = Decimal("0.01")


class JournalLike(Protocol):
    """The part of ``v28quant.journal.Journal`` that reconciliation uses."""

    def open_orders(self) -> list[dict[str, Any]]:
        """Return the orders the journal holds open."""
        ...

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        """Return the order with this client order id, or None."""
        ...

    def not_sent_since(self, since: datetime) -> list[dict[str, Any]]:
        """Return the orders journaled ``not_sent`` at or after ``since``."""
        ...

    def client_order_id_for(self, broker_order_id: str, *, legs: bool = False) -> str | None:
        """Return the client order id journaled for a venue order id (or one of its legs)."""
        ...

    def last_positions(self) -> dict[str, Decimal]:
        """Return the latest position snapshot."""
        ...

    def last_entry_prices(self) -> dict[str, Decimal]:
        """Return the latest snapshot's average entry prices."""
        ...

    def seen_activity_ids(self) -> set[str]:
        """Return the ids of every journaled activity."""
        ...

    def fills(self) -> list[dict[str, Any]]:
        """Return every journaled fill, oldest first."""
        ...

    def settlements(self) -> list[dict[str, Any]]:
        """Return the journaled option settlements and their stock trades, oldest first."""
        ...

    def splits(self) -> list[dict[str, Any]]:
        """Return the stock splits reconcile took, oldest first."""
        ...

    def transfers(self) -> list[dict[str, Any]]:
        """Return the position differences the operator accepted, oldest first."""
        ...

    def last_activity_ts(self) -> datetime | None:
        """Return the time of the latest journaled activity."""
        ...

    def record_order_update(
        self,
        client_order_id: str,
        broker_order_id: str | None,
        status: str,
        filled_qty: Any,
        filled_avg_price: Any,
        raw: dict[str, Any],
        ts: datetime,
        *,
        reason: str | None = None,
    ) -> None:
        """Journal one order state change."""
        ...

    def record_activity_batch(
        self,
        activities: list[dict[str, Any]],
        fills: list[dict[str, Any]],
        positions: list[dict[str, Any]],
        ts: datetime,
        decisions: list[dict[str, Any]],
    ) -> Any:
        """Journal activities, fills, a snapshot and the splits it took in one transaction."""
        ...

    def record_reconcile(self, ok: bool, differences: list[dict[str, Any]], ts: datetime) -> Any:
        """Journal a reconcile outcome."""
        ...


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """Outcome: ``ok`` False means do not trade; ``reason`` says why in one line."""

    ok: bool
    reason: str | None
    differences: tuple[dict[str, Any], ...]
    ts: datetime

    @property
    def fatal(self) -> list[dict[str, Any]]:
        """Return the differences that stop trading."""
        return [d for d in self.differences if d.get("fatal")]


async def _off(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a journal call on a worker thread: SQLite must not block the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def _diff(kind: str, fatal: bool = False, **info: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "fatal": fatal,
        **{k: (str(v) if isinstance(v, Decimal) else v) for k, v in info.items()},
    }


def activities_since(last_seen: datetime | None) -> datetime | None:
    """Return where a fetch of activities starts after the last journaled one (None: all).

    00:00 New York on the day of the session before ``last_seen``'s day: an activity the venue
    dates by day only (an option event of Friday, read as its close) and posts after a later
    fill (Monday morning) is still listed, over a weekend or holiday. Never later than a day
    before ``last_seen``.
    """
    if last_seen is None:
        return None
    day = default_calendar().previous_session(last_seen.astimezone(ET).date())
    return datetime.combine(day, time(0), tzinfo=ET)


async def reconcile(
    journal: JournalLike,
    broker: Broker,
    clock: Clock | None = None,
    *,
    adopt_positions: bool = False,
    notifier: Notifier | None = None,
    closes: SettlementCloses | None = None,
) -> ReconcileReport:
    """Compare ``journal`` with ``broker`` and say whether trading may start.

    Every difference is journaled. Never raises for a broker failure: that is an ``ok=False``
    report, logged and, when a ``notifier`` is given, posted as an error notice.

    ``adopt_positions`` (an operator's explicit choice, e.g. a new journal on an account with
    history older than its activities, or after a manual fix) accepts the broker's positions as
    the new baseline instead of failing on a position difference, in a reconcile that finds
    nothing else fatal only: one that refuses to trade keeps the journal's positions.

    ``closes`` adds the underlying's close to option settlements journaled without one
    (Alpaca's, see ``v28quant.settlement_close``).
    """
    ts = clock.now() if clock is not None else datetime.now(UTC)
    diffs: list[dict[str, Any]] = []
    try:
        await _reconcile(journal, broker, ts, diffs, adopt_positions, closes)
    except BrokerError as e:
        diffs.append(_diff("broker_unreachable", True, error=f"{type(e).__name__}: {e}"))
    fatal = [d for d in diffs if d["fatal"]]
    ok = not fatal
    reason = None if ok else "; ".join(_describe(d) for d in fatal)
    await _off(journal.record_reconcile, ok, diffs, ts)
    if ok:
        log.info(
            "reconcile ok: %d difference(s) explained", len(diffs), extra={"differences": diffs}
        )
    else:
        log.error(
            "reconcile FAILED, trading must not start: %s", reason, extra={"differences": diffs}
        )
        if notifier is not None:
            notifier.error("reconcile", f"trading will not start: {reason}")
    return ReconcileReport(ok, reason, tuple(diffs), ts)


def _describe(d: dict[str, Any]) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in d.items() if k not in ("kind", "fatal"))
    return f"{d['kind']} ({rest})"


async def _settled_book(
    broker: Broker, since: datetime | None
) -> tuple[list[Position], list[Activity]]:
    """Read positions and activities that describe one and the same moment.

    Two requests are two moments: a fill landing between them (an order still in flight from
    before a crash) shows in one read and not the other, a position difference that is not
    real. Positions are read before and after the activities; equal reads bracket a stretch with
    no position change, so the activities read inside it match them. The venue still moving
    after ``SETTLE_READS`` tries raises ``BrokerUnavailable`` (trading does not start).
    """
    before = await broker.positions()
    for _ in range(SETTLE_READS):
        activities = await broker.activities(since)
        after = await broker.positions()
        if _book(after) == _book(before):
            return after, activities
        before = after
    raise BrokerUnavailable(
        f"positions kept changing across {SETTLE_READS} reads (orders still filling)"
    )


def _book(positions: list[Position]) -> dict[str, Decimal]:
    return {p.symbol: p.qty for p in positions if p.qty != 0}


async def _reconcile(
    journal: JournalLike,
    broker: Broker,
    ts: datetime,
    diffs: list[dict[str, Any]],
    adopt: bool,
    closes: SettlementCloses | None,
) -> None:
    broker_open = await broker.orders("open")
    cid_by_order: dict[str, str] = {}

    def remember(o: Order) -> None:
        cid_by_order[o.id] = o.client_order_id
        for leg in o.legs:
            cid_by_order[leg.id] = o.client_order_id

    # 1. Orders the journal believes open.
    known_tags = []
    checked: set[str] = set()  # looked up one by one below: fresher than ``broker_open``
    for jo in await _off(journal.open_orders):
        cid = jo["client_order_id"]
        checked.add(cid)
        tag = parse_client_order_id(cid)
        if tag is not None:
            known_tags.append(tag)
        bo = await broker.order_by_client_id(cid)  # open and closed orders alike
        if bo is None:
            if jo["status"] in (INTENT_STATUS, UNKNOWN_STATUS) and not jo.get("broker_order_id"):
                await _off(
                    journal.record_order_update,
                    cid,
                    None,
                    NOT_SENT_STATUS,
                    None,
                    None,
                    {"reconcile": "the broker has no order under this client order id"},
                    ts,
                    reason="look-up by client order id: never reached the broker",
                )
                diffs.append(_diff("intent_never_submitted", client_order_id=cid))
            else:
                diffs.append(
                    _diff(
                        "own_order_missing",
                        True,
                        client_order_id=cid,
                        journal_status=jo["status"],
                        broker_order_id=jo.get("broker_order_id"),
                    )
                )
            continue
        remember(bo)
        jfilled = jo.get("filled_qty") or Decimal(0)
        if bo.status.value != jo["status"] or bo.filled_qty != jfilled:
            await _journal_as_venue_has_it(journal, bo, ts)
            diffs.append(
                _diff(
                    "order_changed",
                    client_order_id=cid,
                    journal_status=jo["status"],
                    broker_status=bo.status.value,
                    journal_filled=jfilled,
                    broker_filled=bo.filled_qty,
                )
            )

    # 1b. Orders journaled never sent whose POST may have landed after the look-up.
    for jo in await _off(journal.not_sent_since, ts - LATE_LANDING_WINDOW):
        cid = jo["client_order_id"]
        bo = await broker.order_by_client_id(cid)
        if bo is None or not bo.status.terminal:
            continue  # an order still working is among the open ones below
        checked.add(cid)
        remember(bo)
        await _journal_as_venue_has_it(
            journal, bo, ts, "reached the venue after it was journaled not_sent"
        )
        # What it filled its engine believed never sent (its reservation released): a person
        # must look before trading goes on.
        diffs.append(
            _diff(
                "not_sent_reached_venue",
                bool(bo.filled_qty),
                client_order_id=cid,
                order_id=bo.id,
                broker_status=bo.status.value,
                broker_filled=bo.filled_qty,
            )
        )

    # 2. Open orders at the broker that the journal does not know.
    for bo in broker_open:
        remember(bo)
        tag = bo.owner
        if tag is None:
            diffs.append(
                _diff(
                    "foreign_order",
                    order_id=bo.id,
                    client_order_id=bo.client_order_id,
                    symbol=bo.symbol,
                )
            )
            continue
        if bo.client_order_id in checked:
            continue
        row = await _off(journal.order_by_client_id, bo.client_order_id)
        if row is not None and row["status"] in FINAL_STATUSES:
            # The journal believes it final, the venue has it working: never hide that.
            await _journal_as_venue_has_it(
                journal, bo, ts, f"open at the broker while journaled as {row['status']}"
            )
            diffs.append(
                _diff(
                    "journal_terminal_broker_open",
                    True,
                    client_order_id=bo.client_order_id,
                    order_id=bo.id,
                    journal_status=row["status"],
                    broker_status=bo.status.value,
                )
            )
            continue
        if row is not None:
            continue
        if tag.revision > 0 and any(tag.same_decision(k) for k in known_tags):
            await _journal_as_venue_has_it(journal, bo, ts)
            diffs.append(_diff("replacement_adopted", client_order_id=bo.client_order_id))
        else:
            diffs.append(
                _diff(
                    "unknown_own_order",
                    True,
                    client_order_id=bo.client_order_id,
                    order_id=bo.id,
                    engine=tag.engine,
                    strategy=tag.strategy,
                )
            )

    # 3. Positions: last snapshot + new activities must equal the broker's. Read after the
    # orders, so every fill of an order journaled above as filled is in this book.
    last_seen = await _off(journal.last_activity_ts)
    positions, activities = await _settled_book(broker, activities_since(last_seen))
    seen = await _off(journal.seen_activity_ids)
    last = await _off(journal.last_positions)
    new = [a for a in activities if a.id not in seen]
    expected: dict[str, Decimal] = defaultdict(Decimal, last)
    explained: dict[str, list[str]] = defaultdict(list)
    trades: dict[str, list[Activity]] = defaultdict(list)
    for a in new:
        if a.type in POSITION_ACTIVITIES and a.symbol:
            expected[a.symbol] += a.qty
            explained[a.symbol].append(f"{a.type}:{a.id}")
            trades[a.symbol].append(a)
    actual = {p.symbol: p.qty for p in positions if p.qty != 0}
    venue = {p.symbol: p for p in positions if p.qty != 0}
    entry = await _off(journal.last_entry_prices)
    # positions are taken only by a reconcile that lets trading start (and says what it took)
    adopt = adopt and not any(d["fatal"] for d in diffs)
    splits: list[dict[str, Any]] = []
    mismatched = False
    for sym in sorted(set(expected) | set(actual)):
        want, have = expected.get(sym, Decimal(0)), actual.get(sym, Decimal(0))
        was = last.get(sym, Decimal(0))
        split = None
        # an option is never split: its adjustment changes the contract itself
        if want != have and sym in venue and not is_occ(sym) and sym in entry:
            moves = sorted(trades.get(sym, []), key=lambda a: a.ts)
            lots = await _off(_lots_before, journal, sym, was, entry[sym])
            split = find_split(lots, moves, venue[sym], (last_seen, ts))
        if split is not None:
            splits.append(_split_decision(sym, split, was, entry[sym], venue[sym], moves, ts))
            diffs.append(
                _diff(
                    "position_split",
                    symbol=sym,
                    journal=was,
                    broker=have,
                    ratio=str(split.ratio),
                    activities=explained.get(sym, []),
                )
            )
        elif want != have:
            mismatched = True
            diffs.append(
                _diff(
                    "position_adopted" if adopt else "position_mismatch",
                    not adopt,
                    symbol=sym,
                    journal=was,
                    expected=want,
                    broker=have,
                    activities=explained.get(sym, []),
                )
            )
        elif was != have:
            diffs.append(
                _diff(
                    "position_explained",
                    symbol=sym,
                    journal=was,
                    broker=have,
                    activities=explained[sym],
                )
            )
    if mismatched and not adopt:
        return  # keep the journal's snapshot and unseen activities as they were
    if closes is not None:
        new = await closes.annotate(new, seen=ts)
    await _name_fill_orders(journal, new, cid_by_order)
    # One transaction: activities marked seen without the snapshot that includes them would
    # make every later reconcile fail (see the invariant in the module docstring).
    await _off(
        journal.record_activity_batch,
        [
            {
                "activity_id": a.id,
                "activity_type": a.type,
                "symbol": a.symbol,
                "qty": a.qty,
                "price": a.price,
                "ts": a.ts,
                "raw": dict(a.raw) or {"order_id": a.order_id, "side": a.side},
            }
            for a in new
        ],
        [
            {
                "fill_id": a.id,
                "client_order_id": cid_by_order.get(a.order_id or ""),
                "symbol": a.symbol,
                "qty": abs(a.qty),
                "price": a.price,
                "side": a.side or ("buy" if a.qty > 0 else "sell"),
                "ts": a.ts,
            }
            for a in new
            if a.type == "FILL" and a.price is not None
        ],
        [
            {
                "symbol": p.symbol,
                "qty": p.qty,
                "avg_entry_price": p.avg_entry_price,
                "asset_class": p.asset_class,
            }
            for p in positions
        ],
        ts,
        splits,
    )


async def _journal_as_venue_has_it(
    journal: JournalLike, bo: Order, ts: datetime, reason: str | None = None
) -> None:
    """Journal the venue's state of one of our orders (status, fills, its venue id)."""
    await _off(
        journal.record_order_update,
        bo.client_order_id,
        bo.id,
        bo.status.value,
        bo.filled_qty,
        bo.filled_avg_price,
        bo.to_dict(),
        ts,
        reason=reason,
    )


async def _name_fill_orders(
    journal: JournalLike, activities: list[Activity], cid_by_order: dict[str, str]
) -> None:
    """Add to ``cid_by_order`` the journaled order of each fill not among the orders looked up.

    An order the journal already holds as final (filled before its fill was posted) is not
    looked up above, yet its fill belongs to it, not to nobody.
    """
    for a in activities:
        if a.type == "FILL" and a.order_id and a.order_id not in cid_by_order:
            cid = await _off(journal.client_order_id_for, a.order_id, legs=True)
            if cid is not None:
                cid_by_order[a.order_id] = cid


@dataclass(frozen=True, slots=True)
class Split:
    """An r-for-1 stock split that came after the first ``after`` of a stock's new trades."""

    ratio: Fraction
    after: int


def _lots_before(journal: JournalLike, symbol: str, qty: Decimal, price: Decimal) -> list[DayLot]:
    """Return ``symbol``'s daily lots in the last snapshot, of ``qty`` shares at ``price``.

    Rebuilt from the journal's trades and the positions the operator accepted where they add
    up to the snapshot's quantity; one lot at the snapshot's price where they do not (positions
    taken with no ``positions_accepted`` decision, history older than the journal).
    """
    trades = journal_trades(
        journal.fills(), journal.settlements(), journal.splits(), journal.transfers()
    )
    lots = journal_lots(symbol, trades)
    if sum((lot.qty for lot in lots), Decimal(0)) == qty:
        return lots
    return snapshot_lot(qty, price)


def find_split(
    lots: list[DayLot],
    trades: list[Activity],
    now: Position,
    window: tuple[datetime | None, datetime],
) -> Split | None:
    """Return the split that, with ``trades``, turns the daily ``lots`` of a stock into ``now``.

    ``trades`` are the stock's new activities, oldest first, made inside ``window`` (from the
    last journaled activity, None: the account's start, to now). The trades before the split
    move the lots, and so the average entry price, as the venue does
    (``v28quant.venue_lots.trade_lots``); the split multiplies the quantity by r, a ratio of
    whole numbers up to ``MAX_SPLIT_TERM`` other than 1, to the venue's share precision
    (``SHARE_QUANTUM``: Alpaca pays a split's fraction of a share as such, 10 split 1-for-3
    are 3.333333333) and divides the prices by r; the trades after it bring the quantity to
    ``now``'s, at an average entry price within ``SPLIT_PRICE_TOLERANCE`` of ``now``'s (either
    of ``_venue_averages``: a sale of ``now``'s day may not have moved it yet). Trades
    alone cannot do that: shares added at a price above zero cannot divide the average price
    by r, and shares sold take out the oldest lots at their own prices.

    A split takes effect overnight, before its ex-date's session: it is tried between each two
    moments of the window (its start, the trades, its end) that fall on different New York
    days. Prices cannot place it: bought shares cost the same in total on either side of it,
    and 45 shares are 10 x 4 + 5 as well as (10 + 5) x 3. Only one place may fit (more would
    be a guess); none for a trade without a price.
    """
    if any(t.price is None for t in trades):
        return None
    starts = [window[0], *(t.ts for t in trades)]
    ends = [*(t.ts for t in trades), window[1]]
    fits = []
    for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if not _overnight(start, end):
            continue
        before = _traded(lots, trades[:k])
        rest = trades[k:]
        qty = sum((lot.qty for lot in before), Decimal(0))
        split_qty = now.qty - sum((t.qty for t in rest), Decimal(0))
        ratio = _small_ratio(qty, split_qty)
        if ratio is None:
            continue
        end_prices = _venue_averages(split_lots(before, ratio), rest, window[1])
        if any(abs(now.avg_entry_price - p) <= SPLIT_PRICE_TOLERANCE for p in end_prices):
            fits.append(Split(ratio, k))
    return fits[0] if len(fits) == 1 else None


def _overnight(start: datetime | None, end: datetime) -> bool:
    """Whether a New York day starts between ``start`` (None: any time before) and ``end``."""
    return start is None or start.astimezone(ET).date() < end.astimezone(ET).date()


def _traded(lots: list[DayLot], trades: list[Activity]) -> list[DayLot]:
    """Return ``lots`` after ``trades`` (each with a price), as the venue keeps them."""
    for t in trades:
        assert t.price is not None  # find_split takes no trade without a price
        lots = trade_lots(lots, t.ts, t.qty, t.price)
    return lots


def _venue_averages(
    lots: list[DayLot], trades: list[Activity], now: datetime
) -> tuple[Decimal, Decimal]:
    """Return the average entry prices the venue may report at ``now`` for ``lots``, ``trades``.

    Alpaca's page leaves open whether a sale moves the average at once or at the next day's
    start (``v28quant.venue_lots``): the lots' own average after ``trades``, and the average
    of the lots at the start of ``now``'s New York day moved by that day's trades by weighted
    average (a sale leaving it), which is what Alpaca shows intraday.
    """
    today = now.astimezone(ET).date()
    earlier = [t for t in trades if t.ts.astimezone(ET).date() < today]
    at_day_start = _traded(lots, earlier)
    qty = sum((lot.qty for lot in at_day_start), Decimal(0))
    avg = average_price(at_day_start)
    for t in trades[len(earlier) :]:
        assert t.price is not None  # find_split takes no trade without a price
        qty, avg = weighted_average(qty, avg, t.qty, t.price)
    return average_price(_traded(at_day_start, trades[len(earlier) :])), avg


def _small_ratio(was: Decimal, now: Decimal) -> Fraction | None:
    """Return r when ``was`` x r is ``now`` to the venue's share precision (``SHARE_QUANTUM``).

    r is a ratio of whole numbers up to ``MAX_SPLIT_TERM``, other than 1.
    """
    if was == 0 or now == was:
        return None
    ratio = (Fraction(now) / Fraction(was)).limit_denominator(MAX_SPLIT_TERM)
    if ratio <= 0 or ratio == 1 or ratio.numerator > MAX_SPLIT_TERM:
        return None
    if abs(Fraction(was) * ratio - Fraction(now)) > Fraction(SHARE_QUANTUM):
        return None
    return ratio


def _split_decision(
    symbol: str,
    split: Split,
    was: Decimal,
    was_price: Decimal,
    now: Position,
    trades: list[Activity],
    ts: datetime,
) -> dict[str, Any]:
    """Return the decision (``record_decision``'s arguments) that journals a split taken.

    Dated just before the first trade after the split, when one is: the round trips re-base
    the lots open at the split's time, and a split at a trade's own time sorts after it.
    """
    before, after = trades[: split.after], trades[split.after :]
    when = after[0].ts - timedelta(microseconds=1) if after else ts
    return {
        "decision_id": f"split-{symbol}-{when.isoformat()}",
        "engine": RECONCILE_ENGINE,
        "strategy": "reconcile",
        "symbol": symbol,
        "action": SPLIT_ACTION,
        "reasoning": {
            "ratio": str(split.ratio),
            "journal_qty": str(was),
            "broker_qty": str(now.qty),
            "journal_avg_entry_price": str(was_price),
            "broker_avg_entry_price": str(now.avg_entry_price),
            "activities_before": [a.id for a in before],
            "activities_after": [a.id for a in after],
            "rebased": f"open lots: units x {split.ratio}, entry price / {split.ratio}",
        },
        "ts": when,
    }
