"""POMDP solver and exposure controller (v28quant.ml.pomdp_controller).

Independent source: the Tiger problem of Kaelbling, Littman & Cassandra (1998), discount 0.95.
Its published optimal infinite-horizon policy graph listens until one side has been heard twice
more than the other, then opens the other door (and the problem resets). Evaluating that policy
graph by solving its linear Bellman equations (done here, independently of the solver) gives
V(b = 1/2) = 19.3714, the value quoted for this problem; PBVI must reproduce it and the policy.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from v28quant.ml.pomdp_controller import (
    POMDP,
    ControllerConfig,
    POMDPController,
    collect_beliefs,
    pbvi,
)

LISTEN, OPEN_LEFT, OPEN_RIGHT = 0, 1, 2
GAMMA = 0.95
R = np.array([[-1.0, -100.0, 10.0], [-1.0, 10.0, -100.0]])  # states tiger-left, tiger-right


def tiger() -> POMDP:
    T = np.zeros((3, 2, 2))
    T[LISTEN] = np.eye(2)
    T[OPEN_LEFT] = T[OPEN_RIGHT] = 0.5
    Z = np.zeros((3, 2, 2))
    Z[LISTEN] = [[0.85, 0.15], [0.15, 0.85]]  # observation 0 = hear left
    Z[OPEN_LEFT] = Z[OPEN_RIGHT] = 0.5
    return POMDP(T, Z, R, GAMMA)


def policy_graph_values() -> dict[str, np.ndarray]:
    """Values of the published policy graph's nodes per state, from its Bellman equations."""
    nodes = ["L0", "L+", "L-", "OR", "OL"]  # listen nodes by net count; open-right / open-left
    ix = {(n, s): 2 * k + s for k, n in enumerate(nodes) for s in (0, 1)}
    M, b = np.eye(10), np.zeros(10)
    for s in (0, 1):
        hl = 0.85 if s == 0 else 0.15
        moves = {"L0": ("L+", "L-"), "L+": ("OR", "L0"), "L-": ("L0", "OL")}
        for node, (after_left, after_right) in moves.items():
            i = ix[(node, s)]
            b[i] = -1.0
            M[i, ix[(after_left, s)]] -= GAMMA * hl
            M[i, ix[(after_right, s)]] -= GAMMA * (1 - hl)
        for node, a in (("OR", OPEN_RIGHT), ("OL", OPEN_LEFT)):
            i = ix[(node, s)]
            b[i] = R[s, a]
            M[i, ix[("L0", 0)]] -= GAMMA * 0.5
            M[i, ix[("L0", 1)]] -= GAMMA * 0.5
    v = np.linalg.solve(M, b)
    return {n: v[[ix[(n, 0)], ix[(n, 1)]]] for n in nodes}


def test_tiger_value_and_policy_match_the_published_solution():
    pomdp = tiger()
    ref = policy_graph_values()
    assert abs(0.5 * ref["L0"].sum() - 19.3714) < 1e-4  # the value quoted for Tiger, 0.95
    beliefs = collect_beliefs(pomdp, np.array([0.5, 0.5]), n=200)
    sol = pbvi(pomdp, beliefs, tol=1e-9)
    # every node of the policy graph is an alpha vector of the solution (abs 1e-5 on values ~100)
    for node, alpha in ref.items():
        assert np.min(np.abs(sol.vectors - alpha).max(axis=1)) < 1e-5, (node, alpha, sol.vectors)
    assert abs(sol.value(np.array([0.5, 0.5]))[0] - 0.5 * ref["L0"].sum()) < 1e-5
    # the policy: listen at 1/2 and after one net observation, open after two
    b1 = pomdp.belief_update(np.array([0.5, 0.5]), LISTEN, 0)[0]
    b2 = pomdp.belief_update(b1, LISTEN, 0)[0]
    assert sol.action(np.array([0.5, 0.5])) == LISTEN
    assert sol.action(b1) == LISTEN
    assert sol.action(b2) == OPEN_RIGHT  # heard the tiger left twice
    assert sol.action(b2[::-1]) == OPEN_LEFT


def test_belief_update_is_bayes_rule():
    # by hand: P(TL | hear left) = 0.85 * 0.5 / (0.85 * 0.5 + 0.15 * 0.5) = 0.85
    b, p_o = tiger().belief_update(np.array([0.5, 0.5]), LISTEN, 0)
    assert abs(b[0] - 0.85) < 1e-15
    assert abs(p_o - 0.5) < 1e-15


def test_pomdp_rejects_bad_models():
    t = tiger()
    with pytest.raises(ValueError, match="probability distributions"):
        POMDP(t.T * 2, t.Z, t.R, 0.95)
    with pytest.raises(ValueError, match="discount"):
        POMDP(t.T, t.Z, t.R, 1.0)


@pytest.mark.slow
def test_controller_scales_exposure_with_the_belief_and_logs_it(caplog):
    ctl = POMDPController()
    with caplog.at_level(logging.DEBUG, logger="v28quant.ml.pomdp_controller"):
        for _ in range(5):
            bear = ctl.decide({"bull": 0.05, "neutral": 0.15, "bear": 0.8})
    assert bear.action == "risk_off"
    assert bear.exposure_scale == 0.1
    assert bear.belief["bear"] > 0.9
    assert "belief=" in caplog.text
    assert "risk_off" in caplog.text
    for _ in range(8):
        bull = ctl.decide({"bull": 0.8, "neutral": 0.15, "bear": 0.05})
    assert bull.action == "risk_on"
    assert bull.exposure_scale == 1.0
    # independent check: with actions not moving the market, the optimal action is the one
    # with the highest expected one-day utility under the belief
    b = np.array(list(bull.belief.values()))
    assert ctl.actions[int(np.argmax(b @ ctl.pomdp.R))] == bull.action
    with pytest.raises(ValueError, match="lack states"):
        ctl.decide({"bull": 1.0})


def test_controller_config_lengths_are_checked():
    with pytest.raises(ValueError, match="same length"):
        POMDPController(ControllerConfig(mean_return=(0.0, 0.0)))


def test_controller_policy_is_the_myopic_optimum_its_dynamics_imply():
    # The controller's actions change neither the regime dynamics nor the detectors (T and Z
    # are the same for every action), so the future is the same whatever it does and the
    # optimal action at belief b is argmax_a b . R(., a): an exact check of the PBVI policy.
    # PBVI must also settle (values at its beliefs stop rising) well before its iteration cap.
    config = ControllerConfig()
    ctl = POMDPController(config)
    R = ctl.pomdp.R
    rng = np.random.default_rng(11)
    checked = 0
    for b in rng.dirichlet(np.ones(len(config.states)), size=2000):
        immediate = b @ R
        top2 = np.sort(immediate)[-2:]
        if top2[1] - top2[0] < 0.05 * np.abs(R).max():
            continue  # too near a boundary for a point-based policy to be held to it
        assert ctl.policy.action(b) == int(np.argmax(immediate)), b
        checked += 1
    assert checked > 1000
    capped = pbvi(ctl.pomdp, collect_beliefs(ctl.pomdp, np.full(3, 1 / 3), n=150), 1e-4, 1000)
    np.testing.assert_allclose(capped.vectors, ctl.policy.vectors)
