"""Managing open structures: exits, expiry-day handling, rolls and early-assignment risk.

``manage_one`` marks a held structure on this cycle's chain and surface, asks
``lifecycle.exit_rule`` what to do, and places the one order it calls for: a close (an urgent
one at the natural price, else a limit walked from the mid) or a roll, one ``mleg`` order that
closes the old legs and opens the new ones. A close or roll refused or rejected is said once
per structure and reason, as the journal tells (the verdict tries again every cycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pandas as pd

from v28quant.broker.base import Owner
from v28quant.broker.ticks import TickScheme, round_net_marketable
from v28quant.calendar import ET
from v28quant.occ import parse_occ
from v28quant.options import contracts as C
from v28quant.options.config import OptionsConfig
from v28quant.options.context import OptionsContext, OptionsCycle
from v28quant.options.decisions import (
    ENGINE,
    EngineView,
    build_for,
    gate_check,
    last_refusal,
    level_needed,
    level_refused,
    place,
    place_in_book,
    place_opening,
    reservation_for,
    say_refusal,
)
from v28quant.options.lifecycle import Book, Held, Marks, Pending, Verdict, exit_rule
from v28quant.options.signals import ChainAnalysis
from v28quant.options.sizing import ZERO_GREEKS, add_greeks, book_greeks
from v28quant.options.strategies import (
    CONTRACT,
    Structure,
    StructureGreeks,
    order_for,
)
from v28quant.options.wheel_shares import wheel_covers
from v28quant.risk import OptionsRisk


def leg_view(
    a: ChainAnalysis, raw: pd.DataFrame, legs: Mapping[str, int], rate: float
) -> pd.DataFrame:
    """Return the annotated rows (quotes, surface vol, Greeks) of ``legs`` from the raw chain.

    Legs that left the liquid set are still quoted: they are annotated here from the raw
    chain on the cycle's surface.
    """
    rows = raw[raw["symbol"].isin(list(legs))]
    if rows.empty:
        return rows
    return C.annotate(rows, spot=a.spot, now=a.as_of, rate=rate, surface=a.surface)


def held_greeks(h: Held, view: pd.DataFrame) -> StructureGreeks:
    """Return the position Greeks of a held structure (all its units)."""
    g = ZERO_GREEKS
    for _, r in view.iterrows():
        q = h.legs.get(str(r["symbol"]), 0) * h.units
        g = add_greeks(
            g,
            StructureGreeks(
                CONTRACT * float(r["m_delta"]),
                CONTRACT * float(r["m_gamma"]),
                CONTRACT * float(r["m_vega"]),
                CONTRACT * float(r["m_theta"]) / 365.0,
            ),
            q,
        )
    return g


def portfolio_greeks(
    book: Book, analyses: Mapping[str, tuple[ChainAnalysis, pd.DataFrame]], rate: float
) -> StructureGreeks:
    """Return the engine's portfolio Greeks over every held structure with a chain this cycle."""
    g = ZERO_GREEKS
    for h in book.held.values():
        if h.underlying in analyses:
            a, raw = analyses[h.underlying]
            g = add_greeks(g, held_greeks(h, leg_view(a, raw, h.legs, rate)))
    return g


