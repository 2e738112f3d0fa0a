"""Implied vol in vector lanes (cpp/src/iv_kernels.ipp) against the scalar path (iv_scalar.ipp).

Arrays of 8 or more options are solved several at a time in AVX-512/AVX2 lanes; a 1-element
array takes the scalar code of Jäckel's "Let's Be Rational" (2015). Independent sources: the
scalar path, one option at a time (a separate implementation of each region of b(x, s) and of
the iteration), and the true vol of the grid, priced by py_lets_be_rational, where the price
determines it. CI reruns this file under V28_SIMD=avx2 and V28_SIMD=base (the narrower
builds; under base the lanes-vs-scalar check is the scalar code against itself, and only the
true-vol check is independent).
"""

from __future__ import annotations

import math

import numpy as np
import py_lets_be_rational as lbr
import pytest
from v28quant import _core
from v28quant.options import black_scholes as bs

FORWARD = 100.0


def extreme_grid() -> dict[str, np.ndarray]:
    """Return a grid that covers every region of the implied-vol map.

    K/F 1e-3..1e3 plus at the money, T 1 hour..30 years, vol 0.1%..500%, calls and puts
    (in and out of the money): every region of b(x, s), prices down to the underflow limit.
    """
    m = np.concatenate(
        [np.exp(np.linspace(math.log(1e-3), math.log(1e3), 61)), [1.0, 1.0 + 1e-12, 1.0 - 1e-12]]
    )
    t = np.exp(np.linspace(math.log(1.0 / 365.0 / 24.0), math.log(30.0), 17))
    v = np.exp(np.linspace(math.log(1e-3), math.log(5.0), 25))
    mm, tt, vv, cc = (a.ravel() for a in np.meshgrid(m, t, v, [True, False], indexing="ij"))
    k = FORWARD * mm
    # Prices from Jäckel's reference implementation (py_lets_be_rational).
    price = np.array(
        [lbr.black(FORWARD, k[i], vv[i], tt[i], 1 if cc[i] else -1) for i in range(len(k))]
    )
    vega = bs.greeks(FORWARD, k, tt, 0.0, 0.0, vv, cc).vega
    # Relative vol change caused by one ulp of the price: the information limit.
    cond = np.spacing(price) / np.maximum(vega * vv, 1e-300)
    return {"strike": k, "t": tt, "vol": vv, "call": cc, "price": price, "cond": cond}


def test_lanes_agree_with_the_scalar_path_on_an_extreme_grid() -> None:
    g = extreme_grid()
    n = len(g["price"])
    lanes = bs.black_implied_vol(g["price"], FORWARD, g["strike"], g["t"], g["call"])
    one = np.array(
        [
            bs.black_implied_vol(
                g["price"][i : i + 1],
                FORWARD,
                g["strike"][i : i + 1],
                g["t"][i : i + 1],
                g["call"][i : i + 1],
            )[0]
            for i in range(n)
        ]
    )
    # The same options have no vol (price on the upper bound after rounding) in both paths,
    # except an option priced within 4 ulp of its upper bound (the forward for a call, the
    # strike for a put): there beta and b_max = e^{x/2} are as close as the last ulp of each
    # path's log and exp (its build's contractions: the sanitized build's scalar code differs
    # from its lanes at 3 such calls on an AMD EPYC host), and no vol can be told (one ulp of
    # price moves it by 50 % to 1e23 %).
    nan = np.isnan(lanes)
    upper = np.where(g["call"], FORWARD, g["strike"])
    on_bound = upper - g["price"] <= 4 * np.spacing(upper)
    differ = (nan != np.isnan(one)) & ~on_bound
    assert not differ.any(), f"NaN differs at {np.flatnonzero(differ)[:5]}"
    assert on_bound.sum() < 500  # the exception is under 1 % of the 54,400 options
    # Where one ulp of a normal (not underflowed) price moves the vol by <= 1e-15 relative,
    # the two paths agree to 1e-14 relative (a few ulp of b(x, s) in each, amplified <= 10x).
    use = ~nan & (g["price"] >= 1e-300) & (g["cond"] <= 1e-15)
    h = -np.abs(np.log(FORWARD / g["strike"])) / (g["vol"] * np.sqrt(g["t"]))
    assert use.sum() > 10_000
    assert (use & (h < -10.0)).sum() > 1_000
    rel = np.where(use, np.abs(lanes - one) / np.where(use, one, 1.0), 0.0)
    i = int(np.argmax(rel))
    assert rel[i] <= 1e-14, (
        f"lanes {lanes[i]!r} vs scalar {one[i]!r} at K={g['strike'][i]} t={g['t'][i]} "
        f"vol={g['vol'][i]} call={g['call'][i]} price={g['price'][i]!r}"
    )
    # Both invert the price to the true vol there (closed-form prices of known vols).
    err = np.where(use, np.abs(lanes - g["vol"]) / g["vol"], 0.0)
    j = int(np.argmax(err))
    assert err[j] <= 1e-14, (
        f"vol {lanes[j]!r}, true {g['vol'][j]} at K={g['strike'][j]} t={g['t'][j]} "
        f"call={g['call'][j]} price={g['price'][j]!r}"
    )


def test_lanes_keep_nan_and_strict_per_option() -> None:
    # 11 options (a full register and a scalar remainder), two out of bounds. Source: the
    # no-arbitrage bounds of a call, [max(F - K, 0), F): NaN in arrays, and with strict=True
    # a ValueError naming the first bad index and its bounds; the others invert to 0.3.
    k = np.full(11, 120.0)
    price = bs.price(FORWARD, k, 1.0, 0.0, 0.0, 0.3, True)
    price[2] = 150.0  # above the forward: no vol
    price[9] = -1.0  # below the intrinsic value 0
    iv = bs.black_implied_vol(price, FORWARD, k, 1.0, True)
    assert np.isnan(iv[[2, 9]]).all(), f"{iv}"
    ok = np.delete(np.arange(11), [2, 9])
    assert np.abs(iv[ok] - 0.3).max() <= 1e-14, f"{iv}"
    ones = np.ones(11)
    with pytest.raises(ValueError, match=r"price 150 is outside .*\[0, 100\).*at index 2\)"):
        _core.black_implied_vol(
            price, FORWARD * ones, k, ones, np.ones(11, np.uint8), ones, strict=True
        )
