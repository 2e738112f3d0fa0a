"""Transformer encoder over a window of feature vectors, predicting the next-horizon return.

Each sample is the last ``window`` feature rows of one symbol (oldest first). The model projects
them to ``d_model``, adds a learned position embedding, runs ``n_layers`` pre-norm encoder blocks
(multi-head self-attention + feed-forward, Vaswani et al. 2017) and reads the last position into a
Gaussian head: mean ``mu`` and scale ``sigma`` of the standardised forward return, trained by the
Gaussian negative log-likelihood. P(up) = Phi(mu / sigma) (after undoing the standardisation).

The large configuration, ``TransformerConfig.brief()`` (d_model = 512, 8 heads, d_ff = 2048),
works; the default is smaller (d_model = 32, 4 heads) because the large one does not train on
20 stocks x 10 years within the ML stack's 10-minute CPU budget (timings by
``benchmarks/ml/bench_ml.py``, table in ``benchmarks/ml/README.md``).

References
----------
A. Vaswani et al. (2017), "Attention is all you need", NeurIPS.
R. Xiong et al. (2020), "On layer normalization in the transformer architecture", ICML (pre-norm).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Self

import numpy as np
import pandas as pd
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from v28quant._typing import FloatArray
from v28quant.ml._oos import TrainingFootprint, classification_scores
from v28quant.ml.base import BaseModel
from v28quant.signals import Signal


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture and training settings (windows in rows = trading days)."""

    window: int = 20
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 64
    dropout: float = 0.1
    lr: float = 2e-3
    weight_decay: float = 1e-4
    epochs: int = 10
    batch_size: int = 256
    seed: int = 0

    @classmethod
    def brief(cls, **overrides: Any) -> TransformerConfig:
        """Return the large configuration: d_model = 512, 8 heads, d_ff = 2048."""
        return replace(cls(d_model=512, n_heads=8, d_ff=2048), **overrides)


