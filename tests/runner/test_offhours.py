"""The runner's off-hours jobs: drift checks after the close, bounded tuning, which nights run what.

Independent references: scipy's two-sample Kolmogorov-Smirnov test and statsmodels'
Benjamini-Hochberg correction for the journaled drift p-values; the exchange calendar's
windows (after-close 16:30, pre-market 09:00 New York) for when the jobs may run; the tune
command's own report file and journal rows for what a night's tuning produced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes.notices import Notices
from scipy import stats
from statsmodels.stats.multitest import multipletests
from v28quant import offhours
from v28quant.calendar import ET, default_calendar
from v28quant.clock import SimClock
from v28quant.config import load_config
from v28quant.engines import CycleReport, EngineContext
from v28quant.journal import Journal
from v28quant.ml.continuous_learner import (
    ContinuousLearner,
    ContinuousLearnerConfig,
    DriftDetector,
    TradeOutcome,
)
from v28quant.notify import NullNotifier
from v28quant.offhours import OffHoursJobs, OffHoursPlan, off_hours_window, plan_for
from v28quant.risk import RiskGate
from v28quant.runner import Runner
from v28quant.runner_args import RunArgs
from v28quant.venue import open_venue

CAL = default_calendar()
MARGIN = timedelta(minutes=30)


def _model_runs(path: Path, model: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(str(path))
    try:
        rows = db.execute("SELECT metrics FROM model_runs WHERE model = ?", (model,)).fetchall()
    finally:
        db.close()
    return [json.loads(r[0]) for r in rows]


def _runner(tmp_path: Path, engines: list[Any]) -> Runner:
    """Keyless paper over one session, 30-minute cycles."""
    settings, cfg = load_config(None, journal_path=tmp_path / "j.sqlite")
    args = RunArgs("paper", None, ("AAPL", "MSFT", "JPM"), None, None, None, 1, False, "INFO", None)
    venue = open_venue("paper", settings, cfg, args, CAL)
    journal = Journal(tmp_path / "j.sqlite")
    ctx = EngineContext(
        mode="paper",
        clock=venue.clock,
        broker=venue.broker,
        feed=venue.feed,
        journal=journal,
        executor=None,
        aggregator=None,
        risk=RiskGate(settings.risk, journal, CAL),
        settings=settings,
        config=cfg,
        notifier=NullNotifier(),
        universe=venue.universe,
        calendar=CAL,
        model_dir=tmp_path / "models",
        synthetic=True,
    )
    return Runner(ctx, venue, engines, cycle_minutes=30)


class Learning:
    """An engine whose continuous learner has seen closed trades (planted shift in x0)."""

    name = "learning"

    def __init__(self, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.reference = rng.normal(size=(200, 2))
        self.trades = np.column_stack([rng.normal(1.0, 1.0, 62), rng.normal(0.0, 1.0, 62)])
        self.retrains: list[int] = []
        self.learner = ContinuousLearner(
            {},
            DriftDetector(self.reference),
            self._retrain,
            # the per-trade schedule never tests these 62 trades (cooldown 61 > 60 at the first
            # due test): only the off-hours check does
            ContinuousLearnerConfig(window=60, min_trades=60, cooldown=61, test_every=1000),
        )
        self.cycles: list[datetime] = []
        self.checked: list[datetime] = []

    def _retrain(self, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        self.retrains.append(len(X))
        return {}

    async def premarket(self, ctx: EngineContext) -> None:
        return None

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        self.cycles.append(ctx.now)
        return CycleReport(self.name, ctx.now)

    async def end_of_day(self, ctx: EngineContext) -> None:
        for i, x in enumerate(self.trades):  # the day's closed trades
            self.learner.record_trade(TradeOutcome("AAPL", x, 0.5, 1.0 if i % 2 else -1.0))

    async def drift_check(self, ctx: EngineContext) -> Any:
        self.checked.append(ctx.now)
        return self.learner.check_drift()


@pytest.mark.asyncio
async def test_drift_check_runs_after_the_close_and_is_journaled(tmp_path: Path) -> None:
    engine = Learning()
    runner = _runner(tmp_path, [engine])  # keyless paper, one session
    day = runner.venue.sessions[0]
    assert await runner.run() == 0
    engine.learner.close()
    w = CAL.windows(day)
    assert engine.checked
    assert engine.checked[0] >= w.after_close > max(engine.cycles)
    assert engine.checked[0] < CAL.windows(CAL.next_session(day)).premarket - MARGIN
    runs = _model_runs(runner.ctx.journal.path, "learning.drift_check")
    assert len(runs) == 1
    m = runs[0]
    recent = engine.trades[-60:]  # the test window
    p = [stats.ks_2samp(engine.reference[:, j], recent[:, j]).pvalue for j in (0, 1)]
    assert [m["p_values"]["x0"], m["p_values"]["x1"]] == pytest.approx(p, rel=1e-9)
    adj = multipletests(p, alpha=0.05, method="fdr_bh")[1]
    assert [m["adjusted"]["x0"], m["adjusted"]["x1"]] == pytest.approx(list(adj), rel=1e-9)
    assert m["drift"] is True
    assert m["drifted"] == ["x0"]  # the planted shift, and only it
    assert engine.retrains == [62]  # drift past the cooldown: a retrain on every trade
    night = runner.ctx.journal.decisions(engine="runner", action="offhours")
    assert len(night) == 1
    why = night[0]["reasoning"]
    assert why["drift"]["learning"] == "drift in x0"
    assert why["tuning"]["status"] == "skipped"
    assert "keyless paper" in why["tuning"]["reason"]
    runner.ctx.journal.close()


def test_which_runs_tune() -> None:
    _, cfg = load_config(None)
    oh = cfg.offhours
    assert plan_for(oh, "live", keyless=False, tune_flag=False) == OffHoursPlan(True, True)
    assert plan_for(oh, "paper", keyless=False, tune_flag=False).tune
    assert not plan_for(oh, "paper", keyless=True, tune_flag=False).tune
    assert plan_for(oh, "paper", keyless=True, tune_flag=True).tune
    sim = dataclasses.replace(oh, tune_in_simulation=True)
    assert plan_for(sim, "paper", keyless=True, tune_flag=False).tune
    assert not plan_for(sim, "backtest", keyless=True, tune_flag=True).tune
    off = dataclasses.replace(oh, tune=False, drift_checks=False)
    assert plan_for(off, "live", keyless=False, tune_flag=False) == OffHoursPlan(
        False, False, "[offhours] tune = false"
    )


@pytest.mark.parametrize(
    ("now", "start", "until"),
    [
        # Friday 2024-06-07 17:00: now, until Monday 08:30
        ((2024, 6, 7, 17, 0), (2024, 6, 7, 17, 0), (2024, 6, 10, 8, 30)),
        # Monday 12:00 (a run asked during the session): from the after-close time
        ((2024, 6, 10, 12, 0), (2024, 6, 10, 16, 30), (2024, 6, 11, 8, 30)),
        # Monday 08:45, after the stop: tonight
        ((2024, 6, 10, 8, 45), (2024, 6, 10, 16, 30), (2024, 6, 11, 8, 30)),
        # Monday 06:00: the rest of the night, to that morning's stop
        ((2024, 6, 10, 6, 0), (2024, 6, 10, 6, 0), (2024, 6, 10, 8, 30)),
        # Saturday: until Monday's stop
        ((2024, 6, 8, 11, 0), (2024, 6, 8, 11, 0), (2024, 6, 10, 8, 30)),
        # Wednesday 2024-07-03 (13:00 early close, 4 July holiday): Friday morning
        ((2024, 7, 3, 14, 0), (2024, 7, 3, 14, 0), (2024, 7, 5, 8, 30)),
    ],
)
def test_off_hours_window(
    now: tuple[int, ...], start: tuple[int, ...], until: tuple[int, ...]
) -> None:
    t = datetime(*now, tzinfo=ET)
    assert off_hours_window(CAL, t, MARGIN) == (
        datetime(*start, tzinfo=ET),
        datetime(*until, tzinfo=ET),
    )
    late = datetime(2024, 6, 7, 23, 0, tzinfo=ET)
    assert off_hours_window(CAL, late, timedelta(days=3)) is None  # nothing left before it


def _ctx(tmp_path: Path, now: datetime) -> EngineContext:
    settings, cfg = load_config(None, journal_path=tmp_path / "j.sqlite")
    return EngineContext(
        mode="paper",
        clock=SimClock(now),
        broker=None,
        feed=None,
        journal=Journal(tmp_path / "j.sqlite"),
        executor=None,
        aggregator=None,
        risk=None,
        settings=settings,
        config=cfg,
        notifier=NullNotifier(),
        universe=("AAPL", "JPM"),
        calendar=CAL,
        model_dir=tmp_path / "models",
    )


def _jobs(ctx: EngineContext, **changes: Any) -> OffHoursJobs:
    cfg = dataclasses.replace(ctx.config.offhours, **changes)
    return OffHoursJobs(cfg, OffHoursPlan(drift=True, tune=True), simulated=True)


@pytest.mark.asyncio
async def test_tuning_past_its_budget_is_terminated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    pidfile = tmp_path / "child.pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    monkeypatch.setattr(offhours, "tune_argv", lambda *a: [sys.executable, "-c", code])
    monkeypatch.setattr(offhours, "MIN_TUNE_S", 1.0)
    monkeypatch.setattr(offhours, "TERMINATE_GRACE_S", 1.0)
    now = datetime(2024, 6, 7, 17, 0, tzinfo=ET)
    ctx = dataclasses.replace(_ctx(tmp_path, now), notifier=Notices())
    jobs = _jobs(ctx, tune_max_minutes=0.05)  # 3 s of wall-clock budget, 2 s of it the child's
    summary = await jobs.run(ctx, [], now + timedelta(hours=10), asyncio.Event())
    assert summary["tuning"]["status"] == "cut"
    assert summary["tuning"]["reason"] == "deadline before the pre-market"
    # the child stored no trial: a plain notice (not an error) says the night was cut
    assert ctx.notifier.sent == [
        "v28 off-hours tuning cut (deadline before the pre-market): 0 trial(s) completed "
        "tonight; completed trials stay in the study v28-backtest beside the journal, which "
        "the next night continues"
    ]
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the child is gone (reaped), not left running into the session
    night = ctx.journal.decisions(engine="runner", action="offhours")
    assert night[0]["reasoning"]["tuning"]["status"] == "cut"
    ctx.journal.close()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_night_of_tuning_journals_its_study_and_walk_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    real = offhours.tune_argv

    def quick(*args: Any) -> list[str]:
        # the sample strategy's seconds-long trials stand in for the engines' backtests
        argv = real(*args)
        argv[argv.index("backtest")] = "sample"
        return argv

    monkeypatch.setattr(offhours, "tune_argv", quick)
    monkeypatch.chdir(tmp_path)
    now = datetime(2024, 6, 7, 17, 0, tzinfo=ET)
    ctx = _ctx(tmp_path, now)
    jobs = _jobs(ctx, tune_trials=2, tune_batch=2, tune_windows=2, tune_train_days=250)
    summary = await jobs.run(ctx, [], now + timedelta(hours=10), asyncio.Event())
    tuning = summary["tuning"]
    assert tuning["status"] == "done", tuning
    report = json.loads((Path(tuning["report"]) / "walkforward.json").read_text())
    assert tuning["verdict"] == report["verdict"]
    assert tuning["dsr"] == report["dsr"]["dsr"]
    assert tuning["n_trials"] == report["n_trials"] == 2
    (tune,) = _model_runs(ctx.journal.path, "optimization.tune")
    assert tune["n_complete"] + tune["n_pruned"] == 2
    (wf,) = _model_runs(ctx.journal.path, "optimization.walk_forward")
    assert wf["digest"] == report["digest"]
    assert (tmp_path / "v28_optuna.sqlite").is_file()  # the study beside the journal
    ctx.journal.close()


def _sleeper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the tuning child a process that writes its pid, then sleeps 10 minutes."""
    pidfile = tmp_path / "child.pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    monkeypatch.setattr(offhours, "tune_argv", lambda *a: [sys.executable, "-c", code])
    monkeypatch.setattr(offhours, "MIN_TUNE_S", 1.0)
    return pidfile


