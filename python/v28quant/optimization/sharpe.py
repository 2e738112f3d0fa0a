"""Probabilistic and deflated Sharpe ratios, as the optimisation layer uses them.

The statistics live in :mod:`v28quant.sharpe`, shared with the backtest report; this module
re-exports them.
"""

from __future__ import annotations

from v28quant.sharpe import (
    EULER_GAMMA,
    TRADING_DAYS,
    DeflatedSharpe,
    ReturnMoments,
    deflated_sharpe,
    deflated_sharpe_of,
    expected_max_sharpe,
    moments,
    probabilistic_sharpe,
    sharpe_ratio,
    sharpe_std,
)

__all__ = [
    "EULER_GAMMA",
    "TRADING_DAYS",
    "DeflatedSharpe",
    "ReturnMoments",
    "deflated_sharpe",
    "deflated_sharpe_of",
    "expected_max_sharpe",
    "moments",
    "probabilistic_sharpe",
    "sharpe_ratio",
    "sharpe_std",
]
