"""The evaluation protocol the optimisers call: (params, train window, test window) -> returns.

An :class:`Evaluator` turns a parameter set into daily returns *net of costs* on a window's
training dates (in-sample) and test dates (out-of-sample). It may fit whatever the strategy
learns (a regime model, thresholds) on the training dates only. ``seed`` comes from the trial
and the window, never from the worker that runs it, so every result is reproducible whatever
the number of workers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from v28quant.optimization.space import SearchSpace


@dataclass(frozen=True, slots=True)
class WindowReturns:
    """Daily returns of one parameter set on one window, net of costs.

    Attributes
    ----------
    train : Series
        Net daily returns (fraction of capital) on the training dates, indexed by date.
    test : Series
        Net daily returns on the test dates.
    test_costs : float
        Costs paid over the test dates, fraction of capital (summed daily fractions).
    test_turnover : float
        Mean daily turnover on the test dates (sum of absolute weight changes).
    """

    train: pd.Series
    test: pd.Series
    test_costs: float = 0.0
    test_turnover: float = 0.0


@runtime_checkable
class Evaluator(Protocol):
    """What the walk-forward optimiser and the tuner evaluate.

    Attributes
    ----------
    name : str
        Short name journaled with every run.
    label_horizon : int
        Sessions a decision is held (sizes the purge and embargo).
    space : SearchSpace
        The parameters it accepts.
    """

    name: str
    label_horizon: int
    space: SearchSpace

    def dates(self) -> pd.DatetimeIndex:
        """Return the sessions that walk-forward windows are cut from."""
        ...

    def evaluate(
        self,
        params: Mapping[str, float],
        train: pd.DatetimeIndex,
        test: pd.DatetimeIndex,
        seed: int,
    ) -> WindowReturns:
        """Net daily returns of ``params`` on ``train`` (fitted there) and on ``test``.

        ``test`` may be empty (an in-sample search that must not see the test dates).
        """
        ...


def task_seed(base: int, *parts: object) -> int:
    """Derive a 32-bit seed from a base seed and a task's identity (trial number, window index).

    Hash-derived, so neighbouring tasks get unrelated streams and no seed depends on which
    worker or in which order a task runs.
    """
    text = "|".join(map(str, (base, *parts))).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "little")
