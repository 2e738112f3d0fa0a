"""Capital split between the engines and the risk scale, set in each pre-market job.

The adaptive allocator (:mod:`v28quant.ml.adaptive_allocator`) weighs one sleeve per engine
(``equity/aggregate``, ``options/structures``) by its daily realised returns: the P&L of the
round trips each engine closed on a session over the account's equity. The trips are the
journal's fills and option settlements paired as the backtest report pairs them
(:func:`v28quant.round_trips.pair_trades`): a structure's legs are one trip, its expiry,
assignment or exercise closes it, an option sold at zero closes with its premium lost, and the
operator's flatten closes the engine's own lots.

Each pre-market feeds the sessions settled since the last one: every session before the last
one closed (:func:`settled_before`). A session's option expiries, assignments and exercises are
processed overnight and may be journaled only after the next pre-market, so a session is fed at
the second pre-market after it, with its settlements in; each session is fed once. A restarted
runner rebuilds the allocator from the sessions its ``capital_split`` decisions fed
(:func:`restore_fed`) and feeds none of them again.

Then ``ctx.shared["capital_split"]`` gets the allocator's engine weights (engine -> fraction of
equity) and ``ctx.shared["risk_scale"]`` the POMDP controller's exposure scale from the regime
assessment. The engines apply each once: the equity engine's target weights are multiplied by
its share and the risk scale; the options engine's max loss per structure by the risk scale and
the capital its structures may commit by its share (``v28quant.options.sizing``).
A ``capital_split`` decision records the inputs and the result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from v28quant.calendar import ET, ExchangeCalendar
from v28quant.engines import EngineContext
from v28quant.journal import Journal
from v28quant.ml.adaptive_allocator import AdaptiveAllocator
from v28quant.round_trips import SPLIT_RATIO, VENUE_QTY, journal_trades, pair_trades

log = logging.getLogger(__name__)

SLEEVES = {"equity": "equity/aggregate", "options": "options/structures"}
#: What the regime assessment says of the POMDP controller's choice (journaled as inputs).
POMDP_KEYS = ("pomdp_action", "exposure_scale", "agreement")


def daily_returns(
    fills: Iterable[Mapping[str, Any]],
    equity: float,
    before: date,
    settlements: Iterable[Mapping[str, Any]] = (),
    splits: Iterable[Mapping[str, Any]] = (),
    transfers: Iterable[Mapping[str, Any]] = (),
) -> dict[date, dict[str, float]]:
    """Return each session's realised return per sleeve (closed P&L / ``equity``) before ``before``.

    ``fills``, ``settlements``, ``splits`` and ``transfers`` as the journal returns them. A
    trip counts on the session of its closing trade; a session with any trade or settlement
    counts for every sleeve (0 where an engine closed nothing).
    """
    if equity <= 0:
        raise ValueError(f"equity must be > 0, got {equity}")
    trades = journal_trades(fills, settlements, splits, transfers)
    days: dict[date, dict[str, float]] = {}
    for t in trades:
        if SPLIT_RATIO in t or VENUE_QTY in t:  # re-bases or moves lots; trades nothing
            continue
        d = t["ts"].astimezone(ET).date()
        if d < before:
            days.setdefault(d, dict.fromkeys(SLEEVES.values(), 0.0))
    for trip in pair_trades(trades).trips:
        d = trip.closed.astimezone(ET).date()
        sleeve = SLEEVES.get(trip.engine)
        if sleeve is not None and d in days:
            days[d][sleeve] += float(trip.pnl) / equity
    return dict(sorted(days.items()))


def settled_before(calendar: ExchangeCalendar, now: datetime) -> date:
    """Return the first session not yet settled at ``now``: the last session before today.

    A session's option expiries, assignments and exercises are processed overnight and may be
    journaled after the next pre-market has run, so that session waits one more session.
    """
    return calendar.previous_session(now.astimezone(ET).date())


def feed(
    allocator: AdaptiveAllocator, fed: set[date], day: date, returns: Mapping[str, float]
) -> None:
    """Give ``allocator`` one session's sleeve returns and add ``day`` to ``fed``."""
    allocator.update({s: max(x, -0.99) for s, x in returns.items()})
    fed.add(day)


def restore_fed(allocator: AdaptiveAllocator, journal: Journal) -> set[date]:
    """Feed a new ``allocator`` what the journal's ``capital_split`` decisions fed, in order.

    A restarted runner so goes on where it stopped: each session fed once, with the returns it
    was fed then. Returns the sessions fed.
    """
    fed: set[date] = set()
    for row in journal.decisions(action="capital_split", as_written=True):
        for day, returns in row["reasoning"].get("sessions_fed", {}).items():
            if date.fromisoformat(day) not in fed:
                feed(allocator, fed, date.fromisoformat(day), returns)
    return fed


def allocate(ctx: EngineContext, equity: float) -> dict[str, float]:
    """Feed the allocator the settled sessions, set the split and the risk scale, journal them."""
    allocator = ctx.shared.get("allocator")
    if allocator is None:
        allocator = ctx.shared["allocator"] = AdaptiveAllocator(list(SLEEVES.values()))
        ctx.shared["allocator_days"] = restore_fed(allocator, ctx.journal)
    fed: set[date] = ctx.shared.setdefault("allocator_days", set())
    settled = settled_before(ctx.calendar, ctx.now)
    journal = ctx.journal
    past = daily_returns(
        journal.fills(),
        equity,
        settled,
        journal.settlements(),
        journal.splits(),
        journal.transfers(),
    )
    new = {d: r for d, r in past.items() if d not in fed}
    for d, r in new.items():
        feed(allocator, fed, d, r)
    weights = allocator.allocate()
    split = allocator.engine_split(weights)
    regime = ctx.regime
    risk = float(getattr(regime, "risk_multiplier", 1.0)) if regime is not None else 1.0
    reasoning = getattr(regime, "reasoning", {}) or {}
    ctx.shared["capital_split"] = split
    ctx.shared["risk_scale"] = risk
    ctx.journal.record_decision(
        f"capital-split-{ctx.now.isoformat()}",
        "runner",
        "allocator",
        "*",
        "capital_split",
        {
            "split": split,
            "sleeve_weights": weights,
            "sessions_fed": {d.isoformat(): r for d, r in new.items()},
            "sessions_total": len(fed),
            "method": allocator.config.method,
            "risk_scale": risk,
            "pomdp": {k: reasoning[k] for k in POMDP_KEYS if k in reasoning},
            "equity": equity,
        },
        ctx.now,
    )
    log.info("capital split %s, risk scale %.2f", split, risk)
    return split


__all__ = ["SLEEVES", "allocate", "daily_returns", "feed", "restore_fed", "settled_before"]
