"""What the options engine's decisions share: building a structure, reserving, placing.

Every order goes through the execution service as one ``Decision`` whose reasoning holds what a
reader of the journal needs: the chain snapshot id, the surface fit, the model values of the
legs, the regime and the row of the strategy table, the rule that fired, the sizing, the
Greeks before and after, the Monte Carlo touch probability and every candidate rejected on the
way, with its reason. Client order ids are deterministic per decision (structure, action,
cycle time), so a decision retried after a crash finds its order instead of sending another.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import pandas as pd

from v28quant.broker.base import (
    ClientOrderIdConflict,
    OptionsLevelError,
    OrderRejected,
    OrderRequest,
    Owner,
)
from v28quant.options.config import OptionsConfig, strategy_name
from v28quant.options.context import OptionsContext
from v28quant.options.lifecycle import Book, Pending
from v28quant.options.signals import ChainAnalysis
from v28quant.options.strategies import (
    Structure,
    StructureGreeks,
    build,
)
from v28quant.options.trend import Trend
from v28quant.risk import OptionsRisk, RiskGate, Verdict

log = logging.getLogger(__name__)

ENGINE = "options"

CREDIT = frozenset({"cash_secured_put", "covered_call", "bull_put", "bear_call", "iron_condor"})
#: What Alpaca's options level 1 allows: selling covered calls and cash-secured puts. Level 2
#: adds buying calls and puts (no strategy here buys a single leg); level 3 adds spreads,
#: that is any multi-leg order, a roll included.
LEVEL_1 = frozenset({"cash_secured_put", "covered_call"})


class EngineView(Protocol):
    """What the decisions read of the engine."""

    cfg: OptionsConfig

    def min_confidence(self, ctx: OptionsContext) -> float:
        """Return the entry threshold in force."""
        ...

    def trend(self, underlying: str, spot: float) -> Trend:
        """Return the underlying's trend from its daily closes and ``spot``."""
        ...

    def gate(self, ctx: OptionsContext) -> RiskGate:
        """Return the risk gate: the runner's, or one with default limits when it has none."""
        ...

    def opening_refusal(self, ctx: OptionsContext, level: int) -> str | None:
        """Return why no order opening options at ``level`` may go out now, or None."""
        ...

    def refuse_opening(self, ctx: OptionsContext, reason: str) -> None:
        """Place no opening order for the rest of the session (the venue refused one)."""
        ...


def level_needed(strategy: str, *, mleg: bool = False) -> int:
    """Return the Alpaca options level an order opening ``strategy`` needs (see ``LEVEL_1``)."""
    return 1 if strategy in LEVEL_1 and not mleg else 3


def level_refused(out: Any) -> str | None:
    """Return the venue's reason when it refused the order ``out`` for the options level."""
    if out.error_type is not None and issubclass(out.error_type, OptionsLevelError):
        return str(out.reason)
    return None


async def gate_check(
    eng: EngineView,
    ctx: OptionsContext,
    req: OrderRequest,
    price: Decimal,
    exposure: OptionsRisk,
    *,
    cycle: datetime,
) -> Verdict:
    """Ask the risk gate about an order opening a structure; a denial is journaled there.

    ``price``: the last rung of the order's ladder, signed (debit > 0), so the gate holds the
    options buying power of the worst price the order may walk to, as the reservation does.
    ``cycle`` is the cycle's time: on a venue's clock ``ctx.now`` moves on within a cycle, and
    the gate counts ``max_orders_per_cycle`` by it. The account is read for each order: the
    venue's buying power already holds what the cycle's earlier orders hold.
    """
    account = await ctx.broker.account()
    positions = await ctx.broker.positions()
    gate = eng.gate(ctx)
    return gate.check(req, price, account, positions, ctx.now, cycle=cycle, options=exposure)


def build_for(eng: EngineView, a: ChainAnalysis, strategy: str, exp: Any, book: Book) -> Structure:
    """Build ``strategy`` on ``exp`` from the analysed chain (the wheel's basis for a call)."""
    cfg = eng.cfg
    w = book.stage(a.underlying)
    name = strategy_name(strategy)
    if name == "covered_call":
        from v28quant.options.strategies import covered_call

        return covered_call(
            a.chain,
            a.spot,
            exp,
            cfg.short_delta,
            share_basis=w.basis or a.spot,
            min_strike=w.basis or None,
        )
    return build(
        name,
        a.chain,
        a.spot,
        exp,
        band=cfg.short_delta,
        long_band=cfg.long_delta,
        max_width=cfg.max_width_fraction * a.spot,
    )


def vars_of(g: StructureGreeks) -> dict[str, float]:
    """Return rounded Greeks for the journal."""
    return {k: round(float(getattr(g, k)), 3) for k in ("delta", "gamma", "vega", "theta_per_day")}


