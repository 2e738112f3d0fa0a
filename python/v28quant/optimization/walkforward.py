"""The walk-forward optimiser: in-sample choice, out-of-sample verdict, deflated for every trial.

Two modes over the same purged and embargoed windows (:mod:`v28quant.optimization.windows`):

* **fixed**: one parameter set (e.g. the tuner's best) evaluated on every window: the strategy
  fits what it learns on the training dates and trades the test dates.
* **re-optimising**: in each window a TPE search of ``trials_per_window`` trials picks the
  parameters with the best in-sample Sharpe ratio on the training dates alone; those trade the
  test dates. The candidate for live trading is the last window's choice.

Every evaluation is net of commissions, spread and slippage. The report gives per window the
in-sample and out-of-sample Sharpe ratios, their decay, the stability of the chosen parameters
across windows, and the deflated Sharpe ratio of the stitched out-of-sample returns with the
number of trials actually run (Bailey & López de Prado 2014). A walk-forward passes when that DSR
reaches ``min_dsr`` and the out-of-sample Sharpe ratio is positive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd

from v28quant.optimization.distributed import TaskRunner
from v28quant.optimization.evaluation import Evaluator, WindowReturns, task_seed
from v28quant.optimization.provenance import SEARCH_KEY, SearchSpan
from v28quant.optimization.sharpe import (
    TRADING_DAYS,
    DeflatedSharpe,
    deflated_sharpe_of,
    sharpe_ratio,
)
from v28quant.optimization.windows import Window, WindowScheme, walk_forward_windows


def _finite_or_none(x: float) -> float | None:
    """JSON has no NaN: an unknown figure (e.g. costs inside a backtest) is written as null."""
    return x if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One window of a walk-forward.

    Attributes
    ----------
    index : int
        Window number, oldest first.
    train_start, train_end, test_start, test_end : Timestamp
        Dates spanned (after purge and embargo).
    params : dict
        Parameters traded on the test dates.
    is_sharpe, oos_sharpe : float
        Annualised Sharpe ratios, net of costs, on the training and test dates.
    oos_returns : Series
        Net daily test returns.
    test_costs, test_turnover : float
        Costs paid on the test dates (fraction of capital) and mean daily turnover.
    n_trials : int
        Trials run in this window's in-sample search (0 in fixed mode).
    trial_sharpes : tuple of float
        Per-observation in-sample Sharpe ratio of each of those trials.
    """

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    params: dict[str, float]
    is_sharpe: float
    oos_sharpe: float
    oos_returns: pd.Series
    test_costs: float
    test_turnover: float
    n_trials: int = 0
    trial_sharpes: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (returns as ``{"dates": [...], "values": [...]}``)."""
        return {
            "index": self.index,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "params": self.params,
            "is_sharpe": self.is_sharpe,
            "oos_sharpe": self.oos_sharpe,
            "test_costs": _finite_or_none(self.test_costs),
            "test_turnover": _finite_or_none(self.test_turnover),
            "n_trials": self.n_trials,
            "oos_returns": {
                "dates": [d.strftime("%Y-%m-%d") for d in self.oos_returns.index],
                "values": [float(v) for v in self.oos_returns.to_numpy()],
            },
        }


@dataclass(frozen=True, slots=True)
class WalkForwardReport:
    """The outcome of a walk-forward (see the module docstring)."""

    evaluator: str
    mode: str
    scheme: WindowScheme
    seed: int
    windows: tuple[WindowResult, ...]
    candidate: dict[str, float]
    n_trials: int
    dsr: DeflatedSharpe
    min_dsr: float
    stability: dict[str, dict[str, float]] = field(default_factory=dict)
    #: What the result holds for beyond its parameters (the evaluator's ``scope()``, e.g. its
    #: universe and settings); empty when the evaluator says nothing.
    scope: dict[str, Any] = field(default_factory=dict)
    #: Sessions the search that chose ``candidate`` saw (a tuned set); None for a set no
    #: search over these dates chose (hand-picked, or re-chosen in-sample per window).
    search: SearchSpan | None = None

    @property
    def held_out(self) -> bool | None:
        """Whether every test window lies after the sessions the search saw; None: no search."""
        if self.search is None:
            return None
        return self.search.held_out([w.test_start.date() for w in self.windows])

    @property
    def oos_returns(self) -> pd.Series:
        """Test returns of every window, stitched in date order."""
        return pd.concat([w.oos_returns for w in self.windows]).sort_index()

    @property
    def oos_sharpe(self) -> float:
        """Annualised Sharpe ratio of the stitched test returns."""
        return sharpe_ratio(self.oos_returns)

    @property
    def is_sharpe(self) -> float:
        """Mean annualised in-sample Sharpe ratio over the windows."""
        return float(np.mean([w.is_sharpe for w in self.windows]))

    @property
    def decay(self) -> float:
        """``1 - mean OOS Sharpe / mean IS Sharpe``: 0 none, 1 all of it lost (NaN if IS <= 0)."""
        is_sr = self.is_sharpe
        oos = float(np.mean([w.oos_sharpe for w in self.windows]))
        return 1.0 - oos / is_sr if is_sr > 0 else math.nan

    @property
    def passed(self) -> bool:
        """DSR at or above ``min_dsr`` and a positive out-of-sample Sharpe ratio."""
        return self.dsr.dsr >= self.min_dsr and self.oos_sharpe > 0

    @property
    def verdict(self) -> str:
        """One line saying whether and why it passed."""
        why = f"DSR {self.dsr.dsr:.3f} vs {self.min_dsr:.2f} with {self.n_trials} trial(s)"
        return f"{'PASS' if self.passed else 'FAIL'}: {why}, OOS Sharpe {self.oos_sharpe:.2f}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of everything in the report (``search`` only for a tuned set)."""
        d = self.dsr
        search = (
            {}
            if self.search is None
            else {SEARCH_KEY: {**self.search.to_dict(), "held_out": self.held_out}}
        )
        return {
            "evaluator": self.evaluator,
            "mode": self.mode,
            "scheme": {
                "kind": self.scheme.kind,
                "n_windows": self.scheme.n_windows,
                "train_dates": self.scheme.train_dates,
                "label_horizon": self.scheme.label_horizon,
                "embargo": self.scheme.gap,
            },
            "seed": self.seed,
            "candidate": self.candidate,
            "n_trials": self.n_trials,
            "passed": self.passed,
            "verdict": self.verdict,
            "min_dsr": self.min_dsr,
            "oos_sharpe": self.oos_sharpe,
            "is_sharpe": self.is_sharpe,
            "decay": None if math.isnan(self.decay) else self.decay,
            "dsr": {
                "dsr": d.dsr,
                "sharpe_per_period": d.sharpe,
                "benchmark_per_period": d.benchmark,
                "n_trials": d.n_trials,
                "trial_variance": d.trial_variance,
                "n_obs": d.n,
                "skew": d.skew,
                "kurtosis": d.kurtosis,
            },
            "stability": self.stability,
            "scope": self.scope,
            **search,
            "windows": [w.to_dict() for w in self.windows],
        }


