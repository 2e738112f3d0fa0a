"""The options engine on SimBroker over the real SPY chain of 2023-09-14.

One cycle opens one structure as one order (a multi-leg structure as one ``mleg`` order, never
legged in), with its reservation and its reasoning journaled; the entry threshold comes from
settings; unfilled limits walk to the natural and fill there; the book survives a restart.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fakes.notices import Notices
from fakes.options_world import Ctx, make_world
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)


def _config(**over: object) -> OptionsConfig:
    return OptionsConfig.load(None, over)


def _decisions(ctx: Ctx) -> list[tuple[str, str, dict[str, object]]]:
    db = sqlite3.connect(str(ctx.journal.path))
    rows = db.execute("SELECT decision_id, action, reasoning FROM decisions ORDER BY ts").fetchall()
    db.close()
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


@pytest.mark.asyncio
async def test_one_cycle_opens_an_iron_condor_as_one_mleg_order(
    tmp_path: Path, shared_data: Path
) -> None:
    """Sideways regime -> iron condor: one mleg order with four legs, reserved and reasoned."""
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways")
    eng = OptionsEngine(_config(strategies={"sideways": ["iron_condor"]}))
    await eng.premarket(ctx)
    report = await eng.cycle(ctx)
    assert report.orders == 1
    orders = await ctx.broker.orders("all")
    assert len(orders) == 1
    (o,) = orders
    assert o.order_class == "mleg"
    assert len(o.legs) == 4
    assert o.client_order_id.startswith("v28-options-iron_condor-")
    intents = sorted(leg.intent or "" for leg in o.legs)
    assert intents == ["buy_to_open", "buy_to_open", "sell_to_open", "sell_to_open"]
    # the structure's max loss is held in cash against the equity engine
    (res,) = ctx.journal.reservations()
    assert res["engine"] == "options"
    assert res["kind"] == "cash"
    why = next(r for _, a, r in _decisions(ctx) if r.get("rule", "").startswith("strategy"))
    analysis = why["analysis"]
    assert isinstance(analysis, dict)
    for key in ("snapshot_id", "surface_rmse_vol_pts", "atm_iv_30d", "iv_rank", "heston"):
        assert key in analysis
    assert why["regime"] == "sideways"
    structure = why["structure"]
    assert isinstance(structure, dict)
    assert structure["max_loss"] is not None
    assert float(structure["max_loss"]) * int(why["units"]) <= 2500.0
    assert why["touch"]
    # signals journaled with their data time
    sig = ctx.journal.signals()
    assert set(sig["model"]) >= {"options_surface", "options_heston", "options_iv_rank"}
    assert (sig["ts"] == START).all()


@pytest.mark.asyncio
async def test_the_threshold_comes_from_settings(tmp_path: Path, shared_data: Path) -> None:
    """With min_confidence 1 nothing opens and the refusal is journaled with the score."""
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, threshold=1.0)
    eng = OptionsEngine(_config())
    await eng.premarket(ctx)
    report = await eng.cycle(ctx)
    assert report.orders == 0
    assert await ctx.broker.orders("all") == []
    noentry = [r for _, a, r in _decisions(ctx) if a == "no_entry"]
    assert noentry
    rejected = noentry[0]["rejected"]
    assert isinstance(rejected, list)
    # each candidate fell to the threshold (a debit vertical without a trend has no side)
    assert all(str(x["why"]).startswith(("score", "no trend")) for x in rejected)
    assert any(str(x["why"]).startswith("score") for x in rejected)


@pytest.mark.asyncio
async def test_limit_walks_to_the_natural_and_fills_all_legs_together(
    tmp_path: Path, shared_data: Path
) -> None:
    """The mid does not fill on SimBroker; each cycle moves one rung; all legs fill at once."""
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="bull_quiet")
    eng = OptionsEngine(_config(strategies={"bull_quiet": ["bull_put"]}, limit_steps=2))
    await eng.premarket(ctx)
    await eng.cycle(ctx)
    for _ in range(3):
        ctx.clock.advance(timedelta(minutes=5))
        await eng.cycle(ctx)
    assert eng.book is not None
    (held,) = eng.book.held.values()
    assert held.strategy == "bull_put"
    positions = {p.symbol: p.qty for p in await ctx.broker.positions()}
    assert set(positions) == set(held.legs)
    for sym, q in held.legs.items():
        assert positions[sym] == q * held.units
    db = sqlite3.connect(str(ctx.journal.path))
    filled = {r[0] for r in db.execute("SELECT symbol FROM fills").fetchall()}
    db.close()
    assert filled == set(held.legs)  # the journal has a fill for every leg
    # one order chain: the original and its replacements, every one multi-leg
    orders = await ctx.broker.orders("all")
    assert all(o.order_class == "mleg" for o in orders)
    assert sum(o.status.value == "filled" for o in orders) == 1
    assert held.credit
    assert any("FILL" in n for n in ctx.notifier.notices)
    # the book is persisted beside the journal and read back by a new engine
    again = OptionsEngine(_config())
    await again.premarket(ctx)
    assert again.book is not None
    assert set(again.book.held) == set(eng.book.held)


@pytest.mark.asyncio
async def test_reservations_keep_the_equity_engine_off_wheel_shares(
    tmp_path: Path, shared_data: Path
) -> None:
    """The covered call reserves its 100 shares: an equity sell of them is refused."""
    from decimal import Decimal

    from v28quant.broker import OrderRequest, Owner
    from v28quant.execution import Decision

    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="bull_quiet")
    buy = OrderRequest.equity("SPY", 100, "buy", owner=Owner("options", "wheel", "assigned-1"))
    out = await ctx.executor.place(Decision(buy, {"why": "stand-in for an assignment"}))
    assert out.status in ("new", "accepted", "filled")
    await ctx.broker.process()
    eng = OptionsEngine(_config(strategies={"bull_quiet": ["bull_put"]}))
    await eng.premarket(ctx)
    assert eng.book is not None
    wheel = eng.book.stage("SPY")
    wheel.stage, wheel.shares, wheel.basis = "shares", 100, 445.0
    await eng.cycle(ctx)
    cc = [
        o
        for o in await ctx.broker.orders("all")
        if o.client_order_id.startswith("v28-options-covered_call")
    ]
    assert len(cc) == 1
    (res,) = [r for r in ctx.journal.reservations() if r["kind"] == "shares"]
    assert (res["symbol"], res["amount"]) == ("SPY", Decimal(100))
    sell = OrderRequest.equity("SPY", 100, "sell", owner=Owner("equity", "trend", "exit-1"))
    refused = await ctx.executor.place(Decision(sell, {"why": "equity exit"}))
    assert refused.status == "refused"
    assert "SPY" in (refused.reason or "")
    assert [
        o for o in await ctx.broker.orders("all") if o.client_order_id.startswith("v28-equity")
    ] == []


def test_config_names_a_bad_setting(tmp_path: Path) -> None:
    """Unknown keys and strategies are refused by name; the regime table is read from TOML."""
    from v28quant.settings import SettingsError

    with pytest.raises(SettingsError, match="dte_mni"):
        OptionsConfig.load(None, {"dte_mni": 3})
    with pytest.raises(SettingsError, match="straddle"):
        OptionsConfig.load(None, {"strategies": {"sideways": ["straddle"]}})
    f = tmp_path / "v28.toml"
    f.write_text('[options.strategies]\nbull_quiet = ["bull_call"]\n', encoding="utf-8")
    cfg = OptionsConfig.load(f)
    assert cfg.strategies_for("bull_quiet") == ("bull_call",)
    assert cfg.strategies_for("no_such_regime") == cfg.strategies_for("default")
    assert cfg.strategies_for("crisis") == ("close",)


def _book_bull_put(eng: OptionsEngine, short: str, long: str) -> None:
    """Put a 2-unit SPY bull put (short ``short``, long ``long``) in the engine's book."""
    from datetime import date

    from v28quant.options.lifecycle import Held

    assert eng.book is not None
    eng.book.opened(
        Held(
            "s1",
            "bull_put",
            "SPY",
            date(2023, 10, 20),
            {short: -1, long: 1},
            2,
            -1.47,
            1153.0,
            START,
            "v28-options-bull_put-000000000000",
        )
    )


