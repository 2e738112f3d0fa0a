"""Peer for v28quant.quant_models.crr_binomial.

QuantLib's BinomialVanillaEngine("crr"), single thread, same option, American put at N = 1000 and
5000 steps.

QuantLib's CRR tree uses the drift-adjusted up-probability 1/2 + (r - q - vol^2/2) sqrt(dt) /
(2 vol) where ours is the textbook (e^{(r-q)dt} - d) / (u - d); the prices differ by O(1/N)
(printed below), both converge to the same American price.

Run: PYTHONPATH=python python benchmarks/peers/crr_binomial.py
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import QuantLib as ql
from v28quant.quant_models import crr_binomial as crr

SPOT, STRIKE, DAYS, RATE, DIV, VOL = 100.0, 100.0, 365, 0.05, 0.02, 0.25


def best_of(fn: Callable[[], object], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def quantlib_option(steps: int) -> tuple[ql.VanillaOption, float]:
    today = ql.Date(15, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(ql.Option.Put, STRIKE), ql.AmericanExercise(today, today + DAYS)
    )
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(SPOT)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, DIV, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, RATE, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), VOL, dc)),
    )
    option.setPricingEngine(ql.BinomialVanillaEngine(process, "crr", steps))
    return option, DAYS / 365.0


def main() -> None:
    rows = []
    for steps, repeats in ((1000, 20), (5000, 5)):
        option, t = quantlib_option(steps)

        def ours(steps: int = steps, t: float = t) -> float:
            return crr.price(
                SPOT, STRIKE, t, RATE, DIV, VOL, call=False, american=True, steps=steps
            )

        def peer(option: ql.VanillaOption = option) -> float:
            option.recalculate()  # force a fresh tree each time (no cached NPV)
            return option.NPV()

        a, b = ours(), peer()
        print(
            f"American put N={steps}: ours {a:.10f}  QuantLib {b:.10f}  diff {a - b:.2e} "
            f"(N * diff = {steps * (a - b):.4f}: the O(1/N) probability convention)"
        )
        rows.append(
            (f"CRR American put, N = {steps}", best_of(ours, repeats), best_of(peer, repeats))
        )
    print()
    print(f"{'job':<30} {'ours ms':>9} {'QuantLib ms':>12} {'speed-up':>9}")
    for job, t_ours, t_peer in rows:
        print(f"{job:<30} {t_ours * 1e3:>9.3f} {t_peer * 1e3:>12.3f} {t_peer / t_ours:>8.1f}x")


if __name__ == "__main__":
    main()
