"""Dupire local volatility from SVI (Gatheral's formula), from call prices, and the local-vol MC.

Independent sources: closed forms (constant vol; a pure term structure has local variance equal
to the forward variance), Dupire's formula applied by finite differences to QuantLib Black
prices of the surface, and QuantLib's AnalyticHestonEngine for a Heston smile that the SVI
surface, its local vol and the local-vol Monte Carlo must reproduce.
"""

from __future__ import annotations

import numpy as np
import pytest
import QuantLib as ql
from v28quant.options import black_scholes
from v28quant.options.surface import SviSurface, fit_slice
from v28quant.quant_models.dupire_local_vol import local_vol, local_vol_from_prices, mc_price

P1 = np.array([0.01, 0.10, -0.50, 0.05, 0.20])
P2 = np.array([0.03, 0.12, -0.45, 0.08, 0.25])


def test_flat_surface_has_flat_local_vol():
    # Closed form: constant implied vol 0.23 (b = 0, a = vol^2 t) has local vol 0.23 everywhere,
    # including t = 0 and before/after the slices; also with carry in the forwards.
    vol, ts = 0.23, np.array([0.25, 1.0, 2.0])
    params = [[vol**2 * t, 0.0, 0.0, 0.0, 0.1] for t in ts]
    s = SviSurface(ts, params, 100.0 * np.exp(0.03 * ts), spot=100.0)
    t = np.array([0.0, 0.1, 0.25, 0.6, 1.0, 1.7, 3.0])[:, None]
    k = np.array([40.0, 80.0, 100.0, 130.0, 250.0])[None, :]
    lv = local_vol(s, t, k)
    assert lv.shape == (7, 5)
    np.testing.assert_allclose(lv, vol, rtol=1e-13)


def test_term_structure_local_vol_is_forward_vol():
    # Closed form: with flat smiles (b = 0) w(t) = a_i at t_i, linear in between, the local
    # variance is the forward variance (a_{i+1} - a_i) / (t_{i+1} - t_i).
    ts = np.array([0.5, 1.0, 2.0])
    a = np.array([0.02, 0.05, 0.07])
    s = SviSurface(ts, [[ai, 0.0, 0.0, 0.0, 0.1] for ai in a], [100.0] * 3)
    lv = local_vol(s, [0.3, 0.7, 1.5, 2.5], 90.0)
    fwd = np.sqrt([a[0] / ts[0], 0.03 / 0.5, 0.02 / 1.0, a[2] / ts[2]])
    np.testing.assert_allclose(lv, fwd, rtol=1e-13)


def test_gatheral_matches_dupire_on_call_prices():
    # Source: Dupire's formula in (T, K) by finite differences on QuantLib Black call prices of
    # the same surface, with rate 3 % and dividend 1 % (forward F = S e^{(r-q)t}). The t grid
    # lies inside one segment (0.5, 1.0) where w is linear in t. Tolerance 2e-4 in vol: the
    # three-point differences have O(h^2) error with h_K = 0.25, h_T = 0.01.
    r, q, spot = 0.03, 0.01, 100.0
    ts_s = np.array([0.5, 1.0])
    s = SviSurface(ts_s, [P1, P2], spot * np.exp((r - q) * ts_s), spot=spot)
    t = np.arange(0.6, 0.9001, 0.01)
    k = np.arange(70.0, 130.001, 0.25)
    calls = np.empty((t.size, k.size))
    for i, ti in enumerate(t):
        fwd = spot * np.exp((r - q) * ti)
        iv = s.implied_vol(k, ti)
        calls[i] = [
            np.exp(-r * ti) * ql.blackFormula(ql.Option.Call, kj, fwd, v * np.sqrt(ti))
            for kj, v in zip(k, iv, strict=True)
        ]
    fd = local_vol_from_prices(t, k, calls, rate=r, div=q)
    exact = local_vol(s, t[:, None], k[None, :])
    inner = (slice(1, -1), slice(1, -1))
    err = np.max(np.abs(fd[inner] - exact[inner]))
    assert err < 2e-4, f"max |FD - Gatheral| = {err}"


def _heston_iv(spot, r, q, v0, kappa, theta, sigma, rho, t, strikes):
    """Heston implied vols: QuantLib AnalyticHestonEngine prices, QuantLib Black inversion."""
    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    rts = ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc))
    qts = ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc))
    proc = ql.HestonProcess(
        rts, qts, ql.QuoteHandle(ql.SimpleQuote(spot)), v0, kappa, theta, sigma, rho
    )
    engine = ql.AnalyticHestonEngine(ql.HestonModel(proc), 1e-12, 100000)
    days = round(t * 365)
    texact = days / 365.0
    mat = today + days
    fwd = spot * np.exp((r - q) * texact)
    df = np.exp(-r * texact)
    ivs = []
    for k in strikes:
        kind = ql.Option.Call if k >= fwd else ql.Option.Put
        opt = ql.VanillaOption(ql.PlainVanillaPayoff(kind, float(k)), ql.EuropeanExercise(mat))
        opt.setPricingEngine(engine)
        sd = ql.blackFormulaImpliedStdDev(kind, float(k), fwd, opt.NPV(), df, 0.0, 0.2, 1e-14, 1000)
        ivs.append(sd / np.sqrt(texact))
    return texact, fwd, np.array(ivs)


