"""Off-hours jobs: after the close and before the next pre-market, never while trading.

Each night the runner waits for the session's after-close time (16:30 ET on a full day) and
runs, until ``[offhours] stop_before_premarket_minutes`` before the next 09:00 ET pre-market job:

1. **Drift checks**: every engine with ``async drift_check(ctx) -> DriftReport | None`` runs it
   (its continuous learner's two-sample KS test of the recent closed trades, which may start a
   retrain: :meth:`v28quant.ml.continuous_learner.ContinuousLearner.check_drift`). The report is
   journaled as the model run ``<engine>.drift_check`` with every raw and adjusted p-value.
2. Each engine's own ``off_hours(ctx, until)`` job, if it has one.
3. **Bayesian tuning**: ``python -m v28quant.optimization tune --objective backtest`` in a
   child process of its own (the runner's engines through ``run_backtest``; the Optuna study
   beside the journal, continued night after night). It starts no batch of trials in the last
   quarter of its time, which its closing walk-forward uses; ``TERMINATE_GRACE_S`` before the
   budget's end or on a stop signal its process group is terminated, so that the grace it has
   to exit ends with the budget (killed at once on a second signal, or when the runner's task
   is cancelled). The child journals its study and walk-forward; the
   runner journals the night's outcome. A tuning cut before it ends is a notice (not an
   error) saying how many trials the night completed, which stay in the study
   ``TUNE_STUDY`` that the next night continues. Nothing it finds trades before ``v28quant promote``
   and a restart of the runner; ``promote`` needs a passing walk-forward of the tuned
   ``params.json`` on sessions after those the trials saw, the step a passing night names.

The night's summary is one ``offhours`` decision of the ``runner`` engine.

Which nights run what (keyless runs are meant to be short; a tuning trial is a backtest of
minutes):

* live, and paper with Alpaca keys: drift checks and tuning (``drift_checks``, ``tune``);
* keyless paper: drift checks; tuning only with ``tune_in_simulation`` or ``--tune-off-hours``,
  its budget then in wall-clock time: ``tune_max_minutes`` if set, else the night's length,
  and its trials see the replayed history up to that night only (``--end``);
* backtest: drift checks only (the tuner runs backtests; one inside a backtest would nest them);
* ``--once``: none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from v28quant.calendar import ET, ExchangeCalendar
from v28quant.config import OffHoursConfig
from v28quant.engines import Engine, EngineContext
from v28quant.ml.continuous_learner import DriftReport

log = logging.getLogger("v28quant.runner")

#: Seconds a terminated tuning process gets to exit before it is killed.
TERMINATE_GRACE_S = 20.0
#: Share of the tuning budget in which new batches of trials may start.
BATCH_SHARE = 0.75
#: A tuning budget shorter than this is not started.
MIN_TUNE_S = 60.0
#: Options of the tuning command that its walk-forward must repeat for the same scope.
SCOPE_FLAGS = ("--universe", "--config")
#: The Optuna study the nights continue, in the tuner's default storage beside the journal
#: (the tune command's own default name for the backtest objective).
TUNE_STUDY = "v28-backtest"


@dataclass(frozen=True, slots=True)
class OffHoursPlan:
    """What the nights of one run do (see the module docstring)."""

    drift: bool
    tune: bool
    why_no_tune: str = ""


def plan_for(cfg: OffHoursConfig, mode: str, keyless: bool, tune_flag: bool) -> OffHoursPlan:
    """Decide the jobs of a run from its mode, keys and settings."""
    if mode == "backtest":
        return OffHoursPlan(cfg.drift_checks, False, "never in backtests")
    if keyless and not (cfg.tune_in_simulation or tune_flag):
        why = "keyless paper (set [offhours] tune_in_simulation or pass --tune-off-hours)"
        return OffHoursPlan(cfg.drift_checks, False, why)
    if not cfg.tune:
        return OffHoursPlan(cfg.drift_checks, False, "[offhours] tune = false")
    return OffHoursPlan(cfg.drift_checks, True)


def off_hours_window(
    cal: ExchangeCalendar, now: datetime, margin: timedelta
) -> tuple[datetime, datetime] | None:
    """Return ``(start, until)`` of the off-hours span at or after ``now``; None if none is left.

    ``start`` is ``now``, or the after-close time of a session day not yet past it; ``until`` is
    ``margin`` before the next pre-market job.
    """
    today = now.astimezone(ET).date()
    if cal.is_session(today):
        w = cal.windows(today)
        if now < w.premarket - margin:
            return now, w.premarket - margin
        start = max(now, w.after_close)
    else:
        start = now
    until = cal.windows(cal.next_session(today)).premarket - margin
    return (start, until) if start < until else None


def drift_metrics(report: DriftReport) -> dict[str, Any]:
    """Return the JSON-ready content of a drift report, as journaled."""
    return {
        "drift": report.drift,
        "drifted": list(report.drifted),
        "p_values": dict(zip(report.names, map(float, report.p_values), strict=True)),
        "adjusted": dict(zip(report.names, map(float, report.adjusted), strict=True)),
    }


def tune_argv(
    cfg: OffHoursConfig,
    journal: Path,
    out: Path,
    deadline: datetime,
    universe: Sequence[str] | None,
    config: Path | None,
    end: date | None = None,
) -> list[str]:
    """Return the command line of one night's tuning run.

    ``end`` caps the history the trials see: a simulated night replays the bundled history,
    whose later sessions are still to be traded and must not choose the parameters.
    """
    argv = [
        sys.executable,
        "-m",
        "v28quant.optimization",
        "--log-level",
        "WARNING",
        "tune",
        "--objective",
        "backtest",
        "--journal",
        str(journal),
        "--out",
        str(out),
        "--trials",
        str(cfg.tune_trials),
        "--batch",
        str(cfg.tune_batch),
        "--workers",
        str(cfg.tune_workers),
        "--windows",
        str(cfg.tune_windows),
        "--train-days",
        str(cfg.tune_train_days),
        "--deadline",
        deadline.isoformat(),
        "--study",
        TUNE_STUDY,
        "--no-progress",
    ]
    if universe:
        argv += ["--universe", ",".join(universe)]
    if config is not None:
        argv += ["--config", str(config)]
    if end is not None:
        argv += ["--end", end.isoformat()]
    return argv


def trials_completed_since(journal: Path, since: datetime) -> int | None:
    """Return how many trials of ``TUNE_STUDY`` beside ``journal`` completed at ``since`` or later.

    Pruned and failed trials are not counted. None when the study cannot be read (logged).
    """
    from v28quant.optimization.tuner import STORAGE_FILE, default_storage, open_storage

    if not journal.with_name(STORAGE_FILE).is_file():
        return 0  # no night has stored a trial yet
    import optuna

    try:
        url = default_storage(journal)
        study = optuna.load_study(study_name=TUNE_STUDY, storage=open_storage(url) or url)
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    except KeyError:  # Optuna's answer for a study not in the storage
        return 0
    except Exception as exc:
        log.warning("off-hours tuning: study %s not read: %s", TUNE_STUDY, exc)
        return None
    # Optuna gives completion times as naive local times
    local = since.astimezone().replace(tzinfo=None)
    return sum(1 for t in done if t.datetime_complete is not None and t.datetime_complete >= local)


def cut_notice(reason: str, completed: int | None) -> str:
    """Return the notice of a night's tuning stopped for ``reason`` before it ended."""
    count = (
        "the trials it completed could not be counted"
        if completed is None
        else f"{completed} trial(s) completed tonight"
    )
    return (
        f"v28 off-hours tuning cut ({reason}): {count}; completed trials stay in the study "
        f"{TUNE_STUDY} beside the journal, which the next night continues"
    )


