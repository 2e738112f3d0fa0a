"""Risk scale and capital split: the POMDP controller and the adaptive allocator, wired in.

Neither votes on direction. :class:`PomdpRiskScale` keeps the POMDP controller's belief over the
market regimes (its hidden states carry the regime labels and the HMM's fitted mean and
volatility per regime) and turns it into an exposure scale in (0, 1]. :func:`capital_split`
turns the adaptive allocator's engine weights and the risk multiplier into the fraction of
equity each engine may use.

A detector's regime posterior already contains its own prior and transition model, so it must
not be multiplied into the POMDP's belief as if it were a likelihood (that would count the
dynamics twice). It enters as *soft evidence* through the POMDP's observation model: the
detector's label is an observation ``o`` with ``P(o | s) = Z[s, o]``, and an uncertain label
with posterior ``q(o)`` gives the likelihood ``L(s) = sum_o Z[s, o] q(o)`` (virtual evidence,
Pearl 1988, sec. 2.2.2).

References
----------
J. Pearl (1988), "Probabilistic Reasoning in Intelligent Systems", Morgan Kaufmann.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from v28quant.ml.adaptive_allocator import AdaptiveAllocator
from v28quant.ml.pomdp_controller import ControllerConfig, ControllerDecision, POMDPController

log = logging.getLogger(__name__)


class PomdpRiskScale:
    """Exposure scale from the POMDP controller over the regime labels.

    Parameters
    ----------
    labels : sequence of str
        The regime labels (the controller's hidden states), calmest first.
    mean_return, volatility : sequence of float
        Daily mean log return and daily volatility of each regime (e.g. the HMM's summary).
    detector_accuracy : float
        ``Z[s, s]``: how often the detectors name the true regime.
    """

    def __init__(
        self,
        labels: Sequence[str],
        mean_return: Sequence[float],
        volatility: Sequence[float],
        detector_accuracy: float = 0.8,
    ) -> None:
        config = ControllerConfig(
            states=tuple(labels),
            mean_return=tuple(float(x) for x in mean_return),
            volatility=tuple(float(x) for x in volatility),
            detector_accuracy=detector_accuracy,
        )
        self.labels = tuple(labels)
        self.controller = POMDPController(config)
        self.last: ControllerDecision | None = None
        self._last_ts: datetime | None = None

    def likelihood(self, posterior: Mapping[str, float]) -> np.ndarray:
        """Soft-evidence likelihood ``L(s) = sum_o Z[s, o] q(o)`` of a detector posterior ``q``."""
        missing = set(self.labels) - set(posterior)
        if missing:
            raise ValueError(f"posterior lacks regimes {sorted(missing)}")
        q = np.array([float(posterior[s]) for s in self.labels])
        if (q < 0).any() or not np.isclose(q.sum(), 1.0, atol=1e-6):
            raise ValueError(f"posterior must be probabilities summing to 1, got {q}")
        z = self.controller.pomdp.Z[0]
        out: np.ndarray = z @ q
        return out

    def update(self, posterior: Mapping[str, float], ts: datetime) -> ControllerDecision:
        """Advance the belief by one observation per data time and choose the exposure.

        A second call with the same ``ts`` (the next 5-minute cycle on the same daily close)
        returns the same decision without updating the belief again.
        """
        if self.last is not None and self._last_ts == ts:
            return self.last
        lik = self.likelihood(posterior)
        self.last = self.controller.decide(dict(zip(self.labels, lik.tolist(), strict=True)))
        self._last_ts = ts
        return self.last


def capital_split(allocator: AdaptiveAllocator, risk_multiplier: float) -> dict[str, float]:
    """Fraction of equity per engine: the allocator's engine weights x the risk multiplier.

    What is left (``1 - risk_multiplier``) stays in cash.
    """
    if not (0.0 < risk_multiplier <= 1.0):
        raise ValueError(f"risk_multiplier must be in (0, 1], got {risk_multiplier!r}")
    split = allocator.engine_split()
    out = {engine: w * risk_multiplier for engine, w in split.items()}
    log.info("capital split %s (risk multiplier %.3f)", out, risk_multiplier)
    return out
