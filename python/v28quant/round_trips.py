"""Closed trades (round trips) read back from the journal's fills and option settlements.

Trades are paired first in, first out per engine and symbol, the engine read from the client
order id ``v28-<engine>-``: a trade against the open side closes the oldest open lots, any
remainder opens a new lot. The operator's flatten (``v28-risk-...``) and orders without a v28
id close the oldest lots of whichever engine holds the symbol, as they close the account's
position; what they open is unowned (``UNOWNED_ENGINES``). An engine sizes against the
account's whole position, so its own trade closes the unowned lots first, as their owner's
trips (shares bought by hand and sold by the equity engine are the hand order's trip), then its
own: no engine's lot is opened, nor its trip booked, for shares it never chose. Shares the
operator accepted (``v28quant accept-positions``, ``Journal.transfers``) are a transfer
(:func:`transfer_trades`) at the venue's average entry price: shares that came in are an
unowned lot of their own (``TRANSFER_ENGINE``); shares that left close the oldest lots across
engines and book no trip, as nothing traded at a price. An option's expiry, assignment or
exercise (:func:`settlement_trades`) closes it as a fill of the options engine would. An option
contract is worth 100 shares. A stock split (a record with ``SPLIT_RATIO``, ``Journal.splits``)
re-bases every engine's open lots of the stock: units x r, price / r, so a lot bought before
the split closes at its own cost after it.

Two views of the same matching (:func:`match_fifo`):

* :func:`pair_trades`: :class:`Trip` per engine, opening order and closing order, so the legs of
  a structure opened and closed together are one trip; the backtest report's round trips and
  the adaptive allocator's daily realised returns per engine (:mod:`v28quant.allocation`).
* :func:`round_trips`: a :class:`RoundTrip` per trip of one symbol, with its units-weighted
  entry and exit prices; the equity engine's continuous learner (:mod:`v28quant.equity.learning`)
  gets one record per closed trade, however its orders were filled.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from v28quant.broker.ownership import parse_client_order_id
from v28quant.occ import is_occ, multiplier, parse_occ

#: The engine whose books an option settlement's trades go to: only it trades contracts, so the
#: contracts settling and the stock they deliver or take away are its own.
SETTLEMENT_ENGINE = "options"
#: Fills no trading engine placed: the operator's flatten (``v28-risk-...``) and orders without
#: a v28 client order id (``"other"``). They close the lots of whichever engine holds the
#: symbol, oldest first across engines, as they close the account's position.
OPERATOR_ENGINES = frozenset({"risk", "other"})
#: The owner of shares the operator accepted into the account (``v28quant accept-positions``):
#: a transfer in (:func:`transfer_trades`) opens a lot it owns, as no engine bought them.
TRANSFER_ENGINE = "accepted"
#: Owners of lots no trading engine chose (shares bought by hand or accepted, a flatten's
#: leftover). An engine sizes against the account's whole position, so what it trims is first
#: the shares it never chose: its trade closes these lots, oldest first, before its own.
UNOWNED_ENGINES = OPERATOR_ENGINES | {TRANSFER_ENGINE}
#: The key of a transfer among the trades: the venue's quantity of the symbol after it.
VENUE_QTY = "venue_qty"
#: The key of a stock split among the trades: new shares per old share (a Fraction).
SPLIT_RATIO = "split_ratio"
#: Units of a re-based lot are rounded to Alpaca's fractional-share precision, as its position
#: is: 10 shares split 1-for-3 are 3.333333333, not a 28-digit repeating decimal.
SHARE_QUANTUM = Decimal("1e-9")
#: How far apart Alpaca may date an assignment's or exercise's stock (OPTRD) and the option
#: event itself: the next session, over a long weekend.
OPTRD_LAG = timedelta(days=4)


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One closed trade: ``qty`` units opened at ``entry_price`` and closed at ``exit_price``.

    The prices are units-weighted means over the fills of its opening and closing orders.
    """

    engine: str
    symbol: str
    side: str
    qty: Decimal
    entry_ts: datetime
    entry_price: Decimal
    exit_ts: datetime
    exit_price: Decimal
    key: str

    @property
    def pnl(self) -> float:
        """Realised P&L in dollars (before commissions)."""
        mult = 100 if is_occ(self.symbol) else 1
        sign = 1 if self.side == "long" else -1
        return float(sign * self.qty * (self.exit_price - self.entry_price) * mult)

    @property
    def move(self) -> float:
        """Log move of the price from entry to exit.

        Undefined (ValueError) at a zero price, which only an option has (closed worthless).
        """
        return math.log(float(self.exit_price) / float(self.entry_price))

    @property
    def ret(self) -> float:
        """Realised return on the entry notional, in the trade's direction."""
        return self.move if self.side == "long" else -self.move


