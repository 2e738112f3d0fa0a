"""Sum tree, prioritised replay and SAC (v28quant.ml.sac_agent).

Independent facts: a sum tree's root is the sum of its leaves; sampling values uniformly on
[0, total) must hit leaf i with probability p_i / sum(p) (chi-square goodness-of-fit, scipy);
importance weights follow Schaul et al. (2016) w_i = (N P(i))^-beta / max w; SAC must learn the
closed-form optimal action of a contextual bandit, a*(s) = 0.6 s for reward -(a - 0.6 s)^2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from v28quant.ml.sac_agent import (
    SAC,
    Experience,
    PositionSizingEnv,
    PrioritizedReplayBuffer,
    SACConfig,
    SumTree,
    sac_signals,
)

torch.set_num_threads(1)


def test_sum_tree_totals_track_updates():
    rng = np.random.default_rng(0)
    tree = SumTree(37)  # not a power of two on purpose
    p = rng.uniform(0, 5, 37)
    tree.update(np.arange(37), p)
    assert abs(tree.total - p.sum()) < 1e-9 * p.sum()
    for _ in range(50):
        i = rng.integers(37, size=3)
        new = rng.uniform(0, 5, 3)
        tree.update(i, new)
        p[i] = new  # numpy fancy assignment: the last write of a duplicate index wins
    assert abs(tree.total - p.sum()) < 1e-9 * p.sum(), (tree.total, p.sum())


def test_sum_tree_sampling_frequencies_match_priorities():
    rng = np.random.default_rng(1)
    p = np.array([1.0, 0.0, 3.0, 0.5, 2.5, 4.0, 0.25, 1.75])
    tree = SumTree(len(p))
    tree.update(np.arange(len(p)), p)
    n = 200_000
    counts = np.bincount(tree.find(rng.uniform(0, tree.total, n)), minlength=len(p))
    assert counts[1] == 0, "a zero-priority leaf was sampled"
    keep = p > 0
    chi = stats.chisquare(counts[keep], n * p[keep] / p.sum())
    assert chi.pvalue > 1e-3, (counts, chi)


def test_sum_tree_rejects_bad_input():
    tree = SumTree(4)
    with pytest.raises(ValueError, match="out of range"):
        tree.update(4, 1.0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        tree.update(0, -1.0)
    with pytest.raises(ValueError, match="capacity"):
        SumTree(0)


def test_prioritized_replay_weights_and_priority_updates():
    buf = PrioritizedReplayBuffer(8, 1, 1, alpha=0.6, beta=0.4, beta_increment=0.0, eps=0.0)
    for i in range(5):
        buf.add(
            Experience(np.array([i], np.float32), np.array([0.0]), float(i), np.array([0.0]), False)
        )
    td = np.array([0.1, 2.0, 0.5, 1.0, 3.0])
    buf.update_priorities(np.arange(5), td)
    pr = td**0.6
    P = pr / pr.sum()
    batch, idx, w = buf.sample(2000)
    want = (5 * P[idx]) ** -0.4
    np.testing.assert_allclose(w, want / want.max(), rtol=1e-5)
    np.testing.assert_array_equal(batch["r"], idx.astype(np.float32))  # rewards stored by slot
    counts = np.bincount(idx, minlength=5)
    assert stats.chisquare(counts, 2000 * P).pvalue > 1e-3, counts


class QuadraticBandit:
    """One-step episodes: s ~ U(-1, 1), reward -10 (a - 0.6 s)^2, so a*(s) = 0.6 s."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.s = np.zeros(1, np.float32)

    def reset(self) -> np.ndarray:
        self.s = self.rng.uniform(-1, 1, 1).astype(np.float32)
        return self.s

    def step(self, a: np.ndarray) -> tuple[np.ndarray, float, bool]:
        r = -10.0 * float((a[0] - 0.6 * self.s[0]) ** 2)
        return self.reset(), r, True


@pytest.mark.slow
def test_sac_learns_the_closed_form_optimal_action():
    cfg = SACConfig(hidden=(32, 32), batch_size=64, warmup_steps=200, lr=3e-3, buffer_capacity=4000)
    agent = SAC(1, 1, cfg)
    agent.train(QuadraticBandit(), 1100)
    s = np.linspace(-1, 1, 21, dtype=np.float32)[:, None]
    a = agent.act(s, deterministic=True)[:, 0]
    err = np.abs(a - 0.6 * s[:, 0])
    assert err.max() < 0.1, f"max |a - a*| = {err.max():.3f}; a = {np.round(a, 3)}"
    assert agent.alpha < cfg.init_alpha, "entropy temperature did not adapt"


def test_position_sizing_env_charges_costs_and_pays_exposure_times_return():
    # hand computation: reward = 1e4 (a r_{t+1} - cost |a - a_prev|)
    r = np.random.default_rng(2).normal(0, 0.01, (300, 2))
    env = PositionSizingEnv(r, lookback=5, vol_window=10, cost_bps=5, episode_len=20, seed=0)
    s = env.reset()
    assert s.shape == (6,)
    assert s[-1] == 0.0
    t, sym = env._t, env._sym
    _, rew, done = env.step(np.array([0.5]))
    assert abs(rew - 1e4 * (0.5 * r[t + 1, sym] - 5e-4 * 0.5)) < 1e-9
    _, rew2, _ = env.step(np.array([-0.5]))
    assert abs(rew2 - 1e4 * (-0.5 * r[t + 2, sym] - 5e-4 * 1.0)) < 1e-9
    assert not done


def test_sac_signals_are_valid_for_each_symbol():
    agent = SAC(11, 1, SACConfig(hidden=(16,)))
    rets = pd.DataFrame(np.random.default_rng(3).normal(0, 0.01, (40, 3)), columns=["A", "B", "C"])
    sig = sac_signals(agent, rets, positions={"A": 0.5})
    assert [s.symbol for s in sig] == ["A", "B", "C"]
    assert all(-1 <= s.value <= 1 and 0 <= s.confidence <= 1 and s.model == "sac" for s in sig)
