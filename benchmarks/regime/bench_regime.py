"""Regime detection and signal aggregation: cycle time, HMM refit time, detector agreement.

1. One decision pass on the shipped 2000-2012 universe (every symbol but VIX): the hierarchical
   regime assessment, every equity adapter (GARCH, CAPM, HMM, manifold, XGBoost, stacked
   ensemble, transformer, SAC) over all symbols, the option adapters (Heston, Merton, Monte
   Carlo) on the shipped SPY chain, and the aggregator. Refits are done before the clock
   starts. Cold = the first pass after the refit; warm = the next 5-minute cycles on the same
   daily history (the HMM filter continues from its cache). Goal: <= 100 ms on one core.
2. HMM refit time against hmmlearn's own ``GaussianHMM.fit`` on the same features and starts.
3. Agreement of the manifold and the HMM detectors (3 regimes, in-sample, filtered labels) on
   the shipped SPY histories.

Run: ``PYTHONPATH=python python benchmarks/regime/bench_regime.py`` (BLAS, OpenMP and torch
limited to one thread).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import torch
from hmmlearn.hmm import GaussianHMM
from threadpoolctl import threadpool_limits
from v28quant.ml.gradient_boost_ensemble import EnsembleConfig, XGBoostModel
from v28quant.ml.sac_agent import SAC
from v28quant.ml.stacked_ensemble import StackedEnsemble
from v28quant.ml.transformer_predictor import TransformerConfig, TransformerPredictor
from v28quant.models import (
    CapmAdapter,
    GarchAdapter,
    HestonAdapter,
    HmmAdapter,
    ManifoldAdapter,
    MarketSnapshot,
    MertonAdapter,
    MonteCarloAdapter,
    SacAdapter,
    StackedEnsembleAdapter,
    TransformerAdapter,
    XGBoostAdapter,
    collect_signals,
)
from v28quant.regime.hierarchical import HierarchicalRegimeController
from v28quant.regime.hmm import HmmRegimeDetector
from v28quant.regime.manifold import ManifoldRegimeDetector
from v28quant.signals import SignalAggregator

torch.set_num_threads(1)
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NY = ZoneInfo("America/New_York")


def load(folder: str, syms: list[str] | None = None) -> pd.DataFrame:
    """Daily log returns (adjusted closes) of a shipped set, dates x symbols."""
    root = DATA / "equities" / folder
    names = syms or sorted(p.stem for p in root.glob("*.csv") if p.stem not in ("VIX", "IRX"))
    cols = {}
    for s in names:
        df = pd.read_csv(root / f"{s}.csv", parse_dates=["date"]).set_index("date")
        cols[s] = np.log(df["adj_close"]).diff()
    return pd.DataFrame(cols).iloc[1:]


def features(returns: pd.DataFrame) -> pd.DataFrame:
    """Build a small causal feature panel (date, symbol) for the learned models."""
    f = {
        "ret_1": returns,
        "ret_5": returns.rolling(5).sum(),
        "vol_21": returns.rolling(21).std() * np.sqrt(252),
        "mom_63": returns.rolling(63).sum(),
    }
    panel = pd.concat({k: v.stack() for k, v in f.items()}, axis=1).dropna()
    panel.index = panel.index.set_names(["date", "symbol"])
    return panel.sort_index()


def chain() -> tuple[pd.DataFrame, float]:
    """Load the shipped SPY chain of 2022-07-08 in the feed's column names."""
    raw = pd.read_csv(DATA / "options" / "SPY_2022-07-08_cboe.csv")
    out = pd.DataFrame(
        {
            "symbol": raw["contract_symbol"],
            "underlying": raw["underlying"],
            "expiry": pd.to_datetime(raw["expiration"]),
            "strike": raw["strike"].astype(float),
            "type": raw["type"],
            "bid": raw["bid"],
            "ask": raw["ask"],
        }
    )
    return out, float(raw["underlying_price"].iloc[0])


