"""Lifecycle rules, the wheel's book, the Monte Carlo touch probability and IV rank.

References: the touch probability of driftless GBM against the reflection principle
(P(max_{s<=T} W_s >= b) = 2 P(W_T >= b)); exit rules against hand-worked premiums.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from v28quant.broker.base import Activity
from v28quant.options.iv_rank import iv_rank, realised_vol_history
from v28quant.options.lifecycle import Book, ExitRules, Held, Marks, exit_rule
from v28quant.options.touch import touch_probability

NOW = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)
PUT = "SPY240621P00520000"
CALL = "SPY240621C00560000"


def _held(strategy: str, legs: dict[str, int], entry: float, *, wheel: bool = False) -> Held:
    return Held(
        "s1", strategy, "SPY", date(2024, 6, 21), legs, 1, entry, 500.0, NOW, "cid", wheel=wheel
    )


def _act(kind: str, symbol: str, qty: str, i: int) -> Activity:
    return Activity(f"a{i}", kind, symbol, Decimal(qty), None, NOW + timedelta(minutes=i))


def test_wheel_put_assigned_then_call_called_away(tmp_path: Path) -> None:
    """CSP assigned -> shares at strike less credit; covered call assigned -> back to cash."""
    book = Book(tmp_path / "book.json")
    book.opened(_held("cash_secured_put", {PUT: -1}, -3.10, wheel=True))
    assert book.stage("SPY").stage == "short_put"
    events = book.apply_activity(_act("OPASN", PUT, "1", 1))
    assert [e.kind for e in events] == ["assigned", "closed"]
    w = book.stage("SPY")
    assert (w.stage, w.shares) == ("shares", 100)
    assert w.basis == pytest.approx(520.0 - 3.10)
    assert book.apply_activity(_act("OPASN", PUT, "1", 1)) == []  # a repeat changes nothing
    book.opened(
        Held(
            "s2",
            "covered_call",
            "SPY",
            date(2024, 6, 21),
            {CALL: -1},
            1,
            -2.0,
            0.0,
            NOW,
            "cid2",
            wheel=True,
        )
    )
    assert book.stage("SPY").stage == "covered_call"
    book.save()
    again = Book(tmp_path / "book.json")  # persisted and read back
    events = again.apply_activity(_act("OPASN", CALL, "1", 2))
    assert [e.kind for e in events] == ["called_away", "closed"]
    w = again.stage("SPY")
    assert (w.stage, w.shares, w.cycles) == ("cash", 0, 1)


def test_expired_leg_leaves_the_rest_of_a_spread() -> None:
    """OPEXP removes one leg; the structure closes when its last leg is gone."""
    book = Book()
    long_put = "SPY240621P00510000"
    book.opened(_held("bull_put", {PUT: -1, long_put: 1}, -1.2))
    assert [e.kind for e in book.apply_activity(_act("OPEXP", long_put, "-1", 1))] == ["expired"]
    assert "s1" in book.held
    kinds = [e.kind for e in book.apply_activity(_act("OPEXP", PUT, "1", 2))]
    assert kinds == ["expired", "closed"]
    assert book.held == {}


RULES = ExitRules()
CUT = datetime(2024, 6, 21, 20, 0, tzinfo=UTC)


def _marks(close: float, delta: float = -0.2, spot: float = 540.0, extr: float = 1.0) -> Marks:
    return Marks(close, {PUT: delta, CALL: delta}, {PUT: extr, CALL: extr}, spot)


def test_take_profit_and_stop_on_a_credit() -> None:
    """A 3.10 credit: buying back at 1.50 keeps 52 % (take profit); at 9.40 loses 2x (stop)."""
    h = _held("bull_put", {PUT: -1}, -3.10)
    tp = exit_rule(h, _marks(1.50), now=NOW, cutoff=CUT, rules=RULES)
    assert tp is not None
    assert tp.action == "take_profit"
    assert tp.reason["pnl_fraction"] == pytest.approx(1.60 / 3.10, abs=1e-4)
    assert exit_rule(h, _marks(2.00), now=NOW, cutoff=CUT, rules=RULES) is None
    stop = exit_rule(h, _marks(9.40), now=NOW, cutoff=CUT, rules=RULES)
    assert stop is not None
    assert stop.action == "stop_loss"


def test_roll_expiry_close_and_early_assignment() -> None:
    """Roll a tested short, close near the cut-off, flag an ITM call before its ex-date.

    The call is flagged when its extrinsic value is below the dividend the day before.
    """
    h = _held("bull_put", {PUT: -1}, -3.10)
    late = datetime(2024, 6, 17, 15, 0, tzinfo=UTC)
    roll = exit_rule(h, _marks(5.0, delta=-0.55, spot=519.0), now=late, cutoff=CUT, rules=RULES)
    assert roll is not None
    assert roll.action == "roll"
    at_cut = CUT - timedelta(minutes=20)
    ec = exit_rule(h, _marks(3.5, delta=-0.5, spot=521.0), now=at_cut, cutoff=CUT, rules=RULES)
    assert ec is not None
    assert ec.action == "expiry_close"
    wheel_put = _held("cash_secured_put", {PUT: -1}, -3.10, wheel=True)
    assert (
        exit_rule(wheel_put, _marks(3.5, spot=519.0), now=at_cut, cutoff=CUT, rules=RULES) is None
    )
    cc = _held("covered_call", {CALL: -1}, -2.0)
    ex = (date(2024, 6, 4), 1.75)
    ea = exit_rule(
        cc,
        _marks(6.0, delta=0.9, spot=565.0, extr=0.3),
        now=NOW,
        cutoff=CUT,
        rules=RULES,
        ex_dividend=ex,
    )
    assert ea is not None
    assert ea.action == "early_assignment"
    rich = exit_rule(
        cc,
        _marks(6.0, delta=0.9, spot=565.0, extr=2.5),
        now=NOW,
        cutoff=CUT,
        rules=RULES,
        ex_dividend=ex,
    )
    assert rich is None or rich.action != "early_assignment"


@pytest.mark.parametrize("barrier", [90.0, 112.0])
def test_touch_probability_matches_the_reflection_principle(barrier: float) -> None:
    """Driftless log price: P(touch) = 2 N(-|ln(B/S)| / (sigma sqrt T)).

    The log drift is zero when r - q = sigma^2 / 2.
    """
    s, vol, t = 100.0, 0.25, 0.25
    p, se = touch_probability(
        s, barrier, t, 0.5 * vol * vol, 0.0, vol=vol, paths=20000, steps=200, seed=7
    )
    want = 2.0 * norm.cdf(-abs(math.log(barrier / s)) / (vol * math.sqrt(t)))
    assert abs(p - want) < 4 * se + 0.005  # Monte Carlo error plus the residual discreteness


def test_iv_rank_and_realised_vol_history() -> None:
    """Rank and percentile by their definitions; realised vol against numpy."""
    hist = [0.10, 0.12, 0.20, 0.30]
    rank, pct = iv_rank(0.15, hist)
    assert rank == pytest.approx((0.15 - 0.10) / 0.20)
    assert pct == pytest.approx(0.5)
    assert iv_rank(0.2, [0.2]) == (0.5, 0.5)
    rng = np.random.default_rng(1)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    rv = realised_vol_history(closes, 21)
    r = np.diff(np.log(closes))
    assert rv[-1] == pytest.approx(np.std(r[-21:], ddof=1) * math.sqrt(252))
    assert len(rv) == len(r) - 20


def test_an_early_assignment_of_part_of_a_leg_leaves_the_rest_in_the_book() -> None:
    """Two covered calls on the wheel's 200 shares; one is assigned early (OPASN qty +1).

    By hand: 100 shares are called away and 100 stay, covered by the call still short, which
    the book must keep managing (1 unit), the wheel still at its covered-call stage.
    """
    book = Book()
    w = book.stage("SPY")
    w.stage, w.shares, w.basis = "shares", 200, 540.0
    book.opened(
        Held("cc", "covered_call", "SPY", date(2024, 6, 21), {CALL: -1}, 2, -2.0, 0.0, NOW, "c",
             wheel=True)
    )  # fmt: skip
    events = book.apply_activity(_act("OPASN", CALL, "1", 1))
    assert [(e.kind, e.qty) for e in events] == [("called_away", 1)]
    assert (book.held["cc"].legs, book.held["cc"].units) == ({CALL: -1}, 1)
    assert (w.stage, w.shares, w.cycles) == ("covered_call", 100, 0)


def test_an_early_assignment_of_part_of_a_spreads_short_keeps_the_whole_units() -> None:
    """A bull put of 3 units; 1 of its 3 short puts is assigned early (OPASN qty +1).

    By hand: 2 whole spreads are left (the third long put stands alone), and the assignment
    delivers 100 shares the engine did not want (a put assigned: +100 per contract).
    """
    book = Book()
    long_put = "SPY240621P00510000"
    h = _held("bull_put", {PUT: -1, long_put: 1}, -1.2)
    h.units = 3
    book.opened(h)
    (ev,) = book.apply_activity(_act("OPASN", PUT, "1", 1))
    assert (ev.kind, ev.qty, ev.detail["stray_shares"]) == ("assigned", 1, 100)
    assert (book.held["s1"].legs, book.held["s1"].units) == ({PUT: -1, long_put: 1}, 2)


def test_a_long_put_left_by_an_assigned_short_is_judged_on_its_own_premium() -> None:
    """A bull put (short 520 at 2.00, long 510 at 0.80: a 1.20 credit); the short is assigned.

    By hand: what is left is the long put bought for 0.80 (a debit). Sold at 0.50 it has lost
    0.30, 37.5 % of its premium: below the 50 % stop, so it is held. Judged against the
    spread's 1.20 credit it would look like a 142 % gain and be closed at once.
    """
    book = Book()
    long_put = "SPY240621P00510000"
    h = _held("bull_put", {PUT: -1, long_put: 1}, -1.2)
    h.leg_entry = {PUT: 2.0, long_put: 0.8}
    book.opened(h)
    book.apply_activity(_act("OPASN", PUT, "1", 1))
    left = book.held["s1"]
    assert left.legs == {long_put: 1}
    assert left.entry_net == pytest.approx(0.8)
    marks = Marks(-0.5, {long_put: -0.3}, {long_put: 0.5}, 518.0)
    assert exit_rule(left, marks, now=NOW, cutoff=CUT, rules=RULES) is None


def test_an_assignment_of_one_contract_held_by_two_structures_takes_the_oldest() -> None:
    """Two covered calls of 1 unit on the same 560C, the second opened a day later.

    By hand: the venue assigns 1 of the account's 2 short calls; the oldest structure is the
    one settled, the younger keeps its short call over the 100 shares left.
    """
    book = Book()
    w = book.stage("SPY")
    w.stage, w.shares, w.basis = "covered_call", 200, 540.0
    for sid, opened in (("young", NOW), ("old", NOW - timedelta(days=1))):
        book.opened(
            Held(sid, "covered_call", "SPY", date(2024, 6, 21), {CALL: -1}, 1, -2.0, 0.0,
                 opened, sid, wheel=True)
        )  # fmt: skip
    events = book.apply_activity(_act("OPASN", CALL, "1", 1))
    assert [(e.kind, e.structure_id) for e in events] == [
        ("called_away", "old"),
        ("closed", "old"),
    ]
    assert list(book.held) == ["young"]
    assert (w.stage, w.shares) == ("covered_call", 100)


def test_a_book_file_listing_seen_ids_only_still_drops_their_repeats(tmp_path: Path) -> None:
    """A book written before the seen activities kept their times: ids and a cursor only.

    Each id is taken as seen at the cursor: its repeat changes nothing, and it stays until the
    next read starts after the cursor.
    """
    path = tmp_path / "book.json"
    path.write_text('{"seen_activities": ["a1"], "activity_cursor": "2024-06-03T15:01:00+00:00"}')
    book = Book(path)
    book.opened(_held("cash_secured_put", {PUT: -1}, -3.10, wheel=True))
    assert book.apply_activity(_act("OPASN", PUT, "1", 1)) == []
    book.forget_activities_before(NOW)
    assert list(book.seen_activities) == ["a1"]
    book.forget_activities_before(NOW + timedelta(days=1))
    assert book.seen_activities == {}


def test_a_book_file_listing_seen_ids_without_a_cursor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text('{"seen_activities": ["a1"]}')
    with pytest.raises(ValueError, match=r"book\.json lists seen activities but no"):
        Book(path)
