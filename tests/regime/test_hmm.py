"""HmmRegimeDetector against planted regimes and hmmlearn's own posterior.

Planted regimes are recovered; the filtered (causal) probabilities equal hmmlearn's
forward-backward posterior at the last row of each prefix; labels are stable across refits; the
detector round-trips through the model store; bad input gets a clear error.
"""

from __future__ import annotations

import copy
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hmmlearn.hmm import GaussianHMM
from numpy.typing import NDArray
from v28quant.ml.model_store import ModelStore
from v28quant.regime.hmm import HmmRegimeDetector, match_labels

MU = np.array([0.0006, -0.001])  # daily mean of the calm and the stressed regime
Fitted = tuple[HmmRegimeDetector, NDArray[np.float64], NDArray[np.int64]]
SD = np.array([0.007, 0.025])  # daily vol: about 11 % and 40 % a year


def planted(
    n: int = 3000, stay: float = 0.99, seed: int = 1
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    s = np.zeros(n, dtype=np.int64)
    for t in range(1, n):
        s[t] = s[t - 1] if rng.random() < stay else 1 - s[t - 1]
    return rng.normal(MU[s], SD[s]), s


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    r, s = planted()
    return HmmRegimeDetector(n_states=2, seed=0).fit(r), r, s


def test_recovers_two_planted_regimes(fitted: Fitted) -> None:
    det, r, s = fitted
    truth = np.where(s == 0, "bull_quiet", "bear_volatile")
    accuracy = float((det.states(r) == truth).mean())
    print(f"HMM label accuracy on two planted regimes (filtered, causal): {accuracy:.4f}")
    assert accuracy >= 0.9
    summ = det.summary()
    # the fitted state parameters are the planted ones (3000 days: a few standard errors)
    assert summ.loc["bull_quiet", "vol_annual"] == pytest.approx(SD[0] * np.sqrt(252), rel=0.1)
    assert summ.loc["bear_volatile", "vol_annual"] == pytest.approx(SD[1] * np.sqrt(252), rel=0.1)


def test_filtered_probabilities_match_hmmlearn_on_each_prefix(fitted: Fitted) -> None:
    # The smoothed posterior at the LAST row of a prefix is the filtered probability there
    # (Rabiner 1989): hmmlearn's forward-backward on r[:t+1] is an independent reference.
    det, r, _ = fitted
    ours = det.filtered_probabilities(r).to_numpy()
    z = (det.features(r) - det._center) / det._scale
    assert det.model is not None
    for t in (0, 1, 10, 500, 1777, len(r) - 1):
        ref = det.model.predict_proba(z[: t + 1])[-1]
        np.testing.assert_allclose(ours[t], ref, atol=1e-9, err_msg=f"row {t}")


def test_states_are_causal(fitted: Fitted) -> None:
    det, r, _ = fitted
    full = det.states(r)
    for t in (100, 1000, 2500):
        assert (det.states(r[:t]) == full[:t]).all(), (
            f"row < {t} changed when later rows were added"
        )


def test_labels_stable_across_refits(fitted: Fitted) -> None:
    det, r, _ = fitted
    first = det.states(r)
    again = HmmRegimeDetector(n_states=2, seed=0).fit(r[:2000])
    again.fit(r)  # refit on the longer history, matched to the first fit
    other_seed = HmmRegimeDetector(n_states=2, seed=7, n_starts=2).fit(r)
    assert (again.states(r) == first).mean() > 0.99
    assert (other_seed.states(r) == first).mean() > 0.99


def test_matching_follows_the_previous_fit_not_the_state_order() -> None:
    rng = np.random.default_rng(0)
    means = rng.normal(size=(3, 2))
    covs = np.stack([np.eye(2) * v for v in (0.5, 1.0, 2.0)])
    names = ("bull_quiet", "sideways", "bear_volatile")
    perm = np.array([2, 0, 1])  # hmmlearn returned the same states in another order
    got = match_labels((means, covs, names), means[perm] + 0.01, covs[perm])
    assert got == tuple(names[i] for i in perm)


def test_predict_stamps_the_data_time(fitted: Fitted) -> None:
    det, r, _ = fitted
    idx = pd.bdate_range("2010-01-04", periods=len(r))
    state = det.predict(pd.Series(r, index=idx))
    close = datetime.combine(idx[-1].date(), time(16), ZoneInfo("America/New_York"))
    assert state.ts == close
    assert state.source == "hmm"
    assert state.label == det.states(r)[-1]
    assert sum(state.probabilities.values()) == pytest.approx(1.0)


def test_three_states_and_extra_features() -> None:
    r, _ = planted(2000, seed=3)
    vix_like = np.log(pd.Series(np.abs(r)).rolling(5, min_periods=1).mean().to_numpy() + 1e-3)
    det = HmmRegimeDetector(n_states=3, seed=0, n_starts=2).fit(r, extra=vix_like)
    assert sorted(det.labels) == ["bear_volatile", "bull_quiet", "sideways"]
    vols = det.summary()["vol_annual"]
    assert vols["bull_quiet"] < vols["sideways"] < vols["bear_volatile"]
    assert det.states(r, extra=vix_like).shape == (2000,)
    with pytest.raises(ValueError, match="fitted on 3 features"):
        det.states(r)


def test_round_trip_through_the_model_store(fitted: Fitted, tmp_path: Path) -> None:
    det, r, _ = fitted
    store = ModelStore(tmp_path)
    meta = det.save(store, train_start="2000-01-03", train_end="2011-12-30")
    back = HmmRegimeDetector.load(store)
    assert meta.params["labels"] == list(det.labels)
    assert (back.states(r) == det.states(r)).all()


def test_bad_input_is_named() -> None:
    r, _ = planted(500)
    with pytest.raises(ValueError, match="n_states"):
        HmmRegimeDetector(n_states=5)
    with pytest.raises(ValueError, match="finite, got nan at index 7"):
        HmmRegimeDetector(n_states=2).fit(np.where(np.arange(500) == 7, np.nan, r))
    with pytest.raises(ValueError, match="at least 105 rows"):
        HmmRegimeDetector(n_states=2).fit(r[:60])
    with pytest.raises(ValueError, match="not fitted"):
        HmmRegimeDetector().states(r)


def test_the_forward_cache_changes_no_number(fitted: Fitted) -> None:
    det, r, _ = fitted
    det.filtered_probabilities(r[:1500])  # primes the cache with a prefix
    cached = det.filtered_probabilities(r).to_numpy()
    det._cache = None
    fresh = det.filtered_probabilities(r).to_numpy()
    np.testing.assert_array_equal(cached, fresh)
    changed = r.copy()
    changed[100] += 0.01  # same length, different history: the cache must not be used
    det.filtered_probabilities(r)
    np.testing.assert_array_equal(
        det.filtered_probabilities(changed).to_numpy(),
        _uncached(det).filtered_probabilities(changed).to_numpy(),
    )


def _uncached(det: HmmRegimeDetector) -> HmmRegimeDetector:
    c = copy.copy(det)
    c._cache = None
    return c


@pytest.mark.parametrize(
    ("start", "trans", "obs"),
    [
        # all start mass on state 0, which row 0 rules out: the first step is 0/0
        ([1.0, 0.0], [[0.5, 0.5], [0.0, 1.0]], [60.0, 0.0, 60.0, 59.0]),
        # state 0 absorbs and holds all the (underflowed) mass when row 1 rules it out
        ([0.5, 0.5], [[1.0, 0.0], [0.5, 0.5]], [0.0, 60.0, 60.0, 0.0]),
    ],
)
def test_the_forward_pass_survives_an_underflowing_step(
    start: list[float], trans: list[list[float]], obs: list[float]
) -> None:
    # In probability space such a step divides 0 by 0. hmmlearn's log-space forward-backward
    # is the reference (the smoothed posterior at a prefix's end is the filtered one).
    from hmmlearn.hmm import GaussianHMM

    m = GaussianHMM(n_components=2, covariance_type="full", init_params="", params="")
    m.n_features = 1
    m.startprob_, m.transmat_ = np.array(start), np.array(trans)
    m.means_ = np.array([[0.0], [60.0]])
    m.covars_ = np.array([[[0.01]], [[1.0]]])  # 60 is 600 sd from state 0
    z = np.array(obs)[:, None]
    ours = np.exp(HmmRegimeDetector(n_states=2)._forward(m, z))
    assert np.isfinite(ours).all()
    for t in range(len(z)):
        ref = m.predict_proba(z[: t + 1])[-1]
        np.testing.assert_allclose(ours[t], ref, atol=1e-12, err_msg=f"row {t}")


def test_a_nan_in_the_model_does_not_poison_every_later_row() -> None:
    # A transition row of NaN (no finite step out of state 0): each such step restarts from
    # the row's own emission densities, here checked with scipy's normal pdf.
    from hmmlearn.hmm import GaussianHMM
    from scipy.stats import norm

    m = GaussianHMM(n_components=2, covariance_type="full", init_params="", params="")
    m.n_features = 1
    m.startprob_ = np.array([1.0, 0.0])
    m.transmat_ = np.array([[np.nan, np.nan], [0.5, 0.5]])
    m.means_ = np.array([[0.0], [1.0]])
    m.covars_ = np.array([[[1.0]], [[1.0]]])
    z = np.array([[0.0], [0.3], [1.2]])
    with np.errstate(invalid="ignore"):
        ours = np.exp(HmmRegimeDetector(n_states=2)._forward(m, z))
    np.testing.assert_allclose(ours[0], [1.0, 1e-300], rtol=1e-12)
    for t in (1, 2):
        dens = norm.pdf(z[t, 0], loc=[0.0, 1.0])
        np.testing.assert_allclose(ours[t], dens / dens.sum(), rtol=1e-12, err_msg=f"row {t}")


def test_the_ewma_warm_up_rows_are_left_out_of_the_fit() -> None:
    # Row 0's volatility is one squared return: a near-zero first return is a far outlier of
    # log volatility. The first ceil(half-life) rows neither enter the standardisation nor
    # form a state of their own.
    r, _ = planted(n=800, seed=3)
    r[0] = 1e-9
    det = HmmRegimeDetector(n_states=2, seed=0, n_starts=1)
    assert det.warmup_rows == 5
    x = det.features(r)
    assert x[0, 1] < x[5:, 1].min() - 5.0  # the outlier is there
    det.fit(r)
    np.testing.assert_allclose(det._center, x[5:].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(det._scale, x[5:].std(axis=0), rtol=1e-12)
    assert det.model is not None
    assert (det.model.means_[:, 1] > -3.0).all()  # no state sits on row 0
    with pytest.raises(ValueError, match=r"at least 105 rows \(5 of EWMA warm-up\), got 104"):
        det.fit(r[:104])


def test_no_state_is_spent_on_a_few_outlier_rows() -> None:
    # 250 sessions of the bundled S&P 500 history that once gave a 4-state fit a state of one
    # row at every seed tried (a singular covariance: the regime went NaN). hmmlearn's
    # posterior on our standardised features is the independent check of each state's rows.
    from hmmlearn.hmm import GaussianHMM
    from v28quant.data.samples import sample_history

    bars = sample_history().bars
    close = bars.loc[bars["symbol"] == "SP500"].sort_values("timestamp")["close"]
    r = np.diff(np.log(close.to_numpy(np.float64)))[3589 : 3589 + 250]
    for seed in range(6):
        det = HmmRegimeDetector(n_states=4, seed=seed, n_starts=1).fit(r)
        m = det.model
        assert isinstance(m, GaussianHMM)
        assert np.isfinite(det.loglik)
        for k, cov in enumerate(m.covars_):
            assert np.linalg.eigvalsh(cov).min() > 1e-4, f"seed {seed}: state {k} is singular"
        z = det._standardised(r, None)[det.warmup_rows :]
        occupancy = m.predict_proba(z).sum(axis=0)
        assert occupancy.min() >= 3.0, f"seed {seed}: rows per state {occupancy.round(1)}"
        assert np.isfinite(det.filtered_probabilities(r).to_numpy()).all()


def test_scaled_em_is_the_log_space_fit() -> None:
    # EM runs on hmmlearn's scaled recursions; its log-space recursions on the same
    # standardised rows and seed are the reference: same iterations, same fit.
    from hmmlearn.hmm import GaussianHMM
    from v28quant.data.samples import sp500_stocks
    from v28quant.regime.hmm import COVARS_PRIOR

    bars = sp500_stocks().bars
    for sym in ("AAPL", "JPM", "XOM"):
        close = bars.loc[bars["symbol"] == sym].sort_values("timestamp")["close"]
        r = np.diff(np.log(close.to_numpy(np.float64)))[-378:]
        det = HmmRegimeDetector(n_states=3, seed=0, n_starts=1).fit(r)
        assert det.model is not None
        assert det.model.implementation == "scaling"
        z = det._standardised(r, None)[det.warmup_rows :]
        ref = GaussianHMM(
            n_components=3,
            covariance_type="full",
            n_iter=det.n_iter,
            tol=1e-4,
            min_covar=1e-4,
            covars_prior=COVARS_PRIOR * np.eye(2),
            random_state=0,
            implementation="log",
        ).fit(z)
        assert det.model.monitor_.iter == ref.monitor_.iter, sym
        assert det.loglik == pytest.approx(ref.score(z), abs=1e-6), sym
        np.testing.assert_allclose(det.model.means_, ref.means_, atol=1e-8, err_msg=sym)
        np.testing.assert_allclose(det.model.covars_, ref.covars_, atol=1e-8, err_msg=sym)
        np.testing.assert_allclose(det.model.transmat_, ref.transmat_, atol=1e-8, err_msg=sym)


def test_a_start_that_underflows_in_scaled_em_is_rerun_in_log_space(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # hmmlearn's scaled forward pass raises when every state's density of a row underflows;
    # the start is then fitted in log space, to the fit a log-space detector gives.
    from hmmlearn.hmm import GaussianHMM

    r, _ = planted(n=600, seed=4)
    reference = HmmRegimeDetector(n_states=2, seed=0, n_starts=1)
    monkeypatch.setattr(reference, "_fit_start", lambda z, seed: reference._em(z, seed, "log"))
    reference.fit(r)

    def underflow(self: GaussianHMM, X: NDArray[np.float64]) -> None:
        raise ValueError("forward pass failed with underflow; consider using implementation='log'")

    monkeypatch.setattr(GaussianHMM, "_fit_scaling", underflow)
    det = HmmRegimeDetector(n_states=2, seed=0, n_starts=1).fit(r)
    assert det.model is not None
    assert det.model.implementation == "log"
    assert det.loglik == reference.loglik
    np.testing.assert_array_equal(det.model.means_, reference.model.means_)
    assert det.labels == reference.labels


def test_batched_state_densities_are_scipys_multivariate_normal() -> None:
    # scipy's multivariate normal is the reference, for 2 and 3 features; a covariance that
    # is not positive definite goes to hmmlearn's own code, which gives the same answer.
    from hmmlearn.hmm import GaussianHMM
    from scipy.stats import multivariate_normal
    from v28quant.regime.hmm import BatchedGaussianHMM

    rng = np.random.default_rng(11)
    for d in (2, 3):
        m = BatchedGaussianHMM(n_components=3, covariance_type="full")
        m.n_features = d
        m.means_ = rng.normal(size=(3, d))
        a = rng.normal(size=(3, d, d))
        m.covars_ = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(d)
        x = rng.normal(size=(50, d)) * 3.0
        want = np.column_stack(
            [multivariate_normal.logpdf(x, m.means_[k], m.covars_[k]) for k in range(3)]
        )
        np.testing.assert_allclose(m._compute_log_likelihood(x), want, rtol=1e-12, atol=1e-12)
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    m = BatchedGaussianHMM(n_components=2, covariance_type="full", min_covar=1e-3)
    ref = GaussianHMM(n_components=2, covariance_type="full", min_covar=1e-3)
    for model in (m, ref):
        model.n_features = 2
        model.means_ = np.zeros((2, 2))
        model._covars_ = np.stack([singular, np.eye(2)])  # bypass the setter's PD check
    x = rng.normal(size=(10, 2))
    np.testing.assert_array_equal(m._compute_log_likelihood(x), ref._compute_log_likelihood(x))


def _sp500_returns() -> pd.Series:
    from v28quant.data.samples import sp500_stocks

    bars = sp500_stocks().bars
    close = bars.loc[bars["symbol"] == "SP500"].set_index("timestamp")["close"].sort_index()
    return pd.Series(np.log(close)).diff().iloc[1:]


def _hmmlearn_model(det: HmmRegimeDetector) -> GaussianHMM:
    """Return hmmlearn's own GaussianHMM holding the detector's fitted parameters."""
    fitted = det.model
    assert fitted is not None
    m = GaussianHMM(n_components=det.n_states, covariance_type="full", init_params="")
    m.n_features = fitted.means_.shape[1]
    m.startprob_, m.transmat_ = fitted.startprob_, fitted.transmat_
    m.means_, m.covars_ = fitted.means_, fitted.covars_
    return m


def _raw_loglik(det: HmmRegimeDetector, r: NDArray[np.float64], rows: slice) -> float:
    """Log-likelihood of the raw feature rows ``rows`` of ``r`` under the detector's HMM.

    hmmlearn scores the standardised rows; the density of the raw rows divides by the
    standardisation's Jacobian, the product of the scales, once per row.
    """
    x = det.features(r)[rows]
    z = (x - det._center) / det._scale
    return float(_hmmlearn_model(det).score(z) - len(x) * np.log(det._scale).sum())


def test_a_warm_start_is_the_last_fit_in_the_new_samples_units() -> None:
    # With no EM iteration the warm start is the previous fit itself, re-expressed for the
    # new window's standardisation: the same HMM of the raw features, so hmmlearn gives the
    # same raw log-likelihood of any rows under both (change of variables).
    r = _sp500_returns().to_numpy()
    previous = HmmRegimeDetector(n_states=3, seed=0, n_starts=1).fit(r[-1500:-500])
    start = HmmRegimeDetector(n_states=3, seed=0, n_starts=1, n_iter=0)
    start.fit(r[-800:], warm_start=previous)
    assert start.loglik == start.start_logliks[0]  # the warm start, tried first, was kept
    assert np.abs(start._scale / previous._scale - 1.0).max() > 0.05  # the units differ
    rows = slice(-800 + start.warmup_rows, None)
    want = _raw_loglik(previous, r, rows)
    got = _raw_loglik(start, r, rows)
    print(f"raw log-likelihood of the new window: previous fit {want:.6f}, warm start {got:.6f}")
    assert got == pytest.approx(want, rel=1e-10)


def test_a_warm_started_refit_scores_at_least_the_random_start() -> None:
    # The refit of 2022-11-11 on 756 sessions of the S&P 500, one random start, once alone
    # and once beside a start from the fit of a week earlier. hmmlearn scores both fits on
    # the same standardised rows (the sample's mean and deviation, computed here).
    r = _sp500_returns()[:"2022-11-10"].to_numpy()
    week_before = HmmRegimeDetector(n_states=3, seed=0, n_starts=1).fit(r[-761:-5])
    cold = HmmRegimeDetector(n_states=3, seed=0, n_starts=1).fit(r[-756:])
    warm = HmmRegimeDetector(n_states=3, seed=0, n_starts=1)
    warm.fit(r[-756:], warm_start=week_before)
    x = cold.features(r[-756:])[cold.warmup_rows :]
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    scores = {name: _hmmlearn_model(det).score(z) for name, det in (("cold", cold), ("warm", warm))}
    print(f"log-likelihoods: {scores}, our own: cold {cold.loglik}, warm {warm.loglik}")
    assert scores["warm"] >= scores["cold"]
    assert scores["warm"] == pytest.approx(warm.loglik, abs=1e-6)
