"""Joint arbitrage-free refit of SVI slices (``svi_arbitrage.repair_surface``).

Independent checks: raw SVI and the Gatheral-Jacquier density factor g(y) written out here in
numpy (Gatheral & Jacquier 2014, eq. 2.1), the Breeden-Litzenberger density of undiscounted
Black calls from QuantLib (d2C/dK2 >= 0), the definition of calendar arbitrage (total
variance non-decreasing in maturity at fixed log-moneyness), and real Cboe SPX quotes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql
from v28quant.options.errors import ChainUnusable
from v28quant.options.surface import SviSurface
from v28quant.options.svi_arbitrage import repair_surface
from v28quant.quant_models.dupire_local_vol import local_vol


def svi_w(p, y):
    a, b, rho, m, s = p
    return a + b * (rho * (y - m) + np.sqrt((y - m) ** 2 + s**2))


def svi_g(p, y):
    """g(y) from finite differences of w: independent of the module's analytic derivatives."""
    h = 1e-5
    w = svi_w(p, y)
    w1 = (svi_w(p, y + h) - svi_w(p, y - h)) / (2 * h)
    w2 = (svi_w(p, y + h) - 2 * w + svi_w(p, y - h)) / h**2
    return (1 - y * w1 / (2 * w)) ** 2 - w1**2 / 4 * (1 / w + 0.25) + w2 / 2


def half_width(p):
    # 1.5 times arbitrage_report's range (8 ATM standard deviations), as SviSurface.fit uses
    return 1.5 * 8.0 * np.sqrt(svi_w(p, 0.0))


def vol_errors(p, y, w, t):
    return 100.0 * (np.sqrt(svi_w(p, y) / t) - np.sqrt(w / t))


def test_calendar_crossing_beyond_the_quotes_is_resolved_in_the_wings():
    # The 3-month slice's put wing is steeper (slope b(1 - rho) = 0.128) than the 6-month
    # one's (0.078), so the slices cross far out in the put wing (the spread is most negative
    # at y = -2.4, the end of the range), well beyond both slices' quotes. The joint
    # refit must order them on the whole range, order the wing slopes (so they stay ordered
    # beyond it), and keep both smiles on their quotes.
    t = np.array([0.25, 0.5])
    p_free = np.array([[0.01, 0.08, -0.6, 0.0, 0.1], [0.03, 0.06, -0.3, 0.0, 0.15]])
    ys = [np.linspace(-0.25, 0.2, 19), np.linspace(-0.3, 0.3, 25)]
    ws = [svi_w(p, y) for p, y in zip(p_free, ys, strict=True)]
    grid = np.linspace(-half_width(p_free[1]), half_width(p_free[1]), 4001)
    assert np.min(svi_w(p_free[1], grid) - svi_w(p_free[0], grid)) < 0  # the fault

    half = np.array([half_width(p) for p in p_free])
    got = repair_surface(p_free, ys, ws, half)

    for p, h in zip(got, half, strict=True):
        yy = np.linspace(-h, h, 4001)
        assert np.min(svi_g(p, yy)) >= -1e-8, p
        assert p[1] * (1 + abs(p[2])) <= 2.0  # Lee
    for h in half:
        yy = np.linspace(-h, h, 4001)
        assert np.min(svi_w(got[1], yy) - svi_w(got[0], yy)) >= 0.0
    slopes = got[:, 1] * (1 + np.outer([1, -1], got[:, 2]))
    assert np.all(slopes[:, 1] >= slopes[:, 0]), slopes
    # Both slices stay on their quotes (measured: at most 0.03 and 0.20 vol points off).
    for p, y, w, tt in zip(got, ys, ws, t, strict=True):
        assert np.max(np.abs(vol_errors(p, y, w, tt))) < 0.4
    assert SviSurface(t, got, [100.0, 100.0]).arbitrage_report().free


