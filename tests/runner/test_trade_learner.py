"""The equity engine's continuous learner: closed trades in, a journaled retrain on drift.

Real history (skfolio's S&P 500 closes) and the real classifiers. Trades entered in March 2020
(the crash: volatility features far outside the held-out window of late 2022) must fire the
drift test, retrain XGBoost and journal it; trades entered inside the held-out window itself
(the reference distribution) must not. The drift statistic is checked against scipy's
two-sample KS test on the same samples. Eight sessions of three stocks are worth few
independent rows of the persistent features (the panel effective size), so the windows are
the crash's first days, where the daily returns leave the reference's range.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import threading
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from v28quant.calendar import ET
from v28quant.equity.learning import WATCHED, TradeLearner
from v28quant.equity.sources import MarketView, MlSource
from v28quant.journal import Journal
from v28quant.journal.schema import POSITIONS_ACCEPTED_ACTION, RECONCILE_ENGINE
from v28quant.ml.continuous_learner import ContinuousLearnerConfig

pytestmark = pytest.mark.slow

SYMBOLS = ["AAPL", "JPM", "XOM"]
CONFIG = ContinuousLearnerConfig(window=24, min_trades=24, cooldown=24, test_every=24)


@pytest.fixture(scope="module")
def ml_view() -> tuple[MlSource, MarketView]:
    from v28quant.data.samples import sp500_stocks

    bars = sp500_stocks().bars
    bars = bars[bars["symbol"].isin([*SYMBOLS, "SP500"])]
    bars = bars[pd.to_datetime(bars["timestamp"], utc=True) >= pd.Timestamp("2016-01-01", tz="UTC")]
    closes = bars.pivot_table(index="timestamp", columns="symbol", values="close").sort_index()
    last = pd.Timestamp(closes.index[-1]).tz_convert(ET).date()
    view = MarketView(
        now=datetime.combine(last + timedelta(days=1), time(9), ET),
        symbols=SYMBOLS,
        bars=bars.reset_index(drop=True),
        closes=closes,
        market="SP500",
        data_ts=datetime.combine(last, time(16), ET),
    )
    ml = MlSource()
    ml.refit(view)
    return ml, view


def _trades(journal: Journal, days: list[pd.Timestamp]) -> None:
    """One round trip per (day, symbol): buy at the close, sell 3 days later."""
    i = 0
    for d in days:
        for sym in SYMBOLS:
            entry = datetime.combine(d.date(), time(15, 30), ET)
            for side, ts in (("buy", entry), ("sell", entry + timedelta(days=3))):
                price = Decimal("100") if side == "buy" else Decimal("101")
                journal.record_fill(f"f{i}", f"v28-equity-aggregate-{i}", sym, 10, price, side, ts)
                i += 1


@pytest.mark.asyncio
async def test_crash_trades_fire_the_drift_test_and_a_journaled_retrain(
    ml_view: tuple[MlSource, MarketView], journal: Journal
) -> None:
    ml, view = ml_view
    learner = TradeLearner(ml, CONFIG)
    learner.prepare(view)
    before = ml.models[WATCHED]
    days = list(pd.bdate_range("2020-03-09", "2020-03-20"))[:8]  # 8 days x 3 symbols = 24
    _trades(journal, days)
    reports = await learner.after_session(journal, view.now)
    assert len(reports) == 1
    assert reports[0].drift
    assert ml.models[WATCHED] is not before  # retrained, swapped in
    (row,) = journal.decisions(action="retrain")
    why = row["reasoning"]
    assert why["model"] == WATCHED
    assert why["trades"] == 24
    assert why["min_adjusted_p"] < CONFIG.alpha
    # a drifted feature's KS distance, from scipy on the crash rows and the reference sample
    assert learner.learner is not None
    ref = learner.learner.detector
    features = [n for n in why["drifted"] if n != "calibration"]
    assert features, why["drifted"]
    assert ml.features is not None
    col = ml.features.xs(pd.Timestamp(days[0].date()), level="date")[features[0]].to_numpy()
    sample = ref.reference[:, ref.feature_names.index(features[0])]
    assert stats.ks_2samp(col, sample).statistic > 0.5


@pytest.mark.asyncio
async def test_trades_like_the_reference_fire_no_retrain(
    ml_view: tuple[MlSource, MarketView], journal: Journal
) -> None:
    ml, view = ml_view
    learner = TradeLearner(ml, CONFIG)
    learner.prepare(view)
    before = ml.models[WATCHED]
    dates = np.unique(ml.features.index.get_level_values("date")) if ml.features is not None else []
    held = [pd.Timestamp(d) for d in dates[-ml.holdout_dates :: 15]][:8]
    _trades(journal, held)
    reports = await learner.after_session(journal, view.now)
    assert len(reports) == 1
    assert not reports[0].drift
    assert ml.models[WATCHED] is before
    assert journal.decisions(action="retrain") == []
    again = await learner.after_session(journal, view.now)  # nothing new: nothing fed twice
    assert again == []
    assert len(learner.fed) == 24


@pytest.mark.asyncio
async def test_the_off_hours_check_tests_off_schedule_and_journals_the_retrain(
    ml_view: tuple[MlSource, MarketView], journal: Journal
) -> None:
    # A cooldown of 48 trades and a sparse schedule: the session itself never tests the 48
    # trades (late February to mid-March 2020); the night's check tests the last 24 (the
    # crash's first days, 5-16 March) and retrains.
    ml, view = ml_view
    config = ContinuousLearnerConfig(window=24, min_trades=24, cooldown=48, test_every=10_000)
    learner = TradeLearner(ml, config)
    learner.prepare(view)
    before = ml.models[WATCHED]
    _trades(journal, list(pd.bdate_range("2020-02-24", "2020-03-16")))
    assert await learner.after_session(journal, view.now) == []
    report = await learner.check(journal, view.now)
    assert report is not None
    assert report.drift
    assert ml.models[WATCHED] is not before
    (row,) = journal.decisions(action="retrain")
    assert row["reasoning"]["trades"] == 48


@pytest.mark.asyncio
async def test_a_drift_inside_the_cooldown_journals_no_second_retrain(
    ml_view: tuple[MlSource, MarketView], journal: Journal
) -> None:
    # The crash trades retrain once (cooldown 24 trades). The night's check tests the same 24
    # trades again: still drift, but no trade since the retrain, so none starts and the
    # journal must keep its one retrain row (the learner's own count says 1).
    ml, view = ml_view
    learner = TradeLearner(ml, CONFIG)
    learner.prepare(view)
    _trades(journal, list(pd.bdate_range("2020-03-09", "2020-03-20"))[:8])
    await learner.after_session(journal, view.now)
    retrained = ml.models[WATCHED]
    report = await learner.check(journal, view.now + timedelta(hours=12))
    assert report is not None
    assert report.drift, report
    assert learner.learner is not None
    assert learner.learner.retrain_count == 1
    assert ml.models[WATCHED] is retrained
    rows = journal.decisions(action="retrain")
    assert [r["reasoning"]["retrained"] for r in rows] == [1], rows


@pytest.mark.asyncio
async def test_a_trip_goes_to_the_learner_with_the_classifiers_label_once_it_is_known(
    ml_view: tuple[MlSource, MarketView], journal: Journal
) -> None:
    # Trips entered 40 sessions before the data's end carry the features of the session before
    # (t = 41 sessions before the end) and have their 5-session labels: fed, with the direction
    # of close(t + 5) / close(t) read off the closes by hand (not the trip's own move: every
    # trip here bought at 100 and sold at 101). Trips entered 2 sessions before the end do
    # not: not fed, and left for a later day.
    ml, view = ml_view
    learner = TradeLearner(ml, CONFIG)
    learner.prepare(view)
    closes = view.closes.dropna()
    days = [pd.Timestamp(pd.Timestamp(t).tz_convert(ET).date()) for t in closes.index]
    _trades(journal, [days[-40], days[-3]])
    await learner.after_session(journal, view.now)
    assert learner.learner is not None
    fed = learner.learner._trades
    assert len(learner.fed) == len(fed) == len(SYMBOLS)
    assert all(t.feature_date == days[-41] for t in fed)
    by_hand = {s: int(closes[s].iloc[-36] > closes[s].iloc[-41]) for s in SYMBOLS}
    assert 0 in by_hand.values()  # the trips all rose: the label is not their direction
    assert {t.symbol: t.label for t in fed} == by_hand


@pytest.mark.asyncio
async def test_a_trip_carries_what_the_classifier_said_before_its_entry(
    ml_view: tuple[MlSource, MarketView], journal: Journal
) -> None:
    # A trade entered at 15:30 was chosen on the features the pre-market built, the last of
    # them dated the session before: the entry day's own row needs its close, 30 minutes
    # later. The learner's record is that row and the classifier's P(up) on it, recomputed
    # here from the features frame and the model.
    ml, view = ml_view
    learner = TradeLearner(ml, CONFIG)
    learner.prepare(view)
    closes = view.closes.dropna()
    days = [pd.Timestamp(pd.Timestamp(t).tz_convert(ET).date()) for t in closes.index]
    _trades(journal, [days[-40]])
    await learner.after_session(journal, view.now)
    assert learner.learner is not None
    assert ml.features is not None
    model = ml.models[WATCHED]
    for trade in learner.learner._trades:
        row = ml.features.xs((days[-41], trade.symbol))[model.feature_names]
        assert trade.feature_date == days[-41], (trade.symbol, trade.feature_date)
        np.testing.assert_array_equal(trade.features, row.to_numpy(np.float64))
        expected = float(model.predict_proba(row.to_frame().T)[0])
        assert trade.prob_up == pytest.approx(expected, rel=1e-12), trade.symbol


def test_a_held_out_window_of_one_label_leaves_the_features_tested(
    ml_view: tuple[MlSource, MarketView],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every held-out row rose (one label class): no calibration to test, the features still.

    A calibration cannot be fitted on one label class; the learner must still be built, or the
    equity engine's pre-market job would fail every day until a refit moved the window.
    """
    ml, view = ml_view
    rose = TradeLearner.labels(TradeLearner(ml, CONFIG), view) * 0 + 1
    monkeypatch.setattr(TradeLearner, "labels", lambda self, v: rose)
    learner = TradeLearner(ml, CONFIG)
    with caplog.at_level("WARNING"):
        learner.prepare(view)
    assert learner.learner is not None
    assert learner.learner.detector.calibration is None
    assert learner.learner.detector.feature_names == list(ml.models[WATCHED].feature_names)
    assert any("calibration" in r.getMessage() for r in caplog.records)


