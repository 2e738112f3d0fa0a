"""The transformer and the SAC agent as signal sources of the equity engine.

Both are trained in the pre-market job on a bounded budget (the last ``train_dates`` sessions
before a held-out window of ``holdout_dates``), kept in the model store and reused until older
than ``refresh_days`` (the classifiers' schedule, ``MlSource``); they vote every cycle through
their adapters (``v28quant.models.learned``):

* ``transformer``: P(up) of its predictive distribution on the features ``MlSource`` built;
  confidence from its held-out hit rate's p-value (``score_oos``: the symbols' calls share
  dates and their ``horizon``-day outcomes overlap, which the test allows for) times the share
  of today's features inside their training range.
* ``sac``: the agent's deterministic target exposure from the last ``vol_window`` returns and
  the symbol's current exposure (``MarketView.positions``); confidence from its held-out track
  record: the days of the held-out window on which the sign of its exposure matched the next
  day's return, tested against a coin flip with the calls that share a date counted together.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from v28quant.calendar import ET
from v28quant.equity.sources import MarketView, MlSource, _dated
from v28quant.equity.trained_models import (
    Trained,
    keep_trained,
    model_for_today,
    training_recipe,
)
from v28quant.ml.sac_agent import SAC, PositionSizingEnv, SACConfig
from v28quant.ml.transformer_predictor import TransformerConfig, TransformerPredictor
from v28quant.models.base import MarketSnapshot, TrackRecord, dependent_hit_pvalue
from v28quant.models.learned import SacAdapter, TransformerAdapter
from v28quant.signals import Signal

log = logging.getLogger(__name__)

#: Small enough to train on 2 cores within the keyless first run's budget.
FAST_TRANSFORMER = TransformerConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, epochs=5)
FAST_SAC = SACConfig(hidden=(32, 32), batch_size=64, buffer_capacity=20_000, warmup_steps=200)


def sac_track_record(
    agent: SAC, returns: pd.DataFrame, lookback: int, vol_window: int
) -> TrackRecord:
    """Held-out hits of the agent's deterministic exposure on ``returns`` (dates x symbols).

    Each symbol is replayed day by day, the exposure fed back as the next state's position; a
    day counts when the exposure is at least 0.05 in size, a hit when its sign matches the
    next day's return. The p-value allows for the symbols' calls sharing their dates
    (``dependent_hit_pvalue``): an agent long every name is right on every up day at once.
    """
    hit: list[bool] = []
    dates: list[Any] = []
    for sym in returns.columns:
        col = returns[sym].dropna()
        r = col.to_numpy(np.float64)
        pos = 0.0
        for t in range(vol_window, len(r) - 1):
            state = PositionSizingEnv.observation(r[t - vol_window + 1 : t + 1], lookback, pos)
            pos = float(np.clip(agent.act(state, deterministic=True)[0], -1.0, 1.0))
            if abs(pos) >= 0.05 and r[t + 1] != 0:
                hit.append((pos > 0) == (r[t + 1] > 0))
                dates.append(col.index[t + 1])
    p = dependent_hit_pvalue(hit, dates) if hit else None
    return TrackRecord(sum(hit), len(hit), p)


@dataclass
class LearnedSource:
    """Transformer and SAC through their adapters (see the module docstring).

    ``ml`` is the engine's ``MlSource``: refitted first, it holds the day's features.
    """

    ml: MlSource
    name: str = "learned"
    horizon: int = 5
    refresh_days: int = 30
    holdout_dates: int = 126
    train_dates: int = 504
    sac_steps: int = 1500
    lookback: int = 10
    vol_window: int = 20
    transformer_config: TransformerConfig = FAST_TRANSFORMER
    sac_config: SACConfig = FAST_SAC
    adapters: list[Any] = field(default_factory=list)
    held: dict[str, Trained] = field(default_factory=dict)

    def refit(self, view: MarketView) -> None:
        """Load the stored models or train them, then build their adapters."""
        features = self.ml.features
        if features is None:
            raise ValueError("the learned source needs MlSource's features (refit it first)")
        adapters: list[Any] = []
        try:
            adapters.append(self._transformer(view, features))
        except ValueError as exc:  # e.g. too little history for one batch of windows
            log.warning("transformer not available today: %s", exc)
        try:
            adapters.append(self._sac(view))
        except ValueError as exc:
            log.warning("SAC agent not available today: %s", exc)
        self.adapters = adapters

    def _cut(self, n: int) -> tuple[int, int]:
        """Return the positions of the held-out window's first date and the training start."""
        if n <= self.holdout_dates + 160:
            raise ValueError(f"need more than {self.holdout_dates + 160} dates, got {n}")
        cut = n - self.holdout_dates
        return cut, max(0, cut - self.train_dates)

    def _transformer(self, view: MarketView, features: pd.DataFrame) -> TransformerAdapter:
        from v28quant.ml.features import make_labels

        cols = list(features.columns)
        recipe = training_recipe(
            view,
            horizon=self.horizon,
            holdout_dates=self.holdout_dates,
            train_dates=self.train_dates,
            model=asdict(self.transformer_config),
        )
        use = model_for_today(
            view, "transformer", self.refresh_days, cols, recipe, self.held.get("transformer")
        )
        dates = features.index.get_level_values("date")
        udates = np.unique(dates)
        i_cut, i_start = self._cut(len(udates))
        cut, start = udates[i_cut], udates[i_start]
        recent = features[dates >= start]
        rdates = recent.index.get_level_values("date")
        reference = recent[rdates < cut]
        if use is not None:
            self.held["transformer"] = use
            return TransformerAdapter(use.model, reference)
        bars = _dated(view.bars[view.bars["symbol"].isin(view.symbols)])
        labels = make_labels(bars, self.horizon)
        lab = labels.reindex(features.index).dropna()
        ldates = lab.index.get_level_values("date")
        train = lab[(ldates >= start) & (ldates < cut) & (lab["label_end"] < cut)]["fwd_ret"]
        test = lab[ldates >= cut]["fwd_ret"]
        started = datetime.now(tz=ET)
        model = TransformerPredictor(self.transformer_config)
        model.fit(reference, train)
        scores = model.score_oos(recent, test, self.horizon)
        log.info("transformer trained: held-out hit rate %.3f", scores.get("hit_rate", np.nan))
        self.held["transformer"] = keep_trained(
            view,
            "transformer",
            model,
            features=cols,
            recipe=recipe,
            scores=scores,
            train_start=str(pd.Timestamp(start).date()),
            started=started,
            params=model.params(),
        )
        return TransformerAdapter(model, reference)

    def _sac(self, view: MarketView) -> SacAdapter:
        cols = [f"z_ret_{i}" for i in range(self.lookback)] + ["position"]
        rets = view.log_returns[[s for s in view.symbols if s in view.closes]]
        cut, start = self._cut(len(rets))
        recipe = training_recipe(
            view,
            holdout_dates=self.holdout_dates,
            train_dates=self.train_dates,
            steps=self.sac_steps,
            lookback=self.lookback,
            vol_window=self.vol_window,
            model=asdict(self.sac_config),
        )
        use = model_for_today(view, "sac", self.refresh_days, cols, recipe, self.held.get("sac"))
        if use is not None:
            self.held["sac"] = use
            s = use.scores
            track = TrackRecord(int(s["hits"]), int(s["n"]), s.get("hit_p"))
            return SacAdapter(use.model, self.lookback, self.vol_window, track)
        train = rets.iloc[start:cut].dropna(axis=1)
        held = rets.iloc[cut - self.vol_window :]
        started = datetime.now(tz=ET)
        env = PositionSizingEnv(train, self.lookback, self.vol_window, seed=self.sac_config.seed)
        agent = SAC(env.state_dim, 1, self.sac_config)
        agent.train(env, self.sac_steps)
        track = sac_track_record(agent, held, self.lookback, self.vol_window)
        log.info("SAC trained: held-out %d hits of %d", track.hits, track.n)
        self.held["sac"] = keep_trained(
            view,
            "sac",
            agent,
            features=cols,
            recipe=recipe,
            scores={
                "hits": track.hits,
                "n": track.n,
                "hit_rate": track.hits / track.n if track.n else float("nan"),
                "binom_p": TrackRecord(track.hits, track.n).p_value,
                "hit_p": track.p_value,
            },
            train_start=str(pd.Timestamp(rets.index[start]).date()),
            started=started,
            params={**agent.params(), "steps": self.sac_steps},
        )
        return SacAdapter(agent, self.lookback, self.vol_window, track)

    def signals(self, view: MarketView) -> list[Signal]:
        """Every adapter's signals for ``view.symbols`` (SAC reads the current positions)."""
        rets = view.log_returns
        cols = [c for c in dict.fromkeys([*view.symbols, view.market]) if c in rets.columns]
        snap = MarketSnapshot(
            returns=rets[cols],
            market=view.market,
            features=self.ml.features,
            positions=dict(view.positions),
        )
        wanted = set(view.symbols)
        out: list[Signal] = []
        for a in self.adapters:
            try:
                out += [s for s in a.signals(snap) if s.symbol in wanted]
            except (ValueError, KeyError) as exc:
                log.warning("%s signals failed: %s", a.name, exc)
        return out


__all__ = ["FAST_SAC", "FAST_TRANSFORMER", "LearnedSource", "sac_track_record"]
