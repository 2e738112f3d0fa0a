"""One options cycle's analysis for 10 underlyings with full chains (goal <= 2 s).

Ten chains: the five real snapshots in ``../shared/data/options`` (SPY 2023-09-14, SPY
2022-07-08, SPX 2022-01-07, SPX 2023-12-08, NVDA 2025-07-08), each served twice under two
names, so every one of the ten is analysed from scratch (its own Heston calibration, no warm
start): liquidity filter, SVI surface, IV rank, Heston calibration, Merton and CRR values of
the candidates, mispricing signals, and one structure resolved (iron condor, else bull put)
with its Monte Carlo touch probabilities. Data loading is outside the timed part. Timed
sequentially and on worker threads as the engine runs it (the compiled fits release the GIL),
with the BLAS libraries on one thread as the runner sets them.

Run: ``PYTHONPATH=python python benchmarks/options/bench_cycle.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import repeat
from pathlib import Path

import numpy as np
import pandas as pd
from v28quant.data.snapshots import load_chain_snapshot
from v28quant.options import contracts as C
from v28quant.options import strategies as S
from v28quant.options.signals import AnalysisSettings, OptionsAnalyser
from v28quant.options.touch import touch_probability
from v28quant.threads import limit_blas_to_one_thread

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
FILES = [
    "SPY_2023-09-14_cboe.csv",
    "SPY_2022-07-08_cboe.csv",
    "SPX_2022-01-07_cboe.csv",
    "SPX_2023-12-08_cboe.csv",
    "NVDA_2025-07-08_alpaca_snapshot.csv",
]


def _one(an: OptionsAnalyser, name: str, chain: pd.DataFrame, closes: np.ndarray) -> str:
    now = chain.attrs["as_of"]
    a = an.analyse(name, chain, now=now, daily_closes=closes)
    cfg = an.settings
    try:
        expiries = C.expiries_by_preference(a.chain, 21, 45)
    except C.NoContract:
        expiries = C.expiries_by_preference(a.chain, 0, 21)
    for strategy in ("iron_condor", "bull_put"):
        for exp in expiries[:3]:
            try:
                s = S.build(
                    strategy,
                    a.chain,
                    a.spot,
                    exp,
                    band=C.DeltaTarget(0.15, 0.35),
                    long_band=C.DeltaTarget(0.4, 0.6, 0.5),
                    max_width=0.05 * a.spot,
                )
            except C.NoContract:
                continue
            for leg in (x for x in s.legs if x.qty < 0):
                t = max((C.expiry_cutoff(name, leg.expiry) - now).total_seconds(), 60) / 31536e3
                touch_probability(
                    a.spot,
                    leg.strike,
                    t,
                    cfg.rate,
                    0.0,
                    vol=leg.iv,
                    heston=a.heston.params if a.heston else None,
                    paths=2000,
                    steps=max(10, int(t * 365)),
                )
            return (
                f"{name}: {s.strategy} {s.expiry} ({len(a.chain)} liquid, "
                f"{len(a.surface.expiries)} slices, heston rmse "
                f"{a.heston.rmse_vol_points if a.heston else float('nan'):.2f} vol pts)"
            )
    return f"{name}: no structure"


def main() -> None:
    """Time the cycle ``--repeat`` times and print the figures."""
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    limit_blas_to_one_thread()  # as the runner does at start
    spy = pd.read_csv(SHARED / "equities" / "yahoo_raw_2019_2023" / "SPY.csv")
    closes = spy["close"].to_numpy(float)[-600:]
    chains = []
    for i, f in enumerate(FILES * 2):
        c = load_chain_snapshot(SHARED / "options" / f)
        name = f"U{i:02d}"
        c["underlying"] = name
        c.attrs = dict(c.attrs)
        chains.append((name, c))
    rows = sum(len(c) for _, c in chains)
    # build the calendar and import every module outside the timed part
    OptionsAnalyser().analyse("W", chains[0][1], now=chains[0][1].attrs["as_of"])
    workers = min(4, os.cpu_count() or 1)
    for label, pool in (("sequential", None), (f"{workers} threads", workers)):
        times, cpu = [], []
        for _ in range(args.repeat):
            an = OptionsAnalyser(AnalysisSettings())  # cold: no Heston warm start
            t0, c0 = time.perf_counter(), time.process_time()
            if pool is None:
                lines = [_one(an, n, c, closes) for n, c in chains]
            else:
                with ThreadPoolExecutor(pool) as ex:
                    lines = list(
                        ex.map(partial(_one, an), *zip(*chains, strict=True), repeat(closes))
                    )
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        if pool is None:
            print("\n".join(lines))
            # the next cycle starts each Heston fit from this one's parameters, as the engine does
            c0 = time.process_time()
            t0 = time.perf_counter()
            for n, c in chains:
                _one(an, n, c, closes)
            print(
                f"warm cycle (sequential): {time.perf_counter() - t0:.3f} s wall, "
                f"{time.process_time() - c0:.3f} s CPU"
            )
        print(
            f"10 underlyings, {rows} contracts, {label}: cycle {min(times):.3f} s best, "
            f"{statistics.median(times):.3f} s median of {args.repeat}; "
            f"CPU {min(cpu):.3f} s best (all threads; wall on an idle core ~ CPU sequential)"
        )


if __name__ == "__main__":
    main()