async def _flatten_orders_after(
    ctx: Ctx, eng: OptionsEngine, acts: list[Any], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, str]]:
    """Run a cycle that reads the activities ``acts``; return the journal's flatten orders.

    Each row is the order's request (JSON) and its status, read with sqlite3.
    """

    async def activities(since: object = None) -> list[Any]:
        return acts

    monkeypatch.setattr(ctx.broker, "activities", activities)
    await eng.cycle(ctx)
    db = sqlite3.connect(str(ctx.journal.path))
    rows = db.execute(
        "SELECT request, status FROM orders WHERE client_order_id LIKE 'v28-options-flatten-%'"
    ).fetchall()
    db.close()
    return [(str(r[0]), str(r[1])) for r in rows]


@pytest.mark.asyncio
@pytest.mark.parametrize(("long_settles", "orders"), [(False, 1), (True, 0)])
async def test_stock_left_by_a_spread_is_flattened(
    tmp_path: Path,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    long_settles: bool,
    orders: int,
) -> None:
    """A bull put's short leg assigned leaves 200 shares: sold. Both legs settling: nothing."""
    from decimal import Decimal

    from v28quant.broker.base import Activity

    short, long = "SPY231020P00440000", "SPY231020P00427000"
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="crisis")
    eng = OptionsEngine(_config())
    await eng.premarket(ctx)
    assert eng.book is not None
    _book_bull_put(eng, short, long)
    acts = [Activity("a1", "OPASN", short, Decimal(2), None, START)]
    if long_settles:
        acts.append(Activity("a2", "OPEXC", long, Decimal(-2), None, START))
    else:  # the long leg left is held at the venue: the book keeps it against the broker
        from v28quant.broker import OrderRequest, Owner
        from v28quant.execution import Decision

        buy = OrderRequest.option(long, 2, "buy", "buy_to_open", owner=Owner("test", "leg", "l"))
        out = await ctx.executor.place(Decision(buy, {"why": "the spread's long leg"}))
        assert out.status == "filled"

    rows = await _flatten_orders_after(ctx, eng, acts, monkeypatch)
    assert len(rows) == orders  # sent through the executor (the sim holds no such shares)
    if orders:
        req = json.loads(rows[0][0])
        assert (req["symbol"], req["side"], req["qty"]) == ("SPY", "sell", "200")
    assert ("s1" in eng.book.held) is not long_settles