def parameter_stability(
    evaluator: Evaluator, chosen: Sequence[Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """Per parameter: mean, s.d. and s.d. on the unit-scaled range of the per-window choices.

    ``unit_sd`` near 0 means every window chose about the same value; about 0.29 is what
    uniform random choices would give (s.d. of U(0, 1)).
    """
    out: dict[str, dict[str, float]] = {}
    for p in evaluator.space.params:
        vals = np.array([float(c[p.name]) for c in chosen if p.name in c])
        if vals.size == 0:
            continue
        units = np.array([p.unit(v) for v in vals])
        sd = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
        usd = float(units.std(ddof=1)) if vals.size > 1 else 0.0
        out[p.name] = {"mean": float(vals.mean()), "sd": sd, "unit_sd": usd}
    return out


def evaluator_scope(evaluator: Evaluator) -> dict[str, Any]:
    """Return what an evaluator's results hold for (its optional ``scope()``), else ``{}``."""
    scope = getattr(evaluator, "scope", None)
    return dict(scope()) if scope is not None else {}


def _per_period_sharpe(r: pd.Series) -> float:
    return sharpe_ratio(r, 1)


def evaluate_window(
    evaluator: Evaluator,
    params: Mapping[str, float],
    train: pd.DatetimeIndex,
    test: pd.DatetimeIndex,
    seed: int,
) -> WindowReturns:
    """One evaluation (a Dask task): ``evaluator.evaluate`` with its arguments."""
    return evaluator.evaluate(params, train, test, seed)


def search_window(
    evaluator: Evaluator,
    train: pd.DatetimeIndex,
    test: pd.DatetimeIndex,
    n_trials: int,
    seed: int,
) -> tuple[dict[str, float], WindowReturns, tuple[float, ...]]:
    """In-sample TPE search on ``train`` (a Dask task); returns its choice traded on ``test``.

    Each trial sees the training dates only (an empty test set). Returns the chosen params, the
    choice's returns on ``train`` and ``test``, and every trial's per-observation IS Sharpe.
    """
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one short-lived study per window
    study = optuna.create_study(direction="maximize", sampler=sampler)
    dists = evaluator.space.distributions()
    empty = pd.DatetimeIndex([])
    sharpes: list[float] = []
    for i in range(n_trials):
        trial = study.ask(dists)
        r = evaluator.evaluate(trial.params, train, empty, task_seed(seed, "trial", i))
        sr = _per_period_sharpe(r.train)
        sharpes.append(sr)
        study.tell(trial, sr)
    best = evaluator.space.validate(study.best_params)
    chosen = evaluator.evaluate(best, train, test, task_seed(seed, "chosen"))
    return best, chosen, tuple(sharpes)


class WalkForwardOptimizer:
    """Walk-forward over an evaluator's history (see the module docstring).

    Parameters
    ----------
    evaluator : Evaluator
        What is evaluated, net of costs.
    scheme : WindowScheme, optional
        Windows; default anchored, 4 windows, 504 training sessions, purge and embargo of the
        evaluator's label horizon.
    trials_per_window : int
        In-sample trials per window in re-optimising mode.
    seed : int
        Base seed; each window's and trial's seed derives from it.
    min_dsr : float
        Deflated Sharpe ratio needed to pass.
    runner : TaskRunner, optional
        Where tasks run; default in-process.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        scheme: WindowScheme | None = None,
        trials_per_window: int = 16,
        seed: int = 0,
        min_dsr: float = 0.95,
        runner: TaskRunner | None = None,
    ) -> None:
        if trials_per_window < 1:
            raise ValueError(f"trials_per_window must be >= 1, got {trials_per_window}")
        if not 0.0 < min_dsr < 1.0:
            raise ValueError(f"min_dsr must be in (0, 1), got {min_dsr}")
        self.evaluator = evaluator
        self.scheme = scheme or WindowScheme(label_horizon=evaluator.label_horizon)
        if self.scheme.label_horizon < evaluator.label_horizon:
            raise ValueError(
                f"label_horizon {self.scheme.label_horizon} is shorter than the "
                f"{evaluator.name} holding period {evaluator.label_horizon}: purge too small"
            )
        self.trials_per_window = trials_per_window
        self.seed, self.min_dsr = seed, min_dsr
        self.runner = runner or TaskRunner(workers=0, progress=False)
        self.windows: list[Window] = walk_forward_windows(self.scheme, evaluator.dates())

    def _dates(self, w: Window) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
        d = self.evaluator.dates()
        return d[w.train], d[w.test]

    def run_fixed(
        self,
        params: Mapping[str, float],
        n_trials: int = 1,
        trial_sharpes: Sequence[float] = (),
        search: SearchSpan | None = None,
    ) -> WalkForwardReport:
        """Walk-forward of one parameter set.

        ``n_trials`` and ``trial_sharpes`` (per-observation) describe the search that produced
        ``params`` (e.g. the tuner's study), so the DSR deflates for it; a hand-picked set is one
        trial. ``search``: the sessions that search saw, recorded in the report with whether
        every test window lies after them.
        """
        p = self.evaluator.space.validate(params)
        ev = self.runner.share(self.evaluator)
        args = [
            (ev, p, *self._dates(w), task_seed(self.seed, "window", w.index)) for w in self.windows
        ]
        results = self.runner.map(evaluate_window, args, desc="walk-forward windows")
        windows = tuple(self._result(w, p, r) for w, r in zip(self.windows, results, strict=True))
        return self._report("fixed", windows, p, max(n_trials, 1), trial_sharpes, search)

    def run_reoptimising(self) -> WalkForwardReport:
        """Walk-forward that re-chooses the parameters in-sample in every window."""
        ev = self.runner.share(self.evaluator)
        args = [
            (ev, *self._dates(w), self.trials_per_window, task_seed(self.seed, "window", w.index))
            for w in self.windows
        ]
        out = self.runner.map(search_window, args, desc="walk-forward searches")
        windows = tuple(
            self._result(w, best, r, len(srs), srs)
            for w, (best, r, srs) in zip(self.windows, out, strict=True)
        )
        all_srs = [s for w in windows for s in w.trial_sharpes]
        n = sum(w.n_trials for w in windows)
        return self._report("re-optimising", windows, windows[-1].params, n, all_srs)

    def _result(
        self,
        w: Window,
        params: dict[str, float],
        r: WindowReturns,
        n_trials: int = 0,
        trial_sharpes: Sequence[float] = (),
    ) -> WindowResult:
        return WindowResult(
            index=w.index,
            train_start=w.train_start,
            train_end=w.train_end,
            test_start=w.test_start,
            test_end=w.test_end,
            params=params,
            is_sharpe=sharpe_ratio(r.train, TRADING_DAYS),
            oos_sharpe=sharpe_ratio(r.test, TRADING_DAYS),
            oos_returns=r.test,
            test_costs=r.test_costs,
            test_turnover=r.test_turnover,
            n_trials=n_trials,
            trial_sharpes=tuple(trial_sharpes),
        )

    def _report(
        self,
        mode: str,
        windows: tuple[WindowResult, ...],
        candidate: dict[str, float],
        n_trials: int,
        trial_sharpes: Sequence[float],
        search: SearchSpan | None = None,
    ) -> WalkForwardReport:
        oos = pd.concat([w.oos_returns for w in windows]).sort_index()
        dsr = deflated_sharpe_of(oos, trial_sharpes, n_trials)
        return WalkForwardReport(
            evaluator=self.evaluator.name,
            mode=mode,
            scheme=self.scheme,
            seed=self.seed,
            windows=windows,
            candidate=candidate,
            n_trials=n_trials,
            dsr=dsr,
            min_dsr=self.min_dsr,
            stability=parameter_stability(self.evaluator, [w.params for w in windows]),
            scope=evaluator_scope(self.evaluator),
            search=search,
        )
