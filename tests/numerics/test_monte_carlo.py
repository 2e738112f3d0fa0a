"""Monte Carlo pricer: Philox known answers, BSM agreement, variance reduction, determinism.

Sources: Random123 tests/kat_vectors (Philox4x32-10 known answers); Black-Scholes-Merton closed
form (v28quant.options.black_scholes, itself checked against QuantLib elsewhere); QuantLib
AnalyticDiscreteGeometricAveragePriceAsianEngine for the geometric Asian control; an independent
numpy simulation for the arithmetic Asian. Monte Carlo tolerances are 3 standard errors (two
estimates: 3 sqrt(se1^2 + se2^2)), with fixed seeds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import QuantLib as ql
from scipy import stats
from v28quant import _core
from v28quant.options import black_scholes as bs
from v28quant.quant_models import monte_carlo_pricer as mc

# Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key, expected output.
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox_known_answers(counter: list[int], key: list[int], expected: list[int]) -> None:
    got = list(_core.rng_philox4x32_10(counter, key))
    assert got == expected, f"counter={counter} key={key}: {[hex(x) for x in got]}"


def test_normals_are_standard_normal() -> None:
    # Kolmogorov-Smirnov against scipy's N(0, 1) CDF, and the first four moments within
    # 4 standard errors of 0, 1, 0, 3 (n = 400 000).
    n = 400_000
    z = _core.rng_normals(7, 0, 0, 0, n)
    ks = stats.kstest(z, "norm")
    assert ks.pvalue > 1e-3, f"KS statistic {ks.statistic}, p = {ks.pvalue}"
    for k, target, sd in (
        (1, 0.0, 1.0),
        (2, 1.0, math.sqrt(2)),
        (3, 0.0, math.sqrt(15)),
        (4, 3.0, math.sqrt(96)),
    ):
        m = float(np.mean(z**k))
        assert abs(m - target) < 4 * sd / math.sqrt(n), f"moment {k}: {m}"


CASES = [
    (100.0, 100.0, 1.0, 0.05, 0.02, 0.2, True),
    (100.0, 120.0, 0.5, 0.03, 0.00, 0.3, True),
    (100.0, 90.0, 2.0, 0.01, 0.03, 0.25, False),
    (50.0, 60.0, 0.25, 0.04, 0.01, 0.4, False),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    ("anti", "cv"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_european_within_three_se_of_bsm(case: tuple, anti: bool, cv: bool) -> None:
    spot, strike, t, rate, div, vol, call = case
    r = mc.european(
        spot,
        strike,
        t,
        rate,
        div,
        vol,
        call,
        paths=200_000,
        seed=11,
        antithetic=anti,
        control_variate=cv,
    )
    exact = bs.price(spot, strike, t, rate, div, vol, call)
    assert abs(r.price - exact) < 3 * r.stderr, f"{case} anti={anti} cv={cv}: {r} vs {exact}"
    assert r.paths == 200_000


_NARROW_BUILD_SCRIPT = """
import json
import numpy as np
from scipy import stats
from v28quant import _core
from v28quant.quant_models import monte_carlo_pricer as mc
out = {}
for i, (s, k, t, r, q, v, call) in enumerate(%r):
    for anti, cv in ((False, False), (True, True)):
        res = mc.european(s, k, t, r, q, v, call, paths=100_000, seed=13, antithetic=anti,
                          control_variate=cv)
        out[f"{i} {anti} {cv}"] = [res.price, res.stderr]
