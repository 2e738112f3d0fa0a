"""Training time, per-cycle inference time and out-of-sample skill of the ML stack.

Data: skfolio's bundled S&P 500 sample (``load_sp500_dataset``: 20 stocks, daily adjusted
closes, **prices only, no volume**, so the volume features are absent), last ``--years`` years.
With ``--shared`` the same run uses ``/work/shared/data/equities/yahoo_2000_2012`` (adj_close,
with volume; 2002-2012) instead — research data, never read by the product.

Protocol: features at t use bars <= t; labels are 5-day forward log returns; one walk-forward
split: train on the first 75 % of dates, test on the rest, with training labels purged at the test
start and a 5-day embargo. Every reported hit rate / IC is computed on test rows only (the models
refuse rows they were trained on). IC = Spearman correlation of the model's score with the realised
forward return. Inference is timed per cycle for 30 symbols (the 20 stocks plus 10 renamed copies,
features already computed), one core, median of repeats.

Run: ``PYTHONPATH=python python benchmarks/ml/bench_ml.py [--shared] [--years 10] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm.auto import tqdm
from v28quant.ml.adaptive_allocator import AdaptiveAllocator
from v28quant.ml.continuous_learner import DriftDetector
from v28quant.ml.features import (
    PurgedWalkForward,
    align,
    build_features,
    from_wide_close,
    make_labels,
)
from v28quant.ml.gradient_boost_ensemble import EnsembleConfig, XGBoostModel
from v28quant.ml.pomdp_controller import POMDPController
from v28quant.ml.sac_agent import SAC, PositionSizingEnv, SACConfig, sac_signals
from v28quant.ml.stacked_ensemble import StackedEnsemble
from v28quant.ml.transformer_predictor import TransformerConfig, TransformerPredictor

HORIZON = 5
SHARED = Path("/work/shared/data/equities/yahoo_2000_2012")


def load_sp500(years: int) -> pd.DataFrame:
    from skfolio.datasets import load_sp500_dataset

    close = load_sp500_dataset()
    close = close[close.index >= close.index[-1] - pd.DateOffset(years=years)]
    return from_wide_close(close)


def load_shared(years: int) -> pd.DataFrame:
    frames = []
    for f in sorted(SHARED.glob("*.csv")):
        if f.stem in ("VIX", "SPY"):
            continue
        df = pd.read_csv(f, parse_dates=["date"])
        frames.append(
            pd.DataFrame(
                {
                    "date": df["date"],
                    "symbol": f.stem,
                    "close": df["adj_close"],
                    "volume": df["volume"],
                }
            )
        )
    bars = pd.concat(frames, ignore_index=True)
    last = bars["date"].max()
    return bars[bars["date"] >= last - pd.DateOffset(years=years)]


def timed(fn, repeats: int = 1):
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", action="store_true", help="use ../shared yahoo_2000_2012 data")
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--sac-steps", type=int, default=6000)
    ap.add_argument("--quick", action="store_true", help="smaller SAC/transformer runs")
    ap.add_argument(
        "--brief-batches",
        type=int,
        default=30,
        help="batches of the brief's transformer (d_model 512) timed to extrapolate",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)

    bars = load_shared(args.years) if args.shared else load_sp500(args.years)
    source = "yahoo_2000_2012 adj_close+volume" if args.shared else "skfolio sp500 (prices only)"
    n_sym = bars["symbol"].nunique()
    print(
        f"data: {source}, {n_sym} symbols, {bars['date'].min().date()} .. "
        f"{bars['date'].max().date()}, {len(bars)} bars"
    )

    stage = tqdm(total=7, desc="train stack", unit="stage")
    t_start = time.perf_counter()
    (feat, lab), t_feat = timed(lambda: align(build_features(bars), make_labels(bars, HORIZON)))
    stage.update()
    dates = feat.index.get_level_values("date")
    n_dates = dates.nunique()
    split = next(
        PurgedWalkForward(n_splits=1, embargo=HORIZON, min_train_dates=int(0.75 * n_dates)).split(
            dates, lab["label_end"]
        )
    )
    Xtr, Xte = feat.iloc[split.train], feat.iloc[split.test]
    ytr, yte = lab["direction"].iloc[split.train], lab["direction"].iloc[split.test]
    rte = lab["fwd_ret"].iloc[split.test]
    print(
        f"test base rate (share of up labels = hit rate of 'always long'): {yte.mean():.4f}; "
        "binomial p-values below treat rows as independent, which overlapping 5-day labels "
        "and correlated stocks are not: read them as optimistic"
    )
    print(
        f"train rows {len(Xtr)} (to {dates[split.train].max().date()}), test rows {len(Xte)} "
        f"({split.test_start.date()} .. {split.test_end.date()}), features {list(feat.columns)}"
    )

    def fmt(s: dict) -> tuple[str, str, str]:
        return f"{s['hit_rate']:.4f}", f"{s['ic']:+.4f}", f"{s['binom_p']:.3g}"

    overlap = HORIZON * n_sym
    xgb, t = timed(lambda: XGBoostModel(EnsembleConfig(calibration_gap=overlap)).fit(Xtr, ytr))
    stage.update()
    s_xgb = xgb.score_oos(Xte, yte, rte)
    stk, t_stk = timed(lambda: StackedEnsemble(purge=overlap, embargo=overlap).fit(Xtr, ytr))
    stage.update()
    s_stk = stk.score_oos(Xte, yte, rte)

    tcfg = TransformerConfig(epochs=3 if args.quick else 10)
    fwd_tr = lab["fwd_ret"].iloc[split.train]
    trf, t_trf = timed(lambda: TransformerPredictor(tcfg).fit(feat, fwd_tr, progress=True))
    stage.update()
    s_trf = trf.score_oos(feat, rte)

    close = bars.pivot_table(index="date", columns="symbol", values="close").sort_index()
    rets = np.log(close).diff().iloc[1:]
    cut = split.test_start
    r_tr, r_te = rets[rets.index < cut - pd.Timedelta(days=7)], rets[rets.index >= cut]
    env = PositionSizingEnv(r_tr.fillna(0.0).to_numpy(), seed=0)
    sac = SAC(env.state_dim, 1, SACConfig(seed=0))
    steps = 1500 if args.quick else args.sac_steps
    _, t_sac = timed(lambda: sac.train(env, steps, progress=True))
    stage.update()
    s_sac = sac_oos(sac, r_te.fillna(0.0))

    ctl, t_ctl = timed(POMDPController)
    stage.update()
    det, t_det = timed(lambda: DriftDetector(Xtr.to_numpy(), feature_names=list(feat.columns)))
    stage.update()
    stage.close()
    t_total = time.perf_counter() - t_start

    # (label, key into the inference timings, training seconds, OOS hit rate, IC, binomial p)
    rows = [
        ("features+labels", "", t_feat, "-", "-", "-"),
        ("xgboost", "xgboost", t, *fmt(s_xgb)),
        ("stacked_ensemble", "stacked_ensemble", t_stk, *fmt(s_stk)),
        (
            f"transformer d{tcfg.d_model}/h{tcfg.n_heads} x{tcfg.epochs}ep",
            "transformer",
            t_trf,
            *fmt(s_trf),
        ),
        (f"sac ({steps} steps)", "sac", t_sac, *fmt(s_sac)),
        ("pomdp (PBVI solve)", "pomdp", t_ctl, "n/a", "n/a", "n/a"),
        ("allocator", "allocator", 0.0, "n/a", "n/a", "n/a"),
        (f"drift detector (KS, {feat.shape[1]} features)", "drift", t_det, "n/a", "n/a", "n/a"),
    ]

    # inference per cycle, 30 symbols
    extra = feat[
        feat.index.get_level_values("symbol").isin(sorted(feat.index.unique("symbol"))[:10])
    ]
    extra = extra.rename(index=lambda s: f"{s}_B" if isinstance(s, str) else s, level="symbol")
    feat30 = pd.concat([feat, extra]).sort_index()
    recent = feat30[feat30.index.get_level_values("date") >= feat30.index.unique("date")[-40]]
    n30 = recent.index.get_level_values("symbol").nunique()
    r30 = pd.concat([rets, rets.iloc[:, :10].add_suffix("_B")], axis=1).iloc[-40:].fillna(0.0)
    alloc = AdaptiveAllocator(["equity/ml", "equity/momentum", "options/condor", "options/cc"])
    rng = np.random.default_rng(0)
    for _ in range(60):
        alloc.update({s: float(rng.normal(0, 0.01)) for s in alloc.sleeves})
    lik = {"bull": 0.3, "neutral": 0.5, "bear": 0.2}
    cur = recent.to_numpy()[-100:]
    cycle = {
        "xgboost": lambda: xgb.signals(recent),
        "stacked_ensemble": lambda: stk.signals(recent),
        "transformer": lambda: trf.signals(recent),
        "sac": lambda: sac_signals(sac, r30),
        "pomdp": lambda: ctl.decide(lik),
        "allocator": alloc.allocate,
        "drift": lambda: det.test(cur),
    }
    inf = {}
    for name, fn in cycle.items():
        fn()
        inf[name] = timed(fn, repeats=15)[1]
    # the drift test runs after closed trades, off the trading loop: not part of a cycle
    total_inf = sum(v for k, v in inf.items() if k != "drift")

    # the brief's transformer size: time a few batches, extrapolate to the same epochs
    brief = TransformerConfig.brief(epochs=1)
    t_brief_batch = time_brief_batches(feat, fwd_tr, brief, args.brief_batches)
    n_windows = len(fwd_tr)
    est_brief = t_brief_batch * np.ceil(n_windows / brief.batch_size) * tcfg.epochs

    print()
    print(
        f"| model | train s | inference ms / cycle ({n30} symbols) | OOS hit rate | OOS IC | "
        "naive binom p (hit>0.5) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, key, tr, hit, ic, p in rows:
        ms = f"{1e3 * inf[key]:.1f}" if key in inf else "-"
        print(f"| {label} | {tr:.1f} | {ms} | {hit} | {ic} | {p} |")
    stack = "**whole stack (cycle excl. drift test)**"
    print(f"| {stack} | **{t_total:.1f}** | **{1e3 * total_inf:.1f}** | | | |")
    print()
    print(
        f"brief transformer (d_model 512, 8 heads, d_ff 2048): {1e3 * t_brief_batch:.0f} ms per "
        f"batch of {brief.batch_size}; {n_windows} windows x {tcfg.epochs} epochs -> "
        f"~{est_brief / 60:.1f} min training (extrapolated from {args.brief_batches} batches)"
    )
    print(
        f"goals: inference <= 200 ms/cycle: {1e3 * total_inf:.1f} ms "
        f"({'met' if total_inf <= 0.2 else 'MISSED'}); training <= 600 s: {t_total:.0f} s "
        f"({'met' if t_total <= 600 else 'MISSED'})"
    )


def sac_oos(agent: SAC, r_te: pd.DataFrame) -> dict[str, float]:
    """Deterministic exposure at each test day vs the next day's return (all symbols)."""
    arr = r_te.to_numpy()
    states, nxt = [], []
    for j in range(arr.shape[1]):
        for t in range(20, len(arr) - 1):
            states.append(PositionSizingEnv.observation(arr[t - 19 : t + 1, j], 10, 0.0))
            nxt.append(arr[t + 1, j])
    act = agent.act(np.stack(states), deterministic=True)[:, 0]
    nxt = np.asarray(nxt)
    live = np.abs(act) > 1e-3
    hits = int((np.sign(act[live]) == np.sign(nxt[live])).sum())
    n = int(live.sum())
    return {
        "hit_rate": hits / n if n else float("nan"),
        "ic": float(stats.spearmanr(act, nxt).statistic),
        "binom_p": float(stats.binomtest(hits, n, 0.5, alternative="greater").pvalue) if n else 1.0,
    }


def time_brief_batches(feat, fwd, cfg: TransformerConfig, n_batches: int) -> float:
    from v28quant.ml.transformer_predictor import TransformerPredictorModel, make_windows

    Xw, _ = make_windows(feat, cfg.window)
    Xw = Xw[: cfg.batch_size * n_batches]
    y = torch.from_numpy(np.random.default_rng(0).normal(size=len(Xw)).astype(np.float32))
    net = TransformerPredictorModel(Xw.shape[-1], cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.from_numpy(Xw)
    t0 = time.perf_counter()
    for b in range(0, len(Xw), cfg.batch_size):
        mu, log_s = net(x[b : b + cfg.batch_size])
        loss = torch.nn.functional.gaussian_nll_loss(
            mu, y[b : b + cfg.batch_size], torch.exp(2 * log_s)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / max(1, int(np.ceil(len(Xw) / cfg.batch_size)))


if __name__ == "__main__":
    main()