async def _child_pid(pidfile: Path) -> int:
    import asyncio

    for _ in range(200):
        if pidfile.is_file() and pidfile.read_text():
            return int(pidfile.read_text())
        await asyncio.sleep(0.05)
    raise AssertionError("the tuning child never started")


async def _gone(pid: int) -> bool:
    """Whether ``pid`` has ended, per the process table (a zombie awaiting its reap counts)."""
    import asyncio

    stat = Path(f"/proc/{pid}/stat")
    for _ in range(100):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.asyncio
async def test_a_cancelled_night_leaves_no_tuning_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    pidfile = _sleeper(tmp_path, monkeypatch)
    now = datetime(2024, 6, 7, 17, 0, tzinfo=ET)
    ctx = _ctx(tmp_path, now)
    night = asyncio.create_task(_jobs(ctx).run(ctx, [], now + timedelta(hours=10), asyncio.Event()))
    pid = await _child_pid(pidfile)
    night.cancel()  # e.g. the runner's task torn down by an error elsewhere
    with pytest.raises(asyncio.CancelledError):
        await night
    assert await _gone(pid), f"tuning child {pid} outlived the cancelled night"
    ctx.journal.close()


@pytest.mark.asyncio
async def test_a_second_signal_kills_the_tuning_process_before_exiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import signal

    from v28quant import runner as runner_mod

    pidfile = _sleeper(tmp_path, monkeypatch)
    runner = _runner(tmp_path, [Learning()])
    runner.offhours = _jobs(runner.ctx)
    exits: list[int] = []
    monkeypatch.setattr(runner_mod.os, "_exit", exits.append)
    until = runner.ctx.now + timedelta(hours=10)
    night = asyncio.create_task(runner.offhours.run(runner.ctx, [], until, asyncio.Event()))
    pid = await _child_pid(pidfile)
    runner.on_signal(signal.SIGTERM)
    runner.on_signal(signal.SIGTERM)  # "exits at once": the child must not stay behind
    assert exits == [128 + signal.SIGTERM]
    assert await _gone(pid), f"tuning child {pid} outlived the runner's exit"
    night.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await night
    runner.ctx.journal.close()


