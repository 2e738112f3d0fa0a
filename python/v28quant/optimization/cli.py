"""Command line: ``tune``, ``walk-forward`` and ``promote``.

Mounted by the operator CLI (``v28quant tune ...``) through :func:`add_subparsers`, and runnable
alone as ``python -m v28quant.optimization tune ...``. Each parser stores its handler as
``handler``; a handler takes the parsed namespace and returns the exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from v28quant.optimization.provenance import SearchSpan

log = logging.getLogger(__name__)


def _journal(args: argparse.Namespace) -> Path:
    """Return the journal given after the command, else before it (a parent CLI), else default."""
    given = getattr(args, "journal", None)
    return Path(given or os.environ.get("V28_JOURNAL", "v28_journal.sqlite"))


def _common(p: argparse.ArgumentParser, workers: bool = True) -> None:
    p.add_argument(
        "--journal",
        default=argparse.SUPPRESS,
        help="journal file (default: $V28_JOURNAL or v28_journal.sqlite)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="report folder (default: research/<command>-<time> beside the journal)",
    )
    p.add_argument("--seed", type=int, default=0, help="base seed of every trial and window")
    if not workers:
        return
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="Dask LocalCluster worker processes; 0 runs in-process (default 2)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        help="address of a running Dask scheduler, tcp://host:port (overrides --workers)",
    )
    p.add_argument("--windows", type=int, default=4, help="walk-forward test windows (default 4)")
    p.add_argument(
        "--kind",
        choices=("anchored", "rolling"),
        default="anchored",
        help="anchored (expanding) or rolling training windows (default anchored)",
    )
    p.add_argument(
        "--train-days",
        type=int,
        default=504,
        help="sessions of training before the first test window (default 504)",
    )
    p.add_argument(
        "--min-dsr",
        type=float,
        default=0.95,
        help="deflated Sharpe ratio a walk-forward needs to pass (default 0.95; promote "
        "needs 0.95 whatever this says)",
    )
    p.add_argument(
        "--universe",
        default=None,
        help="comma-separated stocks of the bundled sample history (default 8 large caps)",
    )
    p.add_argument(
        "--objective",
        choices=("sample", "backtest"),
        default="sample",
        help="sample: the built-in vectorised strategy on the bundled history (seconds a trial); "
        "backtest: the runner's engines through v28quant.backtest.run_backtest (minutes a "
        "trial; pair with --train-days 250 --windows 2 and few trials)",
    )
    p.add_argument(
        "--config",
        default=None,
        help="backtest objective: the runner's TOML file the parameters apply over",
    )
    p.add_argument(
        "--start",
        type=date.fromisoformat,
        default=None,
        help="backtest objective: first session the windows may use, YYYY-MM-DD (default: "
        "2019-01-02); every window backtests from its first training session",
    )
    p.add_argument(
        "--end",
        type=date.fromisoformat,
        default=None,
        help="backtest objective: last session the windows may use, YYYY-MM-DD (default: the "
        "bundled history's last; a simulated night passes its own date)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_subparsers(subparsers: Any) -> None:
    """Add ``tune``, ``walk-forward`` and ``promote`` to an ``add_subparsers()`` object."""
    t = subparsers.add_parser(
        "tune",
        help="Bayesian tuning (Optuna TPE) of the strategy on walk-forward windows",
        description="Optuna TPE search with median pruning over the declared search space; "
        "objective: out-of-sample Sharpe ratio net of costs over the walk-forward test windows. "
        "Ends with the best trial's walk-forward, deflated for every trial run, and a report.",
    )
    _common(t)
    t.add_argument("--trials", type=int, default=40, help="trials to run (default 40)")
    t.add_argument(
        "--batch",
        type=int,
        default=8,
        help="trials asked per batch; fixed so results do not depend on --workers",
    )
    t.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL: sqlite:///FILE, postgresql://... (Optuna's relational "
        "storage) or journal+sqlite:///FILE (Optuna's journal in SQLite; default: "
        "v28_optuna.sqlite beside the journal)",
    )
    t.add_argument(
        "--study",
        default=None,
        help="study name in the storage (default: v28-sample-strategy, or v28-backtest with "
        "--objective backtest)",
    )
    t.add_argument(
        "--off-hours-only",
        action="store_true",
        help="refuse during the trading day and stop before the next pre-market",
    )
    t.add_argument(
        "--deadline",
        type=_aware_time,
        default=None,
        help="ISO time with offset after which no new batch of trials starts",
    )
    t.set_defaults(handler=run_tune)

    w = subparsers.add_parser(
        "walk-forward",
        help="purged walk-forward with a deflated Sharpe verdict",
        description="Without --params/--study: re-optimise in-sample in every window (TPE, "
        "--trials-per-window), trade the choice out-of-sample. With --params FILE (JSON) or "
        "--study NAME (its best trial): evaluate that fixed set. Writes walkforward.json and "
        "report.html and journals the run; `promote` needs a passing one.",
    )
    _common(w)
    src = w.add_mutually_exclusive_group()
    src.add_argument("--params", default=None, help="JSON file of a parameter set to validate")
    src.add_argument("--study", default=None, help="validate the best trial of this study")
    w.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL of --study, as for `tune` (default: Optuna's journal in "
        "v28_optuna.sqlite beside the journal)",
    )
    w.add_argument(
        "--trials-per-window",
        type=int,
        default=16,
        help="in-sample trials per window when re-optimising (default 16)",
    )
    w.set_defaults(handler=run_walk_forward)

    p = subparsers.add_parser(
        "promote",
        help="promote a passing walk-forward's parameters to live trading",
        description="Refuses unless the report is intact, journaled and passed, and its "
        "parameters are ones the runner trades (--objective backtest); then writes "
        "v28_promoted_params.json beside the journal and journals the promotion.",
    )
    p.add_argument("--report", required=True, help="walkforward.json or the folder holding it")
    p.add_argument(
        "--journal",
        default=argparse.SUPPRESS,
        help="the journal that recorded the walk-forward; must exist (default: $V28_JOURNAL "
        "or v28_journal.sqlite)",
    )
    p.add_argument("--out", default=None, help="promoted-parameters file (default beside journal)")
    p.set_defaults(handler=run_promote)


def _aware_time(text: str) -> datetime:
    """Parse an ISO time that carries its UTC offset (argparse type of ``--deadline``)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset: {text!r}")
    return when


