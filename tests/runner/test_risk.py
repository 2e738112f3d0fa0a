"""Risk gate and kill switch: each limit refuses exactly past its threshold.

Every denial is journaled with its reason.

Independent reference: the limits as written in ``[risk]`` of the shipped defaults (numbers
worked by hand below) and FINRA Rule 4210's pattern-day-trader definition (four or more day
trades in five business days with equity under $25,000).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.broker.base import Account, Leg, OrderRequest, Owner, Position
from v28quant.journal import Journal
from v28quant.risk import (
    FLATTEN,
    FLATTEN_STRATEGY,
    FLATTENED,
    HALT,
    RESUME,
    BookGreeks,
    GreekBudget,
    OptionsRisk,
    RiskGate,
    day_trades,
    halt_state,
    record_control,
)
from v28quant.settings import RiskLimits

NOW = datetime(2022, 6, 15, 14, 0, tzinfo=UTC)  # Wednesday, 10:00 New York


def _account(equity: str = "100000", bp: str | None = None) -> Account:
    e = Decimal(equity)
    return Account("acct", "ACTIVE", e, e, Decimal(bp or equity), e, 3, e)


def _buy(sym: str, qty: int, n: int = 0, strategy: str = "trend") -> OrderRequest:
    return OrderRequest.equity(sym, qty, "buy", owner=Owner("equity", strategy, f"d{sym}{n}"))


def _sell(sym: str, qty: int, n: int = 0) -> OrderRequest:
    return OrderRequest.equity(sym, qty, "sell", owner=Owner("equity", "trend", f"s{sym}{n}"))


def _denials(journal: Journal) -> list[dict]:
    return journal.decisions(action="deny")


@pytest.mark.parametrize(
    ("qty", "price", "allowed", "check"),
    [
        (100, "100", True, None),  # 10,000 = 10 % of 100k: at the position limit, allowed
        (101, "100", False, "position_fraction"),  # 10.1 % > 10 %
        (5001, "1", False, "order_qty"),  # qty limit 5,000
        (251, "100", False, "order_notional"),  # 25,100 > 25,000 (checked before position size)
    ],
)
def test_order_limits(journal, qty: int, price: str, allowed: bool, check: str | None) -> None:
    gate = RiskGate(RiskLimits(), journal)
    v = gate.check(_buy("AAPL", qty), Decimal(price), _account(), [], NOW)
    assert (v.allowed, v.check) == (allowed, check), v
    rows = _denials(journal)
    assert len(rows) == (0 if allowed else 1)
    if not allowed:
        assert rows[0]["reasoning"]["check"] == check
        assert rows[0]["reasoning"]["reason"] == v.reason
        assert rows[0]["reasoning"]["request"]["qty"] == str(qty)


def test_buying_power_keeps_a_reserve(journal) -> None:
    # 2 % reserve of 100k equity = 2,000: buying power 9,000 leaves 7,000 to spend.
    gate = RiskGate(RiskLimits(), journal)
    acct = _account(bp="9000")
    assert gate.check(_buy("AAPL", 70), Decimal(100), acct, [], NOW).allowed
    v = gate.check(_buy("AAPL", 71, 1), Decimal(100), acct, [], NOW)
    assert v.check == "buying_power"


def test_max_positions_and_closing_orders(journal) -> None:
    gate = RiskGate(RiskLimits(max_positions=2), journal)
    held = [
        Position("AAPL", Decimal(10), Decimal(100), "us_equity", Decimal(1000)),
        Position("MSFT", Decimal(10), Decimal(100), "us_equity", Decimal(1000)),
    ]
    assert gate.check(_buy("JPM", 1), Decimal(100), _account(), held, NOW).check == "max_positions"
    # adding to a held symbol or closing one is not a new position
    assert gate.check(_buy("AAPL", 1, 1), Decimal(100), _account(), held, NOW).allowed
    assert gate.check(_sell("MSFT", 10), Decimal(100), _account(), held, NOW).allowed


def test_max_positions_counts_names_not_option_legs(journal) -> None:
    """An iron condor's four legs on SPY and SPY's shares are one name of the two allowed."""
    gate = RiskGate(RiskLimits(max_positions=2), journal)
    legs = ["SPY250117C00480000", "SPY250117C00490000", "SPY250117P00440000", "SPY250117P00430000"]
    held = [
        Position("SPY", Decimal(100), Decimal(450), "us_equity", Decimal(45000)),
        *(Position(s, Decimal(1), Decimal(2), "us_option", Decimal(200)) for s in legs),
    ]
    assert gate.check(_buy("JPM", 1), Decimal(100), _account(), held, NOW).allowed
    two = [*held, Position("JPM", Decimal(1), Decimal(100), "us_equity", Decimal(100))]
    verdict = gate.check(_buy("KO", 1), Decimal(50), _account(), two, NOW)
    assert verdict.check == "max_positions"
    assert verdict.reason is not None
    assert verdict.reason.startswith("2 names held")


def test_orders_per_cycle(journal) -> None:
    gate = RiskGate(RiskLimits(max_orders_per_cycle=2), journal)
    results = [
        gate.check(_buy(s, 1), Decimal(10), _account(), [], NOW, cycle=NOW).allowed
        for s in ("A", "B", "C")
    ]
    assert results == [True, True, False]
    later = NOW + timedelta(minutes=5)
    assert gate.check(_buy("D", 1), Decimal(10), _account(), [], later, cycle=later).allowed


def test_daily_loss_halts_and_blocks_new_orders_but_not_flatten(journal) -> None:
    gate = RiskGate(RiskLimits(), journal)
    assert not gate.mark(_account("100000"), NOW).halted
    assert not gate.mark(_account("97001"), NOW + timedelta(minutes=5)).halted  # -2.999 %
    state = gate.mark(_account("96999"), NOW + timedelta(minutes=10))  # -3.001 % > 3 %
    assert state.halted
    assert "daily loss" in (state.reason or "")
    v = gate.check(_buy("AAPL", 1), Decimal(10), _account("96999"), [], NOW)
    assert v.check == "halted"
    held = [Position("AAPL", Decimal(5), Decimal(10), "us_equity", Decimal(50))]
    close = OrderRequest.equity(
        "AAPL", 5, "sell", owner=Owner("risk", FLATTEN_STRATEGY, "flatten-x")
    )
    assert gate.check(close, Decimal(10), _account("96999"), held, NOW).allowed
    record_control(journal, RESUME, "checked", "operator", NOW + timedelta(minutes=11))
    assert not halt_state(journal).halted


def test_drawdown_from_the_peak_across_days_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        gate = RiskGate(RiskLimits(max_daily_loss_fraction=0.5), j)
        gate.mark(_account("120000"), NOW)
    with Journal(path) as j:  # a restart remembers the peak from the journal
        gate = RiskGate(RiskLimits(max_daily_loss_fraction=0.5), j)
        day2 = NOW + timedelta(days=1)
        assert not gate.mark(_account("108001"), day2).halted  # 9.999 % below 120k
        state = gate.mark(_account("107999"), day2 + timedelta(minutes=5))
        assert state.halted
        assert "drawdown" in (state.reason or "")


def test_a_resume_after_the_daily_loss_halt_counts_the_day_from_the_resume(journal) -> None:
    # Day start 100,000; 96,999 is -3.001 % and halts. The operator resumes: the next mark at
    # the same equity must not halt again, and the day's loss counts from 96,999 on: 94,089.04
    # is 2.99999 % below it (passes), 94,088 is 3.001 % below it (halts).
    gate = RiskGate(RiskLimits(), journal)
    gate.mark(_account("100000"), NOW)
    assert gate.mark(_account("96999"), NOW + timedelta(minutes=5)).halted
    assert gate.mark(_account("96999"), NOW + timedelta(minutes=10)).halted  # no resume yet
    record_control(journal, RESUME, "checked the book", "operator", NOW + timedelta(minutes=11))
    assert not gate.mark(_account("96999"), NOW + timedelta(minutes=15)).halted
    assert not gate.mark(_account("94089.04"), NOW + timedelta(minutes=20)).halted
    state = gate.mark(_account("94088"), NOW + timedelta(minutes=25))
    assert state.halted
    assert "daily loss 3.00%" in (state.reason or "")


def test_a_resume_after_the_drawdown_halt_holds_across_a_restart(tmp_path: Path) -> None:
    # Peak 120,000; 107,999 is 10.001 % below it and halts. The resume is written while the
    # runner is down: the restarted gate counts the drawdown from the equity at its first mark
    # (107,999), once; 97,199.1 is exactly 10 % below that (the limit is strict), 97,199 is
    # 10.0001 % below.
    path = tmp_path / "j.sqlite"
    limits = RiskLimits(max_daily_loss_fraction=0.5)
    with Journal(path) as j:
        gate = RiskGate(limits, j)
        gate.mark(_account("120000"), NOW)
        assert gate.mark(_account("107999"), NOW + timedelta(days=1)).halted
        record_control(j, RESUME, "checked", "operator", NOW + timedelta(days=1, hours=1))
    day3 = NOW + timedelta(days=2)
    with Journal(path) as j:
        gate = RiskGate(limits, j)
        assert not gate.mark(_account("107999"), day3).halted
    with Journal(path) as j:  # a second restart applies the same resume no second time
        gate = RiskGate(limits, j)
        assert not gate.mark(_account("97199.1"), day3 + timedelta(minutes=5)).halted
        assert gate.mark(_account("97199"), day3 + timedelta(minutes=10)).halted
        peaks = [r["reasoning"]["peak"] for r in j.decisions(engine="risk", action="mark")]
    assert peaks == ["120000", "120000", "107999", "107999", "107999"]


def test_a_resume_after_an_operators_halt_leaves_the_loss_limits_as_they_were(journal) -> None:
    # -2.5 % by the operator's halt and resume: the day still counts from 100,000, so
    # 96,999 (-3.001 %) halts.
    gate = RiskGate(RiskLimits(), journal)
    gate.mark(_account("100000"), NOW)
    record_control(journal, HALT, "news", "operator", NOW + timedelta(minutes=1))
    assert gate.mark(_account("97500"), NOW + timedelta(minutes=5)).halted
    record_control(journal, RESUME, "news digested", "operator", NOW + timedelta(minutes=6))
    assert not gate.mark(_account("97500"), NOW + timedelta(minutes=10)).halted
    assert gate.mark(_account("96999"), NOW + timedelta(minutes=15)).halted


def test_operator_halt_flatten_resume_sequence(journal) -> None:
    record_control(journal, HALT, "news", "operator", NOW)
    assert halt_state(journal).halted
    assert halt_state(journal).reason == "news"
    record_control(journal, FLATTEN, "close all", "operator", NOW + timedelta(seconds=1))
    s = halt_state(journal)
    assert s.halted
    assert s.flatten_pending
    record_control(journal, RESUME, "ok", "operator", NOW + timedelta(seconds=2))
    assert not halt_state(journal).halted
    with pytest.raises(ValueError, match="action must be"):
        record_control(journal, "explode", "x", "operator", NOW)


def test_pdt_counts_day_trades_below_25k(journal) -> None:
    # Three earlier round trips in the last five sessions, then a buy of XOM today: selling it
    # today would be the fourth day trade, which FINRA's rule forbids under $25,000.
    days = [NOW - timedelta(days=k) for k in (6, 5, 2)]  # Thu, Fri, Mon before Wed 2022-06-15
    for i, d in enumerate(days):
        journal.record_fill(f"b{i}", None, "AAPL", 1, "100", "buy", d)
        journal.record_fill(f"s{i}", None, "AAPL", 1, "101", "sell", d + timedelta(hours=1))
    journal.record_fill("bx", None, "XOM", 10, "80", "buy", NOW - timedelta(minutes=30))
    fills = journal.fills()
    sessions = {d.date() for d in days}
    assert day_trades(fills, sessions) == 3
    held = [Position("XOM", Decimal(10), Decimal(80), "us_equity", Decimal(800))]
    small = RiskGate(RiskLimits(pdt_rule="on"), journal)
    v = small.check(_sell("XOM", 10), Decimal(80), _account("20000"), held, NOW)
    assert v.check == "pdt", v
    # the same sell with $25,000 or more is allowed
    assert small.check(_sell("XOM", 10, 1), Decimal(80), _account("25000"), held, NOW).allowed


BUDGET = GreekBudget(max_delta_shares=1500, max_gamma=300, max_vega=20000, max_theta_per_day=1000)
FLAT = BookGreeks(0.0, 0.0, 0.0, 0.0)


def _condor(n: int = 0) -> OrderRequest:
    legs = [
        Leg("SPY231020P00420000", 1, "buy", "buy_to_open"),
        Leg("SPY231020P00425000", 1, "sell", "sell_to_open"),
        Leg("SPY231020C00470000", 1, "sell", "sell_to_open"),
        Leg("SPY231020C00475000", 1, "buy", "buy_to_open"),
    ]
    return OrderRequest.multileg(
        legs, 2, Decimal("-1.50"), owner=Owner("options", "iron_condor", f"ic{n}")
    )


@pytest.mark.parametrize(
    ("after", "max_loss", "check"),
    [
        (BookGreeks(1400.0, 250.0, -19000.0, 900.0), 2500.0, None),  # inside, at the max loss
        (BookGreeks(-1500.5, 0.0, 0.0, 0.0), 700.0, "greek_delta"),  # |delta| past 1,500 shares
        (BookGreeks(0.0, 300.5, 0.0, 0.0), 700.0, "greek_gamma"),  # past 300 shares per dollar
        (BookGreeks(0.0, 0.0, -20000.5, 0.0), 700.0, "greek_vega"),  # past 20,000 dollars per vol
        (BookGreeks(0.0, 0.0, 0.0, 1000.5), 700.0, "greek_theta"),  # past 1,000 dollars per day
        (BookGreeks(0.0, 0.0, 0.0, 0.0), 2500.01, "max_loss"),  # 2,500 dollars per structure
    ],
)
def test_options_budget_denies_by_the_named_greek(
    journal, after: BookGreeks, max_loss: float, check: str | None
) -> None:
    """The Greek budget and max loss per structure are the gate's checks, journaled by name."""
    gate = RiskGate(RiskLimits(), journal)
    risk = OptionsRisk(FLAT, after, BUDGET, max_loss, 2500.0)
    v = gate.check(_condor(), Decimal("1.50"), _account(), [], NOW, options=risk)
    assert (v.allowed, v.check) == (check is None, check), v
    rows = _denials(journal)
    assert len(rows) == (0 if check is None else 1)
    if check is not None:
        (row,) = rows
        assert row["reasoning"]["check"] == check
        assert row["action"] == "deny"
        assert row["reasoning"]["options"]["max_loss_limit"] == 2500.0
        name = check.removeprefix("greek_")
        assert name in str(v.reason)


