"""Adapters: each model's output as Signals with data time, lifetime and one confidence.

Checked against independent references (statsmodels OLS for CAPM, Black-Scholes for the Monte
Carlo and the implied-vol edges, GARCH's closed-form term structure, hmmlearn's posterior) on
real shipped history.
"""

from __future__ import annotations

import math
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from v28quant.equity.sources import MarketView
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
    TrackRecord,
    TransformerAdapter,
    XGBoostAdapter,
    collect_signals,
)
from v28quant.options import black_scholes
from v28quant.regime.hierarchical import HierarchicalRegimeController
from v28quant.signals import UNTESTED_RECORD, Signal

NY = ZoneInfo("America/New_York")


def _returns(shared: Path, folder: str, syms: tuple[str, ...], end: str) -> pd.DataFrame:
    cols = {}
    for s in syms:
        df = pd.read_csv(shared / "equities" / folder / f"{s}.csv", parse_dates=["date"])
        cols[s] = np.log(df.set_index("date")["adj_close"]).diff()
    return pd.DataFrame(cols)[:end].iloc[1:]


@pytest.fixture(scope="module")
def snap_2008(shared_data: Path) -> MarketSnapshot:
    r = _returns(shared_data, "yahoo_2000_2012", ("SPY", "JPM", "XOM", "GS"), "2008-10-10")
    return MarketSnapshot(returns=r, market="SPY", implied_vol={"SPY": 0.70})


def test_garch_forecast_equals_the_closed_form_term_structure(snap_2008: MarketSnapshot) -> None:
    g = GarchAdapter(window=5000).fit(snap_2008)
    for sym in ("SPY", "JPM"):
        # on the fitted sample the filtered variance is the fit's own next variance, so the
        # horizon vol is GarchResult.vol_term_structure(21) (up to the refiltered start)
        ref = g.fits[sym].vol_term_structure(21)
        assert g.forecast(snap_2008, sym) == pytest.approx(ref, rel=1e-5)
    sigs = {s.symbol: s for s in g.signals(snap_2008)}
    spy = sigs["SPY"]
    assert spy.reasoning["reference"] == "implied"
    gap = math.log(0.70 / spy.reasoning["vol_forecast"])
    assert spy.value == pytest.approx(math.tanh(gap / 0.25))
    support = math.erf(abs(gap) * math.sqrt(2 * 21) / math.sqrt(2))
    assert spy.confidence == pytest.approx(UNTESTED_RECORD * support)
    assert sigs["JPM"].reasoning["reference"] == "trailing"
    assert spy.ts == datetime.combine(pd.Timestamp("2008-10-10").date(), time(16), NY)
    assert spy.lifetime == g.lifetime


def test_capm_alpha_and_its_t_statistic_match_statsmodels(snap_2008: MarketSnapshot) -> None:
    track = TrackRecord(hits=70, n=100)
    sigs = {s.symbol: s for s in CapmAdapter(track=track).signals(snap_2008)}
    assert set(sigs) == {"JPM", "XOM", "GS"}
    simple = np.expm1(snap_2008.returns.iloc[-252:])
    ols = sm.OLS(simple["JPM"], sm.add_constant(simple["SPY"])).fit()
    jpm = sigs["JPM"]
    assert jpm.reasoning["alpha_t"] == pytest.approx(ols.tvalues["const"], rel=1e-9)
    assert jpm.value == pytest.approx(math.tanh(252 * ols.params["const"] / 0.10), rel=1e-9)
    support = math.erf(abs(ols.tvalues["const"]) / math.sqrt(2))
    assert jpm.confidence == pytest.approx(track.record * support, rel=1e-9)
    assert track.record == pytest.approx(1 - 2 * 3.925e-5, rel=1e-3)  # binomial tail, 70/100


