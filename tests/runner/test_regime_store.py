"""The pre-market job never reuses regime detectors fitted on data after the session's.

A backtest over an earlier range can share the model store with one over later sessions; the
stored controller's training end is then after today's last close, and using it would read the
future. Independent reference: the dates themselves (training end against the last close).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from v28quant.ml.model_store import ModelStore
from v28quant.premarket import CONTROLLER_STORE_NAME, REGIME_REFIT_SESSIONS, _stored_controller

MARKET = pd.Series(0.0, index=pd.bdate_range("2022-10-03", "2022-10-31"))


def _store(root: Path, train_end: str) -> None:
    ModelStore(root).save(
        {"fitted through": train_end},
        CONTROLLER_STORE_NAME,
        train_start="2020-01-02",
        train_end=train_end,
        features=["AAPL", "JPM"],
        validation_scores={},
    )


def test_a_controller_fitted_on_later_data_is_not_used(tmp_path: Path) -> None:
    _store(tmp_path, "2022-11-14")
    ctx = SimpleNamespace(model_dir=tmp_path)
    assert _stored_controller(ctx, MARKET, {"AAPL"}) == (None, REGIME_REFIT_SESSIONS)


def test_an_earlier_controller_is_used_with_its_age_in_sessions(tmp_path: Path) -> None:
    _store(tmp_path, "2022-10-25")
    ctx = SimpleNamespace(model_dir=tmp_path)
    controller, age = _stored_controller(ctx, MARKET, {"AAPL"})
    assert controller == {"fitted through": "2022-10-25"}
    assert age == 4  # 26, 27, 28 and 31 October