def test_options_budget_lets_a_breach_shrink(journal) -> None:
    """A book already past its vega budget may reduce it, never grow it."""
    gate = RiskGate(RiskLimits(), journal)
    over = BookGreeks(0.0, 0.0, -25000.0, 0.0)
    less = OptionsRisk(over, BookGreeks(0.0, 0.0, -22000.0, 0.0), BUDGET, 500.0, 2500.0)
    more = OptionsRisk(over, BookGreeks(0.0, 0.0, -26000.0, 0.0), BUDGET, 500.0, 2500.0)
    assert gate.check(_condor(1), Decimal("1.50"), _account(), [], NOW, options=less).allowed
    v = gate.check(_condor(2), Decimal("1.50"), _account(), [], NOW, options=more)
    assert v.check == "greek_vega"
    # a cash-secured put's risk is its collateral: no max loss to check
    csp = OptionsRisk(FLAT, FLAT, BUDGET, None, 2500.0)
    assert gate.check(_condor(3), Decimal("1.50"), _account(), [], NOW, options=csp).allowed


def test_a_zero_vega_budget_admits_only_orders_that_reduce_vega(journal) -> None:
    """``max_vega = 0``: none of that Greek; a book holding some may only shrink it."""
    gate = RiskGate(RiskLimits(), journal)
    none = GreekBudget(1500, 300, 0.0, 1000)
    opening = OptionsRisk(FLAT, BookGreeks(0.0, 0.0, -0.5, 0.0), none, 500.0, 2500.0)
    assert gate.check(_condor(1), Decimal("1.50"), _account(), [], NOW, options=opening).check == (
        "greek_vega"
    )
    held = BookGreeks(0.0, 0.0, -800.0, 0.0)
    less = OptionsRisk(held, BookGreeks(0.0, 0.0, -300.0, 0.0), none, 500.0, 2500.0)
    assert gate.check(_condor(2), Decimal("1.50"), _account(), [], NOW, options=less).allowed
    flat = OptionsRisk(FLAT, FLAT, none, 500.0, 2500.0)  # vega-neutral: nothing to refuse
    assert gate.check(_condor(3), Decimal("1.50"), _account(), [], NOW, options=flat).allowed


