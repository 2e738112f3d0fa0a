"""Guard that keeps out-of-sample scores out of the training sample.

A model remembers a 64-bit hash of every training row (features and label). Scoring on rows
that contain any of them raises, so no reported out-of-sample figure can include training data.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
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


def dependent_hit_pvalue(hits: ArrayLike, dates: ArrayLike, horizon: int = 1) -> float:
    """One-sided p-value of a hit rate above 1/2 from calls that share dates and overlap.

    Calls on many symbols the same day are not independent (one market move decides most of
    them), nor are calls on overlapping ``horizon``-day outcomes: a binomial test of the
    pooled hits then claims far more evidence than there is. Driscoll and Kraay (1998): each
    date's mean excess hit ``e_t = mean_i(hit_it) - 1/2`` (dates weigh equally), its mean over
    the T dates tested with a Newey-West (1987) long-run variance, Bartlett weights, lag
    ``max(horizon - 1, floor(4 (T / 100)^(2/9)))``, against Student's t with T - 1 degrees of
    freedom. 1.0 with fewer than 2 dates.
    """
    h = np.asarray(hits, dtype=np.float64).ravel()
    d = np.asarray(dates).ravel()
    if h.shape != d.shape:
        raise ValueError(f"hits and dates must match, got {h.shape} and {d.shape}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    codes, days = pd.factorize(d, sort=True)
    n_t = np.bincount(codes, minlength=len(days))
    e = np.bincount(codes, h, minlength=len(days)) / n_t - 0.5
    t_n = len(e)
    if t_n < 2:
        return 1.0
    lag = min(max(horizon - 1, int(4.0 * (t_n / 100.0) ** (2.0 / 9.0))), t_n - 1)
    u = e - e.mean()
    lrv = float(u @ u) / t_n
    for k in range(1, lag + 1):
        lrv += 2.0 * (1.0 - k / (lag + 1.0)) * float(u[k:] @ u[:-k]) / t_n
    if lrv <= 0.0:
        return 0.0 if e.mean() > 0 else 1.0
    t_stat = float(e.mean()) / math.sqrt(lrv / t_n)
    return float(stats.t.sf(t_stat, t_n - 1))


def classification_scores(
    y: np.ndarray,
    prob_up: np.ndarray,
    fwd_ret: np.ndarray | None = None,
    dates: np.ndarray | None = None,
    horizon: int = 1,
) -> dict[str, float]:
    """Score predicted probabilities against labels.

    Hit rate, log loss, AUC, a one-sided binomial p-value against 50 % (independent hits),
    with forward returns the information coefficient (Spearman rank correlation of prob_up
    with fwd_ret), and with each row's date ``hit_p``: the p-value of the hit rate with the
    rows' shared dates and ``horizon``-day overlap accounted for (:func:`dependent_hit_pvalue`).
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.clip(np.asarray(prob_up, dtype=np.float64), 1e-6, 1 - 1e-6)
    hit = (p > 0.5).astype(np.int64) == y
    hits = int(hit.sum())
    out = {
        "n": float(len(y)),
        "hit_rate": hits / len(y),
        "binom_p": float(stats.binomtest(hits, len(y), 0.5, alternative="greater").pvalue),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan"),
    }
    if fwd_ret is not None:
        out["ic"] = float(stats.spearmanr(p, fwd_ret).statistic)
    if dates is not None:
        out["hit_p"] = dependent_hit_pvalue(hit, dates, horizon)
    return out
