"""Which trained model a source uses each session: the one it holds, a stored one, or a new one.

A source trains each model on a schedule: at its first session and whenever the model it holds
is older than its refresh age (calendar days since the last close it was trained on). When a
training falls due, a stored model trained on the same last close, features, symbols and
settings (:func:`training_recipe`) stands in for it, so a backtest run again over the same
sessions, or an optimisation trial over sessions an earlier trial ran, trains nothing and
trades as the first run did. Live and paper runs (``MarketView.resume_models``) start on the
newest stored model still within its refresh age, as a restart should; a backtest starts as
a cold run does, so its result is a function of its settings and dates alone, never of what
other runs left in the store. A stored model trained after the session's data is never used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from v28quant.equity.sources import MarketView


@dataclass(frozen=True)
class Trained:
    """A model in use and what it was trained on."""

    model: Any
    train_end: date
    features: list[str]
    recipe: dict[str, Any]
    scores: dict[str, float]


def training_recipe(view: MarketView, **settings: Any) -> dict[str, Any]:
    """Return what a stored model must share with today's to stand in for it (as stored)."""
    recipe: dict[str, Any] = json.loads(json.dumps({"symbols": sorted(view.symbols), **settings}))
    return recipe


def model_for_today(
    view: MarketView,
    name: str,
    refresh_days: int,
    features: list[str],
    recipe: dict[str, Any],
    held: Trained | None,
) -> Trained | None:
    """Return the model ``name`` to use today, or None when one must be trained (see above)."""
    from v28quant.ml.model_store import ModelStore

    today = view.data_ts.date()
    if held is not None and held.features == features and held.recipe == recipe:
        if 0 <= (today - held.train_end).days <= refresh_days:
            return held
    if view.model_dir is None:
        return None
    store = ModelStore(view.model_dir)
    meta = store.find(
        name,
        trained_by=today,
        max_age_days=refresh_days if held is None and view.resume_models else 0,
        accept=lambda m: m.features == features and m.params.get("recipe") == recipe,
    )
    if meta is None:
        return None
    model, _ = store.load(name, meta.version)
    end = date.fromisoformat(meta.train_end[:10])
    return Trained(model, end, meta.features, recipe, dict(meta.validation_scores))


def keep_trained(
    view: MarketView,
    name: str,
    model: Any,
    *,
    features: list[str],
    recipe: dict[str, Any],
    scores: dict[str, float],
    train_start: str,
    started: datetime,
    params: dict[str, Any] | None = None,
) -> Trained:
    """Store a model just trained on today's data (journaling the run) and return it as held."""
    from v28quant.ml.model_store import ModelStore

    today = view.data_ts.date()
    if view.model_dir is not None:
        ModelStore(view.model_dir, journal=view.journal).save(
            model,
            name,
            train_start=train_start,
            train_end=str(today),
            features=features,
            validation_scores=scores,
            params={**(params or {}), "recipe": recipe},
            started=started,
        )
    return Trained(model, today, features, recipe, scores)


__all__ = ["Trained", "keep_trained", "model_for_today", "training_recipe"]
