"""Adapters of the learned models: XGBoost, the stacked ensemble, the transformer and SAC.

Each reads today's feature rows only (:func:`v28quant.ml.features.latest_rows`: a symbol whose
last row is older is left out) and stamps its signals with that session's close.

* ``record``: the p-value of the model's out-of-sample hit rate (``validation_scores``'
  ``hit_p``, set by ``score_oos`` with the dates and horizon of its rows, else ``binom_p``) or
  an explicit :class:`~v28quant.models.base.TrackRecord`;
* ``support``: the share of today's features inside their training range
  (:class:`~v28quant.models.base.TrainingRange`), times, for the stacked ensemble, the share of
  base learners that agree with the meta-learner's direction, and for SAC one minus the
  policy's spread at today's state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from v28quant.ml.features import latest_rows
from v28quant.ml.gradient_boost_ensemble import XGBoostModel
from v28quant.ml.stacked_ensemble import StackedEnsemble
from v28quant.models.base import (
    DAILY,
    DailyMemo,
    MarketSnapshot,
    TrackRecord,
    TrainingRange,
    data_key,
    record_of,
    session_close,
)
from v28quant.signals import Signal, combine_confidence

log = logging.getLogger(__name__)


def _today(snapshot: MarketSnapshot, names: list[str]) -> pd.DataFrame:
    if snapshot.features is None:
        return pd.DataFrame(columns=names)
    return latest_rows(snapshot.features)[names]


def _model_key(snapshot: MarketSnapshot, model: Any) -> tuple[object, ...]:
    # every attribute's identity: a refit or an incremental update rebinds at least one
    state = tuple(id(v) for v in vars(model).values())
    return data_key(snapshot.features, state)


def _range_support(rng: TrainingRange | None, rows: pd.DataFrame) -> np.ndarray:
    return np.ones(len(rows)) if rng is None else rng.support(rows)


@dataclass
class XGBoostAdapter:
    """Calibrated P(up) of :class:`~v28quant.ml.gradient_boost_ensemble.XGBoostModel`.

    Value ``2 P(up) - 1``. ``reference``: the training features, for the range support.
    """

    model: XGBoostModel
    reference: pd.DataFrame | None = None
    track: TrackRecord | None = None
    name: str = "xgboost"
    lifetime: timedelta = DAILY

    def __post_init__(self) -> None:
        """Keep the training range of the reference features."""
        cols = self.model.feature_names
        self._range = None if self.reference is None else TrainingRange(self.reference[cols])
        self.memo = DailyMemo()

    def _agreement(self, rows: pd.DataFrame) -> np.ndarray:
        return np.ones(len(rows))

    def signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        """One signal per symbol with a feature row today (once per day's data and fit)."""
        key = _model_key(snapshot, self.model)
        return self.memo.get(key, lambda: self._signals(snapshot))

    def _signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        rows = _today(snapshot, self.model.feature_names)
        if rows.empty or snapshot.features is None:
            return []
        day = snapshot.features.index.get_level_values("date").max()
        ts = session_close(day)
        p = self.model.predict_proba(rows)
        support = _range_support(self._range, rows) * self._agreement(rows)
        record = record_of(self.track, self.model.validation_scores)
        out = []
        for sym, pu, sup in zip(rows.index, p, support, strict=True):
            reasoning = {"prob_up": float(pu), "support": float(sup), "record": record}
            v = float(np.clip(2.0 * pu - 1.0, -1.0, 1.0))
            conf = combine_confidence(record, float(np.clip(sup, 0.0, 1.0)))
            out.append(Signal(self.name, str(sym), v, conf, reasoning, ts, self.lifetime))
        return out


@dataclass
class StackedEnsembleAdapter(XGBoostAdapter):
    """Meta-probability of :class:`~v28quant.ml.stacked_ensemble.StackedEnsemble`.

    Support also counts the base learners agreeing with its direction.
    """

    model: StackedEnsemble  # type: ignore[assignment]
    name: str = "stacked_ensemble"

    def _agreement(self, rows: pd.DataFrame) -> np.ndarray:
        base = self.model.base_probabilities(rows)
        up = (self.model.predict_proba(rows) > 0.5)[:, None]
        out: np.ndarray = ((base > 0.5) == up).mean(axis=1)
        return out


@dataclass
class TransformerAdapter:
    """P(up) = Phi(mu / sigma) of the transformer's predictive distribution; value 2 P - 1."""

    model: Any
    reference: pd.DataFrame | None = None
    track: TrackRecord | None = None
    name: str = "transformer"
    lifetime: timedelta = DAILY

    def __post_init__(self) -> None:
        """Keep the training range of the reference features."""
        cols = self.model.feature_names
        self._range = None if self.reference is None else TrainingRange(self.reference[cols])
        self.memo = DailyMemo()

    def signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        """One signal per symbol whose latest window ends today (once per day's data and fit)."""
        key = _model_key(snapshot, self.model)
        return self.memo.get(key, lambda: self._signals(snapshot))

    def _signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        from v28quant.ml.transformer_predictor import make_windows

        f = snapshot.features
        if f is None or f.empty:
            return []
        names = self.model.feature_names
        day = f.index.get_level_values("date").max()
        xw, idx = make_windows(f[names], self.model.config.window, last_only=True)
        fresh = np.asarray(idx.get_level_values("date") == day)
        if not fresh.all():
            stale = sorted(map(str, idx.get_level_values("symbol")[~fresh]))
            log.warning("transformer: no window ending %s for %s; left out", day.date(), stale)
        xw, idx = xw[fresh], idx[fresh]
        if not len(idx):
            return []
        mu, sd = self.model.predict_windows(xw)
        prob = norm.cdf(mu / sd)
        pred = pd.DataFrame({"mu": mu, "sigma": sd, "prob_up": prob}, index=idx)
        rows = latest_rows(f[names])
        support = pd.Series(_range_support(self._range, rows), index=rows.index)
        record = record_of(self.track, self.model.validation_scores)
        ts = session_close(day)
        out = []
        for (_, sym), row in pred.iterrows():
            sup = float(support.get(sym, 0.0))
            reasoning = {"mu": float(row["mu"]), "sigma": float(row["sigma"]), "support": sup}
            v = float(np.clip(2.0 * row["prob_up"] - 1.0, -1.0, 1.0))
            conf = combine_confidence(record, sup)
            out.append(Signal(self.name, str(sym), v, conf, reasoning, ts, self.lifetime))
        return out


@dataclass
class SacAdapter:
    """The SAC agent's deterministic target exposure; support ``1 - spread`` of its policy."""

    agent: Any
    lookback: int = 10
    vol_window: int = 20
    track: TrackRecord | None = None
    name: str = "sac"
    lifetime: timedelta = DAILY

    def signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        """One signal per symbol with ``vol_window`` returns up to the last row."""
        from v28quant.ml.sac_agent import sac_signals

        rets = snapshot.returns.iloc[-self.vol_window :].dropna(axis=1)
        if len(rets) < self.vol_window or rets.empty:
            return []
        raw = sac_signals(
            self.agent, rets, dict(snapshot.positions), self.lookback, self.vol_window
        )
        record = record_of(self.track)
        ts = snapshot.daily_ts
        return [
            Signal(
                self.name,
                s.symbol,
                s.value,
                combine_confidence(record, s.confidence),
                {**s.reasoning, "support": s.confidence},
                ts,
                self.lifetime,
            )
            for s in raw
        ]
