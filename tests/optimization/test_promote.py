"""Promote only an intact, journaled, passing walk-forward the runner trades; research off-hours."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from v28quant.journal import Journal
from v28quant.optimization.apply import load_promoted
from v28quant.optimization.promote import (
    PROMOTED_FILE,
    PromotionRefused,
    TradingHoursError,
    is_off_hours,
    off_hours_deadline,
    promote,
    require_off_hours,
    save_report,
)
from v28quant.optimization.synthetic import QuadraticEvaluator
from v28quant.optimization.walkforward import WalkForwardOptimizer, WalkForwardReport
from v28quant.optimization.windows import WindowScheme

ET = ZoneInfo("America/New_York")
A, B = "weights.crisis.capm", "weights.crisis.xgboost"  # two of the runner's parameters
OPTIMUM = {A: 0.3, B: 0.7}


class RunnerQuadratic(QuadraticEvaluator):
    """The quadratic stand-in, named as the evaluator of the runner's own engines."""

    name = "backtest"


# A strong edge at the optimum: daily Sharpe 0.2 (3.2 a year) passes any reasonable DSR bar.
EV = RunnerQuadratic(OPTIMUM, edge=0.002, curvature=0.02)
SCHEME = WindowScheme("anchored", 3, 300, 1)


def _report(params: dict[str, float], ev: QuadraticEvaluator = EV) -> WalkForwardReport:
    return WalkForwardOptimizer(ev, SCHEME).run_fixed(params)


def _saved(report: WalkForwardReport, out: Path, journal: Journal | None) -> Path:
    now = datetime.now(ET)
    return save_report(report, out, journal, now, now)


def test_passing_journaled_report_is_promoted(tmp_path: Path) -> None:
    """What promote writes, the runner's start-up loader accepts, parameter for parameter."""
    report = _report(OPTIMUM)
    assert report.passed, report.verdict
    with Journal(tmp_path / "journal.sqlite") as j:
        path = _saved(report, tmp_path / "wf", j)
        done = promote(path.parent, j)
    assert done.path == tmp_path / PROMOTED_FILE
    loaded = load_promoted(tmp_path / "journal.sqlite")
    assert loaded is not None
    assert loaded.params == done.params
    assert {k: loaded.params[k] for k in OPTIMUM} == pytest.approx(OPTIMUM)


def test_a_sample_strategy_set_is_not_promoted(tmp_path: Path) -> None:
    """A passing sample-strategy set (``tune``'s default objective) is refused, none written.

    Its parameters are valid in the sample strategy's own space; the runner would refuse the
    file at start, and an unattended restart would stay down.
    """
    sample = {"weights.crisis.momentum": 0.3, "weights.crisis.trend": 0.7}
    ev = QuadraticEvaluator(sample, edge=0.002, curvature=0.02)
    ev.name = "sample-strategy"
    report = _report(sample, ev)
    assert report.passed, report.verdict
    with Journal(tmp_path / "journal.sqlite") as j:
        path = _saved(report, tmp_path / "wf", j)
        with pytest.raises(
            PromotionRefused, match="'sample-strategy' evaluator, not of the runner"
        ):
            promote(path, j)
    assert not (tmp_path / PROMOTED_FILE).exists()
    assert load_promoted(tmp_path / "journal.sqlite") is None


def test_failing_walk_forward_is_refused(tmp_path: Path) -> None:
    report = _report({A: 0.95, B: 0.05})  # far from the optimum: losing out-of-sample
    assert not report.passed
    with Journal(tmp_path / "journal.sqlite") as j:
        path = _saved(report, tmp_path / "wf", j)
        with pytest.raises(PromotionRefused, match="did not pass"):
            promote(path, j)
        assert load_promoted(j.path) is None


def test_a_pass_at_a_lowered_bar_is_refused(tmp_path: Path) -> None:
    """``walk-forward --min-dsr 0.05`` marks a DSR of 0.79 as passed; promotion needs 0.95.

    Reference: the README's bar (DSR >= 0.95 and a positive OOS Sharpe ratio) against the
    report's own DSR, read back from its file.
    """
    report = WalkForwardOptimizer(EV, SCHEME, min_dsr=0.05).run_fixed({A: 0.54, B: 0.7})
    with Journal(tmp_path / "journal.sqlite") as j:
        path = _saved(report, tmp_path / "wf", j)
        saved = json.loads(path.read_text())
        assert saved["passed"] is True  # by its own lowered bar
        assert saved["oos_sharpe"] > 0
        assert 0.5 < saved["dsr"]["dsr"] < 0.95, saved["dsr"]
        with pytest.raises(PromotionRefused, match=r"DSR 0\.79\d below 0\.95"):
            promote(path, j)
        assert load_promoted(j.path) is None


def test_report_not_in_the_journal_is_refused(tmp_path: Path) -> None:
    path = _saved(_report(OPTIMUM), tmp_path / "wf", None)
    with (
        Journal(tmp_path / "journal.sqlite") as j,
        pytest.raises(PromotionRefused, match="no walk-forward with digest"),
    ):
        promote(path, j)


def test_altered_report_is_refused(tmp_path: Path) -> None:
    # A failing report edited to say it passed no longer matches its digest.
    with Journal(tmp_path / "journal.sqlite") as j:
        path = _saved(_report({A: 0.95, B: 0.05}), tmp_path / "wf", j)
        payload = json.loads(path.read_text())
        payload["passed"] = True
        path.write_text(json.dumps(payload))
        with pytest.raises(PromotionRefused, match="digest"):
            promote(path, j)


def test_missing_report_is_refused(tmp_path: Path) -> None:
    with (
        Journal(tmp_path / "journal.sqlite") as j,
        pytest.raises(PromotionRefused, match="no readable"),
    ):
        promote(tmp_path / "nowhere", j)


@pytest.mark.parametrize(
    ("when", "off"),
    [
        (datetime(2024, 3, 13, 10, 0, tzinfo=ET), False),  # Wednesday, market open
        (datetime(2024, 3, 13, 8, 45, tzinfo=ET), False),  # 15 min before the 09:00 pre-market
        (datetime(2024, 3, 13, 8, 0, tzinfo=ET), True),
        (datetime(2024, 3, 13, 21, 0, tzinfo=ET), True),
        (datetime(2024, 3, 16, 12, 0, tzinfo=ET), True),  # Saturday
        (datetime(2024, 7, 4, 12, 0, tzinfo=ET), True),  # Independence Day, closed
    ],
)
def test_off_hours_guard(when: datetime, off: bool) -> None:
    assert is_off_hours(when, margin=timedelta(minutes=30)) is off
    if off:
        require_off_hours(when)
    else:
        with pytest.raises(TradingHoursError, match="off-hours only"):
            require_off_hours(when)


def test_deadline_is_before_the_next_premarket() -> None:
    # Friday evening -> Monday 08:30 ET (30 minutes before the 09:00 pre-market job).
    d = off_hours_deadline(datetime(2024, 3, 15, 20, 0, tzinfo=ET))
    assert d == datetime(2024, 3, 18, 8, 30, tzinfo=ET)
