"""Intraday features (v28quant.ml.intraday) and their join into build_features.

Independent facts: realised variance of Brownian returns with daily variance sigma^2 sampled n
times a day is sigma^2 * chi2(n) / n, so its mean is sigma^2 and its variance 2 sigma^4 / n
(Andersen, Bollerslev, Diebold & Labys 2003); bipower variation has mean sigma^2 (with the
n/(n-1) factor) and asymptotic variance (pi^2/4 + pi - 3) sigma^4 / n, and one jump J moves
it by at most (pi/2) n/(n-1) |J| (|r_{k-1}| + |r_{k+1}|) (triangle inequality) while it moves RV
by (r_k + J)^2 - r_k^2 exactly (Barndorff-Nielsen & Shephard 2004); the definitions
ln(open / previous close) and (C - L) / (H - L) evaluated by hand; a replayed session's intraday
path passes through the recorded daily open, high, low and close (v28quant.data.replay).
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from v28quant.ml.features import FeatureConfig, build_features, lookahead_check
from v28quant.ml.intraday import INTRADAY_COLUMNS, intraday_features

ET = "America/New_York"
DAYS = 252


def brownian_intraday(
    n_days: int,
    n_per_day: int,
    sigma_daily: float,
    symbols: tuple[str, ...] = ("A",),
    seed: int = 0,
    gap_sd: float = 0.005,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Intraday bars (BAR_COLUMNS layout, UTC stamps) of a driftless Brownian log price.

    Each session has ``n_per_day`` bars evenly spread over 09:30-16:00 New York; returns within
    the session are N(0, sigma_daily^2 / n_per_day), overnight gaps N(0, gap_sd^2). Returns the
    bars and the intraday log returns, shape (symbol, day, bar).
    """
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2019-01-02", periods=n_days)
    step = pd.Timedelta(minutes=390 / n_per_day)
    offsets = pd.Timedelta(hours=9, minutes=30) + step * np.arange(n_per_day)  # ndarray
    stamps = pd.DatetimeIndex((days.values[:, None] + offsets[None, :]).ravel())
    stamps = stamps.tz_localize(ET).tz_convert("UTC")
    r = rng.normal(0.0, sigma_daily / math.sqrt(n_per_day), (len(symbols), n_days, n_per_day))
    gaps = rng.normal(0.0, gap_sd, (len(symbols), n_days))
    frames = []
    for s, sym in enumerate(symbols):
        steps = np.concatenate([gaps[s][:, None], r[s]], axis=1).ravel()
        logp = math.log(100.0) + np.cumsum(steps).reshape(n_days, n_per_day + 1)
        o = np.exp(logp[:, :-1]).ravel()
        c = np.exp(logp[:, 1:]).ravel()
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": stamps,
                    "symbol": sym,
                    "open": o,
                    "high": np.maximum(o, c),
                    "low": np.minimum(o, c),
                    "close": c,
                    "volume": rng.integers(100, 10_000, o.size).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True), r


def daily_from_intraday(bars: pd.DataFrame) -> pd.DataFrame:
    """Daily long bars (``date`` column) aggregated from intraday bars."""
    d = bars.assign(date=bars["timestamp"].dt.tz_convert(ET).dt.tz_localize(None).dt.normalize())
    g = d.groupby(["date", "symbol"])
    return g.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
    ).reset_index()


def test_realised_variance_converges_to_sigma_squared() -> None:
    # RV_day ~ sigma^2 chi2(n)/n: mean sigma^2, variance 2 sigma^4/n. Over D days the mean's
    # standard error is sigma^2 sqrt(2 / (n D)); we allow 4 standard errors (false alarm ~6e-5).
    sigma_ann, n, n_days = 0.30, 78, 250
    sigma_d = sigma_ann / math.sqrt(DAYS)
    bars, _ = brownian_intraday(n_days, n, sigma_d, seed=1)
    f = intraday_features(bars)
    rv = f["intra_rvol"].to_numpy() ** 2 / DAYS
    bv = f["intra_bvol"].to_numpy() ** 2 / DAYS
    assert len(rv) == n_days
    se_rv = sigma_d**2 * math.sqrt(2.0 / (n * n_days))
    assert abs(rv.mean() - sigma_d**2) < 4 * se_rv, (rv.mean(), sigma_d**2, se_rv)
    # the per-day spread itself is the estimator's: sd(RV) = sigma^2 sqrt(2/n); the sample sd of
    # 250 draws is within ~5 % (1 s.e.) of it, 20 % is 4 s.e.
    want_sd = sigma_d**2 * math.sqrt(2.0 / n)
    assert abs(rv.std(ddof=1) / want_sd - 1.0) < 0.20, (rv.std(ddof=1), want_sd)
    # bipower: unbiased for sigma^2 with asymptotic variance (pi^2/4 + pi - 3) sigma^4 / n
    se_bv = sigma_d**2 * math.sqrt((math.pi**2 / 4 + math.pi - 3) / (n * n_days))
    assert abs(bv.mean() - sigma_d**2) < 4 * se_bv, (bv.mean(), sigma_d**2, se_bv)
    # no jumps: the jump share is small (RV - BV has sd sqrt(0.609/n) sigma^2 = 0.09 sigma^2)
    assert f["intra_jump"].median() < 0.1, f["intra_jump"].describe()


