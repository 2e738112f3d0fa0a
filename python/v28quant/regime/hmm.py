"""Gaussian hidden Markov model of market regimes (hmmlearn's ``GaussianHMM``).

Features per day: the daily log return and the log of its EWMA realised volatility (plus any
extra causal columns, e.g. log VIX or the VIX term structure when the feed has them),
standardised with the training sample's mean and deviation. The HMM (full covariances, an
identity-scaled prior on each) is fitted from several random starts, after the EWMA's warm-up
rows; the start with the highest log-likelihood among those whose every state holds at least
d + 1 rows is kept (:meth:`HmmRegimeDetector.fit`). A refit may also start from the previous
fit's parameters (a warm start, beside the random ones): the regimes then move only when the
new data's likelihood prefers another optimum, not with the luck of one random start.

Labels: the fitted states are ordered by the volatility of returns in each state and named from
:data:`~v28quant.regime.REGIME_LABELS` in that order (``bull_quiet`` the calmest,
``bear_volatile`` / ``crisis`` the most volatile); each state's fitted mean and volatility are
reported beside its name (:meth:`HmmRegimeDetector.summary`). On a refit the new states are
matched to the previous fit's (minimum total Bhattacharyya distance between their Gaussians,
Hungarian algorithm), so a regime keeps its name whatever order hmmlearn returns its states in.

States are *filtered*: the probability of each state at day t given days <= t (the forward
algorithm), never the smoothed or Viterbi path, which look ahead.

References
----------
L. R. Rabiner (1989), "A tutorial on hidden Markov models and selected applications in speech
recognition", Proc. IEEE 77(2) (forward algorithm, eq. 19-21).
J. D. Hamilton (1989), "A new approach to the economic analysis of nonstationary time series and
the business cycle", Econometrica 57(2) (filtered regime probabilities).
A. Bhattacharyya (1943), Bull. Calcutta Math. Soc. 35 (distance between distributions).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from hmmlearn.hmm import GaussianHMM
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from v28quant.ml.model_store import ModelMetadata, ModelStore
from v28quant.regime._series import REGIME_LABELS, as_returns, ewma_log_vol, returns_time
from v28quant.signals import RegimeState

log = logging.getLogger(__name__)

#: Name under which the detector is kept in the model store.
STORE_NAME = "hmm_regime"

#: Scale of the inverse-Wishart prior on each state's covariance, in standardised units, as a
#: multiple of the identity. hmmlearn's scalar default adds 0.01 to *every* entry of a full
#: matrix (rank one), so a state left with one row got a singular covariance and every other
#: row a log density of -inf; the identity keeps such a state's covariance positive definite.
COVARS_PRIOR = 1e-2


class BatchedGaussianHMM(GaussianHMM):  # type: ignore[misc]  # hmmlearn is untyped
    """hmmlearn's ``GaussianHMM`` with the full-covariance state densities of all states at once.

    hmmlearn computes ``log N(x_t; mu_k, Sigma_k)`` state by state through scipy's validated
    Cholesky and triangular solves, whose call overhead dominates an EM step on a year or two
    of days; here one batched Cholesky factorisation and solve serve every state. Same
    formula (log density from the Cholesky factor), the same fits to 1e-11 in
    log-likelihood and the same EM iterations on 105 real fits, 1.7x faster. A covariance
    that is not positive definite goes to hmmlearn's own code (which adds ``min_covar``).
    """

    def _compute_log_likelihood(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.covariance_type != "full":
            return super()._compute_log_likelihood(X)  # type: ignore[no-any-return]
        try:
            chol = np.linalg.cholesky(self.covars_)  # (k, d, d), lower
        except np.linalg.LinAlgError:
            return super()._compute_log_likelihood(X)  # type: ignore[no-any-return]
        diff = (X[None, :, :] - self.means_[:, None, :]).transpose(0, 2, 1)  # (k, d, n)
        y = np.linalg.solve(chol, diff)
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        d = X.shape[1]
        log_pdf = -0.5 * ((y * y).sum(axis=1) + d * np.log(2.0 * np.pi) + log_det[:, None])
        return np.ascontiguousarray(log_pdf.T)  # (n, k)


class StartParams(NamedTuple):
    """Parameters EM starts from, in the standardised units of the rows it is fitted on."""

    startprob: NDArray[np.float64]
    transmat: NDArray[np.float64]
    means: NDArray[np.float64]
    covars: NDArray[np.float64]


def bhattacharyya(
    m1: NDArray[np.float64],
    c1: NDArray[np.float64],
    m2: NDArray[np.float64],
    c2: NDArray[np.float64],
) -> float:
    """Bhattacharyya distance between N(m1, c1) and N(m2, c2)."""
    c = 0.5 * (c1 + c2)
    d = m1 - m2
    _, ld = np.linalg.slogdet(c)
    _, l1 = np.linalg.slogdet(c1)
    _, l2 = np.linalg.slogdet(c2)
    return float(0.125 * d @ np.linalg.solve(c, d) + 0.5 * (ld - 0.5 * (l1 + l2)))


def _log_step(log_p: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Normalised log forward variables from unnormalised ones ``log_p``, floored at 1e-300.

    Where ``log_p`` has no finite value (a row no state can emit, or a NaN in the model) the
    row's own emission densities ``b`` alone restart the recursion, so one bad row cannot turn
    every later one into NaN.
    """
    out: NDArray[np.float64] = np.maximum(log_p - logsumexp(log_p), np.log(1e-300))
    if not np.isfinite(out).all():
        out = np.log(np.maximum(b / b.sum(), 1e-300))
    return out


