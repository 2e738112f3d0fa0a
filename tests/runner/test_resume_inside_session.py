"""Keyless paper stopped inside a session, then run again on its journal.

A SIGTERM lets the cycle in flight finish; the restart must go on at the next cycle slot, not
run the finished one again: an engine that walks a resting limit order one rung each cycle
(as the options engine walks its ladder) would otherwise send one replacement too many.

Independent references: the unbroken schedule by hand (30-minute cycles from 09:45 to 15:45
New York: 13 slots, so one opening order and 12 replacements, the last at 12 rungs), the
simulated account's saved state read with ``json``, and the journal read with ``sqlite3``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from v28quant.broker import OrderRequest, Owner
from v28quant.broker.sim import state_path_for
from v28quant.calendar import ET
from v28quant.config import RunConfig, load_config
from v28quant.engines import CycleReport, EngineContext
from v28quant.execution import Decision
from v28quant.runner_args import RunArgs
from v28quant.runner_setup import RunOutcome, run_with

BASE = Decimal("1.00")  # far below AAPL's price: the order rests all day
RUNG = Decimal("0.01")
SLOTS_A_DAY = 13  # 09:45, 10:15, ..., 15:45
STAMP = "%Y-%m-%d %H:%M"
DAY1, DAY2 = "2022-12-27", "2022-12-28"  # the bundled history's last two sessions


class Walker:
    """Rests one buy limit and walks it up a rung every cycle, reading its order at the venue.

    ``ran`` is the test's own record of the slots it was asked to trade; ``stop_after`` sends
    the process a SIGTERM at the end of that slot's cycle.
    """

    name = "walker"

    def __init__(self, ran: list[str], stop_after: str | None = None) -> None:
        self.ran = ran
        self.stop_after = stop_after

    async def premarket(self, ctx: EngineContext) -> None:
        return None

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        slot = ctx.now.astimezone(ET).strftime(STAMP)
        self.ran.append(slot)
        mine = [o for o in await ctx.broker.orders("open") if o.symbol == "AAPL"]
        if not mine:
            owner = Owner(self.name, "walk", ctx.now.astimezone(ET).strftime("%Y%m%d"))
            request = OrderRequest.equity(
                "AAPL", 1, "buy", type="limit", limit_price=BASE, owner=owner
            )
            await ctx.executor.place(Decision(request, {"rung": 0}))
        else:
            price = Decimal(str(mine[0].limit_price)) + RUNG
            await ctx.executor.replace(mine[0].client_order_id, reason="walk", limit_price=price)
        if slot == self.stop_after:
            os.kill(os.getpid(), signal.SIGTERM)  # the runner's own handler takes it
        return CycleReport(self.name, ctx.now, orders=1)

    async def end_of_day(self, ctx: EngineContext) -> None:
        return None


class FollowingWalker(Walker):
    """A walker that also walks its resting order when the runner lets it follow between cycles.

    ``follows`` is the test's own record of the slots it was asked to follow at.
    """

    def __init__(self, ran: list[str], follows: list[str], stop_after: str | None = None):
        super().__init__(ran, stop_after)
        self.follows = follows

    async def follow(self, ctx: EngineContext) -> bool:
        self.follows.append(ctx.now.astimezone(ET).strftime(STAMP))
        mine = [o for o in await ctx.broker.orders("open") if o.symbol == "AAPL"]
        if not mine:
            return False
        price = Decimal(str(mine[0].limit_price)) + RUNG
        await ctx.executor.replace(mine[0].client_order_id, reason="walk", limit_price=price)
        return True


def _run(journal: Path, walker: Walker, days: int = 1, config: Path | None = None) -> RunOutcome:
    def engines(cfg: RunConfig, params: dict[str, Any]) -> list[Walker]:
        return [walker]

    settings, cfg = load_config(config, journal_path=journal)
    args = RunArgs("paper", None, ("AAPL", "MSFT"), journal, None, None, days, False, "INFO", None)
    return run_with(args, settings, cfg, engines=engines)


@pytest.fixture
def keyless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "j.sqlite"


def test_a_sigterm_resume_goes_on_at_the_next_slot(keyless: Path) -> None:
    journal = keyless
    ran: list[str] = []
    assert _run(journal, Walker(ran, stop_after=f"{DAY2} 12:15")).exit_code == 0
    assert ran[-1] == f"{DAY2} 12:15"
    first_run = len(ran)
    assert _run(journal, Walker(ran)).exit_code == 0
    assert ran[first_run] == f"{DAY2} 12:45", ran  # the slot after the one the stop let finish
    assert len(ran) == len(set(ran)) == SLOTS_A_DAY, ran

    saved = json.loads(state_path_for(journal).read_text())
    sent = [o for o in saved["orders"] if o["req"]["symbol"] == "AAPL"]
    assert len(sent) == SLOTS_A_DAY  # the opening order and one replacement a slot
    assert max(Decimal(o["limit"]) for o in sent) == BASE + RUNG * (SLOTS_A_DAY - 1)

    db = sqlite3.connect(str(journal))
    orders = [r[0] for r in db.execute("SELECT client_order_id FROM orders")]
    cycles = db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT ts) FROM decisions "
        "WHERE engine = 'walker' AND action = 'cycle'"
    ).fetchone()
    stamps = [
        datetime.fromisoformat(r[0]).astimezone(ET).strftime(STAMP)
        for r in db.execute(
            "SELECT ts FROM decisions WHERE engine = 'walker' AND action = 'cycle' ORDER BY ts"
        )
    ]
    db.close()
    assert len(orders) == len(set(orders)) == SLOTS_A_DAY
    assert cycles == (SLOTS_A_DAY, SLOTS_A_DAY)
    assert stamps == ran


def test_a_stop_after_the_last_cycle_rolls_that_day_up_on_restart(keyless: Path) -> None:
    """Stopped after the day's last cycle (15:45), before its roll-up (16:01).

    The restart rolls that day up once, then trades the next, so the report's equity curve
    has both days.
    """
    journal = keyless
    ran: list[str] = []
    first = _run(journal, Walker(ran, stop_after=f"{DAY1} 15:45"), days=2)
    assert first.exit_code == 0
    assert first.equity == []  # stopped before the roll-up
    assert len(ran) == SLOTS_A_DAY
    second = _run(journal, Walker(ran), days=2)
    assert second.exit_code == 0
    assert len(ran) == len(set(ran)) == 2 * SLOTS_A_DAY, ran  # no cycle of the first day again

    db = sqlite3.connect(str(journal))
    rollups = db.execute(
        "SELECT json_extract(reasoning, '$.day'), ts FROM decisions "
        "WHERE engine = 'runner' AND action = 'end_of_day' ORDER BY ts"
    ).fetchall()
    db.close()
    at = [datetime.fromisoformat(ts).astimezone(ET).strftime(STAMP) for _, ts in rollups]
    assert [d for d, _ in rollups] == [DAY1, DAY2]
    assert at == [f"{DAY1} 16:01", f"{DAY2} 16:01"]  # one minute after each close
    assert second.metrics is not None
    assert [p["date"] for p in second.metrics["equity_curve"]] == [DAY1, DAY2]


def test_a_restart_between_daily_cycles_follows_the_resting_order_from_the_next_slot(
    keyless: Path,
) -> None:
    """One cycle a session (09:45), stopped after it: the restart walks the order at once.

    By hand: the 5-minute slots after 09:45 run 09:50 .. 15:45, 72 of them; the unbroken run
    walks the order one rung at each, so the restart must too, where it used to leave the
    order resting at its opening price until it expired at the close.
    """
    journal = keyless
    daily = journal.parent / "daily.toml"
    daily.write_text("[paper]\nsim_cycle_minutes = 390\n")
    ran: list[str] = []
    follows: list[str] = []
    walker = FollowingWalker(ran, follows, stop_after=f"{DAY2} 09:45")
    assert _run(journal, walker, config=daily).exit_code == 0
    assert (ran, follows) == ([f"{DAY2} 09:45"], [])  # the stop came before any follow
    assert _run(journal, FollowingWalker(ran, follows), config=daily).exit_code == 0
    assert ran == [f"{DAY2} 09:45"]  # the finished cycle is not traded again

    open_at = datetime.strptime(f"{DAY2} 09:45", STAMP)
    slots = [(open_at + timedelta(minutes=5 * k)).strftime(STAMP) for k in range(1, 73)]
    assert slots[-1] == f"{DAY2} 15:45"
    assert follows == slots

    db = sqlite3.connect(str(journal))
    walks = [
        datetime.fromisoformat(ts).astimezone(ET).strftime(STAMP)
        for (ts,) in db.execute(
            "SELECT intent_ts FROM orders WHERE client_order_id LIKE '%-r%' ORDER BY intent_ts"
        )
    ]
    db.close()
    assert walks == slots  # one replacement journaled at each slot after the restart
    saved = json.loads(state_path_for(journal).read_text())
    limits = [Decimal(o["limit"]) for o in saved["orders"] if o["req"]["symbol"] == "AAPL"]
    assert max(limits) == BASE + RUNG * len(slots)
