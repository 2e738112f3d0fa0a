"""A backtest run again over the same sessions reuses the models its first run trained.

The model store is shared by every run (``[runner] model_dir``). A model is reused when it was
trained by the session's data (never after it), recently enough, on the same features, symbols
and settings; a rerun over the same sessions then finds at each session the model the first
run trained by then, and trains nothing. Independent references: the store's folder listing
(which versions exist) and the first run's own signals and regime assessments.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from v28quant.calendar import ET
from v28quant.data.samples import sample_history
from v28quant.equity.learned import LearnedSource
from v28quant.equity.sources import MarketView, MlSource
from v28quant.journal import Journal
from v28quant.ml.model_store import ModelStore
from v28quant.ml.sac_agent import SACConfig
from v28quant.ml.transformer_predictor import TransformerConfig
from v28quant.premarket import CONTROLLER_STORE_NAME, assess_regime, log_returns

pytestmark = pytest.mark.slow

SYMBOLS = ["AAPL", "JPM", "XOM"]
#: Two refresh days more than ``refresh_days`` (30 calendar days) apart.
DAYS = (date(2022, 9, 30), date(2022, 11, 15))


def _versions(root: Path) -> dict[str, list[str]]:
    return {p.name: sorted(v.name for v in p.iterdir()) for p in sorted(root.iterdir())}


def _view(
    day: date, root: Path, symbols: list[str] = SYMBOLS, *, backtest: bool = True
) -> MarketView:
    bars = sample_history().bars
    bars = bars[bars["symbol"].isin([*symbols, "SP500"])]
    ts = pd.to_datetime(bars["timestamp"], utc=True)
    bars = bars[
        (ts >= pd.Timestamp("2019-01-01", tz="UTC")) & (ts.dt.tz_convert(ET).dt.date <= day)
    ]
    closes = bars.pivot_table(index="timestamp", columns="symbol", values="close").sort_index()
    return MarketView(
        now=datetime.combine(day + timedelta(days=1), time(9), ET),
        symbols=list(symbols),
        bars=bars.reset_index(drop=True),
        closes=closes,
        market="SP500",
        data_ts=datetime.combine(day, time(16), ET),
        model_dir=root,
        resume_models=not backtest,
    )


def _sources() -> tuple[MlSource, LearnedSource]:
    ml = MlSource()
    small = TransformerConfig(d_model=8, n_heads=2, n_layers=1, d_ff=16, epochs=1)
    learned = LearnedSource(
        ml, sac_steps=250, transformer_config=small, sac_config=SACConfig(hidden=(8, 8))
    )
    return ml, learned


def _signals(view: MarketView) -> list[tuple[str, str, float, float]]:
    ml, learned = _sources()
    ml.refit(view)
    learned.refit(view)
    out = [*ml.signals(view), *learned.signals(view)]
    return sorted((s.model, s.symbol, s.value, s.confidence) for s in out)


def test_the_store_finds_the_version_trained_last_by_a_day(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    for end in ("2022-10-03", "2022-11-01", "2022-10-20", "2022-11-01"):
        store.save(
            {"end": end},
            "m",
            train_start="2020-01-02",
            train_end=end,
            features=["x"],
            validation_scores={},
        )
    # v0004: the later of the two trained by 1 November; nothing trained after a day is found
    assert store.find("m", trained_by=date(2022, 11, 30)).version == "v0004"  # type: ignore[union-attr]
    assert store.find("m", trained_by=date(2022, 10, 25)).version == "v0003"  # type: ignore[union-attr]
    assert store.find("m", trained_by=date(2022, 10, 2)) is None
    assert store.find("m", trained_by=date(2022, 12, 30), max_age_days=20) is None
    only_first = store.find(
        "m", trained_by=date(2022, 11, 30), accept=lambda m: m.version == "v0001"
    )
    assert only_first is not None
    assert only_first.train_end == "2022-10-03"


def test_a_rerun_over_the_same_sessions_trains_no_model(tmp_path: Path) -> None:
    root = tmp_path / "models"
    first = [_signals(_view(day, root)) for day in DAYS]
    trained = _versions(root)
    assert {name: len(v) for name, v in trained.items()} == {
        "sac": 2,
        "stacked_ensemble": 2,
        "transformer": 2,
        "xgboost": 2,
    }
    # the first session again, with the store holding a later session's models too
    again = _signals(_view(DAYS[0], root))
    assert _versions(root) == trained
    assert again == first[0]


def _counts(root: Path) -> dict[str, int]:
    return {name: len(v) for name, v in _versions(root).items()}


def test_a_backtest_starts_on_its_own_models_where_paper_resumes_the_stored_ones(
    tmp_path: Path,
) -> None:
    root = tmp_path / "models"
    _signals(_view(DAYS[0], root))
    later = DAYS[0] + timedelta(days=7)  # the stored models are a week old, still fresh
    _signals(_view(later, root, backtest=False))
    assert set(_counts(root).values()) == {1}  # paper took them
    _signals(_view(later, root))
    assert set(_counts(root).values()) == {2}  # a backtest from that day trained its own


def test_another_universe_trains_its_own_models(tmp_path: Path) -> None:
    root = tmp_path / "models"
    _signals(_view(DAYS[0], root))
    _signals(_view(DAYS[0], root, ["AAPL", "JPM"]))
    assert {name: len(v) for name, v in _versions(root).items()} == {
        "sac": 2,
        "stacked_ensemble": 2,
        "transformer": 2,
        "xgboost": 2,
    }


class _Quiet:
    def error(self, *args: object) -> None:
        raise AssertionError(f"no notice expected: {args}")


@pytest.mark.asyncio
async def test_a_rerun_reuses_the_regime_refits_of_the_first_run(tmp_path: Path) -> None:
    closes = sample_history().bars.pivot_table(index="timestamp", columns="symbol", values="close")
    returns = log_returns(closes[["SP500", *SYMBOLS]].dropna()).iloc[-800:]
    days = returns.index[-7:]  # a fit on the first day and a refit five sessions later

    async def run(folder: Path) -> list[tuple[str, float]]:
        folder.mkdir()
        ctx = SimpleNamespace(
            mode="backtest",
            model_dir=tmp_path / "models",
            shared={},
            journal=Journal(folder / "j.sqlite"),
            notifier=_Quiet(),
            now=None,
        )
        out = []
        for day in days:
            ctx.now = day
            a = await assess_regime(ctx, "SP500", returns.loc[:day])
            out.append((a.state.label, a.risk_multiplier))
        return out

    first = await run(tmp_path / "a")
    fits = ModelStore(tmp_path / "models").versions(CONTROLLER_STORE_NAME)
    assert len(fits) == 2
    assert await run(tmp_path / "b") == first
    assert ModelStore(tmp_path / "models").versions(CONTROLLER_STORE_NAME) == fits
