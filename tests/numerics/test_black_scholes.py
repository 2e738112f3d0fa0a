"""Black-Scholes-Merton prices and Greeks (v28quant.options.black_scholes).

Independent sources: put-call parity (closed form); E. G. Haug (2007), "The Complete Guide to
Option Pricing Formulas", 2nd ed., worked examples of ch. 1-2; QuantLib's BlackCalculator on a
random grid; the BSM formula evaluated in 40-digit arithmetic with mpmath (deep tails); central
finite differences of the price for the Greeks.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import QuantLib as ql
from v28quant.options import black_scholes as bs


def random_book(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "spot": rng.uniform(50.0, 150.0, n),
        "strike": rng.uniform(50.0, 150.0, n),
        "t": rng.uniform(1.0 / 365.0, 5.0, n),
        "rate": rng.uniform(-0.02, 0.10, n),
        "div": rng.uniform(0.0, 0.06, n),
        "vol": rng.uniform(0.01, 3.0, n),
        "call": rng.integers(0, 2, n).astype(bool),
    }


def test_put_call_parity() -> None:
    # Source: put-call parity C - P = S e^{-qT} - K e^{-rT}. Tolerance: 2e-14 * (S + K)
    # absolute, a few ulp of the two terms being differenced.
    b = random_book(20_000, seed=1)
    args = [b[k] for k in ("spot", "strike", "t", "rate", "div", "vol")]
    c = bs.price(*args, call=True)
    p = bs.price(*args, call=False)
    s, k, t, r, q = b["spot"], b["strike"], b["t"], b["rate"], b["div"]
    parity = s * np.exp(-q * t) - k * np.exp(-r * t)
    err = np.abs(c - p - parity)
    tol = 2e-14 * (s + k)
    i = int(np.argmax(err / tol))
    assert np.all(err <= tol), f"parity broken at {[a[i] for a in args]}: err {err[i]}"


# Haug (2007) worked examples, generalized BSM with cost of carry b = rate - div.
HAUG = [
    # (what, spot, strike, t, rate, div, vol, call, published value, page note)
    ("price", 60.0, 65.0, 0.25, 0.08, 0.0, 0.30, True, 2.1334, "1.1.1 BSM call"),
    ("price", 100.0, 95.0, 0.5, 0.10, 0.05, 0.20, False, 2.4648, "1.1.2 Merton put"),
    ("price", 19.0, 19.0, 0.75, 0.10, 0.10, 0.28, False, 1.7011, "1.1.3 Black-76 put"),
    ("delta", 105.0, 100.0, 0.5, 0.10, 0.10, 0.36, True, 0.5946, "2.1.1 futures call delta"),
    ("delta", 105.0, 100.0, 0.5, 0.10, 0.10, 0.36, False, -0.3566, "2.1.1 futures put delta"),
    ("gamma", 55.0, 60.0, 0.75, 0.10, 0.0, 0.30, True, 0.0278, "2.2.1 gamma"),
    ("theta", 430.0, 405.0, 0.0833, 0.07, 0.05, 0.20, False, -31.1924, "2.4.1 put theta"),
    ("rho", 72.0, 75.0, 1.0, 0.09, 0.0, 0.19, True, 38.7325, "2.5.1 call rho"),
]


@pytest.mark.parametrize("case", HAUG, ids=[c[-1] for c in HAUG])
def test_haug_published_values(case: tuple) -> None:
    # Source: Haug (2007), values printed to 4 decimals. Tolerance: half a unit of the last
    # printed digit (5e-5 absolute).
    what, s, k, t, r, q, v, call, published, _ = case
    got = (
        bs.price(s, k, t, r, q, v, call)
        if what == "price"
        else getattr(bs.greeks(s, k, t, r, q, v, call), what)
    )
    assert abs(got - published) <= 5e-5, f"{case}: got {got}"


def quantlib_reference(b: dict[str, np.ndarray], i: int) -> dict[str, float]:
    s, k, t, r, q, v = (float(b[n][i]) for n in ("spot", "strike", "t", "rate", "div", "vol"))
    kind = ql.Option.Call if b["call"][i] else ql.Option.Put
    fwd = s * math.exp((r - q) * t)
    df = math.exp(-r * t)
    calc = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, k), fwd, v * math.sqrt(t), df)
    return {
        "price": calc.value(),
        "delta": calc.delta(s),
        "gamma": calc.gamma(s),
        "vega": calc.vega(t),
        "theta": calc.theta(s, t),
        "rho": calc.rho(t),
    }


def test_against_quantlib_random_grid() -> None:
    # Source: QuantLib BlackCalculator (Black formula on the forward) on identical inputs.
    # Tolerance: 1e-12 relative plus 1e-13 * spot absolute. QuantLib's normal CDF is accurate
    # to ~1e-15 absolute, so far-out-of-the-money prices are compared in absolute terms; the
    # mpmath test below checks those tails in relative terms.
    b = random_book(1500, seed=2)
    ours = bs.greeks(*(b[n] for n in ("spot", "strike", "t", "rate", "div", "vol", "call")))
    price = bs.price(*(b[n] for n in ("spot", "strike", "t", "rate", "div", "vol", "call")))
    for i in range(len(price)):
        ref = quantlib_reference(b, i)
        got = {"price": price[i], **{f: getattr(ours, f)[i] for f in ours._fields}}
        scale = {
            "price": 1.0,
            "delta": 1.0,
            "gamma": 1.0 / b["spot"][i],
            "vega": 1.0,
            "theta": 1.0,
            "rho": 1.0,
        }
        for name, want in ref.items():
            tol = 1e-12 * abs(want) + 1e-13 * b["spot"][i] * scale[name] * max(1.0, b["t"][i])
            inputs = {n: b[n][i] for n in b}
            assert abs(got[name] - want) <= tol, f"{name} {got[name]} vs {want} for {inputs}"


def mp_bsm_price(s: float, k: float, t: float, r: float, q: float, v: float, call: bool) -> float:
    with mp.workdps(40):
        s, k, t, r, q, v = (mp.mpf(x) for x in (s, k, t, r, q, v))
        sd = v * mp.sqrt(t)
        d1 = (mp.log(s / k) + (r - q) * t) / sd + sd / 2
        d2 = d1 - sd
        w = 1 if call else -1
        return float(
            w * (s * mp.exp(-q * t) * mp.ncdf(w * d1) - k * mp.exp(-r * t) * mp.ncdf(w * d2))
        )


def test_tails_against_mpmath() -> None:
    # Source: the BSM formula in 40-digit arithmetic (mpmath). Covers far out-of-the-money
    # options whose price is 1e-300..1e-10 of spot (normal CDF down to about -37), where the
    # compiled exp/log/erfcx must keep relative accuracy. Tolerance: 2e-12 relative: the OTM
    # price is m (erfcx(z1) - erfcx(z2)) / 2 with z1/z2 up to ~0.998 here, so a few ulp of
    # erfcx grow by 1/(1 - z1/z2) ~ 500 (about 9e-13 at worst on 1500 such options).
    rng = np.random.default_rng(3)
    n = 300
    s = np.full(n, 100.0)
    k = np.exp(rng.uniform(np.log(0.2), np.log(5.0), n)) * 100.0
    t = rng.uniform(1.0 / 365.0, 2.0, n)
    v = rng.uniform(0.01, 0.4, n)
    r = rng.uniform(0.0, 0.05, n)
    q = rng.uniform(0.0, 0.03, n)
    call = k > s  # out of the money: the price is the small difference
    got = bs.price(s, k, t, r, q, v, call)
    checked = 0
    for i in range(n):
        want = mp_bsm_price(s[i], k[i], t[i], r[i], q[i], v[i], bool(call[i]))
        if want < 1e-300:
            continue
        checked += 1
        rel = abs(got[i] - want) / want
        assert rel <= 2e-12, (
            f"rel err {rel} at S={s[i]} K={k[i]} t={t[i]} v={v[i]} r={r[i]} q={q[i]}"
        )
    assert checked > 200


def test_greeks_match_finite_differences() -> None:
    # Source: central finite differences of the price itself (h = 1e-4 relative; error
    # O(h^2) ~ 1e-8 relative plus round-off ~1e-16/h^2 for gamma). Tolerance: 1e-6 relative
    # to the Greek's scale.
    b = random_book(200, seed=4)
    b["vol"] = np.clip(b["vol"], 0.05, 1.0)
    b["t"] = np.clip(b["t"], 0.05, 5.0)
    s, k, t, r, q, v, c = (b[n] for n in ("spot", "strike", "t", "rate", "div", "vol", "call"))
    g = bs.greeks(s, k, t, r, q, v, c)
    hs, hv, ht, hr = 1e-4 * s, 1e-4, 1e-5, 1e-5

    def p(**kw: np.ndarray) -> np.ndarray:
        a = {"spot": s, "strike": k, "t": t, "rate": r, "div": q, "vol": v, "call": c} | kw
        return bs.price(**a)

    fd = {
        "delta": (p(spot=s + hs) - p(spot=s - hs)) / (2 * hs),
        "gamma": (p(spot=s + hs) - 2 * p() + p(spot=s - hs)) / hs**2,
        "vega": (p(vol=v + hv) - p(vol=v - hv)) / (2 * hv),
        "theta": -(p(t=t + ht) - p(t=t - ht)) / (2 * ht),
        "rho": (p(rate=r + hr) - p(rate=r - hr)) / (2 * hr),
    }
    scale = {"delta": 1.0, "gamma": 1.0 / s, "vega": s, "theta": s, "rho": s * t}
    for name, want in fd.items():
        got = getattr(g, name)
        err = np.abs(got - want) / scale[name]
        i = int(np.argmax(err))
        tol = 1e-5 if name == "gamma" else 1e-6
        assert err[i] <= tol, (
            f"{name}: {got[i]} vs FD {want[i]} at {[x[i] for x in (s, k, t, r, q, v, c)]}"
        )


def test_zero_time_or_vol_is_discounted_forward_intrinsic() -> None:
    # Source: the limit sd -> 0 of the formula: max(+-(S e^{-qT} - K e^{-rT}), 0).
    assert bs.price(110.0, 100.0, 0.0, 0.05, 0.0, 0.2, True) == pytest.approx(10.0, abs=1e-14)
    assert bs.price(90.0, 100.0, 0.0, 0.05, 0.0, 0.2, True) == 0.0
    want = 100.0 * math.exp(-0.05) - 90.0 * math.exp(-0.02)
    got = bs.price(90.0, 100.0, 1.0, 0.05, 0.02, 0.0, False)
    assert got == pytest.approx(want, rel=1e-14)
    g = bs.greeks(90.0, 100.0, 1.0, 0.05, 0.02, 0.0, False)
    assert g.gamma == 0.0
    assert g.vega == 0.0
    assert g.delta == pytest.approx(-math.exp(-0.02), rel=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"spot": float("nan")}, "spot"),
        ({"spot": 0.0}, "spot"),
        ({"strike": -1.0}, "strike"),
        ({"t": -0.1}, "t"),
        ({"vol": -0.2}, "vol"),
        ({"vol": float("nan")}, "vol"),
        ({"rate": float("inf")}, "rate"),
        ({"div": float("nan")}, "div"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(kwargs: dict, name: str) -> None:
    base = {"spot": 100.0, "strike": 100.0, "t": 1.0, "rate": 0.01, "div": 0.0, "vol": 0.2}
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        bs.price(**(base | kwargs))
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        bs.greeks(**(base | kwargs))


def test_bad_element_in_array_is_reported_with_its_index() -> None:
    vol = np.array([0.2, 0.3, -0.1, 0.2])
    with pytest.raises(ValueError, match=r"vol must be >= 0, got -0.1 at index 2"):
        bs.price(100.0, 100.0, 1.0, 0.0, 0.0, vol)


def test_broadcasting_and_scalar_output() -> None:
    # Source: numpy broadcasting rules; each element equals the scalar call.
    assert isinstance(bs.price(100, 100, 1, 0.01, 0, 0.2), float)
    assert isinstance(bs.greeks(100, 100, 1, 0.01, 0, 0.2).delta, float)
    strikes = np.array([[90.0], [100.0], [110.0]])
    vols = np.array([0.1, 0.2, 0.3, 0.4])
    out = bs.price(100.0, strikes, 1.0, 0.01, 0.0, vols, call=[True, False, True, False])
    assert out.shape == (3, 4)
    assert out[2, 1] == bs.price(100.0, 110.0, 1.0, 0.01, 0.0, 0.2, call=False)
    g = bs.greeks(100.0, strikes, 1.0, 0.01, 0.0, vols)
    assert g.gamma.shape == (3, 4)
    with pytest.raises(ValueError, match="do not broadcast"):
        bs.price([100.0, 101.0], [1.0, 2.0, 3.0], 1.0, 0.0, 0.0, 0.2)


def test_call_flag_accepts_bool_int_and_float_arrays() -> None:
    # Source: put-call parity C - P = S e^{-qT} - K e^{-rT} (closed form), with the flag given
    # as bools, ints and floats (nonzero and NaN mean call, as numpy's astype(bool)), broadcast
    # from a scalar and strided. Tolerance 1e-12 absolute (prices of order 10).
    s, k, t, r, q, v = 100.0, np.array([90.0, 100.0, 110.0, 120.0]), 1.5, 0.03, 0.01, 0.25
    fwd = s * math.exp(-q * t) - k * math.exp(-r * t)
    calls = bs.price(s, k, t, r, q, v, call=True)
    puts = bs.price(s, k, t, r, q, v, call=False)
    assert np.allclose(calls - puts, fwd, rtol=0.0, atol=1e-12), (calls, puts, fwd)
    for flags in (
        np.array([True, False, True, False]),
        np.array([1, 0, 7, 0]),
        np.array([1.0, 0.0, np.nan, -0.0]),
        np.array([1.0, 9.0, 0.0, 9.0, 2.0, 9.0, 0.0, 9.0])[::2],
    ):
        got = bs.price(s, k, t, r, q, v, call=flags)
        want = np.where([True, False, True, False], calls, puts)
        assert np.array_equal(got, want), f"flags {flags}: {got} vs {want}"
        g = bs.greeks(s, k, t, r, q, v, call=flags)
        assert (g.delta[[0, 2]] > 0).all(), (flags, g.delta)
        assert (g.delta[[1, 3]] < 0).all(), (flags, g.delta)
