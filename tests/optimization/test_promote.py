"""Promote only an intact, journaled, passing, held-out walk-forward the runner trades."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
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
    record_tune,
    require_off_hours,
    save_report,
)
from v28quant.optimization.provenance import (
    TUNED_PARAMS_FILE,
    read_params_file,
    write_tuned_params,
)
from v28quant.optimization.synthetic import QuadraticEvaluator
from v28quant.optimization.tuner import BayesianTuner, TunerConfig
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


def test_a_promotion_the_journal_refuses_leaves_the_last_promoted_set_trading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal write that fails (locked past its busy timeout, disk full) refuses the promotion.

    Reference: the file beside the journal, read back, against the first promotion's values;
    and ``load_promoted``, the runner's start-up check, still accepting that first set.
    """
    first, second = _report(OPTIMUM), _report({A: 0.32, B: 0.68})
    assert first.passed, first.verdict
    assert second.passed, second.verdict
    with Journal(tmp_path / "journal.sqlite") as j:
        done = promote(_saved(first, tmp_path / "wf1", j), j)
        before = done.path.read_text()
        later = _saved(second, tmp_path / "wf2", j)

        def locked(*args: Any) -> None:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(j, "record_model_run", locked)
        with pytest.raises(sqlite3.OperationalError):
            promote(later, j)
    assert done.path.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    loaded = load_promoted(tmp_path / "journal.sqlite")
    assert loaded is not None
    assert loaded.digest == done.digest


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


# -- a tuned set is promoted only on sessions its search never saw ------------------------------

# A broad optimum: every trial is about as good, so even the tuner's best, deflated for all its
# trials, passes; only where it was tested can refuse it.
FLAT = RunnerQuadratic(OPTIMUM, n_dates=1400, edge=0.002, curvature=0.001)
EARLY = RunnerQuadratic(OPTIMUM, n_dates=700, edge=0.002, curvature=0.001)  # FLAT's first half
TUNE_SCHEME = WindowScheme("anchored", 3, 300, 1)
AFTER_EARLY = WindowScheme("anchored", 2, 700, 1)  # every test window after EARLY's last day


def _tune(ev: QuadraticEvaluator, journal: Journal, out: Path) -> Path:
    """Tune ``ev`` as ``tune`` does: its walk-forward, parameter file and journaled run."""
    res = BayesianTuner(ev, TunerConfig(n_trials=16, seed=2), TUNE_SCHEME).optimize()
    params_file = write_tuned_params(out / TUNED_PARAMS_FILE, res.best_params, res.searched)
    report = _saved(res.walk_forward, out, journal)
    record_tune(journal, res, None, report, params_file)
    return params_file


def _walk_forward(params_file: Path, scheme: WindowScheme, out: Path, j: Journal) -> Path:
    """``walk-forward --params FILE`` on FLAT: the report file."""
    params, search = read_params_file(params_file)
    report = WalkForwardOptimizer(FLAT, scheme).run_fixed(params, search=search)
    assert report.passed, report.verdict  # only where it was tested can refuse it
    return _saved(report, out, j)


def _overlap_text(report_path: Path) -> str:
    """Return a report's test windows as the refusal names them (read from the file)."""
    windows = json.loads(report_path.read_text())["windows"]
    return ", ".join(
        f"{w['index']} ({w['test_start'][:10]}..{w['test_end'][:10]})" for w in windows
    )


def test_a_tuned_set_tested_on_the_sessions_it_was_tuned_on_is_refused(tmp_path: Path) -> None:
    """The tuner searched every session of FLAT; a walk-forward there is in sample for it."""
    with Journal(tmp_path / "journal.sqlite") as j:
        params_file = _tune(FLAT, j, tmp_path / "tune")
        search = json.loads(params_file.read_text())["search"]
        first, last = (d.strftime("%Y-%m-%d") for d in FLAT.dates()[[0, -1]])
        assert (search["first_session"], search["last_session"]) == (first, last)
        path = _walk_forward(params_file, TUNE_SCHEME, tmp_path / "wf", j)
        assert json.loads(path.read_text())["search"]["held_out"] is False
        expected = f"sessions {first}..{last}, and test window(s) {_overlap_text(path)} overlap"
        with pytest.raises(PromotionRefused, match=re.escape(expected)):
            promote(path, j)
    assert not (tmp_path / PROMOTED_FILE).exists()


def test_the_tune_runs_own_walk_forward_is_refused(tmp_path: Path) -> None:
    """The best trial's walk-forward is scored on the very windows it was chosen on."""
    with Journal(tmp_path / "journal.sqlite") as j:
        _tune(FLAT, j, tmp_path / "tune")
        report = tmp_path / "tune" / "walkforward.json"
        assert json.loads(report.read_text())["passed"] is True
        with pytest.raises(PromotionRefused, match="not out of sample for its search"):
            promote(report, j)
    assert not (tmp_path / PROMOTED_FILE).exists()


