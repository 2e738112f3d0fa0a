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
    with pytest.raises(ValueError, match=r"delta_j must be >= 0, got -0\.1 at index 2"):
        merton.price(100, 100, 1, 0.0, 0.0, 0.2, 1.0, 0.0, [0.1, 0.1, -0.1])
    with pytest.raises(ValueError, match="dt must be > 0"):
        merton.calibrate_from_returns(np.zeros(100), dt=0.0)


def _mpmath_merton(spot, strike, t, rate, div, vol, lam, mu_j, delta_j, call):
    """Merton's eq. (19) summed term by term in 60-digit arithmetic (independent reference)."""
    import mpmath as mp

    mp.mp.dps = 60
    s, k, tt, r, q = (mp.mpf(x) for x in (spot, strike, t, rate, div))
    log1k = mp.mpf(mu_j) + mp.mpf(delta_j) ** 2 / 2
    kbar = mp.e**log1k - 1
    lpt = lam * tt * (1 + kbar)
    total = mp.mpf(0)
    n_max = int(lpt + 40 * mp.sqrt(lpt) + 200)
    for n in range(n_max):
        w = mp.e ** (-lpt + n * mp.log(lpt) - mp.loggamma(n + 1))
        sd = mp.sqrt(vol**2 * tt + n * mp.mpf(delta_j) ** 2)
        rn = r - lam * kbar + n * log1k / tt
        d1 = (mp.log(s / k) + (rn - q) * tt) / sd + sd / 2
        d2 = d1 - sd
        if call:
            v = s * mp.e ** (-q * tt) * mp.ncdf(d1) - k * mp.e ** (-rn * tt) * mp.ncdf(d2)
        else:
            v = k * mp.e ** (-rn * tt) * mp.ncdf(-d2) - s * mp.e ** (-q * tt) * mp.ncdf(-d1)
        total += w * v
    return float(total)


@pytest.mark.parametrize(
    ("lam", "mu_j", "delta_j", "call"),
    [
        # lam' t = 300 e^{1.005} = 820: e^{-lam' t} underflows to 0 (the series once gave 0.0).
        (300.0, 1.0, 0.1, True),
        (300.0, 1.0, 0.1, False),
        # lam t = 800: e^{-lam t} underflows; small jumps keep the price moderate.
        (800.0, -0.01, 0.05, True),
        # mu_j = 7: e^{-r_n t} overflows for small n (the series once gave NaN).
        (1.0, 7.0, 0.1, True),
        (1.0, 7.0, 0.1, False),
    ],
)
def test_series_in_log_space_beyond_underflow(
    lam: float, mu_j: float, delta_j: float, call: bool
) -> None:
    # Source: Merton (1976) eq. (19) in 60-digit mpmath; tolerance 1e-10 absolute on spot 100
    # (the series tolerance is 1e-14 of spot; the rest is the double-precision sum of ~1000 terms).
    args = (100.0, 100.0, 1.0, 0.02, 0.0, 0.2, lam, mu_j, delta_j)
    got = merton.price(*args, call)
    want = _mpmath_merton(*args, call)
    fwd_call_floor = max(100.0 - 100.0 * np.exp(-0.02), 0.0)
    lower, upper = (fwd_call_floor, 100.0) if call else (0.0, 100.0 * np.exp(-0.02))
    assert lower <= got <= upper, f"{args} call={call}: {got} outside [{lower}, {upper}]"
    assert abs(got - want) < 1e-10 * 100.0, f"{args} call={call}: ours {got}, mpmath {want}"


def test_series_that_cannot_be_summed_raises() -> None:
    with pytest.raises(ValueError, match="Merton series needs more than"):
        merton.price(100, 100, 1, 0.02, 0.0, 0.2, 1e13, 0.0, 0.1)
    with pytest.raises(ValueError, match="overflows"):
        merton.price(100, 100, 1, 0.02, 0.0, 0.2, 1.0, 800.0, 0.1)


def test_monte_carlo_beyond_poisson_underflow() -> None:
    # lam t = 800: inversion from e^{-800} = 0 once put every path at the jump cap. Source: the
    # mpmath series above; tolerance 4 standard errors.
    args = (100.0, 100.0, 1.0, 0.02, 0.0, 0.2, 800.0, -0.01, 0.05)
    r = mc.merton_european(*args, paths=100_000, seed=5)
    want = _mpmath_merton(*args, True)
    assert abs(r.price - want) < 4 * r.stderr, f"{args}: MC {r}, series {want}"