def _out_dir(args: argparse.Namespace, command: str) -> Path:
    if args.out:
        return Path(args.out)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return _journal(args).resolve().parent / "research" / f"{command}-{stamp}"


def _evaluator(args: argparse.Namespace) -> Any:
    from v28quant.optimization.strategy import DEFAULT_UNIVERSE, SampleStrategy

    universe = (
        tuple(s.strip().upper() for s in args.universe.split(",") if s.strip())
        if args.universe
        else None
    )
    if args.objective == "backtest":
        from v28quant.optimization.backtest_objective import BacktestEvaluator

        span = {k: v.isoformat() for k in ("start", "end") if (v := getattr(args, k)) is not None}
        return BacktestEvaluator(universe=universe, config=args.config, **span)
    return SampleStrategy(universe=universe or DEFAULT_UNIVERSE)


def _scheme(args: argparse.Namespace, label_horizon: int) -> Any:
    from v28quant.optimization.windows import WindowScheme

    return WindowScheme(
        kind=args.kind,
        n_windows=args.windows,
        train_dates=args.train_days,
        label_horizon=label_horizon,
    )


def _runner(args: argparse.Namespace) -> Any:
    from v28quant.optimization.distributed import TaskRunner

    return TaskRunner(args.workers, args.scheduler, progress=not args.no_progress)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _print_report(report: Any, html: Path, json_path: Path) -> None:
    print(report.verdict)
    for w in report.windows:
        print(
            f"  window {w.index}: train {w.train_start:%Y-%m-%d}..{w.train_end:%Y-%m-%d}  "
            f"test {w.test_start:%Y-%m-%d}..{w.test_end:%Y-%m-%d}  "
            f"IS SR {w.is_sharpe:6.2f}  OOS SR {w.oos_sharpe:6.2f}  costs {w.test_costs:.4f}"
        )
    decay = "n/a" if report.decay != report.decay else f"{report.decay:.0%}"
    print(f"  IS->OOS decay {decay}; report {html}; verdict file {json_path}")
    if report.search is not None:
        s = report.search
        held = "yes" if report.held_out else "no, promote refuses it"
        print(
            f"  tuned on {s.first_session}..{s.last_session} (study {s.study}); "
            f"every test window after that: {held}"
        )


def run_tune(args: argparse.Namespace) -> int:
    """Run ``tune``; returns the exit status."""
    from v28quant.journal import Journal
    from v28quant.optimization.promote import (
        off_hours_deadline,
        record_tune,
        require_off_hours,
        save_report,
    )
    from v28quant.optimization.provenance import TUNED_PARAMS_FILE, write_tuned_params
    from v28quant.optimization.report import write_html
    from v28quant.optimization.tuner import BayesianTuner, TunerConfig, default_storage

    _quiet_optuna()
    now = datetime.now(UTC)
    deadline = None
    if args.off_hours_only:
        require_off_hours(now)
        deadline = off_hours_deadline(now)
    if args.deadline is not None:
        deadline = min(deadline or args.deadline, args.deadline)
    storage = args.storage or default_storage(_journal(args))
    evaluator = _evaluator(args)
    config = TunerConfig(
        n_trials=args.trials,
        batch_size=args.batch,
        seed=args.seed,
        storage=storage,
        study_name=args.study or f"v28-{evaluator.name}",
        deadline=deadline,
    )
    out = _out_dir(args, "tune")
    with _runner(args) as runner:
        print(f"tune: study {config.study_name} in {storage}; tasks on {runner.describe()}")
        tuner = BayesianTuner(
            evaluator, config, _scheme(args, evaluator.label_horizon), runner, args.min_dsr
        )
        result = tuner.optimize()
    params_file = write_tuned_params(out / TUNED_PARAMS_FILE, result.best_params, result.searched)
    with Journal(_journal(args)) as journal:
        json_path = save_report(result.walk_forward, out, journal, result.started, result.finished)
        record_tune(journal, result, storage, json_path, params_file)
    html = write_html(result.walk_forward, out, evaluator.space, result.study)
    print(
        f"{result.n_complete} complete + {result.n_pruned} pruned trials; "
        f"best OOS Sharpe {result.best_value:.3f} (trial {result.study.best_trial.number})"
    )
    _print_report(result.walk_forward, html, json_path)
    print(f"  tuned parameters {params_file} (walk-forward --params it on later sessions)")
    return 0