def test_realised_variance_error_shrinks_with_sampling_frequency() -> None:
    # the relative sd of RV is sqrt(2/n): 5-minute (n=78) vs 1-minute (n=390) sampling of the
    # same sigma, averaged over days; the finer grid's dispersion is sqrt(5) ~ 2.24 times smaller
    sigma_d = 0.2 / math.sqrt(DAYS)
    sd = {}
    for n in (78, 390):
        bars, _ = brownian_intraday(120, n, sigma_d, seed=2)
        rv = intraday_features(bars)["intra_rvol"].to_numpy() ** 2 / DAYS
        sd[n] = rv.std(ddof=1) / sigma_d**2
        assert abs(sd[n] / math.sqrt(2.0 / n) - 1.0) < 0.3, (n, sd[n], math.sqrt(2.0 / n))
    assert 1.6 < sd[78] / sd[390] < 3.1, sd


def test_bipower_is_robust_to_a_planted_jump() -> None:
    n, sigma_d, jump, k = 390, 0.01, 0.08, 200
    bars, r = brownian_intraday(1, n, sigma_d, seed=3)
    base = intraday_features(bars).iloc[0]
    # plant one jump J in bar k's return: every later price moves by a factor e^J
    jumped = bars.copy()
    scale = np.ones(n)
    scale[k:] = math.exp(jump)
    jumped["close"] = bars["close"] * scale
    scale_open = np.ones(n)
    scale_open[k + 1 :] = math.exp(jump)
    jumped["open"] = bars["open"] * scale_open
    jumped["high"] = np.maximum(jumped["open"], jumped["close"])
    jumped["low"] = np.minimum(jumped["open"], jumped["close"])
    got = intraday_features(jumped).iloc[0]
    rv0, rv1 = base["intra_rvol"] ** 2 / DAYS, got["intra_rvol"] ** 2 / DAYS
    bv0, bv1 = base["intra_bvol"] ** 2 / DAYS, got["intra_bvol"] ** 2 / DAYS
    rk = r[0, 0, k]
    # RV moves by (r_k + J)^2 - r_k^2 exactly (up to the log/exp round trip, 1e-12 relative)
    want_drv = (rk + jump) ** 2 - rk**2
    assert abs((rv1 - rv0) - want_drv) < 1e-9 * want_drv, (rv1 - rv0, want_drv)
    # BV moves by at most (pi/2) n/(n-1) |J| (|r_{k-1}| + |r_{k+1}|), a few % of J^2 here
    bound = math.pi / 2 * n / (n - 1) * jump * (abs(r[0, 0, k - 1]) + abs(r[0, 0, k + 1]))
    assert abs(bv1 - bv0) <= bound * (1 + 1e-9), (bv1 - bv0, bound)
    assert bound < 0.05 * jump**2, (bound, jump**2)
    # hence the jump share is J^2 / RV up to (|RV_c - BV_c| + 2 |J r_k| + bound) / RV, which is
    # below 0.05 for these draws (each term <= ~0.02 of RV)
    tol = (abs(rv0 - bv0) + 2 * abs(jump * rk) + bound) / rv1
    assert tol < 0.05, tol
    assert abs(got["intra_jump"] - jump**2 / rv1) <= tol, (got["intra_jump"], jump**2 / rv1, tol)
    assert base["intra_jump"] < 0.1 < 0.9 < got["intra_jump"], (base["intra_jump"], got)


def _bar(ts: str, o: float, h: float, lo: float, c: float, sym: str = "X") -> dict:
    return {
        "timestamp": pd.Timestamp(ts, tz=ET).tz_convert("UTC"),
        "symbol": sym,
        "open": o,
        "high": h,
        "low": lo,
        "close": c,
        "volume": 100.0,
    }