def test_options_book_max_loss_is_held_within_max_options_fraction(journal) -> None:
    """[risk] max_options_fraction: the book's defined-risk max loss, this one included."""
    gate = RiskGate(RiskLimits(max_options_fraction=0.30), journal)  # 30,000 of 100,000
    fits = OptionsRisk(FLAT, FLAT, BUDGET, 2000.0, 2500.0, book_max_loss=28000.0)
    assert gate.check(_condor(1), Decimal("1.50"), _account(), [], NOW, options=fits).allowed
    past = OptionsRisk(FLAT, FLAT, BUDGET, 2000.01, 2500.0, book_max_loss=28000.0)
    v = gate.check(_condor(2), Decimal("1.50"), _account(), [], NOW, options=past)
    assert (v.allowed, v.check) == (False, "options_at_risk")
    (row,) = _denials(journal)
    assert row["reasoning"]["options"]["book_max_loss"] == 28000.0
    # at half the equity the cap is 15,000
    half = OptionsRisk(FLAT, FLAT, BUDGET, 1000.0, 2500.0, book_max_loss=14500.0)
    v = gate.check(_condor(3), Decimal("1.50"), _account("50000"), [], NOW, options=half)
    assert v.check == "options_at_risk"
    # collateral-backed structures (max loss None) are not counted
    csp = OptionsRisk(FLAT, FLAT, BUDGET, None, 2500.0, book_max_loss=40000.0)
    assert gate.check(_condor(4), Decimal("1.50"), _account(), [], NOW, options=csp).allowed


