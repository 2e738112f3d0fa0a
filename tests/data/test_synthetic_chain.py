"""Synthetic chains look like real SPY chains: skew, term structure, sane model fits.

References: the Cboe SPY chains in shared/data (the same raw SVI fit applied to the real and the
synthetic chain, so the comparison does not go through the SSVI code), Gatheral and Jacquier
(2014) Lemma 3.2 (an SSVI slice is the raw SVI slice with a = theta (1 - rho^2) / 2,
b = theta phi / 2, m = -rho / phi, sigma = sqrt(1 - rho^2) / phi), and Heston calibrations of the
real chains as the plausible range of Heston parameters.
"""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from v28quant.calendar import ET
from v28quant.clock import SimClock
from v28quant.data.chain_shape import atm_total_variance, skew_phi, ssvi_total_variance
from v28quant.data.replay import ReplayFeed, SyntheticChainModel
from v28quant.data.samples import load_bars_file
from v28quant.data.synthetic_chain import implied_vols
from v28quant.options.black_scholes import implied_vol
from v28quant.options.surface import SviSurface
from v28quant.quant_models import heston_model

DAYS = (date(2023, 9, 14), date(2022, 7, 8))
MONTH = 30 / 365


def _atm_vol(surface: SviSurface, t: float) -> float:
    return float(np.sqrt(surface.total_variance(0.0, t) / t))


@pytest.fixture(scope="module")
def chains(shared_data: Path) -> dict[date, tuple[pd.DataFrame, pd.DataFrame, float]]:
    """Return, per day, the real Cboe chain, the synthetic chain at 15:30 and the spot."""
    spy = load_bars_file(shared_data / "equities/yahoo_raw_2019_2023/SPY.csv", symbol="SPY")
    out = {}
    for day in DAYS:
        real = pd.read_csv(shared_data / f"options/SPY_{day}_cboe.csv")
        clock = SimClock(datetime.combine(day, time(15, 30), ET))
        feed = ReplayFeed(spy, clock)
        synth = _run(feed.option_chain("SPY"))
        out[day] = (real, synth, feed.price("SPY"))
    return out


def _run(coro):  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.run(coro)


def _surfaces(
    chains: dict[date, tuple[pd.DataFrame, pd.DataFrame, float]], day: date
) -> tuple[SviSurface, SviSurface]:
    real, synth, spot = chains[day]
    real_s = SviSurface.fit(real, quote_date=str(day), repair=False)  # the quotes, as quoted
    t = (pd.to_datetime(synth["expiry"]) - pd.Timestamp(day)).dt.days / 365.0
    quotes = synth.assign(t=t)[["strike", "type", "bid", "ask", "t"]]
    return real_s, SviSurface.fit(quotes, spot=spot)


def test_ssvi_slice_is_the_raw_svi_of_gatheral_jacquier() -> None:
    rho, theta, t = -0.58, 0.02, 0.5
    phi = float(skew_phi(t, theta, rho, 5.1, 0.31))
    raw = [theta * (1 - rho**2) / 2, theta * phi / 2, rho, -rho / phi, np.sqrt(1 - rho**2) / phi]
    surface = SviSurface([t], [raw], [100.0])
    k = np.linspace(-0.6, 0.4, 41)
    np.testing.assert_allclose(
        ssvi_total_variance(k, theta, phi, rho),
        surface.total_variance(k, t),
        rtol=1e-12,
        err_msg=f"rho {rho} phi {phi} theta {theta}",
    )