@dataclass(frozen=True, slots=True)
class Trip:
    """One closed round trip: the engine whose lots it closed, its P&L (USD), when it closed."""

    engine: str
    pnl: Decimal
    closed: datetime


@dataclass(frozen=True, slots=True)
class Opening:
    """The trade that opened a lot: its index in the trades, its order key, the trade itself."""

    index: int
    order: str
    trade: Mapping[str, Any]


@dataclass(slots=True)
class Lot:
    """An open piece of a position: ``qty`` units (> 0 long, < 0 short) bought or sold at ``price``.

    ``opened`` is the trade that opened it.
    """

    qty: Decimal
    price: Decimal
    opened: Opening


@dataclass(frozen=True, slots=True)
class ClosedPiece:
    """A piece of ``lot`` that ``trade`` (of order key ``order``) closed.

    ``units`` are signed as the lot was (> 0: a long closed); ``engine`` owns the lot.
    """

    engine: str
    lot: Lot
    units: Decimal
    trade: Mapping[str, Any]
    order: str

    @property
    def pnl(self) -> Decimal:
        """Realised P&L of the piece in dollars (before commissions)."""
        price = Decimal(str(self.trade["price"]))
        return self.units * (price - self.lot.price) * multiplier(str(self.trade["symbol"]))


@dataclass(slots=True)
class Pairing:
    """Trades paired into round trips: ``trips`` in the order closed and the ``lots`` left open.

    ``lots`` maps (engine, symbol) to the open lots, oldest first; each lot's ``opened`` is an
    :class:`Opening`.
    """

    trips: list[Trip]
    lots: dict[tuple[str, str], deque[Lot]]


def close_oldest(lots: deque[Lot], signed: Decimal) -> tuple[Lot, Decimal] | None:
    """Close the oldest lot of ``lots`` as far as a trade of ``signed`` units (> 0 bought) goes.

    Returns the lot and the units closed, signed as the lot was (> 0: a long closed), the lot
    reduced by them and dropped from ``lots`` once spent; None when ``lots`` holds nothing on
    the trade's other side.
    """
    if signed == 0 or not lots or (lots[0].qty > 0) == (signed > 0):
        return None
    lot = lots[0]
    closed = min(abs(lot.qty), abs(signed)) * (1 if lot.qty > 0 else -1)
    lot.qty -= closed
    if lot.qty == 0:
        lots.popleft()
    return lot, closed


def engine_of(client_order_id: str | None) -> str | None:
    """Return the engine that owns an order id ``v28-<engine>-...``, or None."""
    if not client_order_id or not client_order_id.startswith("v28-"):
        return None
    return client_order_id.split("-", 2)[1]


def order_key(client_order_id: str | None) -> str | None:
    """Return the order a trade belongs to: its client order id less any replacement revision.

    A v28 order walked by replacements (``...-r1``, ``...-r2``) is one order of one decision:
    a structure part filled before a replacement and filled by it is one opening.
    """
    tag = parse_client_order_id(client_order_id)
    if tag is None:
        return client_order_id or None
    return f"v28-{tag.engine}-{tag.strategy}-{tag.digest}"


