"""An evaluator with a known optimum, for checking the optimisers and timing the scale-out.

Daily returns are ``mu(params) + sd * eps_t`` with ``eps`` a fixed standard-normal path per date
(common random numbers, so every parameter set sees the same noise) and
``mu = edge - curvature * sum_i ((x_i - x*_i) / range_i)^2``: the Sharpe ratio is largest at
``x*`` whatever the noise. ``work`` repeats a least-squares fit per evaluation to stand in for a
costly backtest when timing parallel runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from v28quant.optimization.evaluation import WindowReturns
from v28quant.optimization.space import Param, SearchSpace


class QuadraticEvaluator:
    """Synthetic strategy whose Sharpe ratio peaks at a known parameter set.

    Parameters
    ----------
    optimum : Mapping[str, float]
        The optimum ``x*``; each name becomes a parameter on ``[0, 1]``.
    n_dates : int
        Business days of synthetic history from 2010-01-01.
    edge, curvature, sd : float
        Daily mean return at the optimum, its fall-off, and the daily return s.d.
    work : int
        Extra least-squares solves (200 x 50) per evaluation; 0 for none.
    seed : int
        Seed of the common noise path.
    """

    name = "quadratic"
    label_horizon = 1

    def __init__(
        self,
        optimum: Mapping[str, float],
        n_dates: int = 1000,
        edge: float = 0.001,
        curvature: float = 0.004,
        sd: float = 0.01,
        work: int = 0,
        seed: int = 0,
    ) -> None:
        self.optimum = dict(optimum)
        self.space = SearchSpace(tuple(Param(k, 0.0, 1.0, 0.5) for k in self.optimum))
        self._dates = pd.bdate_range("2010-01-01", periods=n_dates)
        self._eps = np.random.default_rng(seed).standard_normal(n_dates)
        self.edge, self.curvature, self.sd, self.work = edge, curvature, sd, work

    def dates(self) -> pd.DatetimeIndex:
        """Return the synthetic sessions."""
        return self._dates

    def mean(self, params: Mapping[str, float]) -> float:
        """Daily mean return of ``params``."""
        p = self.space.validate(params)
        dist = sum((p[k] - v) ** 2 for k, v in self.optimum.items())
        return self.edge - self.curvature * dist

    def evaluate(
        self,
        params: Mapping[str, float],
        train: pd.DatetimeIndex,
        test: pd.DatetimeIndex,
        seed: int,
    ) -> WindowReturns:
        """Return the train and test returns; ``seed`` drives only the stand-in work."""
        if self.work:
            rng = np.random.default_rng(seed)
            a = rng.standard_normal((200, 50))
            for _ in range(self.work):
                np.linalg.lstsq(a, rng.standard_normal(200), rcond=None)
        r = pd.Series(self.mean(params) + self.sd * self._eps, index=self._dates)
        return WindowReturns(train=r.loc[train], test=r.loc[test])