def test_vogt_butterfly_slice_is_refitted_to_a_positive_density():
    # Gatheral & Jacquier (2014) eq. 5.1, Axel Vogt's slice (T = 1) has butterfly arbitrage
    # near y = 0.9 (g < 0). Quoted on |y| <= 1.2 it must be refitted to a slice whose
    # undiscounted Black call prices (QuantLib) are convex in strike everywhere on the range.
    vogt = np.array([-0.0410, 0.1331, 0.3060, 0.3586, 0.4153])
    y = np.linspace(-1.2, 1.2, 41)
    w = svi_w(vogt, y)
    assert np.min(svi_g(vogt, y)) < 0  # the fault
    (got,) = repair_surface(vogt[None, :], [y], [w], np.array([3.0]))
    yy = np.linspace(-3.0, 3.0, 6001)
    assert np.min(svi_g(got, yy)) >= -1e-8, got
    ks = np.exp(np.linspace(-1.5, 1.5, 301))
    calls = np.array(
        [ql.blackFormula(ql.Option.Call, k, 1.0, np.sqrt(svi_w(got, np.log(k)))) for k in ks]
    )
    slopes = np.diff(calls) / np.diff(ks)
    density = np.diff(slopes) / (0.5 * (ks[2:] - ks[:-2]))
    assert np.min(density) > -1e-9, np.min(density)
    # The refit stays close to the quotes (measured: 1.5 vol points at worst, around the
    # negative density).
    errs = vol_errors(got, y, w, 1.0)
    assert np.max(np.abs(errs)) < 3.0, errs


def test_one_crossing_pair_costs_little_accuracy(shared_data):
    # Source: real Cboe SPX quotes of 2022-01-07, whose free fits are free of arbitrage but for
    # one calendar crossing: the joint refit removes it, and no expiry's fit error rises by
    # more than 0.5 vol points (measured: the largest RMSE falls, 1.28 to 0.82).
    chain = pd.read_csv(shared_data / "options" / "SPX_2022-01-07_cboe.csv")
    chain = chain[chain["root"] == "SPXW"]
    free = SviSurface.fit(chain, spot=4677.03, repair=False)
    fixed = SviSurface.fit(chain, spot=4677.03)
    assert not free.arbitrage_report().free
    assert fixed.arbitrage_report().free
    assert fixed.fit_info["repaired"].all()
    diff = fixed.fit_info["rmse_vol_pts"] - free.fit_info["rmse_vol_pts"]
    assert diff.max() < 0.5, diff


def test_bad_arguments_are_named():
    p = np.array([[0.01, 0.08, -0.6, 0.0, 0.1]])
    y = np.linspace(-0.2, 0.2, 9)
    w = svi_w(p[0], y)
    one = np.array([1.0])
    with pytest.raises(ValueError, match=r"params must have shape \(n, 5\)"):
        repair_surface(p[:, :4], [y], [w], one)
    with pytest.raises(ValueError, match="one quote array"):
        repair_surface(p, [y, y], [w], one)
    with pytest.raises(ValueError, match=r"ws\[0\] finite and > 0"):
        repair_surface(p, [y], [np.where(y > 0, np.nan, w)], one)
    with pytest.raises(ValueError, match=r"ys\[0\] and ws\[0\]"):
        repair_surface(p, [y], [w[:-1]], one)
    with pytest.raises(ValueError, match="half must be"):
        repair_surface(p, [y], [w], -one)


def _flat_vol_chain(vols: dict[float, float]) -> pd.DataFrame:
    """Return calls and puts on strikes 80..120, forward 100, undiscounted, flat vol per t."""
    rows = []
    for t, vol in vols.items():
        for k in np.arange(80.0, 121.0, 2.5):
            for is_call in (True, False):
                opt = ql.Option.Call if is_call else ql.Option.Put
                price = ql.blackFormula(opt, k, 100.0, vol * np.sqrt(t))
                rows.append(
                    {
                        "strike": k,
                        "type": "call" if is_call else "put",
                        "bid": price * 0.99,
                        "ask": price * 1.01,
                        "t": t,
                        "iv": vol,
                    }
                )
    return pd.DataFrame(rows)


def test_quotes_that_cross_are_refused_beyond_the_error_limit():
    # 25 % at 3 months and 17 % at 6 months: the later total variance (0.01445) lies below
    # the earlier (0.015625) at every quoted strike, so an arbitrage-free surface misses both
    # (by about half a vol point at best).
    chain = _flat_vol_chain({0.25: 0.25, 0.5: 0.17})
    with pytest.raises(ChainUnusable, match=r"within 0.1 vol points .* t=0\.\d+ by \d+\.\d"):
        SviSurface.fit(chain, quotes="iv", spot=100.0, max_repair_rmse=0.1)
    # Within the default limit the compromise is returned, free of arbitrage, and said.
    surf = SviSurface.fit(chain, quotes="iv", spot=100.0)
    assert surf.arbitrage_report().free
    assert surf.fit_info["repaired"].all()
    w = surf.total_variance(0.0, surf.expiries)
    assert w[1] >= w[0]
    # A consistent chain (vol rising with maturity) needs no repair.
    calm = SviSurface.fit(_flat_vol_chain({0.25: 0.15, 0.5: 0.2}), quotes="iv", spot=100.0)
    assert not calm.fit_info["repaired"].any()