def _start_name(start: StartParams | int) -> str:
    return "warm" if isinstance(start, StartParams) else f"seeded {start}"


def match_labels(
    previous: tuple[NDArray[np.float64], NDArray[np.float64], tuple[str, ...]],
    means: NDArray[np.float64],
    covars: NDArray[np.float64],
) -> tuple[str, ...]:
    """Names of new states: each takes the name of the previous state it is matched to.

    ``previous`` is (means (k, d), covariances (k, d, d), names), all in the same feature units
    as ``means`` / ``covars``; the matching minimises the summed Bhattacharyya distance.
    """
    pm, pc, names = previous
    cost = np.array(
        [
            [bhattacharyya(means[i], covars[i], pm[j], pc[j]) for j in range(len(pm))]
            for i in range(len(means))
        ]
    )
    rows, cols = linear_sum_assignment(cost)
    out = [""] * len(means)
    for i, j in zip(rows, cols, strict=True):
        out[i] = names[j]
    return tuple(out)


class HmmRegimeDetector:
    """Regimes from a Gaussian HMM on daily returns and realised volatility.

    Parameters
    ----------
    n_states : int
        2, 3 or 4 regimes (labels in :data:`~v28quant.regime.REGIME_LABELS`).
    seed : int
        Seed of the first random start; start k uses ``seed + k``.
    n_starts : int
        Random starts; the best log-likelihood is kept (see :meth:`fit`).
    vol_halflife : float
        Half-life in days of the EWMA realised volatility feature.
    n_iter : int
        EM iterations per start.
    """

    source = "hmm"

    def __init__(
        self,
        n_states: int = 3,
        seed: int = 0,
        n_starts: int = 5,
        vol_halflife: float = 5.0,
        n_iter: int = 200,
    ) -> None:
        if n_states not in REGIME_LABELS:
            raise ValueError(f"n_states must be one of {sorted(REGIME_LABELS)}, got {n_states}")
        if n_starts < 1:
            raise ValueError(f"n_starts must be >= 1, got {n_starts}")
        if not vol_halflife > 0:
            raise ValueError(f"vol_halflife must be > 0, got {vol_halflife}")
        self.n_states, self.seed, self.n_starts = n_states, seed, n_starts
        self.vol_halflife, self.n_iter = float(vol_halflife), n_iter
        self.model: GaussianHMM | None = None
        self.labels: tuple[str, ...] = ()
        self.loglik = float("nan")
        self.start_logliks: list[float] = []
        self._center = np.zeros(0)
        self._scale = np.ones(0)
        self._cache: tuple[GaussianHMM, bytes, NDArray[np.float64]] | None = None

    @property
    def warmup_rows(self) -> int:
        """Leading rows left out of a fit: the EWMA volatility has not settled there.

        Row 0's volatility is one squared return (log of a near-zero return is a far outlier,
        which a start then spent a whole state on); after one half-life the oldest return
        weighs half of the newest.
        """
        return int(np.ceil(self.vol_halflife))

    # -- features ----------------------------------------------------------------------------

    def features(self, returns: Any, extra: Any = None) -> NDArray[np.float64]:
        """Raw features (n, 2 + k): log return, log EWMA vol (annualised), extra columns."""
        r = as_returns(returns)
        cols = [r, ewma_log_vol(r, self.vol_halflife)]
        if extra is not None:
            ex = np.asarray(extra, dtype=np.float64).reshape(len(r), -1)
            if not np.isfinite(ex).all():
                raise ValueError("extra features must be finite")
            cols.extend(ex.T)
        return np.column_stack(cols)

    def _standardised(self, returns: Any, extra: Any) -> NDArray[np.float64]:
        x = self.features(returns, extra)
        if x.shape[1] != self._center.size:
            raise ValueError(
                f"detector was fitted on {self._center.size} features, got {x.shape[1]}"
            )
        return (x - self._center) / self._scale

    # -- fitting -----------------------------------------------------------------------------

    def fit(
        self, returns: Any, extra: Any = None, *, warm_start: HmmRegimeDetector | None = None
    ) -> HmmRegimeDetector:
        """Fit on daily log returns (1-D array or Series, oldest first); ``extra`` (n, k) optional.

        The first :attr:`warmup_rows` rows are left out. ``warm_start``, a fitted detector of the
        same states and features (the last fit), adds a start from its parameters, mapped to
        this sample's standardisation, ahead of the random starts. Of the starts, one whose
        every state holds at least d + 1 rows (d features) beats any that does not; then the
        highest log-likelihood wins. Keeps the previous fit's labels for the states that match
        it (see the module docstring).
        """
        x = self.features(returns, extra)
        warmup = self.warmup_rows
        if len(x) - warmup < 50 * self.n_states:
            raise ValueError(
                f"returns needs at least {50 * self.n_states + warmup} rows "
                f"({warmup} of EWMA warm-up), got {len(x)}"
            )
        x = x[warmup:]
        center, scale = x.mean(axis=0), x.std(axis=0)
        if (scale <= 0).any():
            raise ValueError("a feature is constant over the sample (returns all equal?)")
        z = (x - center) / scale
        best: GaussianHMM | None = None
        best_key = (False, -np.inf)
        self.start_logliks = []
        # A state holding fewer rows than a full covariance needs (d + 1) is one outlier's
        # state, and its volatility (hence its label) means nothing: such a start is kept only
        # if no start, including up to n_starts extra seeds, avoids it.
        need = z.shape[1] + 1
        warm = self._carried_params(warm_start, center, scale)
        # a start is the warm start's parameters or a random start's seed
        starts: list[StartParams | int] = [warm] if warm is not None else []
        n_first = len(starts) + self.n_starts
        starts += range(self.seed, self.seed + 2 * self.n_starts)
        for k, start in enumerate(starts):
            if k >= n_first and best_key[0]:
                break
            try:
                m, ll, post = self._fit_start(z, start)
            except (ValueError, np.linalg.LinAlgError) as exc:
                log.warning("hmm start %s failed: %s", _start_name(start), exc)
                continue
            self.start_logliks.append(ll)
            if not np.isfinite(ll):
                continue
            key = (bool(post.sum(axis=0).min() >= need), ll)
            if best is None or key > best_key:
                best, best_key, self.loglik = m, key, ll
        if best is None:
            raise ValueError(f"none of the {2 * self.n_starts} HMM starts converged")
        if not best_key[0]:
            log.warning(
                "hmm: every start left a state with fewer than %d rows; the best is kept", need
            )
        previous = self._params_raw() if self.model is not None else None
        prev_labels = self.labels
        self.model, self._center, self._scale = best, center, scale
        means, covars = self._params_raw()
        if previous is not None and previous[0].shape == means.shape:
            self.labels = match_labels((*previous, prev_labels), means, covars)
        else:
            order = np.argsort(np.sqrt(covars[:, 0, 0]))
            names = REGIME_LABELS[self.n_states]
            lab = [""] * self.n_states
            for rank, state in enumerate(order):
                lab[state] = names[rank]
            self.labels = tuple(lab)
        return self

    def _carried_params(
        self,
        previous: HmmRegimeDetector | None,
        center: NDArray[np.float64],
        scale: NDArray[np.float64],
    ) -> StartParams | None:
        """Return the ``previous`` fit's parameters in this sample's standardised units.

        The sample is standardised by ``center`` and ``scale``; None where there is no previous
        fit or its states or features differ.
        """
        if previous is None or previous.model is None:
            return None
        same_features = previous._center.size == center.size
        same_vol = previous.vol_halflife == self.vol_halflife
        if previous.n_states != self.n_states or not (same_features and same_vol):
            return None
        means, covars = previous._params_raw()
        return StartParams(
            startprob=np.array(previous.model.startprob_, dtype=np.float64),
            transmat=np.array(previous.model.transmat_, dtype=np.float64),
            means=(means - center) / scale,
            covars=covars / (scale[None, :, None] * scale[None, None, :]),
        )

    def _fit_start(
        self, z: NDArray[np.float64], start: StartParams | int
    ) -> tuple[GaussianHMM, float, NDArray[np.float64]]:
        """One EM start on ``z``: the model, its log-likelihood and its state posteriors.

        ``start`` is the parameters EM starts from, or the seed of hmmlearn's random
        initialisation (k-means means, the sample covariance, uniform probabilities).

        EM runs on hmmlearn's scaled recursions (Rabiner 1989, sec. V.A), about twice as fast
        as its log-space ones on a year or two of days and the same fit to 1e-9 in
        log-likelihood; where every state's density of some row underflows, the start is rerun
        in log space.
        """
        try:
            return self._em(z, start, "scaling")
        except ValueError as exc:
            if "underflow" not in str(exc):
                raise
            log.info(
                "hmm start %s underflowed in scaled EM, rerun in log space", _start_name(start)
            )
            return self._em(z, start, "log")

    def _em(
        self, z: NDArray[np.float64], start: StartParams | int, implementation: str
    ) -> tuple[GaussianHMM, float, NDArray[np.float64]]:
        warm = isinstance(start, StartParams)
        m = BatchedGaussianHMM(
            n_components=self.n_states,
            covariance_type="full",
            n_iter=self.n_iter,
            tol=1e-4,
            min_covar=1e-4,
            covars_prior=COVARS_PRIOR * np.eye(z.shape[1]),
            random_state=None if warm else start,
            init_params="" if warm else "stmc",
            implementation=implementation,
        )
        if isinstance(start, StartParams):  # EM climbs from these, not from hmmlearn's init
            m.startprob_, m.transmat_ = start.startprob, start.transmat
            m.means_, m.covars_ = start.means, start.covars
        m.fit(z)
        ll, post = m.score_samples(z)
        return m, float(ll), post

    def _params_raw(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """State means (k, d) and covariances (k, d, d) in raw feature units."""
        m = self._require()
        s = self._scale
        means = m.means_ * s + self._center
        covars = m.covars_ * s[None, :, None] * s[None, None, :]
        return np.asarray(means), np.asarray(covars)

    def _require(self) -> GaussianHMM:
        if self.model is None:
            raise ValueError("HmmRegimeDetector is not fitted")
        return self.model

    # -- inference ---------------------------------------------------------------------------

    def filtered_probabilities(self, returns: Any, extra: Any = None) -> pd.DataFrame:
        """P(state at t | rows <= t) per row (forward algorithm), one column per label.

        The last call's forward variables are kept: a call whose input starts with the same rows
        (the next cycle on the same history, or one more day) only runs the new rows.
        """
        m = self._require()
        z = self._standardised(returns, extra)
        alpha = self._forward(m, z)
        index = returns.index if isinstance(returns, pd.Series) else None
        return pd.DataFrame(np.exp(alpha), columns=list(self.labels), index=index)

    def _forward(self, m: GaussianHMM, z: NDArray[np.float64]) -> NDArray[np.float64]:
        """Normalised log forward variables (Rabiner 1989, eq. 19-21) of the rows ``z``."""
        logb = np.column_stack(
            [
                multivariate_normal.logpdf(z, m.means_[k], m.covars_[k], allow_singular=True)
                for k in range(self.n_states)
            ]
        ).reshape(len(z), self.n_states)
        # Scaled forward recursion in probability space (Rabiner 1989, sec. V.A): each row's
        # emission densities are divided by their maximum and each alpha by its sum, so
        # nothing underflows; the logs of the normalised alphas are returned.
        b = np.exp(logb - logb.max(axis=1, keepdims=True))
        a_mat = m.transmat_
        alpha = np.empty_like(logb)
        start = 0
        cached = self._cache
        if cached is not None and cached[0] is m and 0 < len(cached[2]) <= len(z):
            n = len(cached[2])
            if hashlib.blake2b(z[:n].tobytes(), digest_size=16).digest() == cached[1]:
                alpha[:n], start = cached[2], n
        prob = np.exp(alpha[start - 1]) if start else m.startprob_ * b[0]
        if not start:
            total = prob.sum()
            if total > 0:
                prob = prob / total
                alpha[0] = np.log(np.maximum(prob, 1e-300))
            else:  # the start mass sits on states the first row rules out beyond double range
                with np.errstate(divide="ignore", invalid="ignore"):
                    alpha[0] = _log_step(np.log(m.startprob_) + logb[0], b[0])
                prob = np.exp(alpha[0])
            start = 1
        for t in range(start, len(z)):
            prob = (prob @ a_mat) * b[t]
            total = prob.sum()
            if total > 0:
                prob = prob / total
                alpha[t] = np.log(np.maximum(prob, 1e-300))
            else:  # the same step in log space (Rabiner 1989, eq. 20) where it underflows
                with np.errstate(divide="ignore", invalid="ignore"):
                    la = logsumexp(np.log(a_mat) + alpha[t - 1][:, None], axis=0)
                    alpha[t] = _log_step(la + logb[t], b[t])
                prob = np.exp(alpha[t])
        self._cache = (m, hashlib.blake2b(z.tobytes(), digest_size=16).digest(), alpha.copy())
        return alpha

    def states(self, returns: Any, extra: Any = None) -> NDArray[np.str_]:
        """Most likely label per row from the filtered probabilities (causal)."""
        p = self.filtered_probabilities(returns, extra)
        labels: NDArray[np.str_] = np.asarray(p.columns)[p.to_numpy().argmax(axis=1)].astype(str)
        return labels

    def predict(self, returns: Any, extra: Any = None, ts: datetime | None = None) -> RegimeState:
        """Return the regime of the last row, stamped with the data time of that row."""
        row = self.filtered_probabilities(returns, extra).iloc[-1]
        probs = {str(k): float(v) for k, v in row.items()}
        total = sum(probs.values())
        probs = {k: v / total for k, v in probs.items()}
        return RegimeState(
            max(probs, key=probs.__getitem__), probs, self.source, returns_time(returns, ts)
        )

    def forecast_return(self, returns: Any, extra: Any = None) -> tuple[float, float]:
        """Mean and standard deviation of the next day's log return (one-step prediction).

        The next state's distribution is the last filtered one times the transition matrix;
        the return is then a mixture of the states' normals. Not the current state's mean: a
        state that lasts a day or two (a high-volatility up or down day) says little about the
        next day.
        """
        m = self._require()
        filt = self.filtered_probabilities(returns, extra).to_numpy()[-1]
        nxt = filt @ m.transmat_
        means, covars = self._params_raw()
        mu, var = means[:, 0], covars[:, 0, 0]
        mean = float(nxt @ mu)
        return mean, float(np.sqrt(max(float(nxt @ (var + mu**2)) - mean**2, 1e-18)))

    def summary(self) -> pd.DataFrame:
        """Tabulate per label: daily mean return, annual vol, expected days, stationary share."""
        m = self._require()
        means, covars = self._params_raw()
        evals, evecs = np.linalg.eig(m.transmat_.T)
        pi = np.real(evecs[:, np.argmin(np.abs(evals - 1.0))])
        pi = pi / pi.sum()
        return pd.DataFrame(
            {
                "mean_return": means[:, 0],
                "vol_annual": np.sqrt(covars[:, 0, 0] * 252.0),
                "expected_days": 1.0 / np.maximum(1.0 - np.diag(m.transmat_), 1e-12),
                "stationary": pi,
            },
            index=pd.Index(self.labels, name="label"),
        )

    # -- persistence -------------------------------------------------------------------------

    def save(self, store: ModelStore, *, train_start: Any, train_end: Any) -> ModelMetadata:
        """Keep the fitted detector in the model store (journaled there when it has a journal)."""
        self._require()
        return store.save(
            self,
            STORE_NAME,
            train_start=train_start,
            train_end=train_end,
            features=["log_return", "log_ewma_vol"][: self._center.size]
            + [f"extra_{i}" for i in range(self._center.size - 2)],
            validation_scores={"loglik": self.loglik},
            params={
                "n_states": self.n_states,
                "seed": self.seed,
                "n_starts": self.n_starts,
                "vol_halflife": self.vol_halflife,
                "labels": list(self.labels),
            },
        )

    @classmethod
    def load(cls, store: ModelStore, version: str | None = None) -> HmmRegimeDetector:
        """Load the stored detector (latest version unless ``version``)."""
        obj, _ = store.load(STORE_NAME, version)
        if not isinstance(obj, cls):
            raise ValueError(f"{STORE_NAME} in {store.root} is a {type(obj).__name__}")
        return obj