@pytest.mark.asyncio
async def test_a_settlements_flatten_stops_at_flat_where_the_equity_engine_is_short(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The equity engine short 100 SPY, a short put assigned 200: the account holds 100.

    Selling the settlement's 200 would turn the account's long into a short in one order,
    which Alpaca refuses (as SimBroker does); the flatten sells the 100 to flat instead.
    """
    from decimal import Decimal

    from v28quant.broker import OrderRequest, Owner
    from v28quant.broker.base import Activity
    from v28quant.execution import Decision

    short, long = "SPY231020P00440000", "SPY231020P00427000"
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="crisis")
    eng = OptionsEngine(_config())
    await eng.premarket(ctx)
    assert eng.book is not None
    _book_bull_put(eng, short, long)
    acts = [Activity("a1", "OPASN", short, Decimal(2), None, START)]
    leg = OrderRequest.option(long, 2, "buy", "buy_to_open", owner=Owner("test", "leg", "l"))
    assert (await ctx.executor.place(Decision(leg, {"why": "the spread's long leg"}))).status == (
        "filled"
    )
    # the venue after the settlement: 200 assigned shares on top of the equity engine's -100
    shares = OrderRequest.equity("SPY", 100, "buy", owner=Owner("test", "held", "h"))
    placed = await ctx.executor.place(Decision(shares, {"why": "the account's +100"}))
    assert placed.status == "filled"

    rows = await _flatten_orders_after(ctx, eng, acts, monkeypatch)
    assert len(rows) == 1
    req = json.loads(rows[0][0])
    assert (req["symbol"], req["side"], req["qty"]) == ("SPY", "sell", "100")
    assert rows[0][1] == "filled"
    held = {p.symbol: p.qty for p in await ctx.broker.positions()}
    assert held.get("SPY", Decimal(0)) == 0


def test_iv_history_comes_from_the_journal_one_value_per_session(
    tmp_path: Path, shared_data: Path
) -> None:
    """The ATM-IV history is the journal's own record: the last value of each earlier day."""
    from v28quant.signals import Signal

    ctx = make_world(tmp_path, shared_data, START)
    for day, ivs in ((11, (0.12, 0.13)), (12, (0.15,)), (14, (0.30,))):
        for i, iv in enumerate(ivs):
            ts = datetime(2023, 9, day, 10 + i, 0, tzinfo=ET)
            ctx.journal.record_signal(
                Signal("options_iv_rank", "SPY:IV", 0.0, 0.5, {"atm_iv_30d": iv}, ts)
            )
    ctx.journal.record_signal(
        Signal("options_iv_rank", "QQQ:IV", 0.0, 0.5, {"atm_iv_30d": 0.9}, START)
    )
    eng = OptionsEngine(_config())
    # today's value (the 14th) is not history yet; other underlyings never mix in
    assert eng._iv_history(ctx, "SPY", START) == [0.13, 0.15]


def test_a_resting_roll_is_repriced_on_fresh_quotes() -> None:
    """Roll ladder = closing the old put (buy at 2.00/2.10) and selling the new (1.50/1.56)."""
    from datetime import date

    import pandas as pd
    from v28quant.options.lifecycle import Book, Held, Pending

    old, new = "SPY231020P00440000", "SPY231027P00435000"
    book = Book()
    book.opened(
        Held("s1", "bull_put", "SPY", date(2023, 10, 20), {old: -1}, 1, -2.5, 0.0, START, "c")
    )
    p = Pending(
        "c2",
        "roll",
        "s1-r1",
        "SPY",
        "bull_put",
        {new: -1},
        date(2023, 10, 27),
        0.0,
        ["0.50", "0.55", "0.60"],
        0,
        START,
        old_id="s1",
    )
    raw = pd.DataFrame({"symbol": [old, new], "bid": [2.00, 1.50], "ask": [2.10, 1.56]})
    ladder = OptionsEngine(_config())._reprice(book, p, raw)
    # mid: +2.05 - 1.53 = 0.52 debit; natural: +2.10 - 1.50 = 0.60; two steps on pennies
    assert ladder == ["0.52", "0.56", "0.60"]


@pytest.mark.asyncio
async def test_a_failed_analysis_is_logged_with_its_own_traceback(
    tmp_path: Path,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One underlying's analysis raising is logged with that error, and the cycle goes on."""
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways")
    eng = OptionsEngine(_config())
    await eng.premarket(ctx)

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("analyser fault (test)")

    monkeypatch.setattr(eng.analyser, "analyse", broken)
    with caplog.at_level("ERROR", logger="v28quant.options.engine"):
        report = await eng.cycle(ctx)
    (u,) = eng.underlyings(ctx)
    assert report.details["errors"] == {u: "ValueError: analyser fault (test)"}
    (rec,) = [r for r in caplog.records if "analysis" in r.getMessage()]
    assert rec.levelname == "ERROR"
    assert "analyser fault (test)" in rec.getMessage()
    assert rec.exc_info is not None
    assert isinstance(rec.exc_info[1], ValueError)
    assert "NoneType: None" not in caplog.text
    assert ctx.notifier.notices == [
        f"ERROR in options engine (analysis {u}): ValueError: analyser fault (test)"
    ]


@pytest.mark.asyncio
async def test_an_illiquid_chain_is_one_warning_a_cycle_and_one_notice(
    tmp_path: Path,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A chain whose every quote is crossed: a warning naming SPY and why, no traceback.

    Two cycles see crossed chains of different sizes, so the counts in the log move; the
    notice (not an error) says the reason once, held back the second time as a repeat.
    """
    ctx = replace(
        make_world(tmp_path, shared_data, START, snapshot=True, regime="sideways"),
        notifier=Notices(),
    )
    eng = OptionsEngine(_config())
    await eng.premarket(ctx)
    real_chain = ctx.feed.option_chain
    keep_every = iter([1, 2])

    async def crossed(*args: Any, **kwargs: Any) -> pd.DataFrame:
        chain = (await real_chain(*args, **kwargs)).iloc[:: next(keep_every)].copy()
        chain["bid"], chain["ask"] = chain["ask"] + 0.05, chain["bid"]
        return chain

    monkeypatch.setattr(ctx.feed, "option_chain", crossed)
    reports = []
    with caplog.at_level("WARNING", logger="v28quant.options.engine"):
        for _ in range(2):
            reports.append(await eng.cycle(ctx))
            ctx.clock.advance(timedelta(minutes=5))
    said = [r for r in caplog.records if "SPY not analysed" in r.getMessage()]
    assert [r.levelname for r in said] == ["WARNING", "WARNING"]
    assert all(r.exc_info is None for r in said)
    assert all("no liquid contracts in the chain" in r.getMessage() for r in said)
    assert said[0].getMessage() != said[1].getMessage()  # the dropped counts differ
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    for report in reports:
        assert report.signals == 0
        assert "held" in report.details  # the cycle went on past the analysis
        assert report.details["errors"]["SPY"].startswith(
            "ChainUnusable: no liquid contracts in the chain (dropped: "
        )
    assert ctx.notifier.sent == [
        "OPTIONS: SPY not analysed, its chain is unusable: no liquid contracts in the chain; "
        "it is skipped each cycle until its quotes are usable"
    ]


@pytest.mark.asyncio
async def test_a_crash_before_the_flatten_is_sent_flattens_on_restart(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The short put of a bull put is assigned; the process dies before the flatten leaves.

    The restarted engine reads the assignment again from the venue and sells the 200 shares
    once: one flatten row in the journal (read with sqlite3), none before the restart.
    """
    from datetime import date
    from decimal import Decimal

    from v28quant.broker.base import Activity
    from v28quant.options.lifecycle import Held

    short, long = "SPY231020P00440000", "SPY231020P00427000"
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="crisis")
    path = tmp_path / "book.json"
    eng = OptionsEngine(_config(), book_path=path)
    await eng.premarket(ctx)
    assert eng.book is not None
    eng.book.opened(
        Held(
            "s1", "bull_put", "SPY", date(2023, 10, 20), {short: -1, long: 1}, 2, -1.47,
            1153.0, START, "v28-options-bull_put-000000000000",
        )
    )  # fmt: skip
    eng.book.save()
    acts = [Activity("a1", "OPASN", short, Decimal(2), None, START)]  # 200 shares left over

    async def activities(since: object = None) -> list[Activity]:
        return acts

    async def die(d: Any, *args: Any, **kwargs: Any) -> Any:
        raise SystemExit("killed before the flatten is sent")

    def flattens() -> int:
        db = sqlite3.connect(str(ctx.journal.path))
        (n,) = db.execute(
            "SELECT COUNT(*) FROM orders WHERE client_order_id LIKE 'v28-options-flatten-%'"
        ).fetchone()
        db.close()
        return int(n)

    monkeypatch.setattr(ctx.broker, "activities", activities)
    monkeypatch.setattr(ctx.executor, "place", die)
    with pytest.raises(SystemExit):
        await eng.cycle(ctx)
    monkeypatch.undo()
    monkeypatch.setattr(ctx.broker, "activities", activities)
    assert flattens() == 0
    again = OptionsEngine(_config(), book_path=path)
    await again.premarket(ctx)
    await again.cycle(ctx)
    assert flattens() == 1


async def _resting_bull_put(ctx: Ctx) -> OptionsEngine:
    """Return an engine whose one cycle left a bull put resting at the mid of its ladder."""
    eng = OptionsEngine(_config(strategies={"bull_quiet": ["bull_put"]}, limit_steps=2))
    await eng.premarket(ctx)
    await eng.cycle(ctx)
    assert eng.book is not None
    assert len(eng.book.pending) == 1
    return eng


@pytest.mark.asyncio
async def test_follow_walks_a_resting_order_to_its_fill_without_an_analysis(
    tmp_path: Path, shared_data: Path
) -> None:
    """Between cycles, ``follow`` alone walks the order one rung a call until it fills.

    Reference: SimBroker's own orders and positions, and the journal read with sqlite3 (no
    signal and no cycle journaled by a follow).
    """
    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="bull_quiet")
    eng = await _resting_bull_put(ctx)
    db = sqlite3.connect(str(ctx.journal.path))
    signals_after_cycle = db.execute("SELECT COUNT(*) FROM signals").fetchone()[0]
    resting = []
    for _ in range(4):
        ctx.clock.advance(timedelta(minutes=5))
        resting.append(await eng.follow(ctx))
    assert resting[-1] is False  # nothing rests once the order filled
    assert eng.book is not None
    (held,) = eng.book.held.values()
    positions = {p.symbol: p.qty for p in await ctx.broker.positions()}
    assert {s: positions[s] for s in held.legs} == {s: q * held.units for s, q in held.legs.items()}
    orders = await ctx.broker.orders("all")
    assert sum(o.status.value == "filled" for o in orders) == 1
    assert any(o.client_order_id.endswith("-r1") for o in orders)  # walked, not filled at mid
    assert db.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == signals_after_cycle
    assert db.execute("SELECT COUNT(*) FROM decisions WHERE action = 'cycle'").fetchone()[0] == 0
    db.close()


@pytest.mark.asyncio
async def test_follow_walks_no_opening_order_while_halted(
    tmp_path: Path, shared_data: Path
) -> None:
    """After ``v28quant halt`` an opening order rests where it is, as in a cycle."""
    from v28quant.risk import HALT, record_control

    ctx = make_world(tmp_path, shared_data, START, snapshot=True, regime="bull_quiet")
    eng = await _resting_bull_put(ctx)
    before = [(o.client_order_id, o.limit_price) for o in await ctx.broker.orders("all")]
    record_control(ctx.journal, HALT, "news", "cli", ctx.now)
    ctx.clock.advance(timedelta(minutes=5))
    assert await eng.follow(ctx) is True
    after = [(o.client_order_id, o.limit_price) for o in await ctx.broker.orders("all")]
    assert after == before