def test_gap_range_and_variance_by_hand() -> None:
    # a winter and a summer session (New York is UTC-5 then UTC-4), with a pre-market and an
    # after-hours bar that must be ignored
    rows = [
        _bar("2021-01-15 08:00", 90.0, 200.0, 1.0, 95.0),  # pre-market: ignored
        _bar("2021-01-15 09:30", 100.0, 101.0, 99.0, 100.5),
        _bar("2021-01-15 09:35", 100.5, 102.0, 100.0, 101.5),
        _bar("2021-01-15 15:55", 101.5, 101.6, 98.0, 99.0),
        _bar("2021-01-15 16:00", 99.0, 300.0, 0.5, 150.0),  # after the close: ignored
        _bar("2021-07-15 09:30", 97.0, 97.5, 96.0, 96.5),
        _bar("2021-07-15 09:35", 96.5, 99.0, 96.4, 98.0),
        _bar("2021-07-15 10:00", 98.0, 98.2, 97.7, 97.9),
    ]
    f = intraday_features(pd.DataFrame(rows), min_returns=2)
    assert list(f.columns) == list(INTRADAY_COLUMNS)
    jan, jul = f.loc[(pd.Timestamp("2021-01-15"), "X")], f.loc[(pd.Timestamp("2021-07-15"), "X")]
    # overnight gap: ln(open / previous regular close) = ln(97 / 99)
    assert abs(jul["intra_gap"] - math.log(97.0 / 99.0)) < 1e-15, jul
    assert math.isnan(jan["intra_gap"]), jan  # no previous session
    # range position (C - L) / (H - L): Jan H=102, L=98, C=99; Jul H=99, L=96, C=97.9
    assert abs(jan["intra_range_pos"] - (99.0 - 98.0) / (102.0 - 98.0)) < 1e-15, jan
    assert abs(jul["intra_range_pos"] - (97.9 - 96.0) / (99.0 - 96.0)) < 1e-15, jul
    # RV: returns ln(100.5/100), ln(101.5/100.5), ln(99/101.5); BV = pi/2 * 3/2 * sum |r_i r_i-1|
    r = [math.log(100.5 / 100.0), math.log(101.5 / 100.5), math.log(99.0 / 101.5)]
    rv = sum(x * x for x in r)
    bv = math.pi / 2 * 3 / 2 * (abs(r[0] * r[1]) + abs(r[1] * r[2]))
    assert abs(jan["intra_rvol"] - math.sqrt(DAYS * rv)) < 1e-13, (jan, rv)
    assert abs(jan["intra_bvol"] - math.sqrt(DAYS * bv)) < 1e-13, (jan, bv)
    assert abs(jan["intra_jump"] - max(0.0, rv - bv) / rv) < 1e-12, (jan, rv, bv)
    # MultiIndex (timestamp, symbol) layout gives the same frame
    mi = pd.DataFrame(rows).set_index(["timestamp", "symbol"])
    pd.testing.assert_frame_equal(intraday_features(mi, min_returns=2), f)
    # too few returns for the vol estimators: NaN, while gap and range stay defined
    short = intraday_features(pd.DataFrame(rows), min_returns=4)
    assert short[["intra_rvol", "intra_bvol", "intra_jump"]].isna().all().all(), short
    assert short["intra_range_pos"].notna().all(), short


def test_bad_intraday_input_is_rejected() -> None:
    rows = pd.DataFrame([_bar("2021-01-15 09:30", 100.0, 101.0, 99.0, 100.5)])
    with pytest.raises(ValueError, match="min_returns must be >= 2"):
        intraday_features(rows, min_returns=1)
    with pytest.raises(ValueError, match="lack column"):
        intraday_features(rows.drop(columns="timestamp"))
    with pytest.raises(ValueError, match="finite and > 0"):
        intraday_features(rows.assign(close=-1.0))


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    intra, _ = brownian_intraday(330, 78, 0.015, symbols=("A", "B", "C"), seed=4)
    return daily_from_intraday(intra), intra


CFG = FeatureConfig(garch_refit_every=None, momentum_window=126)


def test_build_features_joins_intraday_by_session_date(panel) -> None:
    daily, intra = panel
    plain = build_features(daily, CFG)
    both = build_features(daily, CFG, intraday_bars=intra)
    assert len(plain) > 400, len(plain)
    assert set(both.columns) == set(plain.columns) | set(INTRADAY_COLUMNS), list(both.columns)
    # the daily columns are untouched and the intraday rows are those of their own session
    pd.testing.assert_frame_equal(both[plain.columns], plain.loc[both.index])
    assert both.index.equals(plain.index), "every daily row has a session in the intraday bars"
    ref = intraday_features(intra).loc[both.index]
    pd.testing.assert_frame_equal(both[list(INTRADAY_COLUMNS)], ref)
    # the intraday gap and the daily bars agree: ln(open_t / close_{t-1}) per symbol
    wide_o = daily.pivot(index="date", columns="symbol", values="open")
    wide_c = daily.pivot(index="date", columns="symbol", values="close")
    gap = np.log(wide_o / wide_c.shift(1)).stack().loc[both.index]
    np.testing.assert_allclose(both["intra_gap"], gap, rtol=0, atol=1e-14)