def model_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the model values of some candidates as JSON-ready rows (NaN as None)."""
    cols = [
        "symbol",
        "market_iv",
        "model_iv",
        "heston_iv",
        "merton_iv",
        "eep",
        "edge_vol_pts",
        "stderr_vol_pts",
        "z",
    ]
    out = []
    for r in df[[c for c in cols if c in df]].to_dict("records"):
        out.append(
            {
                k: (
                    None
                    if isinstance(v, float) and not math.isfinite(v)
                    else (round(v, 5) if isinstance(v, float) else v)
                )
                for k, v in r.items()
            }
        )
    return out


def reservation_for(owner: Owner, s: Structure, units: int) -> Any:
    """Return what ``units`` of ``s`` hold: shares for a covered call, else cash collateral."""
    from v28quant.execution import Reservation

    if s.strategy == "covered_call":
        return Reservation(owner, "shares", s.underlying, Decimal(100 * units))
    amount = s.collateral() * units
    if not amount > 0:
        return None
    return Reservation(owner, "cash", None, Decimal(str(round(amount, 2))))


async def place(
    ctx: OptionsContext,
    req: OrderRequest,
    why: Mapping[str, Any],
    reserve: Any,
    *,
    own_notice: bool = False,
) -> Any:
    """Send one order through the execution service with its reasoning and reservation.

    ``own_notice``: the caller says a refusal or rejection itself (``say_refusal``), not the
    executor.
    """
    from v28quant.execution import Decision

    return await ctx.executor.place(
        Decision(req, why, reserve),
        caller_notifies=(OrderRejected,) if own_notice else (),
        caller_notifies_refusal=own_notice,
    )


async def place_opening(
    eng: EngineView,
    ctx: OptionsContext,
    req: OrderRequest,
    why: Mapping[str, Any],
    reserve: Any,
    *,
    own_notice: bool = False,
) -> Any:
    """Send an order that opens options, as ``place``.

    A refusal for the options level pauses opening for the session (``refuse_opening``), whose
    notice is the only one sent for it: the executor is told not to send its generic one.
    ``own_notice``: the caller says any other refusal or rejection itself, not the executor.
    """
    from v28quant.execution import Decision

    out = await ctx.executor.place(
        Decision(req, why, reserve),
        caller_notifies=(OrderRejected,) if own_notice else (OptionsLevelError,),
        caller_notifies_refusal=own_notice,
    )
    if (refused := level_refused(out)) is not None:
        eng.refuse_opening(ctx, refused)
    return out


def last_refusal(journal: Any, action: str, structure_id: str) -> str | None:
    """Return the gist (``refusal_gist``) of the refusal of the last ``action`` of a structure.

    ``action`` is the decision id's first part (``roll``, ``close``). None also when that order
    was not refused or rejected, or none was tried. Read from the journal, so that a restarted
    engine agrees with the one before it.
    """
    prefix = f"{action}:{structure_id}:"
    rows = journal.query(
        "SELECT status, reason FROM orders WHERE engine = ? AND substr(decision_id, 1, ?) = ? "
        "ORDER BY rowid DESC LIMIT 1",
        (ENGINE, len(prefix), prefix),
    )
    if not rows or rows[0]["status"] not in ("refused", "rejected"):
        return None
    return refusal_gist(rows[0]["status"], str(rows[0]["reason"]))


def refusal_gist(status: str, reason: str) -> str:
    """Return what a refusal says, figures aside: the same refusal at other prices is no news."""
    return f"{status}: {re.sub(r'[0-9]+(?:[.][0-9]+)?', '#', reason)}"


def say_refusal(
    ctx: OptionsContext, action: str, structure_id: str, out: Any, said: str | None
) -> None:
    """Notify the ``action`` order ``out`` of a structure refused or rejected, unless ``said``.

    ``said``: the gist of the structure's last ``action`` (``last_refusal``, read before this
    try). A roll or close verdict stands and is tried again every cycle, each time as a new
    order: a notice each cycle would bury the others. The journal keeps each try with its
    reason.
    """
    text = (
        f"OPTIONS {action.upper()} {structure_id}: order {out.client_order_id} "
        f"{out.status}: {out.reason}"
    )
    if refusal_gist(out.status, str(out.reason)) == said:
        log.warning("%s (already said; tried again each cycle)", text)
        return
    ctx.notifier.notify(f"{text}; tried again each cycle, said again only for another reason")


async def place_in_book(book: Book, p: Pending, send: Callable[[], Awaitable[Any]]) -> Any:
    """Name the order ``p`` in the saved book, then ``send`` it; return the send's outcome.

    The book is written before the request leaves, so no crash between the venue's answer
    and a later save can leave a live order the book does not know. An order refused or
    rejected leaves the book again, as does one whose client order id the journal holds for
    another request. One the venue holds under its id for another request (an earlier run
    sent the decision sized otherwise) stays: the venue's order works, and forgotten it would
    be cancelled as not in the book, or the structure opened again beside it. After any other
    error the next cycle's look-up settles it (``OptionsEngine._pending``: followed if the
    venue has it, dropped if not).
    """
    book.placed(p)
    try:
        out = await send()
    except ClientOrderIdConflict as exc:
        if not exc.at_venue:
            book.forget(p.client_order_id)
        raise
    if out.status in ("refused", "rejected"):
        book.forget(p.client_order_id)
    return out


def new_leg_net(p: Pending, order: Any) -> float:
    """Return the net paid per unit for the legs a roll opened, from the leg fills."""
    total = 0.0
    for leg in order.legs:
        if leg.symbol in p.legs and leg.filled_avg_price is not None:
            total += p.legs[leg.symbol] * float(leg.filled_avg_price)
    return total


def leg_prices(p: Pending, order: Any) -> dict[str, float]:
    """Return the fill price per share of each leg ``p`` opens (a single leg: the order's).

    A roll opening one leg is still an ``mleg`` order, whose own price is the net of every leg.
    """
    if order.order_class != "mleg" and len(p.legs) == 1 and order.filled_avg_price is not None:
        return {next(iter(p.legs)): float(order.filled_avg_price)}
    return {
        leg.symbol: float(leg.filled_avg_price)
        for leg in getattr(order, "legs", ()) or ()
        if leg.symbol in p.legs and leg.filled_avg_price is not None
    }