def _child_env() -> dict[str, str]:
    """Return the tuning child's environment: no broker or webhook secrets, this v28quant.

    The tuner runs keyless backtests; it has no use for the Alpaca keys or the Discord
    webhook, so they do not travel.
    """
    import v28quant

    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "DISCORD_"))}
    here = str(Path(v28quant.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the child's process group (Dask workers included), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, TERMINATE_GRACE_S), (signal.SIGKILL, None)):
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), wait)
            return
        except TimeoutError:
            continue


def _held_out_step(out: Path, journal: Path, argv: Sequence[str]) -> str:
    """Return the command that can take a passing night's set towards ``promote``.

    The night's own walk-forward tests the set on the sessions its trials were scored on, so
    ``promote`` refuses it; a walk-forward of its ``params.json`` on later sessions, with the
    tuning's universe and settings, is what it accepts.
    """
    from v28quant.optimization.provenance import TUNED_PARAMS_FILE

    scope = [f"{flag} {argv[i + 1]}" for i, flag in enumerate(argv[:-1]) if flag in SCOPE_FLAGS]
    return " ".join(
        [
            "v28quant walk-forward --objective backtest",
            f"--params {out / TUNED_PARAMS_FILE}",
            *scope,
            f"--journal {journal}",
            "on sessions after the search's (a later --end or more --train-days), then promote",
        ]
    )


