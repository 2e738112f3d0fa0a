"""POMDP exposure controller: a belief over hidden market states, risk-on/neutral/risk-off.

Solver: point-based value iteration (PBVI, Pineau, Gordon & Thrun 2003) — exact point-based
Bellman backups of alpha vectors at a finite set of beliefs, repeated until the values at those
beliefs change by less than ``tol``. The belief set is the caller's, or one collected by simulating
random actions from the initial belief (as Perseus does, Spaan & Vlassis 2005), plus the simplex
corners. It is checked on the Tiger problem (Kaelbling, Littman & Cassandra 1998) in the tests.

Controller: hidden states (by default ``bull``, ``neutral``, ``bear``) follow a sticky Markov
chain; the belief is updated from the regime detectors' likelihoods, b'(s') ∝ L(s') Σ_s T(s, s')
b(s). Planning uses a discrete observation model (the detector names the right state with
probability ``detector_accuracy``). The reward of exposure e in state s is the mean-variance
utility 1e4 (e mu_s - risk_aversion/2 e^2 sigma_s^2) in basis points per day. Exposure does not
move the market, so the optimal policy is the belief-greedy one; PBVI finds it without assuming
that, and the solver serves richer models unchanged. Every decision is logged (at debug level)
with its belief.

References
----------
L. P. Kaelbling, M. L. Littman, A. R. Cassandra (1998), "Planning and acting in partially
observable stochastic domains", Artificial Intelligence 101.
J. Pineau, G. Gordon, S. Thrun (2003), "Point-based value iteration", IJCAI.
M. T. J. Spaan, N. Vlassis (2005), "Perseus: randomized point-based value iteration", JAIR 24.
M. Hauskrecht (2000), "Value-function approximations for POMDPs", JAIR 13 (blind-policy bound).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class POMDP:
    """Finite POMDP: ``T[a, s, s']``, ``Z[a, s', o]``, ``R[s, a]``, discount in [0, 1)."""

    T: np.ndarray
    Z: np.ndarray
    R: np.ndarray
    discount: float

    def __post_init__(self) -> None:
        """Check that the shapes agree and that every row of T and Z is a distribution."""
        A, S, _ = self.T.shape
        if self.T.shape != (A, S, S) or self.Z.shape[:2] != (A, S) or self.R.shape != (S, A):
            raise ValueError(f"shapes disagree: T{self.T.shape} Z{self.Z.shape} R{self.R.shape}")
        for name, m in (("T", self.T), ("Z", self.Z)):
            if not np.allclose(m.sum(axis=-1), 1.0) or (m < 0).any():
                raise ValueError(f"{name} rows must be probability distributions")
        if not 0 <= self.discount < 1:
            raise ValueError(f"discount must be in [0, 1), got {self.discount}")

    def belief_update(self, b: np.ndarray, a: int, o: int) -> tuple[np.ndarray, float]:
        """Bayes update after action ``a`` and observation ``o``: (b', P(o | b, a))."""
        pred = b @ self.T[a]
        joint = pred * self.Z[a, :, o]
        p_o = float(joint.sum())
        if p_o <= 0:
            raise ValueError(f"observation {o} has probability 0 after action {a}")
        return joint / p_o, p_o


@dataclass(frozen=True)
class AlphaVectors:
    """Piecewise-linear value function V(b) = max_k alpha_k . b with the action of each vector."""

    vectors: np.ndarray
    actions: np.ndarray

    def value(self, beliefs: np.ndarray) -> np.ndarray:
        """Return V(b) for each belief row of ``beliefs``."""
        return np.asarray(np.max(np.atleast_2d(beliefs) @ self.vectors.T, axis=1))

    def action(self, belief: np.ndarray) -> int:
        """Return the action of the alpha vector that attains V(``belief``)."""
        return int(self.actions[int(np.argmax(self.vectors @ belief))])


def collect_beliefs(
    pomdp: POMDP, b0: np.ndarray, n: int = 200, horizon: int = 30, seed: int = 0
) -> np.ndarray:
    """Beliefs reached by random actions and sampled observations from ``b0`` (with corners)."""
    rng = np.random.default_rng(seed)
    A, S, _ = pomdp.T.shape
    out = [np.asarray(b0, float), *np.eye(S)]
    while len(out) < n:
        b = np.asarray(b0, float)
        for _ in range(horizon):
            a = int(rng.integers(A))
            s = int(rng.choice(S, p=b))
            s2 = int(rng.choice(S, p=pomdp.T[a, s]))
            o = int(rng.choice(pomdp.Z.shape[2], p=pomdp.Z[a, s2]))
            b, _ = pomdp.belief_update(b, a, o)
            out.append(b)
            if len(out) >= n:
                break
    return np.unique(np.round(np.array(out), 12), axis=0)


def pbvi(
    pomdp: POMDP, beliefs: np.ndarray, tol: float = 1e-7, max_iter: int = 5000
) -> AlphaVectors:
    """Point-based value iteration on a fixed belief set until values change by < ``tol``.

    Backup at belief b (Pineau et al. 2003, eq. 4-6):
    g_{a,o}^k(s) = discount sum_{s'} T(s, a, s') Z(a, s', o) alpha_k(s');
    alpha_a^b = R(., a) + sum_o argmax_{g_{a,o}^k} b . g_{a,o}^k; keep argmax_a b . alpha_a^b.
    Started from the blind-policy lower bound (always take action a: alpha_a = (I - discount
    T_a)^-1 R(., a); Hauskrecht 2000). Each backup joins the set it came from, pruned to the
    vectors best at some belief, so the values at the beliefs rise monotonically towards the
    optimum and the iteration stops once no value rises by ``tol``.
    """
    B = np.atleast_2d(np.asarray(beliefs, dtype=np.float64))
    A, S, _ = pomdp.T.shape
    V = np.stack(
        [np.linalg.solve(np.eye(S) - pomdp.discount * pomdp.T[a], pomdp.R[:, a]) for a in range(A)]
    )
    acts = np.arange(A)
    old = (B @ V.T).max(axis=1)
    TZ = pomdp.T[:, :, :, None] * pomdp.Z[:, None, :, :]  # (A, S, S', O)
    for _ in range(max_iter):
        G = pomdp.discount * np.einsum("astO,kt->aOks", TZ, V, optimize=True)  # (A, O, K, S)
        scores = np.einsum("ns,aoks->naok", B, G, optimize=True)
        best = scores.argmax(axis=3)  # (N, A, O)
        a_idx = np.arange(A)[None, :, None]
        o_idx = np.arange(G.shape[1])[None, None, :]
        cand = pomdp.R.T[None] + G[a_idx, o_idx, best].sum(axis=2)  # (N, A, S)
        vals = np.einsum("ns,nas->na", B, cand)
        a_star = vals.argmax(axis=1)
        # the backups join the vectors they came from, and the best at some belief stay:
        # every vector is a plan's value (a lower bound), so the values at the beliefs only
        # rise and the iteration settles (backups alone can drop a vector the next backup
        # needed, and the values then cycle without meeting tol)
        pool = np.vstack([V, cand[np.arange(len(B)), a_star]])
        pool_acts = np.concatenate([acts, a_star])
        keep = np.unique((B @ pool.T).argmax(axis=1))
        V, acts = pool[keep], pool_acts[keep]
        new = (B @ V.T).max(axis=1)
        if np.max(new - old) < tol:
            break
        old = new
    return AlphaVectors(V, acts)


ACTIONS = ("risk_on", "neutral", "risk_off")


@dataclass(frozen=True)
class ControllerConfig:
    """Hidden states with daily mean return and volatility, exposures per action, dynamics."""

    states: tuple[str, ...] = ("bull", "neutral", "bear")
    mean_return: tuple[float, ...] = (0.0008, 0.0002, -0.0015)
    volatility: tuple[float, ...] = (0.008, 0.012, 0.025)
    exposure: Mapping[str, float] = field(
        default_factory=lambda: {"risk_on": 1.0, "neutral": 0.5, "risk_off": 0.1}
    )
    stay_probability: float = 0.97
    detector_accuracy: float = 0.8
    risk_aversion: float = 5.0
    discount: float = 0.95


@dataclass(frozen=True)
class ControllerDecision:
    """The chosen action, the exposure scale it sets and the belief behind it."""

    action: str
    exposure_scale: float
    belief: dict[str, float]
    value: float


class POMDPController:
    """Keeps the belief over market states and picks the exposure scale by PBVI."""

    name = "pomdp"

    def __init__(self, config: ControllerConfig | None = None) -> None:
        self.config = c = config or ControllerConfig()
        S = len(c.states)
        if not (len(c.mean_return) == len(c.volatility) == S):
            raise ValueError("states, mean_return and volatility must have the same length")
        self.actions = tuple(c.exposure)
        e = np.array([c.exposure[a] for a in self.actions])
        mu, sd = np.array(c.mean_return), np.array(c.volatility)
        R = 1e4 * (
            mu[:, None] * e[None, :] - 0.5 * c.risk_aversion * (sd[:, None] * e[None, :]) ** 2
        )
        off = (1 - c.stay_probability) / max(S - 1, 1)
        T1 = np.full((S, S), off) + np.eye(S) * (c.stay_probability - off)
        Z1 = np.full((S, S), (1 - c.detector_accuracy) / max(S - 1, 1))
        np.fill_diagonal(Z1, c.detector_accuracy)
        A = len(self.actions)
        self.pomdp = POMDP(np.repeat(T1[None], A, 0), np.repeat(Z1[None], A, 0), R, c.discount)
        b0 = np.full(S, 1.0 / S)
        self.policy = pbvi(self.pomdp, collect_beliefs(self.pomdp, b0, n=150), tol=1e-4)
        self.belief = b0

    def update(self, likelihoods: Mapping[str, float] | Sequence[float]) -> np.ndarray:
        """Predict one step with T, then weight by the detectors' likelihoods of each state."""
        c = self.config
        if isinstance(likelihoods, Mapping):
            missing = set(c.states) - set(likelihoods)
            if missing:
                raise ValueError(f"likelihoods lack states {sorted(missing)}")
            L = np.array([float(likelihoods[s]) for s in c.states])
        else:
            L = np.asarray(likelihoods, dtype=np.float64)
        if L.shape != (len(c.states),) or (L < 0).any() or not np.isfinite(L).all():
            raise ValueError(f"likelihoods must be {len(c.states)} finite values >= 0, got {L}")
        post = (self.belief @ self.pomdp.T[0]) * L
        if post.sum() <= 0:
            raise ValueError("likelihoods are zero on every state with positive belief")
        self.belief = post / post.sum()
        return self.belief

    def decide(
        self, likelihoods: Mapping[str, float] | Sequence[float] | None = None
    ) -> ControllerDecision:
        """Update the belief (when likelihoods are given) and choose the action; logs both."""
        if likelihoods is not None:
            self.update(likelihoods)
        a = self.actions[self.policy.action(self.belief)]
        belief = {
            s: round(float(p), 6) for s, p in zip(self.config.states, self.belief, strict=True)
        }
        d = ControllerDecision(
            a, float(self.config.exposure[a]), belief, float(self.policy.value(self.belief)[0])
        )
        # debug: a pre-market catching up on missed sessions decides once per session, and the
        # regime assessment logs the decision it acts on
        log.debug(
            "pomdp decision %s exposure=%.2f belief=%s",
            a,
            d.exposure_scale,
            belief,
            extra={"action": a, "belief": belief, "value": d.value},
        )
        return d
