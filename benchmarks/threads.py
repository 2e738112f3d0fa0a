"""Thread scaling of every threaded function: median and best of 12 calls, 1 vs 2 threads.

Calls alternate between one and two threads so that both see the same machine load. The
answers are compared first (bit-identical for any thread count). Run:
``PYTHONPATH=python python benchmarks/threads.py``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from v28quant.options.surface import SviSurface
from v28quant.quant_models import dupire_local_vol as dupire
from v28quant.quant_models import monte_carlo_pricer as mc

CALLS = 12
ARGS = (100.0, 100.0, 1.0, 0.03, 0.01, 0.2)
SURFACE = SviSurface(
    [0.5, 1.0], [[0.01, 0.1, -0.5, 0.0, 0.2], [0.02, 0.12, -0.5, 0.0, 0.25]], [100.0, 100.0]
)


def jobs(paths: int) -> dict[str, Callable[[int], object]]:
    """One callable per threaded function, taking the thread count."""
    return {
        "european": lambda n: mc.european(*ARGS, paths=paths, threads=n).price,
        "asian (252 steps)": lambda n: mc.asian(*ARGS, paths=paths, threads=n).price,
        "heston_european (10 steps)": lambda n: (
            mc.heston_european(
                *ARGS[:5], 0.04, 1.5, 0.04, 0.5, -0.7, steps=10, paths=paths, threads=n
            ).price
        ),
        "merton_european": lambda n: (
            mc.merton_european(*ARGS, 1.0, -0.1, 0.15, paths=paths, threads=n).price
        ),
        "dupire mc_price (25 steps/yr)": lambda n: (
            dupire.mc_price(SURFACE, 1.0, 100.0, paths=paths, steps_per_year=25, threads=n).price
        ),
    }


def main() -> None:
    """Print one row per function and path count."""
    print(f"load average before: {os.getloadavg()}")
    print(
        f"{'function':32s} {'paths':>9s} {'1 thr med':>10s} {'2 thr med':>10s} "
        f"{'ratio med':>9s} {'1 best':>9s} {'2 best':>9s} {'ratio best':>10s}  (ms)"
    )
    for paths in (100_000, 1_000_000):
        for name, fn in jobs(paths).items():
            assert fn(1) == fn(2), name  # same answer for any thread count
            t1, t2 = [], []
            for _ in range(CALLS):
                for n, out in ((1, t1), (2, t2)):
                    start = time.perf_counter()
                    fn(n)
                    out.append(1e3 * (time.perf_counter() - start))
            m1, m2 = statistics.median(t1), statistics.median(t2)
            print(
                f"{name:32s} {paths:>9,d} {m1:10.2f} {m2:10.2f} {m1 / m2:8.2f}x "
                f"{min(t1):9.2f} {min(t2):9.2f} {min(t1) / min(t2):9.2f}x"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
