"""A simulated month of the options engine on SimBroker: the wheel through its whole cycle.

March 2023 sessions on a designed SPY path (history before it real): a fall tests the first
cash-secured put, which is rolled as one ``mleg`` order (close + open); the rolled put is
assigned; a covered call is sold above the basis and called away in the rally; a later put
expires worthless. The synthetic chains of the replay feed give the quotes; three cycles a day
(15:15, 15:30, 15:45) walk the limits; the venue's activities drive the book.
"""

from __future__ import annotations

from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.options_world import make_world
from v28quant.calendar import default_calendar
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine

ET = ZoneInfo("America/New_York")
PATH = [396, 393, 390, 386, 383, 379, 375, 371, 368, 366, 369, 367, 366]  # fall to the 17th
PATH += [378, 380, 379, 381, 379, 388, 396, 403, 409, 415]  # flat week, then a rally


def _config() -> OptionsConfig:
    over = {
        "dte_min": 4,
        "dte_max": 12,
        "dte_target": 6,
        # the synthetic chains list strikes $5 apart: a wider band finds a weekly call
        "short_delta": [0.10, 0.45, 0.30],
        "limit_steps": 1,
        "strategies": {"bull_quiet": ["cash_secured_put"]},
        # hold to expiry so the month shows assignment and expiry, not early profit-taking
        "exits": {"max_rolls": 1, "take_profit_credit": 0.99},
    }
    return OptionsConfig.load(None, over)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_month_of_the_wheel(tmp_path: Path, shared_data: Path) -> None:
    """Roll, assignment, covered call called away, expiry; never a partially legged order."""
    cal = default_calendar()
    sessions = cal.sessions(date(2023, 3, 1), date(2023, 3, 31))
    designed = {d.isoformat(): float(c) for d, c in zip(sessions, PATH, strict=True)}
    start = datetime.combine(sessions[0], dtime(9, 0), ET)
    ctx = make_world(tmp_path, shared_data, start, regime="bull_quiet", designed=designed)
    eng = OptionsEngine(_config())
    for d in [*sessions, cal.next_session(sessions[-1])]:
        ctx.clock.set(datetime.combine(d, dtime(9, 0), ET))
        await ctx.broker.process()
        await eng.premarket(ctx)
        if d > sessions[-1]:
            break
        for hm in ((15, 15), (15, 30), (15, 45)):
            ctx.clock.set(datetime.combine(d, dtime(*hm), ET))
            await ctx.broker.process()
            report = await eng.cycle(ctx)
            assert "errors" not in report.details
        ctx.clock.set(datetime.combine(d, dtime(16, 30), ET))
        await ctx.broker.process()
        await eng.end_of_day(ctx)

    acts = [(a.type, a.symbol) for a in await ctx.broker.activities()]
    orders = await ctx.broker.orders("all")
    # a roll: one mleg order closing the tested put and opening the next one, filled
    rolls = [o for o in orders if o.order_class == "mleg" and o.status.value == "filled"]
    assert rolls
    intents = {leg.intent for leg in rolls[0].legs}
    assert intents == {"buy_to_close", "sell_to_open"}
    # assignment of a put, then the covered call called away, and an expiry
    puts_assigned = [s for k, s in acts if k == "OPASN" and s[9] == "P"]
    calls_assigned = [s for k, s in acts if k == "OPASN" and s[9] == "C"]
    assert puts_assigned
    assert calls_assigned
    assert any(k == "OPEXP" for k, _ in acts)
    notices = " ".join(ctx.notifier.notices)
    for word in ("ASSIGNED", "CALLED_AWAY", "EXPIRED", "FILL roll", "FILL open covered_call"):
        assert word in notices
    assert eng.book is not None
    wheel = eng.book.stage("SPY")
    assert wheel.cycles == 1
    assert wheel.shares == 0
    # the covered call was struck at or above the assigned basis
    call_strike = int(calls_assigned[0][-8:]) / 1000
    put_strike = int(puts_assigned[0][-8:]) / 1000
    assert call_strike >= put_strike - 5
    # never legged in: every order of more than one option is a single mleg order
    singles = [o for o in orders if o.order_class != "mleg"]
    assert all(o.symbol is not None and len(o.legs) == 0 for o in singles)
    assert eng.book.held == {}
    # every reservation the engine made was released when its structure ended
    assert [r for r in ctx.journal.reservations() if r["engine"] == "options"] == []
    positions = await ctx.broker.positions()
    assert [p for p in positions if p.asset_class == "us_option"] == []
