"""Gradient-boosted direction classifier with calibrated probabilities, emitting Signals.

:class:`XGBoostModel` trains ``xgboost`` on the earlier part of the training rows and calibrates
its probabilities on the later part (held out, after a gap), by Platt scaling or isotonic
regression, so that P(up) = 0.6 means up 60 % of the time.

References
----------
T. Chen, C. Guestrin (2016), "XGBoost: A Scalable Tree Boosting System", KDD.
J. Platt (1999), "Probabilistic outputs for SVMs ..." (sigmoid calibration).
B. Zadrozny, C. Elkan (2002), "Transforming classifier scores into accurate multiclass
probability estimates", KDD (isotonic calibration).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from v28quant._typing import FloatArray, IntArray
from v28quant.ml.base import BaseModel, RowClassifier, as_labels, as_matrix, logit

# The contract is re-exported for callers that import it beside the model.
__all__ = ["BaseModel", "EnsembleConfig", "XGBoostModel"]


@dataclass(frozen=True)
class EnsembleConfig:
    """Settings of the boosted classifier.

    ``calibration_fraction`` of the (time-ordered) training rows, the most recent ones, are held
    out to fit the calibration map; ``calibration_gap`` rows before them are dropped so that
    overlapping labels do not leak into the calibration set. By default (``None``) the gap is
    ``label_horizon`` dates: ``label_horizon`` x the symbols per date of a (date, symbol) panel,
    ``label_horizon`` rows for plain arrays.
    """

    n_estimators: int = 200
    max_depth: int = 3
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 5.0
    reg_lambda: float = 1.0
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"
    calibration_fraction: float = 0.2
    calibration_gap: int | None = None
    label_horizon: int = 5
    incremental_trees: int = 10
    incremental_batch: int = 20
    n_jobs: int = 1
    seed: int = 0


class XGBoostModel(RowClassifier):
    """XGBoost direction classifier with a calibration map fitted on held-out recent rows."""

    name = "xgboost"

    def __init__(self, config: EnsembleConfig | None = None) -> None:
        super().__init__()
        self.config = config or EnsembleConfig()
        self._clf: xgb.XGBClassifier | None = None
        self._calibrator: Any = None
        self._pending_X: list[FloatArray] = []
        self._pending_y: list[IntArray] = []

    def params(self) -> dict[str, Any]:
        """Return the configuration, for the model store and the journal."""
        return asdict(self.config)

    def _new_classifier(self, n_estimators: int) -> xgb.XGBClassifier:
        c = self.config
        return xgb.XGBClassifier(
            n_estimators=n_estimators,
            max_depth=c.max_depth,
            learning_rate=c.learning_rate,
            subsample=c.subsample,
            colsample_bytree=c.colsample_bytree,
            min_child_weight=c.min_child_weight,
            reg_lambda=c.reg_lambda,
            n_jobs=c.n_jobs,
            random_state=c.seed,
            tree_method="hist",
            eval_metric="logloss",
        )

    def _fit(self, X: FloatArray, y: IntArray) -> None:
        c = self.config
        n_cal = round(c.calibration_fraction * len(X))
        gap = c.calibration_gap
        if gap is None:
            gap = c.label_horizon * self.rows_per_date
        n_fit = len(X) - n_cal - gap
        if n_cal < 20 or n_fit < 50:
            raise ValueError(
                f"too few rows ({len(X)}) for calibration_fraction={c.calibration_fraction}"
                f" and a calibration gap of {gap} rows"
            )
        #: Rows used to fit the trees, dropped as the gap, and held out for calibration.
        self.split_ = {"fit": n_fit, "gap": gap, "calibration": n_cal}
        self._clf = self._new_classifier(c.n_estimators)
        self._clf.fit(X[:n_fit], y[:n_fit])
        raw = self._clf.predict_proba(X[-n_cal:])[:, 1]
        self._calibrator = self._fit_calibrator(raw, y[-n_cal:])

    def _fit_calibrator(self, raw: FloatArray, y: IntArray) -> Any:
        if self.config.calibration == "isotonic":
            return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        if np.unique(y).size < 2:
            raise ValueError("calibration rows contain a single class")
        return LogisticRegression(C=1e6).fit(logit(raw)[:, None], y)

    def _raw_proba(self, X: FloatArray) -> FloatArray:
        assert self._clf is not None
        return np.asarray(self._clf.predict_proba(X)[:, 1], dtype=np.float64)

    def _predict_proba(self, X: FloatArray) -> FloatArray:
        raw = self._raw_proba(X)
        if isinstance(self._calibrator, IsotonicRegression):
            return np.asarray(self._calibrator.predict(raw), dtype=np.float64)
        return np.asarray(self._calibrator.predict_proba(logit(raw)[:, None])[:, 1], np.float64)

    def partial_fit(self, X: Any, y: Any) -> XGBoostModel:
        """Incremental update from newly closed trades.

        Rows are buffered until ``incremental_batch`` rows holding both classes have arrived;
        then ``incremental_trees`` boosting rounds are fitted on them, continuing the existing
        booster. The calibration map is kept; a full ``fit`` (the continuous learner's retrain on
        drift) refreshes it.
        """
        if self._clf is None:
            raise ValueError("partial_fit needs a fitted model")
        arr, _ = as_matrix(X, self.feature_names)
        labels = as_labels(y, len(arr))
        self._pending_X.append(arr)
        self._pending_y.append(labels)
        bx, by = np.vstack(self._pending_X), np.concatenate(self._pending_y)
        if len(by) < self.config.incremental_batch or np.unique(by).size < 2:
            return self
        more = self._new_classifier(self.config.incremental_trees)
        more.fit(bx, by, xgb_model=self._clf.get_booster())
        self._clf = more
        self._footprint.add(bx, by)
        self._pending_X, self._pending_y = [], []
        return self
