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
from scipy import stats
from v28quant.ml.continuous_learner import Calibration, DriftDetector

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