def cycle_benchmark() -> None:
    """Section 1: one regime + aggregation pass over the universe."""
    rets = load("yahoo_2000_2012")[:"2008-10-10"]
    syms = [s for s in rets.columns if s != "SPY"]
    t0 = time.perf_counter()
    ctl = HierarchicalRegimeController(n_starts=1).fit(
        rets["SPY"], {s: rets[s].dropna() for s in syms}
    )
    feats = features(rets)
    y = (feats.groupby(level="symbol")["ret_1"].shift(-5) > 0).astype(int)
    train = feats[feats.index.get_level_values("date") < "2008-01-01"]
    xgb = XGBoostModel(EnsembleConfig(n_estimators=100))
    xgb.fit(train, y.loc[train.index])
    stacked = StackedEnsemble(n_folds=3)
    stacked.fit(train, y.loc[train.index])
    fwd = feats.groupby(level="symbol")["ret_1"].shift(-5).dropna()
    tcfg = TransformerConfig(window=10, d_model=16, n_heads=2, n_layers=1, d_ff=32, epochs=1)
    transformer = TransformerPredictor(tcfg).fit(train, fwd.reindex(train.index).dropna())
    snap = MarketSnapshot(rets, market="SPY", features=feats[-60 * len(rets.columns) :])
    garch = GarchAdapter().fit(snap)
    equity = [
        garch,
        CapmAdapter(),
        HmmAdapter(ctl),
        ManifoldAdapter(ctl),
        XGBoostAdapter(xgb, train),
        StackedEnsembleAdapter(stacked, train),
        TransformerAdapter(transformer, train),
        SacAdapter(SAC(state_dim=11)),
    ]
    orets = load("yf_adjusted_2019_2025", ["SPY"])[:"2022-07-08"]
    ch, spot = chain()
    osnap = MarketSnapshot(
        orets,
        chains={"SPY": ch},
        spots={"SPY": spot},
        chain_ts=datetime(2022, 7, 8, 15, 45, tzinfo=NY),
        rate=0.015,
    )
    ogarch = GarchAdapter().fit(osnap)
    options = [HestonAdapter(), MertonAdapter(), MonteCarloAdapter(garch=ogarch)]
    for a in options:
        a.fit(osnap)
    setup = time.perf_counter() - t0
    agg = SignalAggregator()
    ospy = orets["SPY"]

    def one_pass(with_options: bool) -> tuple[float, int, int]:
        t = time.perf_counter()
        assessment = ctl.assess(rets["SPY"], {s: rets[s].dropna() for s in syms})
        sigs = collect_signals(equity, snap)
        if with_options:
            sigs += collect_signals(options, osnap)
        out = agg.aggregate(sigs, assessment.state, now=snap.daily_ts)
        return time.perf_counter() - t, len(sigs), len(out)

    cold, n_sig, n_agg = one_pass(True)
    warm = [one_pass(True)[0] for _ in range(10)]
    eq_only = [one_pass(False)[0] for _ in range(10)]
    print("## 1. One regime + aggregation pass")
    print(f"symbols: {len(rets.columns)} (market SPY + {len(syms)}), setup/refits {setup:.1f} s")
    print(f"signals {n_sig} (incl. {n_sig - len(collect_signals(equity, snap))} option contracts)")
    print(f"aggregates {n_agg}; ospy rows {len(ospy)}")
    print("| pass | ms |")
    print("|---|---|")
    print(f"| cold (first after refit), all adapters | {1e3 * cold:.1f} |")
    print(f"| warm, all adapters (median of 10) | {1e3 * statistics.median(warm):.1f} |")
    print(f"| warm, equity adapters only (median of 10) | {1e3 * statistics.median(eq_only):.1f} |")
    per = {}
    for a in equity + options:
        s = snap if a in equity else osnap
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            a.signals(s)
            ts.append(time.perf_counter() - t)
        per[a.name] = statistics.median(ts)
    t = time.perf_counter()
    for _ in range(5):
        ctl.assess(rets["SPY"], {s: rets[s].dropna() for s in syms})
    per["hierarchical assess"] = (time.perf_counter() - t) / 5
    sigs = collect_signals(equity, snap) + collect_signals(options, osnap)
    t = time.perf_counter()
    for _ in range(5):
        agg.aggregate(sigs, ctl.assess(rets["SPY"]).state, now=snap.daily_ts)
    per["aggregate (incl. market assess)"] = (time.perf_counter() - t) / 5
    print("| part (warm, median) | ms |")
    print("|---|---|")
    for k, v in per.items():
        print(f"| {k} | {1e3 * v:.2f} |")


