"""The options engine on SimBroker over the real SPY chain of 2023-09-14.

One cycle opens one structure as one order (a multi-leg structure as one ``mleg`` order, never
legged in), with its reservation and its reasoning journaled; the entry threshold comes from
settings; unfilled limits walk to the natural and fill there; the book survives a restart.
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import Ctx, make_world
from v28quant.options.config import OptionsConfig, _merge
from v28quant.options.engine import OptionsEngine

ET = ZoneInfo("America/New_York")
START = datetime(2023, 9, 14, 15, 30, tzinfo=ET)


def _config(**over: object) -> OptionsConfig:
    text = resources.files("v28quant.options").joinpath("options_defaults.toml")
    base = tomllib.loads(text.read_text(encoding="utf-8"))["options"]
    return OptionsConfig.from_mapping(_merge(base, dict(over), "options"))


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
    assert all("score" in str(x["why"]) for x in rejected)


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