def test_kill_switch_follows_the_order_written_not_the_stamps(journal) -> None:
    """An operator's wall-clock resume does not outrank a later halt stamped in simulated time.

    Keyless paper stamps the runner's records with the simulated clock (years back), the
    operator CLI with the wall clock. Independent reference: the order of the writes below (a
    halt written after a resume is in force), whatever their time stamps say.
    """
    wall = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)  # when the operator typed halt, then resume
    record_control(journal, HALT, "news", "operator", wall)
    record_control(journal, RESUME, "checked", "operator", wall + timedelta(seconds=5))
    gate = RiskGate(RiskLimits(), journal)
    gate.mark(_account("100000"), NOW)  # the simulated session, 2022
    state = gate.mark(_account("96000"), NOW + timedelta(minutes=5))  # -4 % > 3 %: halt
    assert state.halted, state
    assert gate.check(_buy("AAPL", 1), Decimal(10), _account("96000"), [], NOW).check == "halted"
    flatten_at = wall + timedelta(seconds=10)
    record_control(journal, FLATTEN, "close all", "operator", flatten_at)
    record_control(journal, FLATTENED, "0 closing order(s) placed", "runner", NOW)
    assert not halt_state(journal).flatten_pending  # the runner's flatten, written after it


async def _alpaca_account(
    cash: Decimal, daytrade_count: int | None = 0, last_equity: Decimal | None = None
) -> Account:
    """Return the account the loopback Alpaca fake reports, read through alpaca-py."""
    trading = FakeAlpacaTrading(now=NOW, cash=cash).start()
    trading.daytrade_count = daytrade_count
    trading.last_equity = last_equity
    broker = AlpacaBroker(
        "PKTESTKEY", "test-secret-value", url=trading.url,
        limiter=RateLimiter(rate=60_000, burst=1000), backoff_s=0.0,
    )  # fmt: skip
    try:
        return await broker.account()
    finally:
        await broker.aclose()
        trading.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize(("last_equity", "halted"), [("103100", True), ("103090", False)])
async def test_the_days_loss_counts_from_the_venues_previous_close(
    journal: Journal, last_equity: str, halted: bool
) -> None:
    """A runner joining the session at 10:00 counts the loss from yesterday's close.

    The account, read through alpaca-py from the fake, has 100,000 of equity and Alpaca's
    ``last_equity`` (the previous close) 103,100 or 103,090: by hand 3,100 / 103,100 = 3.007 %
    is past the 3 % limit, 3,090 / 103,090 = 2.997 % is not. Counted from the first mark, as
    without ``last_equity``, the loss would be 0.
    """
    account = await _alpaca_account(Decimal(100_000), last_equity=Decimal(last_equity))
    assert account.last_equity == Decimal(last_equity)
    state = RiskGate(RiskLimits(), journal).mark(account, NOW)
    assert state.halted is halted
    day_start = journal.decisions(engine="risk", action="mark")[-1]["reasoning"]["day_start"]
    assert Decimal(day_start) == Decimal(last_equity)


@pytest.mark.asyncio
@pytest.mark.parametrize(("venue", "allowed"), [(2, True), (3, False)])
async def test_pdt_counts_the_day_trades_alpaca_reports(
    journal: Journal, venue: int, allowed: bool
) -> None:
    """Alpaca counts day trades this journal never saw (another client, an earlier journal).

    The journal holds only this morning's buy of XOM: its own count is 0. The account, read
    through alpaca-py from the fake, reports ``daytrade_count`` 2 or 3 with $20,000 equity.
    Selling XOM today is a day trade: by hand max(0, 2) + 1 = 3 <= 3 passes, max(0, 3) + 1 = 4
    is the fourth in five sessions and is denied, and the denial is in the journal's file.
    """
    account = await _alpaca_account(Decimal(20_000), venue)
    journal.record_fill("bx", None, "XOM", 10, "80", "buy", NOW - timedelta(minutes=30))
    held = [Position("XOM", Decimal(10), Decimal(80), "us_equity", Decimal(800))]
    gate = RiskGate(RiskLimits(), journal)
    v = gate.check(_sell("XOM", 10), Decimal(80), account, held, NOW)
    assert v.allowed is allowed, v
    with sqlite3.connect(journal.path) as db:
        rows = db.execute("SELECT reasoning FROM decisions WHERE action = 'deny'").fetchall()
    checks = [json.loads(r[0])["check"] for r in rows]
    assert checks == ([] if allowed else ["pdt"])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("rule", "venue_count", "allowed"),
    [("venue", None, True), ("venue", 3, False), ("off", 3, True), ("on", None, False)],
)
async def test_the_pdt_rule_holds_where_the_venue_still_counts_day_trades(
    journal: Journal, rule: str, venue_count: int | None, allowed: bool
) -> None:
    """FINRA retired the PDT rule on 2026-06-04; Alpaca dropped ``daytrade_count`` on 2026-07-06.

    Three earlier AAPL round trips and this morning's XOM buy with $20,000 of equity: selling
    XOM is the fourth day trade in five sessions by hand. By default (``"venue"``) the gate
    refuses it only where the account, read through alpaca-py from the fake, still reports a
    day-trade count (an Alpaca account today reports none); ``"off"`` never, ``"on"`` always.
    """
    account = await _alpaca_account(Decimal(20_000), venue_count)
    assert account.daytrade_count == venue_count
    for i, days_ago in enumerate((6, 5, 2)):
        d = NOW - timedelta(days=days_ago)
        journal.record_fill(f"b{i}", None, "AAPL", 1, "100", "buy", d)
        journal.record_fill(f"s{i}", None, "AAPL", 1, "101", "sell", d + timedelta(hours=1))
    journal.record_fill("bx", None, "XOM", 10, "80", "buy", NOW - timedelta(minutes=30))
    held = [Position("XOM", Decimal(10), Decimal(80), "us_equity", Decimal(800))]
    gate = RiskGate(RiskLimits(pdt_rule=rule), journal)
    verdict = gate.check(_sell("XOM", 10), Decimal(80), account, held, NOW)
    assert verdict.allowed is allowed, verdict
    assert RiskLimits().pdt_rule == "venue"  # the shipped default


