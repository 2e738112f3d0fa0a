"""Fuzz of the public numeric functions with hypothesis.

Every call either raises ``ValueError`` (whose message names one of the function's arguments)
or returns numbers inside the no-arbitrage bounds of the contract (closed-form bounds:
``max(S e^{-qt} - K e^{-rt}, 0) <= C <= S e^{-qt}``, ``max(K e^{-rt} - S e^{-qt}, 0) <= P <=
K e^{-rt}`` for Europeans; American prices at least intrinsic), or a documented NaN (implied
vols of prices without one). Inputs include NaN, infinities, zeros, negatives, huge values and
mismatched shapes. A crash of the process fails the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from v28quant.geometry import FisherNormalMetric, geodesic
from v28quant.options import black_scholes as bs
from v28quant.quant_models import crr_binomial as crr
from v28quant.quant_models import heston_model as heston
from v28quant.quant_models import merton_jump_diffusion as merton
from v28quant.quant_models import monte_carlo_pricer as mc

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Ordinary values mixed with the edges every argument must survive.
EDGES = st.sampled_from([0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300])
SPOT = st.one_of(st.floats(1.0, 500.0), EDGES)
STRIKE = st.one_of(st.floats(1.0, 500.0), EDGES)
TIME = st.one_of(st.floats(0.0, 5.0), EDGES)
RATE = st.one_of(st.floats(-0.05, 0.2), EDGES)
VOL = st.one_of(st.floats(0.01, 2.0), EDGES)


def _outcome(fn: Callable[[], Any], names: tuple[str, ...]) -> Any:
    """Return ``fn()``, or None after a ValueError whose message names an argument."""
    try:
        return fn()
    except ValueError as exc:
        msg = str(exc)
        assert any(n in msg for n in names), f"ValueError names no argument: {msg!r}"
        return None


def _in_bounds(
    price: float,
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    call: bool,
    american: bool = False,
) -> bool:
    """Closed-form no-arbitrage bounds, with 1e-9 relative slack for rounding."""
    with np.errstate(over="ignore"):  # an infinite forward is a legal limit for some payoffs
        s_q = float(spot * np.exp(-div * t))
        k_r = float(strike * np.exp(-rate * t))
    if american:
        low = max(spot - strike if call else strike - spot, 0.0)
        high = max(spot, s_q) if call else max(strike, k_r)
    else:
        low = max(s_q - k_r if call else k_r - s_q, 0.0)
        high = s_q if call else k_r
    slack = 1e-9 * max(spot, strike, 1.0)
    if math.isinf(high):
        return price >= low - slack
    return low - slack <= price <= high + slack


BSM_NAMES = ("spot", "strike", "t", "rate", "div", "vol", "forward")


@FUZZ
@given(SPOT, STRIKE, TIME, RATE, RATE, VOL, st.booleans())
def test_bsm_price(
    spot: float, strike: float, t: float, rate: float, div: float, vol: float, call: bool
) -> None:
    p = _outcome(lambda: bs.price(spot, strike, t, rate, div, vol, call), BSM_NAMES)
    if p is not None and math.isfinite(p):
        assert _in_bounds(p, spot, strike, t, rate, div, call), (spot, strike, t, rate, div, vol, p)
    elif p is not None:
        pytest.fail(f"non-finite BSM price {p} for {(spot, strike, t, rate, div, vol, call)}")


@FUZZ
@given(st.one_of(st.floats(0.0, 200.0), EDGES), SPOT, STRIKE, TIME, RATE, RATE, st.booleans())
def test_implied_vol(
    price: float, spot: float, strike: float, t: float, rate: float, div: float, call: bool
) -> None:
    names = ("price", *BSM_NAMES)
    v = _outcome(lambda: bs.implied_vol(price, spot, strike, t, rate, div, call), names)
    # The documented rule: a vol >= 0, or NaN for a price with no implied vol.
    assert v is None or math.isnan(v) or v >= 0.0, v
    w = _outcome(lambda: mc.implied_vol(price, spot, strike, t, rate, div, call), names)
    assert (v is None) == (w is None)
    assert v is None or v == w or (math.isnan(v) and math.isnan(w))


@FUZZ
@given(SPOT, STRIKE, TIME, RATE, RATE, VOL, st.booleans(), st.booleans(), st.integers(-3, 60))
def test_crr(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    call: bool,
    american: bool,
    steps: int,
) -> None:
    p = _outcome(
        lambda: crr.price(spot, strike, t, rate, div, vol, call, american, steps),
        (*BSM_NAMES, "steps", "CRR up-probability"),
    )
    if p is not None:
        assert math.isfinite(p), (spot, strike, t, rate, div, vol, p)
        assert p >= 0.0, (spot, strike, t, rate, div, vol, p)
        if not american:
            assert _in_bounds(p, spot, strike, t, rate, div, call), p


@FUZZ
@given(
    SPOT,
    STRIKE,
    st.one_of(st.floats(0.01, 3.0), EDGES),
    RATE,
    RATE,
    st.one_of(st.floats(0.0, 0.5), EDGES),
    st.one_of(st.floats(0.1, 5.0), EDGES),
    st.one_of(st.floats(0.0, 0.5), EDGES),
    st.one_of(st.floats(0.05, 1.5), EDGES),
    st.one_of(st.floats(-0.99, 0.99), EDGES),
    st.booleans(),
)
def test_heston(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    v0: float,
    kappa: float,
    theta: float,
    sigma: float,
    rho: float,
    call: bool,
) -> None:
    names = (*BSM_NAMES, "v0", "kappa", "theta", "sigma", "rho", "Heston quadrature")
    p = _outcome(
        lambda: heston.price(spot, strike, t, rate, div, v0, kappa, theta, sigma, rho, call),
        names,
    )
    if p is not None:
        assert math.isfinite(p), p
        assert _in_bounds(p, spot, strike, t, rate, div, call), p


@FUZZ
@given(
    SPOT,
    STRIKE,
    TIME,
    RATE,
    RATE,
    VOL,
    st.one_of(st.floats(0.0, 1000.0), EDGES),
    st.one_of(st.floats(-3.0, 3.0), EDGES),
    st.one_of(st.floats(0.0, 1.0), EDGES),
    st.booleans(),
)
def test_merton(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    lam: float,
    mu_j: float,
    delta_j: float,
    call: bool,
) -> None:
    names = (*BSM_NAMES, "lam", "mu_j", "delta_j", "Merton series")
    p = _outcome(
        lambda: merton.price(spot, strike, t, rate, div, vol, lam, mu_j, delta_j, call), names
    )
    if p is not None:
        assert math.isfinite(p), p
        assert _in_bounds(p, spot, strike, t, rate, div, call), p


@settings(max_examples=40, deadline=None)
@given(
    SPOT,
    STRIKE,
    TIME,
    RATE,
    RATE,
    VOL,
    st.booleans(),
    st.sampled_from([-5, 0, 3, 4, 1001]),
    st.sampled_from([-1, 0, 7, 2**64]),
)
def test_monte_carlo(
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    vol: float,
    call: bool,
    paths: int,
    seed: int,
) -> None:
    names = (*BSM_NAMES, "paths", "seed")
    r = _outcome(lambda: mc.european(spot, strike, t, rate, div, vol, call, paths, seed), names)
    if r is not None:
        assert math.isfinite(r.price), r
        assert r.price >= 0.0, r


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-2.0, 2.0), EDGES), min_size=0, max_size=4),
    st.lists(st.one_of(st.floats(-2.0, 2.0), EDGES), min_size=0, max_size=4),
    st.one_of(st.floats(0.0, 3.0), EDGES),
)
def test_geodesic(x0: list[float], v0: list[float], t_end: float) -> None:
    names = ("x0", "v0", "t_end", "sigma", "n_points", "ode")
    g = _outcome(lambda: geodesic(FisherNormalMetric(), x0, v0, t_end, n_points=50), names)
    if g is not None:
        assert np.isfinite(g.x).all(), g.x
        assert (g.x[:, 1] > 0).all(), g.x


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4))
def test_mismatched_shapes_name_the_arguments(n: int, m: int) -> None:
    spot, strike = np.full(n, 100.0), np.full(m, 100.0)
    if n == m or 1 in (n, m):
        assert np.shape(bs.price(spot, strike, 1.0, 0.0, 0.0, 0.2)) == (max(n, m),)
    else:
        with pytest.raises(ValueError, match=r"spot.*strike|shape"):
            bs.price(spot, strike, 1.0, 0.0, 0.0, 0.2)
