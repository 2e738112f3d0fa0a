"""Gradient-boosted direction classifier with calibrated probabilities, emitting Signals.

:class:`BaseModel` is the contract every direction model of the ML stack follows: ``fit`` on
time-ordered rows, ``predict_proba`` -> P(up), ``score_oos`` (refuses rows seen in training) and
``signals`` (one :class:`~v28quant.signals.Signal` per symbol from its latest feature row).

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

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from v28quant.ml._oos import TrainingFootprint, classification_scores
from v28quant.ml.features import latest_rows
from v28quant.signals import Signal


@dataclass(frozen=True)
class EnsembleConfig:
    """Settings of the boosted classifier.

    ``calibration_fraction`` of the (time-ordered) training rows, the most recent ones, are held
    out to fit the calibration map; ``calibration_gap`` rows before them are dropped so that
    overlapping labels (horizon x symbols rows) do not leak into the calibration set.
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
    calibration_gap: int = 0
    incremental_trees: int = 10
    incremental_batch: int = 20
    n_jobs: int = 1
    seed: int = 0


def _as_matrix(X: Any, names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """float64 matrix and the feature names, reordering DataFrame columns to ``names``."""
    if isinstance(X, pd.DataFrame):
        cols = list(names) if names else [str(c) for c in X.columns]
        missing = set(cols) - set(map(str, X.columns))
        if missing:
            raise ValueError(f"X lacks feature columns {sorted(missing)}")
        return X[cols].to_numpy(np.float64), cols
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {arr.shape}")
    cols = list(names) if names else [f"x{i}" for i in range(arr.shape[1])]
    if arr.shape[1] != len(cols):
        raise ValueError(f"X has {arr.shape[1]} columns, model expects {len(cols)}")
    return arr, cols


def _as_labels(y: Any, n: int) -> np.ndarray:
    arr = np.asarray(y).ravel()
    if len(arr) != n:
        raise ValueError(f"y has {len(arr)} rows, X has {n}")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError("y must contain only 0 and 1")
    return arr.astype(np.int64)


class BaseModel(ABC):
    """A direction classifier of the ML stack: P(up) per row -> Signals.

    Rows passed to ``fit`` must be in time order (oldest first) when the model holds out its most
    recent rows (calibration, early stopping).
    """

    name: str = "base"

    def __init__(self) -> None:
        self.feature_names: list[str] = []
        self.validation_scores: dict[str, float] = {}
        self._footprint = TrainingFootprint()

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None: ...

    @abstractmethod
    def _predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def fit(self, X: Any, y: Any) -> BaseModel:
        """Train on features ``X`` (n, f) and labels ``y`` in {0, 1}."""
        arr, self.feature_names = _as_matrix(X, None)
        labels = _as_labels(y, len(arr))
        if np.unique(labels).size < 2:
            raise ValueError("y must contain both classes")
        self._fit(arr, labels)
        self._footprint = TrainingFootprint()
        self._footprint.add(arr, labels)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probability that the label is 1 (price up), shape (n,)."""
        if not self.feature_names:
            raise ValueError(f"{self.name} is not fitted")
        arr, _ = _as_matrix(X, self.feature_names)
        return self._predict_proba(arr)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (1 = up)."""
        return (self.predict_proba(X) > 0.5).astype(np.int64)

    def score_oos(self, X: Any, y: Any, fwd_ret: Any = None) -> dict[str, float]:
        """Out-of-sample scores; raises ``ValueError`` if any row was used in training.

        The scores (hit rate, binomial p-value, log loss, AUC, IC with ``fwd_ret``) are stored in
        ``validation_scores``.
        """
        arr, _ = _as_matrix(X, self.feature_names)
        labels = _as_labels(y, len(arr))
        self._footprint.require_disjoint(arr, labels)
        fr = None if fwd_ret is None else np.asarray(fwd_ret, dtype=np.float64)
        self.validation_scores = classification_scores(labels, self._predict_proba(arr), fr)
        return self.validation_scores

    def signals(self, features: pd.DataFrame) -> list[Signal]:
        """One Signal per symbol from its latest row of a (date, symbol) feature frame.

        value = 2 P(up) - 1; confidence from :meth:`confidence` (default |2 P(up) - 1|).
        """
        last = latest_rows(features)
        p = self.predict_proba(last)
        conf = self.confidence(last)
        out = []
        for sym, pu, c in zip(last.index, p, conf, strict=True):
            v = float(np.clip(2.0 * pu - 1.0, -1.0, 1.0))
            c = float(np.clip(c, 0.0, 1.0))
            out.append(Signal(self.name, str(sym), v, c, {"prob_up": round(float(pu), 6)}))
        return out

    def confidence(self, X: Any) -> np.ndarray:
        """Confidence in [0, 1] per row: |2 P(up) - 1| unless a model knows better."""
        return np.abs(2.0 * self.predict_proba(X) - 1.0)


class XGBoostModel(BaseModel):
    """XGBoost direction classifier with a calibration map fitted on held-out recent rows."""

    name = "xgboost"

    def __init__(self, config: EnsembleConfig | None = None) -> None:
        super().__init__()
        self.config = config or EnsembleConfig()
        self._clf: xgb.XGBClassifier | None = None
        self._calibrator: Any = None
        self._pending_X: list[np.ndarray] = []
        self._pending_y: list[np.ndarray] = []

    def params(self) -> dict[str, Any]:
        """The configuration, for the model store and the journal."""
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

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        c = self.config
        n_cal = int(round(c.calibration_fraction * len(X)))
        n_fit = len(X) - n_cal - c.calibration_gap
        if n_cal < 20 or n_fit < 50:
            raise ValueError(
                f"too few rows ({len(X)}) for calibration_fraction={c.calibration_fraction}"
                f" and calibration_gap={c.calibration_gap}"
            )
        self._clf = self._new_classifier(c.n_estimators)
        self._clf.fit(X[:n_fit], y[:n_fit])
        raw = self._clf.predict_proba(X[-n_cal:])[:, 1]
        self._calibrator = self._fit_calibrator(raw, y[-n_cal:])

    def _fit_calibrator(self, raw: np.ndarray, y: np.ndarray) -> Any:
        if self.config.calibration == "isotonic":
            return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        if np.unique(y).size < 2:
            raise ValueError("calibration rows contain a single class")
        return LogisticRegression(C=1e6).fit(_logit(raw)[:, None], y)

    def _raw_proba(self, X: np.ndarray) -> np.ndarray:
        assert self._clf is not None
        return self._clf.predict_proba(X)[:, 1]

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw_proba(X)
        if isinstance(self._calibrator, IsotonicRegression):
            return np.asarray(self._calibrator.predict(raw), dtype=np.float64)
        return self._calibrator.predict_proba(_logit(raw)[:, None])[:, 1]

    def partial_fit(self, X: Any, y: Any) -> XGBoostModel:
        """Incremental update from newly closed trades.

        Rows are buffered until ``incremental_batch`` rows holding both classes have arrived;
        then ``incremental_trees`` boosting rounds are fitted on them, continuing the existing
        booster. The calibration map is kept; a full ``fit`` (the continuous learner's retrain on
        drift) refreshes it.
        """
        if self._clf is None:
            raise ValueError("partial_fit needs a fitted model")
        arr, _ = _as_matrix(X, self.feature_names)
        labels = _as_labels(y, len(arr))
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


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))
