"""Merton series.

v28quant against a numpy Poisson-weighted BSM series (scipy ndtr), 300-option strip, same inputs in
one process. Run: PYTHONPATH=python python benchmarks/peers/merton.py
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.special import ndtr
from v28quant.quant_models import merton_jump_diffusion as merton

S, T, R, Q, VOL, LAM, MU, DEL = 100.0, 0.5, 0.03, 0.01, 0.2, 1.0, -0.1, 0.15


def numpy_merton(k, call, n_terms=40):
    kbar = math.exp(MU + 0.5 * DEL**2) - 1
    lp = LAM * (1 + kbar) * T
    n = np.arange(n_terms)[:, None]
    w = np.exp(
        -lp + n * math.log(lp) - np.array([math.lgamma(i + 1) for i in range(n_terms)])[:, None]
    )
    sd = np.sqrt(VOL**2 * T + n * DEL**2)
    rn_t = R * T - LAM * kbar * T + n * math.log(1 + kbar)
    d1 = (np.log(S / k) + rn_t - Q * T) / sd + 0.5 * sd
    d2 = d1 - sd
    c = S * math.exp(-Q * T) * ndtr(d1) - k * np.exp(-rn_t) * ndtr(d2)
    p = k * np.exp(-rn_t) * ndtr(-d2) - S * math.exp(-Q * T) * ndtr(-d1)
    return (w * np.where(call, c, p)).sum(axis=0)


def best(fn, repeat=50):
    out, t = None, math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t = min(t, time.perf_counter() - t0)
    return out, t


def main() -> None:
    k = np.linspace(50, 150, 300)
    call = k >= 100
    ours, t_ours = best(lambda: merton.price(S, k, T, R, Q, VOL, LAM, MU, DEL, call))
    peer, t_peer = best(lambda: numpy_merton(k, call))
    print(f"max abs diff {np.abs(ours - peer).max():.2e}")
    a, b = t_ours / 300 * 1e6, t_peer / 300 * 1e6
    print(f"\n{'job':40s} {'ours':>9s} {'peer':>9s} {'peer/ours':>10s}  peer")
    print(
        f"{'Merton 300-option strip (us/option)':40s} {a:9.3f} {b:9.3f} {b / a:10.2f}  numpy series"
    )


if __name__ == "__main__":
    main()
