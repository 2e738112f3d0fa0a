"""The risk gate's Greek budget, the wheel's shares from assignment on, and iron condor rolls.

On SimBroker over the real SPY chain of 2023-09-14 (``fakes.options_world``): a structure past
the vega budget is denied by the risk gate, which journals the Greek it breaks; shares a put
assignment delivers are reserved before any covered call exists, while the equity engine
trades the same stock; a tested iron condor rolls its tested side as one four-leg ``mleg``
order under one client order id, and the side left open stays in the book.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import make_world
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.base import Activity
from v28quant.execution import Decision
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held
from v28quant.risk import RiskGate
from v28quant.settings import RiskLimits
from v28quant.signals import RegimeState

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)


def _config(**over: object) -> OptionsConfig:
    return OptionsConfig.load(None, over)


@pytest.mark.asyncio
async def test_a_structure_past_the_vega_budget_is_denied_by_the_gate(
    tmp_path: Path, shared_data: Path
) -> None:
    """A condor is short vega: with a 1-dollar vega budget the gate denies it, naming vega."""
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways")
    ctx.risk = RiskGate(RiskLimits(), ctx.journal)
    budget = {"max_delta_shares": 1500.0, "max_gamma": 300.0, "max_vega": 1.0}
    eng = OptionsEngine(_config(strategies={"sideways": ["iron_condor"]}, greeks=budget))
    await eng.premarket(ctx)
    report = await eng.cycle(ctx)
    assert report.orders == 0
    assert report.denied == 1
    assert await ctx.broker.orders("all") == []
    (deny,) = ctx.journal.decisions(action="deny")
    assert deny["engine"] == "options"
    assert deny["reasoning"]["check"] == "greek_vega"
    assert "vega" in deny["reasoning"]["reason"]
    assert abs(deny["reasoning"]["options"]["after"]["vega"]) > 1.0
    (noentry,) = ctx.journal.decisions(action="no_entry")
    assert any(r.get("check") == "greek_vega" for r in noentry["reasoning"]["rejected"])


async def _fill_equity(ctx, qty: int, side: str, n: int) -> str:  # type: ignore[no-untyped-def]
    req = OrderRequest.equity("SPY", qty, side, owner=Owner("equity", "trend", f"eq-{n}"))
    out = await ctx.executor.place(Decision(req, {"why": "equity engine"}))
    await ctx.broker.process()
    return str(out.status)


@pytest.mark.asyncio
async def test_assigned_shares_are_reserved_before_the_covered_call(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPASN on the wheel's put: 100 shares reserved at once; equity keeps only its own 30."""
    put = "SPY230915P00450000"
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="crisis")
    assert await _fill_equity(ctx, 30, "buy", 1) in ("new", "accepted", "filled")
    eng = OptionsEngine(_config())
    await eng.premarket(ctx)
    assert eng.book is not None
    eng.book.opened(
        Held(
            "w1", "cash_secured_put", "SPY", date(2023, 9, 15), {put: -1}, 1, -2.0, 0.0,
            START, "v28-options-cash_secured_put-w1", wheel=True,
        )
    )  # fmt: skip
    # the assignment delivers 100 shares (bought here to stand in for the venue's stock leg)
    stand_in = OrderRequest.equity("SPY", 100, "buy", owner=Owner("options", "venue", "opasn"))
    await ctx.executor.place(Decision(stand_in, {"why": "stock leg of the assignment"}))
    await ctx.broker.process()
    acts = [Activity("opasn-1", "OPASN", put, Decimal(1), Decimal(450), START)]

    async def activities(since: object = None) -> list[Activity]:
        return acts

    monkeypatch.setattr(ctx.broker, "activities", activities)
    await eng.cycle(ctx)  # crisis: no covered call yet
    assert eng.book.stage("SPY").stage == "shares"
    shares = [r for r in ctx.journal.reservations() if r["kind"] == "shares"]
    assert [(r["symbol"], r["amount"], r["client_order_id"]) for r in shares] == [
        ("SPY", Decimal(100), None)
    ]
    assert any(d["action"] == "reserve_shares" for d in ctx.journal.decisions(engine="options"))
    assert any("WHEEL SPY" in n for n in ctx.notifier.notices)
    # the equity engine, trading SPY too, may sell its own 30 shares and no more
    ctx.clock.advance(timedelta(minutes=5))
    assert await _fill_equity(ctx, 31, "sell", 2) == "refused"
    assert await _fill_equity(ctx, 30, "sell", 3) in ("new", "accepted", "filled")
    positions = {p.symbol: p.qty for p in await ctx.broker.positions()}
    assert positions["SPY"] == 100
    # the covered call spends the wheel's reservation, asking for no second one
    ctx.regime = ctx.regime.__class__("bull_quiet", {"bull_quiet": 1.0}, "test", ctx.now)
    await eng.cycle(ctx)
    cc = [o for o in await ctx.broker.orders("all") if "covered_call" in o.client_order_id]
    assert len(cc) == 1
    assert len([r for r in ctx.journal.reservations() if r["kind"] == "shares"]) == 1
    # called away: the shares leave the wheel and the reservation is released
    call = cc[0].symbol or cc[0].legs[0].symbol
    eng.book.pending.clear()
    eng.book.opened(
        Held(
            "c1", "covered_call", "SPY", date(2023, 10, 20), {call: -1}, 1, -3.0, 0.0,
            ctx.now, cc[0].client_order_id, wheel=True,
        )
    )  # fmt: skip
    acts.append(Activity("opasn-2", "OPASN", call, Decimal(1), None, ctx.now))
    ctx.clock.advance(timedelta(minutes=5))
    await eng.cycle(ctx)
    assert eng.book.stage("SPY").stage == "cash"
    assert [r for r in ctx.journal.reservations() if r["kind"] == "shares"] == []