PUT_SPREAD = ("SPY231020P00420000", "SPY231020P00425000")


def _other(leg: Leg) -> str:
    return "sell" if leg.side == "buy" else "buy"


@pytest.mark.parametrize(
    ("earlier", "closed", "allowed"),
    [
        (0, 4, False),  # 0 + the condor's 4 legs = 4 day trades: the fourth is refused
        (1, 2, True),  # 1 + a put spread's 2 legs = 3: allowed
        (2, 2, False),  # 2 + 2 = 4
    ],
)
def test_pdt_counts_each_leg_a_same_day_close_day_trades(
    journal, earlier: int, closed: int, allowed: bool
) -> None:
    """Each leg closed the session it opened is a day trade, as ``day_trades`` counts them.

    $10,000 of equity; ``earlier`` AAPL round trips on earlier sessions of the five; a condor
    bought and sold to open this morning. Closing ``closed`` of its legs now adds that many
    day trades: refused where the total by hand passes 3.
    """
    for i, days_ago in enumerate((6, 5, 2)[:earlier]):
        d = NOW - timedelta(days=days_ago)
        journal.record_fill(f"b{i}", None, "AAPL", 1, "100", "buy", d)
        journal.record_fill(f"s{i}", None, "AAPL", 1, "101", "sell", d + timedelta(hours=1))
    opened = _condor().legs
    for g in opened:
        journal.record_fill(f"o{g.occ_symbol}", "ic0", g.occ_symbol, 2, "1", g.side, NOW)
    to_close = [g for g in opened if closed == 4 or g.occ_symbol in PUT_SPREAD[:closed]]
    closing = [Leg(g.occ_symbol, 1, s, f"{s}_to_close") for g in to_close for s in [_other(g)]]
    req = OrderRequest.multileg(
        closing, 2, Decimal("0.50"), owner=Owner("options", "iron_condor", "close-ic0")
    )
    later = NOW + timedelta(hours=2)
    v = RiskGate(RiskLimits(pdt_rule="on"), journal).check_close(req, _account("10000"), later)
    assert v.allowed is allowed, v
    with sqlite3.connect(journal.path) as db:
        rows = db.execute("SELECT reasoning FROM decisions WHERE action = 'deny'").fetchall()
    reasons = [json.loads(r[0]) for r in rows]
    assert [r["check"] for r in reasons] == ([] if allowed else ["pdt"])
    if not allowed:
        assert f"day trade {earlier + closed} in five sessions" in reasons[0]["reason"]


@pytest.mark.parametrize(("xom_order", "allowed"), [("accepted", False), ("canceled", True)])
def test_pdt_counts_a_working_same_day_close(journal, xom_order: str, allowed: bool) -> None:
    """A same-day close sent but not yet filled is a day trade to come.

    $10,000 of equity, two AAPL round trips on earlier sessions, XOM and MSFT bought this
    morning, and a sell of all the XOM sent at 10:00 and still working: selling the MSFT too
    would make 2 + 1 + 1 = 4 day trades by hand. Once the XOM sell is cancelled it would be 3.
    """
    for i, days_ago in enumerate((6, 2)):
        d = NOW - timedelta(days=days_ago)
        journal.record_fill(f"b{i}", None, "AAPL", 1, "100", "buy", d)
        journal.record_fill(f"s{i}", None, "AAPL", 1, "101", "sell", d + timedelta(hours=1))
    morning = NOW - timedelta(minutes=30)
    journal.record_fill("bx", None, "XOM", 10, "80", "buy", morning)
    journal.record_fill("bm", None, "MSFT", 5, "250", "buy", morning)
    xom = _sell("XOM", 10)
    journal.record_order_intent(xom.client_order_id, "equity", "trend", None, xom.to_dict(), NOW)
    journal.record_order_update(xom.client_order_id, "x1", xom_order, 0, None, {}, NOW)
    held = [
        Position("XOM", Decimal(10), Decimal(80), "us_equity", Decimal(800)),
        Position("MSFT", Decimal(5), Decimal(250), "us_equity", Decimal(1250)),
    ]
    later = NOW + timedelta(minutes=5)
    gate = RiskGate(RiskLimits(pdt_rule="on"), journal)
    verdict = gate.check(_sell("MSFT", 5), Decimal(250), _account("10000"), held, later)
    assert verdict.allowed is allowed, verdict
    with sqlite3.connect(journal.path) as db:
        rows = db.execute("SELECT reasoning FROM decisions WHERE action = 'deny'").fetchall()
    reasons = [json.loads(r[0]) for r in rows]
    assert [r["check"] for r in reasons] == ([] if allowed else ["pdt"])
    if not allowed:
        assert "day trade 4 in five sessions" in reasons[0]["reason"]


