"""Adapters of the regime detectors: each symbol's HMM and manifold regime as a directional vote.

Both read the symbol detectors of a fitted
:class:`~v28quant.regime.hierarchical.HierarchicalRegimeController`.

* HMM: value ``tanh(S / 2)`` with ``S`` the annualised Sharpe ratio of the next day's return
  predicted by the HMM (filtered state probabilities times the transition matrix, then the
  mixture of the states' normals; :meth:`~v28quant.regime.hmm.HmmRegimeDetector.forecast_return`).
* Manifold: value ``P(calmest) - P(most stressed)``.
* Support: the certainty of the regime probabilities, ``1 - H(p) / ln k``, times for the manifold
  ``exp(-speed / speed_scale)``: while the return distribution is moving fast along its path the
  regime reading is in transit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from v28quant.models.base import (
    DAILY,
    DailyMemo,
    MarketSnapshot,
    TrackRecord,
    certainty,
    data_key,
    record_of,
)
from v28quant.regime.hierarchical import HierarchicalRegimeController
from v28quant.signals import Signal, combine_confidence

log = logging.getLogger(__name__)


@dataclass
class HmmAdapter:
    """Direction from each symbol's filtered HMM regime probabilities."""

    controller: HierarchicalRegimeController
    track: TrackRecord | None = None
    name: str = "hmm"
    lifetime: timedelta = DAILY

    def __post_init__(self) -> None:
        """Start with an empty memo."""
        self.memo = DailyMemo()

    def signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        """One signal per symbol the controller has fitted (once per day's data and fit)."""
        fits = tuple(id(h.model) for h, _ in self.controller.symbols.values())
        key = data_key(snapshot.returns, fits)
        return self.memo.get(key, lambda: self._signals(snapshot))

    def _signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        out: list[Signal] = []
        record = record_of(self.track)
        ts = snapshot.daily_ts
        for sym, (hmm, _) in self.controller.symbols.items():
            if sym not in snapshot.returns.columns:
                continue
            try:
                r = snapshot.symbol_returns(sym)
                probs = hmm.predict(r, ts=ts).probabilities
                mean, sd = hmm.forecast_return(r)
            except ValueError as exc:
                log.warning("hmm regime of %s failed: %s", sym, exc)
                continue
            sharpe = math.sqrt(252.0) * mean / sd
            reasoning = {"probabilities": dict(probs), "sharpe_annual": sharpe}
            conf = combine_confidence(record, certainty(probs))
            out.append(
                Signal(self.name, sym, math.tanh(sharpe / 2.0), conf, reasoning, ts, self.lifetime)
            )
        return out


@dataclass
class ManifoldAdapter:
    """Direction from each symbol's manifold regime probabilities and path speed."""

    controller: HierarchicalRegimeController
    speed_scale: float = 0.5
    track: TrackRecord | None = None
    name: str = "manifold"
    lifetime: timedelta = DAILY

    def __post_init__(self) -> None:
        """Start with an empty memo."""
        self.memo = DailyMemo()

    def signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        """One signal per symbol the controller has fitted (once per day's data and fit)."""
        fits = tuple(id(m.classifier.centroids) for _, m in self.controller.symbols.values())
        key = data_key(snapshot.returns, fits)
        return self.memo.get(key, lambda: self._signals(snapshot))

    def _signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        out: list[Signal] = []
        record = record_of(self.track)
        ts = snapshot.daily_ts
        for sym, (_, man) in self.controller.symbols.items():
            if sym not in snapshot.returns.columns:
                continue
            r = snapshot.symbol_returns(sym).iloc[-(man.tracker.window + 3 * man.tracker.lag) :]
            try:
                probs = man.predict(r, ts=ts).probabilities
                speed = float(man.features(r)["speed"].iloc[-1])
            except ValueError as exc:
                log.warning("manifold regime of %s failed: %s", sym, exc)
                continue
            labels = man.labels
            value = probs[labels[0]] - probs[labels[-1]]
            damp = math.exp(-speed / self.speed_scale) if math.isfinite(speed) else 1.0
            support = certainty(probs) * damp
            reasoning = {"probabilities": dict(probs), "speed": speed}
            conf = combine_confidence(record, support)
            out.append(Signal(self.name, sym, value, conf, reasoning, ts, self.lifetime))
        return out