def test_a_tuned_set_tested_after_its_search_is_promoted(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite") as j:
        params_file = _tune(EARLY, j, tmp_path / "tune")
        path = _walk_forward(params_file, AFTER_EARLY, tmp_path / "wf", j)
        saved = json.loads(path.read_text())
        last = EARLY.dates()[-1].strftime("%Y-%m-%d")
        assert saved["search"]["last_session"] == last
        assert all(w["test_start"][:10] > last for w in saved["windows"])
        assert saved["search"]["held_out"] is True
        done = promote(path, j)
    tuned = json.loads(params_file.read_text())["params"]
    promoted = json.loads(done.path.read_text())["params"]
    assert {k: promoted[k] for k in tuned} == tuned


def test_a_set_promoted_in_sample_before_the_check_does_not_trade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A promotion written without the held-out check is refused at the runner's start."""
    with Journal(tmp_path / "journal.sqlite") as j:
        params_file = _tune(FLAT, j, tmp_path / "tune")
        path = _walk_forward(params_file, TUNE_SCHEME, tmp_path / "wf", j)
        with monkeypatch.context() as m:  # promote as it was before it checked
            m.setattr("v28quant.optimization.promote.require_held_out", lambda *a: None)
            promote(path, j)
    assert (tmp_path / PROMOTED_FILE).exists()
    with pytest.raises(PromotionRefused, match=re.escape(_overlap_text(path))):
        load_promoted(tmp_path / "journal.sqlite")


def test_a_promoted_set_whose_report_is_gone_does_not_trade(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite") as j:
        params_file = _tune(EARLY, j, tmp_path / "tune")
        path = _walk_forward(params_file, AFTER_EARLY, tmp_path / "wf", j)
        promote(path, j)
    assert load_promoted(tmp_path / "journal.sqlite") is not None
    path.rename(path.with_suffix(".moved"))
    with pytest.raises(PromotionRefused, match=f"its walk-forward report {re.escape(str(path))}"):
        load_promoted(tmp_path / "journal.sqlite")


def test_an_untuned_set_is_unaffected(tmp_path: Path) -> None:
    """A hand-picked file has no search: promoted on any sessions, a tune in the journal or not."""
    hand_picked = tmp_path / "mine.json"
    hand_picked.write_text(json.dumps(OPTIMUM))
    with Journal(tmp_path / "journal.sqlite") as j:
        _tune(FLAT, j, tmp_path / "tune")  # of other parameters than the hand-picked ones
        assert read_params_file(hand_picked) == (OPTIMUM, None)
        path = _walk_forward(hand_picked, TUNE_SCHEME, tmp_path / "wf", j)
        assert "search" not in json.loads(path.read_text())
        done = promote(path, j)
    assert {k: done.params[k] for k in OPTIMUM} == pytest.approx(OPTIMUM)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda raw: raw.pop("search"), id="sessions-removed"),
        pytest.param(
            lambda raw: raw["search"].update(last_session="2010-02-01"), id="sessions-backdated"
        ),
    ],
)
def test_a_tuned_file_with_altered_sessions_is_refused_by_the_journal(
    tmp_path: Path, tamper: Callable[[dict[str, Any]], object]
) -> None:
    """The journaled tune run of the same parameters names the sessions the file no longer does."""
    with Journal(tmp_path / "journal.sqlite") as j:
        params_file = _tune(FLAT, j, tmp_path / "tune")
        raw = json.loads(params_file.read_text())
        tamper(raw)
        params_file.write_text(json.dumps(raw))
        path = _walk_forward(params_file, TUNE_SCHEME, tmp_path / "wf", j)
        last = FLAT.dates()[-1].strftime("%Y-%m-%d")
        with pytest.raises(PromotionRefused, match=rf"\.\.{last}, and test window\(s\) 0 "):
            promote(path, j)
    assert not (tmp_path / PROMOTED_FILE).exists()


def test_unreadable_sessions_in_a_tuned_file_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "params.json"
    search = {"first_session": "2010-01-01", "last_session": "soon"}
    bad.write_text(json.dumps({"params": OPTIMUM, "search": search}))
    with pytest.raises(ValueError, match=r"search\.last_session is not a YYYY-MM-DD session"):
        read_params_file(bad)


@pytest.mark.parametrize(
    ("tuned_on", "scheme", "verdict"),
    [
        (FLAT, TUNE_SCHEME, "test windows inside it: not held out, promote refuses it"),
        (EARLY, AFTER_EARLY, "every test window after it (held out)"),
    ],
)
def test_the_report_page_says_whether_a_tuned_set_was_held_out(
    tmp_path: Path, tuned_on: RunnerQuadratic, scheme: WindowScheme, verdict: str
) -> None:
    from v28quant.optimization.report import write_html

    with Journal(tmp_path / "journal.sqlite") as j:
        params, search = read_params_file(_tune(tuned_on, j, tmp_path / "tune"))
    report = WalkForwardOptimizer(FLAT, scheme).run_fixed(params, search=search)
    page = write_html(report, tmp_path / "page", FLAT.space).read_text()
    first, last = (d.strftime("%Y-%m-%d") for d in tuned_on.dates()[[0, -1]])
    assert f"<td>tuned on</td><td>{search.study}: {first}..{last}; {verdict}</td>" in page
