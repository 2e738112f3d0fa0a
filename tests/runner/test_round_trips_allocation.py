"""Round trips from fills, the allocator's daily sleeve returns, and the options capital share.

References: P&L and returns worked out by hand for each fill sequence; the options share checked
against the units a hand computation of the cash budget allows.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from v28quant.allocation import allocate, daily_returns
from v28quant.calendar import ET, ExchangeCalendar
from v28quant.journal import Journal
from v28quant.options.sizing import capital_share, size_structure
from v28quant.round_trips import round_trips


def _fill(i: int, cid: str, sym: str, side: str, qty: str, price: str, day: int, hour: int = 15):
    return {
        "fill_id": f"f{i}",
        "client_order_id": cid,
        "symbol": sym,
        "side": side,
        "qty": Decimal(qty),
        "price": Decimal(price),
        "ts": datetime(2024, 6, day, hour, tzinfo=UTC),
    }


FILLS = [
    _fill(1, "v28-equity-aggregate-a", "AAPL", "buy", "10", "100", 3),
    _fill(2, "v28-equity-aggregate-b", "AAPL", "buy", "5", "110", 3),
    _fill(3, "v28-equity-aggregate-c", "AAPL", "sell", "12", "120", 4),  # closes 10 @100, 2 @110
    _fill(4, "v28-equity-aggregate-d", "XOM", "sell", "4", "50", 4),  # opens a short
    _fill(5, "v28-equity-aggregate-e", "XOM", "buy", "4", "45", 5),  # covers it
    _fill(6, "v28-options-entry-f", "SPY240621P00500000", "sell", "1", "2.00", 4),
    _fill(7, "v28-options-close-g", "SPY240621P00500000", "buy", "1", "0.50", 5),
    # not an engine's order: it closes the equity engine's 3 left @110, as the operator's would
    _fill(8, "manual-order", "AAPL", "sell", "3", "130", 5),
]


def test_fifo_round_trips_and_their_pnl() -> None:
    trips = round_trips(FILLS, engine="equity")
    assert [(t.symbol, t.side, t.qty) for t in trips] == [
        ("AAPL", "long", 10),
        ("AAPL", "long", 2),
        ("XOM", "short", 4),
        ("AAPL", "long", 3),
    ]
    assert [t.pnl for t in trips] == [200.0, 20.0, 20.0, 60.0]  # 10x20, 2x10, 4x5, 3x20
    assert trips[0].ret == pytest.approx(math.log(1.2))
    assert trips[2].ret == pytest.approx(-math.log(45 / 50))
    assert len({t.key for t in trips}) == 4
    (opt,) = round_trips(FILLS, engine="options")
    assert opt.pnl == pytest.approx(150.0)  # short put: (2.00 - 0.50) x 100


def test_an_order_closed_by_another_in_two_fills_is_one_round_trip() -> None:
    # Buy 100 @ 10.00 in one order; one sell order fills 50 @ 11.00 and 50 @ 12.00: one trade,
    # exit 11.50 on average, P&L 50 x 1 + 50 x 2 = 150, closed at the last fill.
    fills = [
        _fill(1, "v28-equity-aggregate-a", "AAPL", "buy", "100", "10", 3),
        _fill(2, "v28-equity-aggregate-b", "AAPL", "sell", "50", "11", 4, 10),
        _fill(3, "v28-equity-aggregate-b", "AAPL", "sell", "50", "12", 4, 11),
    ]
    (trip,) = round_trips(fills, engine="equity")
    assert (trip.side, trip.qty, trip.entry_price, trip.exit_price) == (
        "long",
        100,
        10,
        Decimal("11.5"),
    )
    assert trip.pnl == 150.0
    assert trip.exit_ts == fills[2]["ts"]
    assert trip.move == pytest.approx(math.log(11.5 / 10))


def test_an_order_filled_in_two_pieces_and_closed_by_one_is_one_round_trip() -> None:
    # One buy order fills 60 @ 10.00 and 40 @ 10.50 (entry 10.20 on average); one sell of 100
    # @ 11.00 closes it: one trade, P&L 60 x 1.00 + 40 x 0.50 = 80, entered at the first fill.
    fills = [
        _fill(1, "v28-equity-aggregate-a", "AAPL", "buy", "60", "10", 3, 10),
        _fill(2, "v28-equity-aggregate-a", "AAPL", "buy", "40", "10.5", 3, 11),
        _fill(3, "v28-equity-aggregate-b", "AAPL", "sell", "100", "11", 4),
    ]
    (trip,) = round_trips(fills, engine="equity")
    assert (trip.side, trip.qty, trip.entry_price, trip.exit_price) == (
        "long",
        100,
        Decimal("10.2"),
        11,
    )
    assert trip.pnl == 80.0
    assert trip.entry_ts == fills[0]["ts"]


def test_daily_sleeve_returns_before_today() -> None:
    out = daily_returns(FILLS, 100_000.0, before=date(2024, 6, 5))
    assert list(out) == [date(2024, 6, 3), date(2024, 6, 4)]
    assert out[date(2024, 6, 3)] == {"equity/aggregate": 0.0, "options/structures": 0.0}
    assert out[date(2024, 6, 4)]["equity/aggregate"] == pytest.approx(220 / 100_000)
    everything = daily_returns(FILLS, 100_000.0, before=date(2024, 6, 6))
    assert everything[date(2024, 6, 5)] == pytest.approx(
        {"equity/aggregate": (20 + 60) / 100_000, "options/structures": 150 / 100_000}
    )
    with pytest.raises(ValueError, match="equity must be > 0"):
        daily_returns(FILLS, 0.0, before=date(2024, 6, 6))


class _Spread:
    """A bull put spread 5 wide for a 1.00 credit: max loss 400 per unit, collateral 400."""

    strategy = "bull_put"
    natural = -1.0

    def max_loss(self, net: float | None = None) -> float:
        return (5.0 - 1.0) * 100.0

    def collateral(self) -> float:
        return 400.0


def _size(share: float) -> int:
    s: Any = _Spread()
    return size_structure(
        s,
        max_loss=10_000.0,
        max_units=50,
        equity=100_000.0,
        cash_available=2_000.0,
        max_csp_fraction=0.2,
        share=share,
    ).units


def test_the_options_share_scales_the_cash_it_may_commit() -> None:
    assert _size(1.0) == 5  # floor(2000 cash / 400 collateral); max loss allows 25
    assert _size(0.5) == 2  # floor(1000 / 400)
    ctx = SimpleNamespace(shared={"capital_split": {"equity": 0.6, "options": 0.4}})
    assert capital_share(ctx) == 0.4
    assert capital_share(SimpleNamespace()) == 1.0
    with pytest.raises(ValueError, match="capital_split"):
        capital_share(SimpleNamespace(shared={"capital_split": {"options": 1.5}}))


# The allocator's sessions fed from a real journal: fills and option settlements as the
# executor journals them (the simulated exchange's activities carry the underlying's close in
# ``raw``; Alpaca's do not). US/Eastern 16:00 is 20:00 UTC in June.
PUT_500, PUT_495 = "SPY240607P00500000", "SPY240607P00495000"
EXPIRY_CLOSE = datetime(2024, 6, 7, 20, tzinfo=UTC)


def _journal_fill(
    journal: Journal, fill_id: str, cid: str, sym: str, side: str, qty: int, price: str, day: int
) -> None:
    ts = datetime(2024, 6, day, 15, tzinfo=UTC)
    journal.record_fill(fill_id, cid, sym, qty, Decimal(price), side, ts)


def _settle(
    journal: Journal,
    kind: str,
    sym: str,
    qty: int,
    *,
    price: str | None = None,
    close: str | None = None,
    option: str | None = None,
) -> None:
    raw: dict[str, Any] = {"activity_type": kind}
    if close is not None:
        raw["underlying_close"] = close
    if option is not None:
        raw["option"] = option
    n = len(journal.settlements())
    journal.record_activity(f"a{n}", kind, sym, qty, price, EXPIRY_CLOSE, raw)


def _bull_put_sold(journal: Journal) -> None:
    """Sell the 500 put at 3.00, buy the 495 at 1.00 on 3 June: a 2.00 credit, 5 wide."""
    cid = "v28-options-bull_put-aaaaaaaaaaaa"
    _journal_fill(journal, "o1", cid, PUT_500, "sell", 1, "3.00", 3)
    _journal_fill(journal, "o2", cid, PUT_495, "buy", 1, "1.00", 3)


CALENDAR = ExchangeCalendar("2024-01-01", "2024-12-31")


def _premarket(journal: Journal, today: date, shared: dict[str, Any] | None = None) -> Any:
    """Run the pre-market allocation at 09:00 ET on ``today``; return its context."""
    now = datetime.combine(today, datetime.min.time(), UTC).replace(hour=13)
    ctx: Any = SimpleNamespace(
        shared={} if shared is None else shared,
        now=now,
        journal=journal,
        regime=None,
        calendar=CALENDAR,
    )
    allocate(ctx, 100_000.0)
    return ctx


def _fed_by_each(journal: Journal) -> list[dict[str, dict[str, float]]]:
    """Return what each journaled ``capital_split`` decision says it fed, oldest first."""
    rows = journal.decisions(action="capital_split")
    return [row["reasoning"]["sessions_fed"] for row in rows]


def _sessions_fed(journal: Journal, today: date) -> dict[str, dict[str, float]]:
    """Run the pre-market allocation on ``today``; return what it journaled as fed."""
    _premarket(journal, today)
    (fed,) = _fed_by_each(journal)
    return fed


def test_an_option_sold_at_zero_closes_with_its_whole_premium_lost(journal: Journal) -> None:
    # By hand: bought at 1.20, sold at 0.00 the next day: -1.20 x 100 = -120 on 4 June.
    _journal_fill(journal, "o1", "v28-options-long_put-aaaaaaaaaaaa", PUT_500, "buy", 1, "1.20", 3)
    _journal_fill(journal, "o2", "v28-options-close-bbbbbbbbbbbb", PUT_500, "sell", 1, "0", 4)
    fed = _sessions_fed(journal, date(2024, 6, 6))
    assert fed["2024-06-04"]["options/structures"] == pytest.approx(-120 / 100_000)


@pytest.mark.parametrize("close", ["510", None], ids=["simulated", "alpaca"])
def test_a_bull_put_expiring_worthless_keeps_its_credit_on_the_expiry_day(
    journal: Journal, close: str | None
) -> None:
    # By hand: both legs expire (OPEXP, no closing fill): the 2.00 credit x 100 = +200 on 7 June.
    _bull_put_sold(journal)
    _settle(journal, "OPEXP", PUT_500, 1, close=close)
    _settle(journal, "OPEXP", PUT_495, -1, close=close)
    fed = _sessions_fed(journal, date(2024, 6, 11))
    assert fed["2024-06-07"] == pytest.approx(
        {"equity/aggregate": 0.0, "options/structures": 0.002}
    )


@pytest.mark.parametrize("close", ["490", None], ids=["simulated", "alpaca"])
def test_an_assigned_spread_loses_its_width_less_the_credit_on_the_expiry_day(
    journal: Journal, close: str | None
) -> None:
    # By hand: at 490 the short 500 put is assigned (buy 100 SPY at 500) and the long 495 put
    # exercised (sell 100 at 495): the spread loses (5.00 - 2.00) x 100 = -300 on 7 June.
    _bull_put_sold(journal)
    _settle(journal, "OPASN", PUT_500, 1, close=close)
    _settle(journal, "OPTRD", "SPY", 100, price="500", option=PUT_500)
    _settle(journal, "OPEXC", PUT_495, -1, close=close)
    _settle(journal, "OPTRD", "SPY", -100, price="495", option=PUT_495)
    fed = _sessions_fed(journal, date(2024, 6, 11))
    assert fed["2024-06-07"] == pytest.approx(
        {"equity/aggregate": 0.0, "options/structures": -0.003}
    )


def test_the_operators_flatten_closes_the_equity_engines_lot(journal: Journal) -> None:
    # By hand: 10 AAPL bought at 100 by the equity engine, flattened at 95: -50 on 4 June.
    _journal_fill(journal, "e1", "v28-equity-aggregate-aaaaaaaaaaaa", "AAPL", "buy", 10, "100", 3)
    _journal_fill(journal, "e2", "v28-risk-flatten-bbbbbbbbbbbb", "AAPL", "sell", 10, "95", 4)
    fed = _sessions_fed(journal, date(2024, 6, 6))
    assert fed["2024-06-04"] == pytest.approx(
        {"equity/aggregate": -50 / 100_000, "options/structures": 0.0}
    )


def test_a_settlement_journaled_the_morning_after_counts_on_its_session(
    journal: Journal,
) -> None:
    # The equity engine closes a trip on Friday 7 June (+50: 10 AAPL bought at 100, sold at
    # 105), so Monday's pre-market sees that session. The bull put's OPEXP pair of the 7th is
    # journaled only after it. By hand, 7 June: equity +50, options +200 (the 2.00 credit).
    _bull_put_sold(journal)
    _journal_fill(journal, "e1", "v28-equity-aggregate-aaaaaaaaaaaa", "AAPL", "buy", 10, "100", 6)
    _journal_fill(journal, "e2", "v28-equity-aggregate-bbbbbbbbbbbb", "AAPL", "sell", 10, "105", 7)
    shared: dict[str, Any] = {}
    _premarket(journal, date(2024, 6, 10), shared)
    _settle(journal, "OPEXP", PUT_500, 1)
    _settle(journal, "OPEXP", PUT_495, -1)
    for day in (11, 12):
        _premarket(journal, date(2024, 6, day), shared)
    fed = [(d, r) for each in _fed_by_each(journal) for d, r in each.items()]
    assert [r for d, r in fed if d == "2024-06-07"] == [
        pytest.approx({"equity/aggregate": 50 / 100_000, "options/structures": 200 / 100_000})
    ]


def test_a_restart_feeds_no_session_again_and_keeps_what_was_fed(journal: Journal) -> None:
    # By hand: a long put bought at 1.20 on 3 June and sold at zero on the 4th: the options
    # sleeve's equity falls 1 - 120 / 100_000 from its peak, a drawdown of 0.0012.
    _journal_fill(journal, "o1", "v28-options-long_put-aaaaaaaaaaaa", PUT_500, "buy", 1, "1.20", 3)
    _journal_fill(journal, "o2", "v28-options-close-bbbbbbbbbbbb", PUT_500, "sell", 1, "0", 4)
    _journal_fill(journal, "e1", "v28-equity-aggregate-aaaaaaaaaaaa", "AAPL", "buy", 10, "100", 5)
    _journal_fill(journal, "e2", "v28-equity-aggregate-bbbbbbbbbbbb", "AAPL", "sell", 10, "99", 6)
    _premarket(journal, date(2024, 6, 6))
    restarted = _premarket(journal, date(2024, 6, 10))  # a new process: nothing in ``shared``
    fed = [d for each in _fed_by_each(journal) for d in each]
    assert sorted(fed) == ["2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06"]
    last = journal.decisions(action="capital_split")[-1]
    assert last["reasoning"]["sessions_total"] == 4
    allocator = restarted.shared["allocator"]
    assert allocator.drawdown("options/structures") == pytest.approx(120 / 100_000)


def _alpaca_activity(
    journal: Journal, kind: str, sym: str, qty: int, day: int, **more: str
) -> None:
    """Journal an option event as Alpaca posts it: dated by day only (read as 16:00 New York)."""
    row = {"activity_type": kind, "date": f"2024-06-{day:02d}", "symbol": sym, "qty": str(qty)}
    row.update(more)
    ts = datetime(2024, 6, day, 16, tzinfo=ET)
    journal.record_activity(f"a-{kind}-{day}", kind, sym, qty, more.get("price"), ts, row)


def test_an_assignment_whose_shares_are_dated_after_it_counts_its_loss_once(
    journal: Journal,
) -> None:
    # The 500 put sold at 3.00 on 3 June is assigned at Friday 7 June's close of 490 (the
    # OPASN annotated with it); Alpaca dates the OPTRD of the 100 SPY bought at 500 on Monday
    # the 10th. The shares are sold at 490 on the 11th. By hand: premium kept +300, shares
    # bought at 500 sold at 490 -1000: -700 in all, and all of it on the 7th, when the put was
    # assigned at 10.00 intrinsic ((3.00 - 10.00) x 100) and the shares were worth 490.
    cid = "v28-options-cash_secured_put-aaaaaaaaaaaa"
    _journal_fill(journal, "o1", cid, PUT_500, "sell", 1, "3.00", 3)
    _alpaca_activity(journal, "OPASN", PUT_500, 1, 7, underlying_close="490")
    _alpaca_activity(journal, "OPTRD", "SPY", 100, 10, price="500")
    _journal_fill(journal, "s1", "v28-options-wheel-bbbbbbbbbbbb", "SPY", "sell", 100, "490", 11)
    out = daily_returns(journal.fills(), 100_000.0, date(2024, 6, 12), journal.settlements())
    by_day = {d.isoformat(): r["options/structures"] * 100_000 for d, r in out.items()}
    assert by_day == pytest.approx({"2024-06-03": 0, "2024-06-07": -700, "2024-06-11": 0})
