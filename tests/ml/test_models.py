"""XGBoost and stacked-ensemble direction models.

Modules: v28quant.ml.gradient_boost_ensemble, v28quant.ml.stacked_ensemble.

Independent facts: a planted, known dependence of the label on the features must be learned, out
of sample, with accuracy significantly above 1/2 (one-sided exact binomial test, scipy); on pure
noise the out-of-sample hit rate must not be significant (no false edge); calibrated P(up) must
track observed frequencies (reliability, binned); scoring on training rows must be refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from v28quant.ml.features import (
    FeatureConfig,
    PurgedWalkForward,
    align,
    build_features,
    make_labels,
)
from v28quant.ml.gradient_boost_ensemble import EnsembleConfig, XGBoostModel
from v28quant.ml.stacked_ensemble import StackedEnsemble
from v28quant.signals import Signal

SMALL_XGB = EnsembleConfig(n_estimators=80, max_depth=3, learning_rate=0.1)


def planted(n: int, seed: int, edge: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Y = 1{edge * (x0 - 0.5 x1 x2) + N(0, 1) > 0} with 6 features, 3 of them irrelevant."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = (edge * (X[:, 0] - 0.5 * X[:, 1] * X[:, 2]) + rng.normal(size=n) > 0).astype(int)
    return X, y


def binom_p(hits: int, n: int) -> float:
    return float(stats.binomtest(hits, n, 0.5, alternative="greater").pvalue)


@pytest.mark.slow
@pytest.mark.parametrize(
    "make", [lambda: XGBoostModel(SMALL_XGB), lambda: StackedEnsemble()], ids=["xgb", "stacked"]
)
def test_planted_signal_is_learned_out_of_sample(make):
    X, y = planted(3000, seed=1)
    model = make().fit(X[:2000], y[:2000])
    s = model.score_oos(X[2000:], y[2000:])
    hits = round(s["hit_rate"] * 1000)
    # the Bayes rate of this design is ~0.74; require a clear, significant edge
    assert s["hit_rate"] > 0.65, s
    assert binom_p(hits, 1000) < 1e-10, s


@pytest.mark.slow
@pytest.mark.parametrize(
    "make", [lambda: XGBoostModel(SMALL_XGB), lambda: StackedEnsemble()], ids=["xgb", "stacked"]
)
def test_pure_noise_shows_no_edge(make):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 6))
    y = rng.integers(0, 2, 3000)
    s = make().fit(X[:2000], y[:2000]).score_oos(X[2000:], y[2000:])
    assert s["binom_p"] > 0.01, f"false edge on noise: {s}"
    assert abs(s["auc"] - 0.5) < 0.06, s


@pytest.mark.slow
def test_scoring_on_training_rows_is_refused():
    X, y = planted(600, seed=2)
    for model in (XGBoostModel(SMALL_XGB).fit(X, y), StackedEnsemble().fit(X, y)):
        with pytest.raises(ValueError, match="rows were used in training"):
            model.score_oos(X[-100:], y[-100:])
        with pytest.raises(ValueError, match="1 of 51 rows"):
            model.score_oos(
                np.vstack([X[:1], planted(50, 99)[0]]), np.r_[y[:1], planted(50, 99)[1]]
            )


def test_xgb_probabilities_are_calibrated():
    # reliability: in bins of predicted P(up), the observed frequency of y = 1 lies within 4
    # binomial standard errors (+0.03 model slack) of the bin's mean prediction
    X, y = planted(8000, seed=3, edge=0.6)
    m = XGBoostModel(EnsembleConfig(n_estimators=120, calibration="sigmoid")).fit(
        X[:5000], y[:5000]
    )
    p = m.predict_proba(X[5000:])
    yt = y[5000:]
    for lo, hi in ((0.0, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 1.0)):
        sel = (p >= lo) & (p < hi)
        if sel.sum() < 100:
            continue
        freq, mean_p = yt[sel].mean(), p[sel].mean()
        se = np.sqrt(mean_p * (1 - mean_p) / sel.sum())
        assert abs(freq - mean_p) < 4 * se + 0.03, (lo, hi, freq, mean_p, sel.sum())


@pytest.mark.slow
def test_stacked_ensemble_defaults_with_dataframes_and_confidence():
    X, y = planted(1200, seed=4)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    m = StackedEnsemble().fit(df.iloc[:900], pd.Series(y[:900]))
    labels, conf = m.predict_with_confidence(df.iloc[900:][list(reversed(df.columns))])
    assert set(np.unique(labels)) <= {0, 1}
    assert labels.shape == (300,)
    assert ((conf >= 0) & (conf <= 1)).all()
    np.testing.assert_array_equal(labels, m.predict(df.iloc[900:]))
    # confidence is |2p - 1| times base agreement, so never above |2p - 1|
    p = m.predict_proba(df.iloc[900:])
    assert (conf <= np.abs(2 * p - 1) + 1e-12).all()
    # rows where the base learners disagree get lower confidence than unanimous ones of equal p
    base = m.base_probabilities(df.iloc[900:])
    unanimous = ((base > 0.5) == (labels[:, None] == 1)).all(axis=1)
    assert conf[unanimous].mean() > conf[~unanimous].mean()


def test_out_of_fold_blocks_are_purged_and_embargoed():
    m = StackedEnsemble(n_folds=4, purge=3, embargo=5)
    for train, test in m.fold_indices(100):
        a, b = test.min(), test.max()
        assert not np.any((train >= a - 3) & (train <= b + 3 + 5)), (a, b, train)


def test_bad_input_is_rejected():
    X, y = planted(300, seed=5)
    with pytest.raises(ValueError, match="only 0 and 1"):
        XGBoostModel(SMALL_XGB).fit(X, y * 2)
    with pytest.raises(ValueError, match="both classes"):
        StackedEnsemble().fit(X, np.zeros(300, int))
    with pytest.raises(ValueError, match="not fitted"):
        XGBoostModel().predict_proba(X)
    m = XGBoostModel(SMALL_XGB).fit(X, y)
    with pytest.raises(ValueError, match="columns"):
        m.predict_proba(X[:, :4])


def mean_reverting_bars(n_days: int, n_sym: int, phi: float, seed: int) -> pd.DataFrame:
    """Prices whose daily log return is AR(1): r_t = phi r_{t-1} + e_t (phi < 0 reverts)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0, 0.01, (n_days, n_sym))
    r = np.zeros_like(e)
    for t in range(1, n_days):
        r[t] = phi * r[t - 1] + e[t]
    close = 100 * np.exp(np.cumsum(r, axis=0))
    dates = pd.bdate_range("2010-01-01", periods=n_days)
    return pd.DataFrame(
        {
            "date": np.repeat(dates, n_sym),
            "symbol": np.tile([f"S{i:02d}" for i in range(n_sym)], n_days),
            "close": close.ravel(),
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize(("phi", "edge"), [(-0.2, True), (0.0, False)], ids=["planted", "noise"])
def test_feature_pipeline_walk_forward_finds_planted_reversal_only(phi, edge):
    # AR(1) with phi = -0.2: P(sign r_{t+1} = -sign r_t) = 1/2 + arctan(0.2 sd ratio)/pi ~ 0.56
    bars = mean_reverting_bars(900, 8, phi, seed=11)
    cfg = FeatureConfig(momentum_window=60, momentum_skip=5)
    f, lab = align(build_features(bars, cfg), make_labels(bars, horizon=1))
    dates = f.index.get_level_values("date")
    hits = n = 0
    for s in PurgedWalkForward(n_splits=3, embargo=2, min_train_dates=300).split(
        dates, lab["label_end"]
    ):
        m = XGBoostModel(EnsembleConfig(n_estimators=60, max_depth=2, calibration_gap=16))
        m.fit(f.iloc[s.train], lab["direction"].iloc[s.train])
        sc = m.score_oos(f.iloc[s.test], lab["direction"].iloc[s.test], lab["fwd_ret"].iloc[s.test])
        hits += round(sc["hit_rate"] * sc["n"])
        n += int(sc["n"])
    p = binom_p(hits, n)
    if edge:
        assert p < 1e-4, f"planted reversal not found: {hits}/{n}, p={p}"
    else:
        assert p > 0.01, f"false edge on a random walk: {hits}/{n}, p={p}"
    sigs = m.signals(f)
    assert len(sigs) == 8
    assert all(isinstance(x, Signal) and x.model == "xgboost" for x in sigs)
