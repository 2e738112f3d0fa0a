"""The life of every structure the options engine opens: held until closed, rolled or settled.

Settled means expired, exercised or assigned.

``Book`` holds the open structures (``Held``) and each underlying's wheel stage, is persisted
as JSON beside the journal (written atomically) and is driven by three inputs only: fills of the
engine's own orders (``opened``, ``closed``, ``rolled``), the venue's account activities
(``apply_activity``: OPASN assignment, OPEXC exercise, OPEXP expiry) and the stock splits
reconcile took (``apply_split``: a wheel's shares and basis), so a restart rebuilds the same
state from the same events.

The wheel: a cash-secured put (stage ``short_put``) that is assigned leaves 100 shares per
contract (stage ``shares``, basis = strike - premium received); a covered call is sold against
them (``covered_call``); when it is assigned the shares are called away and the wheel is back
to ``cash``; a covered call that expires leaves the shares for the next call.

``exit_rule`` says what to do with one open structure now: take profit, stop out, close before
the expiry-day cut-off (short legs in or near the money), roll out (a tested short leg with
little time left; an iron condor rolls its tested side, the other side staying open as a
vertical, since the venue takes at most four legs in one order), or close/roll a short
in-the-money call whose extrinsic value is below the next dividend before its ex-date
(early-assignment risk).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from v28quant.broker.base import Activity
from v28quant.occ import CONTRACT_SIZE, parse_occ

WheelStage = Literal["cash", "short_put", "shares", "covered_call"]
Action = Literal["take_profit", "stop_loss", "expiry_close", "roll", "early_assignment"]
CREDIT_STRATEGIES = frozenset(
    {"cash_secured_put", "covered_call", "bull_put", "bear_call", "iron_condor"}
)


@dataclass
class Held:
    """One open structure: ``legs`` maps each OCC symbol to signed contracts per unit.

    ``entry_net`` is the signed net paid per share per unit (debit > 0, credit < 0);
    ``leg_entry`` the fill price per share of each leg, where the venue reported it.
    ``closing_rule`` is the exit rule of a close that filled in part: the rest is closed
    under it, not judged anew.
    """

    structure_id: str
    strategy: str
    underlying: str
    expiry: date
    legs: dict[str, int]
    units: int
    entry_net: float
    max_loss: float
    opened_at: datetime
    client_order_id: str
    rolls: int = 0
    wheel: bool = False
    leg_entry: dict[str, float] = field(default_factory=dict)
    closing_rule: Action | None = None

    @property
    def credit(self) -> bool:
        """True for a structure opened for a net credit."""
        return self.entry_net < 0

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (dates as ISO text)."""
        d = asdict(self)
        d["expiry"] = self.expiry.isoformat()
        d["opened_at"] = self.opened_at.isoformat()
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Held:
        """Rebuild from ``to_json``."""
        x = dict(d)
        x["expiry"] = date.fromisoformat(x["expiry"])
        x["opened_at"] = datetime.fromisoformat(x["opened_at"])
        x["legs"] = {str(k): int(v) for k, v in x["legs"].items()}
        return cls(**x)