def test_a_close_is_never_held_back_by_size_limits_the_cycle_count_or_the_halt(journal) -> None:
    """Selling shares held only reduces risk: a winner grown past the order limits can exit.

    By hand: 300 AAPL at 130 = 39,000 > max_order_notional 25,000, and 300 > max_order_qty
    250; two orders this cycle already reach max_orders_per_cycle 2; the kill switch is on.
    Each of these holds back a buy; none holds back the sale of the 300 shares (or part of
    them). Selling 301 would open a short of one: it is a new order and refused.
    """
    lim = RiskLimits(max_order_qty=250, max_orders_per_cycle=2)
    gate = RiskGate(lim, journal)
    held = [Position("AAPL", Decimal(300), Decimal(100), "us_equity", Decimal(39000))]
    for s in ("A", "B"):
        assert gate.check(_buy(s, 1), Decimal(10), _account(), held, NOW, cycle=NOW).allowed
    record_control(journal, HALT, "news", "operator", NOW)
    for n, qty in enumerate((300, 120)):
        v = gate.check(_sell("AAPL", qty, n), Decimal(130), _account(), held, NOW, cycle=NOW)
        assert v.allowed, v
    assert gate.check(_sell("AAPL", 301, 2), Decimal(130), _account(), held, NOW).check == "halted"
    assert [r["reasoning"]["check"] for r in _denials(journal)] == ["halted"]


def test_a_sale_turning_a_long_short_is_checked_as_an_opening(journal) -> None:
    """A sale of twice the shares held opens a short as large as the long it closes.

    By hand: selling 200 of 100 AAPL held leaves -100; 100 x 100 = 10,000 is 20 % of 50,000
    of equity, past max_position_fraction 10 %.
    """
    gate = RiskGate(RiskLimits(), journal)
    held = [Position("AAPL", Decimal(100), Decimal(100), "us_equity", Decimal(10000))]
    v = gate.check(_sell("AAPL", 200), Decimal(100), _account("50000"), held, NOW)
    assert v.check == "position_fraction", v


def test_max_positions_holds_back_an_options_structure_on_a_new_name(journal) -> None:
    """An iron condor on SPY, with AAPL and MSFT held and max_positions 2, is a third name.

    Closing a structure, or opening one on a name already held, is not a new name.
    """
    gate = RiskGate(RiskLimits(max_positions=2), journal)
    held = [
        Position("AAPL", Decimal(10), Decimal(100), "us_equity", Decimal(1000)),
        Position("MSFT260116C00400000", Decimal(1), Decimal(5), "us_option", Decimal(500)),
    ]
    v = gate.check(_condor(), Decimal("1.50"), _account(), held, NOW)
    assert (v.allowed, v.check) == (False, "max_positions"), v
    spy = [*held[:1], Position("SPY231020P00420000", Decimal(2), Decimal(1), "us_option")]
    assert gate.check(_condor(1), Decimal("1.50"), _account(), spy, NOW).allowed
    closing = [Leg(g.occ_symbol, 1, _other(g), f"{_other(g)}_to_close") for g in _condor().legs]
    close = OrderRequest.multileg(closing, 2, Decimal("0.50"), owner=Owner("options", "ic", "c"))
    assert gate.check(close, Decimal("0.50"), _account(), held, NOW).allowed
    assert [r["reasoning"]["check"] for r in _denials(journal)] == ["max_positions"]


def test_a_short_sale_needs_buying_power(journal) -> None:
    """Shorting 40 AAPL at 100 takes 4,000 of buying power, as a buy of 40 would.

    By hand: buying power 5,000 less the 2 % reserve of 100,000 equity leaves 3,000. Selling
    40 of 40 shares held needs none: it only closes.
    """
    gate = RiskGate(RiskLimits(), journal)
    acct = _account(bp="5000")
    assert gate.check(_sell("AAPL", 40), Decimal(100), acct, [], NOW).check == "buying_power"
    held = [Position("AAPL", Decimal(40), Decimal(100), "us_equity", Decimal(4000))]
    assert gate.check(_sell("AAPL", 40, 1), Decimal(100), acct, held, NOW).allowed


def _options_account(obp: str, equity: str = "100000") -> Account:
    """Return an account with ``obp`` of options buying power (stock buying power: equity)."""
    e = Decimal(equity)
    return Account("acct", "ACTIVE", e, e, e, Decimal(obp), 3, e)


def _bull_call(n: int = 0) -> OrderRequest:
    legs = [
        Leg("SPY231020C00450000", 1, "buy", "buy_to_open"),
        Leg("SPY231020C00455000", 1, "sell", "sell_to_open"),
    ]
    return OrderRequest.multileg(
        legs, 3, Decimal("2.00"), owner=Owner("options", "bull_call", f"bc{n}")
    )


@pytest.mark.parametrize(
    ("order", "price", "obp", "allowed"),
    [
        (_bull_call, "2.00", "2600", True),  # 3 x 2.00 x 100 = 600 = 2,600 less the reserve
        (_bull_call, "2.00", "2599.99", False),
        (_condor, "-1.50", "2700", True),  # 2 x (5 - 1.50) x 100 = 700 = 2,700 less the reserve
        (_condor, "-1.50", "2699.99", False),
    ],
)
def test_a_multileg_opening_needs_options_buying_power_for_its_max_loss(
    journal, order, price: str, obp: str, allowed: bool
) -> None:
    """A debit spread needs its debit, a credit structure its max loss, as Alpaca holds them.

    By hand, the reserve is 2 % of 100,000 equity = 2,000 of the options buying power. The
    bull call spread: 3 units at a 2.00 debit, 600. The iron condor: 5-wide wings, 2 units at a
    1.50 credit, (5 - 1.50) x 100 x 2 = 700. The stock buying power (100,000) plays no part.
    """
    gate = RiskGate(RiskLimits(), journal)
    v = gate.check(order(), Decimal(price), _options_account(obp), [], NOW)
    assert (v.allowed, v.check) == (allowed, None if allowed else "options_buying_power"), v
    rows = _denials(journal)
    assert [r["reasoning"]["check"] for r in rows] == ([] if allowed else ["options_buying_power"])


def test_closing_a_structure_needs_no_options_buying_power(journal) -> None:
    """Buying back a condor frees collateral: it passes with no options buying power left."""
    gate = RiskGate(RiskLimits(), journal)
    closing = [Leg(g.occ_symbol, 1, _other(g), f"{_other(g)}_to_close") for g in _condor().legs]
    close = OrderRequest.multileg(closing, 2, Decimal("2.50"), owner=Owner("options", "ic", "c"))
    held = [Position(g.occ_symbol, Decimal(2), Decimal(1), "us_option") for g in _condor().legs]
    assert gate.check(close, Decimal("2.50"), _options_account("0"), held, NOW).allowed