def _local_vol_grid(surf: SviSurface) -> np.ndarray:
    out = []
    for t in np.linspace(surf.expiries[0], surf.expiries[-1], 60):
        f, sd = surf.forward(t), np.sqrt(surf.total_variance(0.0, t))
        k = f * np.exp(np.linspace(-4.0 * sd, 4.0 * sd, 81))
        out.append(local_vol(surf, np.full(k.size, t), k))
    return np.array(out)


def test_dupire_local_vol_is_defined_on_the_refitted_real_surface(shared_data):
    # Source: real Cboe SPX quotes of 2023-12-08. Dupire's local variance is the ratio of the
    # calendar and butterfly terms (Gatheral 2006, eq. 1.10), so it is undefined where the
    # surface has static arbitrage: on the free fits NaN on 12 % of a grid of +-4 ATM standard
    # deviations over the quoted expiries, none on the refitted surface.
    chain = pd.read_csv(shared_data / "options" / "SPX_2023-12-08_cboe.csv")
    chain = chain[chain["root"] == "SPXW"]
    free = _local_vol_grid(SviSurface.fit(chain, spot=4604.37, repair=False))
    assert np.mean(~np.isfinite(free)) > 0.05
    fixed = _local_vol_grid(SviSurface.fit(chain, spot=4604.37))
    assert np.all(np.isfinite(fixed)), np.mean(~np.isfinite(fixed))
    assert np.all((fixed > 0.01) & (fixed < 1.0)), (fixed.min(), fixed.max())


def test_refits_on_several_threads_match_sequential_and_restore_blas_limits():
    # The engine refits surfaces on worker threads. Refits there leave the process's BLAS
    # limits as they are (threadpoolctl lets one thread at a time set them: limits set and
    # restored from several threads left the process at one BLAS thread after this test).
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    t = np.array([0.25, 0.5])
    p_free = np.array([[0.01, 0.08, -0.6, 0.0, 0.1], [0.03, 0.06, -0.3, 0.0, 0.15]])
    ys = [np.linspace(-0.25, 0.2, 19), np.linspace(-0.3, 0.3, 25)]
    cases = []
    for k in range(6):  # six noisy versions of the crossing surface above
        noise = np.random.default_rng(k)
        cases.append(
            [
                svi_w(p, y) * (1 + 2e-3 * noise.standard_normal(y.size))
                for p, y in zip(p_free, ys, strict=True)
            ]
        )
    half = np.array([half_width(p) for p in p_free])
    before = [(d["filepath"], d["num_threads"]) for d in threadpool_info()]

    sequential = [repair_surface(p_free, ys, ws, half) for ws in cases]
    with ThreadPoolExecutor(3) as ex:
        threaded = list(ex.map(lambda ws: repair_surface(p_free, ys, ws, half), cases))

    for a, b in zip(sequential, threaded, strict=True):
        # equal up to rounding (numpy's SIMD sums depend on the arrays' alignment)
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
        assert SviSurface(t, b, [100.0, 100.0]).arbitrage_report().free
    assert [(d["filepath"], d["num_threads"]) for d in threadpool_info()] == before


def crossing_pair():
    """Two slices quoted on their own smiles whose wings cross far out (a refit is needed)."""
    t = np.array([0.25, 0.5])
    p_free = np.array([[0.01, 0.08, -0.6, 0.0, 0.1], [0.03, 0.06, -0.3, 0.0, 0.15]])
    ys = [np.linspace(-0.25, 0.2, 19), np.linspace(-0.3, 0.3, 25)]
    ws = [svi_w(p, y) for p, y in zip(p_free, ys, strict=True)]
    return t, p_free, ys, ws, np.array([half_width(p) for p in p_free])


