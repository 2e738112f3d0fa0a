"""Manifold regime detector: the market's return distribution as a path in Fisher-Rao geometry.

Every day the detector estimates the mean and volatility of daily log returns over a rolling
window: a point ``(mu, sigma)`` of the manifold of normal distributions with its Fisher-Rao
metric (:mod:`v28quant.regime.fisher`, on :mod:`v28quant.geometry`). Distances there measure
how distinguishable two return distributions are from data, in the same units whatever the
level of volatility: a move from 10 % to 20 % vol is as far as one from 40 % to 80 %.

* :class:`GeodesicPathTracker` turns returns into that path and reads three features off it:
  the geodesic speed (how fast the return distribution is changing: calm markets creep, breaks
  jump), the geodesic curvature (how sharply the path turns: zero along a geodesic, i.e. a
  distribution moving steadily one way; on the shipped SPY history calm markets wander with
  high curvature while a sell-off runs nearly straight up the vol axis) and, with
  a fitted classifier, the geodesic distance from each regime's centroid (how far today's
  distribution is from a typical calm, normal or stressed day).
* :class:`RegimeClassifier` finds the regimes' centroids by Lloyd iterations in the geodesic
  distance and turns the features into probabilities: a Riemannian normal kernel on the
  distances (Pennec 2006) times a normal density of the log speed per regime.
* :class:`VolatilitySurface3D` is the volatility surface as a height field: implied vol over
  log-moneyness x expiry from an option chain, or, without a chain, realised vol over
  horizon x time. Its Gaussian curvature and term slope say whether short-dated vol has broken
  away from long-dated vol (an inverted term structure is a stress signature).
* :class:`ManifoldRegimeDetector` puts them together with the HMM detector's API.

References
----------
X. Pennec (2006), "Intrinsic statistics on Riemannian manifolds", J. Math. Imaging Vis. 25.
S. Amari, H. Nagaoka (2000), "Methods of Information Geometry", AMS.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from v28quant.geometry import HeightFieldMetric
from v28quant.regime._series import REGIME_LABELS, as_returns, data_time
from v28quant.regime.fisher import fisher_rao_distance, geodesic_curvature
from v28quant.signals import RegimeState

_SIGMA_FLOOR = 1e-6  # daily vol floor: keeps a flat window inside the half-plane


class GeodesicPathTracker:
    """Rolling ``(mu, sigma)`` of daily log returns as a path in the Fisher-Rao geometry.

    Parameters
    ----------
    window : int
        Days in each rolling estimate (rows before it use all rows so far, at least 2).
    lag : int
        Days between the points used for speed (per day) and curvature (backward differences:
        row t uses rows t, t - lag and t - 2 lag only).
    """

    def __init__(self, window: int = 21, lag: int = 5) -> None:
        if window < 2 or lag < 1:
            raise ValueError(f"window must be >= 2 and lag >= 1, got {window}, {lag}")
        self.window, self.lag = window, lag

    def path(self, returns: Any) -> NDArray[np.float64]:
        """Points (n, 2) = (mean, standard deviation) of daily returns; NaN in row 0."""
        r = pd.Series(as_returns(returns, min_rows=1))
        roll = r.rolling(self.window, min_periods=2)
        mu = roll.mean().to_numpy(np.float64)
        sd = np.maximum(roll.std().to_numpy(np.float64), _SIGMA_FLOOR)
        return np.column_stack([mu, sd])

    def speed(self, path: NDArray[np.float64]) -> NDArray[np.float64]:
        """Geodesic distance from row t - lag to row t, per day; NaN where undefined."""
        out = np.full(len(path), np.nan)
        a, b = path[: -self.lag], path[self.lag :]
        ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
        out[self.lag :][ok] = fisher_rao_distance(a[ok], b[ok]) / self.lag
        return out

    def curvature(self, path: NDArray[np.float64]) -> NDArray[np.float64]:
        """Signed geodesic curvature of the path at each row (backward differences)."""
        h = self.lag
        out = np.full(len(path), np.nan)
        if len(path) <= 2 * h:
            return out
        x0, x1, x2 = path[2 * h :], path[h:-h], path[: -2 * h]
        v = (x0 - x1) / h
        acc = (x0 - 2.0 * x1 + x2) / h**2
        ok = np.isfinite(x0).all(axis=1) & np.isfinite(x2).all(axis=1)
        ok &= np.abs(v).sum(axis=1) > 0
        out[2 * h :][ok] = geodesic_curvature(x0[ok], v[ok], acc[ok])
        return out


class RegimeClassifier:
    """Regime centroids in the Fisher-Rao geometry and probabilities from the path features.

    Parameters
    ----------
    n_regimes : int
        2, 3 or 4; named by :data:`~v28quant.regime.REGIME_LABELS` in order of centroid vol.
    n_iter : int
        Lloyd iterations (assign to the nearest centroid, move each centroid to its members'
        mean drift and geometric-mean vol, the Frechet mean along the vol axis).
    """

    def __init__(self, n_regimes: int = 3, n_iter: int = 50) -> None:
        if n_regimes not in REGIME_LABELS:
            raise ValueError(f"n_regimes must be one of {sorted(REGIME_LABELS)}, got {n_regimes}")
        self.n_regimes, self.n_iter = n_regimes, n_iter
        self.labels = REGIME_LABELS[n_regimes]
        self.centroids = np.zeros((0, 2))
        self.spread = np.zeros(0)
        self.prior = np.zeros(0)
        self.speed_mean = np.zeros(0)
        self.speed_sd = np.zeros(0)

    def fit(self, points: NDArray[np.float64], speed: NDArray[np.float64]) -> RegimeClassifier:
        """Fit on path points (n, 2) and speeds (n,); rows with NaN are left out."""
        ok = np.isfinite(points).all(axis=1) & np.isfinite(speed) & (speed > 0)
        x, logs = points[ok], np.log(speed[ok])
        k = self.n_regimes
        if len(x) < 20 * k:
            raise ValueError(f"need at least {20 * k} usable rows, got {len(x)}")
        qs = (np.arange(k) + 0.5) / k
        c = np.column_stack([np.full(k, np.median(x[:, 0])), np.quantile(x[:, 1], qs)])
        assign = np.zeros(len(x), dtype=np.int64)
        for _ in range(self.n_iter):
            assign = fisher_rao_distance(x[:, None, :], c[None, :, :]).argmin(axis=1)
            new = c.copy()
            for j in range(k):
                m = x[assign == j]
                if len(m):
                    new[j] = (m[:, 0].mean(), np.exp(np.log(m[:, 1]).mean()))
            if np.allclose(new, c, rtol=1e-10, atol=0.0):
                break
            c = new
        order = np.argsort(c[:, 1])
        c = c[order]
        assign = np.argsort(order)[assign]
        d = fisher_rao_distance(x, c[assign])
        self.centroids = c
        # 2-D Riemannian normal: E[d^2] = 2 s^2 for a small spread s (Pennec 2006)
        self.spread = np.array(
            [np.sqrt(max(np.mean(d[assign == j] ** 2) / 2.0, 1e-6)) for j in range(k)]
        )
        self.prior = np.array([(assign == j).mean() for j in range(k)]) + 1e-3
        self.prior /= self.prior.sum()
        self.speed_mean = np.array(
            [logs[assign == j].mean() if (assign == j).any() else logs.mean() for j in range(k)]
        )
        self.speed_sd = np.array(
            [
                max(logs[assign == j].std(), 0.1) if (assign == j).sum() > 1 else 1.0
                for j in range(k)
            ]
        )
        return self

    def distances(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Geodesic distance of each point (n, 2) to each centroid -> (n, k); NaN rows stay NaN."""
        if not self.centroids.size:
            raise ValueError("RegimeClassifier is not fitted")
        out = np.full((len(points), self.n_regimes), np.nan)
        ok = np.isfinite(points).all(axis=1)
        out[ok] = fisher_rao_distance(points[ok][:, None, :], self.centroids[None, :, :])
        return out

    def probabilities(
        self, points: NDArray[np.float64], speed: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """P(regime) per row (n, k); a row without features gets the prior."""
        d = self.distances(points)
        s2 = self.spread**2
        logp = np.log(self.prior) - np.log(s2) - d**2 / (2.0 * s2)
        with np.errstate(divide="ignore", invalid="ignore"):
            zs = (np.log(speed)[:, None] - self.speed_mean) / self.speed_sd
        speed_term = -0.5 * zs**2 - np.log(self.speed_sd)
        logp = logp + np.where(np.isfinite(speed_term), speed_term, 0.0)
        logp = np.where(np.isfinite(d), logp, np.log(self.prior))
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        out: NDArray[np.float64] = p / p.sum(axis=1, keepdims=True)
        return out


class VolatilitySurface3D:
    """A volatility surface as a height field ``z = vol(x, y)`` with its induced metric.

    Build it with :meth:`from_returns` (realised vol: ``x = ln(horizon / 21 days)``,
    ``y`` = time in months of 21 days, most recent last) or :meth:`from_chain` (implied vol:
    ``x = ln(strike / spot)``, ``y`` = expiry in years). ``z`` is an annualised vol (0.2 = 20 %).
    """

    def __init__(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        z: NDArray[np.float64],
        kind: str = "realised",
    ) -> None:
        if kind not in ("realised", "implied"):
            raise ValueError(f"kind must be 'realised' or 'implied', got {kind!r}")
        self.x, self.y, self.z, self.kind = x, y, z, kind
        self.metric = HeightFieldMetric(x, y, z)

    @classmethod
    def from_returns(
        cls, returns: Any, horizons: tuple[int, ...] = (5, 10, 21, 63), n_times: int = 21
    ) -> VolatilitySurface3D:
        """Realised vol over the given horizons (days) at each of the last ``n_times`` days.

        Realised vol is the root mean square of the daily log returns (not demeaned: a steady
        slide is volatility to a holder), annualised with 252 days.
        """
        r = pd.Series(as_returns(returns, min_rows=max(horizons) + n_times))
        if len(horizons) < 4 or n_times < 4:
            raise ValueError("need at least 4 horizons and 4 times for a bicubic surface")
        z = np.stack(
            [np.sqrt((r * r).rolling(h).mean() * 252.0).to_numpy()[-n_times:] for h in horizons]
        )
        x = np.log(np.asarray(horizons, dtype=np.float64) / 21.0)
        y = np.arange(n_times, dtype=np.float64) / 21.0
        return cls(x, y, np.maximum(z, 1e-4), kind="realised")

    @classmethod
    def from_chain(
        cls, chain: pd.DataFrame, n_moneyness: int = 9, max_abs_moneyness: float = 0.2
    ) -> VolatilitySurface3D:
        """Implied vol of one chain snapshot on a common log-moneyness grid.

        ``chain`` has columns ``strike, expiration, iv, underlying_price, quote_date`` (and
        ``type``: then only out-of-the-money quotes are used, puts below spot, calls above), or
        is a feed snapshot (``CHAIN_COLUMNS``, spot and time in ``attrs``).
        Expiries with >= 5 quoted strikes within ``max_abs_moneyness`` are kept; each smile is
        interpolated linearly onto the moneyness range they share.
        """
        if "expiration" not in chain.columns and "expiry" in chain.columns:
            # the feed's layout (v28quant.data.base.CHAIN_COLUMNS): spot and time in attrs
            as_of = pd.Timestamp(chain.attrs.get("as_of", pd.NaT))
            if as_of.tzinfo is not None:
                as_of = as_of.tz_convert("America/New_York").tz_localize(None)
            chain = chain.rename(columns={"expiry": "expiration"}).assign(
                underlying_price=chain.attrs.get("underlying_price", np.nan),
                quote_date=as_of.normalize(),
            )
        need = {"strike", "expiration", "iv", "underlying_price", "quote_date"}
        if need - set(chain.columns):
            raise ValueError(f"chain lacks columns {sorted(need - set(chain.columns))}")
        c = chain.dropna(subset=["iv", "underlying_price"])
        c = c[c["iv"] > 0]
        k = np.log(c["strike"] / c["underlying_price"])
        t = (pd.to_datetime(c["expiration"]) - pd.to_datetime(c["quote_date"])).dt.days / 365.0
        keep = (t > 0) & (k.abs() <= max_abs_moneyness)
        if "type" in c.columns:
            keep &= np.where(k < 0, c["type"] == "put", c["type"] == "call")
        c = c.assign(t=t, k=k)[keep]
        slices = {
            float(tt): g.groupby("k")["iv"].mean()
            for tt, g in c.groupby("t")
            if g["k"].nunique() >= 5
        }
        if len(slices) < 4:
            raise ValueError(f"need >= 4 expiries with 5 quoted strikes, got {len(slices)}")
        lo = max(float(v.index.min()) for v in slices.values())
        hi = min(float(v.index.max()) for v in slices.values())
        if not hi > lo:
            raise ValueError("the expiries share no range of moneyness")
        x = np.linspace(lo, hi, n_moneyness)
        ts = sorted(slices)
        z = np.column_stack([np.interp(x, slices[tt].index, slices[tt].to_numpy()) for tt in ts])
        return cls(x, np.asarray(ts), z, kind="implied")

    def gaussian_curvature(self) -> NDArray[np.float64]:
        """Gaussian curvature of the surface at every grid node, shape (len(x), len(y))."""
        xx, yy = np.meshgrid(self.x, self.y, indexing="ij")
        out: NDArray[np.float64] = np.asarray(
            self.metric.gaussian_curvature(np.stack([xx, yy], axis=-1))
        )
        return out

    def term_slope(self) -> float:
        """Short-dated minus long-dated vol now (vol points; > 0: inverted term structure).

        Realised surface: shortest minus longest horizon on the last day. Chain surface: the
        at-the-money smile point of the nearest minus the farthest expiry.
        """
        if self.kind == "realised":
            return float(self.z[0, -1] - self.z[-1, -1])
        atm = int(np.argmin(np.abs(self.x)))
        return float(self.z[atm, 0] - self.z[atm, -1])


class ManifoldRegimeDetector:
    """Regimes from the Fisher-Rao path of rolling (mean, vol); same API as the HMM detector.

    Parameters
    ----------
    n_regimes : int
        2, 3 or 4 regimes.
    window, lag : int
        See :class:`GeodesicPathTracker`.
    """

    source = "manifold"

    def __init__(self, n_regimes: int = 3, window: int = 21, lag: int = 5) -> None:
        self.tracker = GeodesicPathTracker(window, lag)
        self.classifier = RegimeClassifier(n_regimes)
        self.labels = self.classifier.labels

    def features(self, returns: Any) -> pd.DataFrame:
        """Per row: ``mu``, ``sigma`` (daily), ``speed``, ``curvature``, ``dist_<label>``."""
        p = self.tracker.path(returns)
        cols: dict[str, NDArray[np.float64]] = {
            "mu": p[:, 0],
            "sigma": p[:, 1],
            "speed": self.tracker.speed(p),
            "curvature": self.tracker.curvature(p),
        }
        if self.classifier.centroids.size:
            d = self.classifier.distances(p)
            for j, lab in enumerate(self.labels):
                cols[f"dist_{lab}"] = d[:, j]
        index = returns.index if isinstance(returns, pd.Series) else None
        return pd.DataFrame(cols, index=index)

    def fit(self, returns: Any) -> ManifoldRegimeDetector:
        """Fit the regime centroids on daily log returns (1-D array or Series, oldest first)."""
        p = self.tracker.path(returns)
        self.classifier.fit(p, self.tracker.speed(p))
        return self

    def probabilities(self, returns: Any) -> pd.DataFrame:
        """P(regime) per row from the features at rows <= t (causal), one column per label."""
        p = self.tracker.path(returns)
        prob = self.classifier.probabilities(p, self.tracker.speed(p))
        index = returns.index if isinstance(returns, pd.Series) else None
        return pd.DataFrame(prob, columns=list(self.labels), index=index)

    def states(self, returns: Any) -> NDArray[np.str_]:
        """Most likely label per row (causal)."""
        p = self.probabilities(returns)
        out: NDArray[np.str_] = np.asarray(p.columns)[p.to_numpy().argmax(axis=1)].astype(str)
        return out

    def predict(self, returns: Any, ts: datetime | None = None) -> RegimeState:
        """Return the regime of the last row, stamped with the data time of that row."""
        row = self.probabilities(returns).iloc[-1]
        probs = {str(k): float(v) for k, v in row.items()}
        label = max(probs, key=probs.__getitem__)
        return RegimeState(label, probs, self.source, data_time(returns, ts))

    def surface(self, returns: Any) -> VolatilitySurface3D:
        """Build the realised-vol surface of the returns (see :class:`VolatilitySurface3D`)."""
        return VolatilitySurface3D.from_returns(returns)