class TransformerEncoderBlock(nn.Module):
    """Pre-norm encoder block: x + MHA(LN(x)), then x + FFN(LN(x))."""

    def __init__(
        self, d_model: int = 512, n_heads: int = 8, d_ff: int = 2048, dropout: float = 0.1
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape (batch, window, d_model)."""
        h = self.norm1(x)
        a, _ = self.attn(h, h, h, need_weights=False)
        x = x + self.drop(a)
        out: torch.Tensor = x + self.drop(self.ff(self.norm2(x)))
        return out


class TransformerPredictorModel(nn.Module):
    """(batch, window, n_features) -> (mu, log_sigma), each (batch,)."""

    def __init__(self, n_features: int, config: TransformerConfig):
        super().__init__()
        c = config
        self.proj = nn.Linear(n_features, c.d_model)
        self.pos = nn.Parameter(torch.zeros(1, c.window, c.d_model))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(
            TransformerEncoderBlock(c.d_model, c.n_heads, c.d_ff, c.dropout)
            for _ in range(c.n_layers)
        )
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (mu, log_sigma) for windows ``x`` of shape (batch, window, n_features)."""
        h = self.proj(x) + self.pos[:, -x.shape[1] :]
        for blk in self.blocks:
            h = blk(h)
        out = self.head(self.norm(h[:, -1]))
        return out[:, 0], out[:, 1].clamp(-5.0, 5.0)


def make_windows(
    features: pd.DataFrame, window: int, last_only: bool = False
) -> tuple[np.ndarray, pd.MultiIndex]:
    """Sliding windows per symbol of a (date, symbol) feature frame.

    Returns an array (n, window, n_features) and the (date, symbol) index of each window's last
    row. With ``last_only`` only the latest window of each symbol is built (inference).
    """
    arrays, keys = [], []
    for _, g in features.groupby(level="symbol", sort=True):
        g = g.sort_index()
        vals = g.to_numpy(np.float32)
        if len(vals) < window:
            continue
        if last_only:
            arrays.append(vals[None, -window:])
            keys.append(g.index[-1:])
        else:
            arrays.append(sliding_window_view(vals, window, axis=0).transpose(0, 2, 1))
            keys.append(g.index[window - 1 :])
    if not arrays:
        raise ValueError(f"no symbol has {window} feature rows")
    idx = keys[0].append(keys[1:]) if len(keys) > 1 else keys[0]
    return np.ascontiguousarray(np.concatenate(arrays)), pd.MultiIndex.from_tuples(
        list(idx), names=["date", "symbol"]
    )


class TransformerPredictor(BaseModel):
    """Trains :class:`TransformerPredictorModel` on (date, symbol) features and forward returns.

    A :class:`~v28quant.ml.base.BaseModel` whose predictions are made per window: one per
    (date, symbol) row that has ``config.window`` rows of history, including itself.
    """

    name = "transformer"

    def __init__(self, config: TransformerConfig | None = None) -> None:
        super().__init__()
        self.config = config or TransformerConfig()
        self.net: TransformerPredictorModel | None = None
        self._x_mean = np.zeros(0, np.float32)
        self._x_std = np.ones(0, np.float32)
        self._y_std = 1.0
        self._footprint = TrainingFootprint()

    def params(self) -> dict[str, Any]:
        """Return the configuration, for the model store and the journal."""
        return asdict(self.config)

    def fit(self, features: pd.DataFrame, fwd_ret: pd.Series, progress: bool = False) -> Self:
        """Train on windows ending at the rows of ``fwd_ret`` (a (date, symbol) Series)."""
        c = self.config
        self.feature_names = [str(x) for x in features.columns]
        Xw, idx = make_windows(features, c.window)
        keep = idx.isin(fwd_ret.index)
        Xw, idx = Xw[keep], idx[keep]
        y = fwd_ret.reindex(idx).to_numpy(np.float64)
        if len(y) < c.batch_size:
            raise ValueError(f"need at least batch_size={c.batch_size} windows, got {len(y)}")
        flat = Xw.reshape(-1, Xw.shape[-1])
        self._x_mean = flat.mean(axis=0)
        self._x_std = flat.std(axis=0) + 1e-8
        self._y_std = float(np.std(y)) or 1.0
        torch.manual_seed(c.seed)
        gen = torch.Generator().manual_seed(c.seed)
        self.net = TransformerPredictorModel(Xw.shape[-1], c)
        opt = torch.optim.AdamW(self.net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        xt = torch.from_numpy(self._scale(Xw))
        yt = torch.from_numpy((y / self._y_std).astype(np.float32))
        steps = c.epochs * math.ceil(len(yt) / c.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=steps)
        epochs = range(c.epochs)
        if progress:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="transformer", unit="epoch")
        self.net.train()
        for _ in epochs:
            perm = torch.randperm(len(yt), generator=gen)
            for b in range(0, len(yt), c.batch_size):
                sel = perm[b : b + c.batch_size]
                mu, log_s = self.net(xt[sel])
                loss = nn.functional.gaussian_nll_loss(mu, yt[sel], torch.exp(2 * log_s))
                opt.zero_grad()
                torch.autograd.backward(loss)  # Tensor.backward is unannotated
                nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                opt.step()
                sched.step()
        self.net.eval()
        self._footprint = TrainingFootprint()
        self._footprint.add(Xw.reshape(len(Xw), -1), y)
        return self

    def _scale(self, Xw: np.ndarray) -> np.ndarray:
        return ((Xw - self._x_mean) / self._x_std).astype(np.float32)

    def predict_windows(self, Xw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale of the forward return (in return units) for windows (n, w, f)."""
        if self.net is None:
            raise ValueError("TransformerPredictor is not fitted")
        with torch.no_grad():
            mu, log_s = self.net(torch.from_numpy(self._scale(Xw)))
        return mu.numpy() * self._y_std, np.exp(log_s.numpy()) * self._y_std

    def predict_proba(self, X: pd.DataFrame) -> FloatArray:
        """P(up) = Phi(mu / sigma) at every window end of the feature frame ``X``.

        The rows follow :meth:`predict`'s index (symbols in order, dates ascending).
        """
        return np.asarray(self.predict(X)["prob_up"], dtype=np.float64)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """``mu``, ``sigma`` and ``prob_up`` for every window end of ``features``."""
        Xw, idx = make_windows(features[self.feature_names], self.config.window)
        return self._frame(Xw, idx)

    def _frame(self, Xw: np.ndarray, idx: pd.MultiIndex) -> pd.DataFrame:
        mu, sd = self.predict_windows(Xw)
        z = torch.from_numpy(mu / sd)
        prob = 0.5 * (1 + torch.erf(z / math.sqrt(2.0))).numpy()
        return pd.DataFrame({"mu": mu, "sigma": sd, "prob_up": prob}, index=idx)

    def score_oos(
        self, features: pd.DataFrame, fwd_ret: pd.Series, horizon: int = 1
    ) -> dict[str, float]:
        """Hit rate, IC, ... on windows ending at ``fwd_ret``'s rows; refuses training windows.

        ``horizon``: the days ``fwd_ret`` spans (``hit_p`` allows for the overlap).
        """
        Xw, idx = make_windows(features[self.feature_names], self.config.window)
        keep = idx.isin(fwd_ret.index)
        Xw, idx = Xw[keep], idx[keep]
        y = fwd_ret.reindex(idx).to_numpy(np.float64)
        self._footprint.require_disjoint(Xw.reshape(len(Xw), -1), y)
        pred = self._frame(Xw, idx)
        self.validation_scores = classification_scores(
            (y > 0).astype(np.int64),
            pred["prob_up"].to_numpy(),
            y,
            idx.get_level_values("date"),
            horizon,
        )
        return self.validation_scores

    def signals(self, features: pd.DataFrame) -> list[Signal]:
        """One Signal per symbol from its latest window.

        Value = 2 P(up) - 1, confidence = |2 P(up) - 1| (a wide predicted scale gives P(up) near
        1/2, hence low confidence).
        """
        Xw, idx = make_windows(features[self.feature_names], self.config.window, last_only=True)
        pred = self._frame(Xw, idx)
        out = []
        for (_, sym), row in pred.iterrows():
            v = float(np.clip(2 * row["prob_up"] - 1, -1, 1))
            reasoning = {"mu": float(row["mu"]), "sigma": float(row["sigma"])}
            out.append(Signal(self.name, str(sym), v, abs(v), reasoning))
        return out