out["ks_p"] = float(stats.kstest(_core.rng_normals(3, 0, 0, 0, 200_000), "norm").pvalue)
print(json.dumps(out))
"""


@pytest.mark.parametrize("isa", ["avx2", "base"])
def test_narrower_simd_builds_price_within_three_se_of_bsm(isa: str) -> None:
    # The core picks its widest kernel build at run time; V28_SIMD caps it, so the AVX2 + FMA and
    # baseline builds are checked here too (on a CPU without them the cap changes nothing).
    # Sources: Black-Scholes-Merton closed form (3 standard errors); scipy's N(0, 1) CDF (KS).
    env = dict(os.environ, V28_SIMD=isa)
    done = subprocess.run(
        [sys.executable, "-c", _NARROW_BUILD_SCRIPT % (CASES,)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["ks_p"] > 1e-3, f"{isa}: KS p = {out['ks_p']}"
    for i, case in enumerate(CASES):
        exact = bs.price(*case)
        for anti, cv in ((False, False), (True, True)):
            price, se = out[f"{i} {anti} {cv}"]
            assert abs(price - exact) < 3 * se, (
                f"{isa} {case} anti={anti}: {price} +- {se} vs {exact}"
            )


def test_variance_reduction_is_measured_against_a_plain_run() -> None:
    # The plain run's own standard error is the independent yardstick: antithetic + control
    # variate must need several times fewer paths for the same error.
    args = (100.0, 100.0, 1.0, 0.05, 0.02, 0.2, True)
    plain = mc.european(*args, paths=200_000, seed=3, antithetic=False, control_variate=False)
    both = mc.european(*args, paths=200_000, seed=3)
    measured = (plain.stderr / both.stderr) ** 2
    assert measured > 5.0, f"plain {plain}, reduced {both}"
    assert plain.variance_reduction == pytest.approx(1.0)
    # The reported factor estimates the same ratio from the reduced run's own payoffs.
    assert both.variance_reduction == pytest.approx(measured, rel=0.05)

    asian_plain = mc.asian(
        *args, steps=52, paths=50_000, seed=3, antithetic=False, control_variate=False
    )
    asian_both = mc.asian(*args, steps=52, paths=50_000, seed=3)
    assert (asian_plain.stderr / asian_both.stderr) ** 2 > 100.0, f"{asian_plain} {asian_both}"


@pytest.mark.parametrize("threads", [2, 3])
def test_identical_for_any_thread_count(threads: int) -> None:
    args = (100.0, 105.0, 1.0, 0.05, 0.02, 0.2, True)
    for fn, kw in ((mc.european, {}), (mc.asian, {"steps": 13})):
        one = fn(*args, paths=50_001, seed=5, threads=1, **kw)
        many = fn(*args, paths=50_001, seed=5, threads=threads, **kw)
        assert one == many, f"{fn.__name__}: {one} != {many}"
    h = (100.0, 100.0, 0.5, 0.03, 0.0, 0.04, 1.5, 0.04, 0.5, -0.7)
    assert mc.heston_european(*h, steps=8, paths=9_000, threads=1) == mc.heston_european(
        *h, steps=8, paths=9_000, threads=threads
    )


def test_seed_changes_the_draws() -> None:
    a = mc.european(100, 100, 1, 0.05, 0.0, 0.2, paths=10_000, seed=1)
    b = mc.european(100, 100, 1, 0.05, 0.0, 0.2, paths=10_000, seed=2)
    assert a.price != b.price


def _ql_geometric_asian(spot, strike, t, rate, div, vol, call, steps) -> float:
    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    days = round(t * 365)
    fixings = [today + round(days * (i + 1) / steps) for i in range(steps)]
    proc = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, div, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)),
    )
    opt = ql.DiscreteAveragingAsianOption(
        ql.Average.Geometric,
        1.0,
        0,
        fixings,
        ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, strike),
        ql.EuropeanExercise(fixings[-1]),
    )
    opt.setPricingEngine(ql.AnalyticDiscreteGeometricAveragePriceAsianEngine(proc))
    return opt.NPV()


@pytest.mark.parametrize("call", [True, False])
def test_geometric_asian_control_matches_quantlib(call: bool) -> None:
    # QuantLib on identical inputs (t = 360/365, fixings every 30 days): 1e-10 absolute.
    args = (100.0, 95.0, 360 / 365, 0.04, 0.01, 0.3, call)
    ours = mc.geometric_asian(*args, steps=12)
    ref = _ql_geometric_asian(*args, steps=12)
    assert abs(ours - ref) < 1e-10, f"{args}: ours {ours}, QuantLib {ref}"


def test_arithmetic_asian_against_numpy_simulation() -> None:
    # An independent simulation with numpy's generator; the two estimates agree within
    # 3 combined standard errors.
    spot, strike, t, rate, div, vol, steps = 100.0, 100.0, 1.0, 0.05, 0.02, 0.25, 12
    ours = mc.asian(spot, strike, t, rate, div, vol, True, steps=steps, paths=100_000, seed=9)
    rng = np.random.default_rng(2024)
    dt = t / steps
    z = rng.standard_normal((200_000, steps))
    logs = np.cumsum((rate - div - 0.5 * vol**2) * dt + vol * math.sqrt(dt) * z, axis=1)
    pay = math.exp(-rate * t) * np.maximum(spot * np.exp(logs).mean(axis=1) - strike, 0.0)
    ref, ref_se = pay.mean(), pay.std(ddof=1) / math.sqrt(pay.size)
    assert abs(ours.price - ref) < 3 * math.hypot(ours.stderr, ref_se), (
        f"{ours} vs {ref} +- {ref_se}"
    )


def test_mispricing_in_vol_points_against_closed_form() -> None:
    # Model price at 25 % vol against a mid at 20 % vol: 5.0 vol points, by construction of the
    # BSM closed form; edge in standard errors is edge / stderr.
    spot, strike, t, rate, div = 100.0, 110.0, 0.5, 0.03, 0.01
    model = bs.price(spot, strike, t, rate, div, 0.25, True)
    mid = bs.price(spot, strike, t, rate, div, 0.20, True)
    m = mc.mispricing(model, mid, spot, strike, t, rate, div, True, model_stderr=0.01)
    assert m.edge_vol_points == pytest.approx(5.0, abs=1e-8), m
    assert m.edge_stderr == pytest.approx((model - mid) / 0.01, rel=1e-12), m
    assert math.isnan(mc.mispricing(200.0, mid, spot, strike, t, rate, div, True).model_vol)


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="vol must be > 0"):
        mc.european(100, 100, 1, 0.05, 0.0, -0.2)
    with pytest.raises(ValueError, match="strike must be > 0"):
        mc.asian(100, 0.0, 1, 0.05, 0.0, 0.2)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        mc.asian(100, 100, 1, 0.05, 0.0, 0.2, steps=0)
    with pytest.raises(ValueError, match="paths must be >= 4"):
        mc.european(100, 100, 1, 0.05, 0.0, 0.2, paths=2)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        mc.european(100, 100, 1, 0.05, 0.0, 0.2, threads=0)
    with pytest.raises(ValueError, match="rho must be in"):
        mc.heston_european(100, 100, 1, 0.0, 0.0, 0.04, 1.0, 0.04, 0.5, -1.5)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"steps": 0}, "^steps must be >= 1"),
        ({"vol": -0.2}, "^vol must be > 0"),
        ({"spot": float("nan")}, "^spot must be"),
        ({"strike": 0.0}, "^strike must be > 0"),
        ({"t": -1.0}, "^t must be > 0"),
    ],
)
def test_geometric_asian_validates_its_inputs(kwargs: dict, pattern: str) -> None:
    # steps = 0 once gave NaN and vol = -0.2 a price.
    base = {"spot": 100.0, "strike": 100.0, "t": 1.0, "rate": 0.02, "div": 0.0, "vol": 0.2}
    args = base | {k: v for k, v in kwargs.items() if k != "steps"}
    with pytest.raises(ValueError, match=pattern):
        mc.geometric_asian(**args, steps=kwargs.get("steps", 12))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"paths": -5}, "^paths must be >= 4, got -5"),
        ({"paths": 2.5}, "^paths must be an integer"),
        ({"seed": -1}, "^seed must be >= 0, got -1"),
        ({"seed": 2**64}, "^seed must be <= 18446744073709551615"),
        ({"threads": 0}, "^threads must be >= 1"),
        ({"steps": -3}, "^steps must be >= 1"),
    ],
)
def test_counts_are_checked_with_a_value_error_naming_them(kwargs: dict, pattern: str) -> None:
    # Negative paths or seeds once reached pybind11 as a TypeError with a signature dump.
    base = (100.0, 100.0, 1.0, 0.02, 0.0, 0.2)
    price = mc.asian if "steps" in kwargs else mc.european
    with pytest.raises(ValueError, match=pattern):
        price(*base, **kwargs)
    if "steps" not in kwargs:
        with pytest.raises(ValueError, match=pattern):
            mc.merton_european(*base, 1.0, 0.0, 0.1, **kwargs)


def _child_price(queue: Any) -> None:
    queue.put(mc.asian(100.0, 100.0, 1.0, 0.02, 0.0, 0.2, steps=12, paths=40_000, threads=2).price)


def test_thread_pool_survives_fork_and_concurrent_callers() -> None:
    # The worker pool is process-wide: a forked child must start its own (the parent's threads
    # do not exist there), and calls from several Python threads at once must all finish with
    # the single-thread result (a call that finds the pool busy runs on its own thread).
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    args = (100.0, 100.0, 1.0, 0.02, 0.0, 0.2)
    want = mc.asian(*args, steps=12, paths=40_000, threads=1).price
    assert mc.asian(*args, steps=12, paths=40_000, threads=2).price == want  # pool started
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_price, args=(queue,))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0, child.exitcode
    assert got == want, (got, want)
    with ThreadPoolExecutor(4) as ex:
        prices = list(
            ex.map(lambda _: mc.asian(*args, steps=12, paths=40_000, threads=2).price, range(8))
        )
    assert prices == [want] * 8, prices