@pytest.mark.asyncio
async def test_a_simulated_night_tunes_on_no_session_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyless paper replays the bundled history: its tuner must not see the sessions to come.

    Reference: the night's date (2022-12-27, two sessions before the history ends) against the
    last test date of the windows the tune command's own parser and evaluator build.
    """
    import asyncio

    from v28quant.optimization.cli import _evaluator, build_parser

    seen: list[list[str]] = []

    def record(*args: Any, **kwargs: Any) -> list[str]:
        seen.append(offhours_tune_argv(*args, **kwargs))
        return [sys.executable, "-c", "raise SystemExit(1)"]

    offhours_tune_argv = offhours.tune_argv
    monkeypatch.setattr(offhours, "tune_argv", record)
    monkeypatch.setattr(offhours, "MIN_TUNE_S", 1.0)
    now = datetime(2022, 12, 27, 17, 0, tzinfo=ET)
    ctx = _ctx(tmp_path, now)
    summary = await _jobs(ctx, tune_max_minutes=1.0).run(
        ctx, [], now + timedelta(hours=10), asyncio.Event()
    )
    assert summary["tuning"]["status"] == "failed"
    (argv,) = seen
    args = build_parser().parse_args(argv[argv.index("--log-level") :])
    last = _evaluator(args).dates()[-1]
    assert last.date() <= now.date(), f"tuning on {now.date()} sees sessions up to {last.date()}"
    ctx.journal.close()


@pytest.mark.asyncio
async def test_a_cut_night_counts_the_trials_it_completed_not_earlier_nights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The study holds 2 trials of an earlier night; the child adds 3 complete and 1 pruned.

    Reference: the trials this test and its child write with Optuna; the notice and the
    journaled night must count the child's 3 complete ones.
    """
    import asyncio

    import optuna
    from v28quant.optimization.tuner import default_storage, open_storage

    x = optuna.distributions.FloatDistribution(0.0, 1.0)
    url = default_storage(tmp_path / "j.sqlite")
    study = optuna.create_study(study_name="v28-backtest", storage=open_storage(url))
    yesterday = datetime.now() - timedelta(days=1)
    for v in (0.1, 0.2):
        earlier = optuna.trial.create_trial(params={"x": v}, distributions={"x": x}, value=v)
        earlier.datetime_start = earlier.datetime_complete = yesterday
        study.add_trial(earlier)
    stored = tmp_path / "stored"
    code = f"""
import time, optuna
from optuna.trial import TrialState, create_trial
from v28quant.optimization.tuner import open_storage
study = optuna.load_study(study_name="v28-backtest", storage=open_storage({url!r}))
x = optuna.distributions.FloatDistribution(0.0, 1.0)
for v in (0.3, 0.4, 0.5):
    study.add_trial(create_trial(params={{"x": v}}, distributions={{"x": x}}, value=v))
pruned = create_trial(params={{"x": 0.6}}, distributions={{"x": x}}, state=TrialState.PRUNED)
study.add_trial(pruned)
open({str(stored)!r}, "w").close()
time.sleep(600)
"""
    monkeypatch.setattr(offhours, "tune_argv", lambda *a: [sys.executable, "-c", code])
    now = datetime(2024, 6, 7, 17, 0, tzinfo=ET)
    ctx = dataclasses.replace(_ctx(tmp_path, now), notifier=Notices())
    stop = asyncio.Event()
    night = asyncio.create_task(
        _jobs(ctx, tune_max_minutes=10.0).run(ctx, [], now + timedelta(hours=10), stop)
    )
    for _ in range(1200):
        if stored.is_file() or night.done():
            break
        await asyncio.sleep(0.05)
    assert stored.is_file(), "the tuning child stored no trial"
    stop.set()  # the runner stopping mid-night: the same cut as the pre-market's deadline
    summary = await night
    assert summary["tuning"]["status"] == "cut"
    assert summary["tuning"]["trials_completed"] == 3
    assert ctx.notifier.sent == [
        "v28 off-hours tuning cut (stop requested): 3 trial(s) completed tonight; completed "
        "trials stay in the study v28-backtest beside the journal, which the next night "
        "continues"
    ]
    (journaled,) = ctx.journal.decisions(engine="runner", action="offhours")
    assert journaled["reasoning"]["tuning"]["trials_completed"] == 3
    ctx.journal.close()


