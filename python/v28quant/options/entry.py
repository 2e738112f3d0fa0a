"""Opening structures: the strategy table's row, sizing, Greek budget, touch risk, the order.

``enter_one`` tries the regime's strategies in order (the wheel's covered call first where it
holds shares) and places the first candidate that resolves from the chain and passes every
check; when none does, the rejections are journaled as a ``no_entry`` decision. An underlying
stopped out within ``reentry_cooldown_minutes`` opens nothing (``cooldown``) but the covered
call on wheel shares it holds: a ``cooldown`` decision says until when.
"""

from __future__ import annotations

import zlib
from typing import Any

from v28quant.broker.base import Owner
from v28quant.calendar import ET
from v28quant.options import contracts as C
from v28quant.options.context import OptionsContext, OptionsCycle
from v28quant.options.cooldown import cooldown_of
from v28quant.options.decisions import (
    CREDIT,
    ENGINE,
    EngineView,
    build_for,
    gate_check,
    level_needed,
    model_records,
    place_in_book,
    place_opening,
    reservation_for,
    vars_of,
)
from v28quant.options.lifecycle import Book, Pending
from v28quant.options.signals import ChainAnalysis
from v28quant.options.sizing import (
    add_greeks,
    book_greeks,
    capital_share,
    fit_greeks,
    size_structure,
)
from v28quant.options.strategies import (
    Structure,
    StructureGreeks,
)
from v28quant.options.touch import touch_probability
from v28quant.options.wheel_shares import wheel_covers
from v28quant.risk import OptionsRisk


async def enter_one(
    eng: EngineView,
    ctx: OptionsContext,
    book: Book,
    u: str,
    a: ChainAnalysis,
    view: tuple[float, float, str] | None,
    current: StructureGreeks,
    label: str | None,
    report: OptionsCycle,
) -> None:
    """Open at most one structure on ``u`` (see the module docstring)."""
    cfg = eng.cfg
    now = ctx.now
    if any(p.underlying == u and p.kind != "close" for p in book.pending.values()):
        return
    row = cfg.strategies_for(label)
    if row == ("close",):
        return
    wheel = book.stage(u)
    covers = cfg.wheel and wheel.stage == "shares" and wheel.shares >= 100
    cooling = cooldown_of(ctx.journal, ENGINE, u, now, cfg.reentry_cooldown_minutes)
    if cooling is not None:
        ctx.journal.record_decision(
            f"options-cooldown-{u}-{now.isoformat()}",
            ENGINE,
            "entry",
            u,
            "cooldown",
            {**cooling.reasoning(), "covered_call_on_wheel_shares": covers},
            now,
        )
        if not covers:
            return
    held_here = [
        h for h in book.held.values() if h.underlying == u and h.strategy != "covered_call"
    ]
    plan: list[str] = ["covered_call"] if covers else []
    # a cooldown still lets the wheel's shares be covered: that call only sells their upside
    if cooling is None and len(held_here) < cfg.max_per_underlying:
        plan += [s for s in row if s not in ("close", "covered_call")]
    if cfg.wheel and wheel.stage != "cash":  # one wheel cycle at a time per underlying
        plan = [s for s in plan if s != "cash_secured_put"]
    value, conf, source = view or (0.0, 0.0, "none")
    threshold = eng.min_confidence(ctx)
    account = await ctx.broker.account()
    equity, cash = float(account.equity), float(account.options_buying_power)
    rejected: list[dict[str, Any]] = []
    for entry in plan:
        refusal = eng.opening_refusal(ctx, level_needed(entry))
        if refusal is not None:  # the account's level, or a refusal earlier this session
            rejected.append({"strategy": entry, "why": refusal})
            continue
        strategy, rule = entry, None
        if entry == "debit_vertical":  # with the underlying's trend; none without one
            trend = eng.trend(u, a.spot)
            rule = {"entry": entry, "trend": trend.describe()}
            if trend.direction is None:
                why = f"no trend: drift t {trend.t_stat:.2f} inside +-{cfg.trend_min_t}"
                rejected.append({"strategy": entry, "why": why})
                continue
            strategy = "bull_call" if trend.direction == "up" else "bear_put"
        align = value if strategy in CREDIT else -value
        score = conf * (1.0 + align) / 2.0
        if strategy != "covered_call" and score < threshold:
            rejected.append({"strategy": strategy, "why": f"score {score:.3f} < {threshold}"})
            continue
        try:
            expiries = C.expiries_by_preference(a.chain, cfg.dte_min, cfg.dte_max, cfg.dte_target)
        except C.NoContract as exc:
            rejected.append({"strategy": strategy, "why": str(exc)})
            break
        for exp in expiries[:3]:
            try:
                s = build_for(eng, a, strategy, exp, book)
            except C.NoContract as exc:
                rejected.append({"strategy": strategy, "expiry": str(exp), "why": str(exc)})
                continue
            placed = await _try(
                eng,
                ctx,
                book,
                a,
                s,
                label,
                (value, conf, source, score),
                equity,
                cash,
                current,
                rejected,
                report,
                rule,
            )
            if placed:
                return
            break  # the structure resolved but failed a risk check: next strategy
    ctx.journal.record_decision(
        f"options-noentry-{u}-{now.isoformat()}",
        ENGINE,
        "entry",
        u,
        "no_entry",
        {
            "regime": label,
            "row": list(row),
            "plan": plan,
            "threshold": threshold,
            "vol_view": {"value": value, "confidence": conf, "source": source},
            "rejected": rejected,
            "analysis": a.summary(),
        },
        now,
    )


