"""The continuous learner of the equity engine: closed trades in, drift-triggered retrains out.

At the end of each session every equity round trip closed since the last call (read from the
journal's fills, :mod:`v28quant.round_trips`; the operator's flatten closes the engine's lots as
any of its own sells would) goes to the
:class:`~v28quant.ml.continuous_learner.ContinuousLearner` as a
:class:`~v28quant.ml.continuous_learner.TradeOutcome`: the XGBoost features the entry was chosen
on (the last row dated before its session), the classifier's P(up) on them, the realised P&L and
the price's move, and the classifier's own label for those features (the direction over its
``horizon`` sessions after the features' date). A trip goes once that label is known
(``horizon`` sessions after its features' date), on a later session if need be: its drift test
and its retrain use the label the classifier is trained on, not the trip's own holding-period
move. The drift detector's reference is the classifier's held-out window (its features, and its
calibration there: the trades were chosen where the classifier was confident, so their labels
are tested at their own P(up), see :class:`~v28quant.ml.continuous_learner.Calibration`).
When the learner's drift test fires, the XGBoost classifier is retrained on the day's features
(stored, with its model run journaled) and a ``retrain`` decision records the drift statistic.
The learner is rebuilt from the journal after a restart: the trades already fed are skipped by
key, the others fed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from v28quant.calendar import ET
from v28quant.equity.sources import MarketView, MlSource, _dated
from v28quant.ml.continuous_learner import (
    Calibration,
    ContinuousLearner,
    ContinuousLearnerConfig,
    DriftDetector,
    DriftReport,
    TradeOutcome,
)
from v28quant.round_trips import RoundTrip, journal_trades, round_trips

log = logging.getLogger(__name__)

#: The model the drift test watches and retrains.
WATCHED = "xgboost"
#: Seconds the runner's exit waits for drift checks still running (a cut check's retrain):
#: well inside systemd's TimeoutStopSec (180 s) once the cycle in flight has ended.
CHECKS_WAIT_S = 60.0


@dataclass
class TradeLearner:
    """Feeds closed trades to the continuous learner and retrains on drift (module docstring)."""

    ml: MlSource
    config: ContinuousLearnerConfig = field(default_factory=ContinuousLearnerConfig)
    learner: ContinuousLearner | None = None
    fed: set[str] = field(default_factory=set)
    view: MarketView | None = None
    _checks: set[asyncio.Future[DriftReport | None]] = field(
        default_factory=set, repr=False, compare=False
    )

    def reference(self, view: MarketView) -> DriftDetector:
        """Return a detector on the classifier's held-out window: features and calibration.

        A window whose calibration cannot be fitted (one label class, or labels that P(up)
        separates) gives a detector of the features alone, with a warning.
        """
        model, feats = self.ml.models[WATCHED], self.ml.features
        if feats is None:
            raise ValueError("the learner needs MlSource's features (refit it first)")
        dates = feats.index.get_level_values("date")
        held = feats[dates >= np.unique(dates)[-self.ml.holdout_dates]][model.feature_names]
        lab = self.labels(view).reindex(held.index)
        ok = lab.notna().to_numpy()
        prob_up = pd.Series(model.predict_proba(held[ok]), index=held.index[ok])
        # indexed by (date, symbol): the detector counts the rows as the panel they are
        try:
            calibration: Calibration | None = Calibration.fit(prob_up, lab[ok].astype(np.int64))
        except ValueError as exc:  # one label class, or P(up) separates them: nothing to fit
            log.warning("drift test without its calibration series this window: %s", exc)
            calibration = None
        return DriftDetector(held.astype(np.float64), calibration, model.feature_names)

    def labels(self, view: MarketView) -> pd.Series:
        """Return the classifier's labels by ``(date, symbol)``: ``horizon``-session directions."""
        from v28quant.ml.features import make_labels

        bars = _dated(view.bars[view.bars["symbol"].isin(view.symbols)])
        return make_labels(bars, self.ml.horizon)["direction"]

    def prepare(self, view: MarketView) -> None:
        """Build the learner the first time (later days keep its trades and its reference)."""
        self.view = view
        if self.learner is None and WATCHED in self.ml.models:
            self.learner = ContinuousLearner({}, self.reference(view), self._retrain, self.config)

    def _retrain(self, X: np.ndarray, y: np.ndarray) -> Mapping[str, Any]:
        """Retrain the watched classifier on the day's features; a new reference with it."""
        if self.view is None:
            raise ValueError("no market view to retrain on")
        self.ml.retrain(self.view, WATCHED)
        return {WATCHED: self.ml.models[WATCHED], "drift_detector": self.reference(self.view)}

    def outcome(self, trip: RoundTrip, labels: pd.Series) -> TradeOutcome | None:
        """Return the learner's record of ``trip``: the entry's features, P(up) and the label.

        The features are the last row dated before the entry's session: the pre-market builds
        them, and the entry day's own row needs its close, after the trade was chosen. The
        label is read from ``labels`` (:meth:`labels`), None while not yet known.
        """
        feats = self.ml.features
        model = self.ml.models.get(WATCHED)
        if feats is None or model is None:
            return None
        try:
            rows = feats.xs(trip.symbol, level="symbol")[model.feature_names]
        except KeyError:
            return None
        day = pd.Timestamp(trip.entry_ts.astimezone(ET).date())
        rows = rows[rows.index < day]
        if rows.empty:
            return None
        x = rows.iloc[[-1]]
        p = float(model.predict_proba(x)[0])
        label = labels.get((x.index[0], trip.symbol))
        return TradeOutcome(
            trip.symbol,
            x.to_numpy(np.float64)[0],
            p,
            trip.pnl,
            trip.exit_ts,
            trip.side,
            trip.move,
            x.index[0].to_pydatetime(),
            None if label is None else int(label),
        )

    async def after_session(self, journal: Any, now: Any) -> list[DriftReport]:
        """Feed the closed trades not fed yet whose labels are known; journal each retrain."""
        if self.learner is None or self.view is None:
            return []
        labels = self.labels(self.view)
        reports: list[DriftReport] = []
        # Every trade: a settlement's shares may close the unowned lots an equity sale would
        # close otherwise. Stock never fills at zero, so each equity trip's move (log of exit
        # over entry) is defined; only an option closes at 0 (sold worthless), and the learner
        # sees no option trip.
        trades = journal_trades(
            journal.fills(), journal.settlements(), journal.splits(), journal.transfers()
        )
        for trip in round_trips(trades, engine="equity"):
            if trip.key in self.fed:
                continue
            outcome = self.outcome(trip, labels)
            if outcome is not None and outcome.label is None:
                continue  # its label's sessions have not all passed: fed on a later day
            self.fed.add(trip.key)
            if outcome is None:
                continue
            before = self.learner.pending
            report = self.learner.record_trade(outcome)
            if report is None:
                continue
            reports.append(report)
            # waited for here: the next session trades on the retrained model
            await self._finish_retrain(journal, report, now, before)
        return reports

    async def check(self, journal: Any, now: Any) -> DriftReport | None:
        """Off-hours: the drift test over the recent trades now, whatever the schedule.

        A retrain the test starts is waited for and journaled as after a session; None when
        there is no learner yet or too few trades for a test. A check cut (its off-hours
        budget) goes on in its thread all the same: it runs to its end and journals its
        retrain, held here meanwhile (the event loop holds a task only weakly).
        """
        if self.learner is None:
            return None
        checking = asyncio.ensure_future(self._check(journal, now))
        self._checks.add(checking)
        checking.add_done_callback(self._checks.discard)
        return await asyncio.shield(checking)

    async def aclose(self, wait_s: float = CHECKS_WAIT_S) -> None:
        """Wait up to ``wait_s`` seconds for the checks still running to journal their retrain.

        The runner's exit calls it: a check cut by its budget may still be retraining, and
        its ``retrain`` decision would be lost with the journal closed under it.
        """
        if not self._checks:
            return
        log.warning("waiting up to %g s for %d drift check(s) to end", wait_s, len(self._checks))
        _, running = await asyncio.wait(set(self._checks), timeout=wait_s)
        if running:
            log.error(
                "exiting with %d drift check(s) still running: a retrain they started is not "
                "journaled",
                len(running),
            )

    async def _check(self, journal: Any, now: Any) -> DriftReport | None:
        assert self.learner is not None
        before = self.learner.pending
        report = await asyncio.to_thread(self.learner.check_drift)
        if report is not None:
            await self._finish_retrain(journal, report, now, before)
        return report

    async def _finish_retrain(
        self, journal: Any, report: DriftReport, now: Any, before: Future[Any] | None
    ) -> None:
        """Wait for the retrain ``report``'s test started and journal it; none started: nothing.

        ``before`` is the learner's ``pending`` before the test. A drift inside the cooldown
        (or beside a running retrain) starts none and leaves ``pending`` at the last retrain,
        long done: that one must not be journaled again as this drift's retrain.
        """
        assert self.learner is not None
        started = self.learner.pending
        if not report.drift or started is None or started is before:
            return
        try:
            await asyncio.wrap_future(started)
        except Exception as exc:  # the old model keeps serving
            log.exception("equity: retrain of %s failed: %s", WATCHED, exc)
            return
        self._journal_retrain(journal, report, now)

    def _journal_retrain(self, journal: Any, report: DriftReport, now: Any) -> None:
        assert self.learner is not None
        journal.record_decision(
            f"equity-drift-retrain-{now.isoformat()}-{self.learner.retrain_count}",
            "equity",
            "continuous_learner",
            "*",
            "retrain",
            {
                "model": WATCHED,
                "drifted": list(report.drifted),
                "min_adjusted_p": float(report.adjusted.min()),
                "p_values": dict(zip(report.names, map(float, report.p_values), strict=True)),
                "alpha": report.alpha,
                "correction": report.correction,
                "trades": len(self.fed),
                "retrained": self.learner.retrain_count,
            },
            now,
        )
        log.warning("equity: drift in %s; %s retrained", ",".join(report.drifted), WATCHED)


__all__ = ["CHECKS_WAIT_S", "WATCHED", "TradeLearner"]