@pytest.mark.slow
def test_local_vol_mc_reprices_heston_smile():
    # Source: QuantLib AnalyticHestonEngine (v0 = 0.04, kappa = 1.5, theta = 0.04, sigma = 0.5,
    # rho = -0.7, r = 2 %, q = 0). SVI slices are fitted to the Heston smile at six maturities;
    # the local-vol Monte Carlo of that surface must return the Heston implied vols at three
    # maturities x five strikes. Tolerance 0.4 vol points: SVI fit error (< 0.3 pt at the
    # wings, far less at these strikes), Euler
    # bias at 250 steps/year and 3 MC standard errors (~0.1 pt each at 200k paths).
    spot, r, q = 100.0, 0.02, 0.0
    hp = dict(v0=0.04, kappa=1.5, theta=0.04, sigma=0.5, rho=-0.7)
    slice_t = [0.1, 0.25, 0.5, 0.75, 1.0, 1.5]
    ts, fwds, params = [], [], []
    for t in slice_t:
        sd = 0.2 * np.sqrt(t)
        k = spot * np.exp((r - q) * t + np.linspace(-4.5 * sd, 3.5 * sd, 41))
        texact, fwd, iv = _heston_iv(spot, r, q, **hp, t=t, strikes=k)
        y = np.log(k / fwd)
        p, _ = fit_slice(y, iv**2 * texact)
        w_fit = SviSurface([texact], [p], [fwd]).total_variance(y, texact)
        fit_err = 100.0 * np.max(np.abs(np.sqrt(w_fit / texact) - iv))
        assert fit_err < 0.3, f"SVI fit of Heston at t={t}: max error {fit_err:.3f} vol pts"
        ts.append(texact)
        fwds.append(fwd)
        params.append(p)
    surf = SviSurface(ts, params, fwds, spot=spot)
    assert surf.arbitrage_report().free, surf.arbitrage_report()

    check_t = [ts[1], ts[2], ts[4]]
    strikes = np.array([80.0, 90.0, 100.0, 110.0, 120.0])
    tt, kk = np.meshgrid(check_t, strikes, indexing="ij")
    fwd_t = surf.forward(tt)
    call = kk >= fwd_t
    res = mc_price(surf, tt, kk, call=call, paths=200_000, steps_per_year=250, seed=11)
    # Undiscounted prices on the forward: Black inversion (tested against QuantLib in
    # test_implied_vol.py).
    iv_mc = black_scholes.black_implied_vol(res.price, fwd_t, kk, tt, call=call)
    iv_heston = np.array([_heston_iv(spot, r, q, **hp, t=t, strikes=strikes)[2] for t in check_t])
    err = 100.0 * np.abs(iv_mc - iv_heston)
    print(f"\nHeston iv (pts):\n{100 * iv_heston}\nlocal-vol MC iv:\n{100 * iv_mc}\nerr:\n{err}")
    assert np.all(err < 0.4), f"max error {err.max():.3f} vol pts\n{err}"


def test_mc_is_deterministic_and_thread_independent():
    # Same seed: identical prices whatever the thread count; put-call parity on the same paths
    # (C - P = F - K, undiscounted) holds to rounding because both use one set of paths.
    s = SviSurface([0.5, 1.0], [P1, P2], [100.0, 101.0], spot=100.0)
    a = mc_price(
        s,
        [0.5, 1.0, 1.0],
        [100.0, 90.0, 90.0],
        [True, True, False],
        paths=4000,
        steps_per_year=50,
        seed=3,
        threads=1,
    )
    b = mc_price(
        s,
        [0.5, 1.0, 1.0],
        [100.0, 90.0, 90.0],
        [True, True, False],
        paths=4000,
        steps_per_year=50,
        seed=3,
        threads=3,
    )
    np.testing.assert_array_equal(a.price, b.price)
    # Parity within 4 standard errors of the forward's MC estimate (martingale check).
    diff = a.price[1] - a.price[2] - (101.0 - 90.0)
    assert abs(diff) < 4 * (a.stderr[1] + a.stderr[2]), (a, diff)


def test_local_vol_bad_input():
    s = SviSurface([1.0], [P1], [100.0])
    with pytest.raises(ValueError, match="strike must be > 0"):
        local_vol(s, 0.5, -1.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        local_vol(s, -0.5, 100.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        local_vol_from_prices([1.0, 0.5, 2.0], [1.0, 2.0, 3.0], np.ones((3, 3)))
    with pytest.raises(ValueError, match="paths must be >= 2"):
        mc_price(s, 1.0, 100.0, paths=1)
