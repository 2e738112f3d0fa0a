"""Signal sources of the equity engine: daily models refitted pre-market, read every cycle.

GARCH (which also sizes positions) and CAPM (which also screens the universe) come from
``v28quant.models``; the sources here cover the families whose state the engine keeps. Each
source turns one model family's output into ``Signal``s stamped with the data time of the
last close they used (never the wall clock). ``confidence`` follows ``v28quant.signals``: how
much the model's own record and its current input support the value, not ``|value|`` again.

* ``hmm`` and ``manifold``: each symbol's regime from the detectors the hierarchical regime
  controller fitted (``v28quant.regime``); value = P(bull_quiet) - P(bear states),
  confidence = the filtered probability of the most likely state.
* ``xgboost`` and ``stacked_ensemble``: direction classifiers on ``v28quant.ml.features``,
  trained on a purged window, validated on the most recent held-out quarter, kept in the model
  store and refreshed when older than ``refresh_days``; value ``2 P(up) - 1``, confidence the
  model's own (calibrated ``|2 P(up) - 1|``) times its held-out hit-rate edge.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from v28quant.calendar import ET, regular_close
from v28quant.equity.trained_models import (
    Trained,
    keep_trained,
    model_for_today,
    training_recipe,
)
from v28quant.signals import UNTESTED_RECORD, Signal, combine_confidence

log = logging.getLogger(__name__)


@dataclass
class MarketView:
    """What a source sees: daily history up to the last completed close.

    Attributes
    ----------
    now : datetime
        The decision time.
    symbols : list of str
        The symbols to produce signals for.
    bars : DataFrame
        Long daily bars (``BAR_COLUMNS``) of the symbols and the market proxy.
    closes : DataFrame
        Wide closes, one column per symbol.
    market : str
        The market proxy's column.
    data_ts : datetime
        Time of the last close in ``closes`` (the signals' ``ts``).
    positions : dict
        Held exposure per symbol, signed fraction of equity in [-1, 1] (set each cycle).
    resume_models : bool
        Start on the newest stored models still fresh (live and paper), not on models of
        this run's own schedule alone (a backtest: ``v28quant.equity.trained_models``).
    """

    now: datetime
    symbols: list[str]
    bars: pd.DataFrame
    closes: pd.DataFrame
    market: str
    data_ts: datetime
    model_dir: Any = None
    journal: Any = None
    regime_controller: Any = None
    positions: dict[str, float] = field(default_factory=dict)
    resume_models: bool = True

    @property
    def log_returns(self) -> pd.DataFrame:
        """Return daily log returns of ``closes``."""
        return pd.DataFrame(np.log(self.closes)).diff().iloc[1:]


def data_time(index: pd.Index, now: datetime) -> datetime:
    """Return the close time (16:00 New York) of the last row's session, at most ``now``."""
    last = pd.Timestamp(index[-1])
    day = (last.tz_convert(ET) if last.tzinfo else last.tz_localize(ET)).date()
    return min(regular_close(day), now)


class SignalSource(Protocol):
    """A model family as the equity engine uses it."""

    name: str

    def refit(self, view: MarketView) -> None:
        """Fit on the history in ``view`` (pre-market)."""
        ...

    def signals(self, view: MarketView) -> list[Signal]:
        """Return this family's signals for ``view.symbols``."""
        ...


@dataclass
class RegimeSource:
    """A regime detector's reading of each symbol as a directional vote.

    ``name`` is ``hmm`` or ``manifold``: the symbol-level detectors the hierarchical regime
    controller fitted in the pre-market job (``MarketView.regime_controller``), read at the
    last close. Value = P(bull_quiet) - P(bear_volatile or crisis); confidence = ``record x
    support`` as for every model: the detectors have no out-of-sample record of direction,
    so ``UNTESTED_RECORD``, times the probability of the most likely state.
    """

    name: str = "hmm"
    _sig: list[Signal] = field(default_factory=list)

    def refit(self, view: MarketView) -> None:
        """Read each symbol's detector (fitted by the regime controller) at the last close."""
        self._sig = []
        detectors = getattr(view.regime_controller, "symbols", {})
        which = 0 if self.name == "hmm" else 1
        rets = view.log_returns
        for sym in view.symbols:
            if sym not in detectors:
                continue
            r = rets[sym].dropna().iloc[-378:]
            try:
                state = detectors[sym][which].predict(r, ts=view.data_ts)
            except (ValueError, np.linalg.LinAlgError) as exc:
                log.warning("%s regime of %s failed: %s", self.name, sym, exc)
                continue
            p = dict(state.probabilities)
            bull = p.get("bull_quiet", 0.0)
            bear = sum(v for k, v in p.items() if k in ("bear_volatile", "crisis"))
            value = float(np.clip(bull - bear, -1.0, 1.0))
            probs = {k: round(v, 4) for k, v in p.items()}
            reasoning = {"label": state.label, "probabilities": probs}
            conf = combine_confidence(UNTESTED_RECORD, float(max(p.values())))
            self._sig.append(Signal(self.name, sym, value, conf, reasoning, view.data_ts))

    def signals(self, view: MarketView) -> list[Signal]:
        """Return the day's regime signals."""
        return [s for s in self._sig if s.symbol in view.symbols]


@dataclass
class MlSource:
    """XGBoost and the stacked ensemble on shared features, kept in the model store."""

    name: str = "ml"
    horizon: int = 5
    refresh_days: int = 30
    holdout_dates: int = 126
    models: dict[str, Any] = field(default_factory=dict)
    edge: dict[str, float] = field(default_factory=dict)
    features: pd.DataFrame | None = None
    held: dict[str, Trained] = field(default_factory=dict)
    _sig: list[Signal] = field(default_factory=list)

    def _train(self, view: MarketView, features: pd.DataFrame, force: tuple[str, ...] = ()) -> None:
        """Load the fresh stored classifiers; train the others and those named in ``force``.

        A classifier being retrained serves as it was until its successor is fitted: the
        pre-market may read the models while a night's retrain runs on. One whose fit fails
        is taken out of service (it was not fresh, or was to be replaced).
        """
        cols = list(features.columns)
        recipe = training_recipe(view, horizon=self.horizon, holdout_dates=self.holdout_dates)
        to_fit = []
        for name in ("xgboost", "stacked_ensemble"):
            held = self.held.get(name)
            use = (
                None
                if name in force
                else model_for_today(view, name, self.refresh_days, cols, recipe, held)
            )
            if use is not None:
                self._serve(name, use.model, use.scores)
                self.held[name] = use
            else:
                to_fit.append(name)
        if not to_fit:
            return
        try:
            self._fit(view, features, to_fit, recipe)
        finally:
            if to_fit:  # a fit failed: what it was to replace stops serving
                self.models = {k: v for k, v in self.models.items() if k not in to_fit}

    def _fit(
        self, view: MarketView, features: pd.DataFrame, to_fit: list[str], recipe: dict[str, Any]
    ) -> None:
        """Fit, store and serve the classifiers named in ``to_fit``, each left out once served."""
        from v28quant.ml.features import align, make_labels
        from v28quant.ml.gradient_boost_ensemble import EnsembleConfig, XGBoostModel
        from v28quant.ml.stacked_ensemble import StackedEnsemble

        labels = make_labels(
            _dated(view.bars[view.bars["symbol"].isin(view.symbols)]), self.horizon
        )
        X, y = align(features, labels)
        dates = X.index.get_level_values("date")
        udates = np.unique(dates)
        cut = udates[-self.holdout_dates]
        train = (labels.loc[X.index, "label_end"] < cut).to_numpy() & (dates < cut)
        test = dates >= cut
        gap = self.horizon * len(view.symbols)
        built = {
            "xgboost": XGBoostModel(EnsembleConfig(calibration_gap=gap, n_estimators=150)),
            "stacked_ensemble": StackedEnsemble(purge=gap, seed=0),
        }
        while to_fit:
            name = to_fit[0]
            model = built[name]
            started = datetime.now(tz=ET)
            model.fit(X[train], y.loc[train, "direction"])
            scores = model.score_oos(
                X[test], y.loc[test, "direction"], y.loc[test, "fwd_ret"], self.horizon
            )
            self.held[name] = keep_trained(
                view,
                name,
                model,
                features=list(features.columns),
                recipe=recipe,
                scores=scores,
                train_start=str(pd.Timestamp(udates[0]).date()),
                started=started,
            )
            self._serve(name, model, scores)
            to_fit.pop(0)

    def _serve(self, name: str, model: Any, scores: dict[str, float]) -> None:
        """Put ``model`` in service as ``name``, its edge from its held-out ``scores``.

        The dicts are rebound, never mutated: a reader on another thread (the pre-market
        beside a night's retrain) sees the old models or the new ones, each whole.
        """
        self.models = {**self.models, name: model}
        self.edge = {**self.edge, name: _edge(scores)}

    def retrain(self, view: MarketView, name: str) -> None:
        """Retrain the classifier ``name`` on the day's features, whatever the store holds."""
        if self.features is None:
            raise ValueError("MlSource.retrain needs a refit first (no features)")
        self._train(view, self.features, force=(name,))

    def refit(self, view: MarketView) -> None:
        """Build features, load or train the classifiers, and read today's signals."""
        self.train(self.prepare(view))

    def prepare(self, view: MarketView) -> MarketView:
        """Build the day's features (``features``); return ``view`` less unusable symbols.

        The learned source trains on these features, so it can run beside :meth:`train`.
        """
        from v28quant.ml.features import FeatureConfig, build_features

        b = view.bars
        bad = set(b.loc[b["close"] <= 0, "symbol"]) - {view.market}
        if bad:  # one symbol's garbage must not take the classifiers from every other one
            log.warning("ml: %s left out: close prices not positive", ",".join(sorted(bad)))
            keep = [s for s in view.symbols if s not in bad]
            view = replace(view, symbols=keep, bars=b[~b["symbol"].isin(bad)])
        bars = _dated(view.bars[view.bars["symbol"].isin([*view.symbols, view.market])])
        cfg = FeatureConfig(market=view.market, garch_refit_every=None)
        features = build_features(bars, cfg)
        features = features[features.index.get_level_values("symbol") != view.market]
        self.features = features  # the learned source and the learner read the same rows
        return view

    def train(self, view: MarketView) -> None:
        """Load or train the classifiers on :meth:`prepare`'s features; read today's signals."""
        from v28quant.ml.features import latest_rows

        features = self.features
        if features is None:
            raise ValueError("MlSource.train needs the day's features (prepare first)")
        self._train(view, features)
        last = latest_rows(features)
        last_day = features.index.get_level_values("date").max()
        stale = set(last.index) - set(features.xs(last_day, level="date").index)
        self._sig = []
        for name, model in self.models.items():
            for s in model.signals(features):
                if s.symbol in stale:
                    continue
                conf = float(np.clip(s.confidence * self.edge.get(name, 0.0), 0.0, 1.0))
                reasoning = {**s.reasoning, "oos_edge": round(self.edge.get(name, 0.0), 4)}
                self._sig.append(replace(s, confidence=conf, reasoning=reasoning, ts=view.data_ts))

    def signals(self, view: MarketView) -> list[Signal]:
        """Return the day's classifier signals."""
        return [s for s in self._sig if s.symbol in view.symbols]


def _dated(bars: pd.DataFrame) -> pd.DataFrame:
    """Return long bars with the ``date`` column the ML features expect (New York session).

    A volume column of zeros (history that records no volume) is dropped: its z-score is
    undefined and would remove every row.
    """
    ts = pd.to_datetime(bars["timestamp"], utc=True).dt.tz_convert(ET).dt.tz_localize(None)
    out = bars.drop(columns=["timestamp"]).assign(date=ts.dt.normalize())
    if "volume" in out and not (out["volume"] > 0).any():
        out = out.drop(columns=["volume"])
    return out


def _edge(scores: dict[str, float]) -> float:
    """Map a held-out hit rate to [0, 1]: 0 at a coin flip, 1 at a 60 % hit rate."""
    hit = float(scores.get("hit_rate", 0.5))
    return float(np.clip((hit - 0.5) / 0.10, 0.0, 1.0)) if math.isfinite(hit) else 0.0


def default_sources() -> list[Any]:
    """Return the equity engine's own sources (the regime detectors and the classifiers)."""
    return [
        RegimeSource("hmm"),
        RegimeSource("manifold"),
        MlSource(),
    ]


__all__ = [
    "MarketView",
    "MlSource",
    "RegimeSource",
    "SignalSource",
    "data_time",
    "default_sources",
]
