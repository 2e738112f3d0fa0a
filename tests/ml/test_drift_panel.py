"""Drift test on panel samples: rows indexed by (date, symbol), as the equity learner feeds it.

Independent facts: on a stationary panel (a common AR(1) factor shared by every symbol on a
date plus each symbol's own AR(1) part) the family-wise false-alarm rate of the corrected test is
at most its level, checked against the binomial 99.9 % bound over many seeds; a known shift of
the current window is still found. The rows of one date share the common factor and one
symbol's rows share its persistence, so a test that counts every row as independent fires on
most nights of a stationary panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from v28quant.ml.continuous_learner import Calibration, DriftDetector, PanelDependence

SYMBOLS = [f"S{i:02d}" for i in range(20)]
REFERENCE_SESSIONS = 126


def _ar1(rng: np.random.Generator, phi: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary AR(1) with unit variance along axis 0."""
    x = np.empty(shape)
    x[0] = rng.normal(size=shape[1:])
    e = rng.normal(size=shape) * np.sqrt(1 - phi**2)
    for t in range(1, shape[0]):
        x[t] = phi * x[t - 1] + e[t]
    return x


def _panel(
    rng: np.random.Generator, sessions: int, features: int, phi_common: float, phi_own: float
) -> np.ndarray:
    """(session, symbol, feature) values: 0.6 common factor + 0.8 own part (unit variance)."""
    common = _ar1(rng, phi_common, (sessions, 1, features))
    own = _ar1(rng, phi_own, (sessions, len(SYMBOLS), features))
    return 0.6 * common + 0.8 * own


def _frame(values: np.ndarray, dates: pd.DatetimeIndex, symbols: list[str]) -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays([dates, symbols], names=["date", "symbol"])
    return pd.DataFrame(values, index=index, columns=[f"x{j}" for j in range(values.shape[1])])


def _night(seed: int, phi_common: float, phi_own: float, span: int, shift: float = 0.0):
    """One drift test: the reference panel, then 100 trades over the next ``span`` sessions."""
    rng = np.random.default_rng(seed)
    x = _panel(rng, REFERENCE_SESSIONS + span, 4, phi_common, phi_own)
    dates = pd.bdate_range("2022-01-03", periods=len(x))
    ref_dates = np.repeat(dates[:REFERENCE_SESSIONS], len(SYMBOLS))
    reference = _frame(
        x[:REFERENCE_SESSIONS].reshape(-1, 4), ref_dates, SYMBOLS * REFERENCE_SESSIONS
    )
    day = np.sort(rng.integers(REFERENCE_SESSIONS, len(x), 100))
    sym = rng.integers(0, len(SYMBOLS), 100)
    values = x[day, sym].copy()
    values[:, 1] += shift
    current = _frame(values, dates[day], [SYMBOLS[s] for s in sym])
    p_ref, p_cur = rng.uniform(0.2, 0.8, len(reference)), rng.uniform(0.2, 0.8, 100)
    calibration = Calibration.fit(
        pd.Series(p_ref, reference.index),
        pd.Series((rng.uniform(size=len(p_ref)) < p_ref).astype(int), reference.index),
    )
    detector = DriftDetector(reference, calibration, alpha=0.05)
    labels = (rng.uniform(size=100) < p_cur).astype(int)
    return detector.test(current, pd.Series(p_cur, current.index), pd.Series(labels, current.index))


@pytest.mark.parametrize(
    ("phi_common", "phi_own", "span"), [(0.9, 0.0, 60), (0.0, 0.95, 60), (0.95, 0.95, 20)]
)
def test_false_alarm_rate_on_a_stationary_panel_is_within_level(
    phi_common: float, phi_own: float, span: int
) -> None:
    trials = 200
    alarms = sum(_night(s, phi_common, phi_own, span).drift for s in range(trials))
    bound = stats.binom.ppf(0.999, trials, 0.05)
    print(f"phi_common {phi_common} phi_own {phi_own} span {span}: {alarms}/{trials} alarms")
    assert alarms <= bound, (alarms, bound)


def test_a_shift_of_the_current_window_on_a_panel_is_found() -> None:
    trials = 50
    hits = sum(_night(s, 0.9, 0.9, 60, shift=2.0).drifted == ("x1",) for s in range(trials))
    assert hits >= 40, hits


