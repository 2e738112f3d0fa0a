"""Hierarchical regime controller: the market regime on top, each symbol's regime below.

Rules
-----
For the market (an index such as SPY) and for each symbol, the HMM detector and the manifold
detector each give regime probabilities ``p_h`` and ``p_m`` over the same labels.

1. **Agreement** ``a = sum_k min(p_h[k], p_m[k])`` (1 minus their total-variation distance), in
   [0, 1]: 1 when they say the same, 0 when they put their mass on different regimes.
2. **Combined probabilities** ``p = a (p_h + p_m) / 2 + (1 - a) u`` with ``u`` uniform: a linear
   pool (not a product: both read the same prices, their evidence is not independent), pulled
   towards "don't know" as they disagree. Agreement raises the top probability, disagreement
   lowers it.
3. **Symbols below the market**: a symbol's probabilities are ``(1 - beta) p_symbol + beta
   p_market`` (``beta`` = ``market_weight``): a stock in a market crash is in a stressed regime
   even before its own history shows it.
4. **Risk multiplier** in (0, 1]: the POMDP controller's exposure scale for the market
   (:class:`~v28quant.regime.risk.PomdpRiskScale`: risk-on 1, neutral 0.5, risk-off 0.1)
   times ``0.5 + 0.5 a``: disagreement of the detectors halves the risk at most.

The state the aggregator uses is the market's combined :class:`~v28quant.signals.RegimeState`
(source ``"hierarchical"``); engines may read each symbol's state in ``per_symbol``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from v28quant.regime._series import REGIME_LABELS, returns_time
from v28quant.regime.hmm import HmmRegimeDetector
from v28quant.regime.manifold import ManifoldRegimeDetector
from v28quant.regime.risk import PomdpRiskScale
from v28quant.signals import RegimeState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegimeAssessment:
    """The controller's output for one decision time."""

    state: RegimeState
    risk_multiplier: float
    per_symbol: dict[str, RegimeState]
    agreement: float
    reasoning: dict[str, Any] = field(default_factory=dict)


def combine(
    p_hmm: Mapping[str, float], p_manifold: Mapping[str, float], labels: tuple[str, ...]
) -> tuple[dict[str, float], float]:
    """Rules 1 and 2: combined probabilities and the agreement of two detectors."""
    h = np.array([p_hmm[k] for k in labels])
    m = np.array([p_manifold[k] for k in labels])
    a = float(np.minimum(h, m).sum())
    p = a * 0.5 * (h + m) + (1.0 - a) / len(labels)
    p /= p.sum()
    return {k: float(x) for k, x in zip(labels, p, strict=True)}, a


def _fingerprint(returns: Any) -> tuple[object, ...]:
    arr = np.asarray(returns, dtype=np.float64)
    return (arr.shape, arr[-5:].tobytes())


