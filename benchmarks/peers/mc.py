"""Monte Carlo.

v28quant against numpy (GBM Asian, antithetic + control variate; European) and QuantLib's
MCEuropeanEngine, on the same inputs in one process. Prints the agreement, then a ratio table.

numpy runs 2e5 x 252 paths (in chunks, to bound memory) instead of 1e6 x 252 to keep the script
under two minutes; rates are per path-step, so sizes compare directly.
Run: PYTHONPATH=python python benchmarks/peers/mc.py
"""

from __future__ import annotations

import math
import time

import numpy as np
import QuantLib as ql
from v28quant.quant_models import monte_carlo_pricer as mc

S, K, T, R, Q, VOL = 100.0, 100.0, 1.0, 0.05, 0.02, 0.2


def best(fn, repeat=3):
    out, t = None, math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t = min(t, time.perf_counter() - t0)
    return out, t


def numpy_asian(paths, steps, seed=0, chunk=20_000):
    # Antithetic pairs; control variate = geometric Asian (closed form), coefficient by regression.
    rng = np.random.default_rng(seed)
    dt = T / steps
    mu, sd, df = (R - Q - 0.5 * VOL**2) * dt, VOL * math.sqrt(dt), math.exp(-R * T)
    ys, xs = [], []
    for _ in range(paths // (2 * chunk)):
        z = rng.standard_normal((chunk, steps))
        out = []
        for sign in (1.0, -1.0):
            logs = np.cumsum(mu + sign * sd * z, axis=1)
            a = S * np.exp(logs).mean(axis=1)
            g = S * np.exp(logs.mean(axis=1))
            out.append((df * np.maximum(a - K, 0), df * np.maximum(g - K, 0)))
        ys.append(0.5 * (out[0][0] + out[1][0]))
        xs.append(0.5 * (out[0][1] + out[1][1]))
    y, x = np.concatenate(ys), np.concatenate(xs)
    b = np.cov(y, x)[0, 1] / x.var(ddof=1)
    return y.mean() - b * (x.mean() - mc.geometric_asian(S, K, T, R, Q, VOL, True, steps))


def numpy_european(paths, seed=0):
    # One exact log step, antithetic pairs; the plain antithetic estimator.
    z = np.random.default_rng(seed).standard_normal(paths // 2)
    drift, sd, df = (R - Q - 0.5 * VOL**2) * T, VOL * math.sqrt(T), math.exp(-R * T)
    up, down = S * np.exp(drift + sd * z), S * np.exp(drift - sd * z)
    return df * 0.5 * (np.maximum(up - K, 0.0) + np.maximum(down - K, 0.0)).mean()


def process_cpu(fn):
    # Process CPU seconds (all threads) of one call: with free cores, 2 threads scale by
    # cpu(1 thread) / (cpu(2 threads) / 2) whatever else the machine is doing.
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def quantlib_european(paths):
    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    proc = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(S)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, Q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, R, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), VOL, dc)),
    )
    opt = ql.VanillaOption(
        ql.PlainVanillaPayoff(ql.Option.Call, K), ql.EuropeanExercise(today + 365)
    )
    opt.setPricingEngine(
        ql.MCEuropeanEngine(
            proc,
            "pseudorandom",
            timeSteps=1,
            requiredSamples=paths // 2,
            antitheticVariate=True,
            seed=42,
        )
    )
    return opt.NPV()


def main() -> None:
    rows = []
    steps = 252
    ours, t_ours = best(lambda: mc.asian(S, K, T, R, Q, VOL, True, steps, 1_000_000, 1, threads=1))
    _, t_ours2 = best(lambda: mc.asian(S, K, T, R, Q, VOL, True, steps, 1_000_000, 1, threads=2))
    npaths = 200_000
    peer, t_peer = best(lambda: numpy_asian(npaths, steps), repeat=1)
    print(
        f"Asian 252 steps: ours {ours.price:.6f} +- {ours.stderr:.1e}, numpy {peer:.6f}; "
        f"diff {abs(ours.price - peer):.2e}"
    )
    ns_ours, ns_ours2 = t_ours / (1e6 * steps) * 1e9, t_ours2 / (1e6 * steps) * 1e9
    ns_peer = t_peer / (npaths * steps) * 1e9
    rows.append(("GBM Asian anti+CV, 1 thread (ns/path-step)", ns_ours, "numpy", ns_peer))
    rows.append(("GBM Asian anti+CV, 2 threads (ns/path-step)", ns_ours2, "ours 1 thread", ns_ours))

    eu, t_eu = best(
        lambda: mc.european(S, K, T, R, Q, VOL, True, 1_000_000, 1, True, False, threads=1),
        repeat=5,
    )
    qlp, t_ql = best(lambda: quantlib_european(1_000_000), repeat=1)
    print(
        f"European 1e6 antithetic: ours {eu.price:.6f} +- {eu.stderr:.1e}, QuantLib {qlp:.6f}; "
        f"diff {abs(eu.price - qlp):.2e}"
    )
    rows.append(
        (
            "European 1e6 one-step antithetic (ms)",
            t_eu * 1e3,
            "QuantLib MCEuropeanEngine",
            t_ql * 1e3,
        )
    )
    npe, t_npe = best(lambda: numpy_european(1_000_000))
    print(f"European 1e6 antithetic: numpy {npe:.6f}; diff {abs(eu.price - npe):.2e}")
    rows.append(("European 1e6 one-step antithetic (ms)", t_eu * 1e3, "numpy", t_npe * 1e3))

    print(f"\n{'job':48s} {'ours':>10s} {'peer':>10s} {'peer/ours':>10s}  peer")
    for job, a, name, b in rows:
        print(f"{job:48s} {a:10.3f} {b:10.3f} {b / a:10.2f}  {name}")
    print(f"GBM path-steps/s: 1 thread {1e3 / ns_ours:.0f} M, 2 threads {1e3 / ns_ours2:.0f} M")
    cpu1 = process_cpu(lambda: mc.asian(S, K, T, R, Q, VOL, True, steps, 1_000_000, 1, threads=1))
    cpu2 = process_cpu(lambda: mc.asian(S, K, T, R, Q, VOL, True, steps, 1_000_000, 1, threads=2))
    print(
        f"GBM Asian process CPU: 1 thread {cpu1:.3f} s, 2 threads {cpu2:.3f} s; "
        f"speed-up on two free cores {2 * cpu1 / cpu2:.2f}x"
    )


if __name__ == "__main__":
    main()
