"""The Monte Carlo vote on an underlying's implied volatility, for the options engine.

Pre-market, a GARCH(1,1) is fitted to each underlying's daily log returns. Each cycle
:class:`~v28quant.models.options.MonteCarloAdapter` prices the chain's ``max_contracts`` nearest
the money by simulation at the GARCH volatility expected over each option's life and returns,
per contract, the edge ``model IV - market IV`` in units of its noise (half the bid-ask spread
and the simulation's standard error, in vol points). The contracts' votes are folded into one
``monte_carlo`` signal on the underlying's vol symbol (``"SPY:IV"``) with the options engine's
meaning: +1 when the market's implied vol is rich against the GARCH forecast (sell premium), -1
when cheap. Value: the confidence-weighted mean of the contracts' votes, sign flipped;
confidence: the confidence-weighted mean of their confidences.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from v28quant.models.base import MarketSnapshot
from v28quant.models.options import MonteCarloAdapter
from v28quant.options.signals import vol_symbol
from v28quant.quant_models import garch
from v28quant.signals import Signal

log = logging.getLogger(__name__)


@dataclass
class MonteCarloView:
    """GARCH fits per underlying and the Monte Carlo vote of each cycle (module docstring)."""

    max_contracts: int = 6
    paths: int = 4000
    window: int = 1000
    fits: dict[str, garch.GarchResult] = field(default_factory=dict)

    def fit(self, underlying: str, closes: np.ndarray) -> None:
        """Fit the GARCH of ``underlying`` on its daily closes (a failed fit drops the vote)."""
        c = np.asarray(closes, dtype=np.float64)
        r = np.diff(np.log(c[np.isfinite(c) & (c > 0)]))[-self.window :]
        try:
            self.fits[underlying] = garch.fit(r)
        except ValueError as exc:
            self.fits.pop(underlying, None)
            log.warning("monte carlo: GARCH fit for %s failed: %s", underlying, exc)

    def signal(
        self, underlying: str, chain: pd.DataFrame, spot: float, now: datetime, rate: float
    ) -> Signal | None:
        """Return the ``monte_carlo`` vote on ``underlying``'s vol, or None without a fit."""
        if underlying not in self.fits:
            return None
        adapter = MonteCarloAdapter(max_contracts=self.max_contracts, paths=self.paths)
        adapter.params = {underlying: self.fits[underlying]}
        snap = MarketSnapshot(
            returns=pd.DataFrame(),
            chains={underlying: chain},
            spots={underlying: spot},
            chain_ts=now,
            rate=rate,
        )
        votes = adapter.signals(snap)
        w = np.array([s.confidence for s in votes])
        if not votes or w.sum() <= 0:
            return None
        v = np.array([s.value for s in votes])
        edges = [s.reasoning["edge_vol_points"] for s in votes]
        return Signal(
            "monte_carlo",
            vol_symbol(underlying),
            float(np.clip(-(w @ v) / w.sum(), -1.0, 1.0)),
            float((w @ w) / w.sum()),
            {
                "meaning": "implied minus GARCH-simulated vol: +1 rich (sell premium), -1 cheap",
                "market_minus_model_vol_pts": round(-float(np.mean(edges)), 4),
                "contracts": len(votes),
                "paths": self.paths,
                "garch_vol": round(float(np.sqrt(252.0 * self.fits[underlying].next_variance)), 6),
            },
            now,
        )


__all__ = ["MonteCarloView"]
