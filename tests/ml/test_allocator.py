"""Adaptive allocator (v28quant.ml.adaptive_allocator).

Independent facts: inverse-volatility weights w_i = (1/s_i) / sum_j (1/s_j) (closed form);
Thompson sampling gives most weight to the sleeve with the clearly best Sharpe ratio; weights
sum to one and respect the bounds; a sleeve in a deep drawdown is cut.
"""

from __future__ import annotations

import numpy as np
import pytest
from v28quant.ml.adaptive_allocator import AdaptiveAllocator, AllocatorConfig, project_to_bounds

SLEEVES = [
    "equity/momentum",
    "equity/mean_reversion",
    "options/iron_condor",
    "options/covered_call",
]


def feed(alloc: AdaptiveAllocator, means, vols, days: int = 60, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(days):
        alloc.update(
            {s: float(rng.normal(m, v)) for s, m, v in zip(SLEEVES, means, vols, strict=True)}
        )


def test_risk_parity_is_inverse_volatility_when_bounds_do_not_bind():
    a = AdaptiveAllocator(
        SLEEVES,
        AllocatorConfig(method="risk_parity", min_weight=0.0, max_weight=1.0, max_drawdown=1.0),
    )
    feed(a, [0.0] * 4, [0.005, 0.01, 0.02, 0.04])
    w = a.allocate()
    sd = np.array([np.std(list(a._returns[s]), ddof=1) for s in SLEEVES])
    want = (1 / sd) / (1 / sd).sum()
    np.testing.assert_allclose([w[s] for s in SLEEVES], want, rtol=1e-9)


def test_thompson_favours_the_best_sharpe_and_respects_bounds():
    cfg = AllocatorConfig(min_weight=0.05, max_weight=0.6)
    a = AdaptiveAllocator(SLEEVES, cfg)
    feed(a, [0.004, 0.0, -0.001, 0.0005], [0.01, 0.01, 0.01, 0.01])
    w = a.allocate()
    assert max(w, key=w.get) == "equity/momentum", w
    assert abs(sum(w.values()) - 1) < 1e-12
    assert all(cfg.min_weight - 1e-12 <= x <= cfg.max_weight + 1e-12 for x in w.values()), w
    split = a.engine_split(w)
    assert abs(split["equity"] - (w["equity/momentum"] + w["equity/mean_reversion"])) < 1e-12


def test_drawdown_cuts_a_sleeve():
    cfg = AllocatorConfig(
        method="risk_parity", min_weight=0.0, max_weight=1.0, max_drawdown=0.1, drawdown_haircut=0.5
    )
    a = AdaptiveAllocator(SLEEVES, cfg)
    feed(a, [0.0] * 4, [0.01] * 4, days=30)
    before = a.allocate()["options/iron_condor"]
    a.update({"options/iron_condor": -0.2})
    assert a.drawdown("options/iron_condor") > 0.1
    after = a.allocate()["options/iron_condor"]
    assert after < 0.6 * before, (before, after)


def test_projection_onto_bounds_sums_to_one():
    w = project_to_bounds(np.array([0.9, 0.05, 0.03, 0.02]), 0.05, 0.6)
    assert abs(w.sum() - 1) < 1e-12
    assert w.max() <= 0.6 + 1e-12
    assert w.min() >= 0.05 - 1e-12
    with pytest.raises(ValueError, match="infeasible"):
        project_to_bounds(np.ones(4) / 4, 0.3, 0.6)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="<engine>/<strategy>"):
        AdaptiveAllocator(["momentum"])
    a = AdaptiveAllocator(SLEEVES)
    with pytest.raises(ValueError, match="unknown sleeve"):
        a.update({"equity/other": 0.01})
    with pytest.raises(ValueError, match="> -1"):
        a.update({"equity/momentum": -1.5})
