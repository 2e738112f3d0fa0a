"""Rolling the wheel's covered call (SimBroker over the real SPY chain of 2023-09-14).

The wheel reserves its 100 shares (no order behind the reservation) from the assignment on;
its covered call spends that reservation. A roll of the call buys it back and sells the next
one in one ``mleg`` order: the same 100 shares cover the new call, so the roll asks for no
second reservation of them. A cash-secured put's roll likewise counts the collateral of the put
it buys back as its own.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fakes.options_world import make_world
from v28quant.broker import OrderRequest, Owner
from v28quant.execution import Decision, Reservation
from v28quant.journal.reservations import Claim
from v28quant.occ import parse_occ
from v28quant.options import manage
from v28quant.options.config import OptionsConfig
from v28quant.options.context import OptionsCycle
from v28quant.options.engine import OptionsEngine
from v28quant.options.lifecycle import Held
from v28quant.options.sizing import ZERO_GREEKS

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)


async def _hold_wheel_call(ctx, eng: OptionsEngine) -> Held:  # type: ignore[no-untyped-def]
    """100 SPY shares reserved by the wheel and a call of 2023-09-29 sold against them."""
    buy = OrderRequest.equity("SPY", 100, "buy", owner=Owner("options", "venue", "opasn"))
    await ctx.executor.place(Decision(buy, {"why": "stock leg of an assignment"}))
    await ctx.broker.process()
    book = eng._book_of(ctx)
    wheel = book.stage("SPY")
    wheel.stage, wheel.shares, wheel.basis = "shares", 100, 440.0
    ctx.journal.hold_reservation(
        "options", "covered_call", "wheel:SPY", Claim("shares", "SPY", Decimal(100)), ctx.now
    )
    chain = await ctx.feed.option_chain("SPY")
    calls = chain[
        (chain["expiry"] == pd.Timestamp("2023-09-29")) & (chain["type"] == "call")
    ].sort_values("strike")
    spot = float((await ctx.feed.quote("SPY")).mid)
    call = str(calls[calls["strike"] >= spot]["symbol"].iloc[0])
    owner = Owner("options", "covered_call", "cc-1")
    sell = OrderRequest.option(call, 1, "sell", "sell_to_open", Decimal("0.01"), owner=owner)
    out = await ctx.executor.place(Decision(sell, {"why": "the wheel's covered call"}))
    await ctx.broker.process()
    assert (await ctx.executor.track(out.client_order_id, 0.0)).status.value == "filled"
    h = Held(
        "cc-1", "covered_call", "SPY", pd.Timestamp("2023-09-29").date(), {call: -1}, 1, -2.0,
        0.0, START, out.client_order_id, wheel=True,
    )  # fmt: skip
    book.opened(h)
    return h


@pytest.mark.asyncio
async def test_a_wheel_covered_call_rolls_on_the_shares_it_already_covers(
    tmp_path: Path, shared_data: Path
) -> None:
    """The roll reserves no second 100 shares: the executor admits it, the venue takes it."""
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="bull_quiet")
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    await eng.premarket(ctx)
    h = await _hold_wheel_call(ctx, eng)
    a, raw = await eng._analyse(ctx, "SPY", ctx.now)
    view = manage.leg_view(a, raw, h.legs, eng.cfg.rate).set_index("symbol")
    report = OptionsCycle("options", ctx.now)
    placed = await manage._roll(
        eng, ctx, eng._book_of(ctx), h, a, view, {}, "202309141530", report, ZERO_GREEKS
    )
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    rows = db.execute("SELECT status, reason FROM orders WHERE decision_id LIKE 'roll:cc-1:%'")
    ((status, reason),) = rows.fetchall()
    assert status != "refused", reason
    shares = db.execute(
        "SELECT symbol, amount, client_order_id FROM reservations "
        "WHERE kind = 'shares' AND released_ts IS NULL"
    ).fetchall()
    assert shares == [("SPY", "100", None)]  # the wheel's, and no other
    assert placed, reason


async def _hold_put_with_cash_for_one(ctx, eng: OptionsEngine) -> tuple[Held, Decimal]:  # type: ignore[no-untyped-def]
    """Sell a put of 2023-09-29 (first strike below spot) on its collateral and book it.

    The equity engine reserves the rest of the cash but $1,000. Returns the held put and its
    collateral.
    """
    chain = await ctx.feed.option_chain("SPY")
    puts = chain[
        (chain["expiry"] == pd.Timestamp("2023-09-29")) & (chain["type"] == "put")
    ].sort_values("strike")
    spot = float((await ctx.feed.quote("SPY")).mid)
    row = puts[puts["strike"] <= spot].iloc[-1]
    put, collateral = str(row["symbol"]), Decimal(str(row["strike"])) * 100
    owner = Owner("options", "cash_secured_put", "csp-1")
    sell = OrderRequest.option(put, 1, "sell", "sell_to_open", Decimal("0.01"), owner=owner)
    reserve = Reservation(owner, "cash", None, collateral)
    out = await ctx.executor.place(Decision(sell, {"why": "a cash-secured put"}, reserve))
    await ctx.broker.process()
    assert (await ctx.executor.track(out.client_order_id, 0.0)).status.value == "filled"
    cash = (await ctx.broker.account()).cash
    others = Claim("cash", None, cash - collateral - 1000)
    ctx.journal.hold_reservation("equity", "aggregate", "keep-cash", others, ctx.now)
    h = Held(
        "csp-1", "cash_secured_put", "SPY", pd.Timestamp("2023-09-29").date(), {put: -1}, 1,
        -2.0, 0.0, START, out.client_order_id,
    )  # fmt: skip
    eng._book_of(ctx).opened(h)
    return h, collateral


@pytest.mark.asyncio
async def test_a_cash_secured_put_rolls_on_the_collateral_it_frees(
    tmp_path: Path, shared_data: Path
) -> None:
    """Cash for the put's collateral and $1,000: the roll to a lower or near strike is sent.

    By hand: the journal's free cash is the $1,000 the equity engine left plus the old put's
    own collateral, which the roll frees when it fills; the new put's strike x 100 fits in that.
    Both reservations stay until the roll's fill: never less than either side needs.
    """
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="bull_quiet")
    eng = OptionsEngine(OptionsConfig.load(None, {}))
    await eng.premarket(ctx)
    h, collateral = await _hold_put_with_cash_for_one(ctx, eng)
    a, raw = await eng._analyse(ctx, "SPY", ctx.now)
    view = manage.leg_view(a, raw, h.legs, eng.cfg.rate).set_index("symbol")
    report = OptionsCycle("options", ctx.now)
    placed = await manage._roll(
        eng, ctx, eng._book_of(ctx), h, a, view, {}, "202309141530", report, ZERO_GREEKS
    )
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    rows = db.execute(
        "SELECT client_order_id, status, reason, request FROM orders "
        "WHERE decision_id LIKE 'roll:csp-1:%'"
    )
    ((cid, status, reason, request),) = rows.fetchall()
    assert status not in ("refused", "rejected"), reason
    assert placed, reason
    assert (await ctx.broker.order_by_client_id(cid)) is not None  # the venue has it
    (new_put,) = [g["occ_symbol"] for g in json.loads(request)["legs"] if g["side"] == "sell"]
    new_collateral = parse_occ(new_put).strike * 100
    assert new_collateral <= collateral + 1000
    held = db.execute(
        "SELECT client_order_id, amount FROM reservations "
        "WHERE engine = 'options' AND released_ts IS NULL ORDER BY id"
    ).fetchall()
    assert [(c, Decimal(x)) for c, x in held] == [
        (h.client_order_id, collateral),
        (cid, new_collateral),
    ]
