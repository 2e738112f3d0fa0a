"""Adaptive capital allocator: capital between the equity and options engines' strategies.

Each *sleeve* is ``"<engine>/<strategy>"`` (e.g. ``"equity/momentum"``, ``"options/iron_condor"``)
and reports its daily return on allocated capital. Over the last ``lookback`` days the allocator
weights the sleeves by one of two rules:

* ``"thompson"`` (default): Thompson sampling on the Sharpe ratio. For each draw, every sleeve's
  mean daily return is sampled from its posterior N(m, s^2 / n) (flat prior, plug-in variance)
  and divided by s; the weight of a sleeve is the share of draws in which it has the highest
  sampled Sharpe, shrunk towards equal weights by ``exploration``. Sleeves with few days get wide
  posteriors and so keep being explored (Russo et al. 2018).
* ``"risk_parity"``: inverse-volatility weights, w_i ∝ 1 / s_i (equal risk contribution when the
  sleeves are uncorrelated; Maillard, Roncalli & Teiletche 2010).

Drawdown control: a sleeve whose drawdown from its peak exceeds ``max_drawdown`` has its raw
weight multiplied by ``drawdown_haircut``. Finally weights are projected onto the box
[``min_weight``, ``max_weight``] with sum 1 (bisection on a common shift), so every sleeve keeps a
floor and none takes everything. ``engine_split`` sums the sleeves per engine.

References
----------
W. R. Thompson (1933), "On the likelihood that one unknown probability exceeds another",
Biometrika 25. D. Russo et al. (2018), "A tutorial on Thompson sampling", FnT ML 11(1).
S. Maillard, T. Roncalli, J. Teiletche (2010), "The properties of equally weighted risk
contribution portfolios", J. Portfolio Management 36(4).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AllocatorConfig:
    """Rule, window (days), bounds and drawdown control of the allocator."""

    method: Literal["thompson", "risk_parity"] = "thompson"
    lookback: int = 60
    min_weight: float = 0.05
    max_weight: float = 0.6
    max_drawdown: float = 0.10
    drawdown_haircut: float = 0.5
    exploration: float = 0.2
    n_draws: int = 4000
    min_history: int = 5
    seed: int = 0


def project_to_bounds(w: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Closest-in-shift weights clip(w + c, lo, hi) with sum 1 (c found by bisection)."""
    n = len(w)
    if not (lo * n <= 1.0 + 1e-12 and hi * n >= 1.0 - 1e-12 and lo <= hi):
        raise ValueError(f"bounds [{lo}, {hi}] are infeasible for {n} sleeves summing to 1")
    a, b = -1.0 - w.max(), 1.0 - w.min()
    for _ in range(200):
        c = 0.5 * (a + b)
        if np.clip(w + c, lo, hi).sum() > 1.0:
            b = c
        else:
            a = c
    out = np.clip(w + 0.5 * (a + b), lo, hi)
    return np.asarray(out / out.sum())


class AdaptiveAllocator:
    """Splits capital between sleeves from their recent risk-adjusted results."""

    def __init__(self, sleeves: Sequence[str], config: AllocatorConfig | None = None) -> None:
        if len(set(sleeves)) != len(sleeves) or not sleeves:
            raise ValueError(f"sleeves must be distinct and non-empty, got {list(sleeves)}")
        for s in sleeves:
            if s.count("/") != 1:
                raise ValueError(f"sleeve names are '<engine>/<strategy>', got {s!r}")
        self.sleeves = list(sleeves)
        self.config = c = config or AllocatorConfig()
        project_to_bounds(np.full(len(sleeves), 1 / len(sleeves)), c.min_weight, c.max_weight)
        self._returns: dict[str, deque[float]] = {s: deque(maxlen=c.lookback) for s in sleeves}
        self._equity = dict.fromkeys(sleeves, 1.0)
        self._peak = dict.fromkeys(sleeves, 1.0)
        self._rng = np.random.default_rng(c.seed)

    def update(self, returns: Mapping[str, float]) -> None:
        """Record one day's return (fraction of allocated capital) for some or all sleeves."""
        for s, r in returns.items():
            if s not in self._returns:
                raise ValueError(f"unknown sleeve {s!r}")
            if not np.isfinite(r) or r <= -1:
                raise ValueError(f"return of {s!r} must be finite and > -1, got {r}")
            self._returns[s].append(float(r))
            self._equity[s] *= 1.0 + r
            self._peak[s] = max(self._peak[s], self._equity[s])

    def drawdown(self, sleeve: str) -> float:
        """Return the current drawdown from the sleeve's peak, in [0, 1)."""
        return 1.0 - self._equity[sleeve] / self._peak[sleeve]

    def _stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self.config
        n = np.array([len(self._returns[s]) for s in self.sleeves], dtype=float)
        m = np.array(
            [np.mean(self._returns[s]) if n[i] else 0.0 for i, s in enumerate(self.sleeves)]
        )
        pooled = [r for s in self.sleeves for r in self._returns[s]]
        fallback = float(np.std(pooled, ddof=1)) if len(pooled) > 1 else 0.01
        sd = np.array(
            [
                np.std(self._returns[s], ddof=1) if n[i] >= c.min_history else fallback
                for i, s in enumerate(self.sleeves)
            ]
        )
        return n, m, np.maximum(sd, 1e-6)

    def allocate(self) -> dict[str, float]:
        """Weights per sleeve (sum 1, each within the bounds)."""
        c = self.config
        n, m, sd = self._stats()
        k = len(self.sleeves)
        if c.method == "risk_parity":
            raw = (1 / sd) / (1 / sd).sum()
        elif c.method == "thompson":
            se = sd / np.sqrt(np.maximum(n, 1.0))
            draws = self._rng.normal(m, se, size=(c.n_draws, k)) / sd
            wins = np.bincount(draws.argmax(axis=1), minlength=k) / c.n_draws
            raw = (1 - c.exploration) * wins + c.exploration / k
        else:
            raise ValueError(f"method must be 'thompson' or 'risk_parity', got {c.method!r}")
        dd = np.array([self.drawdown(s) for s in self.sleeves])
        raw = np.where(dd > c.max_drawdown, raw * c.drawdown_haircut, raw)
        w = project_to_bounds(raw / raw.sum(), c.min_weight, c.max_weight)
        out = {s: float(x) for s, x in zip(self.sleeves, w, strict=True)}
        log.info("allocation %s", out, extra={"weights": out, "drawdowns": dd.tolist()})
        return out

    def engine_split(self, weights: Mapping[str, float] | None = None) -> dict[str, float]:
        """Capital share per engine (the part of each sleeve name before '/')."""
        w = weights or self.allocate()
        out: dict[str, float] = {}
        for s, x in w.items():
            eng = s.split("/", 1)[0]
            out[eng] = out.get(eng, 0.0) + x
        return out
