"""Trials per minute of the tuner on 1 and 2 Dask workers, and the default walk-forward's time.

Runs the built-in strategy on the bundled history (the CLI's defaults: 4 anchored windows,
504 training sessions, the study in Optuna's journal in SQLite as ``v28quant tune`` keeps it,
or with ``--storage sqlite`` in Optuna's relational storage on SQLite). Cluster start-up and
the workers' first imports are timed apart from the trials (one warm-up evaluation per
worker). Checks first that 1 and 2 workers produced the same study, then prints the ratio.
Usage::

    PYTHONPATH=python python benchmarks/optimization/bench_tune.py [--trials 16] [--rounds 1] \
        [--storage journal|sqlite]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import optuna
from v28quant.optimization.distributed import TaskRunner
from v28quant.optimization.strategy import SampleStrategy
from v28quant.optimization.tuner import BayesianTuner, TunerConfig, default_storage
from v28quant.optimization.walkforward import WalkForwardOptimizer, evaluate_window


def _tune(
    ev: SampleStrategy, workers: int, trials: int, folder: Path, seed: int, storage_kind: str
) -> tuple[float, list[object]]:
    with TaskRunner(workers=workers, progress=False) as runner:
        shared = runner.share(ev)
        d = ev.dates()
        warm = [(shared, ev.space.defaults(), d[:504], d[514:520], i) for i in range(workers)]
        runner.map(evaluate_window, warm)
        run = folder / f"w{workers}-s{seed}-{storage_kind}"  # a study file of its own
        if storage_kind == "journal":
            storage = default_storage(run / "journal.sqlite")  # the tuner's default, beside it
        else:
            storage = f"sqlite:///{run / 'study.sqlite'}"
            run.mkdir(parents=True)
        cfg = TunerConfig(n_trials=trials, seed=seed, storage=storage)
        tuner = BayesianTuner(ev, cfg, runner=runner)
        t0 = time.perf_counter()
        res = tuner.optimize()
        elapsed = time.perf_counter() - t0
    return elapsed, [(t.state.name, t.value, t.params) for t in res.study.trials]


def main() -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds of (1 worker, 2 workers), alternating which goes first, so that both see "
        "the same drift of a shared machine's load",
    )
    ap.add_argument(
        "--storage",
        choices=("journal", "sqlite"),
        default="journal",
        help="the study in Optuna's journal in SQLite (the tuner's default) or in Optuna's "
        "relational storage on SQLite",
    )
    ap.add_argument("--skip-walk-forward", action="store_true", help="time the tuner only")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ev = SampleStrategy()
    print(f"load average before: {os.getloadavg()}; study storage: {args.storage}")
    total = {1: 0.0, 2: 0.0}
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            runs = {}
            for w in (1, 2) if r % 2 == 0 else (2, 1):
                runs[w] = _tune(ev, w, args.trials, Path(tmp), seed=r, storage_kind=args.storage)
                total[w] += runs[w][0]
                print(f"round {r}: {w} worker(s) {runs[w][0]:.1f} s; load {os.getloadavg()}")
            same = same and runs[1][1] == runs[2][1]
    t1, t2 = total[1], total[2]
    n = args.trials * args.rounds
    print(f"same study on 1 and 2 workers in every round: {same}")
    print("| workers | trials | seconds | trials/min |\n|---|---|---|---|")
    for w, t in ((1, t1), (2, t2)):
        print(f"| {w} | {n} | {t:.1f} | {60 * n / t:.1f} |")
    print(f"speed-up 1 -> 2 workers: {t1 / t2:.2f}x")
    if args.skip_walk_forward:
        return
    t0 = time.perf_counter()
    with TaskRunner(workers=2, progress=False) as runner:
        t_ready = time.perf_counter()
        report = WalkForwardOptimizer(ev, trials_per_window=16, runner=runner).run_reoptimising()
        t_done = time.perf_counter()
    print(
        f"default walk-forward (re-optimising, 4 windows x 16 trials, 2 workers): "
        f"{t_done - t_ready:.1f} s of work, {time.perf_counter() - t0:.1f} s with cluster "
        f"start and stop; {report.verdict}"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