async def _try(
    eng: EngineView,
    ctx: OptionsContext,
    book: Book,
    a: ChainAnalysis,
    s: Structure,
    label: str | None,
    vote: tuple[float, float, str, float],
    equity: float,
    cash: float,
    current: StructureGreeks,
    rejected: list[dict[str, Any]],
    report: OptionsCycle,
    rule: dict[str, Any] | None = None,
) -> bool:
    cfg = eng.cfg
    now = ctx.now
    loss_limit = cfg.max_loss_per_structure * _risk_multiplier(ctx)
    sizing = size_structure(
        s,
        max_loss=loss_limit,
        max_units=cfg.max_units,
        equity=equity,
        cash_available=cash,
        reserve=eng.gate(ctx).limits.buying_power_reserve_fraction * equity,
        max_csp_fraction=cfg.max_csp_fraction,
        wheel_shares=book.stage(a.underlying).shares,
        share=capital_share(ctx),
    )
    base = {"strategy": s.strategy, "expiry": s.expiry.isoformat()}
    if sizing.units == 0 and sizing.limit != "max_loss":
        rejected.append({**base, "why": sizing.reason})
        return False
    # past the max loss or the Greek budget at one unit: the risk gate denies it, by name
    units = max(1, fit_greeks(s, max(sizing.units, 1), current, cfg.greeks))
    touch: list[dict[str, Any]] = []
    for leg in (x for x in s.legs if x.qty < 0):
        t = max((C.expiry_cutoff(a.underlying, leg.expiry) - now).total_seconds(), 60.0) / 31536e3
        hp = a.heston.params if a.heston is not None else None
        p, se = touch_probability(
            a.spot,
            leg.strike,
            t,
            cfg.rate,
            0.0,
            vol=leg.iv,
            heston=hp,
            paths=2000,
            steps=max(10, int(t * 365)),
            seed=zlib.crc32(leg.symbol.encode()),  # stable across runs, unlike hash()
        )
        touch.append({"leg": leg.symbol, "p_touch": round(p, 4), "stderr": round(se, 4)})
    worst = max((float(x["p_touch"]) for x in touch), default=0.0)
    if s.strategy not in ("cash_secured_put", "covered_call") and worst > cfg.max_touch_probability:
        rejected.append({**base, "why": f"P(touch) {worst:.2f} > {cfg.max_touch_probability}"})
        return False
    ladder = s.limit_prices(cfg.limit_steps)
    if not ladder:
        rejected.append({**base, "why": f"no credit at the mid ({s.net_mid:.4f})"})
        return False
    sid = f"{a.underlying}-{s.strategy}-{now.astimezone(ET):%Y%m%d%H%M}"
    owner = Owner(ENGINE, s.strategy[:16], sid)
    req = s.order(units, ladder[0], owner)
    defined = s.strategy not in ("cash_secured_put", "covered_call")
    exposure = OptionsRisk(
        book_greeks(current),
        book_greeks(add_greeks(current, s.greeks(), units)),
        cfg.greeks,
        sizing.max_loss_per_unit * units if defined else None,
        loss_limit,
        book.defined_risk_loss(),
    )
    verdict = await gate_check(eng, ctx, req, ladder[-1], exposure, cycle=report.at)
    if not verdict.allowed:
        rejected.append({**base, "why": f"risk gate: {verdict.reason}", "check": verdict.check})
        report.denied += 1
        return False
    value, conf, source, score = vote
    legs_model = a.candidates[a.candidates["symbol"].isin([leg.symbol for leg in s.legs])]
    why = {
        "rule": f"strategy table [{label or 'default'}] -> {s.strategy}",
        **(rule or {}),
        "score": round(score, 4),
        "threshold": eng.min_confidence(ctx),
        "vol_view": {"value": round(value, 4), "confidence": round(conf, 4), "source": source},
        "regime": label,
        "structure": s.describe(),
        "units": units,
        "sizing": {
            "max_loss_per_unit": sizing.max_loss_per_unit,
            "collateral_per_unit": sizing.collateral_per_unit,
        },
        "greeks_before": vars_of(current),
        "greeks_after": vars_of(add_greeks(current, s.greeks(), units)),
        "touch": touch,
        "ladder": [str(x) for x in ladder],
        "model_values": model_records(legs_model),
        "analysis": a.summary(),
        "rejected": list(rejected),
    }
    reserve = reservation_for(owner, s, units)
    if s.strategy == "covered_call" and wheel_covers(ctx.journal, s.underlying, units):
        reserve = None  # the wheel reserved these shares when they were assigned
    pending = Pending(
        req.client_order_id,
        "open",
        sid,
        a.underlying,
        s.strategy,
        {leg.symbol: leg.qty for leg in s.legs},
        s.expiry,
        sizing.max_loss_per_unit,
        [str(x) for x in ladder],
        0,
        now,
        wheel=cfg.wheel and s.strategy in ("cash_secured_put", "covered_call"),
        worst=str(ladder[-1]),  # what the gate approved: a walk never asks more
    )
    out = await place_in_book(book, pending, lambda: place_opening(eng, ctx, req, why, reserve))
    if out.status in ("refused", "rejected"):
        rejected.append({**base, "why": f"{out.status}: {out.reason}"})
        return False
    report.orders += 1
    return True


def _risk_multiplier(ctx: OptionsContext) -> float:
    """Return the regime controller's risk multiplier in (0, 1] (1 without an assessment)."""
    m = getattr(ctx.regime, "risk_multiplier", 1.0)
    return float(m) if isinstance(m, (int, float)) and 0.0 < float(m) <= 1.0 else 1.0
