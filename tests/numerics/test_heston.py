"""Heston characteristic-function prices and calibration.

Sources: Alan Lewis's high-precision reference prices as cached in QuantLib's test suite
(test-suite/hestonmodel.cpp, testAllIntegrationMethods: S = 100, r = 1 %, q = 2 %, T = 1,
v0 = 0.04, kappa = 4, theta = 0.25, sigma = 1, rho = -0.5; QuantLib's own tolerance 1e-12);
QuantLib AnalyticHestonEngine (adaptive Gauss-Lobatto, relative tolerance 1e-12) on identical
inputs; Black-Scholes with the integrated variance as sigma -> 0 (closed form); Andersen QE Monte
Carlo within 3 standard errors; a real SPY chain (Cboe, 2023-09-14).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql
from v28quant.options import black_scholes as bs
from v28quant.quant_models import heston_model as heston
from v28quant.quant_models import monte_carlo_pricer as mc

LEWIS = dict(
    spot=100.0, t=1.0, rate=0.01, div=0.02, v0=0.04, kappa=4.0, theta=0.25, sigma=1.0, rho=-0.5
)
LEWIS_STRIKES = [80.0, 90.0, 100.0, 110.0, 120.0]
LEWIS_CALLS = [
    26.774758743998854221382195325726949201687074848341,
    20.933349000596710388139445766564068085476194042256,
    16.070154917028834278213466703938231827658768230714,
    12.132211516709844867860534767549426052805766831181,
    9.024913483457835636553375454092357136489051667150,
]
LEWIS_PUTS = [
    7.958878113256768285213263077598987193482161301733,
    12.017966707346304987709573290236471654992071308187,
    17.055270961270109413522653999411000974895436309183,
    23.017825898442800538908781834822560777763225722188,
    29.811026202682471843340682293165857439167301370697,
]


@pytest.mark.parametrize(("call", "expected"), [(True, LEWIS_CALLS), (False, LEWIS_PUTS)])
def test_lewis_reference_prices(call: bool, expected: list[float]) -> None:
    p = LEWIS
    got = heston.price(
        p["spot"],
        np.array(LEWIS_STRIKES),
        p["t"],
        p["rate"],
        p["div"],
        p["v0"],
        p["kappa"],
        p["theta"],
        p["sigma"],
        p["rho"],
        call,
    )
    err = np.abs(got - np.array(expected))
    assert err.max() < 1e-11, f"{p} call={call}: errors {err}"


def _quantlib_prices(spot, strikes, days, rate, div, params, calls):
    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    process = ql.HestonProcess(
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, div, dc)),
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        *params,
    )
    engine = ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-12, 10_000_000)
    out = []
    for k, c in zip(strikes, calls, strict=True):
        opt = ql.VanillaOption(
            ql.PlainVanillaPayoff(ql.Option.Call if c else ql.Option.Put, k),
            ql.EuropeanExercise(today + days),
        )
        opt.setPricingEngine(engine)
        out.append(opt.NPV())
    return np.array(out)


PARAMS = [  # (v0, kappa, theta, sigma, rho): typical, Feller violated, positive rho, tiny sigma
    (0.04, 1.5, 0.04, 0.5, -0.7),
    (0.01, 2.0, 0.04, 1.0, -0.9),
    (0.09, 0.5, 0.02, 0.3, 0.3),
    (0.0225, 1.0, 0.0225, 0.1, 0.0),
]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("days", [7, 36, 91, 365, 730, 1825])
def test_matches_quantlib_analytic_engine(params: tuple, days: int) -> None:
    # Identical inputs (t = days / 365, Actual/365 flat curves); 1e-10 absolute on spot 100.
    strikes = np.linspace(50.0, 160.0, 23)
    calls = np.arange(strikes.size) % 2 == 0
    ref = _quantlib_prices(100.0, strikes, days, 0.03, 0.01, params, calls)
    got = heston.price(100.0, strikes, days / 365, 0.03, 0.01, *params, call=calls)
    err = np.abs(got - ref)
    assert err.max() < 1e-10, (
        f"params={params} days={days}: max error {err.max()} at K={strikes[err.argmax()]}"
    )


def test_put_call_parity() -> None:
    k = np.linspace(60, 150, 10)
    args = (100.0, k, 0.7, 0.04, 0.015, 0.05, 2.0, 0.06, 0.7, -0.6)
    c, p = heston.price(*args, call=True), heston.price(*args, call=False)
    parity = 100.0 * math.exp(-0.015 * 0.7) - k * math.exp(-0.04 * 0.7)
    assert np.abs(c - p - parity).max() < 1e-12


@pytest.mark.parametrize("rho", [0.0, -0.7])
def test_vol_of_vol_to_zero_tends_to_bsm_with_integrated_variance(rho: float) -> None:
    # sigma -> 0: v(t) = theta + (v0 - theta) e^{-kappa t} is deterministic, so the price is BSM
    # with total variance theta t + (v0 - theta)(1 - e^{-kappa t}) / kappa. The gap is
    # O(sigma) (O(sigma^2) for rho = 0): it must shrink with sigma and be tiny at 1e-5.
    spot, t, rate, div, v0, kappa, theta = 100.0, 1.5, 0.02, 0.01, 0.09, 1.2, 0.03
    k = np.array([70.0, 100.0, 140.0])
    var = theta * t + (v0 - theta) * (1 - math.exp(-kappa * t)) / kappa
    ref = bs.price(spot, k, t, rate, div, math.sqrt(var / t), True)
    gaps = []
    for sigma in (1e-2, 1e-3, 1e-4, 1e-5):
        got = heston.price(spot, k, t, rate, div, v0, kappa, theta, sigma, rho, True)
        gaps.append(np.abs(got - ref).max())
    assert all(b < a for a, b in itertools.pairwise(gaps)), gaps
    assert gaps[-1] < 1e-4, gaps


@pytest.mark.parametrize(("strike", "call"), [(90.0, False), (100.0, True), (115.0, True)])
def test_cf_price_matches_qe_monte_carlo(strike: float, call: bool) -> None:
    # Andersen QE with 64 steps a year: bias far below the 3 standard-error band.
    args = (100.0, strike, 1.0, 0.03, 0.01, 0.04, 1.5, 0.04, 0.6, -0.7)
    r = mc.heston_european(*args, call=call, steps=64, paths=100_000, seed=21)
    exact = heston.price(*args, call=call)
    assert abs(r.price - exact) < 3 * r.stderr, f"{args} call={call}: MC {r}, CF {exact}"


def _synthetic_quotes(truth):
    spot, rate, div = 100.0, 0.02, 0.01
    t = np.repeat([0.25, 0.5, 1.0, 2.0], 15)
    k = np.tile(np.linspace(75.0, 130.0, 15), 4)
    call = k >= 100.0
    prices = heston.price(spot, k, t, rate, div, *truth, call=call)
    return spot, k, t, rate, div, prices, call


def test_calibration_recovers_parameters_from_its_own_prices() -> None:
    # 60 quotes generated at known parameters; the fit from a generic start must return them
    # to 1e-4 (the prices are exact, so the optimum is the truth).
    truth = heston.HestonParams(0.045, 1.8, 0.06, 0.55, -0.65)
    spot, k, t, rate, div, prices, call = _synthetic_quotes(truth)
    fit = heston.calibrate(spot, k, t, rate, div, prices, call)
    err = np.abs(np.array(fit.params) - np.array(truth))
    assert fit.converged, f"truth {truth}, fit {fit.params}, errors {err}"
    assert err.max() < 1e-4, f"truth {truth}, fit {fit.params}, errors {err}"
    assert fit.rmse_vol_points < 1e-4
    assert fit.feller == truth.feller


def _spy_otm_quotes(path):
    # OTM only (SPY options are American): puts below the forward, calls above. Forward per expiry
    # from near-ATM put-call parity, F = K + (C - P) e^{rT} (median over strikes within 4 % of
    # spot), with r = 5.3 % (3-month T-bill, September 2023); div = r - ln(F / S) / T.
    chain = pd.read_csv(path, parse_dates=["quote_date", "expiration"])
    spot, rate = 450.36, 0.053
    chain["t"] = (chain.expiration - chain.quote_date).dt.days / 365.0
    chain["mid"] = 0.5 * (chain.bid + chain.ask)
    rows = []
    for t, e in chain[(chain.t >= 0.08) & (chain.t <= 1.1)].groupby("t"):
        c = e[e.type == "call"].set_index("strike")
        p = e[e.type == "put"].set_index("strike")
        near = [
            k
            for k in c.index.intersection(p.index)
            if abs(k / spot - 1) < 0.04 and c.bid[k] > 0 and p.bid[k] > 0
        ]
        fwd = float(np.median([k + (c.mid[k] - p.mid[k]) * math.exp(rate * t) for k in near]))
        otm = pd.concat([p[p.index < fwd], c[c.index > fwd]])
        otm = otm[
            (otm.bid > 0)
            & (np.abs(np.log(otm.index / fwd)) < 0.25)
            & (otm.ask - otm.bid < 0.5 * otm.mid)
        ]
        div = rate - math.log(fwd / spot) / t
        rows += [
            (k, t, div, m, typ == "call")
            for k, m, typ in zip(otm.index, otm.mid, otm.type, strict=True)
        ]
    k, t, div, mid, call = map(np.array, zip(*rows, strict=True))
    return spot, k, t, rate, div, mid, call


def test_calibration_fits_a_real_spy_chain(shared_data, capsys) -> None:
    spot, k, t, rate, div, mid, call = _spy_otm_quotes(
        shared_data / "options" / "SPY_2023-09-14_cboe.csv"
    )
    fit = heston.calibrate(spot, k, t, rate, div, mid, call)
    with capsys.disabled():
        print(
            f"\nSPY 2023-09-14: {k.size} OTM quotes, {np.unique(t).size} expiries, "
            f"params {fit.params}, RMSE {fit.rmse_vol_points:.3f} vol points, "
            f"{fit.iterations} iterations, {fit.seconds * 1e3:.0f} ms, feller {fit.feller}"
        )
    assert k.size > 500
    assert fit.converged
    # Heston cannot fit the short-dated skew exactly; about 0.6 vol points is typical here.
    assert fit.rmse_vol_points < 1.0, fit
    assert -1.0 < fit.params.rho < -0.3, fit.params


def test_mispricing_flags_a_shifted_quote() -> None:
    # A mid 2 vol points below the model's implied vol shows as +2.0 vol points of edge.
    params = heston.HestonParams(0.04, 1.5, 0.05, 0.5, -0.6)
    spot, k, t, rate, div = 100.0, 105.0, 0.5, 0.03, 0.0
    model = heston.price(spot, k, t, rate, div, *params)
    model_vol = bs.implied_vol(model, spot, k, t, rate, div, True)
    mid = bs.price(spot, k, t, rate, div, model_vol - 0.02, True)
    m = heston.mispricing(mid, spot, k, t, rate, div, params)
    assert m.edge_vol_points == pytest.approx(2.0, abs=1e-8), m
    assert m.edge == pytest.approx(model - mid)


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="rho must be in"):
        heston.price(100, 100, 1, 0.0, 0.0, 0.04, 1.0, 0.04, 0.5, 1.0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        heston.price(100, 100, 1, 0.0, 0.0, 0.04, 1.0, 0.04, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"v0 must be >= 0, got -0\.01 at index 1"):
        heston.price(100, 100, 1, 0.0, 0.0, [0.04, -0.01], 1.0, 0.04, 0.5, 0.0)
    with pytest.raises(ValueError, match="market_price must be > 0"):
        heston.calibrate(100, [90, 95, 100, 105, 110], 1.0, 0.0, 0.0, [11, 7, 4, 0.0, 1])


def test_calibration_rejects_inverted_bounds_and_a_start_outside_them() -> None:
    # Bounds once were clipped silently (inverted bounds "converged" at 13.6 vol points RMSE).
    truth = heston.HestonParams(0.045, 1.8, 0.06, 0.55, -0.65)
    spot, k, t, rate, div, prices, call = _synthetic_quotes(truth)
    lower = heston.HestonParams(1e-4, 1e-3, 1e-4, 1e-3, -0.999)
    upper = heston.HestonParams(4.0, 20.0, 4.0, 5.0, 0.999)
    with pytest.raises(ValueError, match=r"bounds: lower\.kappa = 5\.0+ must be < upper\.kappa"):
        heston.calibrate(
            spot,
            k,
            t,
            rate,
            div,
            prices,
            call,
            lower=lower._replace(kappa=5.0),
            upper=upper._replace(kappa=1.0),
            initial=truth,
        )
    with pytest.raises(ValueError, match=r"initial\.sigma = 6\.0+ must lie in \["):
        heston.calibrate(spot, k, t, rate, div, prices, call, initial=truth._replace(sigma=6.0))


def test_converged_means_the_tolerance_was_met() -> None:
    # Two iterations cannot reach the optimum from a generic start: converged must be False.
    # Where converged is True, the fit is stationary: no coordinate step of 1e-4 (relative)
    # lowers the minimised cost by more than 1e-6 of it (independent finite-difference check).
    truth = heston.HestonParams(0.045, 1.8, 0.06, 0.55, -0.65)
    spot, k, t, rate, div, prices, call = _synthetic_quotes(truth)
    short = heston.calibrate(spot, k, t, rate, div, prices, call, max_iterations=2)
    assert not short.converged, short
    noisy = prices * (1.0 + 0.01 * np.sin(np.arange(prices.size)))
    fit = heston.calibrate(spot, k, t, rate, div, noisy, call)
    assert fit.converged, fit
    w = (
        1.0
        / bs.greeks(
            spot, k, t, rate, div, bs.implied_vol(noisy, spot, k, t, rate, div, call), call
        ).vega
    )

    def cost(p):
        return float(
            np.sum((w * (heston.price(spot, k, t, rate, div, *p, call=call) - noisy)) ** 2)
        )

    base = cost(fit.params)
    for j in range(5):
        for sign in (-1.0, 1.0):
            p = np.array(fit.params)
            p[j] *= 1.0 + sign * 1e-4
            assert cost(p) > base * (1.0 - 1e-6), f"param {j} step {sign}: {cost(p)} < {base}"


def test_qe_monte_carlo_with_zero_variance_is_the_forward() -> None:
    # v0 = theta = 0: the variance stays 0 and the call is worth (F - K)^+ e^{-rt} (closed form);
    # the QE psi was once 0/0 and the price NaN.
    r = mc.heston_european(100.0, 90.0, 1.0, 0.02, 0.01, 0.0, 1.5, 0.0, 0.3, -0.5, paths=1000)
    want = 100.0 * math.exp(-0.01) - 90.0 * math.exp(-0.02)
    # 100 log steps summed in double: rounding of order 1e-12; tolerance 1e-10.
    assert r.price == pytest.approx(want, abs=1e-10), r


def test_prices_stay_inside_the_no_arbitrage_bounds() -> None:
    # Far out-of-the-money short-dated calls once leaked -4.2e-14; calls must lie in
    # [max(F - K, 0), F] e^{-rt} and puts in [max(K - F, 0), K] e^{-rt}.
    k = np.geomspace(20.0, 500.0, 200)
    for t in (0.02, 0.05, 0.5):
        fwd_df, k_df = 100.0 * math.exp(-0.01 * t), k * math.exp(-0.03 * t)
        c = heston.price(100.0, k, t, 0.03, 0.01, 0.04, 1.5, 0.04, 0.5, -0.7, call=True)
        p = heston.price(100.0, k, t, 0.03, 0.01, 0.04, 1.5, 0.04, 0.5, -0.7, call=False)
        # Exactly >= 0; the intrinsic bound to 1e-12 (the forward is formed in another order).
        assert np.all(c >= 0.0), (t, c.min(), p.min())
        assert np.all(p >= 0.0), (t, c.min(), p.min())
        assert np.all(c >= fwd_df - k_df - 1e-12), t
        assert np.all(c <= fwd_df + 1e-12), t
        assert np.all(p >= k_df - fwd_df - 1e-12), t
        assert np.all(p <= k_df + 1e-12), t


def test_quadrature_that_does_not_converge_raises() -> None:
    # t = 1e-4 with strikes two orders of magnitude apart needs more than the panel cap.
    with pytest.raises(ValueError, match="Heston quadrature did not converge in 512 panels"):
        heston.price(100.0, [100.0, 1e4], 1e-4, 0.02, 0.0, 0.04, 1.5, 0.04, 0.5, -0.7)
