"""Merton (1976) jump diffusion: series prices and moment calibration.

Sources: Black-Scholes-Merton closed form (lam = 0); QuantLib BatesEngine (Fourier
integration, relative tolerance 1e-12) with the stochastic variance switched off, on identical
inputs; exact Monte Carlo of the jump
diffusion within 3 standard errors; numpy-simulated Merton returns for the moment calibration,
with tolerances of about 3 sampling standard deviations of the estimates (measured over seeds
at n = 1e6 observations).
"""

from __future__ import annotations

import numpy as np
import pytest
import QuantLib as ql
from v28quant.options import black_scholes as bs
from v28quant.quant_models import merton_jump_diffusion as merton
from v28quant.quant_models import monte_carlo_pricer as mc


def test_zero_intensity_is_bsm_exactly() -> None:
    k = np.linspace(50, 150, 21)
    for call in (True, False):
        got = merton.price(100.0, k, 0.8, 0.03, 0.01, 0.25, 0.0, -0.2, 0.3, call)
        ref = bs.price(100.0, k, 0.8, 0.03, 0.01, 0.25, call)
        assert np.array_equal(got, ref), f"call={call}: {got - ref}"


def _ql_bates_as_merton(spot, strikes, days, rate, div, vol, lam, mu_j, delta_j, call):
    # QuantLib's Python build has no JumpDiffusionEngine; its Bates engine with v0 = theta =
    # vol^2 and vol of variance 1e-6 (rho = 0) is Merton's model up to O(1e-12).
    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    process = ql.BatesProcess(
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, div, dc)),
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        vol**2,
        1.0,
        vol**2,
        1e-6,
        0.0,
        lam,
        mu_j,
        delta_j,
    )
    engine = ql.BatesEngine(ql.BatesModel(process), 1e-12, 10_000_000)
    out = []
    for k in strikes:
        opt = ql.VanillaOption(
            ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k),
            ql.EuropeanExercise(today + days),
        )
        opt.setPricingEngine(engine)
        out.append(opt.NPV())
    return np.array(out)


@pytest.mark.parametrize(
    "params",
    [(0.2, 1.0, -0.1, 0.15), (0.15, 5.0, -0.02, 0.05), (0.1, 0.3, 0.1, 0.3), (0.3, 12.0, 0.0, 0.1)],
)
@pytest.mark.parametrize("days", [30, 365, 1095])
@pytest.mark.parametrize("call", [True, False])
def test_matches_quantlib_bates_engine_without_stochastic_vol(
    params: tuple, days: int, call: bool
) -> None:
    # Identical inputs; 1e-9 absolute on spot 100 (QuantLib's integration tolerance and the
    # O(1e-12) residual of its vol of variance).
    strikes = np.linspace(60.0, 150.0, 10)
    ref = _ql_bates_as_merton(100.0, strikes, days, 0.04, 0.01, *params, call)
    got = merton.price(100.0, strikes, days / 365, 0.04, 0.01, *params, call)
    err = np.abs(got - ref)
    assert err.max() < 1e-9, f"params={params} days={days} call={call}: errors {err}"


@pytest.mark.parametrize(("strike", "call"), [(80.0, False), (100.0, True), (125.0, True)])
def test_series_matches_monte_carlo(strike: float, call: bool) -> None:
    args = (100.0, strike, 1.0, 0.03, 0.01, 0.2, 1.5, -0.1, 0.15)
    r = mc.merton_european(*args, call=call, paths=200_000, seed=17)
    exact = merton.price(*args, call)
    assert abs(r.price - exact) < 3 * r.stderr, f"{args} call={call}: MC {r}, series {exact}"


def _simulate_returns(seed: int, n: int, dt: float, vol, lam, mu_j, delta_j, drift=0.05):
    rng = np.random.default_rng(seed)
    jumps = rng.poisson(lam * dt, n)
    return (
        drift * dt
        + vol * np.sqrt(dt) * rng.standard_normal(n)
        + jumps * mu_j
        + np.sqrt(jumps) * delta_j * rng.standard_normal(n)
    )


@pytest.mark.parametrize(
    ("truth", "rel_tol"),
    [
        # (vol, lam, mu_j, delta_j) and relative tolerances for each (about 3 sampling s.d.)
        ((0.15, 20.0, -0.01, 0.02), (0.02, 0.15, 0.15, 0.08)),
        ((0.10, 5.0, -0.03, 0.03), (0.02, 0.2, 0.15, 0.15)),
    ],
)
def test_moment_calibration_recovers_simulated_parameters(truth: tuple, rel_tol: tuple) -> None:
    r = _simulate_returns(123, 1_000_000, 1 / 252, *truth)
    fit = merton.calibrate_from_returns(r, dt=1 / 252)
    got = (fit.vol, fit.lam, fit.mu_j, fit.delta_j)
    for name, g, t, tol in zip(("vol", "lam", "mu_j", "delta_j"), got, truth, rel_tol, strict=True):
        assert abs(g - t) < tol * abs(t), f"{name}: fit {g}, truth {t} (all: {fit})"
    assert fit.max_residual < 1e-8


def test_moments_without_solution_raise() -> None:
    # Uniform returns have excess kurtosis -1.2: no Merton model (whose excess kurtosis is > 0)
    # reproduces them.
    r = np.random.default_rng(0).uniform(-0.02, 0.02, 5000)
    with pytest.raises(ValueError, match="no Merton solution: excess kurtosis must be > 0"):
        merton.calibrate_from_returns(r)


def test_mispricing_in_vol_points() -> None:
    # lam = 0 makes the model BSM at 30 % vol; a mid at 27 % vol is 3.0 vol points cheap.
    model_args = (100.0, 95.0, 0.5, 0.02, 0.0)
    mid = bs.price(*model_args, 0.27, False)
    m = merton.mispricing(mid, *model_args, 0.3, 0.0, 0.0, 0.1, call=False)
    assert m.edge_vol_points == pytest.approx(3.0, abs=1e-8), m


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="lam must be >= 0"):
        merton.price(100, 100, 1, 0.0, 0.0, 0.2, -1.0, 0.0, 0.1)
    with pytest.raises(ValueError, match="delta_j must be >= 0, got -0.1 at index 2"):
        merton.price(100, 100, 1, 0.0, 0.0, 0.2, 1.0, 0.0, [0.1, 0.1, -0.1])
    with pytest.raises(ValueError, match="dt must be > 0"):
        merton.calibrate_from_returns(np.zeros(100), dt=0.0)