def refit_benchmark() -> None:
    """Section 2: our HMM refit against hmmlearn's own fit on identical inputs."""
    r = load("yahoo_2000_2012", ["SPY"])["SPY"]
    det = HmmRegimeDetector(n_states=3, seed=0, n_starts=5)
    ours = []
    for _ in range(3):
        t = time.perf_counter()
        det.fit(r)
        ours.append(time.perf_counter() - t)
    x = det.features(r)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    theirs = []
    for _ in range(3):
        t = time.perf_counter()
        best = -np.inf
        for k in range(5):
            m = GaussianHMM(3, "full", n_iter=200, tol=1e-4, min_covar=1e-4, random_state=k)
            m.fit(z)
            best = max(best, m.score(z))
        theirs.append(time.perf_counter() - t)
    print("## 2. HMM refit (3 states, 5 starts, SPY 2000-2012, 3175 days)")
    print("| | s (median of 3) |")
    print("|---|---|")
    print(f"| HmmRegimeDetector.fit | {statistics.median(ours):.2f} |")
    med = statistics.median(theirs)
    print(f"| hmmlearn GaussianHMM.fit + score x 5, same features | {med:.2f} |")
    print(f"| ratio | {statistics.median(ours) / statistics.median(theirs):.2f} |")
    print(f"best log-likelihood: ours {det.loglik:.2f}, hmmlearn {best:.2f}")


def agreement_benchmark() -> None:
    """Section 3: manifold vs HMM labels on the shipped SPY histories."""
    print("## 3. Manifold vs HMM agreement (3 regimes, in-sample filtered labels)")
    print("| history | days | agreement | Cohen's kappa | stressed agreement |")
    print("|---|---|---|---|---|")
    tables = []
    for folder in ("yahoo_2000_2012", "yahoo_2011_2021", "yf_adjusted_2019_2025"):
        r = load(folder, ["SPY"])["SPY"]
        h = HmmRegimeDetector(3, seed=0, n_starts=5).fit(r).states(r)
        m = ManifoldRegimeDetector().fit(r).states(r)
        agree = float(np.mean(h == m))
        labels = sorted(set(h) | set(m))
        pe = sum(np.mean(h == k) * np.mean(m == k) for k in labels)
        kappa = (agree - pe) / (1 - pe)
        both = np.mean((h == "bear_volatile") & (m == "bear_volatile"))
        either = np.mean((h == "bear_volatile") | (m == "bear_volatile"))
        print(f"| SPY {folder} | {len(r)} | {agree:.3f} | {kappa:.3f} | {both / either:.3f} |")
        tab = pd.crosstab(pd.Series(h, name="hmm"), pd.Series(m, name="manifold"))
        tables.append((folder, tab))
    for folder, tab in tables:
        print(f"\n{folder} (rows HMM, columns manifold):\n{tab.to_string()}")


if __name__ == "__main__":
    parts = sys.argv[1:] or ["cycle", "refit", "agreement"]
    with threadpool_limits(1):  # one core: BLAS and OpenMP pools capped
        if "cycle" in parts:
            cycle_benchmark()
        if "refit" in parts:
            refit_benchmark()
        if "agreement" in parts:
            agreement_benchmark()
