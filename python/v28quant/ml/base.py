"""The contract of the ML stack's direction models, and the helpers they share.

:class:`BaseModel` is what every model that predicts P(up) offers the rest of the system:
``fit``, ``predict_proba``, ``score_oos`` (which refuses rows seen in training), ``params`` for
the model store and ``signals`` for the aggregator. :class:`RowClassifier` implements it for
models that map one feature row to one probability (the boosted and stacked ensembles); the
transformer implements it directly over windows of rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from v28quant._typing import FloatArray, IntArray
from v28quant.ml._oos import TrainingFootprint, classification_scores
from v28quant.ml.features import latest_rows
from v28quant.signals import Signal

__all__ = ["BaseModel", "RowClassifier", "as_labels", "as_matrix", "logit"]


def as_matrix(X: Any, names: Sequence[str] | None) -> tuple[FloatArray, list[str]]:
    """Turn features into a float64 matrix and its column names.

    Parameters
    ----------
    X : DataFrame or array_like, shape (n, f)
        Feature rows. DataFrame columns are reordered to ``names``.
    names : sequence of str or None
        The feature names a fitted model expects; None takes them from ``X`` (``x0``, ``x1``,
        ... for an array).

    Returns
    -------
    matrix : ndarray of float64, shape (n, f)
    names : list of str

    Raises
    ------
    ValueError
        A DataFrame lacks one of ``names``, an array is not 2-D or has the wrong column count.
    """
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


def as_labels(y: Any, n: int) -> IntArray:
    """Check binary labels against the row count ``n`` and return them as int64.

    Raises
    ------
    ValueError
        ``y`` has other than ``n`` rows or holds a value other than 0 and 1.
    """
    arr = np.asarray(y).ravel()
    if len(arr) != n:
        raise ValueError(f"y has {len(arr)} rows, X has {n}")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError("y must contain only 0 and 1")
    return arr.astype(np.int64)


def logit(p: FloatArray) -> FloatArray:
    """Log-odds ``ln(p / (1 - p))``, with ``p`` clipped to ``[1e-6, 1 - 1e-6]`` to stay finite."""
    q = np.clip(p, 1e-6, 1 - 1e-6)
    out: FloatArray = np.log(q / (1 - q))
    return out


class BaseModel(ABC):
    """A model of the ML stack that predicts the probability of an up move.

    Attributes
    ----------
    name : str
        The model's name in Signals, the journal and the model store.
    feature_names : list of str
        The features it was fitted on, in order; empty before ``fit``.
    validation_scores : dict of str to float
        The latest out-of-sample scores from ``score_oos``.
    """

    name: str = "base"

    def __init__(self) -> None:
        self.feature_names: list[str] = []
        self.validation_scores: dict[str, float] = {}

    @abstractmethod
    def fit(self, X: Any, y: Any) -> Self:
        """Train on time-ordered rows (oldest first) and their targets."""

    @abstractmethod
    def predict_proba(self, X: Any) -> FloatArray:
        """Probability that the price goes up, one value per prediction."""

    @abstractmethod
    def score_oos(self, X: Any, y: Any) -> dict[str, float]:
        """Out-of-sample scores, stored in ``validation_scores``; refuses training rows."""

    @abstractmethod
    def signals(self, features: pd.DataFrame) -> list[Signal]:
        """One Signal per symbol from the latest rows of a (date, symbol) feature frame."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Return the configuration, for the model store and the journal."""


def rows_per_date(X: Any) -> int:
    """Rows per date of a frame with a ``date`` index level, after checking the date order.

    1 for anything without dates. Raises ``ValueError`` when the dates are not non-decreasing.
    """
    index = getattr(X, "index", None)
    if index is None or "date" not in (index.names or []):
        return 1
    dates = pd.DatetimeIndex(index.get_level_values("date"))
    back = np.flatnonzero(dates[1:] < dates[:-1])
    if back.size:
        i = int(back[0]) + 1
        raise ValueError(
            f"rows must be in date order (oldest first): row {i} dated {dates[i].date()} "
            f"follows {dates[i - 1].date()}"
        )
    return int(np.ceil(len(dates) / max(dates.nunique(), 1)))


class RowClassifier(BaseModel):
    """A :class:`BaseModel` that maps each feature row to P(up) on its own.

    Subclasses implement ``_fit`` and ``_predict_proba`` on float64 matrices; this class checks
    the input, remembers the training rows and turns probabilities into Signals. Rows passed to
    ``fit`` must be in time order (oldest first) when the model holds out its most recent rows
    (calibration, early stopping).
    """

    def __init__(self) -> None:
        super().__init__()
        self._footprint = TrainingFootprint()
        #: Rows per date of the last training panel (1 for plain arrays): gaps measured in
        #: dates (the label horizon) become gaps in rows.
        self.rows_per_date = 1

    @abstractmethod
    def _fit(self, X: FloatArray, y: IntArray) -> None: ...

    @abstractmethod
    def _predict_proba(self, X: FloatArray) -> FloatArray: ...

    def fit(self, X: Any, y: Any) -> Self:
        """Train on features ``X`` (n, f) and labels ``y`` in {0, 1}.

        A DataFrame indexed by date (a ``date`` index level) must be in date order, oldest
        first (checked: ``ValueError`` naming the first row out of order); plain arrays are
        taken to be.
        """
        self.rows_per_date = rows_per_date(X)
        arr, self.feature_names = as_matrix(X, None)
        labels = as_labels(y, len(arr))
        if np.unique(labels).size < 2:
            raise ValueError("y must contain both classes")
        self._fit(arr, labels)
        self._footprint = TrainingFootprint()
        self._footprint.add(arr, labels)
        return self

    def predict_proba(self, X: Any) -> FloatArray:
        """Calibrated probability that the label is 1 (price up), shape (n,)."""
        if not self.feature_names:
            raise ValueError(f"{self.name} is not fitted")
        arr, _ = as_matrix(X, self.feature_names)
        return self._predict_proba(arr)

    def predict(self, X: Any) -> IntArray:
        """Class labels (1 = up)."""
        return (self.predict_proba(X) > 0.5).astype(np.int64)

    def score_oos(self, X: Any, y: Any, fwd_ret: Any = None, horizon: int = 1) -> dict[str, float]:
        """Score on rows unseen in training; raises ``ValueError`` if any row was used.

        The scores (hit rate, binomial p-value, log loss, AUC, IC with ``fwd_ret``, and for a
        frame indexed by ``date`` the dependence-aware ``hit_p`` of ``horizon``-day labels)
        are stored in ``validation_scores``.
        """
        arr, _ = as_matrix(X, self.feature_names)
        labels = as_labels(y, len(arr))
        self._footprint.require_disjoint(arr, labels)
        fr = None if fwd_ret is None else np.asarray(fwd_ret, dtype=np.float64)
        index = getattr(X, "index", None)
        dates = (
            index.get_level_values("date")
            if index is not None and "date" in (index.names or ())
            else None
        )
        self.validation_scores = classification_scores(
            labels, self._predict_proba(arr), fr, dates, horizon
        )
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

    def confidence(self, X: Any) -> FloatArray:
        """Confidence in [0, 1] per row: |2 P(up) - 1| unless a model knows better."""
        out: FloatArray = np.abs(2.0 * self.predict_proba(X) - 1.0)
        return out