def test_warm_start_from_the_last_refit_follows_quotes_that_moved():
    # The next cycle's quotes: the crossing pair's with 0.3 % noise. Started from the
    # last cycle's refit, the refit reaches the quality of a cold refit of the new quotes.
    t, p_free, ys, ws, half = crossing_pair()
    last = repair_surface(p_free, ys, ws, half)
    noise = np.random.default_rng(7)
    moved = [w * (1 + 3e-3 * noise.standard_normal(w.size)) for w in ws]

    cold = repair_surface(p_free, ys, moved, half)
    warm = repair_surface(p_free, ys, moved, half, start=last)

    def sq_err(p_all):
        return sum(
            float(np.sum((svi_w(p, y) - w) ** 2)) for p, y, w in zip(p_all, ys, moved, strict=True)
        )

    for p, h in zip(warm, half, strict=True):
        assert np.min(svi_g(p, np.linspace(-h, h, 4001))) >= -1e-8, p
    for h in half:
        yy = np.linspace(-h, h, 4001)
        assert np.min(svi_w(warm[1], yy) - svi_w(warm[0], yy)) >= 0.0
    assert sq_err(warm) <= 1.1 * sq_err(cold)
    for p, y, w, tt in zip(warm, ys, moved, t, strict=True):
        assert np.max(np.abs(vol_errors(p, y, w, tt))) < 0.6
    with pytest.raises(ValueError, match="start"):
        repair_surface(p_free, ys, moved, half, start=last[:1])


def test_last_refit_is_kept_while_it_fits_and_refitted_once_quotes_move_away():
    # A last refit within POLISH_TOL of the quotes (0.5 % of the vol, RMS) is returned as it
    # is; once the quotes have moved beyond that, the surface is refitted to them.
    t, p_free, ys, ws, half = crossing_pair()
    last = repair_surface(p_free, ys, ws, half)

    def rms_rel_vol(p_all, quotes):
        err = np.concatenate(
            [np.sqrt(svi_w(p, y) / w) - 1.0 for p, y, w in zip(p_all, ys, quotes, strict=True)]
        )
        return float(np.sqrt(np.mean(err**2)))

    still = [w * (1 + 1e-3 * np.sin(7 * y)) for w, y in zip(ws, ys, strict=True)]
    assert rms_rel_vol(last, still) < 5e-3
    kept = repair_surface(p_free, ys, still, half, start=last)
    np.testing.assert_allclose(kept, last, rtol=1e-12, atol=1e-15)

    moved = [w * 1.05 for w in ws]  # vol up 2.5 %: the free fits scale a and b
    p_moved = p_free * np.array([1.05, 1.05, 1.0, 1.0, 1.0])
    assert rms_rel_vol(last, moved) > 5e-3
    refit = repair_surface(p_moved, ys, moved, half, start=last)
    assert rms_rel_vol(refit, moved) < 0.2 * rms_rel_vol(last, moved)
    for p, h in zip(refit, half, strict=True):
        assert np.min(svi_g(p, np.linspace(-h, h, 4001))) >= -1e-8, p
    for p, y, w, tt in zip(refit, ys, moved, t, strict=True):
        assert np.max(np.abs(vol_errors(p, y, w, tt))) < 0.6


def test_fit_starts_a_needed_refit_from_a_matching_warm_surface(shared_data, monkeypatch):
    # SPX 2022-01-07 needs a refit (one calendar crossing). A warm surface of the same
    # expiries is passed on as the refit's start; one of other expiries is ignored.
    import v28quant.options.surface as surface_module

    chain = pd.read_csv(shared_data / "options" / "SPX_2022-01-07_cboe.csv")
    chain = chain[chain["root"] == "SPXW"]
    cold = SviSurface.fit(chain, spot=4677.03)
    starts = []

    def spy_repair(*args, start=None):
        starts.append(start)
        return repair_surface(*args, start=start)

    monkeypatch.setattr(surface_module, "repair_surface", spy_repair)
    warm = SviSurface.fit(chain, spot=4677.03, warm_start=cold)
    other = SviSurface(cold.expiries[:2], cold.params[:2], cold.forwards[:2])
    unmatched = SviSurface.fit(chain, spot=4677.03, warm_start=other)

    np.testing.assert_array_equal(starts[0], cold.params)
    assert starts[1] is None
    # free of arbitrage by the module-independent g and calendar checks, on each slice's range
    for i, p in enumerate(warm.params):
        h = half_width(p)
        yy = np.linspace(-h, h, 4001)
        assert np.min(svi_g(p, yy)) >= -1e-8, i
        if i > 0:
            assert np.min(svi_w(p, yy) - svi_w(warm.params[i - 1], yy)) >= 0.0, i
    assert warm.fit_info["rmse_vol_pts"].max() <= cold.fit_info["rmse_vol_pts"].max() + 0.05
    np.testing.assert_allclose(unmatched.params, cold.params, rtol=1e-9, atol=1e-12)
