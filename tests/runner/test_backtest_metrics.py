"""Backtest metrics against independent computations.

References: the textbook definitions recomputed here with pandas (Sharpe: Sharpe 1994;
Sortino with target 0: Sortino and Price 1994; drawdown from the running peak); the expected
maximum of N standard normals in the deflated Sharpe ratio (Bailey and Lopez de Prado 2014,
"The Deflated Sharpe Ratio", eq. for E[max]) against a Monte Carlo of the maximum itself; FIFO
round trips worked by hand.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from v28quant.backtest.metrics import (
    EULER_GAMMA,
    compute_metrics,
    deflated_sharpe,
    max_drawdown,
    round_trips,
    sharpe,
    sortino,
)
from v28quant.round_trips import settlement_trades


def _curve(seed: int = 1, n: int = 300) -> tuple[list[float], float]:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0005, 0.01, n)
    initial = 100_000.0
    return list(initial * np.cumprod(1 + r)), initial


def test_ratios_match_pandas() -> None:
    equity, initial = _curve()
    s = pd.Series([initial, *equity])
    r = s.pct_change().dropna()
    assert sharpe(r.to_numpy()) == pytest.approx(r.mean() / r.std() * math.sqrt(252), rel=1e-12)
    downside = math.sqrt((r.clip(upper=0) ** 2).mean())
    assert sortino(r.to_numpy()) == pytest.approx(r.mean() / downside * math.sqrt(252), rel=1e-12)
    dd = (1 - s / s.cummax()).max()
    assert max_drawdown(equity, initial) == pytest.approx(dd, rel=1e-12)


def test_drawdown_counts_a_loss_on_day_one() -> None:
    assert max_drawdown([90.0, 95.0, 120.0, 60.0], 100.0) == pytest.approx(0.5)
    assert max_drawdown([90.0], 100.0) == pytest.approx(0.1)


def test_expected_max_sharpe_hurdle_against_monte_carlo() -> None:
    # SR_0 / sqrt(V) is the approximation of E[max of N iid N(0,1)]; check it by simulation.
    rng = np.random.default_rng(0)
    for n_trials in (10, 100, 1000):
        simulated = rng.standard_normal((4000, n_trials)).max(axis=1).mean()
        z = stats.norm.ppf
        approx = (1 - EULER_GAMMA) * z(1 - 1 / n_trials) + EULER_GAMMA * z(
            1 - 1 / (n_trials * math.e)
        )
        assert approx == pytest.approx(simulated, rel=0.03), (n_trials, approx, simulated)
    r = np.random.default_rng(3).normal(0.001, 0.01, 500)
    one, many = deflated_sharpe(r, 1), deflated_sharpe(r, 100)
    assert one["sr0"] == 0.0
    assert many["sr0"] > 0
    v = (1 - one["skew"] * one["sr"] + (one["kurtosis"] - 1) / 4 * one["sr"] ** 2) / (500 - 1)
    assert many["sr0"] / math.sqrt(v) == pytest.approx(
        (1 - EULER_GAMMA) * stats.norm.ppf(0.99)
        + EULER_GAMMA * stats.norm.ppf(1 - 1 / (100 * math.e)),
        rel=1e-9,
    )
    # one trial: the probabilistic Sharpe ratio against a zero benchmark
    assert one["value"] == pytest.approx(stats.norm.cdf(one["sr"] / math.sqrt(v)), rel=1e-12)
    assert many["value"] < one["value"]
    with pytest.raises(ValueError, match="trials must be >= 1"):
        deflated_sharpe(r, 0)


def test_round_trips_fifo_long_and_short() -> None:
    t = datetime(2022, 1, 3, tzinfo=UTC)
    fills = [
        {"symbol": "A", "side": "buy", "qty": 10, "price": 100, "ts": t},
        {"symbol": "A", "side": "buy", "qty": 10, "price": 110, "ts": t},
        {"symbol": "A", "side": "sell", "qty": 15, "price": 105, "ts": t},  # +50, then -25
        {"symbol": "B", "side": "sell", "qty": 5, "price": 50, "ts": t},  # short
        {"symbol": "B", "side": "buy", "qty": 5, "price": 40, "ts": t},  # +50
        {"symbol": "A", "side": "sell", "qty": 10, "price": 100, "ts": t},  # -50, then open short 5
    ]
    assert round_trips(fills) == [50.0, -25.0, 50.0, -50.0]


def test_compute_metrics_costs_and_turnover() -> None:
    t = datetime(2022, 1, 3, tzinfo=UTC)
    fills = [
        {"symbol": "A", "side": "buy", "qty": 100, "price": 50, "ts": t},
        {"symbol": "A", "side": "sell", "qty": 100, "price": 55, "ts": t},
    ]
    m = compute_metrics(
        [100_000.0, 100_500.0],
        100_000.0,
        fills,
        trials=3,
        commission_per_share=0.005,
        slippage_bps=2.0,
        spread_bps=4.0,
    )
    notional = 100 * 50 + 100 * 55
    assert m["traded_notional"] == notional
    assert m["costs"]["commission"] == pytest.approx(200 * 0.005)
    assert m["costs"]["slippage"] == pytest.approx(notional * 2e-4)
    assert m["costs"]["half_spread"] == pytest.approx(notional * 2e-4)
    assert m["turnover"] == pytest.approx(notional / np.mean([100_000, 100_000, 100_500]))
    assert m["hit_rate"] == 1.0
    assert m["round_trips"] == 1
    assert m["deflated_sharpe"]["trials"] == 3


def test_option_fills_count_a_contract_as_100_shares() -> None:
    t = datetime(2022, 1, 3, tzinfo=UTC)
    call = "XOM230120C00110000"
    fills = [
        {"symbol": "A", "side": "buy", "qty": 100, "price": 50, "ts": t},
        {"symbol": call, "side": "sell", "qty": 2, "price": 1.5, "ts": t},
        {"symbol": call, "side": "buy", "qty": 2, "price": 1.0, "ts": t},
    ]
    assert round_trips(fills) == [100.0]  # 2 contracts x 100 shares x $0.50, by hand
    m = compute_metrics(
        [100_000.0, 100_100.0],
        100_000.0,
        fills,
        trials=1,
        commission_per_share=0.005,
        slippage_bps=2.0,
        spread_bps=4.0,
    )
    stock, options = 100 * 50, 2 * 100 * 1.5 + 2 * 100 * 1.0
    assert m["traded_notional"] == pytest.approx(stock + options)
    assert m["stock_notional"] == pytest.approx(stock)
    # the simulated exchange charges commission per share of stock, none on contracts; the
    # replay's stock spread is spread_bps, an option's spread is in its fill price
    assert m["costs"]["commission"] == pytest.approx(100 * 0.005)
    assert m["costs"]["slippage"] == pytest.approx((stock + options) * 2e-4)
    assert m["costs"]["half_spread"] == pytest.approx(stock * 2e-4)
    assert m["hit_rate"] == 1.0


def test_one_day_has_no_ratios() -> None:
    r = np.array([-0.01])
    assert math.isnan(sharpe(r))
    assert math.isnan(sortino(r))


def test_a_spread_opened_and_closed_in_one_order_each_is_one_round_trip() -> None:
    """The legs of one multi-leg structure closed together are one trade, not one per leg.

    Reference, by hand: a bull call spread bought at 2.37 - 0.79 = 1.58 and sold at
    1.37 - 0.41 = 0.96 loses 0.62 x 100 = $62; its short leg alone gained, which counted it as
    one winning trade of two (hit rate 0.5 on a losing spread).
    """
    t = datetime(2022, 12, 28, 15, 45, tzinfo=UTC)
    low, high = "BBY230127C00081000", "BBY230127C00085000"
    opened, closed = "v28-options-bull_call-open", "v28-options-bull_call-close"
    fills = [
        {"symbol": low, "side": "buy", "qty": 1, "price": 2.37, "client_order_id": opened},
        {"symbol": high, "side": "sell", "qty": 1, "price": 0.79, "client_order_id": opened},
        {"symbol": low, "side": "sell", "qty": 1, "price": 1.37, "client_order_id": closed},
        {"symbol": high, "side": "buy", "qty": 1, "price": 0.41, "client_order_id": closed},
    ]
    for f in fills:
        f["ts"] = t
    assert round_trips(fills) == [pytest.approx(-62.0)]
    m = compute_metrics(
        [99_938.0],
        100_000.0,
        fills,
        trials=1,
        commission_per_share=0.005,
        slippage_bps=2.0,
        spread_bps=4.0,
    )
    assert (m["round_trips"], m["hit_rate"]) == (1, 0.0)


def test_an_order_filled_in_part_and_walked_is_one_order_of_its_trip() -> None:
    """A structure opened by one order, part filled, then replaced (walked) for the rest, is one.

    Reference, by hand: 2 bull call spreads, one bought at 2.37 - 0.79 by the order, the other
    at 2.40 - 0.80 by its replacement (``-r1``), both sold in one order at 3.00 - 1.00: one trip
    of (3.00 - 1.00 - 1.58) x 100 + (3.00 - 1.00 - 1.60) x 100 = 42 + 40 = $82. Each revision
    counted as an order of its own made two trips of one trade.
    """
    t = datetime(2022, 12, 28, 15, 45, tzinfo=UTC)
    low, high = "BBY230127C00081000", "BBY230127C00085000"
    opened = "v28-options-bull_call-0123456789ab"
    closed = "v28-options-bull_call-ba9876543210-r2"
    legs = [
        (low, "buy", 2.37, opened),
        (high, "sell", 0.79, opened),
        (low, "buy", 2.40, f"{opened}-r1"),
        (high, "sell", 0.80, f"{opened}-r1"),
        (low, "sell", 3.00, closed),
        (high, "buy", 1.00, closed),
    ]
    fills = [
        {"symbol": sym, "side": side, "qty": 2 if cid == closed else 1, "price": px}
        | {"client_order_id": cid, "ts": t}
        for sym, side, px, cid in legs
    ]
    assert round_trips(fills) == [pytest.approx(82.0)]


def _settlement(kind: str, symbol: str, qty: int, ts: datetime, **raw: str) -> dict[str, object]:
    return {
        "activity_type": kind,
        "symbol": symbol,
        "qty": qty,
        "price": None,
        "ts": ts,
        "raw": raw,
    }


def test_option_settlements_close_their_round_trips() -> None:
    """An expiry or an assignment ends a structure's trip, as a closing fill would.

    By hand: a put spread sold for 0.80 expires worthless (+80); a call spread 32/33.5 sold for
    0.50 ends with both legs in the money at 36 (short assigned, long exercised): it loses its
    width less the credit, (1.50 - 0.50) x 100 = -100, one losing trip; the stock the
    settlement moves (sold at 32, bought at 33.5) is that same loss, not another trip.
    """
    t0 = datetime(2022, 10, 3, 14, tzinfo=UTC)
    t1 = datetime(2022, 11, 4, 20, tzinfo=UTC)
    sp, lp, sc, lc = (
        "BAC221104P00028500",
        "BAC221104P00027000",
        "BAC221104C00032000",
        "BAC221104C00033500",
    )
    puts, calls = "v28-options-bull_put-aaaaaaaaaaaa", "v28-options-bear_call-bbbbbbbbbbbb"
    fills = [
        _fill(t0, puts, sp, "sell", 1, 1.00),
        _fill(t0, puts, lp, "buy", 1, 0.20),
        _fill(t0, calls, sc, "sell", 1, 1.20),
        _fill(t0, calls, lc, "buy", 1, 0.70),
    ]
    close = {"underlying_close": "36.0"}
    settlements = [
        _settlement("OPEXP", sp, 1, t1, **close),
        _settlement("OPEXP", lp, -1, t1, **close),
        _settlement("OPASN", sc, 1, t1, **close),
        {**_settlement("OPTRD", "BAC", -100, t1, option=sc), "price": 32},
        _settlement("OPEXC", lc, -1, t1, **close),
        {**_settlement("OPTRD", "BAC", 100, t1, option=lc), "price": 33.5},
    ]
    m = compute_metrics(
        [100_000.0, 99_980.0],
        100_000.0,
        fills,
        trials=1,
        commission_per_share=0.0,
        slippage_bps=0.0,
        spread_bps=0.0,
        settlements=settlements,
    )
    assert m["round_trips"] == 2
    assert m["hit_rate"] == 0.5
    assert m["realised_pnl"] == pytest.approx(80.0 - 100.0)


def test_assigned_shares_stay_the_options_engines_lots() -> None:
    """Round trips pair per engine: the wheel's shares never close an equity-engine lot.

    By hand: the options engine sells a 30 put for 1.00; assigned at a close of 28 it loses
    (2.00 - 1.00) x 100 = -100 and holds 100 shares from 28. The equity engine then buys 100
    at 29 and sells them at 31: +200, its own trip. The operator's flatten sells the 100 left
    at 27: they are the options engine's, -100. Pairing per symbol alone sold the assigned
    shares at 31 (+300) and flattened the equity engine's (-200).
    """
    t = [datetime(2022, 11, d, 15, tzinfo=UTC) for d in (1, 18, 21, 22, 23)]
    put = "BAC221118P00030000"
    fills = [
        _fill(t[0], "v28-options-csp-aaaaaaaaaaaa", put, "sell", 1, 1.00),
        _fill(t[2], "v28-equity-aggregate-bbbbbbbbbbbb", "BAC", "buy", 100, 29),
        _fill(t[3], "v28-equity-aggregate-cccccccccccc", "BAC", "sell", 100, 31),
        _fill(t[4], "v28-risk-flatten-dddddddddddd", "BAC", "sell", 100, 27),
    ]
    settlements = [
        _settlement("OPASN", put, 1, t[1], underlying_close="28"),
        {**_settlement("OPTRD", "BAC", 100, t[1], option=put), "price": 30},
    ]
    trades = sorted([*fills, *settlement_trades(settlements)], key=lambda f: f["ts"])
    assert round_trips(trades) == [-100.0, 200.0, -100.0]


def test_an_expiry_closes_at_zero_even_a_hair_in_the_money() -> None:
    """OPEXP: the contract expired and nothing changed hands, so it closes at zero.

    By hand: a 30 put sold for 1.00 expires on a close of 29.995 (in the money by half a cent,
    under the cent the simulated exchange needs to exercise or assign): the credit,
    1.00 x 100 = +100, is the trip; at its intrinsic value it was 0.995 x 100 = 99.50.
    """
    t0, t1 = datetime(2022, 11, 1, 15, tzinfo=UTC), datetime(2022, 11, 18, 21, tzinfo=UTC)
    put = "BAC221118P00030000"
    fills = [_fill(t0, "v28-options-csp-aaaaaaaaaaaa", put, "sell", 1, 1.00)]
    expiry = [_settlement("OPEXP", put, 1, t1, underlying_close="29.995")]
    assert round_trips([*fills, *settlement_trades(expiry)]) == [100.0]


def test_engine_pnl_adds_up_to_the_account_by_hand() -> None:
    """Each engine's realised, unrealised and commission; together the equity change.

    By hand, the wheel of the test above without the flatten, at $0.005 a share, BAC marked at
    30 on the last close: options: the put -100 realised, 100 shares from 28 now worth 30,
    +200 unrealised; equity: +200 realised, 200 shares x 0.005 = 1.00 commission. The account:
    cash +100 (put) - 3,000 (assigned at 30) - 2,900 + 3,100 - 1.00 = -2,701.00, plus 100 BAC
    at 30, an equity change of +299.00 = (-100 + 200) + (200 - 1).
    """
    t = [datetime(2022, 11, d, 15, tzinfo=UTC) for d in (1, 18, 21, 22)]
    put = "BAC221118P00030000"
    fills = [
        _fill(t[0], "v28-options-csp-aaaaaaaaaaaa", put, "sell", 1, 1.00),
        _fill(t[2], "v28-equity-aggregate-bbbbbbbbbbbb", "BAC", "buy", 100, 29),
        _fill(t[3], "v28-equity-aggregate-cccccccccccc", "BAC", "sell", 100, 31),
    ]
    settlements = [
        _settlement("OPASN", put, 1, t[1], underlying_close="28"),
        {**_settlement("OPTRD", "BAC", 100, t[1], option=put), "price": 30},
    ]

    def metrics(**marks: Any) -> dict[str, Any]:
        return compute_metrics(
            [100_299.0],
            100_000.0,
            fills,
            trials=1,
            commission_per_share=0.005,
            slippage_bps=0.0,
            spread_bps=0.0,
            settlements=settlements,
            **marks,
        )

    m = metrics(marks={"BAC": Decimal("30")})
    options, equity = m["engines"]["options"], m["engines"]["equity"]
    assert (options["realised_pnl"], options["unrealised_pnl"]) == (-100.0, 200.0)
    assert (options["round_trips"], options["hit_rate"], options["commission"]) == (1, 0.0, 0.0)
    assert options["open_positions"] == {"BAC": 100.0}
    assert (equity["realised_pnl"], equity["unrealised_pnl"]) == (200.0, 0.0)
    assert (equity["round_trips"], equity["hit_rate"]) == (1, 1.0)
    assert equity["commission"] == pytest.approx(1.0, abs=1e-12)
    assert (options["net_pnl"], equity["net_pnl"]) == (100.0, pytest.approx(199.0, abs=1e-12))
    assert set(m["engines"]) == {"equity", "options"}
    no_marks = metrics()
    assert math.isnan(no_marks["engines"]["options"]["unrealised_pnl"])  # unknown, never 0


def _fill(ts: datetime, cid: str, symbol: str, side: str, qty: int, price: float) -> dict:
    return {
        "symbol": symbol,
        "side": side,
        "qty": qty,
        "price": price,
        "ts": ts,
        "client_order_id": cid,
    }