def trade_engine(trade: Mapping[str, Any]) -> str:
    """Return the engine a fill or settlement trade belongs to (``"other"`` when none)."""
    return str(trade.get("engine") or engine_of(trade.get("client_order_id")) or "other")


def match_fifo(
    trades: Iterable[Mapping[str, Any]],
) -> tuple[list[ClosedPiece], dict[tuple[str, str], deque[Lot]]]:
    """Match fills and settlement trades (oldest first) FIFO per engine and symbol.

    Returns the pieces of lots closed, in the order closed, and the lots per (engine, symbol),
    spent books included. An operator's trade (``OPERATOR_ENGINES``) closes the oldest lots of
    the symbol across engines. An engine's own trade closes the unowned lots of the symbol
    (``UNOWNED_ENGINES``) oldest first, then its own; a piece belongs to the lot's owner. A
    trade without an order id is an order of its own. Every trade counts, at whatever price: an
    option sold at zero closes its lot with the premium lost. A split (``SPLIT_RATIO``)
    re-bases the open lots of its symbol (:func:`rebase`). A transfer (``VENUE_QTY``,
    :func:`transfer_trades`) closes the oldest lots across engines as an operator's trade
    does, yet yields no piece: shares that left the account traded at no price. What it does
    not close opens a lot of ``TRANSFER_ENGINE`` at its price; none where it has no price (the
    venue held none of the symbol).
    """
    lots: dict[tuple[str, str], deque[Lot]] = {}
    pieces: list[ClosedPiece] = []
    for n, t in enumerate(trades):
        if SPLIT_RATIO in t:
            rebase(lots, str(t["symbol"]), Fraction(t[SPLIT_RATIO]))
            continue
        order = order_key(t.get("client_order_id")) or f"fill-{n}"
        engine, sym = trade_engine(t), str(t["symbol"])
        signed = Decimal(str(t["qty"])) * (1 if t["side"] == "buy" else -1)
        for books in _books_closed(lots, engine, sym):
            while (piece := _close_oldest_across(books, signed)) is not None:
                owner, lot, closed = piece
                if VENUE_QTY not in t:  # shares that left traded at no price: no trip
                    pieces.append(ClosedPiece(owner, lot, closed, t, order))
                signed += closed
        if signed != 0 and t["price"] is not None:
            price = Decimal(str(t["price"]))
            lots.setdefault((engine, sym), deque()).append(Lot(signed, price, Opening(n, order, t)))
    return pieces, lots


def _books_closed(
    lots: dict[tuple[str, str], deque[Lot]], engine: str, symbol: str
) -> list[list[tuple[str, deque[Lot]]]]:
    """Return the books (engine, lots) of ``symbol`` a trade of ``engine`` closes, in turn.

    An operator's trade or a transfer closes every engine's book as one; an engine's own trade
    the unowned books (``UNOWNED_ENGINES``) as one, then its own.
    """
    held = [(e, book) for (e, s), book in lots.items() if s == symbol]
    if engine in OPERATOR_ENGINES or engine == TRANSFER_ENGINE:
        return [held]
    own = lots.setdefault((engine, symbol), deque())
    return [[(e, book) for e, book in held if e in UNOWNED_ENGINES], [(engine, own)]]


def rebase(lots: dict[tuple[str, str], deque[Lot]], symbol: str, ratio: Fraction) -> None:
    """Re-base every engine's open lots of ``symbol`` for an r-for-1 split: units x r, price / r.

    New lots replace the old ones: a piece closed before the split keeps the price it closed
    against.
    """
    num, den = Decimal(ratio.numerator), Decimal(ratio.denominator)
    for key, book in list(lots.items()):
        if key[1] == symbol:
            lots[key] = deque(_rebased(lot, num, den) for lot in book)


def _rebased(lot: Lot, num: Decimal, den: Decimal) -> Lot:
    units = (lot.qty * num / den).quantize(SHARE_QUANTUM)
    return Lot(units, lot.price * den / num, lot.opened)