@pytest.mark.asyncio
async def test_a_tested_iron_condor_rolls_its_tested_side_as_one_order(
    tmp_path: Path, shared_data: Path
) -> None:
    """Close the tested put spread and open it further out: one 4-leg mleg, one client id."""
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways")
    # roll rules loose enough that a fresh condor counts as tested (short |delta| >= 0.2)
    exits = {"roll_dte": 45, "roll_delta": 0.2, "max_rolls": 1}
    eng = OptionsEngine(
        _config(strategies={"sideways": ["iron_condor"]}, exits=exits, limit_steps=2)
    )
    await eng.premarket(ctx)
    await eng.cycle(ctx)
    assert eng.book is not None
    roll = None
    for _ in range(4):  # the condor's limit walks to a fill; the roll goes out the same cycle
        ctx.clock.advance(timedelta(minutes=5))
        await eng.cycle(ctx)
        roll = next((p for p in eng.book.pending.values() if p.kind == "roll"), None)
        if roll is not None:
            break
    assert roll is not None
    condor = eng.book.held[roll.old_id]
    assert condor.strategy == "iron_condor"
    order = await ctx.broker.order_by_client_id(roll.client_order_id)
    assert order is not None
    assert order.order_class == "mleg"
    assert len(order.legs) == 4
    puts = {s for s in condor.legs if "P" in s[-9:]}
    closing = {leg.symbol for leg in order.legs if (leg.intent or "").endswith("close")}
    assert closing == puts
    assert sorted(leg.intent or "" for leg in order.legs) == [
        "buy_to_close", "buy_to_open", "sell_to_close", "sell_to_open",
    ]  # fmt: skip
    assert roll.strategy == "bull_put"
    assert roll.expiry > condor.expiry
    # a crash after the send lost the pending order: the same cycle re-decides the same roll
    # under the same client order id, and the venue still has one order
    cid = roll.client_order_id
    eng.book.pending.clear()
    await eng.cycle(ctx)
    assert cid in eng.book.pending
    assert len([o for o in await ctx.broker.orders("all") if o.client_order_id == cid]) == 1
    # the roll fills: the put spread lives on further out, the call spread stays as it was
    for _ in range(4):
        ctx.clock.advance(timedelta(minutes=5))
        await eng.cycle(ctx)
        if not eng.book.pending:
            break
    assert not eng.book.pending
    kept = eng.book.held[condor.structure_id]
    assert kept.strategy == "bear_call"
    assert set(kept.legs) == set(condor.legs) - puts
    (new,) = [h for h in eng.book.held.values() if h.structure_id != condor.structure_id]
    assert new.strategy == "bull_put"
    assert new.rolls == 1
    assert kept.rolls == 1  # max_rolls = 1: neither side rolls again
    assert kept.credit  # its entry from its own legs' fills: the call spread was sold
    assert new.expiry > condor.expiry
    positions = {p.symbol: p.qty for p in await ctx.broker.positions()}
    for h in (kept, new):
        for sym, q in h.legs.items():
            assert positions[sym] == q * h.units
    assert not set(positions) & puts  # the old put spread is closed