class CrashingJob:
    """An engine whose own off-hours job raises."""

    name = "crashing"

    async def off_hours(self, ctx: EngineContext, until: datetime) -> None:
        raise KeyError("AAPL")


@pytest.mark.asyncio
async def test_a_crashed_engine_job_is_logged_notified_and_journaled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    now = datetime(2024, 6, 7, 17, 0, tzinfo=ET)
    ctx = dataclasses.replace(_ctx(tmp_path, now), notifier=Notices())
    jobs = OffHoursJobs(ctx.config.offhours, OffHoursPlan(drift=False, tune=False), True)
    await jobs.run(ctx, [CrashingJob()], now + timedelta(hours=10), asyncio.Event())
    assert any("crashing off-hours job failed" in r.getMessage() for r in caplog.records)
    assert ctx.notifier.sent == ["ERROR in crashing off-hours job: KeyError: 'AAPL'"]
    (night,) = ctx.journal.decisions(engine="runner", action="offhours")
    assert night["reasoning"]["engine_jobs"]["crashing"] == "failed: KeyError: 'AAPL'"
    ctx.journal.close()


@pytest.mark.asyncio
async def test_a_tuning_run_that_leaves_no_report_is_a_failed_night_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child exits 0 but its walkforward.json is missing: the night is still journaled."""
    import asyncio

    monkeypatch.setattr(offhours, "tune_argv", lambda *a: [sys.executable, "-c", "pass"])
    monkeypatch.setattr(offhours, "MIN_TUNE_S", 1.0)
    now = datetime(2024, 6, 7, 17, 0, tzinfo=ET)
    ctx = dataclasses.replace(_ctx(tmp_path, now), notifier=Notices())
    summary = await _jobs(ctx, tune_max_minutes=1.0).run(
        ctx, [], now + timedelta(hours=10), asyncio.Event()
    )
    tuning = summary["tuning"]
    assert tuning["status"] == "failed"
    assert "walkforward.json" in tuning["reason"]
    assert len(ctx.notifier.sent) == 1
    assert ctx.notifier.sent[0].startswith("ERROR in off-hours tuning: ")
    (night,) = ctx.journal.decisions(engine="runner", action="offhours")
    assert night["reasoning"]["tuning"] == tuning
    ctx.journal.close()


@pytest.mark.asyncio
async def test_a_passing_night_points_to_a_held_out_walk_forward_not_to_promote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The tune's own walk-forward scores the trials' sessions: promote refuses it.

    Reference: the README's rule (promote refuses a tuned set's in-sample walk-forward); the
    night's advice must be the step that can pass, a walk-forward of its params.json.
    """
    import asyncio
    import logging

    passing = {"passed": True, "verdict": "PASS: DSR 0.990", "dsr": {"dsr": 0.99}, "n_trials": 8}

    def child(cfg: Any, journal: Path, out: Path, *rest: Any) -> list[str]:
        code = f"open({str(out / 'walkforward.json')!r}, 'w').write({json.dumps(passing)!r})"
        return [sys.executable, "-c", code]

    monkeypatch.setattr(offhours, "tune_argv", child)
    monkeypatch.setattr(offhours, "MIN_TUNE_S", 1.0)
    now = datetime(2024, 6, 7, 17, 0, tzinfo=ET)
    ctx = _ctx(tmp_path, now)
    with caplog.at_level(logging.INFO, logger="v28quant.runner"):
        summary = await _jobs(ctx, tune_max_minutes=1.0).run(
            ctx, [], now + timedelta(hours=10), asyncio.Event()
        )
    out = Path(summary["tuning"]["report"])
    assert summary["tuning"]["passed"] is True
    (line,) = [r.getMessage() for r in caplog.records if "off-hours tuning: PASS" in r.getMessage()]
    assert "promote --report" not in line
    assert f"walk-forward --objective backtest --params {out / 'params.json'}" in line
    ctx.journal.close()