def test_skew_phi_keeps_slices_free_of_butterfly_arbitrage() -> None:
    # Gatheral and Jacquier (2014) Theorem 4.2: theta phi (1 + |rho|) < 4 and
    # theta phi^2 (1 + |rho|) <= 4; checked on a grid of vol levels and expiries.
    rho = -0.58
    t, vol = np.meshgrid(np.geomspace(1 / 365, 2.0, 40), np.linspace(0.05, 1.5, 40))
    theta = vol**2 * t
    phi = skew_phi(t, theta, rho, 5.1, 0.31)
    assert (theta * phi * (1 + abs(rho)) <= 4 + 1e-12).all()
    assert (theta * phi**2 * (1 + abs(rho)) <= 4 + 1e-12).all()
    surfaces = [
        SviSurface(
            [tt],
            [[th * (1 - rho**2) / 2, th * p / 2, rho, -rho / p, np.sqrt(1 - rho**2) / p]],
            [100.0],
        )
        for tt, th, p in zip(t.ravel()[::37], theta.ravel()[::37], phi.ravel()[::37], strict=True)
    ]
    assert all(s.arbitrage_report().free for s in surfaces)


# SPY's carry (rate less dividend yield, continuously compounded) on each day: 3-month T-bill
# about 5.3 % and 1.6 %, SPY's dividend yield about 1.5 % in both years.
CARRY = {date(2023, 9, 14): 0.038, date(2022, 7, 8): 0.001}


def _log_vol_skew(chain: pd.DataFrame, day: date, spot: float, synthetic: bool) -> float:
    """Return d ln(iv) / dk at the forward one month out, from a quadratic fit near the money.

    The expiry nearest 30 days; out-of-the-money contracts within one ATM standard deviation of
    the forward. Real chain: Cboe's own implied vols. Synthetic chain: Black-Scholes implied
    vols of the quoted mids at the model's rate (no dividend), not the model's vols.
    """
    expiry = pd.to_datetime(chain["expiration" if "expiration" in chain else "expiry"])
    t_all = (expiry - pd.Timestamp(day)).dt.days / 365.0
    t = float(t_all.iloc[(t_all - MONTH).abs().argmin()])
    g = chain[(t_all == t).to_numpy()]
    carry = SyntheticChainModel().rate if synthetic else CARRY[day]
    fwd = spot * np.exp(carry * t)
    g = g[(g["bid"] > 0) & ((g["type"] == "call") == (g["strike"] >= fwd))]
    strike = g["strike"].to_numpy(float)
    if synthetic:
        mid = ((g["bid"] + g["ask"]) / 2).to_numpy(float)
        call = (g["type"] == "call").to_numpy()
        iv = np.asarray(implied_vol(mid, spot, strike, t, carry, 0.0, call), dtype=float)
    else:
        iv = g["iv"].to_numpy(float)
    k = np.log(strike / fwd)
    ok = np.isfinite(iv) & (iv > 0)
    atm = float(np.interp(0.0, k[ok], iv[ok]))
    near = ok & (np.abs(k) <= atm * np.sqrt(t))
    assert near.sum() >= 5, (day, synthetic, near.sum())
    _, c1, c0 = np.polyfit(k[near], iv[near], 2)
    return float(c1 / c0)


def test_synthetic_skew_close_to_the_real_chains(chains) -> None:
    ratios = []
    for day in DAYS:
        real, synth, spot = chains[day]
        want = _log_vol_skew(real, day, float(real["underlying_price"].iloc[0]), synthetic=False)
        got = _log_vol_skew(synth, day, spot, synthetic=True)
        print(f"{day}: one-month d ln(iv)/dk at the money: real {want:.3f} synthetic {got:.3f}")
        assert got < 0
        ratios.append(got / want)
    # One shape serves both days (2023's near-the-money skew was twice as steep as 2022's in
    # log-vol terms): each day within a factor 2, the two days together within 30 %.
    assert all(0.5 < r < 2.0 for r in ratios), ratios
    assert abs(np.sqrt(ratios[0] * ratios[1]) - 1.0) < 0.3, ratios