class HierarchicalRegimeController:
    """Market and symbol regimes from the HMM and manifold detectors, and the risk multiplier.

    Parameters
    ----------
    n_states : int
        Regimes per detector (2-4; both detectors use the same labels).
    seed, n_starts : int
        For the HMM detectors.
    market_weight : float
        ``beta`` of rule 3.
    use_pomdp : bool
        Risk multiplier from the POMDP controller (rule 4); without it, from the expected
        exposure ``sum_k p_k e_k`` with ``e`` = 1, 0.5, 0.1 for the calmest, middle and most
        stressed label.
    """

    def __init__(
        self,
        n_states: int = 3,
        seed: int = 0,
        n_starts: int = 3,
        market_weight: float = 0.3,
        use_pomdp: bool = True,
    ) -> None:
        if not 0.0 <= market_weight <= 1.0:
            raise ValueError(f"market_weight must be in [0, 1], got {market_weight}")
        self.labels = REGIME_LABELS[n_states]
        self.n_states, self.seed, self.n_starts = n_states, seed, n_starts
        self.market_weight, self.use_pomdp = market_weight, use_pomdp
        self.market_hmm = HmmRegimeDetector(n_states, seed=seed, n_starts=n_starts)
        self.market_manifold = ManifoldRegimeDetector(n_states)
        self.symbols: dict[str, tuple[HmmRegimeDetector, ManifoldRegimeDetector]] = {}
        self.risk_scale: PomdpRiskScale | None = None
        self.failed: dict[str, str] = {}
        self._memo: tuple[tuple[object, ...], RegimeAssessment] | None = None

    def fit(
        self,
        market_returns: Any,
        symbol_returns: Mapping[str, Any] | None = None,
        *,
        warm_start: HierarchicalRegimeController | None = None,
    ) -> HierarchicalRegimeController:
        """Fit the market detectors, the POMDP risk scale and each symbol's detectors.

        ``warm_start``, the last fit, adds a start from its HMMs' parameters to the market's
        and each symbol's HMM fit (:meth:`HmmRegimeDetector.fit`), so a refit keeps the regime
        estimates unless the new data's likelihood prefers others. A symbol whose history
        cannot be fitted is left out and named in ``failed`` (logged); it never stops the
        others.
        """
        previous = warm_start.symbols if warm_start is not None else {}
        self.market_hmm.fit(
            market_returns, warm_start=warm_start.market_hmm if warm_start is not None else None
        )
        self.market_manifold.fit(market_returns)
        if self.use_pomdp:
            s = self.market_hmm.summary().loc[list(self.labels)]
            self.risk_scale = PomdpRiskScale(
                self.labels, s["mean_return"], s["vol_annual"] / np.sqrt(252.0)
            )
        self.symbols, self.failed = {}, {}
        for sym, r in (symbol_returns or {}).items():
            try:
                h = HmmRegimeDetector(self.n_states, seed=self.seed, n_starts=self.n_starts)
                h.fit(r, warm_start=previous[sym][0] if sym in previous else None)
                self.symbols[sym] = (h, ManifoldRegimeDetector(self.n_states).fit(r))
            except ValueError as exc:
                log.warning("regime fit for %s failed, left out: %s", sym, exc)
                self.failed[sym] = str(exc)
        return self

    def observe(self, market_returns: Any) -> None:
        """Move the POMDP belief by the market's last row, as :meth:`assess` does, and no more.

        For the sessions a controller was not assessed on: the recent ones after a fit (its
        belief is then the filter over them under the new fit, not the prior), and, for one
        restored from the store, those since its fit, so its belief is an unbroken run's.
        """
        if self.risk_scale is None:
            return
        when = returns_time(market_returns, None)
        ph = self.market_hmm.predict(market_returns, ts=when)
        self.risk_scale.update(ph.probabilities, when)

    def assess(
        self,
        market_returns: Any,
        symbol_returns: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> RegimeAssessment:
        """Assess the combined market regime, each symbol's regime and the risk multiplier.

        ``ts`` defaults to the data time of the market returns' last row. An assessment is kept
        until the data change: the cycles of one day on the same daily history get the same
        answer at no cost (and the POMDP belief moves once per data time).
        """
        when = returns_time(market_returns, ts)
        key = (
            when,
            id(self.market_hmm.model),
            _fingerprint(market_returns),
            tuple((s, _fingerprint(r)) for s, r in sorted((symbol_returns or {}).items())),
        )
        if self._memo is not None and self._memo[0] == key:
            return self._memo[1]  # the next cycle on the same daily data
        ph = self.market_hmm.predict(market_returns, ts=when)
        pm = self.market_manifold.predict(market_returns, ts=when)
        probs, agree = combine(ph.probabilities, pm.probabilities, self.labels)
        label = max(probs, key=probs.__getitem__)
        state = RegimeState(label, probs, "hierarchical", when)
        if self.risk_scale is not None:
            decision = self.risk_scale.update(ph.probabilities, when)
            scale, action = decision.exposure_scale, decision.action
        else:
            e = np.linspace(1.0, 0.1, len(self.labels))
            scale, action = (
                float(sum(probs[k] * x for k, x in zip(self.labels, e, strict=True))),
                "",
            )
        multiplier = float(min(1.0, max(1e-3, scale * (0.5 + 0.5 * agree))))
        per_symbol: dict[str, RegimeState] = {}
        for sym, r in (symbol_returns or {}).items():
            if sym not in self.symbols:
                continue
            try:
                per_symbol[sym] = self._symbol_state(sym, r, probs, when)
            except ValueError as exc:
                log.warning("regime of %s skipped: %s", sym, exc)
        reasoning = {
            "hmm": dict(ph.probabilities),
            "manifold": dict(pm.probabilities),
            "agreement": agree,
            "exposure_scale": scale,
            "pomdp_action": action,
        }
        log.info(
            "regime %s risk x%.3f agreement %.2f",
            label,
            multiplier,
            agree,
            extra={"regime": probs, **reasoning},
        )
        out = RegimeAssessment(state, multiplier, per_symbol, agree, reasoning)
        self._memo = (key, out)
        return out

    def _symbol_state(
        self, sym: str, returns: Any, market: Mapping[str, float], market_ts: datetime
    ) -> RegimeState:
        h, m = self.symbols[sym]
        dated = isinstance(returns, pd.Series) and isinstance(returns.index, pd.DatetimeIndex)
        when = returns_time(returns) if dated else market_ts
        own, _ = combine(
            h.predict(returns).probabilities, m.predict(returns).probabilities, self.labels
        )
        b = self.market_weight
        p = {k: (1.0 - b) * own[k] + b * market[k] for k in self.labels}
        return RegimeState(max(p, key=p.__getitem__), p, "hierarchical", when)
