"""Guard that keeps out-of-sample scores out of the training sample.

A model remembers a 64-bit hash of every training row (features and label). Scoring on rows
that contain any of them raises, so no reported out-of-sample figure can include training data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import log_loss, roc_auc_score


def row_hashes(X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """uint64 hash per row of ``X`` (and its label when given)."""
    frame = pd.DataFrame(np.asarray(X, dtype=np.float64))
    if y is not None:
        frame["__y"] = np.asarray(y, dtype=np.float64)
    return np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())


class TrainingFootprint:
    """The set of rows a model was trained on."""

    def __init__(self) -> None:
        self._hashes = np.empty(0, dtype=np.uint64)

    def add(self, X: np.ndarray, y: np.ndarray) -> None:
        self._hashes = np.union1d(self._hashes, row_hashes(X, y))

    def overlap(self, X: np.ndarray, y: np.ndarray) -> int:
        """How many rows of (X, y) were used in training."""
        return int(np.isin(row_hashes(X, y), self._hashes).sum())

    def require_disjoint(self, X: np.ndarray, y: np.ndarray) -> None:
        n = self.overlap(X, y)
        if n:
            raise ValueError(
                f"out-of-sample scoring refused: {n} of {len(X)} rows were used in training"
            )


def classification_scores(
    y: np.ndarray, prob_up: np.ndarray, fwd_ret: np.ndarray | None = None
) -> dict[str, float]:
    """Score predicted probabilities against labels.

    Hit rate, log loss, AUC, a one-sided binomial p-value against 50 % and, with forward
    returns, the information coefficient (Spearman rank correlation of prob_up with fwd_ret).
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.clip(np.asarray(prob_up, dtype=np.float64), 1e-6, 1 - 1e-6)
    hits = int(((p > 0.5).astype(np.int64) == y).sum())
    out = {
        "n": float(len(y)),
        "hit_rate": hits / len(y),
        "binom_p": float(stats.binomtest(hits, len(y), 0.5, alternative="greater").pvalue),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan"),
    }
    if fwd_ret is not None:
        out["ic"] = float(stats.spearmanr(p, fwd_ret).statistic)
    return out