@dataclass
class Pending:
    """An order of the engine not yet filled: opening, closing or rolling a structure.

    ``ladder`` holds the signed net limits per unit (debit > 0) from the mid to the natural;
    ``rung`` is the one the order rests at. ``legs``/``expiry``/``max_loss`` describe the
    structure the fill creates (the new one for a roll); ``old_id`` the one a close or roll ends.
    ``closing`` names the old legs a roll closes when it rolls one side only (the tested
    vertical of an iron condor); the other side stays open as its own structure, its entry net
    from its legs' fills or, without them, ``kept_net`` (its mid when the roll was placed).
    ``announced_qty`` units of its fill were announced already, at the venue's average price
    ``announced_avg``: a part fill is announced when first seen, the later notices say the rest.
    ``rule`` is the exit rule a close was placed under. ``worst`` is the last rung the risk
    gate approved for an opening order (None: no bound, e.g. a book written before it): a walk
    on moved quotes never asks more.
    """

    client_order_id: str
    kind: Literal["open", "close", "roll"]
    structure_id: str
    underlying: str
    strategy: str
    legs: dict[str, int]
    expiry: date
    max_loss: float
    ladder: list[str]
    rung: int
    placed_at: datetime
    old_id: str | None = None
    wheel: bool = False
    waited: int = 0
    closing: dict[str, int] | None = None
    kept_net: float | None = None
    announced_qty: int = 0
    announced_avg: str | None = None
    rule: Action | None = None
    worst: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (dates as ISO text)."""
        d = asdict(self)
        d["expiry"] = self.expiry.isoformat()
        d["placed_at"] = self.placed_at.isoformat()
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Pending:
        """Rebuild from ``to_json``."""
        x = dict(d)
        x["expiry"] = date.fromisoformat(x["expiry"])
        x["placed_at"] = datetime.fromisoformat(x["placed_at"])
        x["legs"] = {str(k): int(v) for k, v in x["legs"].items()}
        if x.get("closing") is not None:
            x["closing"] = {str(k): int(v) for k, v in x["closing"].items()}
        return cls(**x)


@dataclass
class WheelState:
    """Where an underlying's wheel stands: stage, shares held by the wheel and their basis."""

    stage: WheelStage = "cash"
    shares: int = 0
    basis: float = 0.0
    premium: float = 0.0
    cycles: int = 0


@dataclass
class StrayShares:
    """Stock a spread's settlement left, owed a flatten until its order has the venue's answer.

    ``held``: the account's position in ``underlying`` when the flatten was first sized (None
    until then), so every try sends the same order under the same client order id.
    """

    underlying: str
    shares: int
    activity: str
    held: str | None = None

    @property
    def key(self) -> str:
        """Return the flatten's decision id: one per underlying and activity."""
        return f"flatten:{self.underlying}:{self.activity}"


@dataclass(frozen=True, slots=True)
class Event:
    """Something the book learnt from the venue (journaled and notified by the engine)."""

    kind: Literal["assigned", "exercised", "expired", "called_away", "closed"]
    structure_id: str | None
    symbol: str
    qty: int
    detail: dict[str, Any] = field(default_factory=dict)


def legs_max_loss(legs: Mapping[str, int], entry: Mapping[str, float]) -> float:
    """Largest loss at expiry, dollars per unit, of option ``legs`` bought or sold at ``entry``.

    ``legs`` maps OCC symbols to signed contracts per unit, ``entry`` to the premium per share
    each was opened at. The payoff is linear between strikes, so its minimum is at a strike or
    at 0; ``inf`` when more calls are short than long (unbounded above).
    """
    table = [(q, float(o.strike), o.call) for s, q in legs.items() for o in [parse_occ(s)]]
    if sum(q for q, _, call in table if call) < 0:
        return math.inf
    paid = sum(q * entry[s] for s, q in legs.items())
    worst = 0.0
    for x in {0.0, *(k for _, k, _ in table)}:
        value = sum(q * max(0.0, x - k if call else k - x) for q, k, call in table)
        worst = min(worst, float(CONTRACT_SIZE) * (value - paid))
    return -worst


@dataclass(frozen=True, slots=True)
class Reconciled:
    """A structure ``Book.reconcile`` changed: closed out, trimmed or partial.

    ``before`` holds its legs and units as the book had them, ``held`` the contracts of each
    leg the broker holds for it.
    """

    kind: Literal["closed_out", "trimmed", "partial"]
    held: Held
    before: dict[str, Any]
    held_qty: dict[str, int]


