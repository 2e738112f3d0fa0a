"""CAPM (v28quant.quant_models.capm) against independent sources.

Sources: statsmodels ``OLS`` and ``RollingOLS`` and ``numpy.linalg.lstsq`` on the same real data
(Yahoo adjusted closes in ../shared/data/equities; the 13-week T-bill yield IRX as the risk-free
rate), and the security-market-line formula.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS
from v28quant.quant_models import capm

UNIVERSE = ["SPY", "AAPL", "GOOG", "XOM", "JPM", "GE", "AMZN", "MSFT"]


def _returns(shared_data: Path, folder: str, symbols: list[str]) -> pd.DataFrame:
    """Return simple daily returns from adj_close, one column per symbol.

    NaN where a symbol has no price on a date (or the day before).
    """
    prices = pd.concat(
        {
            s: pd.read_csv(
                shared_data / "equities" / folder / f"{s}.csv", index_col="date", parse_dates=True
            )["adj_close"]
            for s in symbols
        },
        axis=1,
    )
    return prices.pct_change(fill_method=None).iloc[1:]


def _ols(y: np.ndarray, x: np.ndarray):
    return sm.OLS(y, sm.add_constant(x)).fit()


def test_aapl_vs_spy_matches_statsmodels_and_lstsq(shared_data: Path) -> None:
    """AAPL on SPY, 2000-2012 daily.

    alpha, beta, their standard errors and R^2 equal statsmodels OLS (rel 1e-10, rounding only);
    alpha and beta equal numpy.linalg.lstsq.
    """
    ret = _returns(shared_data, "yahoo_2000_2012", ["SPY", "AAPL"])
    fit = capm.fit(ret["AAPL"], ret["SPY"])
    ref = _ols(ret["AAPL"].to_numpy(), ret["SPY"].to_numpy())
    got = [fit.alpha, fit.beta, fit.alpha_se, fit.beta_se, fit.r_squared]
    want = [*ref.params, *ref.bse, ref.rsquared]
    np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=f"ours {got}, statsmodels {want}")
    design = np.column_stack([np.ones(len(ret)), ret["SPY"].to_numpy()])
    coef, *_ = np.linalg.lstsq(design, ret["AAPL"].to_numpy(), rcond=None)
    np.testing.assert_allclose([fit.alpha, fit.beta], coef, rtol=1e-10)
    assert fit.nobs == len(ret)
    assert fit.residual_vol == pytest.approx(np.sqrt(ref.scale), rel=1e-10)


def test_excess_returns_with_tbill_rate(shared_data: Path) -> None:
    """XLK on SPY, 2011-2021, in excess of the daily T-bill rate (IRX / 100 / 252).

    statsmodels OLS on the excess returns (rel 1e-10); expected return on the security market line.
    """
    ret = _returns(shared_data, "yahoo_2011_2021", ["SPY", "XLK"])
    irx = pd.read_csv(
        shared_data / "equities" / "yahoo_2011_2021" / "IRX.csv", index_col="date", parse_dates=True
    )["close"]
    rf = irx / 100.0 / 252.0
    fit = capm.fit(ret["XLK"], ret["SPY"], rf)
    joined = ret.join(rf.rename("rf"), how="inner")
    ref = _ols((joined["XLK"] - joined["rf"]).to_numpy(), (joined["SPY"] - joined["rf"]).to_numpy())
    np.testing.assert_allclose(
        [fit.alpha, fit.beta, fit.alpha_se, fit.beta_se], [*ref.params, *ref.bse], rtol=1e-10
    )
    assert fit.nobs == len(joined)
    m, r = joined["SPY"].mean(), joined["rf"].mean()
    assert fit.expected_return() == pytest.approx(r + ref.params[1] * (m - r), rel=1e-12)


def test_alignment_by_date(shared_data: Path) -> None:
    """Series with different date ranges are aligned on common dates (inner join).

    the fit equals statsmodels on the explicitly intersected sample.
    """
    ret = _returns(shared_data, "yahoo_2000_2012", ["SPY", "MSFT"])
    asset = ret["MSFT"].iloc[100:]
    market = ret["SPY"].iloc[:-50].sample(frac=1.0, random_state=0)  # shuffled order
    fit = capm.fit(asset, market)
    common = ret.iloc[100:-50]
    ref = _ols(common["MSFT"].to_numpy(), common["SPY"].to_numpy())
    np.testing.assert_allclose([fit.alpha, fit.beta], ref.params, rtol=1e-10)
    assert fit.nobs == len(common)


def test_rolling_beta_matches_statsmodels_rolling_ols(shared_data: Path) -> None:
    """63-day rolling beta of AAPL on SPY equals statsmodels RollingOLS (abs 1e-10)."""
    ret = _returns(shared_data, "yahoo_2000_2012", ["SPY", "AAPL"])
    got = capm.rolling_beta(ret["AAPL"], ret["SPY"], window=63)
    ref = RollingOLS(ret["AAPL"], sm.add_constant(ret["SPY"]), window=63).fit().params["SPY"]
    assert isinstance(got, pd.Series)
    assert got.iloc[:62].isna().all()
    np.testing.assert_allclose(
        got.iloc[62:].to_numpy(), ref.iloc[62:].to_numpy(), rtol=0, atol=1e-10
    )
    arr = capm.rolling_beta(ret["AAPL"].to_numpy(), ret["SPY"].to_numpy(), window=63)
    np.testing.assert_allclose(arr[62:], ref.iloc[62:].to_numpy(), rtol=0, atol=1e-10)


def test_expected_return_security_market_line() -> None:
    """Rf + beta (E[R_m] - rf), broadcasting; scalar in, float out."""
    assert capm.expected_return(1.2, 0.08, 0.02) == pytest.approx(0.02 + 1.2 * 0.06)
    assert isinstance(capm.expected_return(1.0, 0.1), float)
    got = capm.expected_return(np.array([0.5, 1.0, 1.5]), 0.10, 0.03)
    np.testing.assert_allclose(got, [0.065, 0.10, 0.135])


def test_screen_matches_per_symbol_statsmodels_and_ranks(shared_data: Path) -> None:
    """Screen the universe and compare each symbol with statsmodels.

    Each symbol's beta and alpha equal statsmodels OLS on that symbol's own dates (GOOG lists
    in 2004, AMZN misses sessions); annualised expected return on the SML; sorted by rank.
    """
    ret = _returns(shared_data, "yahoo_2000_2012", UNIVERSE)
    out = capm.screen(ret, "SPY", periods_per_year=252)
    assert set(out.index) == set(UNIVERSE) - {"SPY"}
    assert list(out["rank"]) == list(range(1, len(out) + 1))
    for sym, row in out.iterrows():
        pair = ret[[sym, "SPY"]].dropna()
        ref = _ols(pair[sym].to_numpy(), pair["SPY"].to_numpy())
        assert row["nobs"] == len(pair), sym
        assert row["beta"] == pytest.approx(ref.params[1], rel=1e-10), sym
        assert row["beta_se"] == pytest.approx(ref.bse[1], rel=1e-10), sym
        assert row["alpha"] == pytest.approx(252 * ref.params[0], rel=1e-10), sym
        assert row["alpha_t"] == pytest.approx(ref.tvalues[0], rel=1e-10), sym
        assert row["r_squared"] == pytest.approx(ref.rsquared, rel=1e-10), sym
    m_annual = 252 * ret["SPY"].dropna().mean()
    np.testing.assert_allclose(out["expected_return"], out["beta"] * m_annual, rtol=1e-12)
    combined = (out["rank_expected_return"] + out["rank_alpha"]).to_numpy()
    assert np.all(np.diff(combined) >= 0), out
    by_er = capm.screen(ret, sort_by="expected_return", market_return=0.08, rf=0.0001)
    assert by_er["expected_return"].is_monotonic_decreasing
    np.testing.assert_allclose(
        by_er["expected_return"], 0.0252 + by_er["beta"] * (0.08 - 0.0252), rtol=1e-12
    )


def test_screen_drops_short_histories(shared_data: Path) -> None:
    ret = _returns(shared_data, "yahoo_2000_2012", ["SPY", "AAPL", "GOOG"])
    ret.loc[:"2012-06-01", "GOOG"] = np.nan
    out = capm.screen(ret, min_obs=120)
    assert list(out.index) == ["AAPL"]
    assert out.attrs["dropped"] == ["GOOG"]


def test_bad_inputs() -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(0, 0.01, 100)
    a = 1.1 * m + rng.normal(0, 0.01, 100)
    with pytest.raises(ValueError, match="different lengths \\(100 and 99\\)"):
        capm.fit(a, m[:99])
    with pytest.raises(ValueError, match="at least 30 aligned observations, got 20"):
        capm.fit(a[:20], m[:20])
    bad = a.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"asset has 1 NaN.*position 7"):
        capm.fit(bad, m)
    idx = pd.bdate_range("2020-01-01", periods=100)
    sa = pd.Series(bad, idx)
    with pytest.raises(ValueError, match="first at date 2020-01-10"):
        capm.fit(sa, pd.Series(m, idx))
    with pytest.raises(ValueError, match="no dates in common"):
        capm.fit(pd.Series(a, idx), pd.Series(m, idx + pd.Timedelta(days=1000)))
    with pytest.raises(ValueError, match="both be pandas Series"):
        capm.fit(pd.Series(a, idx), m)
    with pytest.raises(ValueError, match="constant"):
        capm.fit(a, np.full(100, 0.01))
    with pytest.raises(ValueError, match="window must be an integer >= 3"):
        capm.rolling_beta(a, m, window=2)
    frame = pd.DataFrame({"AAPL": a, "MSFT": m}, index=idx)
    with pytest.raises(ValueError, match="market column 'SPY' not in returns"):
        capm.screen(frame)
    with pytest.raises(ValueError, match="no symbol has at least 500"):
        capm.screen(frame, market="MSFT", min_obs=500)
