"""Runner benchmarks: one 5-minute cycle of both engines for 30 symbols, and a daily backtest.

``python benchmarks/runner/bench_runner.py cycle`` builds 30 symbols (the 20 bundled stocks and
10 more made from them by renaming, so their data is real but duplicated: the models still fit
and infer each one on its own), runs the pre-market job once (fits; not timed), then times
``cycle()`` of the equity and the options engine at five successive 5-minute slots (inference
only: the models are fitted). ``python benchmarks/runner/bench_runner.py backtest [SESSIONS]``
times ``run_backtest`` over the last SESSIONS sessions (default 252) of 20 symbols, and
``... rerun [SESSIONS]`` twice over the same sessions with one model store (the second run
takes the models the first stored);
``... options`` times the options engine's cycles alone on the 30 symbols (no regime).
Results are printed; the figures go to ``benchmarks/README.md`` with the command.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
from v28quant.backtest import run_backtest
from v28quant.broker.sim import SimBroker, SimConfig
from v28quant.calendar import default_calendar
from v28quant.clock import SimClock
from v28quant.config import load_config
from v28quant.data.replay import ReplayFeed
from v28quant.data.samples import INDEXES, History, sample_history
from v28quant.engines import EngineContext
from v28quant.equity.engine import EquityEngine
from v28quant.execution import Executor
from v28quant.journal import Journal
from v28quant.notify import NullNotifier
from v28quant.options.engine import OptionsEngine
from v28quant.premarket import shared_premarket
from v28quant.risk import RiskGate
from v28quant.signals import SignalAggregator
from v28quant.threads import limit_blas_to_one_thread
from v28quant.venue import Venue

EXTRA = ["AAPL", "AMD", "BAC", "CVX", "HD", "JNJ", "KO", "MSFT", "PG", "XOM"]


def _history30() -> tuple[History, list[str]]:
    h = sample_history()
    stocks = [s for s in h.symbols if s not in INDEXES]
    copies = h.bars[h.bars["symbol"].isin(EXTRA)].assign(symbol=lambda d: d["symbol"] + "Z")
    bars = pd.concat([h.bars, copies], ignore_index=True)
    return History(bars), stocks + [s + "Z" for s in EXTRA]


def _world(root: Path) -> tuple[EngineContext, Venue, SimClock, datetime]:
    """Return a paper context on replay of the 30 symbols, its venue, clock and first slot."""
    history, universe = _history30()
    settings, cfg = load_config(None, journal_path=root / "j.sqlite")
    cal = default_calendar()
    day = cal.previous_session("2022-12-29")
    sim = SimClock(cal.windows(day).premarket)
    feed = ReplayFeed(history, sim, calendar=cal)
    broker = SimBroker(feed, sim, SimConfig(cash=Decimal(1_000_000)), calendar=cal)
    journal = Journal(root / "j.sqlite")
    venue = Venue(broker, feed, sim, True, "sim", "replay", tuple(universe), "SP500", sim)
    ctx = EngineContext(
        "paper",
        sim,
        broker,
        feed,
        journal,
        Executor(broker, journal, clock=sim, quotes=feed),
        SignalAggregator.from_settings(cfg.aggregator_settings("paper")),
        RiskGate(settings.risk, journal, cal),
        settings,
        cfg,
        NullNotifier(),
        tuple(universe),
        cal,
        root / "models",
        True,
    )
    return ctx, venue, sim, cal.windows(day).cycles[0]


async def bench_options(root: Path) -> None:
    """Time the options engine alone: its pre-market job, then five cycles (no regime)."""
    ctx, _, sim, slot = _world(root)
    engine = OptionsEngine()
    await engine.premarket(ctx)
    wall, cpu = [], []
    for k in range(5):
        sim.set(slot + timedelta(minutes=5 * k))
        t, c = time.perf_counter(), time.process_time()
        report = await engine.cycle(ctx)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        print(f"  options cycle {k + 1}: {wall[-1]:.3f} s (CPU {cpu[-1]:.3f} s), {report.signals}")
    print(
        f"options engine alone, 30 symbols: median {statistics.median(wall):.3f} s per cycle, "
        f"CPU median {statistics.median(cpu):.3f} s (all threads)"
    )
    ctx.journal.close()


async def bench_cycle(root: Path) -> None:
    ctx, venue, sim, slot = _world(root)
    cfg, journal = ctx.config, ctx.journal
    t0 = time.perf_counter()
    assert await shared_premarket(ctx, venue)
    engines = [EquityEngine(cfg.equity), OptionsEngine()]
    for e in engines:
        await e.premarket(ctx)
    print(f"pre-market job, 30 symbols (fits, not a cycle): {time.perf_counter() - t0:.1f} s")
    times: dict[str, list[float]] = {e.name: [] for e in engines}
    cpu: dict[str, list[float]] = {e.name: [] for e in engines}
    for k in range(5):
        sim.set(slot + timedelta(minutes=5 * k))
        for e in engines:
            t, c = time.perf_counter(), time.process_time()
            report = await e.cycle(ctx)
            times[e.name].append(time.perf_counter() - t)
            cpu[e.name].append(time.process_time() - c)
            print(
                f"  {e.name} cycle {k + 1}: {times[e.name][-1]:.3f} s "
                f"(CPU {cpu[e.name][-1]:.3f} s), {report.orders} order(s)"
            )
    for name, ts in times.items():
        print(
            f"{name}: median cycle {statistics.median(ts):.3f} s (first {ts[0]:.3f} s), "
            f"CPU median {statistics.median(cpu[name]):.3f} s"
        )
    both = [a + b for a, b in zip(*times.values(), strict=True)]
    both_cpu = [a + b for a, b in zip(*cpu.values(), strict=True)]
    print(
        f"both engines, 30 symbols: median {statistics.median(both):.3f} s per cycle, "
        f"CPU median {statistics.median(both_cpu):.3f} s (all threads)"
    )
    journal.close()


def bench_backtest(root: Path, sessions: int, runs: int = 1) -> None:
    """Time ``runs`` backtests of the last ``sessions`` sessions, sharing one model store."""
    cal = default_calendar()
    end = cal.previous_session("2022-12-29")
    start = cal.sessions("2020-01-01", end)[-sessions]
    cfg = root / "v28.toml"
    cfg.write_text(f'[runner]\nmodel_dir = "{root / "models"}"\nruns_dir = "{root / "runs"}"\n')
    for k in range(runs):
        t, c = time.perf_counter(), time.process_time()
        result = run_backtest(cfg, start, end, None, None, journal=root / f"bt{k}.sqlite")
        wall, used = time.perf_counter() - t, time.process_time() - c
        m = result.metrics
        print(
            f"backtest {start}..{end} ({'cold' if k == 0 else 'again'}): "
            f"{len(result.equity_curve)} sessions, 20 symbols, {wall:.1f} s wall, "
            f"{used:.1f} s CPU; Sharpe {m['sharpe']:.2f}, max DD {m['max_drawdown']:.2%}, "
            f"{m['fills']} fills, last equity {float(result.equity_curve.iloc[-1]):.2f}",
            flush=True,
        )
    stored = {d.name: len(list(d.iterdir())) for d in sorted((root / "models").iterdir())}
    print(f"model store versions: {stored}")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "cycle"
    limit_blas_to_one_thread()  # as the runner does at start
    with tempfile.TemporaryDirectory() as tmp:
        if what == "cycle":
            asyncio.run(bench_cycle(Path(tmp)))
        elif what == "options":
            asyncio.run(bench_options(Path(tmp)))
        else:  # backtest, or rerun: the same sessions again on the models the first stored
            sessions = int(sys.argv[2]) if len(sys.argv) > 2 else 252
            bench_backtest(Path(tmp), sessions, 2 if what == "rerun" else 1)
