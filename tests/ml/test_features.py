"""Features, labels, purged walk-forward splits and the look-ahead check (v28quant.ml.features).

Independent facts: the definition of a forward log return; López de Prado (2018) sec. 7.4 (no
training label may overlap the test period; an embargo gap precedes it); a feature that reads
tomorrow's close changes when tomorrow is removed, a causal one does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from v28quant.ml.features import (
    FeatureConfig,
    PurgedWalkForward,
    align,
    build_features,
    ewma_vol,
    latest_rows,
    lookahead_check,
    make_labels,
    pivot_float,
    to_wide,
)


def synthetic_bars(n_days: int = 400, n_sym: int = 4, seed: int = 0) -> pd.DataFrame:
    """Long-format OHLCV bars of independent geometric random walks."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2018-01-01", periods=n_days)
    r = rng.normal(0.0003, 0.012, (n_days, n_sym))
    close = 50 * np.exp(np.cumsum(r, axis=0))
    spread = np.abs(rng.normal(0, 0.006, (n_days, n_sym)))
    return pd.DataFrame(
        {
            "date": np.repeat(dates, n_sym),
            "symbol": np.tile([f"S{i}" for i in range(n_sym)], n_days),
            "open": close.ravel(),
            "high": (close * (1 + spread)).ravel(),
            "low": (close * (1 - spread)).ravel(),
            "close": close.ravel(),
            "volume": rng.integers(100_000, 1_000_000, n_days * n_sym),
        }
    )


def test_long_and_multiindex_layouts_give_the_same_features():
    bars = synthetic_bars(300)
    a = build_features(bars)
    b = build_features(bars.set_index(["date", "symbol"]))
    pd.testing.assert_frame_equal(a, b)
    assert {
        "ret_1",
        "ret_63",
        "rvol_21",
        "cvol",
        "mom",
        "mr_z",
        "vol_z",
        "beta",
        "range_vol",
    } <= set(a.columns), f"columns: {list(a.columns)}"


@pytest.mark.parametrize("aggfunc", ["mean", "last"])
def test_pivot_float_is_pandas_pivot_table(aggfunc: str) -> None:
    """Holes, an all-missing row and column, missing keys and repeated pairs, as pandas has them."""
    long = synthetic_bars(60, 4)
    long.loc[long.index[::7], "close"] = np.nan
    long.loc[long["symbol"] == "S2", "close"] = np.nan
    long.loc[long["date"] == long["date"].iloc[20], "close"] = np.nan
    long.loc[long.index[5:9], "symbol"] = None
    repeated = pd.concat([long, long.iloc[:30].assign(close=lambda d: d["close"] + 1.0)])
    for frame in (long, repeated, long.iloc[:0]):
        want = frame.pivot_table(index="date", columns="symbol", values="close", aggfunc=aggfunc)
        got = pivot_float(frame, "date", "symbol", "close", aggfunc=aggfunc)
        pd.testing.assert_frame_equal(got, want.astype(float), check_exact=True)


def test_prices_only_bars_drop_volume_features():
    bars = synthetic_bars(300)[["date", "symbol", "close"]]
    f = build_features(bars)
    assert "vol_z" not in f.columns
    assert "range_vol" not in f.columns
    assert len(f) > 0


def test_labels_are_forward_log_returns():
    # independent source: the definition ln(C_{t+h} / C_t), computed here by position
    bars = synthetic_bars(60, 2)
    lab = make_labels(bars, horizon=3)
    close = bars[bars.symbol == "S1"].set_index("date")["close"]
    t = close.index[10]
    want = np.log(close.iloc[13] / close.iloc[10])
    got = lab.loc[(t, "S1")]
    assert abs(got["fwd_ret"] - want) < 1e-14, (got, want)
    assert got["label_end"] == close.index[13]
    assert got["direction"] == int(want > 0)
    # the last 3 dates have no label
    assert lab.index.get_level_values("date").max() == close.index[-4]


def test_ewma_vol_matches_the_riskmetrics_recursion():
    # independent source: RiskMetrics (1996) recursion written out in a loop
    r = pd.Series(np.random.default_rng(3).normal(0, 0.01, 50))
    var = r.iloc[0] ** 2
    for x in r.iloc[1:]:
        var = 0.94 * var + 0.06 * x**2
    assert abs(ewma_vol(r).iloc[-1] - np.sqrt(var * 252)) < 1e-12


def test_beta_of_a_scaled_market_copy_is_the_scale():
    # closed form: if r_A = 2 r_M exactly, cov(r_A, r_M) / var(r_M) = 2
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2019-01-01", periods=200)
    rm = rng.normal(0, 0.01, 200)
    close = pd.DataFrame(
        {"M": 100 * np.exp(np.cumsum(rm)), "A": 100 * np.exp(np.cumsum(2 * rm))}, index=dates
    )
    bars = close.rename_axis(index="date", columns="symbol").stack().rename("close").reset_index()
    f = build_features(bars, FeatureConfig(market="M", momentum_window=30, momentum_skip=5))
    beta = f.xs("A", level="symbol")["beta"]
    assert np.allclose(beta, 2.0, atol=1e-9), beta.describe()


def test_causal_features_pass_the_lookahead_check():
    bars = synthetic_bars(400)
    leaks = lookahead_check(build_features, bars, ["2019-01-31", "2019-04-15"])
    assert leaks == {}, leaks


