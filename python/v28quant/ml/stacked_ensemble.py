"""Stacked ensemble: base learners fitted out-of-fold, a meta-learner on their predictions.

``StackedEnsemble()`` works with its defaults::

    model = StackedEnsemble().fit(X, y)          # X numpy (n, f) or DataFrame, y in {0, 1}
    labels = model.predict(X_new)
    labels, confidence = model.predict_with_confidence(X_new)

Fitting: the rows (in time order) are cut into ``n_folds`` contiguous blocks. For each block, every
base learner is trained on the other blocks less ``purge`` rows on each side of the block and
``embargo`` further rows after it (purged k-fold with an embargo, López de Prado 2018 sec. 7.4),
and predicts the block. The meta-learner (logistic regression on the logits of the base
probabilities) is fitted on these out-of-fold predictions only, then every base learner is refitted
on all rows. Confidence = |2 p_meta - 1| x (share of base learners voting for the final label):
a confident meta-probability counts fully only when the base learners agree.

References
----------
D. H. Wolpert (1992), "Stacked generalization", Neural Networks 5(2).
L. Breiman (1996), "Stacked regressions", Machine Learning 24.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.base import ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from v28quant._typing import FloatArray, IntArray
from v28quant.ml.base import RowClassifier, as_matrix, logit


def default_base_learners(seed: int = 0) -> list[tuple[str, ClassifierMixin]]:
    """Linear, bagged-tree and boosted-tree learners, each single-threaded."""
    return [
        ("logit", make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))),
        (
            "forest",
            RandomForestClassifier(
                n_estimators=100, max_depth=5, min_samples_leaf=20, n_jobs=1, random_state=seed
            ),
        ),
        (
            "xgb",
            xgb.XGBClassifier(
                n_estimators=100,
                max_depth=3,
                learning_rate=0.05,
                subsample=0.8,
                min_child_weight=5.0,
                n_jobs=1,
                random_state=seed,
                tree_method="hist",
            ),
        ),
    ]


class StackedEnsemble(RowClassifier):
    """Out-of-fold stacking of classifiers with a logistic meta-learner.

    Parameters
    ----------
    base_learners : sequence of (name, sklearn classifier), optional
        Defaults to :func:`default_base_learners`.
    meta_learner : sklearn classifier, optional
        Defaults to logistic regression.
    n_folds : int
        Contiguous blocks for the out-of-fold predictions.
    purge, embargo : int
        Rows dropped from training on both sides of each block (purge) and after it (embargo).
        ``purge=None`` means ``label_horizon`` dates: the label horizon x the symbols per date
        of a (date, symbol) panel, ``label_horizon`` rows for plain arrays.
        ``embargo=None`` means 1 % of the rows.
    label_horizon : int
        Days each label looks ahead (``make_labels``' horizon).
    """

    name = "stacked_ensemble"

    def __init__(
        self,
        base_learners: Sequence[tuple[str, ClassifierMixin]] | None = None,
        meta_learner: ClassifierMixin | None = None,
        n_folds: int = 5,
        purge: int | None = None,
        embargo: int | None = None,
        seed: int = 0,
        label_horizon: int = 5,
    ) -> None:
        super().__init__()
        if n_folds < 2:
            raise ValueError(f"n_folds must be >= 2, got {n_folds}")
        self.base_learners = list(base_learners or default_base_learners(seed))
        self.meta_learner = meta_learner or LogisticRegression(C=1.0)
        self.n_folds = n_folds
        self.purge = purge
        self.embargo = embargo
        self.label_horizon = label_horizon
        self._fitted: list[ClassifierMixin] = []
        self._meta: Any = None

    def params(self) -> dict[str, Any]:
        """Return the configuration, for the model store and the journal."""
        return {
            "base_learners": [n for n, _ in self.base_learners],
            "n_folds": self.n_folds,
            "purge": self.purge,
            "embargo": self.embargo,
            "label_horizon": self.label_horizon,
        }

    @property
    def purge_rows(self) -> int:
        """Rows purged on each side of a block: ``purge``, else the label horizon in rows."""
        if self.purge is not None:
            return self.purge
        return self.label_horizon * self.rows_per_date

    def fold_indices(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train, test) row positions of the purged, embargoed contiguous k-fold."""
        embargo = self.embargo if self.embargo is not None else int(0.01 * n)
        edges = np.linspace(0, n, self.n_folds + 1).astype(int)
        rows = np.arange(n)
        out = []
        for a, b in itertools.pairwise(edges):
            purge = self.purge_rows
            keep = (rows < a - purge) | (rows >= b + purge + embargo)
            out.append((rows[keep], rows[a:b]))
        return out

    def _fit(self, X: FloatArray, y: IntArray) -> None:
        oof = np.empty((len(X), len(self.base_learners)))
        for train, test in self.fold_indices(len(X)):
            if np.unique(y[train]).size < 2:
                raise ValueError("a training fold contains a single class; use fewer folds")
            for j, (_, est) in enumerate(self.base_learners):
                oof[test, j] = clone(est).fit(X[train], y[train]).predict_proba(X[test])[:, 1]
        self._meta = clone(self.meta_learner).fit(logit(oof), y)
        self._fitted = [clone(est).fit(X, y) for _, est in self.base_learners]

    def base_probabilities(self, X: Any) -> np.ndarray:
        """P(up) of each base learner, shape (n, n_base)."""
        arr, _ = as_matrix(X, self.feature_names)
        return self._base(arr)

    def _base(self, X: np.ndarray) -> np.ndarray:
        if not self._fitted:
            raise ValueError("StackedEnsemble is not fitted")
        return np.column_stack([m.predict_proba(X)[:, 1] for m in self._fitted])

    def _predict_proba(self, X: FloatArray) -> FloatArray:
        return np.asarray(self._meta.predict_proba(logit(self._base(X)))[:, 1], np.float64)

    def predict_with_confidence(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Class labels and confidence in [0, 1] (see the module docstring)."""
        arr, _ = as_matrix(X, self.feature_names)
        base = self._base(arr)
        p = self._meta.predict_proba(logit(base))[:, 1]
        labels = (p > 0.5).astype(np.int64)
        agree = ((base > 0.5).astype(np.int64) == labels[:, None]).mean(axis=1)
        return labels, np.abs(2.0 * p - 1.0) * agree

    def confidence(self, X: Any) -> np.ndarray:
        """Meta-probability strength times base-learner agreement (used by ``signals``)."""
        return self.predict_with_confidence(X)[1]