def _sell_to_open(occ: str, qty: int, n: int = 0) -> OrderRequest:
    owner = Owner("options", "wheel", f"sto{n}")
    return OrderRequest.option(occ, qty, "sell", "sell_to_open", Decimal("1.50"), owner=owner)


def test_a_cash_secured_put_needs_its_strike_as_collateral(journal) -> None:
    """Two 420 puts sold to open hold 420 x 100 x 2 = 84,000, not the 300 of premium.

    By hand: 86,000 of options buying power less the 2,000 reserve is 84,000. The executor
    reserves the same strike x 100 per contract (``execution.claims.spend_of``).
    """
    gate = RiskGate(RiskLimits(max_order_notional=1e6), journal)
    put = "SPY231020P00420000"
    assert gate.check(_sell_to_open(put, 2), Decimal("1.50"), _options_account("86000"), [], NOW)
    v = gate.check(_sell_to_open(put, 2, 1), Decimal("1.50"), _options_account("85999"), [], NOW)
    assert (v.allowed, v.check) == (False, "options_buying_power"), v
    assert "84000" in str(v.reason)


def test_a_call_sold_to_open_needs_shares_not_covering_another_call(journal) -> None:
    """A short call is covered by 100 shares a contract not already behind another short call.

    No SPY held: naked, refused. 100 SPY held: covered, and it needs no options buying power.
    100 SPY held behind a 470 call already sold: the second call is naked; 200 SPY cover both.
    """
    gate = RiskGate(RiskLimits(), journal)
    call, other = "SPY231020C00475000", "SPY231020C00470000"
    broke = _options_account("0")
    v = gate.check(_sell_to_open(call, 1), Decimal("1.50"), broke, [], NOW)
    assert (v.allowed, v.check) == (False, "naked_call"), v

    def spy(shares: int) -> Position:
        return Position("SPY", Decimal(shares), Decimal(440), "us_equity", Decimal(440 * shares))

    assert gate.check(_sell_to_open(call, 1, 1), Decimal("1.50"), broke, [spy(100)], NOW).allowed
    short = Position(other, Decimal(-1), Decimal(2), "us_option", Decimal(-200))
    v = gate.check(_sell_to_open(call, 1, 2), Decimal("1.50"), broke, [spy(100), short], NOW)
    assert v.check == "naked_call", v
    assert gate.check(
        _sell_to_open(call, 1, 3), Decimal("1.50"), broke, [spy(200), short], NOW
    ).allowed
    assert [r["reasoning"]["check"] for r in _denials(journal)] == ["naked_call", "naked_call"]


def test_a_short_call_over_a_long_call_expiring_first_is_naked(journal) -> None:
    """Selling the November 455 call over a long October 450 call: from October on it is bare.

    The October call covers nothing once it expires, so the November call is uncovered: with
    no SPY held the order is refused as naked; with 100 SPY held it is covered and needs only
    its debit, 0.50 x 100 = 50 (2,050 of options buying power less the 2,000 reserve).
    """
    gate = RiskGate(RiskLimits(), journal)
    legs = [
        Leg("SPY231020C00450000", 1, "buy", "buy_to_open"),
        Leg("SPY231117C00455000", 1, "sell", "sell_to_open"),
    ]

    def order(n: int) -> OrderRequest:
        owner = Owner("options", "diagonal", f"rd{n}")
        return OrderRequest.multileg(legs, 1, Decimal("0.50"), owner=owner)

    v = gate.check(order(0), Decimal("0.50"), _options_account("100000"), [], NOW)
    assert (v.allowed, v.check) == (False, "naked_call"), v
    spy = Position("SPY", Decimal(100), Decimal(440), "us_equity", Decimal(44000))
    assert gate.check(order(1), Decimal("0.50"), _options_account("2050"), [spy], NOW).allowed
    v = gate.check(order(2), Decimal("0.50"), _options_account("2049.99"), [spy], NOW)
    assert v.check == "options_buying_power", v


def test_a_short_put_over_a_long_put_expiring_first_needs_its_strike(journal) -> None:
    """Selling the November 420 put over a long October 425 put: from October on it is bare.

    By hand it needs the put's collateral, 420 x 100 = 42,000, less the 1.00 credit: 41,900,
    as a put sold alone would (43,900 of options buying power less the 2,000 reserve).
    """
    gate = RiskGate(RiskLimits(max_order_notional=1e6), journal)
    legs = [
        Leg("SPY231020P00425000", 1, "buy", "buy_to_open"),
        Leg("SPY231117P00420000", 1, "sell", "sell_to_open"),
    ]

    def order(n: int) -> OrderRequest:
        owner = Owner("options", "diagonal", f"pd{n}")
        return OrderRequest.multileg(legs, 1, Decimal("-1.00"), owner=owner)

    assert gate.check(order(0), Decimal("-1.00"), _options_account("43900"), [], NOW).allowed
    v = gate.check(order(1), Decimal("-1.00"), _options_account("43899.99"), [], NOW)
    assert (v.allowed, v.check) == (False, "options_buying_power"), v


def test_a_covered_call_roll_needs_no_collateral_for_the_call_it_moves(journal) -> None:
    """Buying back the 470 call and selling the 475 call keeps the 100 shares' cover.

    By hand: a net credit of 0.40 a unit, nothing to hold; at a net debit of 0.40 the roll
    pays 40, more than the 0 of options buying power left after the reserve.
    """
    gate = RiskGate(RiskLimits(), journal)
    legs = [
        Leg("SPY231020C00470000", 1, "buy", "buy_to_close"),
        Leg("SPY231117C00475000", 1, "sell", "sell_to_open"),
    ]
    held = [
        Position("SPY", Decimal(100), Decimal(440), "us_equity", Decimal(44000)),
        Position("SPY231020C00470000", Decimal(-1), Decimal(2), "us_option", Decimal(-200)),
    ]
    owner = Owner("options", "covered_call", "roll")
    credit = OrderRequest.multileg(legs, 1, Decimal("-0.40"), owner=owner)
    assert gate.check(credit, Decimal("-0.40"), _options_account("2000"), held, NOW).allowed
    debit = OrderRequest.multileg(legs, 1, Decimal("0.40"), owner=Owner("options", "cc", "r2"))
    v = gate.check(debit, Decimal("0.40"), _options_account("2000"), held, NOW)
    assert v.check == "options_buying_power", v


