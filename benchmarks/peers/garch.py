"""GARCH(1,1) fit: v28quant vs arch on the same simulated series, in one process.

First the answers (log-likelihood, parameters: both with arch's EWMA backcast, so the same
likelihood function), then the timing table (median wall time per fit, single thread).

Run: PYTHONPATH=python python benchmarks/peers/garch.py
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from arch import arch_model
from v28quant.quant_models import garch


def simulate(n: int, dist: str, seed: int) -> np.ndarray:
    """Daily percent returns: mu 0.05, omega 0.02, alpha 0.08, beta 0.9 (t: nu 6); 500 burn-in."""
    rng = np.random.default_rng(seed)
    nu = 6.0
    z = (
        rng.standard_normal(n + 500)
        if dist == "normal"
        else (rng.standard_t(nu, n + 500) * math.sqrt((nu - 2.0) / nu))
    )
    out = np.empty(n + 500)
    h, e = 1.0, 0.0
    for t in range(n + 500):
        h = 0.02 + 0.08 * e * e + 0.9 * h
        e = math.sqrt(h) * z[t]
        out[t] = 0.05 + e
    return out[500:]


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up (arch's numba JIT, our first call)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    warnings.simplefilter("ignore")
    rows = []
    print("answers (ours with backcast='arch' vs arch default fit on the same series):")
    for dist in ("normal", "t"):
        for n in (2500, 10000):
            y = simulate(n, dist, seed=n + (1 if dist == "t" else 0))
            am = arch_model(
                y,
                mean="Constant",
                vol="GARCH",
                p=1,
                q=1,
                rescale=False,
                dist="studentst" if dist == "t" else "normal",
            )
            theirs = am.fit(disp="off")
            ours = garch.fit(y, dist, backcast="arch")
            dll = ours.loglik - theirs.loglikelihood
            dpar = np.max(np.abs(ours.params - theirs.params.to_numpy()))
            print(
                f"  {dist:6s} n={n:6d}  loglik ours {ours.loglik:.6f} arch "
                f"{theirs.loglikelihood:.6f} (ours - arch {dll:+.2e})  max |param diff| "
                f"{dpar:.2e}  converged {ours.converged} ({ours.iterations} Newton steps)"
            )
            repeat = 30 if n <= 2500 else 15
            t_arch = median_time(lambda am=am: am.fit(disp="off"), repeat)
            t_ours = median_time(lambda y=y, d=dist: garch.fit(y, d, backcast="arch"), 200)
            t_ours_fcp = median_time(lambda y=y, d=dist: garch.fit(y, d), 200)
            rows.append((dist, n, t_ours, t_ours_fcp, t_arch))
    print()
    print("median time per fit (ms); ratio = arch / ours (backcast='arch')")
    print(
        f"{'dist':6s} {'n':>6s} {'ours arch-bc':>13s} {'ours FCP':>9s} {'arch':>9s} {'ratio':>7s}"
    )
    for dist, n, t_ours, t_fcp, t_arch in rows:
        print(
            f"{dist:6s} {n:6d} {t_ours * 1e3:13.3f} {t_fcp * 1e3:9.3f} {t_arch * 1e3:9.3f} "
            f"{t_arch / t_ours:7.1f}"
        )


if __name__ == "__main__":
    main()
