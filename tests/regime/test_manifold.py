"""Manifold regime detector: geometry against closed forms and the compiled geodesic solver.

Also causality, and the separation of stressed from quiet periods on real SPY history.

Closed forms (the Fisher metric of N(mu, sigma^2) is twice the Poincare half-plane metric in
(mu / sqrt 2, sigma), Gaussian curvature -1/2): along mu = const the distance is
sqrt 2 |ln(sigma2 / sigma1)|; horocycles (sigma = const) have geodesic curvature 1 / sqrt 2;
half-circles centred on sigma = 0 in (mu / sqrt 2, sigma) are geodesics (curvature 0); a circle
of hyperbolic radius rho has curvature coth(rho) / sqrt 2 (J. W. Anderson, "Hyperbolic
Geometry", 2nd ed., Springer 2005, sec. 4 and 5).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu
from v28quant import geometry
from v28quant.regime.fisher import fisher_rao_distance, geodesic_curvature
from v28quant.regime.manifold import (
    GeodesicPathTracker,
    ManifoldRegimeDetector,
    VolatilitySurface3D,
)

SQRT2 = np.sqrt(2.0)


def test_distance_matches_the_compiled_geodesic_solver() -> None:
    rng = np.random.default_rng(0)
    metric = geometry.FisherNormalMetric()
    for _ in range(50):
        a = np.array([rng.normal(0, 0.01), np.exp(rng.uniform(-6.0, -2.5))])
        b = np.array([rng.normal(0, 0.01), np.exp(rng.uniform(-6.0, -2.5))])
        ref = geometry.geodesic_distance(metric, a, b)
        assert fisher_rao_distance(a, b) == pytest.approx(ref, rel=1e-6), (a, b)


def test_distance_along_the_vol_axis() -> None:
    s1, s2 = 0.01, 0.037
    d = fisher_rao_distance([0.0005, s1], [0.0005, s2])
    assert d == pytest.approx(SQRT2 * np.log(s2 / s1), rel=1e-12)


def test_geodesic_curvature_closed_forms() -> None:
    th = np.linspace(0.3, 2.8, 7)
    # horocycle sigma = 0.02, mu moving at any speed: curvature 1/sqrt 2 (sign: the turn)
    x = np.column_stack([np.linspace(-0.01, 0.01, 7), np.full(7, 0.02)])
    k = geodesic_curvature(x, np.tile([0.003, 0.0], (7, 1)), np.zeros((7, 2)))
    np.testing.assert_allclose(np.abs(k), 1 / SQRT2, rtol=1e-12)
    # mu = const is a geodesic
    k = geodesic_curvature(x, np.tile([0.0, 0.004], (7, 1)), np.tile([0.0, 0.0008], (7, 1)))
    np.testing.assert_allclose(k, 0.0, atol=1e-12)
    # half-circle of radius R centred on the boundary in (u, sigma), u = mu / sqrt 2: geodesic
    R = 0.03
    pts = np.column_stack([SQRT2 * R * np.cos(th), R * np.sin(th)])
    vel = np.column_stack([-SQRT2 * R * np.sin(th), R * np.cos(th)])
    acc = np.column_stack([-SQRT2 * R * np.cos(th), -R * np.sin(th)])
    np.testing.assert_allclose(geodesic_curvature(pts, vel, acc), 0.0, atol=1e-10)
    # Euclidean circle centre (0, c), radius r < c: hyperbolic radius rho = artanh(r / c)
    c, r = 0.05, 0.02
    pts = np.column_stack([SQRT2 * r * np.cos(th), c + r * np.sin(th)])
    vel = np.column_stack([-SQRT2 * r * np.sin(th), r * np.cos(th)])
    acc = np.column_stack([-SQRT2 * r * np.cos(th), -r * np.sin(th)])
    rho = np.arctanh(r / c)
    np.testing.assert_allclose(
        np.abs(geodesic_curvature(pts, vel, acc)), 1 / np.tanh(rho) / SQRT2, rtol=1e-10
    )


def test_tracker_speed_and_curvature_on_sampled_paths() -> None:
    tr = GeodesicPathTracker(window=10, lag=3)
    n = 40
    vertical = np.column_stack([np.zeros(n), 0.01 * np.exp(0.02 * np.arange(n))])
    # geodesic speed along the vol axis is sqrt 2 x the log-vol step per day
    np.testing.assert_allclose(tr.speed(vertical)[3:], SQRT2 * 0.02, rtol=1e-12)
    np.testing.assert_allclose(tr.curvature(vertical)[6:], 0.0, atol=1e-9)
    horocycle = np.column_stack([0.0004 * np.arange(n), np.full(n, 0.015)])
    np.testing.assert_allclose(np.abs(tr.curvature(horocycle)[6:]), 1 / SQRT2, rtol=1e-12)
    assert np.isnan(tr.speed(vertical)[:3]).all()
    assert np.isnan(tr.curvature(vertical)[:6]).all()


def _spy(shared: Path, folder: str) -> pd.Series:
    df = pd.read_csv(shared / "equities" / folder / "SPY.csv", parse_dates=["date"])
    close = df.set_index("date")["adj_close"]
    return np.log(close).diff().dropna()


def _auc(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    x, y = x.dropna(), y.dropna()
    u = mannwhitneyu(x, y, alternative="greater")
    return float(u.statistic / (len(x) * len(y))), float(u.pvalue)


@pytest.mark.parametrize(
    ("folder", "stressed", "quiet"),
    [
        (
            "yahoo_2000_2012",
            [("2008-09-01", "2008-09-30"), ("2011-08-01", "2011-08-31")],
            ("2005-01-01", "2006-12-31"),
        ),
        ("yahoo_2011_2021", [("2020-03-01", "2020-03-31")], ("2017-01-01", "2017-12-31")),
    ],
)
def test_features_separate_stressed_from_quiet_periods(
    shared_data: Path, folder: str, stressed: list[tuple[str, str]], quiet: tuple[str, str]
) -> None:
    r = _spy(shared_data, folder)
    det = ManifoldRegimeDetector().fit(r)
    feats = det.features(r)
    p_stress = det.probabilities(r)["bear_volatile"]
    hot = np.zeros(len(r), dtype=bool)
    for a, b in stressed:
        hot |= (r.index >= a) & (r.index <= b)
    calm = (r.index >= quiet[0]) & (r.index <= quiet[1])
    # AUC = P(feature on a stressed day > feature on a quiet day); chance is 0.5
    for name, series, floor in [
        ("P(bear_volatile)", p_stress, 0.9),
        ("distance from the bull_quiet centroid", feats["dist_bull_quiet"], 0.9),
        ("geodesic speed", feats["speed"], 0.6),
    ]:
        auc, p = _auc(series[hot], series[calm])
        print(f"{folder} {name}: AUC {auc:.3f}, Mann-Whitney p {p:.2e}")
        assert auc >= floor, (folder, name, auc)
        assert p < 1e-3, (folder, name, p)
    labels = det.states(r)
    print(
        f"{folder}: bear_volatile on {np.mean(labels[hot] == 'bear_volatile'):.2f} of stressed"
        f" days, {np.mean(labels[calm] == 'bear_volatile'):.2f} of quiet days"
    )
    assert (labels[hot] == "bear_volatile").mean() > 0.6
    assert (labels[calm] == "bear_volatile").mean() < 0.05


def test_states_are_causal_and_the_api_matches_the_hmm(shared_data: Path) -> None:
    r = _spy(shared_data, "yahoo_2000_2012")
    det = ManifoldRegimeDetector().fit(r)
    full = det.states(r)
    assert full.shape == (len(r),)
    for t in (1, 2, 30, 2200):
        assert (det.states(r.iloc[:t]) == full[:t]).all(), t
    state = det.predict(r)
    assert state.source == "manifold"
    assert state.label == full[-1]
    assert isinstance(state.ts, datetime)
    assert state.ts.date() == r.index[-1].date()


def test_volatility_surface_from_returns_and_from_a_chain(shared_data: Path) -> None:
    r = _spy(shared_data, "yahoo_2000_2012")
    crash = VolatilitySurface3D.from_returns(r[:"2008-10-10"])
    calm = VolatilitySurface3D.from_returns(r[:"2006-06-30"])
    assert crash.z.shape == (4, 21)
    assert crash.term_slope() > 0.1 > calm.term_slope()  # short-dated vol far above long-dated
    assert np.isfinite(crash.gaussian_curvature()).all()
    chain = pd.read_csv(shared_data / "options" / "SPY_2022-07-08_cboe.csv")
    surf = VolatilitySurface3D.from_chain(chain)
    assert surf.kind == "implied"
    assert len(surf.y) >= 4
    assert (surf.z > 0.05).all()
    assert (surf.z < 1.5).all()
    # the same snapshot in the feed's layout gives the same surface
    feed = chain.rename(columns={"expiration": "expiry"}).drop(
        columns=["underlying_price", "quote_date"]
    )
    feed["expiry"] = pd.to_datetime(feed["expiry"])
    feed.attrs = {
        "underlying_price": float(chain["underlying_price"].iloc[0]),
        "as_of": pd.Timestamp("2022-07-08 15:45", tz="America/New_York"),
    }
    same = VolatilitySurface3D.from_chain(feed)
    np.testing.assert_allclose(same.z, surf.z)
    np.testing.assert_allclose(same.y, surf.y)


def test_a_plane_has_zero_gaussian_curvature() -> None:
    # z = a x + b y is flat (do Carmo 1976, sec. 3.3): the height-field metric must say so
    x, y = np.linspace(-0.2, 0.2, 6), np.linspace(0.05, 1.0, 5)
    z = 0.2 - 0.3 * x[:, None] + 0.05 * y[None, :]
    surf = VolatilitySurface3D(x, y, z, kind="implied")
    np.testing.assert_allclose(surf.gaussian_curvature(), 0.0, atol=1e-10)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="n_regimes"):
        ManifoldRegimeDetector(n_regimes=7)
    with pytest.raises(ValueError, match="finite, got inf at index 3"):
        ManifoldRegimeDetector().fit(np.array([0.01, 0.0, -0.01, np.inf] * 50))
    with pytest.raises(ValueError, match="not fitted"):
        ManifoldRegimeDetector().states(np.zeros(100) + 0.001)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        fisher_rao_distance([0.0, 0.0], [0.0, 1.0])
