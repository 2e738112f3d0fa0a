"""Option structures built from real chains, checked by independent computations.

Legs are looked up again in the raw CSV (pandas, not the chain loader), deltas recomputed with
the textbook Black-Scholes-Merton formula in scipy from the same vol and forward, credits and
debits summed from the raw bids and asks, and max loss / max gain found on a dense payoff grid
at expiry (which includes every strike, so the grid optimum is exact for these piecewise
linear payoffs).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from v28quant.broker import Owner
from v28quant.data.replay import load_chain_snapshot
from v28quant.options import contracts as C
from v28quant.options import strategies as S
from v28quant.options.surface import SviSurface

ET = ZoneInfo("America/New_York")


@dataclass
class Chain:
    """A real chain annotated with surface vols and Greeks, and its test settings."""

    raw: pd.DataFrame
    ann: pd.DataFrame
    spot: float
    rate: float
    dte: tuple[int, int]
    band: C.DeltaTarget


CASES = {
    # file, 3-month T-bill rate near the date (continuously compounded), DTE window, delta band
    "spy2023": ("SPY_2023-09-14_cboe.csv", 0.053, (21, 45), C.DeltaTarget()),
    "spy2022": ("SPY_2022-07-08_cboe.csv", 0.020, (21, 45), C.DeltaTarget()),
    # one expiry three days out, strikes $2.50 apart: a wider band finds a short strike
    "nvda": ("NVDA_2025-07-08_alpaca_snapshot.csv", 0.043, (0, 7), C.DeltaTarget(0.15, 0.35)),
}


def _load(shared: Path, name: str) -> Chain:
    fname, rate, dte, band = CASES[name]
    path = shared / "options" / fname
    raw = pd.read_csv(path)
    snap = load_chain_snapshot(path)
    now = snap.attrs["as_of"]
    liq, _ = C.liquidity_filter(snap)
    spot = C.implied_spot(liq, rate, now)
    pre = C.annotate(liq, spot=spot, now=now, rate=rate)
    pre = pre[(pre["dte"] <= 120) & (pre["t"] > 1.5 / 365)]
    surf = SviSurface.fit(pre, spot=spot, rate=rate, min_quotes=6)
    ann = C.annotate(liq, spot=spot, now=now, rate=rate, surface=surf)
    return Chain(raw, ann, spot, rate, dte, band)


@pytest.fixture(scope="module", params=list(CASES))
def chain(request: pytest.FixtureRequest, shared_data: Path) -> Chain:
    """Each real chain, fitted once per module."""
    return _load(shared_data, request.param)


def _bsm_delta(
    spot: float, k: float, t: float, r: float, q: float, vol: float, call: bool
) -> float:
    d1 = (math.log(spot / k) + (r - q + 0.5 * vol * vol) * t) / (vol * math.sqrt(t))
    return math.exp(-q * t) * (norm.cdf(d1) if call else norm.cdf(d1) - 1.0)


def _raw_row(raw: pd.DataFrame, symbol: str) -> pd.Series:
    rows = raw[raw["contract_symbol"] == symbol]
    assert len(rows) == 1, symbol
    return rows.iloc[0]


def _grid_payoff(s: S.Structure, raw: pd.DataFrame, net: float) -> tuple[np.ndarray, np.ndarray]:
    strikes = [float(_raw_row(raw, leg.symbol)["strike"]) for leg in s.legs]
    x = np.unique(np.concatenate([np.linspace(0.0, 3.0 * max(strikes), 60001), strikes]))
    pnl = np.full_like(x, -100.0 * net)
    for leg, k in zip(s.legs, strikes, strict=True):
        call = _raw_row(raw, leg.symbol)["type"] == "call"
        pnl += 100.0 * leg.qty * (np.maximum(x - k, 0) if call else np.maximum(k - x, 0))
    return x, pnl + s.shares * (x - s.share_basis)


def _expiry_with(c: Chain, strategy: S.StrategyName) -> S.Structure:
    errors = []
    for exp in C.expiries_by_preference(c.ann, *c.dte):
        try:
            return S.build(
                strategy,
                c.ann,
                c.spot,
                exp,
                band=c.band,
                long_band=C.DeltaTarget(0.40, 0.60, 0.50),
                max_width=0.03 * c.spot,
                share_basis=c.spot,
            )
        except C.NoContract as exc:
            errors.append(str(exc))
    pytest.fail(f"{strategy}: no expiry worked: {errors}")


STRATEGIES: list[S.StrategyName] = [
    "cash_secured_put",
    "covered_call",
    "bull_put",
    "bear_call",
    "bull_call",
    "bear_put",
    "iron_condor",
]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_structure_from_real_chain(chain: Chain, strategy: S.StrategyName) -> None:
    """Legs, deltas, credit/debit, max loss/gain and the order of each structure."""
    s = _expiry_with(chain, strategy)
    raw = chain.raw
    # legs: types, sides, DTE window, short deltas in the band, wings further out
    for leg in s.legs:
        r = _raw_row(raw, leg.symbol)
        assert r["type"] == leg.kind
        assert float(r["strike"]) == leg.strike
        assert leg.bid == pytest.approx(float(r["bid"]))
        assert leg.ask == pytest.approx(float(r["ask"]))
        dte = (pd.Timestamp(r["expiration"]) - pd.Timestamp(r["quote_date"])).days
        assert chain.dte[0] <= dte <= chain.dte[1]
    shorts = [leg for leg in s.legs if leg.qty < 0]
    for leg in shorts if strategy not in ("bull_call", "bear_put") else []:
        assert chain.band.low <= abs(leg.delta) <= chain.band.high
    if strategy in ("bull_put", "bear_call", "iron_condor"):
        for short in shorts:
            wing = next(x for x in s.legs if x.qty > 0 and x.kind == short.kind)
            further = (
                wing.strike < short.strike if short.kind == "put" else wing.strike > short.strike
            )
            assert further
            assert abs(wing.strike - short.strike) <= 0.03 * chain.spot + 1e-9

    # deltas: textbook BSM (scipy) at the leg's vol and the surface's forward-implied yield
    row = chain.ann.set_index("symbol")
    for leg in s.legs:
        a = row.loc[leg.symbol]
        want = _bsm_delta(
            chain.spot, leg.strike, a["t"], chain.rate, a["div"], leg.iv, leg.kind == "call"
        )
        assert leg.delta == pytest.approx(want, abs=1e-9)
        assert (leg.delta > 0) == (leg.kind == "call")

    # credit / debit from the raw quotes
    mid = sum(
        leg.qty
        * 0.5
        * (float(_raw_row(raw, leg.symbol)["bid"]) + float(_raw_row(raw, leg.symbol)["ask"]))
        for leg in s.legs
    )
    assert s.net_mid == pytest.approx(mid, abs=1e-12)
    credit = strategy in (
        "cash_secured_put",
        "covered_call",
        "bull_put",
        "bear_call",
        "iron_condor",
    )
    assert (s.net_mid < 0) == credit
    assert (s.natural <= 0) == credit
    assert s.natural >= s.net_mid

    # max loss / gain and breakevens against the payoff grid
    x, pnl = _grid_payoff(s, raw, s.net_mid)
    assert s.max_loss() == pytest.approx(max(0.0, -pnl.min()), abs=1e-6)
    assert s.max_gain() == pytest.approx(pnl.max(), abs=1e-6)
    for be in s.breakevens():
        assert abs(float(np.interp(be, x, pnl))) < 1e-6
    assert len(s.breakevens()) == int(np.sum(np.diff(np.sign(pnl[np.abs(pnl) > 1e-9])) != 0))

    # closed forms for the defined-risk shapes
    if strategy in ("bull_put", "bear_call"):
        width = abs(s.legs[0].strike - s.legs[1].strike)
        assert s.max_loss() == pytest.approx(100 * (width + s.net_mid))
        assert s.max_gain() == pytest.approx(-100 * s.net_mid)
    if strategy == "cash_secured_put":
        assert s.max_loss() == pytest.approx(100 * (s.legs[0].strike + s.net_mid))
        assert s.collateral() == pytest.approx(100 * s.legs[0].strike)

    # one order: a single-leg option order or one mleg carrying every leg
    owner = Owner("options", strategy[:16], f"test-{strategy}")
    limit = s.limit_prices()[0]
    req = s.order(2, limit, owner)
    if len(s.legs) == 1:
        assert req.kind == "option"
        assert req.intent == "sell_to_open"
        assert req.qty == 2
    else:
        assert req.kind == "mleg"
        assert len(req.legs) == len(s.legs)
        assert {leg.occ_symbol for leg in req.legs} == {leg.symbol for leg in s.legs}
        for rl in req.legs:
            sl = next(x for x in s.legs if x.symbol == rl.occ_symbol)
            assert rl.side == ("buy" if sl.qty > 0 else "sell")
            assert rl.intent.endswith("_to_open")
        assert req.limit_price == limit
        close = s.order(2, limit, owner, closing=True)
        assert all(rl.intent.endswith("_to_close") for rl in close.legs)


def test_limit_ladder_walks_from_mid_to_natural_on_ticks() -> None:
    """Rungs go from the mid to the natural, each on its tick grid."""
    credit = C.limit_ladder(-1.475, -1.46, steps=3, scheme="all_penny")
    assert credit[0] == Decimal("-1.48")
    assert credit[-1] == Decimal("-1.46")
    assert all(a < b for a, b in itertools.pairwise(credit))
    debit = C.limit_ladder(2.90, 3.30, steps=4, scheme="penny_pilot")
    # 3.00 and above trade in nickels under the penny pilot: every rung on its grid
    for p in debit:
        tick = Decimal("0.05") if p >= 3 else Decimal("0.01")
        assert p % tick == 0
    assert debit[0] == Decimal("2.90")
    assert debit[-1] == Decimal("3.30")
    with pytest.raises(ValueError, match="natural"):
        C.limit_ladder(1.0, 0.9)


@pytest.mark.parametrize(
    ("mid", "natural", "last"),
    [
        (2.90, 3.12, "3.15"),  # a debit of legs quoted in pennies, off the nickel grid
        (-3.30, -3.12, "-3.10"),  # a credit: less credit asked, not more
        (2.96, 2.997, "3.00"),  # rounding up crosses $3: on the nickel grid there
        (3.00, 3.20, "3.20"),  # on the grid already
    ],
)
def test_limit_ladder_last_rung_is_marketable_at_an_off_grid_natural(
    mid: float, natural: float, last: str
) -> None:
    """The natural (an urgent close's price) is rounded towards a fill, by less than a tick.

    Floored, a debit natural of 3.12 became 3.10 and a credit of 3.12 asked 3.15: both rest
    beyond the natural, and a stop loss or an expiry-day close would never fill.
    """
    ladder = C.limit_ladder(mid, natural, steps=3, scheme="penny_pilot")
    assert ladder[-1] == Decimal(last)
    assert ladder[-1] >= Decimal(str(natural))
    assert ladder[-1] - Decimal(str(natural)) < Decimal("0.05")
    assert all(a < b for a, b in itertools.pairwise(ladder))


def test_liquidity_filter_counts_reasons(shared_data: Path) -> None:
    """The filter keeps exactly the rows a direct pandas mask keeps."""
    snap = load_chain_snapshot(shared_data / "options" / "SPY_2023-09-14_cboe.csv")
    rules = C.LiquidityRules(min_bid=0.05, max_rel_spread=0.2, min_open_interest=100)
    kept, rep = C.liquidity_filter(snap, rules)
    raw = snap
    mid = (raw["bid"] + raw["ask"]) / 2
    ok = (
        (raw["bid"] >= 0.05)
        & ((raw["ask"] - raw["bid"]) / mid <= 0.2)
        & (raw["open_interest"] >= 100)
    )
    assert rep.kept == len(kept) == int(ok.sum())
    assert sum(rep.dropped.values()) == len(raw) - rep.kept
    nvda = load_chain_snapshot(shared_data / "options" / "NVDA_2025-07-08_alpaca_snapshot.csv")
    _, rep2 = C.liquidity_filter(nvda, rules)
    assert not rep2.open_interest_known
    assert "low_open_interest" not in rep2.dropped


def test_implied_spot_from_parity_matches_readme(shared_data: Path) -> None:
    """Spot from put-call parity where the snapshot has none."""
    nvda = load_chain_snapshot(shared_data / "options" / "NVDA_2025-07-08_alpaca_snapshot.csv")
    now = datetime(2025, 7, 8, 15, 59, tzinfo=ET)
    # the data README puts the parity forward at about 160.09
    assert C.implied_spot(nvda, 0.0, now) == pytest.approx(160.09, abs=0.1)


def test_no_contract_names_the_rule(chain: Chain) -> None:
    """An impossible request names the rule that failed."""
    with pytest.raises(C.NoContract, match="DTE"):
        C.pick_expiry(chain.ann, 900, 1000)
    exp = C.expiries_by_preference(chain.ann, *chain.dte)[0]
    calls_only = chain.ann[chain.ann["type"] == "call"]
    with pytest.raises(C.NoContract, match="delta"):
        C.pick_by_delta(calls_only, exp, "put", C.DeltaTarget())


def _hand_leg(symbol: str, qty: int, bid: float, ask: float) -> S.StructureLeg:
    occ_strike = int(symbol[-8:]) / 1000
    kind = "put" if symbol[-9] == "P" else "call"
    expiry = datetime.strptime(symbol[-15:-9], "%y%m%d").date()
    return S.StructureLeg(symbol, kind, occ_strike, expiry, qty, bid, ask, 0.3, 0.0, 0, 0, 0)


def test_a_credit_spread_ladder_holds_credits_only() -> None:
    """435P 0.90 x 1.10 sold, 430P 0.85 x 1.05 bought, on wide quotes.

    By hand: mid -1.00 + 0.95 = -0.05, natural -0.90 + 1.05 = +0.15; three steps give
    -0.05, floor(+0.0167) = 0.01, floor(+0.0833) = 0.08, 0.15. A bull put sold for nothing or
    for a debit can only lose, so its ladder is the credit alone; a bull call on the same
    quotes (bought for a debit) keeps every rung.
    """
    short = _hand_leg("XYZ231020P00435000", -1, 0.90, 1.10)
    wing = _hand_leg("XYZ231020P00430000", 1, 0.85, 1.05)
    bull_put = S.Structure("bull_put", "XYZ", 440.0, (short, wing))
    assert bull_put.limit_prices(3) == [Decimal("-0.05")]
    bought = _hand_leg("XYZ231020C00435000", 1, 0.90, 1.10)
    sold = _hand_leg("XYZ231020C00440000", -1, 0.85, 1.05)
    bull_call = S.Structure("bull_call", "XYZ", 430.0, (bought, sold))
    # mid 1.00 - 0.95 = 0.05, natural 1.10 - 0.85 = 0.25: 0.05, 0.11, 0.18, 0.25
    assert bull_call.limit_prices(3) == [Decimal(x) for x in ("0.05", "0.11", "0.18", "0.25")]
