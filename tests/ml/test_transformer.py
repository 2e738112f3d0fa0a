"""Transformer predictor (v28quant.ml.transformer_predictor).

Independent facts: a forward return planted as a known function of a feature three rows back in
the window must be learned out of sample (hit rate significant by an exact binomial test, scipy);
the brief's configuration (d_model = 512, 8 heads) must build and back-propagate; pure noise
must show no edge.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from v28quant.ml.transformer_predictor import (
    TransformerConfig,
    TransformerEncoderBlock,
    TransformerPredictor,
    TransformerPredictorModel,
    make_windows,
)

torch.set_num_threads(1)

TINY = TransformerConfig(
    window=8,
    d_model=16,
    n_heads=2,
    n_layers=1,
    d_ff=32,
    dropout=0.0,
    epochs=6,
    batch_size=128,
    lr=5e-3,
)


def planted_panel(n_days: int, n_sym: int, seed: int, beta: float = 0.01):
    """Features x0..x2 ~ N(0, 1); forward return = beta * x0 three rows earlier + N(0, 0.01)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-01", periods=n_days)
    idx = pd.MultiIndex.from_product(
        [dates, [f"S{i}" for i in range(n_sym)]], names=["date", "symbol"]
    )
    X = pd.DataFrame(rng.normal(size=(len(idx), 3)), index=idx, columns=["x0", "x1", "x2"])
    lag = X["x0"].groupby(level="symbol").shift(3)
    y = (beta * lag + rng.normal(0, 0.01, len(idx))).dropna()
    return X, y


@pytest.mark.slow
def test_planted_lagged_signal_is_learned_out_of_sample():
    X, y = planted_panel(700, 4, seed=0)
    split = X.index.get_level_values("date")[500 * 4]
    train = y[y.index.get_level_values("date") < split]
    test = y[y.index.get_level_values("date") > split + pd.Timedelta(days=14)]
    model = TransformerPredictor(TINY).fit(X, train)
    s = model.score_oos(X, test)
    hits = round(s["hit_rate"] * s["n"])
    # Bayes hit rate: 1/2 + arctan(1)/pi = 0.75; require a clear, significant edge
    p = stats.binomtest(hits, int(s["n"]), 0.5, alternative="greater").pvalue
    assert s["hit_rate"] > 0.62, s
    assert p < 1e-8, s
    assert s["ic"] > 0.25, s


def test_pure_noise_shows_no_edge():
    X, y = planted_panel(400, 4, seed=1, beta=0.0)
    split = X.index.get_level_values("date")[300 * 4]
    train = y[y.index.get_level_values("date") < split]
    test = y[y.index.get_level_values("date") > split + pd.Timedelta(days=14)]
    s = TransformerPredictor(TINY).fit(X, train).score_oos(X, test)
    assert s["binom_p"] > 0.01, f"false edge on noise: {s}"


def test_training_windows_are_refused_for_scoring():
    X, y = planted_panel(200, 2, seed=2)
    m = TransformerPredictor(TINY).fit(X, y)
    with pytest.raises(ValueError, match="rows were used in training"):
        m.score_oos(X, y.iloc[-50:])


def test_brief_configuration_builds_and_trains_one_step():
    cfg = TransformerConfig.brief(window=8)
    assert (cfg.d_model, cfg.n_heads) == (512, 8)
    torch.manual_seed(0)
    net = TransformerPredictorModel(5, cfg)
    x = torch.randn(4, 8, 5)
    mu, log_s = net(x)
    assert mu.shape == (4,)
    assert log_s.shape == (4,)
    loss = (mu**2).mean() + log_s.mean()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_block_rejects_heads_not_dividing_d_model():
    with pytest.raises(ValueError, match="divisible"):
        TransformerEncoderBlock(d_model=30, n_heads=4)


def test_windows_and_signals_use_the_latest_rows_per_symbol():
    X, y = planted_panel(120, 3, seed=3)
    Xw, idx = make_windows(X, 8, last_only=True)
    assert Xw.shape == (3, 8, 3)
    for k, (d, sym) in enumerate(idx):
        np.testing.assert_array_equal(Xw[k, -1], X.loc[(d, sym)].to_numpy(np.float32))
        assert d == X.index.get_level_values("date").max()
    m = TransformerPredictor(TINY).fit(X, y)
    sig = m.signals(X)
    assert [s.symbol for s in sig] == ["S0", "S1", "S2"]
    assert all(-1 <= s.value <= 1 and 0 <= s.confidence <= 1 for s in sig)


def test_implements_the_ml_base_contract():
    # P(up) = Phi(mu / sigma): recomputed here with scipy's normal CDF from the model's own
    # mean and scale, not from the model's probability column.
    from v28quant.ml.base import BaseModel

    X, y = planted_panel(120, 3, seed=4)
    m = TransformerPredictor(TINY).fit(X, y)
    assert isinstance(m, BaseModel)
    assert m.feature_names == ["x0", "x1", "x2"]
    pred = m.predict(X)
    p = m.predict_proba(X)
    assert p.shape == (len(pred),)
    assert p.dtype == np.float64
    expected = stats.norm.cdf(pred["mu"] / pred["sigma"])
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-6)