class OffHoursJobs:
    """The nightly jobs of one run (see the module docstring).

    Parameters
    ----------
    config : OffHoursConfig
        The ``[offhours]`` settings.
    plan : OffHoursPlan
        Which jobs run (:func:`plan_for`).
    simulated : bool
        The clock is simulated (keyless paper, backtest): the tuning budget is wall-clock time.
    """

    def __init__(self, config: OffHoursConfig, plan: OffHoursPlan, simulated: bool) -> None:
        self.config = config
        self.plan = plan
        self.simulated = simulated
        self.margin = timedelta(minutes=config.stop_before_premarket_minutes)
        self._child: asyncio.subprocess.Process | None = None

    def kill_child(self) -> None:
        """SIGKILL the running tuning child's process group (Dask workers included), if any.

        For a runner about to exit at once (a second stop signal): the child runs in a session
        of its own, so nothing else would stop it before it ran into the next trading day.
        """
        proc = self._child
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def run(
        self,
        ctx: EngineContext,
        engines: Sequence[Engine],
        until: datetime,
        stop: asyncio.Event,
    ) -> dict[str, Any]:
        """Run the night's jobs until ``until`` (venue time) or a stop; journal and return them."""
        night = ctx.now.astimezone(ET).date()
        log.info("off-hours jobs for the night of %s, until %s", night, until.astimezone(ET))
        summary: dict[str, Any] = {"until": until.isoformat(), "drift": {}, "engine_jobs": {}}
        for engine in engines:
            if self.plan.drift and not stop.is_set():
                summary["drift"][engine.name] = await self._drift(ctx, engine, until, night)
            job = getattr(engine, "off_hours", None)
            if job is not None and not stop.is_set():
                summary["engine_jobs"][engine.name] = await self._engine_job(
                    ctx, engine.name, job, until
                )
        if not self.plan.tune:
            summary["tuning"] = {"status": "skipped", "reason": self.plan.why_no_tune}
        elif stop.is_set():
            summary["tuning"] = {"status": "skipped", "reason": "stop requested"}
        else:
            summary["tuning"] = await self._tune(ctx, until, stop, night)
        ctx.journal.record_decision(
            f"runner-offhours-{night}-{os.getpid()}-{ctx.now.isoformat()}",
            "runner",
            "runner",
            "*",
            "offhours",
            summary,
            ctx.now,
        )
        log.info(
            "off-hours done: drift %s; tuning %s",
            summary["drift"] or "(not run)",
            summary["tuning"]["status"],
        )
        return summary

    @staticmethod
    def _left(ctx: EngineContext, until: datetime) -> float:
        return (until - ctx.now).total_seconds()

    async def _drift(self, ctx: EngineContext, engine: Engine, until: datetime, night: date) -> str:
        check = getattr(engine, "drift_check", None)
        if check is None:
            return "no drift check (the engine offers no drift_check)"
        budget = self._left(ctx, until)
        if budget <= 0:
            return "not run: the pre-market is near"
        started = ctx.now
        try:
            async with asyncio.timeout(budget):
                report = await check(ctx)
        except TimeoutError:
            log.warning("%s drift check cut at %s (pre-market next)", engine.name, until)
            return "cut before the pre-market"
        except Exception as exc:
            log.exception("%s drift check failed: %s", engine.name, exc)
            ctx.notifier.error(f"{engine.name} drift check", f"{type(exc).__name__}: {exc}")
            return f"failed: {type(exc).__name__}: {exc}"
        if report is None:
            return "not enough closed trades for a test"
        metrics = drift_metrics(report)
        ctx.journal.record_model_run(
            f"{engine.name}.drift_check",
            night.isoformat(),
            started,
            ctx.now,
            {"alpha": report.alpha, "correction": report.correction},
            metrics,
        )
        if report.drift:
            log.warning("%s: drift in %s", engine.name, ", ".join(report.drifted))
            ctx.notifier.notify(f"v28 {engine.name}: drift in {', '.join(report.drifted)}")
            return f"drift in {', '.join(report.drifted)}"
        return f"no drift (smallest adjusted p {min(metrics['adjusted'].values()):.3f})"

    async def _engine_job(self, ctx: EngineContext, name: str, job: Any, until: datetime) -> str:
        budget = self._left(ctx, until)
        if budget <= 0:
            return "not run: the pre-market is near"
        try:
            async with asyncio.timeout(budget):
                await job(ctx, until)
        except TimeoutError:
            log.warning("%s off-hours job cut at %s (pre-market next)", name, until)
            return "cut before the pre-market"
        except Exception as exc:
            log.exception("%s off-hours job failed: %s", name, exc)
            ctx.notifier.error(f"{name} off-hours job", f"{type(exc).__name__}: {exc}")
            return f"failed: {type(exc).__name__}: {exc}"
        return "done"

    def _budget_s(self, ctx: EngineContext, until: datetime) -> float:
        budget = self._left(ctx, until)
        if self.config.tune_max_minutes > 0:
            budget = min(budget, self.config.tune_max_minutes * 60.0)
        return budget

    async def _tune(
        self, ctx: EngineContext, until: datetime, stop: asyncio.Event, night: date
    ) -> dict[str, Any]:
        budget = self._budget_s(ctx, until)
        if budget < MIN_TUNE_S:
            return {"status": "skipped", "reason": f"{budget:.0f} s left before the pre-market"}
        # a child terminated at the end of its time may take the grace to exit: inside the budget
        child_s = max(0.0, budget - TERMINATE_GRACE_S)
        start = datetime.now(UTC)
        deadline = start + timedelta(seconds=child_s * BATCH_SHARE)
        journal = ctx.journal.path.resolve()
        out = journal.parent / "research" / f"offhours-tune-{night}-{start:%Y%m%dT%H%M%SZ}"
        out.mkdir(parents=True, exist_ok=True)
        universe, end = (ctx.universe, night) if self.simulated else (None, None)
        argv = tune_argv(self.config, journal, out, deadline, universe, ctx.config.source, end)
        log.info("off-hours tuning: %.0f s budget, report %s", budget, out)
        with (out / "tune.log").open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
                env=_child_env(),
                start_new_session=True,
            )
            self._child = proc
            try:
                ended = await self._wait(proc, child_s, stop)
            finally:
                self.kill_child()  # cancelled or failed while waiting: leave no orphan
                self._child = None
        result: dict[str, Any] = {"report": str(out), "budget_s": round(budget, 1)}
        if ended != "exited":
            completed = await asyncio.to_thread(trials_completed_since, journal, start)
            log.warning(
                "off-hours tuning stopped (%s) after %s trial(s) completed; completed trials "
                "stay in the study",
                ended,
                "an unknown number of" if completed is None else completed,
            )
            ctx.notifier.notify(cut_notice(ended, completed))
            return {**result, "status": "cut", "reason": ended, "trials_completed": completed}
        if proc.returncode != 0:
            tail = (out / "tune.log").read_text(errors="replace").strip().splitlines()[-3:]
            log.error("off-hours tuning failed (exit %s): %s", proc.returncode, " | ".join(tail))
            ctx.notifier.error("off-hours tuning", f"exit {proc.returncode}: {' | '.join(tail)}")
            return {**result, "status": "failed", "exit": proc.returncode, "log_tail": tail}
        try:
            return {**result, **self._read_report(out, journal, argv)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # exited 0 without a readable report (disk full, killed mid-write): a failed night
            reason = f"no readable report: {type(exc).__name__}: {exc}"
            log.error("off-hours tuning failed: %s", reason)
            ctx.notifier.error("off-hours tuning", reason)
            return {**result, "status": "failed", "reason": reason}

    @staticmethod
    async def _wait(proc: asyncio.subprocess.Process, budget: float, stop: asyncio.Event) -> str:
        """Wait for the child; terminate it after ``budget`` s or on a stop. Returns how it ended.

        ``budget`` leaves out ``TERMINATE_GRACE_S``: the child's time, not the night's.
        """
        waiter = asyncio.ensure_future(proc.wait())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, stopper}, timeout=budget, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopper.cancel()
        if waiter in done:
            return "exited"
        await _terminate(proc)
        return "stop requested" if stop.is_set() else "deadline before the pre-market"

    @staticmethod
    def _read_report(out: Path, journal: Path, argv: Sequence[str]) -> Mapping[str, Any]:
        from v28quant.optimization.promote import REPORT_FILE

        report = json.loads((out / REPORT_FILE).read_text())
        passed = bool(report.get("passed"))
        line = f"off-hours tuning: {report.get('verdict')}"
        if passed:
            line += f"; next: {_held_out_step(out, journal, argv)}"
        log.info(line)
        return {
            "status": "done",
            "verdict": report.get("verdict"),
            "passed": passed,
            "dsr": report["dsr"]["dsr"],
            "n_trials": report.get("n_trials"),
            "oos_sharpe": report.get("oos_sharpe"),
        }