def _prepared(ml: MlSource, view: MarketView) -> tuple[TradeLearner, datetime]:
    """Return a learner prepared on ``view`` and an entry time for its trades to pair.

    The entry is 15:00 ET of the 40th last session of ``view``'s closes.
    """
    learner = TradeLearner(ml, CONFIG)
    learner.prepare(view)
    day = pd.Timestamp(view.closes.dropna().index[-40]).tz_convert(ET).date()
    return learner, datetime.combine(day, time(15), ET)


@pytest.mark.asyncio
async def test_a_position_the_operator_flattened_is_a_closed_trade_of_the_engine(
    ml_view: tuple[MlSource, MarketView], journal: Journal
) -> None:
    # The equity engine buys 10 AAPL at 100; the operator's flatten sells them at 90 three days
    # later. By hand: one long trip of 10, P&L 10 x (90 - 100) = -100, move log(90 / 100).
    ml, view = ml_view
    learner, entry = _prepared(ml, view)
    journal.record_fill("f0", "v28-equity-aggregate-0", "AAPL", 10, Decimal(100), "buy", entry)
    flatten = entry + timedelta(days=3)
    journal.record_fill("f1", "v28-risk-flatten-1", "AAPL", 10, Decimal(90), "sell", flatten)
    await learner.after_session(journal, view.now)
    assert learner.learner is not None
    (trade,) = learner.learner._trades
    assert (trade.symbol, trade.side, trade.pnl) == ("AAPL", "long", -100.0)
    assert trade.move == pytest.approx(math.log(0.9))
    assert learner.fed == {"v28-equity-aggregate-0>v28-risk-flatten-1"}  # opening>closing order


