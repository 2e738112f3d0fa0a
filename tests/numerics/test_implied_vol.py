"""Implied volatility (v28quant.options.black_scholes.implied_vol / black_implied_vol).

Independent sources: prices from py_lets_be_rational.black (P. Jäckel's reference
normalised-Black implementation, ported to Python) and from QuantLib's BlackCalculator; the
implied vols of py_lets_be_rational; the no-arbitrage bounds of a European option (closed form).
"""

from __future__ import annotations

import math

import numpy as np
import py_lets_be_rational as lbr
import pytest
import QuantLib as ql
from v28quant.options import black_scholes as bs
from v28quant.quant_models import monte_carlo_pricer as mc

FORWARD = 100.0


def dense_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strike/forward 0.5..2 (41), T 1 day..5 years (30), vol 1%..300% (40), log-spaced."""
    m = np.exp(np.linspace(math.log(0.5), math.log(2.0), 41))
    t = np.exp(np.linspace(math.log(1.0 / 365.0), math.log(5.0), 30))
    v = np.exp(np.linspace(math.log(0.01), math.log(3.0), 40))
    mm, tt, vv = (a.ravel() for a in np.meshgrid(m, t, v, indexing="ij"))
    return FORWARD * mm, tt, vv


@pytest.fixture(scope="module")
def otm_grid() -> dict[str, np.ndarray]:
    # Out-of-the-money options (calls above the forward, puts below) carry all the
    # information about vol in their price; prices from Jäckel's reference implementation.
    k, t, v = dense_grid()
    call = k >= FORWARD
    price = np.array(
        [lbr.black(FORWARD, k[i], v[i], t[i], 1 if call[i] else -1) for i in range(len(k))]
    )
    return {"strike": k, "t": t, "vol": v, "call": call, "price": price}


def test_round_trip_on_dense_grid(otm_grid: dict[str, np.ndarray]) -> None:
    # Target: max |vol error| <= 1e-13 wherever price / forward >= 1e-12, over the grid.
    # (Even there the information limit is ulp(price) / vega, which reaches ~4e-14 at 300 %
    # vol and 5 years, where the price is within 0.1 % of the forward.)
    g = otm_grid
    iv = bs.black_implied_vol(g["price"], FORWARD, g["strike"], g["t"], g["call"])
    use = g["price"] / FORWARD >= 1e-12
    assert use.sum() > 25_000
    err = np.abs(iv - g["vol"])
    err[~use] = 0.0
    i = int(np.argmax(err))
    assert err[i] <= 1e-13, (
        f"vol error {err[i]} at K={g['strike'][i]} t={g['t'][i]} vol={g['vol'][i]} "
        f"call={g['call'][i]} price={g['price'][i]}"
    )
    assert not np.isnan(iv[use]).any()


def test_tiny_prices_still_invert_to_a_vol(otm_grid: dict[str, np.ndarray]) -> None:
    # Below price/forward = 1e-12 the vol is still found (no NaN), to 1e-9 relative while the
    # price is a normal number (source: same reference prices).
    g = otm_grid
    iv = bs.black_implied_vol(g["price"], FORWARD, g["strike"], g["t"], g["call"])
    tiny = (g["price"] / FORWARD < 1e-12) & (g["price"] > 1e-300)
    assert tiny.sum() > 1000
    rel = np.abs(iv[tiny] - g["vol"][tiny]) / g["vol"][tiny]
    assert rel.max() <= 1e-9, f"max relative vol error {rel.max()} on tiny prices"


def test_agrees_with_py_lets_be_rational(otm_grid: dict[str, np.ndarray]) -> None:
    # Source: py_lets_be_rational's implied vol on identical inputs. Tolerance 1e-13 absolute
    # (both aim at machine precision; they differ only by round-off).
    g = otm_grid
    sel = np.flatnonzero(g["price"] / FORWARD >= 1e-12)[::37]
    ours = bs.black_implied_vol(
        g["price"][sel], FORWARD, g["strike"][sel], g["t"][sel], g["call"][sel]
    )
    for j, i in enumerate(sel):
        theirs = lbr.implied_volatility_from_a_transformed_rational_guess(
            g["price"][i], FORWARD, g["strike"][i], g["t"][i], 1 if g["call"][i] else -1
        )
        assert abs(ours[j] - theirs) <= 1e-13, f"{ours[j]} vs {theirs} at index {i}"


def test_in_the_money_to_the_information_limit() -> None:
    # In-the-money prices are intrinsic + time value; the vol is fixed by the time value only,
    # so the best attainable error is ~ulp(price) / vega. Source: prices from
    # py_lets_be_rational. Tolerance: 4 ulp(price) / vega + 1e-13.
    k, t, v = dense_grid()
    sel = np.arange(0, len(k), 7)
    k, t, v = k[sel], t[sel], v[sel]
    call = k < FORWARD  # in the money
    price = np.array(
        [lbr.black(FORWARD, k[i], v[i], t[i], 1 if call[i] else -1) for i in range(len(k))]
    )
    iv = bs.black_implied_vol(price, FORWARD, k, t, call)
    vega = np.array(
        [
            FORWARD
            * math.sqrt(t[i])
            * lbr.normalised_vega(math.log(FORWARD / k[i]), v[i] * math.sqrt(t[i]))
            * math.sqrt(k[i] / FORWARD)
            for i in range(len(k))
        ]
    )
    informative = vega > 1e-8
    assert informative.sum() > len(k) // 2, f"only {informative.sum()} of {len(k)} informative"
    tol = 4.0 * np.spacing(price) / np.maximum(vega, 1e-300) + 1e-13
    err = np.abs(iv - v)
    bad = informative & ~(err <= tol)
    assert not bad.any(), (
        f"errors {err[bad][:5]} > tol {tol[bad][:5]} at K={k[bad][:5]} t={t[bad][:5]}"
    )


def test_bsm_implied_vol_with_rates_and_dividends_against_quantlib_prices() -> None:
    # Source: QuantLib BlackCalculator prices with discounting and a dividend yield, inverted
    # by implied_vol. QuantLib's normal CDF is accurate to ~1e-16 absolute, not relative, so
    # its price carries an absolute error of ~1e-15 spot; the vol can be no closer than that
    # over vega. Tolerance: 1e-14 spot / vega + 1e-13 (prices > 1e-10 spot).
    rng = np.random.default_rng(11)
    n = 400
    s = rng.uniform(50, 150, n)
    k = s * np.exp(rng.uniform(-0.5, 0.5, n))
    t = rng.uniform(0.02, 3.0, n)
    r = rng.uniform(-0.01, 0.08, n)
    q = rng.uniform(0.0, 0.05, n)
    v = rng.uniform(0.05, 1.5, n)
    fwd = s * np.exp((r - q) * t)
    call = k >= fwd
    price = np.array(
        [
            ql.BlackCalculator(
                ql.PlainVanillaPayoff(ql.Option.Call if call[i] else ql.Option.Put, k[i]),
                fwd[i],
                v[i] * math.sqrt(t[i]),
                math.exp(-r[i] * t[i]),
            ).value()
            for i in range(n)
        ]
    )
    use = price > 1e-10 * s
    vega = bs.greeks(s, k, t, r, q, v, call).vega
    tol = 1e-14 * s / vega + 1e-13
    iv = bs.implied_vol(price, s, k, t, r, q, call)
    bad = use & ~(np.abs(iv - v) <= tol)
    assert not bad.any(), f"vol errors {np.abs(iv - v)[bad][:4]} > {tol[bad][:4]}"
    # The Black face on the same options, given forward and discount factor.
    iv_b = bs.black_implied_vol(price, fwd, k, t, call, discount=np.exp(-r * t))
    assert not (use & ~(np.abs(iv_b - v) <= tol)).any()


def test_out_of_bounds_prices_give_nan_in_arrays() -> None:
    # Source: no-arbitrage bounds, call in [D max(F-K, 0), D F), put in [D max(K-F, 0), D K).
    s, k, t, r, q = 100.0, 90.0, 1.0, 0.05, 0.0
    fwd, df = s * math.exp((r - q) * t), math.exp(-r * t)
    lower = df * (fwd - k)
    prices = np.array([lower - 1e-6, lower, lower + 1.0, df * fwd, df * fwd + 1.0, -1.0])
    iv = bs.implied_vol(prices, s, k, t, r, q, True)
    assert np.isnan(iv[[0, 3, 4, 5]]).all(), iv
    assert iv[1] == 0.0
    assert 0.0 < iv[2] < 3.0
    # put side of the same strike
    put_lower = 0.0
    iv_p = bs.implied_vol(np.array([put_lower, df * k, df * k - 1e-9]), s, k, t, r, q, False)
    assert iv_p[0] == 0.0
    assert np.isnan(iv_p[1])
    assert iv_p[2] > 0.0


def test_out_of_bounds_scalar_is_nan_as_in_arrays() -> None:
    # One rule for scalars and arrays: no implied vol is NaN, never an error that depends on
    # the shape of the input.
    assert math.isnan(bs.implied_vol(120.0, 100.0, 90.0, 1.0, 0.05, 0.0, True))
    assert math.isnan(bs.black_implied_vol(1.0, 90.0, 100.0, 1.0, call=False))


def test_overflowing_forward_raises_value_error_naming_it() -> None:
    # exp(900) overflows: the bounds once printed as "[-nan, -nan)".
    for args in [(5.0, 100.0, 100.0, 1.0, 900.0, 0.0), (5.0, 100.0, 100.0, 1.0, 0.0, -900.0)]:
        with pytest.raises(ValueError, match=r"^forward spot \* exp\(\(rate - div\) \* t\)"):
            bs.implied_vol(*args)
        with pytest.raises(ValueError, match=r"must be finite and > 0 .* at index 0"):
            bs.implied_vol(*(np.full(2, a) for a in args))


def test_monte_carlo_implied_vol_alias_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match=r"black_scholes\.implied_vol"):
        alias = mc.implied_vol
    assert alias is bs.implied_vol


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"price": float("nan")}, "price"),
        ({"spot": 0.0}, "spot"),
        ({"strike": -5.0}, "strike"),
        ({"t": 0.0}, "t"),
        ({"t": -1.0}, "t"),
        ({"rate": float("nan")}, "rate"),
        ({"div": float("inf")}, "div"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    base = {"price": 5.0, "spot": 100.0, "strike": 100.0, "t": 1.0, "rate": 0.01, "div": 0.0}
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        bs.implied_vol(**(base | kwargs))
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        bs.implied_vol(**{a: np.full(3, x) for a, x in (base | kwargs).items()})


def test_black_bad_forward_and_discount() -> None:
    with pytest.raises(ValueError, match=r"^forward must be > 0"):
        bs.black_implied_vol(5.0, 0.0, 100.0, 1.0)
    with pytest.raises(ValueError, match=r"^discount must be > 0"):
        bs.black_implied_vol(5.0, 100.0, 100.0, 1.0, discount=-0.5)


def test_broadcasting_and_scalar_output() -> None:
    v = bs.implied_vol(10.0, 100.0, 100.0, 1.0, 0.0, 0.0)
    assert isinstance(v, float)
    out = bs.implied_vol([[5.0], [10.0]], 100.0, [90.0, 100.0, 110.0], 1.0, 0.0, 0.0, call=False)
    assert out.shape == (2, 3)
    assert out[1, 2] == bs.implied_vol(10.0, 100.0, 110.0, 1.0, 0.0, 0.0, call=False)
