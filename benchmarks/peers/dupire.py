"""Local vol on a 100 x 100 (t, K) grid.

v28quant (Gatheral's formula on SVI, analytic derivatives) vs QuantLib LocalVolSurface on a bicubic
BlackVarianceSurface of the same surface.

Both are checked against the analytic local vol of the surface, written out here in numpy
(Gatheral 2006, eq. 1.10, with hand-derived SVI derivatives). The surface is one SVI slice held
at fixed implied vol in maturity (w = t w_1(y) / t_1) with r = q = 0, so that QuantLib's grid
(20 dates x 41 strikes of the same vols) represents it exactly in t.

Run: PYTHONPATH=python python benchmarks/peers/dupire.py
"""

from __future__ import annotations

import timeit

import numpy as np
import QuantLib as ql
from v28quant.options.surface import SviSurface
from v28quant.quant_models.dupire_local_vol import local_vol

SPOT = 100.0
P = np.array([0.02, 0.12, -0.6, 0.02, 0.2])  # raw SVI at t1 = 1


def analytic(t, k):
    a, b, rho, m, s = P
    y = np.log(k / SPOT)
    d = y - m
    r = np.sqrt(d * d + s * s)
    u, u1, u2 = a + b * (rho * d + r), b * (rho + d / r), b * s * s / r**3
    w, wy, wyy, wt = t * u, t * u1, t * u2, u
    den = 1 - y * wy / w + 0.25 * (-0.25 - 1 / w + y * y / (w * w)) * wy * wy + 0.5 * wyy
    return np.sqrt(wt / den)


def best(fn, number):
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def main() -> None:
    surf = SviSurface([1.0], [P], [SPOT])
    t = np.linspace(0.1, 1.9, 100)
    k = np.linspace(70.0, 140.0, 100)
    exact = analytic(t[:, None], k[None, :])

    ours = local_vol(surf, t[:, None], k[None, :])
    t_ours = best(lambda: local_vol(surf, t[:, None], k[None, :]), 200)

    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    days = np.unique(np.round(np.linspace(0.02, 2.0, 20) * 365).astype(int))
    dates = [today + int(d) for d in days]
    strikes = list(np.linspace(50.0, 170.0, 41))
    vols = ql.Matrix(len(strikes), len(dates))
    for j, d in enumerate(days):
        iv = surf.implied_vol(np.array(strikes), d / 365.0)
        for i in range(len(strikes)):
            vols[i][j] = float(iv[i])
    bvs = ql.BlackVarianceSurface(today, ql.NullCalendar(), dates, strikes, vols, dc)
    bvs.setInterpolation("bicubic")
    bvs.enableExtrapolation()
    flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    lvs = ql.LocalVolSurface(ql.BlackVolTermStructureHandle(bvs), flat, flat, SPOT)
    lvs.enableExtrapolation()

    def quantlib():
        return np.array([[lvs.localVol(float(ti), float(kj), True) for kj in k] for ti in t])

    peer = quantlib()
    t_peer = best(quantlib, 3)

    err_ours = float(np.max(np.abs(ours - exact)))
    err_peer = float(np.max(np.abs(peer - exact)))
    print(
        f"max |ours - analytic| = {err_ours:.2e}   max |QuantLib - analytic| = {err_peer:.2e}   "
        f"max |ours - QuantLib| = {np.max(np.abs(ours - peer)):.2e}"
    )
    print()
    print("| job (100 x 100 grid) | v28quant | QuantLib LocalVolSurface (bicubic) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| local vol, per grid | {t_ours * 1e3:.3f} ms | {t_peer * 1e3:.1f} ms | "
        f"{t_peer / t_ours:.0f}x |"
    )
    print(f"| local vol, per point | {t_ours / 1e4 * 1e9:.1f} ns | {t_peer / 1e4 * 1e9:.0f} ns | |")
    print(f"| max error vs analytic | {err_ours:.1e} | {err_peer:.1e} | |")


if __name__ == "__main__":
    main()