@pytest.mark.parametrize("atm", [0.08, 0.2, 0.45, 0.9])
def test_the_model_surface_is_free_of_static_arbitrage(atm: float) -> None:
    m = SyntheticChainModel()
    t = np.array([2, 7, 14, 21, 30, 45, 60, 90, 120]) / 365.0
    theta = np.asarray(atm_total_variance(t, atm**2, m.long_run_vol**2, m.vol_reversion))
    phi = skew_phi(t, theta, m.ssvi_rho, m.ssvi_eta, m.ssvi_gamma, m.skew_vol_cap)
    rho = m.ssvi_rho
    raw = np.column_stack(
        [
            theta * (1 - rho**2) / 2,
            theta * phi / 2,
            np.full_like(t, rho),
            -rho / phi,
            np.sqrt(1 - rho**2) / phi,
        ]
    )
    report = SviSurface(t, raw, np.full_like(t, 100.0)).arbitrage_report()
    assert report.free, (report.butterfly, report.calendar)
    # and the model's vols are those of that surface
    k = np.linspace(-0.3, 0.2, 11)
    got = implied_vols(m, atm, k[None, :], t[:, None])
    want = np.sqrt(ssvi_total_variance(k[None, :], theta[:, None], phi[:, None], rho) / t[:, None])
    reach = np.abs(k[None, :]) <= 4 * np.sqrt(theta[:, None])
    np.testing.assert_allclose(got[reach], want[reach], rtol=1e-12)


def test_term_structure_slopes_like_the_real_chains(chains) -> None:
    # 2023-09-14: calm, ATM vol rising with maturity; 2022-07-08: stressed, flatter.
    slopes = {}
    for day in DAYS:
        real, synth = _surfaces(chains, day)
        t_long = 0.3  # within the synthetic listing (120 days)
        slopes[day] = (
            _atm_vol(real, t_long) - _atm_vol(real, MONTH),
            _atm_vol(synth, t_long) - _atm_vol(synth, MONTH),
        )
        real_slope, synth_slope = slopes[day]
        print(f"{day}: ATM vol 1 month -> {t_long} y: real {real_slope:+.4f}", end=" ")
        print(f"synthetic {synth_slope:+.4f}")
    calm, stressed = slopes[DAYS[0]], slopes[DAYS[1]]
    assert calm[0] > 0
    assert calm[1] > 0
    assert calm[1] > stressed[1]  # the calmer day has the steeper upward term structure


def _heston(chain: pd.DataFrame, spot: float, day: date) -> heston_model.HestonParams:
    t = (
        pd.to_datetime(chain["expiration" if "expiration" in chain else "expiry"])
        - pd.Timestamp(day)
    ).dt.days / 365.0
    q = chain.assign(t=t, mid=(chain["bid"] + chain["ask"]) / 2)
    q = q[
        (q["t"] > 0.05)
        & (q["t"] < 0.35)
        & (q["bid"] > 0)
        & ((q["ask"] - q["bid"]) < 0.5 * q["mid"])
        & ((q["type"] == "call") == (q["strike"] >= spot))
        & (np.abs(np.log(q["strike"] / spot)) < 0.25)
    ]
    cal = heston_model.calibrate(
        spot,
        q["strike"].to_numpy(),
        q["t"].to_numpy(),
        0.04,
        0.0,
        q["mid"].to_numpy(),
        call=(q["type"] == "call").to_numpy(),
    )
    return cal.params


@pytest.mark.parametrize("day", DAYS)
def test_heston_on_the_synthetic_chain_is_sane(chains, day: date) -> None:
    real, synth, spot = chains[day]
    got = _heston(synth, spot, day)
    ref = _heston(real, float(real["underlying_price"].iloc[0]), day)
    print(f"{day}: Heston synthetic {got}\n{day}: Heston real      {ref}")
    # Plausible: the real chains' own calibrations give kappa 0.5-12, sigma 1-2, rho about -0.7.
    assert -0.95 < got.rho < -0.3, got
    assert 0.1 < got.kappa < 20.0, got
    assert 0.1 < got.sigma < 3.0, got


def test_model_refuses_bad_parameters() -> None:
    with pytest.raises(ValueError, match="ssvi_rho"):
        SyntheticChainModel(ssvi_rho=-1.0)
    with pytest.raises(ValueError, match="long_run_vol"):
        SyntheticChainModel(long_run_vol=0.0)
