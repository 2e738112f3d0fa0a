"""The wheel's shares, reserved from the moment an assignment delivers them.

A cash-secured put that is assigned leaves shares the wheel will sell calls against. Between
the assignment and that covered call (a cycle later at best, days later when no call resolves)
the equity engine must not sell them, so the engine reserves them as soon as it applies the
assignment: a reservation with no order behind it, owned by the covered-call strategy (the
call that is sold against them spends it; the equity engine is refused). It follows the
wheel's share count: released when the shares are called away, renewed at the new count when
part of them go.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from v28quant.journal.reservations import Claim
from v28quant.options.context import OptionsContext
from v28quant.options.lifecycle import Book

ENGINE = "options"
#: The strategy owning the wheel's shares: the covered call that spends them.
WHEEL_STRATEGY = "covered_call"


def wheel_reserved(journal: Any, underlying: str) -> list[dict[str, Any]]:
    """Return the active reservations of the wheel's shares of ``underlying`` (no order)."""
    return [
        r
        for r in journal.reservations()
        if r["engine"] == ENGINE
        and r["strategy"] == WHEEL_STRATEGY
        and r["kind"] == "shares"
        and r["symbol"] == underlying
        and r["client_order_id"] is None
    ]


def wheel_covers(journal: Any, underlying: str, units: int) -> bool:
    """Whether the wheel's reserved shares of ``underlying`` cover ``units`` covered calls.

    Such a call, sold or rolled, spends that reservation and asks for no second one: a second
    reservation of the same shares would be refused, there being none free.
    """
    held = sum((Decimal(r["amount"]) for r in wheel_reserved(journal, underlying)), Decimal(0))
    return held >= 100 * units


def sync_wheel_shares(
    journal: Any, book: Book, underlying: str, ts: datetime, cause: str
) -> dict[str, Any] | None:
    """Make the reservation of ``underlying``'s wheel shares match the book's share count.

    Returns what changed (for the journal and the notice), or None when nothing did.
    """
    want = Decimal(book.stage(underlying).shares)
    rows = wheel_reserved(journal, underlying)
    have = sum((Decimal(r["amount"]) for r in rows), Decimal(0))
    if have == want:
        return None
    for r in rows:
        journal.release_reservations(
            reason=f"wheel shares now {want} ({cause})", ts=ts, reservation_id=int(r["id"])
        )
    if want > 0:
        journal.hold_reservation(
            ENGINE,
            WHEEL_STRATEGY,
            f"wheel:{underlying}:{cause}:{want}",
            Claim("shares", underlying, want),
            ts,
        )
    return {"underlying": underlying, "reserved_before": str(have), "reserved_now": str(want)}


def follow_splits(ctx: OptionsContext, book: Book) -> None:
    """Re-base the wheels by each stock split reconcile took (``Book.apply_split``), once each.

    The journal's splits (``Journal.splits``) are the ones the account's positions went
    through. A book that never looked (new, or written before splits were followed) takes
    those so far as followed: its wheels' figures were set after them. A wheel moved is
    journaled and its reservation renewed at the new share count.
    """
    splits = {f"{s['symbol']}:{s['ts'].isoformat()}": s for s in ctx.journal.splits()}
    if book.splits_seen is None:
        book.splits_seen = set(splits)
        return
    causes: dict[str, str] = {}
    for key, s in splits.items():
        before = book.wheel.get(s["symbol"])
        was = None if before is None else (before.shares, before.basis)
        if not book.apply_split(key, s["symbol"], s["split_ratio"]):
            continue
        w = book.stage(s["symbol"])
        ctx.journal.record_decision(
            f"options-wheel-split-{key}",
            ENGINE,
            "wheel",
            s["symbol"],
            "rebase_split",
            {
                "rule": "wheel shares x r, basis / r after a stock split",
                "ratio": str(s["split_ratio"]),
                "shares_before": was[0] if was else 0,
                "basis_before": was[1] if was else 0.0,
                "shares_now": w.shares,
                "basis_now": round(w.basis, 4),
                "stage": w.stage,
            },
            ctx.now,
        )
        causes[s["symbol"]] = f"split:{key}"
    reserve_wheel_shares(ctx, book, causes)


def reserve_wheel_shares(ctx: OptionsContext, book: Book, causes: Mapping[str, str]) -> None:
    """Sync every wheel's share reservation; journal and notify each change.

    ``causes`` maps an underlying to the activity id that moved its wheel, where one did.
    """
    for und in sorted(book.wheel):
        cause = causes.get(und) or "book"
        change = sync_wheel_shares(ctx.journal, book, und, ctx.now, cause)
        if change is None:
            continue
        ctx.journal.record_decision(
            f"options-wheel-shares-{und}-{ctx.now.isoformat()}",
            ENGINE,
            "wheel",
            und,
            "reserve_shares",
            {"rule": "wheel shares reserved for the covered call", "cause": cause, **change},
            ctx.now,
        )
        ctx.notifier.notify(
            f"OPTIONS WHEEL {und}: shares reserved {change['reserved_before']} -> "
            f"{change['reserved_now']} ({cause})"
        )
