"""Heston: v28quant against QuantLib's AnalyticHestonEngine on the same inputs.

Strip pricing and calibration run in one process. Prints the agreement, then a ratio table.
Run: PYTHONPATH=python python benchmarks/peers/heston.py
"""

from __future__ import annotations

import math
import time

import numpy as np
import QuantLib as ql
from v28quant.quant_models import heston_model as heston

S, R, Q = 100.0, 0.03, 0.01
TRUTH = (0.04, 1.5, 0.04, 0.5, -0.7)
DAYS = [91, 182, 365, 730]


def best(fn, repeat=5):
    out, t = None, math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t = min(t, time.perf_counter() - t0)
    return out, t


def ql_setup(params):
    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    rts = ql.YieldTermStructureHandle(ql.FlatForward(today, R, dc))
    qts = ql.YieldTermStructureHandle(ql.FlatForward(today, Q, dc))
    model = ql.HestonModel(ql.HestonProcess(rts, qts, ql.QuoteHandle(ql.SimpleQuote(S)), *params))
    return today, dc, rts, qts, model


def main() -> None:
    strikes = 60.0 + 0.8 * np.arange(100)
    calls = strikes >= 100
    t = np.repeat(np.array(DAYS) / 365, 100)
    k = np.tile(strikes, 4)
    c = np.tile(calls, 4)
    ours, t_ours = best(lambda: heston.price(S, k, t, R, Q, *TRUTH, call=c), repeat=20)

    today, _dc, rts, qts, model = ql_setup(TRUTH)
    options = []
    for d in DAYS:
        for kk, cc in zip(strikes, calls, strict=True):
            o = ql.VanillaOption(
                ql.PlainVanillaPayoff(ql.Option.Call if cc else ql.Option.Put, kk),
                ql.EuropeanExercise(today + d),
            )
            options.append(o)
    rows = []
    for name, engine in (
        (
            "AnalyticHestonEngine Gauss-Lobatto 1e-12",
            ql.AnalyticHestonEngine(model, 1e-12, 1_000_000),
        ),
        ("AnalyticHestonEngine Gauss-Laguerre 128", ql.AnalyticHestonEngine(model, 128)),
        ("COSHestonEngine", ql.COSHestonEngine(model)),
    ):
        for o in options:
            o.setPricingEngine(engine)

        def run():
            for o in options:
                o.recalculate()
            return np.array([o.NPV() for o in options])

        ref, t_ref = best(run, repeat=2)
        print(f"strip vs {name}: max abs diff {np.abs(ours - ref).max():.2e}")
        rows.append(
            (f"Heston 100 x 4 strip (us/option) vs {name}", t_ours / 400 * 1e6, t_ref / 400 * 1e6)
        )

    # Calibration to 60 quotes generated at TRUTH.
    tc = np.repeat([0.25, 0.5, 1.0, 2.0], 15)
    kc = np.tile(np.linspace(75.0, 130.0, 15), 4)
    cc = kc >= 100
    prices = heston.price(S, kc, tc, R, Q, *TRUTH, call=cc)
    fit, t_fit = best(
        lambda: heston.calibrate(S, kc, tc, R, Q, prices, cc, initial=(0.03, 2.0, 0.05, 0.4, -0.5)),
        repeat=3,
    )
    err = np.abs(np.array(fit.params) - np.array(TRUTH)).max()
    print(
        f"ours: params {tuple(round(p, 6) for p in fit.params)}, max param error {err:.1e}, "
        f"{fit.iterations} iterations, compiled time {fit.seconds * 1e3:.2f} ms"
    )

    today, _dc, rts, qts, model = ql_setup((0.03, 2.0, 0.05, 0.4, -0.5))
    engine = ql.AnalyticHestonEngine(model, 128)
    helpers = []
    for tt, kk, pp in zip(tc, kc, prices, strict=True):
        days = round(tt * 365)
        vol = float(np.nan_to_num(_iv(pp, kk, days / 365, kk >= 100)))
        h = ql.HestonModelHelper(
            ql.Period(days, ql.Days),
            ql.NullCalendar(),
            S,
            kk,
            ql.QuoteHandle(ql.SimpleQuote(vol)),
            rts,
            qts,
            ql.BlackCalibrationHelper.ImpliedVolError,
        )
        h.setPricingEngine(engine)
        helpers.append(h)

    def ql_fit():
        model.setParams(ql.Array([0.05, 2.0, 0.4, -0.5, 0.03]))  # theta, kappa, sigma, rho, v0
        model.calibrate(
            helpers,
            ql.LevenbergMarquardt(1e-8, 1e-8, 1e-8),
            ql.EndCriteria(500, 50, 1e-10, 1e-10, 1e-10),
        )
        return list(model.params())

    qp, t_qfit = best(ql_fit, repeat=2)
    print(f"QuantLib: (theta, kappa, sigma, rho, v0) = {tuple(round(p, 6) for p in qp)}")
    rows.append(("Heston calibration, 60 quotes (ms)", t_fit * 1e3, t_qfit * 1e3))

    print(f"\n{'job':62s} {'ours':>9s} {'peer':>9s} {'peer/ours':>10s}")
    for job, a, b in rows:
        print(f"{job:62s} {a:9.3f} {b:9.3f} {b / a:10.2f}")


def _iv(price, strike, t, call):
    from v28quant.quant_models.monte_carlo_pricer import implied_vol

    return implied_vol(price, S, strike, t, R, Q, call)


if __name__ == "__main__":
    main()
