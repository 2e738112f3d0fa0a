"""Bayesian tuning with Optuna: TPE sampling, median pruning, the study kept in shared storage.

The objective of a parameter set is its annualised out-of-sample Sharpe ratio, net of costs, over
the walk-forward test windows stitched together (the strategy fitted on each window's training
dates). Selecting the best of many trials on that figure inflates it; the deflation comes after
the search, not inside it: the best trial's fixed walk-forward is deflated with the number of
trials actually run and the variance of their Sharpe ratios (Bailey & López de Prado 2014). A
per-trial DSR as the objective would depend on the order trials finish in, which no parallel
run could reproduce; the OOS Sharpe ratio is the stated alternative.

Reproducibility: trials are asked in fixed-size batches in one process (the TPE sampler seeded,
from the seed and the trials already in a resumed study, ``constant_liar`` so a batch spreads
out), their windows run as Dask tasks with seeds from the
trial number and window index, and results are told in trial order. Each batch runs in two
stages: its "head" (the first ``prune_after`` windows of every trial), then pruning decided in
trial order, then its "tail" (the other windows of the survivors). The batches are pipelined
one deep, in this fixed order of the driver's actions for batch n = 0, 1, ...:

1. ask batch n+1 and queue its head windows (batch 0 is asked before the loop);
2. wait for batch n's head windows; report them and decide pruning in trial order, telling the
   pruned trials; queue batch n's tail windows;
3. wait for batch n's tail windows; report them and tell the survivors, in trial order; write
   batch n to the storage.

So the asks of batch n+1 see the trials of batches up to n-1 (batch n's still RUNNING, which
the constant liar accounts for), and batch n's pruning decisions compare with the complete
trials of batches up to n-1. What the driver does is fixed by the batch index and the task
results, never by which task finishes first, so the same seed and batch size give the same
study whatever the number of workers (or none). The workers meanwhile run batch n's windows
and batch n+1's head (a lower Dask priority, so batch n's tail goes first): the driver's asks,
pruning decisions and study writes overlap their work, and no stage ends with a worker idle
waiting for the other's last task.

The study lives in its storage (SQLite beside the journal by default, or any database URL), so
a run can be resumed or inspected with Optuna's own tools. The run itself works on a copy in
memory (the stored trials, then its own; not when trials are enqueued): every read of a stored
study re-fetches its RUNNING trials, two batches of them here, which made the storage a large
share of the driver's time. Each batch is written to the storage, in trial order, once it is
told (step 3); a batch that fails is written with its untold trials FAIL. The storage thus holds
finished trials only; a run killed mid-way loses its batches in flight, never leaves them
RUNNING.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sqlalchemy import event
from tqdm.auto import tqdm

from v28quant.optimization import journal_sqlite
from v28quant.optimization.distributed import Pending, TaskRunner
from v28quant.optimization.evaluation import Evaluator, WindowReturns, task_seed
from v28quant.optimization.provenance import SEARCH_KEY, SearchSpan
from v28quant.optimization.sharpe import TRADING_DAYS, sharpe_ratio
from v28quant.optimization.walkforward import (
    WalkForwardOptimizer,
    WalkForwardReport,
    evaluate_window,
)
from v28quant.optimization.windows import WindowScheme

log = logging.getLogger(__name__)

STORAGE_FILE = "v28_optuna.sqlite"


def default_storage(journal_path: str | Path) -> str:
    """URL of the study file beside the journal file: Optuna's journal in SQLite.

    See :mod:`v28quant.optimization.journal_sqlite` (its folder is created).
    """
    path = Path(journal_path).resolve().with_name(STORAGE_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"{journal_sqlite.SCHEME}{path}"


def open_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """Optuna storage for ``url``; None keeps the study in memory.

    ``journal+sqlite:///path``: Optuna's journal storage in one SQLite file (the default, see
    :func:`default_storage`). ``sqlite:///path``: Optuna's relational storage in WAL mode with
    ``synchronous=NORMAL``. Optuna writes every suggested parameter there in its own
    transaction; with SQLite's default rollback journal each costs an fsync, which made the
    driver, not the trials, the bottleneck (22 parameters x 32 trials: 50 s against 4 s in WAL
    mode, on this machine). WAL + NORMAL keeps every committed trial through a crash of the
    process; a power cut may lose the last few, which a rerun of the study adds back. Other
    URLs (PostgreSQL, MySQL) are passed to Optuna's relational storage unchanged.
    """
    if url is None:
        return None
    if url.startswith(journal_sqlite.SCHEME):
        return journal_sqlite.journal_storage(url)
    if not url.startswith("sqlite:"):
        return optuna.storages.RDBStorage(url)
    journal_sqlite.refuse_journal_file(url)
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})

    def _pragmas(conn: Any, _record: Any) -> None:
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(storage.engine, "connect", _pragmas)
    storage.engine.dispose()  # reconnect, so every pooled connection has the pragmas
    return storage


@dataclass(frozen=True, slots=True)
class TunerConfig:
    """How the tuner searches.

    Parameters
    ----------
    n_trials : int
        Trials to run in this call (added to any already in the study).
    batch_size : int
        Trials asked before their results are told; fixed so that the outcome does not depend
        on the worker count. More workers than ``batch_size`` idle.
    seed : int
        Seed of the sampler and of every trial's tasks.
    prune_after : int or None
        Windows evaluated before the pruner may stop a trial; ``None``: half the windows.
    n_startup_trials : int
        Random trials before TPE models the search space.
    storage : str or None
        Optuna storage URL; ``None`` keeps the study in memory.
    study_name : str
        The study's name in the storage; a run with an existing name continues that study.
    deadline : datetime or None
        No new batch starts at or after it (e.g. :func:`~v28quant.optimization.promote.
        off_hours_deadline`, so tuning never overlaps the trading day). Batch n+1 is asked
        while batch n runs, so it is skipped when batch n is expected to end at or after the
        deadline (expected: as long after the previous batch's end as that one was after its
        predecessor's); the batches already asked finish and are told.
    """

    n_trials: int = 40
    batch_size: int = 8
    seed: int = 0
    prune_after: int | None = None
    n_startup_trials: int = 10
    storage: str | None = None
    study_name: str = "v28-sample-strategy"
    deadline: datetime | None = None

    def __post_init__(self) -> None:
        """Check the fields."""
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {self.n_trials}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.prune_after is not None and self.prune_after < 1:
            raise ValueError(f"prune_after must be >= 1, got {self.prune_after}")


@dataclass(frozen=True, slots=True)
class TuneResult:
    """A finished tuning run: the study and the best trial's deflated walk-forward."""

    study: optuna.Study
    best_params: dict[str, float]
    best_value: float
    n_complete: int
    n_pruned: int
    walk_forward: WalkForwardReport
    started: datetime
    finished: datetime
    #: Sessions the study's trials saw, over this run and any it resumed.
    searched: SearchSpan

    @property
    def n_trials(self) -> int:
        """Trials actually run (complete and pruned) in the study."""
        return self.n_complete + self.n_pruned


def _stitched_sharpe(returns: Sequence[WindowReturns]) -> float:
    return sharpe_ratio(pd.concat([r.test for r in returns]).sort_index(), TRADING_DAYS)


_WAITING = optuna.trial.TrialState.WAITING


def _now() -> datetime:
    """Return the time the deadline is checked against (a seam for tests)."""
    return datetime.now(UTC)


def _split(flat: Sequence[WindowReturns], n_windows: int) -> list[list[WindowReturns]]:
    """Trial-major window results, one list per trial."""
    return [list(flat[i : i + n_windows]) for i in range(0, len(flat), n_windows)]


@dataclass(slots=True)
class _Batch:
    """A batch of trials in flight: asked, head windows queued, then pruned, then told."""

    index: int
    asked: int  # trials asked (in this call) before this batch
    trials: list[optuna.trial.Trial]
    head: Pending[WindowReturns]
    tail: Pending[WindowReturns] | None = None
    first: list[list[WindowReturns]] = field(default_factory=list)
    alive: list[int] = field(default_factory=list)
    told: set[int] = field(default_factory=set)  # indices of the trials told
    persisted: bool = False  # copied to the stored study


class BayesianTuner:
    """Optuna search over an evaluator's :class:`~v28quant.optimization.space.SearchSpace`.

    Parameters
    ----------
    evaluator : Evaluator
        The strategy evaluated (net of costs).
    config : TunerConfig
        Search settings.
    scheme : WindowScheme, optional
        Walk-forward windows (default as :class:`WalkForwardOptimizer`).
    runner : TaskRunner, optional
        Where trial windows run; default in-process.
    min_dsr : float
        DSR the best trial's walk-forward needs to pass.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        config: TunerConfig | None = None,
        scheme: WindowScheme | None = None,
        runner: TaskRunner | None = None,
        min_dsr: float = 0.95,
    ) -> None:
        self.evaluator = evaluator
        self.config = config or TunerConfig()
        self.runner = runner or TaskRunner(workers=0, progress=False)
        self.wf = WalkForwardOptimizer(
            evaluator, scheme, seed=self.config.seed, min_dsr=min_dsr, runner=self.runner
        )
        n = len(self.wf.windows)
        self.prune_after = min(self.config.prune_after or max(n // 2, 1), n)
        self._head, self._tail = range(self.prune_after), range(self.prune_after, n)

    def _sampler(self, resumed_after: int) -> optuna.samplers.TPESampler:
        """Return the TPE sampler of a run that continues a study of ``resumed_after`` trials.

        A new study's sampler is seeded with ``seed``; a resumed one's with a seed derived from
        ``seed`` and the trials already there: the same seed again would replay the previous
        run's random draws, and its random start-up trials would be re-run, not new ones.
        """
        c = self.config
        seed = c.seed if resumed_after == 0 else task_seed(c.seed, "resumed", resumed_after)
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            constant_liar=True,
            n_startup_trials=c.n_startup_trials,
        )

    def study(self) -> optuna.Study:
        """Create the study, or load it when it exists in the storage."""
        c = self.config
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
        study = optuna.create_study(
            study_name=c.study_name,
            storage=open_storage(c.storage),
            direction="maximize",
            sampler=self._sampler(0),
            pruner=pruner,
            load_if_exists=True,
        )
        resumed_after = len(study.get_trials(deepcopy=False))
        if resumed_after:
            study.sampler = self._sampler(resumed_after)
        return study

    def _submit_windows(
        self,
        shared: Any,
        trials: Sequence[optuna.trial.Trial],
        windows: range,
        desc: str,
        priority: int,
    ) -> Pending[WindowReturns]:
        """Queue each trial's evaluation on ``windows``: trial-major, in window order.

        One task per (trial, window), not per trial: a stage of a batch is then many small
        tasks of similar size, so the workers finish it together instead of one waiting on
        the other's last long task. Seeds depend on the trial and window only, so the split
        leaves every result unchanged.
        """
        dates = [self.wf._dates(self.wf.windows[k]) for k in windows]
        args = [
            (
                shared,
                self.evaluator.space.validate(t.params),
                *dates[j],
                task_seed(self.config.seed, "trial", t.number, "window", k),
            )
            for t in trials
            for j, k in enumerate(windows)
        ]
        return self.runner.submit(evaluate_window, args, desc=desc, priority=priority)

    def _ask_batch(
        self, study: optuna.Study, shared: Any, index: int, asked: int, ahead: timedelta
    ) -> _Batch | None:
        """Ask batch ``index`` (after ``asked`` trials) and queue its head windows.

        None when the trials are all asked, or when the batch would start at or after the
        deadline: the batch before it is expected to end ``ahead`` from now.
        """
        c = self.config
        if asked >= c.n_trials:
            return None
        if c.deadline is not None and _now() + ahead >= c.deadline:
            log.warning("tuning stopped at the deadline: no batch asked after %d trial(s)", asked)
            return None
        size = min(c.batch_size, c.n_trials - asked)
        dists = self.evaluator.space.distributions()
        trials = [study.ask(dists) for _ in range(size)]
        desc = f"trials {asked + 1}-{asked + size}"
        head = self._submit_windows(shared, trials, self._head, desc, priority=-index)
        return _Batch(index, asked, trials, head)

    def _prune(self, study: optuna.Study, shared: Any, b: _Batch) -> None:
        """Wait for ``b``'s head windows, decide pruning in trial order, queue the tail windows.

        The median pruner compares with the study's complete trials, i.e. those told so far:
        every trial of the batches before ``b``.
        """
        n_windows, head = len(self.wf.windows), self._head
        b.first = _split(b.head.result(), len(head))
        for i, trial in enumerate(b.trials):
            pruned = False
            for k in head:
                trial.report(_stitched_sharpe(b.first[i][: k + 1]), step=k)
                if k < n_windows - 1 and trial.should_prune():
                    pruned = True
                    break
            if pruned:
                trial.set_user_attr("windows_run", len(head))
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                b.told.add(i)
            else:
                b.alive.append(i)
        survivors = [b.trials[i] for i in b.alive]
        b.tail = self._submit_windows(
            shared, survivors, self._tail, "trial windows", priority=-b.index
        )

    def _complete(self, study: optuna.Study, b: _Batch) -> None:
        """Wait for ``b``'s tail windows and tell its surviving trials, in trial order."""
        assert b.tail is not None
        n_windows, tail = len(self.wf.windows), self._tail
        rest = _split(b.tail.result(), len(tail)) if tail else [[] for _ in b.alive]
        for i, more in zip(b.alive, rest, strict=True):
            trial, results = b.trials[i], b.first[i] + more
            for k in tail:
                trial.report(_stitched_sharpe(results[: k + 1]), step=k)
            oos = pd.concat([r.test for r in results]).sort_index()
            trial.set_user_attr("windows_run", n_windows)
            trial.set_user_attr("oos_sharpe_per_period", sharpe_ratio(oos, 1))
            trial.set_user_attr(
                "window_oos_sharpe", [sharpe_ratio(r.test, TRADING_DAYS) for r in results]
            )
            study.tell(trial, _stitched_sharpe(results))
            b.told.add(i)

    def _working_copy(self, stored: optuna.Study) -> optuna.Study:
        """Return the study the run works on: in memory, with ``stored``'s trials and sampler.

        ``stored`` itself when it is in memory (no storage URL) or holds enqueued (WAITING)
        trials. Asks, reports, pruning and
        tells then cost no database round trips (each read of a stored study re-fetches every
        RUNNING trial, and two batches run at once); :meth:`_persist` writes each finished
        batch to ``stored``.
        """
        trials = stored.get_trials(deepcopy=False)
        if self.config.storage is None or any(t.state == _WAITING for t in trials):
            return stored  # an enqueued trial is claimed in the storage (Optuna's own ask)
        work = optuna.create_study(
            study_name=stored.study_name,
            direction="maximize",
            sampler=stored.sampler,
            pruner=stored.pruner,
        )
        work.add_trials(trials)
        return work

    @staticmethod
    def _persist(stored: optuna.Study, work: optuna.Study, b: _Batch) -> None:
        """Copy ``b``'s finished trials from the working study to the stored one, in order.

        Trial numbers then match in both, which is checked: a study written by another process
        meanwhile would not continue this run's trials.
        """
        if stored is work or b.persisted or not b.trials:
            return
        b.persisted = True
        lo, hi = b.trials[0].number, b.trials[-1].number + 1
        stored.add_trials(work.get_trials(deepcopy=False)[lo:hi])
        if len(stored.get_trials(deepcopy=False)) != hi:
            raise RuntimeError(
                f"study {stored.study_name}: written by another process during the run "
                f"(trial {hi - 1} of this run is not trial {hi - 1} in the storage)"
            )

    def _abandon(self, study: optuna.Study, b: _Batch) -> None:
        """After an error: cancel ``b``'s queued windows and fail its trials not yet told."""
        for pending in (b.head, b.tail):
            if pending is not None:
                pending.cancel()
        for i, trial in enumerate(b.trials):
            if i in b.told:
                continue
            try:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            except Exception:  # the storage itself may be what failed
                log.exception("trial %d left RUNNING", trial.number)

    def _record_span(self, stored: optuna.Study) -> SearchSpan:
        """Widen the study's recorded span by this run's windows, before any trial runs.

        Recorded first, so that a run stopped half-way still names the sessions its trials saw.
        """
        span = SearchSpan.of_windows(stored.study_name, self.wf.windows)
        if SEARCH_KEY in stored.user_attrs:
            earlier = SearchSpan.from_dict(
                stored.user_attrs[SEARCH_KEY], f"study {stored.study_name}"
            )
            span = span.union(earlier)
        stored.set_user_attr(SEARCH_KEY, span.to_dict())
        return span

    def optimize(self) -> TuneResult:
        """Run ``config.n_trials`` trials, then the best trial's deflated walk-forward.

        Batch n+1 is asked, and its head windows queued, before batch n's results are read, so
        the driver's asks, pruning decisions and study writes overlap the workers' windows.
        """
        started = datetime.now(UTC)
        stored = self.study()
        searched = self._record_span(stored)
        study = self._working_copy(stored)
        shared = self.runner.share(self.evaluator)
        bar = tqdm(total=self.config.n_trials, desc="trials", disable=not self.runner.progress)
        cur: _Batch | None = None
        nxt: _Batch | None = None
        period = timedelta(0)  # between the last two batches' ends: when the next one will end
        try:
            cur = self._ask_batch(study, shared, 0, 0, timedelta(0))
            mark = _now()
            while cur is not None:
                asked = cur.asked + len(cur.trials)
                nxt = self._ask_batch(study, shared, cur.index + 1, asked, period)
                self._prune(study, shared, cur)
                self._complete(study, cur)
                self._persist(stored, study, cur)
                ended = _now()
                period, mark = ended - mark, ended
                bar.update(len(cur.trials))
                if self.runner.progress and cur.alive:
                    pruned = len(cur.trials) - len(cur.alive)
                    bar.set_postfix(best=f"{study.best_value:.3f}", pruned=pruned)
                cur, nxt = nxt, None
        except BaseException:
            for b in (cur, nxt):
                if b is not None:
                    self._abandon(study, b)
                    try:
                        self._persist(stored, study, b)
                    except Exception:  # the storage itself may be what failed
                        log.exception("failed trials of batch %d not stored", b.index)
            raise
        finally:
            bar.close()
        return self._finish(stored, started, searched)

    def _finish(self, study: optuna.Study, started: datetime, searched: SearchSpan) -> TuneResult:
        states = optuna.trial.TrialState
        complete = study.get_trials(deepcopy=False, states=(states.COMPLETE,))
        pruned = study.get_trials(deepcopy=False, states=(states.PRUNED,))
        if not complete:
            raise RuntimeError(f"study {study.study_name}: no trial completed (all pruned)")
        best = study.best_trial
        srs = [
            float(t.user_attrs["oos_sharpe_per_period"])
            for t in complete
            if "oos_sharpe_per_period" in t.user_attrs
        ]
        params = self.evaluator.space.validate(best.params)
        report = self.wf.run_fixed(
            params, n_trials=len(complete) + len(pruned), trial_sharpes=srs, search=searched
        )
        log.info(
            "tuned %s: %d complete, %d pruned, best OOS Sharpe %.3f; %s",
            study.study_name,
            len(complete),
            len(pruned),
            best.value,
            report.verdict,
        )
        return TuneResult(
            study=study,
            best_params=params,
            best_value=float(best.value if best.value is not None else np.nan),
            n_complete=len(complete),
            n_pruned=len(pruned),
            walk_forward=report,
            started=started,
            finished=datetime.now(UTC),
            searched=searched,
        )
