"""Soft actor-critic position sizer with prioritised experience replay on a sum tree.

* :class:`SumTree`: binary tree whose leaves hold priorities and whose nodes hold the sums of
  their children, so that drawing leaf i with probability p_i / sum(p) costs O(log n).
* :class:`PrioritizedReplayBuffer`: proportional prioritisation, p_i = (|delta_i| + eps)^alpha,
  stratified sampling, importance-sampling weights w_i = (N P(i))^-beta / max_j w_j with beta
  annealed to 1 (Schaul et al. 2016, Alg. 1).
* :class:`SAC`: twin Q networks with target copies (clipped double Q), a tanh-squashed Gaussian
  policy and automatic entropy tuning towards a target entropy of -dim(action) (Haarnoja et al.
  2018, "Soft Actor-Critic Algorithms and Applications", Alg. 1 and eq. 17-18).
* :class:`PositionSizingEnv`: one step = one trading day; the action is the target exposure in
  [-1, 1]; the reward is exposure x next-day return minus a transaction cost on the change of
  exposure, in basis points of capital. The agent's Signal is its deterministic action.

References
----------
T. Schaul, J. Quan, I. Antonoglou, D. Silver (2016), "Prioritized Experience Replay", ICLR.
T. Haarnoja et al. (2018), "Soft Actor-Critic Algorithms and Applications", arXiv:1812.05905.
S. Fujimoto, H. van Hoof, D. Meger (2018), "Addressing Function Approximation Error in
Actor-Critic Methods", ICML (clipped double Q).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from v28quant.signals import Signal


class SumTree:
    """Priorities in the leaves of a complete binary tree with sums in the inner nodes.

    Stored as a 1-based heap array: node k has children 2k and 2k+1; leaves start at
    ``self._leaf0`` (the capacity rounded up to a power of two).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._leaf0 = 1 << max(0, (capacity - 1).bit_length())
        self._depth = self._leaf0.bit_length() - 1
        self._tree = np.zeros(2 * self._leaf0)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self._tree[1])

    def get(self, idx: np.ndarray | int) -> np.ndarray:
        """Priorities of leaves ``idx``."""
        return np.asarray(self._tree[self._leaf0 + np.asarray(idx)])

    def update(self, idx: np.ndarray | Sequence[int] | int, priority: Any) -> None:
        """Set leaf priorities (>= 0) and refresh the sums above them."""
        i = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        p = np.broadcast_to(np.asarray(priority, dtype=np.float64), i.shape)
        if (i < 0).any() or (i >= self.capacity).any():
            raise ValueError(f"leaf index out of range [0, {self.capacity}): {i.min()}..{i.max()}")
        if not np.all(np.isfinite(p)) or (p < 0).any():
            raise ValueError("priorities must be finite and >= 0")
        node = self._leaf0 + i
        self._tree[node] = p
        for _ in range(self._depth):
            node = node // 2  # siblings share a parent: it is written twice, with one sum
            self._tree[node] = self._tree[2 * node] + self._tree[2 * node + 1]

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf index whose cumulative-priority interval contains each value in [0, total)."""
        v = np.clip(np.asarray(values, dtype=np.float64), 0.0, np.nextafter(self.total, 0))
        node = np.ones(v.shape, dtype=np.int64)
        for _ in range(self._depth):
            left = 2 * node
            go_right = v >= self._tree[left]
            v = np.where(go_right, v - self._tree[left], v)
            node = left + go_right
        leaf = node - self._leaf0
        # floating-point rounding can land on a zero-priority leaf next to a positive one
        return np.minimum(leaf, self.capacity - 1)


class Experience(NamedTuple):
    """One transition (s, a, r, s', done)."""

    state: np.ndarray
    action: np.ndarray
    reward: float
    next_state: np.ndarray
    done: bool


class PrioritizedReplayBuffer:
    """Proportional prioritised replay (Schaul et al. 2016) over a ring buffer."""

    def __init__(
        self,
        capacity: int,
        state_dim: int,
        action_dim: int,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_increment: float = 1e-4,
        eps: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.tree = SumTree(capacity)
        self.capacity, self.alpha, self.beta = capacity, alpha, beta
        self.beta_increment, self.eps = beta_increment, eps
        self.states = np.zeros((capacity, state_dim), np.float32)
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.next_states = np.zeros((capacity, state_dim), np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self._pos, self._size, self._max_p = 0, 0, 1.0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Return the number of stored transitions."""
        return self._size

    def add(self, exp: Experience) -> None:
        """Store a transition with the current maximum priority (so it is replayed soon)."""
        i = self._pos
        self.states[i], self.actions[i], self.rewards[i] = exp.state, exp.action, exp.reward
        self.next_states[i], self.dones[i] = exp.next_state, float(exp.done)
        self.tree.update(i, self._max_p)
        self._pos = (i + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def sample(self, batch_size: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Stratified draw: (batch arrays, leaf indices, importance-sampling weights)."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty buffer")
        total = self.tree.total
        u = (np.arange(batch_size) + self._rng.random(batch_size)) * (total / batch_size)
        idx = self.tree.find(u)
        prob = self.tree.get(idx) / total
        w = (self._size * prob) ** (-self.beta)
        w /= w.max()
        self.beta = min(1.0, self.beta + self.beta_increment)
        batch = {
            "s": self.states[idx],
            "a": self.actions[idx],
            "r": self.rewards[idx],
            "s2": self.next_states[idx],
            "d": self.dones[idx],
        }
        return batch, idx, w.astype(np.float32)

    def update_priorities(self, idx: np.ndarray, td_errors: np.ndarray) -> None:
        """p_i = (|delta_i| + eps)^alpha."""
        p = (np.abs(td_errors) + self.eps) ** self.alpha
        self.tree.update(idx, p)
        self._max_p = max(self._max_p, float(p.max()))


class MLP(nn.Module):
    """Fully connected network with ReLU hidden layers."""

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(n_in, h), nn.ReLU()]
            n_in = h
        layers.append(nn.Linear(n_in, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch of inputs to the network's outputs."""
        out: torch.Tensor = self.net(x)
        return out


@dataclass(frozen=True)
class SACConfig:
    """SAC and replay settings."""

    hidden: tuple[int, ...] = (64, 64)
    gamma: float = 0.99
    tau: float = 0.005
    lr: float = 3e-4
    batch_size: int = 128
    buffer_capacity: int = 100_000
    per_alpha: float = 0.6
    per_beta: float = 0.4
    per_beta_increment: float = 1e-4
    init_alpha: float = 0.2
    warmup_steps: int = 500
    seed: int = 0


LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


class SAC:
    """Soft actor-critic with twin Q and automatic entropy tuning, actions in [-1, 1]^d."""

    name = "sac"

    def __init__(self, state_dim: int, action_dim: int = 1, config: SACConfig | None = None):
        self.config = c = config or SACConfig()
        self.state_dim, self.action_dim = state_dim, action_dim
        torch.manual_seed(c.seed)
        self.actor = MLP(state_dim, 2 * action_dim, c.hidden)
        self.q1 = MLP(state_dim + action_dim, 1, c.hidden)
        self.q2 = MLP(state_dim + action_dim, 1, c.hidden)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        for p in [*self.q1_target.parameters(), *self.q2_target.parameters()]:
            p.requires_grad_(False)
        self.log_alpha = torch.tensor(np.log(c.init_alpha), dtype=torch.float32, requires_grad=True)
        self.target_entropy = -float(action_dim)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.lr)
        self.q_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=c.lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=c.lr)
        self.buffer = PrioritizedReplayBuffer(
            c.buffer_capacity,
            state_dim,
            action_dim,
            c.per_alpha,
            c.per_beta,
            c.per_beta_increment,
            seed=c.seed,
        )
        self._gen = torch.Generator().manual_seed(c.seed)
        self.updates = 0

    def params(self) -> dict[str, Any]:
        """Return the configuration, for the model store and the journal."""
        return {**asdict(self.config), "state_dim": self.state_dim, "action_dim": self.action_dim}

    @property
    def alpha(self) -> float:
        """Current entropy temperature."""
        return float(self.log_alpha.detach().exp())

    def _policy(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.actor(s)
        mu, log_std = out[:, : self.action_dim], out[:, self.action_dim :]
        return mu, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def _sample(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised tanh-Gaussian action and its log-density (Haarnoja et al. App. C)."""
        mu, log_std = self._policy(s)
        std = log_std.exp()
        u = mu + std * torch.randn(mu.shape, generator=self._gen)
        a = torch.tanh(u)
        logp = (-0.5 * ((u - mu) / std) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(1)
        logp = logp - (2 * (np.log(2) - u - nn.functional.softplus(-2 * u))).sum(1)
        return a, logp

    def act(self, state: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action(s) in [-1, 1] for one state (d,) or a batch (n, d)."""
        s = torch.as_tensor(np.atleast_2d(state), dtype=torch.float32)
        with torch.no_grad():
            if deterministic:
                a = torch.tanh(self._policy(s)[0])
            else:
                a = self._sample(s)[0]
        out = a.numpy()
        return out[0] if np.ndim(state) == 1 else out

    def action_spread(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic action tanh(mu) and the policy's spread (1 - tanh(mu)^2) sigma."""
        s = torch.as_tensor(np.atleast_2d(states), dtype=torch.float32)
        with torch.no_grad():
            mu, log_std = self._policy(s)
        a = torch.tanh(mu)
        return a.numpy(), ((1 - a**2) * log_std.exp()).numpy()

    def remember(self, exp: Experience) -> None:
        """Store a transition in the prioritised replay buffer."""
        self.buffer.add(exp)

    def update(self) -> dict[str, float]:
        """One gradient step on critics, actor and temperature from a prioritised batch."""
        c = self.config
        batch, idx, w = self.buffer.sample(c.batch_size)
        s, a = torch.from_numpy(batch["s"]), torch.from_numpy(batch["a"])
        r, s2 = torch.from_numpy(batch["r"]), torch.from_numpy(batch["s2"])
        d, wt = torch.from_numpy(batch["d"]), torch.from_numpy(w)
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = self._sample(s2)
            sa2 = torch.cat([s2, a2], 1)
            q_next = torch.min(self.q1_target(sa2), self.q2_target(sa2)).squeeze(1)
            target = r + c.gamma * (1 - d) * (q_next - alpha * logp2)
        sa = torch.cat([s, a], 1)
        q1, q2 = self.q1(sa).squeeze(1), self.q2(sa).squeeze(1)
        td = (q1 - target).detach()
        q_loss = (wt * ((q1 - target) ** 2 + (q2 - target) ** 2)).mean()
        self.q_opt.zero_grad()
        q_loss.backward()
        self.q_opt.step()
        self.buffer.update_priorities(idx, td.numpy())

        a_new, logp = self._sample(s)
        sa_new = torch.cat([s, a_new], 1)
        q_new = torch.min(self.q1(sa_new), self.q2(sa_new)).squeeze(1)
        actor_loss = (alpha * logp - q_new).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()

        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad()
        torch.autograd.backward(alpha_loss)  # Tensor.backward is unannotated
        self.alpha_opt.step()

        with torch.no_grad():
            for net, tgt in ((self.q1, self.q1_target), (self.q2, self.q2_target)):
                for p, pt in zip(net.parameters(), tgt.parameters(), strict=True):
                    pt.mul_(1 - c.tau).add_(c.tau * p)
        self.updates += 1
        return {"q_loss": q_loss.item(), "actor_loss": actor_loss.item(), "alpha": self.alpha}

    def train(self, env: Any, steps: int, progress: bool = False) -> list[float]:
        """Train by interacting with ``env`` for ``steps`` steps; return the episode returns.

        ``env`` offers ``reset() -> s`` and ``step(a) -> (s2, r, done)``; updates start after
        ``warmup_steps`` random-action steps.
        """
        c = self.config
        rng = np.random.default_rng(c.seed)
        s = env.reset()
        ep_ret, returns = 0.0, []
        it = range(steps)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="sac", unit="step")
        for t in it:
            if t < c.warmup_steps:
                a = rng.uniform(-1, 1, self.action_dim).astype(np.float32)
            else:
                a = self.act(s)
            s2, r, done = env.step(a)
            self.remember(Experience(s, a, r, s2, done))
            ep_ret += r
            s = s2
            if done:
                returns.append(ep_ret)
                ep_ret, s = 0.0, env.reset()
            if t >= c.warmup_steps and len(self.buffer) >= c.batch_size:
                self.update()
        return returns


class PositionSizingEnv:
    """Daily position sizing on market history with transaction costs.

    State: the last ``lookback`` daily log returns divided by their trailing ``vol_window``
    volatility (clipped to [-5, 5]), then the current exposure. Action: target exposure in
    [-1, 1]. Reward (basis points of capital): 1e4 x (a_t x r_{t+1} - cost x |a_t - a_{t-1}|),
    with ``cost`` the one-way cost per unit of exposure traded (``cost_bps`` / 1e4). Episodes
    start at a random symbol and date and last ``episode_len`` days.
    """

    def __init__(
        self,
        returns: pd.DataFrame | np.ndarray,
        lookback: int = 10,
        vol_window: int = 20,
        cost_bps: float = 5.0,
        episode_len: int = 126,
        seed: int = 0,
    ) -> None:
        r = np.asarray(returns, dtype=np.float64)
        if r.ndim == 1:
            r = r[:, None]
        self.returns = r
        self.lookback, self.vol_window = lookback, vol_window
        self.cost = cost_bps / 1e4
        self.episode_len = episode_len
        self._start = max(lookback, vol_window) + 1
        if len(r) < self._start + episode_len + 1:
            raise ValueError(f"need more than {self._start + episode_len + 1} rows, got {len(r)}")
        self._rng = np.random.default_rng(seed)
        self._sym = self._t = self._end = 0
        self._pos = 0.0

    @property
    def state_dim(self) -> int:
        """Return the observation length: the lookback returns and the position."""
        return self.lookback + 1

    @staticmethod
    def observation(past_returns: np.ndarray, lookback: int, position: float) -> np.ndarray:
        """State from a symbol's returns up to today (oldest first) and its exposure."""
        vol = np.std(past_returns, ddof=1) + 1e-8
        z = np.clip(past_returns[-lookback:] / vol, -5, 5)
        return np.append(z, position).astype(np.float32)

    def _obs(self) -> np.ndarray:
        past = self.returns[self._t - self.vol_window + 1 : self._t + 1, self._sym]
        return self.observation(past, self.lookback, self._pos)

    def reset(self) -> np.ndarray:
        """Start an episode at a random symbol and date; return the first observation."""
        self._sym = int(self._rng.integers(self.returns.shape[1]))
        last_start = len(self.returns) - self.episode_len - 1
        self._t = int(self._rng.integers(self._start, last_start + 1))
        self._end = self._t + self.episode_len
        self._pos = 0.0
        return self._obs()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Hold position ``action`` in [-1, 1] for one period; return (next state, reward, done)."""
        a = float(np.clip(np.asarray(action).ravel()[0], -1.0, 1.0))
        nxt = self.returns[self._t + 1, self._sym]
        reward = 1e4 * (a * nxt - self.cost * abs(a - self._pos))
        self._pos = a
        self._t += 1
        return self._obs(), float(reward), self._t >= self._end


def sac_signals(
    agent: SAC,
    returns: pd.DataFrame,
    positions: dict[str, float] | None = None,
    lookback: int = 10,
    vol_window: int = 20,
) -> list[Signal]:
    """One Signal per symbol (column of a date x symbol log-return frame) from its latest state.

    value = deterministic target exposure; confidence = 1 - the policy's spread at that state.
    """
    positions = positions or {}
    syms = [str(s) for s in returns.columns]
    past = returns.to_numpy(np.float64)[-vol_window:]
    states = np.stack(
        [
            PositionSizingEnv.observation(past[:, j], lookback, positions.get(s, 0.0))
            for j, s in enumerate(syms)
        ]
    )
    act, spread = agent.action_spread(states)
    return [
        Signal(
            agent.name,
            s,
            float(np.clip(act[j, 0], -1, 1)),
            float(np.clip(1.0 - spread[j, 0], 0.0, 1.0)),
            {"exposure": float(act[j, 0]), "alpha": round(agent.alpha, 6)},
        )
        for j, s in enumerate(syms)
    ]