def test_lookahead_check_covers_intraday_features(panel) -> None:
    daily, intra = panel
    dates = sorted(daily["date"].unique())
    cuts = [dates[200], dates[260]]

    def clean(b: pd.DataFrame, i: pd.DataFrame) -> pd.DataFrame:
        return build_features(b, CFG, intraday_bars=i)

    def peeks_at_next_session(b: pd.DataFrame, i: pd.DataFrame) -> pd.DataFrame:
        f = clean(b, i)  # deliberately broken: the row of t carries session t+1's realised vol
        f["intra_rvol"] = f.groupby(level="symbol")["intra_rvol"].shift(-1)
        return f.dropna()

    assert lookahead_check(clean, daily, cuts, intraday_bars=intra) == {}
    leaks = lookahead_check(peeks_at_next_session, daily, cuts, intraday_bars=intra)
    assert set(leaks) >= {"intra_rvol"}
    assert leaks["intra_rvol"] == [pd.Timestamp(c) for c in cuts]


async def test_replayed_intraday_bars_reproduce_the_daily_range() -> None:
    from v28quant.clock import SimClock
    from v28quant.data.replay import ReplayFeed

    # a seeded synthetic daily history over two weeks with Thanksgiving (no session) and an
    # early close (2016-11-25, 13:00)
    rng = np.random.default_rng(5)
    days = [d.date() for d in pd.bdate_range("2016-11-17", "2016-11-29") if d.day != 24]
    rows = []
    for sym in ("AAA", "BBB"):
        c_prev = 50.0
        for d in days:
            o = c_prev * math.exp(rng.normal(0, 0.01))
            c = o * math.exp(rng.normal(0, 0.015))
            h = max(o, c) * math.exp(abs(rng.normal(0, 0.01)))
            lo = min(o, c) * math.exp(-abs(rng.normal(0, 0.01)))
            stamp = pd.Timestamp(datetime.combine(d, time(0)), tz=ET).tz_convert("UTC")
            rows.append((stamp, sym, o, h, lo, c, 1e6))
            c_prev = c
    hist = pd.DataFrame(
        rows, columns=["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    )
    feed = ReplayFeed(hist, SimClock(datetime(2016, 12, 1, 12, tzinfo=ZoneInfo(ET))), seed=7)
    m5 = await feed.bars(["AAA", "BBB"], date(2016, 11, 17), date(2016, 11, 29), "5Min")
    f = intraday_features(m5)
    daily = (
        hist.assign(date=hist["timestamp"].dt.tz_convert(ET).dt.tz_localize(None).dt.normalize())
        .set_index(["date", "symbol"])
        .sort_index()
    )
    assert f.index.equals(daily.index), (f.index, daily.index)
    # exact: the replayed path passes through the recorded open, high, low and close
    want_pos = (daily["close"] - daily["low"]) / (daily["high"] - daily["low"])
    np.testing.assert_array_equal(f["intra_range_pos"].to_numpy(), want_pos.to_numpy())
    prev_close = daily.groupby(level="symbol")["close"].shift(1)
    want_gap = np.log(daily["open"] / prev_close)
    np.testing.assert_array_equal(f["intra_gap"].to_numpy(), want_gap.to_numpy())
    # the early close (13:00) has 42 five-minute bars, 09:30-12:55
    early = m5[m5["timestamp"].dt.tz_convert(ET).dt.date == date(2016, 11, 25)]
    assert early.groupby("symbol").size().tolist() == [42, 42], early.groupby("symbol").size()
    assert f["intra_rvol"].notna().all(), f
    assert (f["intra_rvol"] > 0).all(), f
    # an after-hours print at 13:30 on the early-close day: the exchange calendar's 13:00 close
    # keeps it out (the default 09:30-16:00 hours would not)
    late = early.iloc[[-1]].assign(
        timestamp=pd.Timestamp("2016-11-25 13:30", tz=ET).tz_convert("UTC"), close=80.0
    )
    with_late = pd.concat([m5, late], ignore_index=True)
    pd.testing.assert_frame_equal(intraday_features(with_late, calendar=feed.calendar), f)
    assert not intraday_features(with_late).equals(f)