def test_a_feature_using_tomorrows_close_is_caught():
    bars = synthetic_bars(400)

    def leaky(b: pd.DataFrame) -> pd.DataFrame:
        f = build_features(b)
        close = to_wide(b)["close"]
        tomorrow = np.log(close.shift(-1) / close).stack()
        tomorrow.index = tomorrow.index.set_names(["date", "symbol"])
        return f.assign(peek=tomorrow.reindex(f.index)).fillna({"peek": 0.0})

    leaks = lookahead_check(leaky, bars, ["2019-01-31", "2019-04-15"])
    assert set(leaks) == {"peek"}, leaks
    assert len(leaks["peek"]) == 2


def test_a_centred_rolling_mean_is_caught():
    bars = synthetic_bars(400)

    def centred(b: pd.DataFrame) -> pd.DataFrame:
        f = build_features(b)
        close = to_wide(b)["close"]
        c = close.rolling(11, center=True).mean().stack()
        c.index = c.index.set_names(["date", "symbol"])
        return f.assign(smooth=c.reindex(f.index)).dropna()

    assert "smooth" in lookahead_check(centred, bars, ["2019-03-15"])


def test_purged_walk_forward_has_no_overlap_and_keeps_the_embargo():
    bars = synthetic_bars(500, 3)
    f, lab = align(build_features(bars), make_labels(bars, horizon=5))
    dates = f.index.get_level_values("date")
    udates = dates.unique().sort_values()
    splitter = PurgedWalkForward(n_splits=4, embargo=7, min_train_dates=120)
    splits = list(splitter.split(dates, lab["label_end"]))
    assert len(splits) == 4
    for s in splits:
        train_end = pd.DatetimeIndex(lab["label_end"].to_numpy()[s.train])
        assert train_end.max() < s.test_start, "a training label reaches into the test period"
        last_train = dates[s.train].max()
        gap = udates.get_loc(s.test_start) - udates.get_loc(last_train) - 1
        assert gap >= 7, f"embargo gap {gap} < 7 before {s.test_start}"
        assert dates[s.test].min() == s.test_start
        assert dates[s.test].max() == s.test_end
    tests = np.concatenate([s.test for s in splits])
    assert len(tests) == len(np.unique(tests)), "test blocks overlap"


def test_splitter_rejects_bad_input():
    d = pd.bdate_range("2020-01-01", periods=50)
    with pytest.raises(ValueError, match="label_end must be >="):
        list(PurgedWalkForward(2, 0, 10).split(d, d - pd.Timedelta(days=1)))
    with pytest.raises(ValueError, match="need more than"):
        list(PurgedWalkForward(5, 0, 48).split(d, d))


def test_bad_bars_are_rejected():
    with pytest.raises(ValueError, match="date and symbol"):
        build_features(pd.DataFrame({"close": [1.0, 2.0]}))
    bars = synthetic_bars(30, 1)
    bars.loc[3, "close"] = -1.0
    with pytest.raises(ValueError, match="close prices must be > 0"):
        build_features(bars)
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        make_labels(synthetic_bars(30, 1), 0)


def test_latest_rows_takes_the_last_date_of_each_symbol():
    f = build_features(synthetic_bars(300))
    last = latest_rows(f)
    assert list(last.index) == ["S0", "S1", "S2", "S3"]
    assert (
        last["ret_1"].values
        == f.xs(f.index.get_level_values("date").max(), level="date")["ret_1"].values
    ).all()


def test_real_history_features_pass_the_lookahead_check(shared_data):
    # real data: yahoo_2000_2012 adjusted closes and volumes of 3 symbols
    frames = []
    for sym in ("SPY", "AAPL", "XOM"):
        df = pd.read_csv(shared_data / "equities" / "yahoo_2000_2012" / f"{sym}.csv")
        df = df[df["date"] < "2004-01-01"]
        ratio = df["adj_close"] / df["close"]
        frames.append(
            pd.DataFrame(
                {
                    "date": df["date"],
                    "symbol": sym,
                    "high": df["high"] * ratio,
                    "low": df["low"] * ratio,
                    "close": df["adj_close"],
                    "volume": df["volume"],
                }
            )
        )
    bars = pd.concat(frames, ignore_index=True)
    assert lookahead_check(build_features, bars, ["2002-06-28", "2003-03-31"]) == {}


def test_vol_forecaster_hook_is_used_and_a_non_causal_one_is_caught():
    bars = synthetic_bars(400, 2)
    seen = []

    def causal(r: pd.Series) -> pd.Series:  # e.g. a GARCH filter with fixed parameters
        seen.append(len(r))
        return np.sqrt((r**2).expanding().mean() * 252)

    f = build_features(bars, FeatureConfig(vol_forecaster=causal))
    r = np.log(to_wide(bars)["close"]["S0"]).diff().dropna()
    want = np.sqrt((r**2).expanding().mean() * 252)
    got = f.xs("S0", level="symbol")["cvol"]
    np.testing.assert_allclose(got.to_numpy(), want.reindex(got.index).to_numpy(), rtol=1e-12)
    assert seen == [399, 399]

    def full_sample(r: pd.Series) -> pd.Series:  # fitted on the whole history: a leak
        return pd.Series(np.sqrt((r**2).mean() * 252), index=r.index)

    leaks = lookahead_check(
        lambda b: build_features(b, FeatureConfig(vol_forecaster=full_sample)),
        bars,
        ["2019-03-15"],
    )
    assert set(leaks) == {"cvol"}, leaks