def _dependent_labels_night(seed: int, slope: float = 0.7, market_share: float = 0.3) -> float:
    """Calibration p-value of 100 confident trades whose labels share moves, as the engine's do.

    Each label is the direction over the 5 sessions after its date, so one symbol's labels on
    nearby dates share days, and ``market_share`` of every day's move is the market's, shared
    by all symbols: ``label = 1{U < expit(0.05 + slope logit p)}`` with ``U = Phi(Z)`` and
    ``Z`` the standardised sum of those 5 days' moves. Each label alone is calibrated exactly.
    """
    horizon, span = 5, 60
    rng = np.random.default_rng(seed)
    sessions = REFERENCE_SESSIONS + span
    moves = np.sqrt(market_share) * rng.normal(size=(sessions + horizon, 1)) + np.sqrt(
        1 - market_share
    ) * rng.normal(size=(sessions + horizon, len(SYMBOLS)))
    path = np.vstack([np.zeros((1, len(SYMBOLS))), np.cumsum(moves, axis=0)])
    z = (path[horizon + 1 : sessions + horizon + 1] - path[1 : sessions + 1]) / np.sqrt(horizon)
    p = special.expit(0.8 * _ar1(rng, 0.9, (sessions, len(SYMBOLS))))
    slopes = np.where(np.arange(sessions)[:, None] < REFERENCE_SESSIONS, 0.7, slope)
    labels = (stats.norm.cdf(z) < special.expit(0.05 + slopes * special.logit(p))).astype(int)
    dates = pd.bdate_range("2022-01-03", periods=sessions)

    def series(values: np.ndarray, day: np.ndarray, sym: np.ndarray) -> pd.Series:
        index = pd.MultiIndex.from_arrays(
            [dates[day], [SYMBOLS[s] for s in sym]], names=["date", "symbol"]
        )
        return pd.Series(values, index)

    day, sym = np.divmod(np.arange(REFERENCE_SESSIONS * len(SYMBOLS)), len(SYMBOLS))
    calibration = Calibration.fit(series(p[day, sym], day, sym), series(labels[day, sym], day, sym))
    confident = np.argwhere(np.abs(p - 0.5) > 0.12)
    confident = confident[confident[:, 0] >= REFERENCE_SESSIONS]
    day, sym = confident[np.sort(rng.choice(len(confident), 100, replace=False))].T
    return calibration.pvalue(series(p[day, sym], day, sym), series(labels[day, sym], day, sym))


def test_calibration_false_alarms_with_overlapping_market_shared_labels_are_at_level() -> None:
    trials = 200
    alarms = sum(_dependent_labels_night(s) < 0.05 for s in range(trials))
    lo, hi = stats.binom.ppf([0.0005, 0.9995], trials, 0.05)
    print(f"calibration test, dependent labels, no drift: {alarms}/{trials} alarms at 5 %")
    assert lo <= alarms <= hi, (alarms, lo, hi)


def test_a_reversed_model_is_found_with_overlapping_market_shared_labels() -> None:
    trials = 50
    hits = sum(_dependent_labels_night(s, slope=-0.3) < 0.05 for s in range(trials))
    print(f"calibration test, dependent labels, reversed model: {hits}/{trials} found")
    assert hits >= 45, hits


def test_a_one_symbol_panel_keeps_its_series_persistence() -> None:
    """One row a date (a one-symbol universe): no common part to split off, the AR(1) is own.

    Reference: the generating coefficient 0.6 and numpy's lag-1 autocorrelation of the series.
    """
    x = _ar1(np.random.default_rng(3), 0.6, (2000,))
    sessions = np.arange(len(x))
    dep = PanelDependence.fit(x, sessions, np.array(["AAPL"] * len(x)))
    assert dep.common_share == 0.0
    assert dep.own_phi == pytest.approx(np.corrcoef(x[1:], x[:-1])[0, 1], abs=1e-3)
    assert dep.own_phi == pytest.approx(0.6, abs=0.05)
    # the effective size of the mean of an AR(1): n (1 - phi) / (1 + phi), about n / 4
    n_eff = dep.effective_size(sessions, np.array(["AAPL"] * len(x)))
    phi = dep.own_phi
    assert n_eff == pytest.approx(len(x) * (1 - phi) / (1 + phi), rel=0.01)