def _working(journal: Journal, request: OrderRequest, status: str = "accepted") -> None:
    """Journal ``request`` as sent and answered ``status`` by the venue, unfilled."""
    cid = request.client_order_id
    owner = request.owner
    journal.record_order_intent(cid, owner.engine, owner.strategy, None, request.to_dict(), NOW)
    journal.record_order_update(cid, f"b-{cid}", status, 0, None, {}, NOW)


@pytest.mark.parametrize(("status", "allowed"), [("accepted", False), ("canceled", True)])
def test_max_positions_counts_names_with_a_working_opening_order(
    journal, status: str, allowed: bool
) -> None:
    """AAPL held, a buy of MSFT resting: two names of max_positions 2, so JPM is a third.

    Once the MSFT order is cancelled only AAPL is held and JPM may open.
    """
    gate = RiskGate(RiskLimits(max_positions=2), journal)
    _working(journal, _buy("MSFT", 10), status)
    held = [Position("AAPL", Decimal(10), Decimal(100), "us_equity", Decimal(1000))]
    v = gate.check(_buy("JPM", 1), Decimal(100), _account(), held, NOW)
    assert (v.allowed, v.check) == (allowed, None if allowed else "max_positions"), v


def test_max_positions_counts_a_resting_structure_and_not_a_resting_close(journal) -> None:
    """A condor resting on SPY is a name held; an order closing legs opens no name.

    max_positions 2, AAPL held: the resting SPY condor fills the second place, so a bull call
    spread on QQQ is refused. A resting close of QQQ legs alone would not count.
    """
    gate = RiskGate(RiskLimits(max_positions=2), journal)
    held = [Position("AAPL", Decimal(10), Decimal(100), "us_equity", Decimal(1000))]
    qqq = [
        Leg("QQQ231020C00370000", 1, "buy", "buy_to_open"),
        Leg("QQQ231020C00375000", 1, "sell", "sell_to_open"),
    ]
    spread = OrderRequest.multileg(qqq, 1, Decimal("2.00"), owner=Owner("options", "bc", "q"))
    closing = [Leg(g.occ_symbol, 1, _other(g), f"{_other(g)}_to_close") for g in _condor().legs]
    _working(journal, OrderRequest.multileg(closing, 1, Decimal("0.5"), owner=Owner("o", "c", "c")))
    assert gate.check(spread, Decimal("2.00"), _account(), held, NOW).allowed
    _working(journal, _condor(7))
    v = gate.check(spread, Decimal("2.00"), _account(), held, NOW)
    assert (v.allowed, v.check) == (False, "max_positions"), v


def test_a_structure_denied_is_journaled_under_its_underlying_and_why_shows_it(
    journal, caplog
) -> None:
    """``why SPY`` after the gate refused an iron condor on SPY names the refusal and its reason.

    The denial was journaled under the symbol "mleg", so the operator asking about SPY found
    nothing, and the log line read "options mleg 2 mleg denied".
    """
    from v28quant.cli import why

    gate = RiskGate(RiskLimits(), journal)
    risk = OptionsRisk(FLAT, FLAT, BUDGET, 2600.0, 2500.0)  # 2,600 past 2,500 per structure
    v = gate.check(_condor(), Decimal("1.50"), _account(), [], NOW, options=risk)
    assert v.check == "max_loss"
    (row,) = _denials(journal)
    assert row["symbol"] == "SPY"
    assert "risk: options iron_condor 2 SPY denied: max loss 2600.00" in caplog.text
    lines = why(journal, "spy", None)
    assert any(
        "denied by the risk gate" in line and "iron_condor" in line and v.reason in line
        for line in lines
    ), lines


@pytest.mark.parametrize(("close", "halted"), [("100000", True), ("99990", False)])
def test_without_the_venues_previous_close_the_days_loss_counts_from_the_runners_roll_up(
    journal: Journal, close: str, halted: bool
) -> None:
    """A venue reporting no ``last_equity`` (the simulated exchange): yesterday's roll-up.

    The runner rolled up 2022-06-14 at 100,000 or 99,990; today's first mark reads 96,999. By
    hand 3,001 / 100,000 = 3.001 % is past the 3 % limit, 2,991 / 99,990 = 2.991 % is not.
    Counted from the first mark, the loss would be 0 and the overnight gap never counted.
    """
    journal.record_decision(
        "eod-2022-06-14",
        "runner",
        "runner",
        "*",
        "end_of_day",
        {"day": "2022-06-14", "equity": close},
        datetime(2022, 6, 14, 20, 1, tzinfo=UTC),
    )
    state = RiskGate(RiskLimits(), journal).mark(_account("96999"), NOW)
    assert state.halted is halted
    day_start = journal.decisions(engine="risk", action="mark")[-1]["reasoning"]["day_start"]
    assert Decimal(day_start) == Decimal(close)


def test_an_older_roll_up_is_not_the_previous_close(journal: Journal) -> None:
    """A roll-up two sessions back (the runner was down yesterday) is not yesterday's close."""
    journal.record_decision(
        "eod-2022-06-13",
        "runner",
        "runner",
        "*",
        "end_of_day",
        {"day": "2022-06-13", "equity": "120000"},
        datetime(2022, 6, 13, 20, 1, tzinfo=UTC),
    )
    RiskGate(RiskLimits(), journal).mark(_account("96999"), NOW)
    day_start = journal.decisions(engine="risk", action="mark")[-1]["reasoning"]["day_start"]
    assert Decimal(day_start) == Decimal("96999")