def test_a_one_symbol_universe_builds_its_learner(ml_view: tuple[MlSource, MarketView]) -> None:
    """``--universe AAPL``: the pre-market's learner is built on one row a date.

    No date's mean to split off: the calibration's persistence is that of AAPL's own rows.
    """
    _, full = ml_view
    bars = full.bars[full.bars["symbol"].isin(["AAPL", "SP500"])].reset_index(drop=True)
    view = MarketView(
        now=full.now,
        symbols=["AAPL"],
        bars=bars,
        closes=full.closes[["AAPL", "SP500"]],
        market="SP500",
        data_ts=full.data_ts,
    )
    ml = MlSource()
    ml.refit(view)
    learner = TradeLearner(ml, CONFIG)
    learner.prepare(view)
    assert learner.learner is not None
    calibration = learner.learner.detector.calibration
    assert calibration is not None
    assert calibration.dependence is not None
    assert calibration.dependence.common_share == 0.0
    assert 0.0 <= calibration.dependence.own_phi < 1.0


class HeldFit:
    """Holds XGBoost's fit until released, as a long retrain does; says when one has begun."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from v28quant.ml.gradient_boost_ensemble import XGBoostModel

        self.begun = threading.Event()
        self.release = threading.Event()
        fit = XGBoostModel.fit

        def held(model: XGBoostModel, X: Any, y: Any) -> XGBoostModel:
            self.begun.set()
            self.release.wait(60)
            return fit(model, X, y)

        monkeypatch.setattr(XGBoostModel, "fit", held)


@pytest.mark.asyncio
async def test_a_drift_check_cut_mid_retrain_leaves_a_whole_model_and_journals_the_retrain(
    ml_view: tuple[MlSource, MarketView], journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The night's check is cut (its off-hours budget) while its retrain fits: the retrain goes
    # on in its thread. A pre-market reading the classifiers meanwhile must find XGBoost (the
    # old one, whole), and the retrain, once done, must be journaled.
    ml, view = ml_view
    config = ContinuousLearnerConfig(window=24, min_trades=24, cooldown=48, test_every=10_000)
    learner = TradeLearner(ml, config)
    learner.prepare(view)
    before = ml.models[WATCHED]
    _trades(journal, list(pd.bdate_range("2020-02-24", "2020-03-16")))
    assert await learner.after_session(journal, view.now) == []
    fit = HeldFit(monkeypatch)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None) as limit:
                checking = asyncio.ensure_future(learner.check(journal, view.now))
                await asyncio.to_thread(fit.begun.wait, 60)
                limit.reschedule(asyncio.get_running_loop().time())
                await checking
        assert fit.begun.is_set()
        assert ml.models.get(WATCHED) is before  # what the pre-market reads during the fit
    finally:
        fit.release.set()
    for _ in range(600):
        if journal.decisions(action="retrain"):
            break
        await asyncio.sleep(0.05)
    (row,) = journal.decisions(action="retrain")
    assert row["reasoning"]["trades"] == 48
    assert ml.models[WATCHED] is not before


def test_a_retrain_that_fails_takes_the_model_it_was_to_replace_out_of_service(
    ml_view: tuple[MlSource, MarketView], monkeypatch: pytest.MonkeyPatch
) -> None:
    from v28quant.ml.gradient_boost_ensemble import XGBoostModel

    ml, view = ml_view
    ml = copy.copy(ml)  # the shared source keeps its models
    assert WATCHED in ml.models

    def failing(model: XGBoostModel, X: Any, y: Any) -> XGBoostModel:
        raise ValueError("fit failed")

    monkeypatch.setattr(XGBoostModel, "fit", failing)
    with pytest.raises(ValueError, match="fit failed"):
        ml.retrain(view, WATCHED)
    assert WATCHED not in ml.models
    assert "stacked_ensemble" in ml.models


@pytest.mark.asyncio
async def test_a_sale_of_accepted_shares_feeds_only_the_engines_own_trip(
    ml_view: tuple[MlSource, MarketView], journal: Journal
) -> None:
    # The equity engine buys 10 AAPL at 100; the next day the operator accepts the venue's 12
    # (2 transferred in, the venue's average 98.00); it sells the 12 at 90, then buys 2 at 95.
    # By hand: its one trip is 10 x (90 - 100) = -100; the 2 accepted are no trip of its. A
    # learner blind to the acceptance also fed the phantom short of 2 that the buy covered.
    ml, view = ml_view
    learner, entry = _prepared(ml, view)
    journal.record_fill("f0", "v28-equity-aggregate-0", "AAPL", 10, Decimal(100), "buy", entry)
    accepted = entry + timedelta(days=1)
    journal.record_positions([{"symbol": "AAPL", "qty": 12, "avg_entry_price": "98.00"}], accepted)
    taken = {"symbol": "AAPL", "journal": "10", "expected": "10", "broker": "12"}
    journal.record_decision(
        "positions_accepted-1",
        RECONCILE_ENGINE,
        "operator",
        "*",
        POSITIONS_ACCEPTED_ACTION,
        {"request": "accept_positions-1", "reason": "ACATS", "positions": [taken]},
        accepted,
    )
    sold, bought = entry + timedelta(days=3), entry + timedelta(days=4)
    journal.record_fill("f1", "v28-equity-aggregate-1", "AAPL", 12, Decimal(90), "sell", sold)
    journal.record_fill("f2", "v28-equity-aggregate-2", "AAPL", 2, Decimal(95), "buy", bought)
    await learner.after_session(journal, view.now)
    assert learner.learner is not None
    (trade,) = learner.learner._trades
    assert (trade.symbol, trade.side, trade.pnl) == ("AAPL", "long", -100.0)
    assert learner.fed == {"v28-equity-aggregate-0>v28-equity-aggregate-1"}


@pytest.mark.asyncio
async def test_shares_an_assignment_took_are_no_longer_there_for_the_engine_to_sell(
    ml_view: tuple[MlSource, MarketView], journal: Journal
) -> None:
    # 100 AAPL bought by hand at 100; the options engine's call on them is assigned (its 100
    # shares sold at the 100 strike); the equity engine then buys 10 at 100 and sells them at
    # 101. By hand: the assignment closes the shares bought by hand, so the sale closes the
    # equity engine's own 10: its trip of 10 x (101 - 100) = +10. A learner blind to the
    # settlement had the sale close the shares bought by hand, and fed nothing.
    ml, view = ml_view
    learner, entry = _prepared(ml, view)
    call = f"AAPL{entry:%y%m%d}C00100000"
    journal.record_fill("f0", "hand-0", "AAPL", 100, Decimal(100), "buy", entry)
    journal.record_fill("f1", "v28-options-covered_call-1", call, 1, Decimal(2), "sell", entry)
    assigned = entry + timedelta(hours=2)
    raw = {"underlying_close": "105"}
    journal.record_activity("a0", "OPASN", call, 1, None, assigned, raw)
    journal.record_activity("a1", "OPTRD", "AAPL", -100, Decimal(100), assigned, {"option": call})
    bought, sold = entry + timedelta(days=1), entry + timedelta(days=3)
    journal.record_fill("f2", "v28-equity-aggregate-2", "AAPL", 10, Decimal(100), "buy", bought)
    journal.record_fill("f3", "v28-equity-aggregate-3", "AAPL", 10, Decimal(101), "sell", sold)
    await learner.after_session(journal, view.now)
    assert learner.learner is not None
    (trade,) = learner.learner._trades
    assert (trade.symbol, trade.side, trade.pnl) == ("AAPL", "long", 10.0)
    assert learner.fed == {"v28-equity-aggregate-2>v28-equity-aggregate-3"}
