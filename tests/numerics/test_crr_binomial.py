"""CRR binomial tree (v28quant.quant_models.crr_binomial).

Independent sources: the one-step tree in closed form (Cox, Ross & Rubinstein 1979); the BSM
price of QuantLib's BlackCalculator (the tree's limit); QuantLib's BinomialVanillaEngine("crr");
QuantLib's QdFpAmericanEngine with its high-precision scheme (Andersen-Lake-Offengenden
fixed-point iteration, ~1e-10) for American prices; Merton's (1973) theorem that an American
call on a non-dividend stock is never exercised early.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import QuantLib as ql
from v28quant.quant_models import crr_binomial as crr


def black(
    s: float, k: float, t: float, r: float, q: float, v: float, call: bool
) -> ql.BlackCalculator:
    kind = ql.Option.Call if call else ql.Option.Put
    return ql.BlackCalculator(
        ql.PlainVanillaPayoff(kind, k),
        s * math.exp((r - q) * t),
        v * math.sqrt(t),
        math.exp(-r * t),
    )


def ql_option(s, k, days, r, q, v, call, american, engine, steps=None):
    """Return a QuantLib option with t = days / 365 (Actual/365 Fixed), and the t it implies."""
    today = ql.Date(15, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    maturity = today + days
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k)
    exercise = ql.AmericanExercise(today, maturity) if american else ql.EuropeanExercise(maturity)
    option = ql.VanillaOption(payoff, exercise)
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(s)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), v, dc)),
    )
    if engine == "crr":
        option.setPricingEngine(ql.BinomialVanillaEngine(process, "crr", steps))
    else:
        option.setPricingEngine(
            ql.QdFpAmericanEngine(process, ql.QdFpAmericanEngine.highPrecisionScheme())
        )
    return option, days / 365.0


@pytest.mark.parametrize("american", [False, True])
@pytest.mark.parametrize("call", [True, False])
def test_one_step_tree_closed_form(call: bool, american: bool) -> None:
    # Source: CRR (1979) one-period formula, value = e^{-r dt} (p f_u + (1-p) f_d), and for an
    # American option the larger of that and immediate exercise. Tolerance 1e-13 relative.
    s, k, t, r, q, v = 100.0, 95.0, 0.5, 0.06, 0.02, 0.3
    u = math.exp(v * math.sqrt(t))
    d = 1.0 / u
    p = (math.exp((r - q) * t) - d) / (u - d)
    pay = (lambda x: max(x - k, 0.0)) if call else (lambda x: max(k - x, 0.0))
    want = math.exp(-r * t) * (p * pay(s * u) + (1 - p) * pay(s * d))
    if american:
        want = max(want, pay(s))
    got = crr.price(s, k, t, r, q, v, call=call, american=american, steps=1)
    assert got == pytest.approx(want, rel=1e-13), (call, american, got, want)


@pytest.mark.parametrize("call", [True, False])
def test_european_at_the_money_converges_to_bsm_at_rate_one_over_n(call: bool) -> None:
    # Source: BSM closed form (QuantLib BlackCalculator). At the money the CRR error is
    # c / N + o(1/N) (averaging N and N+1 removes the odd/even swing). Check: the slope of
    # log|error| against log N over N = 100..3200 is -1 +- 0.1.
    s, k, t, r, q, v = 100.0, 100.0, 1.0, 0.05, 0.02, 0.25
    ref = black(s, k, t, r, q, v, call).value()
    ns = np.array([100, 200, 400, 800, 1600, 3200])
    errs = []
    for n in ns:
        pair = [
            crr.price(s, k, t, r, q, v, call=call, american=False, steps=int(m)) for m in (n, n + 1)
        ]
        errs.append(abs(0.5 * (pair[0] + pair[1]) - ref))
    slope = np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert -1.1 <= slope <= -0.9, f"slope {slope}, errors {errs}"


@pytest.mark.parametrize(("k", "call"), [(90.0, False), (120.0, True)])
def test_european_off_the_money_error_is_bounded_by_c_over_n(k: float, call: bool) -> None:
    # Source: BSM closed form (QuantLib). Away from the money the CRR error oscillates with N
    # (the strike moves between nodes) inside an O(1/N) envelope. Check: N |error| stays
    # below 2.5 over windows N..N+11 at N = 100, 400, 1600 (measured envelope 1.1-1.9), i.e. it
    # does not grow as N grows 16-fold.
    s, t, r, q, v = 100.0, 1.0, 0.05, 0.02, 0.25
    ref = black(s, k, t, r, q, v, call).value()
    for n in (100, 400, 1600):
        env = max(
            m * abs(crr.price(s, k, t, r, q, v, call=call, american=False, steps=m) - ref)
            for m in range(n, n + 12)
        )
        assert env <= 2.5, f"K={k} call={call}: N|error| envelope {env} at N={n}"


CASES = [
    # spot, strike, days, rate, div, vol, call
    (100.0, 100.0, 365, 0.05, 0.02, 0.25, False),
    (100.0, 110.0, 180, 0.03, 0.00, 0.40, False),
    (36.0, 40.0, 365, 0.06, 0.00, 0.20, False),  # Longstaff & Schwartz (2001) table 1 row 1
    (100.0, 95.0, 730, 0.02, 0.06, 0.30, True),  # call with a dividend yield: early exercise
]


@pytest.mark.parametrize("case", CASES)
def test_american_against_quantlib_crr_at_same_steps(case: tuple) -> None:
    # Source: QuantLib BinomialVanillaEngine("crr", N). QuantLib's CRR tree uses the
    # drift-adjusted probability p = 1/2 + (r - q - vol^2/2) sqrt(dt) / (2 vol) (see
    # ql/methods/lattices/binomialtree.cpp, CoxRossRubinstein), which equals the textbook
    # p = (e^{(r-q)dt} - d) / (u - d) only to O(dt^{3/2}). The prices therefore differ by
    # c / N with a case-dependent c (measured 0.009-0.23): we assert |diff| <= 0.5 (S/100) / N
    # and, sharply, that the difference halves when N doubles (ratio 2 +- 0.05): the two
    # trees agree except for that probability term.
    s, k, days, r, q, v, call = case
    diffs = []
    for n in (500, 1000, 2000):
        option, t = ql_option(s, k, days, r, q, v, call, True, "crr", n)
        ours = crr.price(s, k, t, r, q, v, call=call, american=True, steps=n)
        diff = ours - option.NPV()
        assert abs(diff) <= 0.5 * (s / 100.0) / n, f"{case} N={n}: ours {ours} QL {option.NPV()}"
        diffs.append(diff)
    for a, b in itertools.pairwise(diffs):
        assert 1.95 <= a / b <= 2.05, f"{case}: differences {diffs} do not shrink like 1/N"


@pytest.mark.parametrize("case", CASES)
def test_american_against_high_precision_price(case: tuple) -> None:
    # Source: QuantLib QdFpAmericanEngine, high-precision scheme (~1e-10). The tree's error is
    # O(1/N): at N = 2000 and 4000 we allow 4 (S / 100) / N absolute (measured N |error| up to
    # 2.7). At the money the error is smooth in N, so the Richardson combination 2 P(2N) - P(N)
    # removes the 1/N term: there we allow 1e-4 (measured 1e-5).
    s, k, days, r, q, v, call = case
    option, t = ql_option(s, k, days, r, q, v, call, True, "qdfp")
    ref = option.NPV()
    p1 = crr.price(s, k, t, r, q, v, call=call, american=True, steps=2000)
    p2 = crr.price(s, k, t, r, q, v, call=call, american=True, steps=4000)
    assert abs(p1 - ref) <= 4.0 * (s / 100.0) / 2000, f"{case}: {p1} vs {ref}"
    assert abs(p2 - ref) <= 4.0 * (s / 100.0) / 4000, f"{case}: {p2} vs {ref}"
    if s == k:
        assert abs(2 * p2 - p1 - ref) <= 1e-4, f"{case}: Richardson {2 * p2 - p1} vs {ref}"


@pytest.mark.parametrize("k", [80.0, 100.0, 130.0])
def test_american_call_without_dividends_equals_european(k: float) -> None:
    # Source: Merton (1973): never exercise an American call on a non-dividend stock early
    # (r >= 0). On the tree the max never picks exercise, so the prices agree to round-off;
    # both also approach the BSM value (QuantLib) at O(1/N).
    s, t, r, v = 100.0, 1.5, 0.04, 0.3
    am = crr.greeks(s, k, t, r, 0.0, v, call=True, american=True, steps=801)
    eu = crr.greeks(s, k, t, r, 0.0, v, call=True, american=False, steps=801)
    for f in am._fields:
        assert getattr(am, f) == pytest.approx(getattr(eu, f), rel=1e-14, abs=1e-15), f
    assert abs(am.price - black(s, k, t, r, 0.0, v, True).value()) <= 0.05


def test_tree_greeks_approach_bsm_greeks() -> None:
    # Source: BSM Greeks (QuantLib BlackCalculator) as the N -> infinity limit of the tree's
    # European Greeks. Tolerance O(1/N) at N = 2000 (Hull's formulas are first order):
    # delta 1e-3, gamma 1e-4, theta 1e-2 absolute.
    s, k, t, r, q, v = 100.0, 105.0, 0.75, 0.04, 0.01, 0.3
    for call in (True, False):
        g = crr.greeks(s, k, t, r, q, v, call=call, american=False, steps=2000)
        ref = black(s, k, t, r, q, v, call)
        assert abs(g.delta - ref.delta(s)) <= 1e-3, (call, g.delta, ref.delta(s))
        assert abs(g.gamma - ref.gamma(s)) <= 1e-4, (call, g.gamma, ref.gamma(s))
        assert abs(g.theta - ref.theta(s, t)) <= 1e-2, (call, g.theta, ref.theta(s, t))


def test_american_tree_greeks_against_quantlib_crr() -> None:
    # Source: QuantLib BinomialVanillaEngine("crr", N) delta, gamma, theta (same first-level
    # formulas). Tolerance O(1/N) for the probability convention noted above: at N = 1000
    # delta 1e-5, gamma 1e-6, theta 1e-3.
    s, k, days, r, q, v = 100.0, 100.0, 365, 0.05, 0.02, 0.25
    option, t = ql_option(s, k, days, r, q, v, False, True, "crr", 1000)
    g = crr.greeks(s, k, t, r, q, v, call=False, american=True, steps=1000)
    assert abs(g.delta - option.delta()) <= 1e-5, (g.delta, option.delta())
    assert abs(g.gamma - option.gamma()) <= 1e-6, (g.gamma, option.gamma())
    assert abs(g.theta - option.theta()) <= 1e-3, (g.theta, option.theta())


def test_probability_outside_unit_interval_names_steps() -> None:
    # p = (e^{(r-q)dt} - d) / (u - d) > 1 when (r - q) sqrt(dt) > vol: 10 steps over 10 years
    # at 50 % carry and 5 % vol need steps >= 10 * 0.5^2 / 0.05^2 = 1000.
    with pytest.raises(ValueError, match=r"outside \[0, 1\] with steps = 10.*use steps >= 1000"):
        crr.price(100.0, 100.0, 10.0, 0.5, 0.0, 0.05, call=False, steps=10)
    assert crr.price(100.0, 100.0, 10.0, 0.5, 0.0, 0.05, call=False, steps=1000) >= 0.0


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"spot": float("nan")}, "^spot must be"),
        ({"spot": 0.0}, "^spot must be > 0"),
        ({"strike": -1.0}, "^strike must be"),
        ({"t": -0.5}, "^t must be >= 0"),
        ({"vol": -0.2}, "^vol must be >= 0"),
        ({"vol": float("inf")}, "^vol must be"),
        ({"rate": float("nan")}, "^rate must be finite"),
        ({"steps": 0}, "^steps must be >= 1"),
        ({"steps": 2.5}, "^steps must be an integer"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(kwargs: dict, pattern: str) -> None:
    base = {
        "spot": 100.0,
        "strike": 100.0,
        "t": 1.0,
        "rate": 0.03,
        "div": 0.0,
        "vol": 0.2,
        "steps": 50,
    }
    with pytest.raises(ValueError, match=pattern):
        crr.price(**(base | kwargs))


def test_greeks_need_two_steps_and_zero_time_is_payoff() -> None:
    with pytest.raises(ValueError, match=r"^steps must be >= 2 for Greeks"):
        crr.greeks(100.0, 100.0, 1.0, 0.03, 0.0, 0.2, steps=1)
    assert crr.price(110.0, 100.0, 0.0, 0.03, 0.0, 0.2, call=True) == 10.0
    assert crr.price(110.0, 100.0, 0.0, 0.03, 0.0, 0.2, call=False) == 0.0


def test_broadcasting_and_scalar_output() -> None:
    assert isinstance(crr.price(100, 100, 1, 0.03, 0, 0.2), float)
    g = crr.greeks(100, 100, 1, 0.03, 0, 0.2)
    assert isinstance(g.gamma, float)
    strikes = np.array([[90.0], [110.0]])
    out = crr.price(
        100.0,
        strikes,
        1.0,
        0.03,
        0.0,
        [0.2, 0.3, 0.4],
        call=False,
        american=[True, False, True],
        steps=64,
    )
    assert out.shape == (2, 3)
    assert out[1, 1] == crr.price(
        100.0, 110.0, 1.0, 0.03, 0.0, 0.3, call=False, american=False, steps=64
    )
    gg = crr.greeks(100.0, strikes, 1.0, 0.03, 0.0, [0.2, 0.3, 0.4], steps=64)
    assert gg.delta.shape == (2, 3)


def _ql_american(spot, strike, t_days, rate, div, vol, call):
    """QuantLib American option on a flat Actual/365 world, t = t_days / 365."""
    today = ql.Date(2, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, div, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)),
    )
    kind = ql.Option.Call if call else ql.Option.Put
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(kind, strike), ql.AmericanExercise(today, today + t_days)
    )
    option.setPricingEngine(ql.QdFpAmericanEngine(process))
    return option.NPV()


@pytest.mark.parametrize(
    ("spot", "strike", "rate", "div", "call"),
    [
        (100.0, 110.0, 0.05, 0.0, False),  # put: exercise now
        (100.0, 90.0, 0.05, 0.08, True),  # call with a high yield: exercise now
        (100.0, 90.0, 0.05, 0.0, True),  # call without yield: hold to expiry
        (100.0, 97.0, 0.01, 0.03, False),  # put: the forward rises past the strike, exercise now
        (100.0, 105.0, 0.04, 0.05, False),  # put: the value still grows at expiry
        (100.0, 119.4, 0.05, 0.06, False),  # put at an interior best date tau* = 0.5
        (100.0, 120.0, 0.05, 0.02, True),  # out of the money forever: 0
    ],
)
def test_american_at_zero_vol_is_the_deterministic_optimum_as_quantlib(
    spot: float, strike: float, rate: float, div: float, call: bool
) -> None:
    # Source: QuantLib QdFpAmericanEngine (the fixed-point American engine, exact at vol = 0)
    # and the closed form max over tau in [0, t] of the discounted exercise value on a fine grid;
    # tolerance 1e-9 absolute (QdFp's own accuracy).
    t = 1.0
    got = crr.price(spot, strike, t, rate, div, 0.0, call=call, american=True, steps=50)
    w = 1.0 if call else -1.0
    tau = np.linspace(0.0, t, 200_001)
    grid = np.max(np.maximum(w * (spot * np.exp(-div * tau) - strike * np.exp(-rate * tau)), 0.0))
    ql_price = _ql_american(spot, strike, 365, rate, div, 0.0, call)
    args = (spot, strike, t, rate, div, call)
    assert got == pytest.approx(grid, abs=1e-8), f"{args}: ours {got}, grid max {grid}"
    assert got == pytest.approx(ql_price, abs=1e-9), f"{args}: ours {got}, QuantLib {ql_price}"
    euro = crr.price(spot, strike, t, rate, div, 0.0, call=call, american=False)
    fwd_value = max(w * (spot * np.exp(-div * t) - strike * np.exp(-rate * t)), 0.0)
    assert euro == pytest.approx(fwd_value, abs=1e-12), f"{args}: European {euro}"


def test_zero_vol_greeks_are_the_envelope_derivatives() -> None:
    # Put exercised now: value K - S, delta -1, theta 0. Call held to expiry: value
    # S e^{-q t} - K e^{-r t}, delta e^{-q t}, theta -(r K e^{-r t} - q S e^{-q t}) per year.
    g = crr.greeks(100.0, 110.0, 1.0, 0.05, 0.0, 0.0, call=False)
    assert (g.price, g.delta, g.gamma, g.theta) == pytest.approx((10.0, -1.0, 0.0, 0.0), abs=1e-14)
    g = crr.greeks(100.0, 90.0, 1.0, 0.05, 0.01, 0.0, call=True)
    want_theta = -(0.05 * 90.0 * math.exp(-0.05) - 0.01 * 100.0 * math.exp(-0.01))
    assert g.price == pytest.approx(100.0 * math.exp(-0.01) - 90.0 * math.exp(-0.05), abs=1e-12)
    assert g.delta == pytest.approx(math.exp(-0.01), abs=1e-15)
    assert g.theta == pytest.approx(want_theta, abs=1e-12)


@pytest.mark.parametrize(("div", "call"), [(0.02, True), (-0.01, True), (0.02, False)])
def test_american_zero_strike_as_quantlib(div: float, call: bool) -> None:
    # Source: QuantLib QdFpAmericanEngine on the same inputs (tolerance 1e-8, its accuracy) and
    # the closed form S max(1, e^{-div t}) for the call (hold the share's forward or take S now),
    # 0 for the put (tolerance 1e-10: the tree reproduces S e^{-div tau} exactly).
    got = crr.price(100.0, 0.0, 1.0, 0.05, div, 0.2, call=call, steps=500)
    want = 100.0 * max(1.0, math.exp(-div)) if call else 0.0
    ql_price = _ql_american(100.0, 0.0, 365, 0.05, div, 0.2, call)
    assert got == pytest.approx(want, abs=1e-10), f"div={div} call={call}: {got} vs {want}"
    assert got == pytest.approx(ql_price, abs=1e-8), f"div={div} call={call}: QuantLib {ql_price}"