def _chain(shared: Path) -> tuple[pd.DataFrame, float]:
    raw = pd.read_csv(shared / "options" / "SPY_2022-07-08_cboe.csv")
    chain = pd.DataFrame(
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
    return chain, float(raw["underlying_price"].iloc[0])


@pytest.fixture(scope="module")
def snap_2022(shared_data: Path) -> MarketSnapshot:
    r = _returns(shared_data, "yf_adjusted_2019_2025", ("SPY",), "2022-07-08")
    chain, spot = _chain(shared_data)
    ts = datetime(2022, 7, 8, 15, 45, tzinfo=NY)
    return MarketSnapshot(r, chains={"SPY": chain}, spots={"SPY": spot}, chain_ts=ts, rate=0.015)


def test_mispricing_adapters_on_a_real_chain(snap_2022: MarketSnapshot) -> None:
    garch = GarchAdapter().fit(snap_2022)
    adapters = [HestonAdapter(), MertonAdapter(), MonteCarloAdapter(garch=garch)]
    for a in adapters:
        a.fit(snap_2022)
        sigs = a.signals(snap_2022)
        assert sigs, a.name
        for s in sigs:
            r = s.reasoning
            assert s.ts == snap_2022.chain_ts
            assert s.symbol.startswith("SPY2")
            # edge in vol points against Black-Scholes implied vols computed here
            call = r["type"] == "call"
            t = (pd.Timestamp(r["expiry"]) - pd.Timestamp("2022-07-08")).days / 365.0
            spot = snap_2022.spots["SPY"]
            iv_model = black_scholes.implied_vol(
                r["model_price"], spot, r["strike"], t, 0.015, 0.0, call
            )
            iv_mid = black_scholes.implied_vol(r["mid"], spot, r["strike"], t, 0.015, 0.0, call)
            assert r["edge_vol_points"] == pytest.approx(100 * (iv_model - iv_mid), abs=1e-6)
            assert (s.value > 0) == (r["model_price"] > r["mid"])
            assert s.confidence <= UNTESTED_RECORD
        print(a.name, len(sigs), "fit error (vol points):", a.fit_error)
    # Monte Carlo against the Black-Scholes closed form at the same (GARCH) vol: a few s.e.
    mc = adapters[2]
    q = mc._quotes("SPY", snap_2022)[0]
    px, se = mc._price("SPY", q, snap_2022.spots["SPY"], snap_2022)
    vols = garch.fits["SPY"].vol_term_structure(np.maximum(q["t"].to_numpy() * 252, 1.0))
    ref = black_scholes.price(
        snap_2022.spots["SPY"],
        q["strike"].to_numpy(),
        q["t"].to_numpy(),
        0.015,
        0.0,
        vols,
        q["call"].to_numpy(),
    )
    assert np.all(np.abs(px - ref) < 5 * se + 1e-9), (px, ref, se)


def test_learned_adapters_use_todays_rows_record_and_range(snap_2008: MarketSnapshot) -> None:
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2008-01-01", "2008-10-10")
    idx = pd.MultiIndex.from_product([dates, ["JPM", "XOM", "GS"]], names=["date", "symbol"])
    X = pd.DataFrame(rng.normal(size=(len(idx), 3)), index=idx, columns=["a", "b", "c"])
    y = (X["a"] + rng.normal(0, 1, len(X)) > 0).astype(int)
    n = len(X) // 2
    model = XGBoostModel(EnsembleConfig(n_estimators=30))
    model.fit(X.iloc[:n], y.iloc[:n])
    model.score_oos(X.iloc[n:], y.iloc[n:])
    feats = X.drop(index=(dates[-1], "GS"))  # GS has no row today: left out, never stale
    feats.loc[(dates[-1], "XOM"), :] = [9.0, 9.0, 9.0]  # nothing like the training data
    snap = MarketSnapshot(snap_2008.returns, features=feats)
    adapter = XGBoostAdapter(model, reference=X.iloc[:n])
    sigs = {s.symbol: s for s in adapter.signals(snap)}
    assert set(sigs) == {"JPM", "XOM"}
    record = max(0.0, 1 - 2 * model.validation_scores["hit_p"])  # dates shared by 3 symbols
    assert sigs["JPM"].confidence == pytest.approx(record)
    assert sigs["XOM"].confidence == 0.0
    assert sigs["JPM"].value == pytest.approx(2 * sigs["JPM"].reasoning["prob_up"] - 1)
    assert sigs["JPM"].ts.date() == dates[-1].date()
    stacked = StackedEnsemble(n_folds=3)
    stacked.fit(X.iloc[:n], y.iloc[:n])
    st = {s.symbol: s for s in StackedEnsembleAdapter(stacked).signals(snap)}
    base = stacked.base_probabilities(feats.loc[dates[-1]].loc[["JPM"]])
    agree = (base > 0.5) == (stacked.predict_proba(feats.loc[dates[-1]].loc[["JPM"]]) > 0.5)
    assert st["JPM"].confidence == pytest.approx(UNTESTED_RECORD * agree.mean())


def test_sac_adapter_keeps_the_policy_spread_as_support(snap_2008: MarketSnapshot) -> None:
    agent = SAC(state_dim=11)
    sigs = SacAdapter(agent).signals(snap_2008)
    assert {s.symbol for s in sigs} == {"SPY", "JPM", "XOM", "GS"}
    for s in sigs:
        assert s.confidence == pytest.approx(UNTESTED_RECORD * s.reasoning["support"])
        assert s.ts.date().isoformat() == "2008-10-10"


@pytest.fixture(scope="module")
def controller(shared_data: Path) -> HierarchicalRegimeController:
    r = _returns(shared_data, "yahoo_2000_2012", ("SPY", "JPM", "XOM"), "2007-12-31")
    ctl = HierarchicalRegimeController(n_starts=1, use_pomdp=False)
    return ctl.fit(r["SPY"], {"JPM": r["JPM"], "XOM": r["XOM"]})


def test_regime_adapters_in_the_2008_crash(
    controller: HierarchicalRegimeController, snap_2008: MarketSnapshot
) -> None:
    sigs = collect_signals([HmmAdapter(controller), ManifoldAdapter(controller)], snap_2008)
    by = {(s.model, s.symbol): s for s in sigs}
    assert set(by) == {(m, s) for m in ("hmm", "manifold") for s in ("JPM", "XOM")}
    for sym in ("JPM", "XOM"):
        # manifold: P(calm) - P(stressed); both stocks sit in the stressed regime
        man = by[("manifold", sym)]
        print(sym, "manifold", round(man.value, 3), "hmm", round(by[("hmm", sym)].value, 3))
        assert man.value < -0.9
        # HMM: next-day Sharpe from hmmlearn's own posterior at the last row (= the filtered
        # probability there) times the transition matrix, mixed over the states' normals
        det = controller.symbols[sym][0]
        assert det.model is not None
        r = snap_2008.symbol_returns(sym)
        z = (det.features(r) - det._center) / det._scale
        nxt = det.model.predict_proba(z)[-1] @ det.model.transmat_
        mu = det.model.means_[:, 0] * det._scale[0] + det._center[0]
        var = det.model.covars_[:, 0, 0] * det._scale[0] ** 2
        mean = nxt @ mu
        sd = math.sqrt(nxt @ (var + mu**2) - mean**2)
        hmm = by[("hmm", sym)]
        assert hmm.value == pytest.approx(math.tanh(math.sqrt(252) * mean / sd / 2), rel=1e-6)
        probs = hmm.reasoning["probabilities"]
        assert max(probs, key=probs.get) in ("sideways", "bear_volatile")


def test_a_failing_adapter_is_skipped(snap_2008: MarketSnapshot) -> None:
    class Broken:
        name = "broken"
        lifetime = GarchAdapter().lifetime

        def signals(self, snapshot: MarketSnapshot) -> list[Signal]:
            raise ValueError("bad data")

    sigs = collect_signals([Broken(), CapmAdapter()], snap_2008)
    assert {s.model for s in sigs} == {"capm"}


def test_adapters_serve_the_equity_engines_source_protocol(snap_2008: MarketSnapshot) -> None:
    closes = np.exp(snap_2008.returns.cumsum())
    view = MarketView(
        now=datetime(2008, 10, 13, 9, 0, tzinfo=NY),
        symbols=["JPM", "XOM"],
        bars=pd.DataFrame(),
        closes=closes,
        market="SPY",
        data_ts=datetime(2008, 10, 10, 16, 0, tzinfo=NY),
    )
    garch, capm_ = GarchAdapter(), CapmAdapter()
    for a in (garch, capm_):
        a.refit(view)
    assert set(garch.vol) == {"JPM", "XOM", "SPY"}
    assert garch.vol["JPM"] == pytest.approx(math.sqrt(252 * garch.fits["JPM"].next_variance))
    assert list(capm_.ranking.index) == sorted(capm_.ranking.index, key=capm_.ranking["rank"].get)
    sigs = garch.signals(view) + capm_.signals(view)
    assert {s.symbol for s in sigs} >= {"JPM", "XOM"}
    assert all(s.ts == view.data_ts for s in sigs)


def test_transformer_adapter_reads_only_windows_ending_today(snap_2008: MarketSnapshot) -> None:
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2008-01-01", "2008-10-10")
    idx = pd.MultiIndex.from_product([dates, ["JPM", "XOM"]], names=["date", "symbol"])
    X = pd.DataFrame(rng.normal(size=(len(idx), 2)), index=idx, columns=["a", "b"])
    fwd = pd.Series(0.01 * X["a"].to_numpy() + rng.normal(0, 0.01, len(X)), index=idx)
    cfg = TransformerConfig(window=5, d_model=8, n_heads=2, n_layers=1, d_ff=16, epochs=1)
    model = TransformerPredictor(cfg).fit(X, fwd)
    feats = X.drop(index=(dates[-1], "XOM"))  # XOM's last window ends yesterday: left out
    sigs = TransformerAdapter(model).signals(MarketSnapshot(snap_2008.returns, features=feats))
    assert [s.symbol for s in sigs] == ["JPM"]
    jpm = sigs[0]
    mu, sd = model.predict_windows(feats.xs("JPM", level="symbol").to_numpy(np.float32)[None, -5:])
    p = 0.5 * (1 + math.erf(mu[0] / sd[0] / math.sqrt(2)))
    assert jpm.value == pytest.approx(2 * p - 1, rel=1e-5)
    assert jpm.confidence == pytest.approx(UNTESTED_RECORD)  # no reference: full support
    assert jpm.ts.date() == dates[-1].date()