def _close_oldest_across(
    books: Sequence[tuple[str, deque[Lot]]], signed: Decimal
) -> tuple[str, Lot, Decimal] | None:
    """Close the oldest lot of ``books`` (engine, lots) a trade of ``signed`` units closes.

    Returns its engine, the lot and the units closed (``close_oldest``), or None when no book
    holds a lot on the trade's other side.
    """
    against = [(e, b) for e, b in books if b and (b[0].qty > 0) != (signed > 0)]
    if signed == 0 or not against:
        return None
    engine, book = min(against, key=lambda eb: eb[1][0].opened.index)
    piece = close_oldest(book, signed)
    return None if piece is None else (engine, *piece)


def pair_trades(trades: Iterable[Mapping[str, Any]]) -> Pairing:
    """Pair fills and settlement trades (oldest first) into round trips (:func:`match_fifo`).

    A trip is keyed by its engine, its opening and its closing order (:func:`order_key`: an
    order and its replacements are one): the legs of one multi-leg structure opened and closed
    together are one trip, their P&L summed (a spread
    whose short leg gained is still a losing spread), closed when its last leg closed. A trip
    belongs to the engine whose lots it closed.
    """
    pieces, lots = match_fifo(trades)
    trips: dict[tuple[str, str, str], Trip] = {}
    for p in pieces:
        key = (p.engine, p.lot.opened.order, p.order)
        ts, before = p.trade["ts"], trips.get(key)
        if before is not None:
            trips[key] = Trip(p.engine, before.pnl + p.pnl, max(before.closed, ts))
        else:
            trips[key] = Trip(p.engine, p.pnl, ts)
    return Pairing(list(trips.values()), {k: v for k, v in lots.items() if v})


def round_trips(fills: Iterable[Mapping[str, Any]], engine: str | None = None) -> list[RoundTrip]:
    """Return the closed trades of ``fills`` (in the order first closed), of ``engine`` if given.

    A trade is a trip as :func:`pair_trades` has it: the units one order opened that one order
    closed, whatever the fills on either side (a buy filled in two pieces and closed by one
    sell is one trade; a buy closed by two sell orders is two). Its prices are the
    units-weighted means of its pieces, its entry the first opening fill, its exit the last
    closing fill; it is keyed ``<opening order>><closing order>``. A piece an operator's fill
    closed belongs to the engine whose lot it was.
    """
    pieces, _ = match_fifo(fills)
    trades: dict[tuple[str, str, str], list[ClosedPiece]] = {}
    for p in pieces:
        if engine is None or p.engine == engine:
            trades.setdefault((p.engine, p.lot.opened.order, p.order), []).append(p)
    return [_round_trip(trade) for trade in trades.values()]


def _round_trip(pieces: Sequence[ClosedPiece]) -> RoundTrip:
    """Return the one trade of ``pieces`` (one engine, opening order and closing order)."""
    first = pieces[0]
    units = sum((p.units for p in pieces), Decimal(0))
    qty = abs(units)
    entry = sum((abs(p.units) * p.lot.price for p in pieces), Decimal(0)) / qty
    exit_ = sum((abs(p.units) * Decimal(str(p.trade["price"])) for p in pieces), Decimal(0)) / qty
    return RoundTrip(
        first.engine,
        str(first.trade["symbol"]),
        "long" if units > 0 else "short",
        qty,
        min(p.lot.opened.trade["ts"] for p in pieces),
        entry,
        max(p.trade["ts"] for p in pieces),
        exit_,
        f"{first.lot.opened.order}>{first.order}",
    )


