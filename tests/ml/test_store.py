"""Model store (v28quant.ml.model_store).

save -> load gives identical predictions for every model; metadata round-trips; each save is
recorded through the journal's record_model_run.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import torch
from v28quant.ml.gradient_boost_ensemble import EnsembleConfig, XGBoostModel
from v28quant.ml.model_store import ModelStore
from v28quant.ml.pomdp_controller import POMDPController
from v28quant.ml.sac_agent import SAC, SACConfig
from v28quant.ml.stacked_ensemble import StackedEnsemble
from v28quant.ml.transformer_predictor import TransformerConfig, TransformerPredictor

torch.set_num_threads(1)


class FakeJournal:
    """Records the calls the model store makes, with the journal's exact signature."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def record_model_run(
        self,
        model: str,
        version: str,
        started: datetime,
        finished: datetime,
        params: dict,
        metrics: dict,
    ) -> None:
        self.calls.append(
            dict(
                model=model,
                version=version,
                started=started,
                finished=finished,
                params=params,
                metrics=metrics,
            )
        )


def data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] + rng.normal(size=n) > 0).astype(int)


def roundtrip(tmp_path, model, **kw):
    store = ModelStore(tmp_path)
    store.save(
        model,
        model.name,
        train_start="2015-01-01",
        train_end="2020-12-31",
        features=kw.pop("features", ["x0", "x1", "x2", "x3"]),
        validation_scores=kw.pop("scores", {"hit_rate": 0.5}),
        params=kw.pop("params", {}),
    )
    return store.load(model.name)


@pytest.mark.slow
@pytest.mark.parametrize(
    "make",
    [lambda: XGBoostModel(EnsembleConfig(n_estimators=30)), lambda: StackedEnsemble()],
    ids=["xgb", "stacked"],
)
def test_classifiers_predict_identically_after_load(tmp_path, make):
    X, y = data()
    m = make().fit(X[:400], y[:400])
    loaded, meta = roundtrip(tmp_path, m)
    np.testing.assert_array_equal(loaded.predict_proba(X[400:]), m.predict_proba(X[400:]))
    assert meta.train_end == "2020-12-31"
    assert meta.features == ["x0", "x1", "x2", "x3"]
    # the training footprint survives: OOS scoring on training rows is still refused
    with pytest.raises(ValueError, match="used in training"):
        loaded.score_oos(X[:50], y[:50])


def test_transformer_predicts_identically_after_load(tmp_path):
    rng = np.random.default_rng(1)
    idx = pd.MultiIndex.from_product(
        [pd.bdate_range("2020-01-01", periods=150), ["A", "B"]], names=["date", "symbol"]
    )
    X = pd.DataFrame(rng.normal(size=(300, 3)), index=idx, columns=["a", "b", "c"])
    y = pd.Series(rng.normal(0, 0.01, 300), index=idx)
    m = TransformerPredictor(
        TransformerConfig(
            window=5, d_model=8, n_heads=2, n_layers=1, d_ff=16, epochs=1, batch_size=64
        )
    ).fit(X, y)
    loaded, _ = roundtrip(tmp_path, m, features=m.feature_names)
    pd.testing.assert_frame_equal(loaded.predict(X), m.predict(X))


@pytest.mark.slow
def test_sac_and_pomdp_act_identically_after_load(tmp_path):
    agent = SAC(3, 1, SACConfig(hidden=(8,)))
    s = np.random.default_rng(2).normal(size=(10, 3)).astype(np.float32)
    loaded, _ = roundtrip(tmp_path, agent, features=["z1", "z2", "pos"])
    np.testing.assert_array_equal(
        loaded.act(s, deterministic=True), agent.act(s, deterministic=True)
    )
    ctl = POMDPController()
    loaded_ctl, _ = roundtrip(tmp_path, ctl, features=["bull", "neutral", "bear"])
    lik = {"bull": 0.2, "neutral": 0.3, "bear": 0.5}
    assert loaded_ctl.decide(lik) == ctl.decide(lik)


def test_versions_metadata_and_journal_record(tmp_path):
    journal = FakeJournal()
    store = ModelStore(tmp_path, journal=journal)
    X, y = data()
    m = XGBoostModel(EnsembleConfig(n_estimators=20)).fit(X[:400], y[:400])
    scores = m.score_oos(X[400:], y[400:])
    t0, t1 = datetime(2024, 1, 2, 9, tzinfo=UTC), datetime(2024, 1, 2, 9, 5, tzinfo=UTC)
    for _ in range(2):
        meta = store.save(
            m,
            "xgboost",
            train_start="2015-01-01",
            train_end="2020-12-31",
            features=m.feature_names,
            validation_scores=scores,
            params=m.params(),
            started=t0,
            finished=t1,
        )
    assert store.versions("xgboost") == ["v0001", "v0002"]
    assert meta.version == "v0002"
    _, meta1 = store.load("xgboost", "v0001")
    assert meta1.validation_scores["hit_rate"] == scores["hit_rate"]
    assert meta1.params["n_estimators"] == 20
    assert [c["version"] for c in journal.calls] == ["v0001", "v0002"]
    c = journal.calls[0]
    assert c["model"] == "xgboost"
    assert c["started"] == t0
    assert c["finished"] == t1
    assert c["metrics"]["hit_rate"] == scores["hit_rate"]
    assert c["params"]["max_depth"] == 3


def test_store_rejects_bad_names_versions_and_journals(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(ValueError, match="no stored model"):
        store.load("nothing")
    with pytest.raises(ValueError, match="model name"):
        store.versions("../evil")
    with pytest.raises(ValueError, match="record_model_run"):
        ModelStore(tmp_path, journal=object())  # type: ignore[arg-type]
    store.save(
        {"a": 1},
        "m",
        train_start=0,
        train_end=1,
        features=[],
        validation_scores={},
        version="v0007",
    )
    with pytest.raises(ValueError, match="already exists"):
        store.save(
            {"a": 1},
            "m",
            train_start=0,
            train_end=1,
            features=[],
            validation_scores={},
            version="v0007",
        )


def test_a_save_that_dies_midway_leaves_no_version(tmp_path, monkeypatch):
    """A crash while pickling (simulated) must not leave a version that load() would pick."""
    import v28quant.ml.model_store as ms

    store = ModelStore(tmp_path)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ms.pickle, "dump", boom)
    with pytest.raises(OSError, match="disk full"):
        store.save({"w": 1}, "m", train_start="a", train_end="b", features=[], validation_scores={})
    assert store.versions("m") == []
    monkeypatch.undo()
    store.save({"w": 2}, "m", train_start="a", train_end="b", features=[], validation_scores={})
    assert store.versions("m") == ["v0001"]
    assert store.load("m")[0] == {"w": 2}