@pytest.mark.asyncio
async def test_closing_a_condor_opened_today_is_a_day_trade_the_gate_denies(
    tmp_path: Path, shared_data: Path
) -> None:
    """Under $25,000 with three day trades in the last five sessions, a same-day close waits.

    Three AAPL round trips on earlier sessions (Sep 8, 11, 13) are three day trades by hand;
    the condor opened today and closed today adds one per leg, 3 + 4 = 7 (past the three FINRA
    Rule 4210 allows). The regime turns to ``close``: the exit is denied and journaled by the
    gate with the PDT reason, no closing order reaches the broker, and the book still holds
    the condor.
    """
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways", cash="20000")
    # SimBroker reports no day-trade count (as Alpaca since 2026): the rule is switched on
    ctx.risk = RiskGate(RiskLimits(pdt_rule="on"), ctx.journal)
    for i, day in enumerate((8, 11, 13)):
        t = datetime(2023, 9, day, 11, 0, tzinfo=ET)
        ctx.journal.record_fill(f"b{i}", None, "AAPL", 1, "170", "buy", t)
        ctx.journal.record_fill(f"s{i}", None, "AAPL", 1, "171", "sell", t + timedelta(hours=1))
    eng = OptionsEngine(
        _config(strategies={"sideways": ["iron_condor"], "crisis": ["close"]}, limit_steps=2)
    )
    await eng.premarket(ctx)
    await eng.cycle(ctx)
    assert eng.book is not None
    for _ in range(4):  # the condor's limit walks to a fill
        if eng.book.held:
            break
        ctx.clock.advance(timedelta(minutes=5))
        await eng.cycle(ctx)
    (condor,) = eng.book.held.values()
    ctx.regime = RegimeState("crisis", {"crisis": 1.0}, "test", ctx.now)
    ctx.clock.advance(timedelta(minutes=5))
    report = await eng.cycle(ctx)
    assert report.denied == 1
    (deny,) = ctx.journal.decisions(action="deny")
    assert deny["reasoning"]["check"] == "pdt"
    assert "day trade 7 in five sessions" in deny["reasoning"]["reason"]
    orders = await ctx.broker.orders("all")
    assert not [o for o in orders if any((g.intent or "").endswith("close") for g in o.legs)]
    assert list(eng.book.held) == [condor.structure_id]
    assert not eng.book.pending


@pytest.mark.asyncio
async def test_a_cash_secured_put_is_sized_to_the_cash_less_the_gates_reserve(
    tmp_path: Path, shared_data: Path
) -> None:
    """With 89,000 of cash the gate keeps 2 % of equity (1,780): 87,220 backs one 440 put.

    The put the engine picks on SPY on 2023-09-14 (the 440 of October) needs its strike x 100
    of collateral a contract: two (88,000) fit the 89,000 but not the 87,220 the gate lets the
    options spend, so the engine sends one contract, which the gate passes.
    """
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways", cash="89000")
    ctx.risk = RiskGate(RiskLimits(max_order_notional=1e6), ctx.journal)
    cfg = _config(strategies={"sideways": ["cash_secured_put"]}, max_csp_fraction=1.0)
    eng = OptionsEngine(cfg)
    await eng.premarket(ctx)
    report = await eng.cycle(ctx)
    (order,) = await ctx.broker.orders("all")
    strike = int(str(order.symbol)[-8:]) / 1000
    assert 87220 / 2 < strike * 100 <= 87220, strike  # by hand: one fits, two do not
    assert 2 * strike * 100 <= 89000  # two would fit the cash without the reserve
    assert order.qty == 1
    assert (report.orders, report.denied) == (1, 0)
    assert ctx.journal.decisions(action="deny") == []


@pytest.mark.asyncio
async def test_a_cash_secured_put_the_cash_less_the_reserve_cannot_back_is_not_sent(
    tmp_path: Path, shared_data: Path
) -> None:
    """With 44,500 of cash the gate keeps 2 % of equity (890): 43,610 backs puts up to 436.

    The 440 put needs 44,000 of collateral, within the cash but past what the gate lets the
    options spend: the engine sizes it at no unit and journals why; nothing reaches the
    simulated exchange and the gate denies nothing.
    """
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways", cash="44500")
    ctx.risk = RiskGate(RiskLimits(max_order_notional=1e6), ctx.journal)
    cfg = _config(strategies={"sideways": ["cash_secured_put"]}, max_csp_fraction=1.0)
    eng = OptionsEngine(cfg)
    await eng.premarket(ctx)
    report = await eng.cycle(ctx)
    assert await ctx.broker.orders("all") == []
    assert (report.orders, report.denied) == (0, 0)
    assert ctx.journal.decisions(action="deny") == []
    (noentry,) = ctx.journal.decisions(action="no_entry")
    (why,) = [r["why"] for r in noentry["reasoning"]["rejected"] if "expiry" in r]
    assert "collateral 44000.00 per unit" in why, why
    assert "43610.00" in why, why