def _study_params(
    args: argparse.Namespace,
) -> tuple[dict[str, float], int, list[float], SearchSpan]:
    import optuna

    from v28quant.optimization.provenance import SEARCH_KEY, SearchSpan
    from v28quant.optimization.tuner import default_storage, open_storage

    storage = args.storage or default_storage(_journal(args))
    opened = open_storage(storage) or storage
    try:
        study = optuna.load_study(study_name=args.study, storage=opened)
    except KeyError:
        names = [x.study_name for x in optuna.get_all_study_summaries(opened)]
        raise ValueError(
            f"no study {args.study!r} in {storage}; studies there: {', '.join(names) or 'none'}"
        ) from None
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False, states=states)
    srs = [
        float(t.user_attrs["oos_sharpe_per_period"])
        for t in trials
        if "oos_sharpe_per_period" in t.user_attrs
    ]
    if SEARCH_KEY not in study.user_attrs:
        raise ValueError(
            f"study {args.study!r} records no sessions it searched (tuned before they were "
            "recorded): tune again, then walk-forward --params its params.json"
        )
    span = SearchSpan.from_dict(study.user_attrs[SEARCH_KEY], f"study {args.study!r}")
    return dict(study.best_params), len(trials), srs, span


def _params_file(name: str) -> tuple[dict[str, float], SearchSpan | None]:
    """Read ``--params``: the parameters and their search span; a ValueError naming the flag."""
    from v28quant.optimization.provenance import read_params_file

    try:
        return read_params_file(Path(name))
    except OSError as exc:
        raise ValueError(f"--params: cannot read {name!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"--params {name!r}: {exc}") from None


def run_walk_forward(args: argparse.Namespace) -> int:
    """Run ``walk-forward``; returns the exit status."""
    from v28quant.journal import Journal
    from v28quant.optimization.promote import save_report
    from v28quant.optimization.report import write_html
    from v28quant.optimization.walkforward import WalkForwardOptimizer

    _quiet_optuna()
    started = datetime.now(UTC)
    fixed = _params_file(args.params) if args.params else None  # before any worker starts
    evaluator = _evaluator(args)
    out = _out_dir(args, "walk-forward")
    with _runner(args) as runner:
        wf = WalkForwardOptimizer(
            evaluator,
            _scheme(args, evaluator.label_horizon),
            trials_per_window=args.trials_per_window,
            seed=args.seed,
            min_dsr=args.min_dsr,
            runner=runner,
        )
        print(f"walk-forward: {len(wf.windows)} {args.kind} windows; tasks on {runner.describe()}")
        if fixed is not None:
            params, search = fixed
            report = wf.run_fixed(params, search=search)
        elif args.study:
            params, n, srs, search = _study_params(args)
            report = wf.run_fixed(params, n_trials=n, trial_sharpes=srs, search=search)
        else:
            report = wf.run_reoptimising()
    with Journal(_journal(args)) as journal:
        json_path = save_report(report, out, journal, started, datetime.now(UTC))
    html = write_html(report, out, evaluator.space)
    _print_report(report, html, json_path)
    return 0


def run_promote(args: argparse.Namespace) -> int:
    """Run ``promote``; returns the exit status."""
    from v28quant.journal import Journal
    from v28quant.optimization.promote import PromotionRefused, promote

    path = _journal(args)
    if not path.is_file():  # opening it would create an empty journal that vouches for nothing
        print(
            f"error: no journal at {path} (promote needs the journal that recorded the "
            "walk-forward: set --journal or V28_JOURNAL)",
            file=sys.stderr,
        )
        return 2
    with Journal(path) as journal:
        try:
            done = promote(args.report, journal, args.out)
        except PromotionRefused as exc:
            print(f"promote refused: {exc}", file=sys.stderr)
            return 3
    print(
        f"promoted {len(done.params)} parameters (walk-forward {done.digest[:16]}) -> {done.path}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the stand-alone parser of ``python -m v28quant.optimization``."""
    parser = argparse.ArgumentParser(
        prog="python -m v28quant.optimization",
        description="Walk-forward optimisation and Bayesian tuning of the v28quant strategy.",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    add_subparsers(parser.add_subparsers(dest="command", required=True))
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command's handler; bad input ends in one line and status 2."""
    try:
        status: int = args.handler(args)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command (see :func:`run_command`)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return run_command(args)