class Book:
    """The engine's open structures and wheel stages (see the module docstring)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.held: dict[str, Held] = {}
        self.pending: dict[str, Pending] = {}
        self.wheel: dict[str, WheelState] = {}
        # each activity applied, by id, with its time: only those a later read can list again
        self.seen_activities: dict[str, datetime] = {}
        self.activity_cursor: datetime | None = None
        # the journal's stock splits the wheel followed; None: not looked yet (see apply_split)
        self.splits_seen: set[str] | None = None
        # stray shares whose flatten has no answer yet, by decision id (``StrayShares.key``)
        self.stray: dict[str, StrayShares] = {}
        if path is not None and path.exists():
            self._load(path)

    # -- persistence ------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.held = {k: Held.from_json(v) for k, v in data.get("held", {}).items()}
        self.wheel = {k: WheelState(**v) for k, v in data.get("wheel", {}).items()}
        self.pending = {k: Pending.from_json(v) for k, v in data.get("pending", {}).items()}
        cur = data.get("activity_cursor")
        self.activity_cursor = datetime.fromisoformat(cur) if cur else None
        self.seen_activities = _seen_from_json(
            data.get("seen_activities", {}), self.activity_cursor, path
        )
        splits = data.get("splits_seen")
        self.splits_seen = None if splits is None else set(splits)
        self.stray = {k: StrayShares(**v) for k, v in data.get("stray", {}).items()}

    def defined_risk_loss(self, excluding: str | None = None) -> float:
        """Return the max loss of the open defined-risk structures, dollars (all units).

        Cash-secured puts and covered calls are left out: their risk is the collateral.
        ``excluding`` leaves out one structure (the one a roll replaces).
        """
        return sum(
            h.max_loss * h.units
            for k, h in self.held.items()
            if k != excluding and h.strategy not in ("cash_secured_put", "covered_call")
        )

    def save(self) -> None:
        """Write the book atomically (temp file, fsync, rename) when it has a path."""
        if self.path is None:
            return
        data = {
            "held": {k: v.to_json() for k, v in self.held.items()},
            "wheel": {k: asdict(v) for k, v in self.wheel.items()},
            "pending": {k: v.to_json() for k, v in self.pending.items()},
            "seen_activities": {k: v.isoformat() for k, v in self.seen_activities.items()},
            "activity_cursor": None
            if self.activity_cursor is None
            else self.activity_cursor.isoformat(),
            "splits_seen": None if self.splits_seen is None else sorted(self.splits_seen),
            "stray": {k: asdict(v) for k, v in self.stray.items()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def placed(self, p: Pending) -> None:
        """Record an order about to be sent and save at once.

        Saved before the request leaves: a crash once the venue holds the order must not
        leave it unknown to the book, or its fill would open contracts no structure owns and
        the decision would be made again under another client order id.
        """
        self.pending[p.client_order_id] = p
        self.save()

    def forget(self, client_order_id: str) -> None:
        """Drop an order that never went out (refused or rejected) and save."""
        if self.pending.pop(client_order_id, None) is not None:
            self.save()

    # -- our own fills ----------------------------------------------------------------------

    def stage(self, underlying: str) -> WheelState:
        """Return (creating) the wheel state of ``underlying``."""
        return self.wheel.setdefault(underlying.upper(), WheelState())

    def opened(self, h: Held) -> None:
        """Record a filled opening order."""
        self.held[h.structure_id] = h
        if h.strategy == "cash_secured_put" and h.wheel:
            self.stage(h.underlying).stage = "short_put"
        if h.strategy == "covered_call" and h.wheel:
            self.stage(h.underlying).stage = "covered_call"

    def closed(self, structure_id: str) -> Held | None:
        """Record a filled closing order; the wheel steps back a stage."""
        h = self.held.pop(structure_id, None)
        if h is not None and h.wheel:
            w = self.stage(h.underlying)
            w.stage = "shares" if h.strategy == "covered_call" else "cash"
        return h

    def rolled(
        self,
        old_id: str,
        new: Held,
        closing: Mapping[str, int] | None = None,
        kept_net: float | None = None,
    ) -> Held | None:
        """Record a filled roll (one order closing ``old_id`` and opening ``new``).

        With ``closing`` naming only some of the old legs (one side of an iron condor), the
        rest stays open under the old id as the vertical it now is, its roll count moved on
        with the new side's; it is returned.
        """
        old = self.held.pop(old_id, None)
        new.rolls = (old.rolls if old else 0) + 1
        self.held[new.structure_id] = new
        if old is None or closing is None or set(closing) >= set(old.legs):
            return None
        legs = {s: q for s, q in old.legs.items() if s not in closing}
        known = all(s in old.leg_entry for s in legs)
        net = sum(q * old.leg_entry[s] for s, q in legs.items()) if known else kept_net
        calls = [parse_occ(s).call for s in legs]
        strikes = [float(parse_occ(s).strike) for s in legs]
        kept = Held(
            old.structure_id,
            "bear_call" if all(calls) else "bull_put" if not any(calls) else old.strategy,
            old.underlying,
            old.expiry,
            legs,
            old.units,
            float(old.entry_net if net is None else net),
            0.0,
            old.opened_at,
            old.client_order_id,
            rolls=old.rolls + 1,  # one position adjusted once more: max_rolls counts it
            leg_entry={s: p for s, p in old.leg_entry.items() if s in legs},
        )
        # a credit vertical loses at most its width less the credit, per share
        kept.max_loss = 100.0 * max(0.0, max(strikes) - min(strikes) + kept.entry_net)
        self.held[old.structure_id] = kept
        return kept

    # -- the broker's positions -------------------------------------------------------------

    def reconcile(
        self,
        held_qty: Mapping[str, int],
        shares: Mapping[str, int],
        skip: set[str] | frozenset[str] = frozenset(),
    ) -> list[Reconciled]:
        """Bring the book to what the broker holds; return each structure changed.

        ``held_qty`` maps OCC symbols to the broker's signed contracts, ``shares`` underlyings
        to its shares; ``skip`` names structures a resting order of ours settles. Oldest
        structures are matched first, so two structures on one contract are not both counted.
        A structure none of whose legs is held is closed out of the book (``closed_out``). One
        held in full ratio on fewer units keeps the units held (``trimmed``). One with some legs
        gone keeps the legs still held (``partial``, its entry net and max loss now theirs:
        unbounded for a short call left alone): they are real exposure, so the Greeks,
        the risk budget and the exit rules must keep seeing them, and a mismatch nobody
        explained is no ground for trading on its own; the engine notifies a person.
        A wheel holding more shares than the broker keeps only those held.
        """
        left = dict(held_qty)
        out: list[Reconciled] = []
        for h in sorted(self.held.values(), key=lambda x: x.opened_at):
            # contracts of each leg held on our side (a long leg needs a long position)
            have = {s: max(0, left.get(s, 0) * (1 if q > 0 else -1)) for s, q in h.legs.items()}
            units = min(have[s] // abs(q) for s, q in h.legs.items())
            if h.structure_id in skip or units >= h.units:
                for s, q in h.legs.items():
                    left[s] = left.get(s, 0) - q * h.units
                continue
            before = {"legs": dict(h.legs), "units": h.units}
            kept = {s: q for s, q in h.legs.items() if have[s] >= abs(q)}
            if not kept:
                self.closed(h.structure_id)
                out.append(Reconciled("closed_out", h, before, have))
                continue
            kind: Literal["trimmed", "partial"] = "trimmed"
            if units >= 1:
                h.units = units
            else:
                h.legs = kept
                h.units = min(have[s] // abs(q) for s, q in kept.items())
                _price_what_is_left(h)
                kind = "partial"
            for s, q in h.legs.items():
                left[s] = left.get(s, 0) - q * h.units
            out.append(Reconciled(kind, h, before, have))
        for und, w in self.wheel.items():
            held = max(0, shares.get(und, 0))
            if w.shares > held:
                w.shares = held - held % 100  # a covered call needs whole lots
                if w.shares == 0 and w.stage == "shares":
                    w.stage = "cash"
        return out

    # -- stock splits -----------------------------------------------------------------------

    def apply_split(self, key: str, underlying: str, ratio: Fraction) -> bool:
        """Re-base ``underlying``'s wheel for a split r-for-1 named ``key``; True when it moved.

        The venue multiplied the shares by r and divided their price by r: the wheel's shares
        follow in whole lots of 100, as a covered call needs them (a reverse split that leaves
        less than a lot sends a wheel holding shares back to ``cash``), and its basis is
        divided by r, so its covered call strikes above the price paid, not 4 times it. Once
        per ``key``; ``splits_seen`` must have been set (``v28quant.options.wheel_shares``).
        """
        assert self.splits_seen is not None, "the splits already followed are not known"
        if key in self.splits_seen:
            return False
        self.splits_seen.add(key)
        w = self.wheel.get(underlying)
        if w is None or w.shares == 0:
            return False
        shares = math.floor(w.shares * ratio)
        w.shares = shares - shares % 100
        w.basis = w.basis / float(ratio)
        if w.shares == 0 and w.stage == "shares":
            w.stage = "cash"
        return True

    # -- the venue's activities -------------------------------------------------------------

    def _holders(self, a: Activity) -> list[Held]:
        """Return the structures ``a`` can settle, oldest first.

        An assignment takes short contracts, an exercise long ones, an expiry either.
        """
        side = {"OPASN": -1, "OPEXC": 1}.get(a.type, 0)  # 0: either
        holders = [h for h in self.held.values() if h.legs.get(a.symbol, 0) * side >= 0]
        return sorted((h for h in holders if a.symbol in h.legs), key=lambda h: h.opened_at)

    def apply_activity(self, a: Activity) -> list[Event]:
        """Apply one account activity; a repeat (same id) changes nothing.

        OPASN / OPEXC / OPEXP on a leg we hold remove that leg (what is left is priced on its
        own legs' entries), or the units an early assignment of some of its contracts breaks
        (``_settle``); an assigned short put of the
        wheel leaves shares (stage ``shares``), an assigned covered call calls them away
        (``cash``). Stock legs (OPTRD) are not separate events: the option event carries them.
        The venue settles the account's position in the contract, not a structure's: its
        contracts are shared out among the structures holding it, oldest first (with no count
        given, each settles its whole leg).
        """
        if a.id in self.seen_activities:
            return []
        self.seen_activities[a.id] = a.ts
        if self.activity_cursor is None or a.ts > self.activity_cursor:
            self.activity_cursor = a.ts
        if a.type not in ("OPASN", "OPEXC", "OPEXP"):
            return []
        left = abs(int(a.qty))
        events: list[Event] = []
        for h in self._holders(a):
            take = min(left, abs(h.legs[a.symbol]) * h.units)
            events += self._settle_structure(h, a, take)
            left -= take
            if a.qty and left == 0:
                break
        return events

    def forget_activities_before(self, since: datetime) -> None:
        """Drop the seen ids of activities before ``since``, where every later read starts.

        A read never lists them again, so the de-duplication no longer needs them; kept, they
        would grow the book file with every activity.
        """
        self.seen_activities = {k: ts for k, ts in self.seen_activities.items() if ts >= since}

    def _wheel_leg_open(self, h: Held) -> bool:
        """Whether a wheel structure like ``h`` (same underlying and strategy) still holds a leg.

        Two covered calls over one wheel's shares: the first settled leaves the stage to the
        second.
        """
        return any(
            x.wheel and x.legs and (x.underlying, x.strategy) == (h.underlying, h.strategy)
            for x in self.held.values()
        )

    def _settle_structure(self, h: Held, a: Activity, contracts: int) -> list[Event]:
        """Settle ``contracts`` of ``h``'s leg ``a.symbol`` (0: the whole leg); return events."""
        occ = parse_occ(a.symbol)
        held = _settle(h, a.symbol, contracts)  # signed contracts settled
        contracts = abs(held)
        # stock a settlement delivers: + for a long call exercised or a short put assigned
        shares = 100 * held * (1 if occ.call else -1)
        events: list[Event] = []
        if a.type == "OPEXP":
            events.append(Event("expired", h.structure_id, a.symbol, contracts))
            if h.wheel and not self._wheel_leg_open(h):
                # an expired covered call leaves the shares; an expired put leaves the cash
                w = self.stage(h.underlying)
                w.stage = "shares" if h.strategy == "covered_call" else "cash"
        elif a.type == "OPEXC":
            detail_x: dict[str, Any] = {"strike": float(occ.strike), "call": occ.call}
            if not h.wheel:
                detail_x["stray_shares"] = shares
            events.append(Event("exercised", h.structure_id, a.symbol, contracts, detail_x))
        elif h.strategy == "covered_call":
            w = self.stage(h.underlying)
            w.shares = max(0, w.shares - 100 * contracts)
            if not self._wheel_leg_open(h):  # else calls are still short against the rest
                w.stage = "cash" if w.shares == 0 else "shares"
            w.cycles += 1 if w.stage == "cash" else 0
            events.append(
                Event(
                    "called_away",
                    h.structure_id,
                    a.symbol,
                    contracts,
                    {"strike": float(occ.strike)},
                )
            )
        else:
            detail: dict[str, Any] = {"strike": float(occ.strike), "call": occ.call}
            if h.strategy == "cash_secured_put" and h.wheel:
                w = self.stage(h.underlying)
                w.shares += 100 * contracts
                w.premium += -h.entry_net
                w.basis = float(occ.strike) + h.entry_net  # strike less the credit received
                w.stage = "shares"
                detail["basis"] = round(w.basis, 4)
            elif not h.wheel:
                detail["stray_shares"] = shares  # a spread's leg: the engine flattens them
            events.append(Event("assigned", h.structure_id, a.symbol, contracts, detail))
        if not h.legs:
            del self.held[h.structure_id]
            detail = {"by": a.type, "client_order_id": h.client_order_id}
            events.append(Event("closed", h.structure_id, a.symbol, 0, detail))
        return events


def _settle(h: Held, symbol: str, contracts: int) -> int:
    """Take ``contracts`` of ``h``'s leg ``symbol`` out of it; return the signed contracts taken.

    Early assignment takes some of a short leg's contracts, at random: the units it breaks
    leave the structure, and the whole units left stay with every leg (a long leg's contracts
    of a broken unit stand alone at the broker, outside the book). The whole leg settles when
    no whole unit is left, or the venue gave no count.
    """
    per_unit = h.legs[symbol]
    held = per_unit * h.units
    broken = -(-contracts // abs(per_unit))  # ceiling: a unit missing one contract is broken
    if 0 < broken < h.units:
        h.units -= broken
        return contracts * (1 if held > 0 else -1)
    del h.legs[symbol]
    _price_what_is_left(h)
    return held


def _price_what_is_left(h: Held) -> None:
    """Restate ``h``'s entry net and max loss from the entries of the legs it still holds.

    The exit rules judge the close against ``entry_net``: the whole structure's net would make
    a long put left from a credit spread look like a credit, in profit at once. What is left
    may be a naked short, whose max loss is its own. Without a fill price for every leg left
    the structure's figures stay; with no leg left there is nothing to restate (the wheel
    reads a settled put's credit from it).
    """
    h.leg_entry = {s: p for s, p in h.leg_entry.items() if s in h.legs}
    if h.legs and all(s in h.leg_entry for s in h.legs):
        h.entry_net = sum(q * h.leg_entry[s] for s, q in h.legs.items())
        h.max_loss = legs_max_loss(h.legs, h.leg_entry)


# ---------------------------------------------------------------------------- exit rules


@dataclass(frozen=True, slots=True)
class ExitRules:
    """Thresholds of ``exit_rule`` (fractions of the entry premium; minutes; days)."""

    take_profit_credit: float = 0.50
    stop_loss_credit: float = 2.00
    take_profit_debit: float = 1.00
    stop_loss_debit: float = 0.50
    expiry_close_minutes: int = 30
    pin_band: float = 0.01
    roll_dte: int = 7
    roll_delta: float = 0.50
    max_rolls: int = 2


@dataclass(frozen=True, slots=True)
class Marks:
    """What the engine sees of one structure now (per share, per unit)."""

    close_natural: float
    leg_deltas: dict[str, float]
    leg_extrinsic: dict[str, float]
    spot: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The action ``exit_rule`` chose and the numbers that made it fire."""

    action: Action
    reason: dict[str, Any]


def uncovered_calls(legs: Mapping[str, int]) -> list[str]:
    """Return the short calls of ``legs`` when its calls are net short (none: ``[]``)."""
    calls = {s: q for s, q in legs.items() if parse_occ(s).call}
    return sorted(s for s, q in calls.items() if q < 0) if sum(calls.values()) < 0 else []


def exit_rule(
    h: Held,
    m: Marks,
    *,
    now: datetime,
    cutoff: datetime,
    rules: ExitRules,
    ex_dividend: tuple[date, float] | None = None,
) -> Verdict | None:
    """Decide what to do with ``h`` now, or ``None`` to hold.

    Parameters
    ----------
    h : Held
    m : Marks
        ``close_natural`` is the signed net per share per unit of the closing order at the
        natural prices (debit > 0).
    now, cutoff : datetime
        The venue's time and the series' last trading minute on its expiry day.
    rules : ExitRules
    ex_dividend : (date, float), optional
        The next ex-dividend date and amount per share of the underlying.
    """
    pnl = -(h.entry_net + m.close_natural)  # per share per unit
    basis = abs(h.entry_net)
    frac = pnl / basis if basis > 0 else 0.0
    why = {"pnl_per_share": round(pnl, 4), "pnl_fraction": round(frac, 4)}
    shorts = {s: q for s, q in h.legs.items() if q < 0}
    wheel_single = h.wheel and h.strategy in ("cash_secured_put", "covered_call")
    # a short call left without its long leg (``Book.reconcile``'s partial): its loss has no
    # bound and no cash here backs it, so it goes first, at the natural
    if h.strategy != "covered_call" and (naked := uncovered_calls(h.legs)):
        return Verdict("stop_loss", {**why, "naked_call": naked})
    if now >= cutoff - timedelta(minutes=rules.expiry_close_minutes) and now.date() <= h.expiry:
        near = [s for s in shorts if _near_money(s, m.spot, rules.pin_band)]
        if near and not wheel_single:
            return Verdict("expiry_close", {**why, "short_near_money": near})
        if now.astimezone(cutoff.tzinfo).date() == h.expiry:
            return None  # let out-of-the-money legs (and the wheel's assignment) happen
    if ex_dividend is not None:
        ex, amount = ex_dividend
        for s in shorts:
            occ = parse_occ(s)
            itm = occ.call and m.spot > float(occ.strike)
            if itm and ex <= h.expiry and m.leg_extrinsic.get(s, 0.0) < amount:
                days = (ex - now.date()).days
                if 0 <= days <= 1:
                    return Verdict(
                        "early_assignment",
                        {**why, "leg": s, "extrinsic": m.leg_extrinsic.get(s), "dividend": amount},
                    )
    if h.credit:
        if frac >= rules.take_profit_credit:
            return Verdict("take_profit", why)
        # the wheel takes assignment instead of a stop: owning the shares is its plan
        if -frac >= rules.stop_loss_credit and not wheel_single:
            return Verdict("stop_loss", why)
    else:
        if frac >= rules.take_profit_debit:
            return Verdict("take_profit", why)
        if -frac >= rules.stop_loss_debit:
            return Verdict("stop_loss", why)
    dte = (h.expiry - now.date()).days
    tested = [s for s in shorts if abs(m.leg_deltas.get(s, 0.0)) >= rules.roll_delta]
    # a covered call is left to be called away: that ends the wheel's cycle as planned
    # an iron condor rolls its tested side: four legs, one order (close two, open two)
    shape = len(h.legs) <= 2 or h.strategy == "iron_condor"
    rollable = h.strategy != "covered_call" and shape and h.rolls < rules.max_rolls
    if dte <= rules.roll_dte and tested and rollable:
        return Verdict("roll", {**why, "dte": dte, "tested": tested})
    return None


def _near_money(symbol: str, spot: float, band: float) -> bool:
    occ = parse_occ(symbol)
    k = float(occ.strike)
    if occ.call:
        return spot >= k * (1.0 - band)
    return spot <= k * (1.0 + band)


def _seen_from_json(saved: Any, cursor: datetime | None, path: Path) -> dict[str, datetime]:
    """Return the seen activities of the book file ``path``: id -> time.

    A book written before the times were kept lists the ids only; each is given the cursor,
    no earlier than its own time, so that it is kept until no read can list it again.
    """
    if not isinstance(saved, list):
        return {k: datetime.fromisoformat(v) for k, v in saved.items()}
    if cursor is None:
        if saved:
            raise ValueError(f"book file {path} lists seen activities but no activity_cursor")
        return {}
    return dict.fromkeys(saved, cursor)
