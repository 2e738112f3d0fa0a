"""Peers for v28quant.options.black_scholes, single thread, same inputs, one process.

1. Price + 5 Greeks for 1e6 options: v28quant vs numpy + scipy.special.ndtr.
2. Implied vol for 1e5 out-of-the-money options (K/F 0.5-2, T 1 day-5 years, vol 1 %-300 %):
   v28quant vs QuantLib blackFormulaImpliedStdDev and py_lets_be_rational, with each one's max
   |vol error| where price / forward >= 1e-12.

Run: PYTHONPATH=python python benchmarks/peers/black_scholes.py
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import py_lets_be_rational as lbr
import QuantLib as ql
from scipy.special import ndtr
from v28quant.options import black_scholes as bs


def best_of(fn: Callable[[], object], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def numpy_price_greeks(s, k, t, r, q, v, call):
    """Textbook vectorised BSM with scipy's ndtr: price, delta, gamma, vega, theta, rho."""
    w = np.where(call, 1.0, -1.0)
    sqrt_t = np.sqrt(t)
    sd = v * sqrt_t
    d1 = (np.log(s / k) + (r - q) * t) / sd + 0.5 * sd
    d2 = d1 - sd
    df_r, df_q = np.exp(-r * t), np.exp(-q * t)
    n1, n2 = ndtr(w * d1), ndtr(w * d2)
    pdf1 = np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    price = w * (s * df_q * n1 - k * df_r * n2)
    delta = w * df_q * n1
    gamma = df_q * pdf1 / (s * sd)
    vega = s * df_q * pdf1 * sqrt_t
    theta = -s * df_q * pdf1 * v / (2 * sqrt_t) - w * r * k * df_r * n2 + w * q * s * df_q * n1
    rho = w * k * t * df_r * n2
    return price, delta, gamma, vega, theta, rho


def bsm_table(rows: list[tuple[str, float, float, str]]) -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    s = rng.uniform(50, 150, n)
    k = rng.uniform(50, 150, n)
    t = rng.uniform(1 / 365, 5, n)
    r = rng.uniform(-0.01, 0.08, n)
    q = rng.uniform(0.0, 0.05, n)
    v = rng.uniform(0.01, 3.0, n)
    call = rng.integers(0, 2, n).astype(bool)
    ours = bs.price_greeks(s, k, t, r, q, v, call)
    ours_flat = (ours[0], *ours[1])
    peer = numpy_price_greeks(s, k, t, r, q, v, call)
    diffs = [
        float(np.max(np.abs(a - b) / (1.0 + np.abs(b))))
        for a, b in zip(ours_flat, peer, strict=True)
    ]
    print(
        f"BSM price+Greeks agreement, max |diff| / (1 + |peer|) per output: "
        f"{', '.join(f'{d:.1e}' for d in diffs)}"
    )
    t_ours = best_of(lambda: bs.price_greeks(s, k, t, r, q, v, call), 5) / n
    t_peer = best_of(lambda: numpy_price_greeks(s, k, t, r, q, v, call), 3) / n
    rows.append(
        (
            "BSM price + 5 Greeks, 1e6 options",
            t_ours * 1e9,
            t_peer * 1e9,
            "numpy+scipy.special.ndtr",
        )
    )


def iv_table(rows: list[tuple[str, float, float, str]]) -> None:
    n = 100_000
    rng = np.random.default_rng(1)
    f = 100.0
    k = f * np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))
    t = np.exp(rng.uniform(math.log(1 / 365), math.log(5.0), n))
    v = np.exp(rng.uniform(math.log(0.01), math.log(3.0), n))
    call = k >= f
    # Reference prices from Jäckel's own normalised Black (independent of our BSM).
    price = np.array([lbr.black(f, k[i], v[i], t[i], 1 if call[i] else -1) for i in range(n)])
    use = price / f >= 1e-12

    def ours():
        return bs.black_implied_vol(price, f, k, t, call)

    ql_type = [ql.Option.Call if c else ql.Option.Put for c in call]

    def quantlib():
        out = np.full(n, np.nan)
        for i in range(n):
            if not use[i]:
                continue
            try:
                out[i] = ql.blackFormulaImpliedStdDev(ql_type[i], k[i], f, price[i]) / math.sqrt(
                    t[i]
                )
            except RuntimeError:
                pass
        return out

    def jaeckel_py():
        out = np.full(n, np.nan)
        for i in range(n):
            if use[i]:
                out[i] = lbr.implied_volatility_from_a_transformed_rational_guess(
                    price[i], f, k[i], t[i], 1 if call[i] else -1
                )
        return out

    res = {"v28quant": ours(), "QuantLib": quantlib(), "py_lets_be_rational": jaeckel_py()}
    for name, iv in res.items():
        err = np.abs(iv - v)[use]
        print(
            f"IV {name:>20}: max |vol error| {np.nanmax(err):.1e} "
            f"(failures/NaN {int(np.isnan(err).sum())} of {int(use.sum())})"
        )
    m = int(use.sum())
    t_ours = best_of(ours, 5) / n
    t_ql = best_of(quantlib, 1) / m
    t_lbr = best_of(jaeckel_py, 1) / m
    rows.append(
        ("implied vol, 1e5 options", t_ours * 1e9, t_ql * 1e9, "QuantLib blackFormulaImpliedStdDev")
    )
    rows.append(("implied vol, 1e5 options", t_ours * 1e9, t_lbr * 1e9, "py_lets_be_rational"))


def main() -> None:
    rows: list[tuple[str, float, float, str]] = []
    bsm_table(rows)
    iv_table(rows)
    print()
    print(f"{'job':<36} {'ours ns/item':>13} {'peer ns/item':>13} {'speed-up':>9}  peer")
    for job, ours, peer, name in rows:
        print(f"{job:<36} {ours:>13.1f} {peer:>13.1f} {peer / ours:>8.1f}x  {name}")


if __name__ == "__main__":
    main()