@pytest.mark.asyncio
async def test_a_terminated_tuning_child_has_its_grace_inside_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no margin before the pre-market, SIGTERM's grace must not run into it.

    Reference: the night's length on the simulated clock (17:00 to 03:00, 36 000 s) less
    ``TERMINATE_GRACE_S``, against the timeout the runner waits on the child with and the
    ``--deadline`` the child is given (its batches end at ``BATCH_SHARE`` of its own time).
    """
    import asyncio

    from v28quant.offhours import BATCH_SHARE, TERMINATE_GRACE_S

    argvs: list[list[str]] = []
    waits: list[float] = []
    real_argv = offhours.tune_argv

    def child(*args: Any) -> list[str]:
        argvs.append(real_argv(*args))
        return [sys.executable, "-c", "pass"]

    async def wait(proc: Any, budget: float, stop: asyncio.Event) -> str:
        waits.append(budget)
        await proc.wait()
        return "recorded"

    monkeypatch.setattr(offhours, "tune_argv", child)
    monkeypatch.setattr(OffHoursJobs, "_wait", staticmethod(wait))
    now = datetime(2024, 6, 7, 17, 0, tzinfo=ET)
    ctx = _ctx(tmp_path, now)
    jobs = _jobs(ctx, stop_before_premarket_minutes=0, tune_max_minutes=0.0)
    before = datetime.now(ET)
    summary = await jobs.run(ctx, [], now + timedelta(hours=10), asyncio.Event())
    after = datetime.now(ET)
    assert summary["tuning"]["budget_s"] == 36_000.0
    child_s = 36_000.0 - TERMINATE_GRACE_S
    assert waits == [child_s]
    (argv,) = argvs
    deadline = datetime.fromisoformat(argv[argv.index("--deadline") + 1])
    share = timedelta(seconds=child_s * BATCH_SHARE)
    assert before + share <= deadline <= after + share
    ctx.journal.close()