def settlement_trades(settlements: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return option settlements (journal activities) as the closing trades they amount to.

    OPASN and OPEXC close the option at its intrinsic value on the underlying's close
    (``raw["underlying_close"]``: the simulated exchange journals it, and Alpaca's activities
    are journaled with the data feed's close of their session, ``v28quant.settlement_close``);
    the stock of OPTRD trades at that close, netted per underlying and settlement time (a
    spread's two legs in the money cancel out): together the cash of the stock at the strike.
    An OPTRD Alpaca dates apart from its option event counts at the event's time.
    An activity journaled without a close (the feed had none) closes the option at zero and
    each OPTRD trades at its own price (the strike), the same cash; an assignment's loss below
    the strike then stays in the stock's cost until it is sold. OPEXP closes the option at
    zero, as nothing changed hands (a contract in the money by less than a cent expires). All
    legs of one underlying settling at one close share a key, so a structure's trip is one
    trip. Every trade is the options engine's (``SETTLEMENT_ENGINE``).
    """
    closes: dict[tuple[str, Any], Decimal | None] = {}
    out: list[dict[str, Any]] = []
    events: list[Mapping[str, Any]] = []
    optrd: list[Mapping[str, Any]] = []
    for a in settlements:
        (optrd if a["activity_type"] == "OPTRD" else events).append(a)
    stock = _dated_as_their_events(optrd, events)
    for a in events:
        sym, qty, ts = str(a["symbol"]), Decimal(str(a["qty"])), a["ts"]
        occ = parse_occ(sym)
        spot = a["raw"].get("underlying_close")
        close = None if spot is None else Decimal(str(spot))
        closes[(occ.underlying, ts)] = close
        value = Decimal(0)
        if a["activity_type"] != "OPEXP" and close is not None:
            value = max(Decimal(0), close - occ.strike if occ.call else occ.strike - close)
        out.append(_trade(sym, qty, value, ts, f"settlement:{occ.underlying}:{ts}"))
    return out + _stock_trades(stock, closes)


def _dated_as_their_events(
    optrd: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Return the OPTRD rows dated as the assignment or exercise that delivered their shares.

    Alpaca dates each row by day only and may date the stock apart from its option event (the
    next session); netted at another time, the stock would keep the strike as its cost while
    the option closed at intrinsic, the loss past the strike counted twice. An OPTRD belongs
    to an OPASN or OPEXC of its underlying within ``OPTRD_LAG`` that delivers shares its way
    and has shares left, one at its price's strike first, then the nearest; one without such
    an event keeps its date.
    """
    left = {id(e): _shares_delivered(e) for e in events if e["activity_type"] != "OPEXP"}
    out: list[Mapping[str, Any]] = []
    for a in optrd:
        qty = Decimal(str(a["qty"]))
        fits = [e for e in events if _delivers(e, a) and _has_left(left.get(id(e)), qty)]
        if not fits:
            out.append(a)
            continue
        event = min(fits, key=lambda e: (not _at_strike(e, a), abs(e["ts"] - a["ts"])))
        left[id(event)] -= qty
        out.append({**a, "ts": event["ts"]})
    return out


def _has_left(shares: Decimal | None, qty: Decimal) -> bool:
    """Whether an event with ``shares`` still to deliver (None: none) delivers ``qty`` more."""
    return shares is not None and (shares > 0) == (qty > 0) and abs(shares) >= abs(qty)


def _shares_delivered(event: Mapping[str, Any]) -> Decimal:
    """Return the shares an assignment or exercise moves (> 0: bought), 100 a contract."""
    occ = parse_occ(str(event["symbol"]))
    contracts = -Decimal(str(event["qty"]))  # the event's qty is the option position's change
    return contracts * multiplier(str(event["symbol"])) * (1 if occ.call else -1)


def _delivers(event: Mapping[str, Any], optrd: Mapping[str, Any]) -> bool:
    """Whether ``event`` may deliver ``optrd``'s stock: its underlying, dated near enough."""
    same_stock = parse_occ(str(event["symbol"])).underlying == str(optrd["symbol"])
    return same_stock and abs(event["ts"] - optrd["ts"]) <= OPTRD_LAG


def _at_strike(event: Mapping[str, Any], optrd: Mapping[str, Any]) -> bool:
    """Whether ``optrd`` trades at ``event``'s strike (Alpaca's exercise example shows another)."""
    price = optrd["price"]
    return price is not None and parse_occ(str(event["symbol"])).strike == Decimal(str(price))


def _stock_trades(
    optrd: Iterable[Mapping[str, Any]], closes: Mapping[tuple[str, Any], Decimal | None]
) -> list[dict[str, Any]]:
    """Return the OPTRD stock as trades: netted at the underlying's close where it is known."""
    netted: dict[tuple[str, Any], Decimal] = {}
    out: list[dict[str, Any]] = []
    for a in optrd:
        sym, qty, ts = str(a["symbol"]), Decimal(str(a["qty"])), a["ts"]
        key = f"settlement:{sym}:{ts}"
        if closes.get((sym, ts)) is None:
            out.append(_trade(sym, qty, Decimal(str(a["price"])), ts, key))
        else:
            netted[(sym, ts)] = netted.get((sym, ts), Decimal(0)) + qty
    for (sym, ts), qty in netted.items():
        close = closes[(sym, ts)]
        if qty != 0 and close is not None:
            out.append(_trade(sym, qty, close, ts, f"settlement:{sym}:{ts}"))
    return out


def _trade(symbol: str, qty: Decimal, price: Decimal, ts: Any, key: str) -> dict[str, Any]:
    side = "buy" if qty > 0 else "sell"
    return {
        "symbol": symbol,
        "side": side,
        "qty": abs(qty),
        "price": price,
        "ts": ts,
        "client_order_id": key,
        "engine": SETTLEMENT_ENGINE,
    }


def transfer_trades(transfers: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return accepted position differences (``Journal.transfers``) as the trades they amount to.

    Shares that came in are bought, shares that left sold, at the venue's average entry price
    (None where the venue held none), by ``TRANSFER_ENGINE``; each carries the venue's
    quantity after it (``VENUE_QTY``) and is keyed by its decision and symbol.
    """
    return [
        {
            "symbol": t["symbol"],
            "side": "buy" if t["qty"] > 0 else "sell",
            "qty": abs(Decimal(t["qty"])),
            "price": t["price"],
            "ts": t["ts"],
            "client_order_id": f"{t['decision_id']}:{t['symbol']}",
            "engine": TRANSFER_ENGINE,
            VENUE_QTY: Decimal(t["venue_qty"]),
        }
        for t in transfers
    ]


def journal_trades(
    fills: Iterable[Mapping[str, Any]],
    settlements: Iterable[Mapping[str, Any]],
    splits: Iterable[Mapping[str, Any]] = (),
    transfers: Iterable[Mapping[str, Any]] = (),
) -> list[Mapping[str, Any]]:
    """Return the journal's fills, settlements' trades, splits and transfers, oldest first.

    ``splits`` and ``transfers`` as ``Journal.splits`` and ``Journal.transfers`` return them;
    a fill, a split and a transfer at one time keep that order, as sorting is stable: a
    transfer is what the reconcile that journaled the fills before it could not explain.
    """
    trades = [*fills, *settlement_trades(settlements), *splits, *transfer_trades(transfers)]
    return sorted(trades, key=lambda t: t["ts"])


__all__ = [
    "OPERATOR_ENGINES",
    "SETTLEMENT_ENGINE",
    "SHARE_QUANTUM",
    "SPLIT_RATIO",
    "TRANSFER_ENGINE",
    "UNOWNED_ENGINES",
    "VENUE_QTY",
    "ClosedPiece",
    "Lot",
    "Opening",
    "Pairing",
    "RoundTrip",
    "Trip",
    "close_oldest",
    "engine_of",
    "journal_trades",
    "match_fifo",
    "order_key",
    "pair_trades",
    "rebase",
    "round_trips",
    "settlement_trades",
    "trade_engine",
    "transfer_trades",
]
