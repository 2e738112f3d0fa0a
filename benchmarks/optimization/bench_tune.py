"""Trials per minute of the tuner on 1 and 2 Dask workers, and the default walk-forward's time.

Runs the built-in strategy on the bundled history (the CLI's defaults: 4 anchored windows,
504 training sessions, study in SQLite). Cluster start-up and the workers' first imports are
timed apart from the trials (one warm-up evaluation per worker). Checks first that 1 and 2
workers produced the same study, then prints the ratio. Usage::

    PYTHONPATH=python python benchmarks/optimization/bench_tune.py [--trials 16]
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
from v28quant.optimization.tuner import BayesianTuner, TunerConfig
from v28quant.optimization.walkforward import WalkForwardOptimizer, evaluate_window


def _tune(
    ev: SampleStrategy, workers: int, trials: int, folder: Path
) -> tuple[float, list[object]]:
    with TaskRunner(workers=workers, progress=False) as runner:
        shared = runner.share(ev)
        d = ev.dates()
        warm = [(shared, ev.space.defaults(), d[:504], d[514:520], i) for i in range(workers)]
        runner.map(evaluate_window, warm)
        cfg = TunerConfig(
            n_trials=trials, seed=0, storage=f"sqlite:///{folder / f'w{workers}.sqlite'}"
        )
        tuner = BayesianTuner(ev, cfg, runner=runner)
        t0 = time.perf_counter()
        res = tuner.optimize()
        elapsed = time.perf_counter() - t0
    return elapsed, [(t.state.name, t.value, t.params) for t in res.study.trials]


def main() -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--order", default="1,2", help="worker counts in the order they run")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ev = SampleStrategy()
    print(f"load average before: {os.getloadavg()}")
    runs: dict[int, tuple[float, list[object]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w in (int(x) for x in args.order.split(",")):
            runs[w] = _tune(ev, w, args.trials, Path(tmp))
            print(f"{w} worker(s) done; load average {os.getloadavg()}", flush=True)
    (t1, s1), (t2, s2) = runs[1], runs[2]
    print(f"same study on 1 and 2 workers: {s1 == s2}")
    print("| workers | trials | seconds | trials/min |\n|---|---|---|---|")
    for w, t in ((1, t1), (2, t2)):
        print(f"| {w} | {args.trials} | {t:.1f} | {60 * args.trials / t:.1f} |")
    print(f"speed-up 1 -> 2 workers: {t1 / t2:.2f}x")
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
