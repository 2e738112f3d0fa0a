"""The equity engine's pre-market refits: the classifiers and the torch models side by side.

The classifiers' features come first; then the classifiers train beside the transformer and SAC
(``LearnedSource``), so a refresh costs the longer of the two, not their sum. The sources here
record when each step runs and from which thread; a failing step is journaled and isolated.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd
from v28quant.calendar import ET
from v28quant.config import load_config
from v28quant.equity.engine import EquityEngine
from v28quant.equity.learned import LearnedSource
from v28quant.equity.sources import MarketView, MlSource
from v28quant.journal import Journal

NOW = datetime(2022, 12, 28, 9, 0, tzinfo=ET)


class Recording:
    """What ran, in order, and whether the two training steps overlapped."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.both_started = threading.Barrier(2, timeout=10.0)


class Classifiers(MlSource):
    def __init__(self, rec: Recording, fail: str = "") -> None:
        super().__init__()
        self.rec, self.fail = rec, fail

    def prepare(self, view: MarketView) -> MarketView:
        self.rec.steps.append("prepare")
        if self.fail == "prepare":
            raise ValueError("no features today")
        self.features = pd.DataFrame({"x": [1.0]})
        return view

    def train(self, view: MarketView) -> None:
        self.rec.steps.append("train")
        self.rec.both_started.wait()  # returns only once the learned source runs too
        if self.fail == "train":
            raise RuntimeError("classifier blew up")


class Learned(LearnedSource):
    def __init__(self, ml: MlSource, rec: Recording) -> None:
        super().__init__(ml)
        self.rec = rec

    def refit(self, view: MarketView) -> None:
        self.rec.steps.append("learned")
        if self.ml.features is None:  # as LearnedSource says without the day's features
            raise ValueError("the learned source needs MlSource's features (refit it first)")
        self.rec.both_started.wait()


def _premarket(tmp_path: Any, fail: str = "") -> tuple[Recording, Journal]:
    rec = Recording()
    ml = Classifiers(rec, fail)
    engine = EquityEngine(load_config()[1].equity, sources=[ml, Learned(ml, rec)])
    closes = pd.DataFrame(
        {"AAPL": range(300), "SP500": range(300)},
        index=pd.date_range("2021-10-01", periods=300, freq="B", tz="UTC"),
        dtype=float,
    )
    journal = Journal(tmp_path / "j.sqlite")
    ctx = SimpleNamespace(
        mode="paper",
        shared={"closes": closes, "bars": pd.DataFrame(), "market_symbol": "SP500"},
        universe=("AAPL",),
        now=NOW,
        model_dir=None,
        journal=journal,
    )
    asyncio.run(engine.premarket(ctx))  # type: ignore[arg-type]
    return rec, journal


def test_the_classifiers_train_beside_the_learned_models(tmp_path: Any) -> None:
    rec, journal = _premarket(tmp_path)
    assert rec.steps[0] == "prepare"
    assert sorted(rec.steps[1:]) == ["learned", "train"]
    assert not rec.both_started.broken  # each waited for the other: they overlapped
    assert [d for d in journal.decisions() if d["action"] == "error"] == []


def test_a_failing_classifier_training_is_journaled_and_the_learned_models_still_train(
    tmp_path: Any,
) -> None:
    rec, journal = _premarket(tmp_path, "train")
    assert sorted(rec.steps[1:]) == ["learned", "train"]
    errors = [d for d in journal.decisions() if d["action"] == "error"]
    assert [(e["engine"], e["reasoning"]["source"]) for e in errors] == [("equity", "ml")]
    assert "RuntimeError: classifier blew up" in errors[0]["reasoning"]["error"]


def test_without_the_days_features_both_sources_say_so(tmp_path: Any) -> None:
    rec, journal = _premarket(tmp_path, "prepare")
    assert rec.steps == ["prepare", "learned"]  # no classifier training on no features
    errors = [d for d in journal.decisions() if d["action"] == "error"]
    assert sorted(e["reasoning"]["source"] for e in errors) == ["learned", "ml"]