async def manage_one(
    eng: EngineView,
    ctx: OptionsContext,
    book: Book,
    h: Held,
    a: ChainAnalysis,
    raw: pd.DataFrame,
    label: str | None,
    report: OptionsCycle,
    current: StructureGreeks = ZERO_GREEKS,
) -> None:
    """Apply the exit rules to one held structure and place the order they call for.

    ``current`` is the engine's portfolio Greeks, for the risk gate's check of a roll.
    """
    cfg = eng.cfg
    now = ctx.now
    view = leg_view(a, raw, h.legs, cfg.rate).set_index("symbol")
    if set(view.index) != set(h.legs):
        return  # a leg without a quote: no decision on half the picture
    close_nat = sum(
        -q * float(view.loc[s, "ask"] if -q > 0 else view.loc[s, "bid"]) for s, q in h.legs.items()
    )
    close_mid = sum(-q * float(view.loc[s, "mid"]) for s, q in h.legs.items())
    intrinsic = {
        s: max(0.0, (a.spot - r["strike"]) if r["type"] == "call" else (r["strike"] - a.spot))
        for s, r in view.iterrows()
    }
    marks = Marks(
        close_nat,
        {str(s): float(view.loc[s, "m_delta"]) for s in view.index},
        {str(s): float(view.loc[s, "mid"]) - intrinsic[s] for s in view.index},
        a.spot,
    )
    # a close that filled in part finishes under the rule that started it, not judged anew
    finishing = h.closing_rule
    verdict = (
        Verdict(finishing, {"finishing": "the rest of a close filled in part"})
        if finishing is not None
        else exit_rule(
            h,
            marks,
            now=now,
            cutoff=C.expiry_cutoff(h.underlying, h.expiry),
            rules=cfg.exits,
            ex_dividend=cfg.next_dividend(h.underlying, now.astimezone(ET).date()),
        )
    )
    if verdict is None and cfg.strategies_for(label) == ("close",) and not h.wheel:
        verdict = Verdict("stop_loss", {"regime": label, "rule": "strategy table says close"})
    if verdict is None:
        return
    stamp = now.astimezone(ET).strftime("%Y%m%d%H%M")
    why = {
        "rule": verdict.action,
        **verdict.reason,
        "structure_id": h.structure_id,
        "regime": label,
        "analysis": a.summary(),
        "close_natural": round(close_nat, 4),
        "close_mid": round(close_mid, 4),
    }
    if verdict.action in ("roll", "early_assignment") and finishing is None:
        placed = await _roll(eng, ctx, book, h, a, view, why, stamp, report, current)
        if placed or verdict.action == "roll":
            return
    if "naked_call" in verdict.reason:
        ctx.notifier.notify(
            f"OPTIONS NAKED CALL {h.structure_id}: {verdict.reason['naked_call']} short without "
            "its long leg: bought back at the natural now"
        )
    urgent = verdict.action in ("stop_loss", "expiry_close", "early_assignment")
    scheme = C.tick_scheme_of(raw, h.legs, h.underlying)
    ladder = (
        _at_natural(close_nat, scheme) if urgent else _ladder(close_mid, close_nat, scheme, cfg)
    )
    legs = [(s, -q) for s, q in h.legs.items()]
    owner = Owner(ENGINE, h.strategy[:16], f"close:{h.structure_id}:{stamp}")
    req = order_for(legs, h.units, ladder[0], owner, opening=False, scheme=scheme)
    # a structure opened this session closes as a day trade: the PDT rule may hold it to the
    # next session (its loss is bounded: defined risk, or the collateral behind it); one
    # expiring today must close whatever the count, or it is exercised or assigned tonight
    account = await ctx.broker.account()
    # an uncovered call closes whatever the day-trade count: its loss has no bound
    must_close = verdict.action == "expiry_close" or "naked_call" in verdict.reason
    pdt = eng.gate(ctx).check_close(req, account, now, must_close=must_close)
    if not pdt.allowed:
        report.denied += 1
        return
    if pdt.reason is not None:
        why["pdt"] = pdt.reason
    pending = Pending(
        req.client_order_id,
        "close",
        h.structure_id,
        h.underlying,
        h.strategy,
        dict(h.legs),
        h.expiry,
        h.max_loss,
        [str(x) for x in ladder],
        0,
        now,
        old_id=h.structure_id,
        wheel=h.wheel,
        rule=verdict.action,
    )
    said = last_refusal(ctx.journal, "close", h.structure_id)  # read before this try joins it
    out = await place_in_book(book, pending, lambda: place(ctx, req, why, None, own_notice=True))
    if out.status in ("refused", "rejected"):
        say_refusal(ctx, "close", h.structure_id, out, said)
    else:
        report.orders += 1


def _at_natural(natural: float, scheme: TickScheme) -> list[Decimal]:
    """Return the one rung of an urgent close: the natural, on the tick grid towards a fill.

    A net of legs quoted in pennies is off the $0.05 grid at $3.00 and above; rounded down
    there it would rest below the natural instead of closing at once.
    """
    return [round_net_marketable(Decimal(str(round(natural, 6))), scheme)]


def _ladder(mid: float, natural: float, scheme: TickScheme, cfg: OptionsConfig) -> list[Decimal]:
    return C.limit_ladder(round(mid, 6), round(max(natural, mid), 6), cfg.limit_steps, scheme)


