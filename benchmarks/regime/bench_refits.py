"""Weekly regime refits with and without the warm start: the risk scale's churn and the refit time.

The pre-market job's schedule on the bundled S&P 500 history (``sp500_stocks``), sessions
2022-09-01..2022-12-28: every ``REGIME_REFIT_SESSIONS`` sessions a fresh controller is fitted on
the last ``MARKET_SESSIONS`` market returns and the last 378 of each of the 20 stocks, its POMDP
belief filtered over ``BELIEF_SESSIONS`` sessions, then every session assessed. Two runs side by
side, session by session: each refit cold (one random start, as before) and warm-started from
the last fit (``HierarchicalRegimeController.fit(..., warm_start=...)``, as the job does now).

Printed: the POMDP action changes (all, on refit days, risk_on <-> risk_off), the largest move
of any regime's daily mean and annual volatility from one refit to the next, and the CPU time
of the refits (the controller's fit, market and stocks, BLAS on one thread).

Run: ``PYTHONPATH=python python benchmarks/regime/bench_refits.py``
"""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from v28quant.data.samples import sp500_stocks
from v28quant.premarket import (
    BELIEF_SESSIONS,
    MARKET_SESSIONS,
    REGIME_REFIT_SESSIONS,
    _observe_sessions,
    log_returns,
)
from v28quant.regime.hierarchical import HierarchicalRegimeController

MARKET = "SP500"


class Run:
    """One pre-market schedule: the controller, its age and what it did."""

    def __init__(self, warm: bool) -> None:
        self.warm = warm
        self.controller: HierarchicalRegimeController | None = None
        self.age = REGIME_REFIT_SESSIONS
        self.actions: list[tuple[str, bool]] = []
        self.fits: list[pd.DataFrame] = []
        self.fit_cpu: list[float] = []
        self.market_iters: list[int] = []

    def session(self, history: pd.Series, symbols: dict[str, pd.Series]) -> None:
        mkt = history.iloc[-MARKET_SESSIONS:]
        refit = self.controller is None or self.age >= REGIME_REFIT_SESSIONS
        if refit:
            fresh = HierarchicalRegimeController(n_starts=1)
            t = time.process_time()
            fresh.fit(mkt, symbols, warm_start=self.controller if self.warm else None)
            self.fit_cpu.append(time.process_time() - t)
            assert fresh.market_hmm.model is not None
            self.market_iters.append(fresh.market_hmm.model.monitor_.iter)
            _observe_sessions(fresh, history, BELIEF_SESSIONS)
            self.controller, self.age = fresh, 0
            summary = fresh.market_hmm.summary()
            self.fits.append(
                pd.DataFrame(
                    {
                        "mean_bp": summary["mean_return"] * 1e4,
                        "vol_annual": summary["vol_annual"],
                    }
                )
            )
        assert self.controller is not None
        out = self.controller.assess(mkt, symbols)
        self.age += 1
        self.actions.append((out.reasoning["pomdp_action"], refit))

    def report(self) -> str:
        changes = [(a, b, r) for (a, _), (b, r) in pairwise(self.actions) if a != b]
        flips = sum({a, b} == {"risk_on", "risk_off"} for a, b, _ in changes)
        moves = pd.concat([(b - a).abs().max() for a, b in pairwise(self.fits)], axis=1).max(axis=1)
        return (
            f"| {'warm + 1 random start' if self.warm else '1 random start'} "
            f"| {len(changes)} | {sum(r for *_, r in changes)} | {flips} "
            f"| {moves['mean_bp']:.1f} | {moves['vol_annual']:.3f} "
            f"| {sum(self.fit_cpu):.1f} ({np.median(self.fit_cpu):.2f}) "
            f"| {np.median(self.market_iters):.0f} |"
        )


def main() -> None:
    closes = sp500_stocks().bars.pivot_table(index="timestamp", columns="symbol", values="close")
    returns = log_returns(closes)
    runs = [Run(warm=False), Run(warm=True)]
    for day in returns.loc["2022-09-01":"2022-12-28"].index:
        past = returns.loc[:day]
        symbols = {
            s: past[s].dropna().iloc[-378:]
            for s in past.columns
            if s != MARKET and past[s].notna().sum() > 260
        }
        for run in runs:
            run.session(past[MARKET].dropna(), symbols)
    print(f"{len(runs[0].actions)} sessions, {len(runs[0].fits)} refits, 20 stocks + {MARKET}")
    print(
        "| refit | action changes | on refit days | risk_on <-> risk_off "
        "| largest move of a regime's mean (bp/day) | ... of its annual vol "
        "| refit CPU s, all (median) | market HMM EM iterations (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        print(run.report())


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