async def _roll(
    eng: EngineView,
    ctx: OptionsContext,
    book: Book,
    h: Held,
    a: ChainAnalysis,
    view: pd.DataFrame,
    why: dict[str, Any],
    stamp: str,
    report: OptionsCycle,
    current: StructureGreeks,
) -> bool:
    """Roll ``h`` out to the next expiry in the DTE window as one ``mleg`` order.

    A vertical or single leg rolls whole; an iron condor rolls its tested side (close that
    vertical, open it again further out: four legs), the venue's four-leg limit ruling out all
    eight legs in one order. The risk gate checks the new structure's max loss and the Greeks.
    """
    cfg = eng.cfg
    closing, strategy = dict(h.legs), h.strategy
    if h.strategy == "iron_condor":
        tested = [*why.get("tested", []), *([why["leg"]] if "leg" in why else [])]
        if not tested:
            return False
        call = parse_occ(tested[0]).call
        closing = {s: q for s, q in h.legs.items() if parse_occ(s).call == call}
        strategy = "bear_call" if call else "bull_put"
    elif len(h.legs) > 2:
        return False
    refusal = eng.opening_refusal(ctx, level_needed(strategy, mleg=True))
    if refusal is not None:
        why["roll_rejected"] = [refusal]
        return False
    rejected: list[str] = []
    new: Structure | None = None
    try:
        expiries = C.expiries_by_preference(a.chain, cfg.dte_min, cfg.dte_max, cfg.dte_target)
    except C.NoContract as exc:
        why["roll_rejected"] = [str(exc)]
        return False
    for exp in [e for e in expiries if e > h.expiry][:3]:
        try:
            new = build_for(eng, a, strategy, exp, book)
            break
        except C.NoContract as exc:
            rejected.append(f"{exp}: {exc}")
    if new is None:
        why["roll_rejected"] = rejected
        return False
    legs = [(s, -q) for s, q in closing.items()] + [(leg.symbol, leg.qty) for leg in new.legs]
    opening = [False] * len(closing) + [True] * len(new.legs)
    close_nat = sum(
        -q * float(view.loc[s, "ask"] if -q > 0 else view.loc[s, "bid"]) for s, q in closing.items()
    )
    close_mid = sum(-q * float(view.loc[s, "mid"]) for s, q in closing.items())
    closing_penny = C.tick_scheme_of(view.reset_index(), closing, h.underlying) != "standard"
    scheme = new.tick_scheme() if closing_penny else "standard"
    ladder = C.limit_ladder(
        round(close_mid + new.net_mid, 6),
        round(max(close_nat + new.natural, close_mid + new.net_mid), 6),
        cfg.limit_steps,
        scheme,
    )
    owner = Owner(ENGINE, h.strategy[:16], f"roll:{h.structure_id}:{h.rolls}:{stamp}")
    req = order_for(legs, h.units, ladder[0], owner, opening=opening, scheme=scheme)
    kept = {s: q for s, q in h.legs.items() if s not in closing}
    kept_net = sum(q * float(view.loc[s, "mid"]) for s, q in kept.items()) if kept else None
    why = {
        **why,
        "rule": "roll",
        "rolls": f"{h.rolls + 1} of max_rolls {cfg.exits.max_rolls}",
        "closing": sorted(closing),
        "kept": sorted(kept),
        "new": new.describe(),
        "rejected": rejected,
    }
    after = add_greeks(
        add_greeks(current, _legs_greeks(view, closing), -h.units), new.greeks(), h.units
    )
    defined = new.strategy not in ("cash_secured_put", "covered_call")  # else: collateral
    exposure = OptionsRisk(
        book_greeks(current),
        book_greeks(after),
        cfg.greeks,
        new.max_loss(new.natural) * h.units if defined else None,
        cfg.max_loss_per_structure,
        book.defined_risk_loss(excluding=h.structure_id),
    )
    verdict = await gate_check(eng, ctx, req, ladder[-1], exposure, cycle=report.at)
    if not verdict.allowed:
        why["roll_rejected"] = [f"risk gate: {verdict.reason}"]
        report.denied += 1
        return False
    pending = Pending(
        req.client_order_id,
        "roll",
        f"{h.structure_id}-r{h.rolls + 1}",
        h.underlying,
        new.strategy,
        {leg.symbol: leg.qty for leg in new.legs},
        new.expiry,
        new.max_loss(new.natural),
        [str(x) for x in ladder],
        0,
        ctx.now,
        old_id=h.structure_id,
        wheel=h.wheel,
        closing=closing if kept else None,
        kept_net=kept_net,
    )
    reserve = reservation_for(owner, new, h.units)
    if new.strategy == "covered_call" and wheel_covers(ctx.journal, h.underlying, h.units):
        reserve = None  # the wheel's shares behind the call bought back cover the new one
    elif reserve is not None and not kept:
        # the whole structure is bought back: its collateral, freed at the fill, is the roll's
        reserve = replace(reserve, takes_over=h.client_order_id)
    said = last_refusal(ctx.journal, "roll", h.structure_id)  # read before this try joins it
    out = await place_in_book(
        book, pending, lambda: place_opening(eng, ctx, req, why, reserve, own_notice=True)
    )
    if out.status in ("refused", "rejected"):
        if level_refused(out) is None:  # else said when it paused opening (refuse_opening)
            say_refusal(ctx, "roll", h.structure_id, out, said)
        return False
    report.orders += 1
    return True


def _legs_greeks(view: pd.DataFrame, legs: Mapping[str, int]) -> StructureGreeks:
    """Return the position Greeks of one unit of ``legs`` (``view`` indexed by symbol)."""
    per_day = {"m_delta": 1.0, "m_gamma": 1.0, "m_vega": 1.0, "m_theta": 365.0}
    return StructureGreeks(
        *(
            CONTRACT * sum(q * float(view.loc[s, col]) for s, q in legs.items()) / div
            for col, div in per_day.items()
        )
    )
