"""Broker domain types: OCC symbols, option ticks, owners and client order ids.

Sources: OCC symbology as Alpaca documents it (``SPY240621C00530000`` = SPY 2024-06-21 call 530,
research/alpaca.md §3.3); tick sizes from the Cboe minimum-increment rules (penny-pilot classes
$0.01 below $3, $0.05 from $3; SPY/QQQ/IWM $0.01 throughout; others $0.05 / $0.10); Alpaca's
48-character client_order_id limit (alpaca.md §3.3). Expected values are worked by hand.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR
from decimal import Decimal as D

import numpy as np
import pytest
from v28quant.broker import Leg, OrderRequest, Owner, parse_client_order_id
from v28quant.broker.base import replacement_client_order_id
from v28quant.broker.ticks import round_limit, round_net_limit, round_out_quotes, tick_size
from v28quant.occ import format_occ, format_occ_many, parse_occ


def test_occ_round_trip_documented_example():
    o = parse_occ("SPY240621C00530000")
    assert (o.root, o.expiry, o.call, o.strike) == ("SPY", date(2024, 6, 21), True, D(530))
    assert format_occ("SPY", date(2024, 6, 21), True, 530) == "SPY240621C00530000"
    assert format_occ("AAPL", date(2023, 7, 21), False, "152.5") == "AAPL230721P00152500"
    assert str(parse_occ("AAPL230721P00152500")) == "AAPL230721P00152500"


@pytest.mark.parametrize(
    "bad",
    ["SPY", "SPY240621X00530000", "SPY241321C00530000", "spy240621C00530000", "SPY240621C0053000"],
)
def test_occ_rejects_malformed(bad):
    with pytest.raises(ValueError, match="OCC"):
        parse_occ(bad)


def test_occ_type_words_and_data_package_share_the_parser():
    # OCC/OSI symbology: C/P after the date; the chain frames say "call"/"put".
    assert format_occ("NVDA", date(2025, 7, 18), "put", 160.5) == "NVDA250718P00160500"
    assert format_occ("NVDA", date(2025, 7, 18), "C", "160") == "NVDA250718C00160000"
    assert parse_occ("NVDA250718P00160500").type == "put"
    with pytest.raises(ValueError, match="type must be 'call' or 'put'"):
        format_occ("NVDA", date(2025, 7, 18), "straddle", 160)
    import v28quant.data.base as data_base

    assert data_base.parse_occ is parse_occ  # one parser, not two that can drift


def test_occ_rejects_off_grid_strike():
    with pytest.raises(ValueError, match="strike"):
        format_occ("SPY", date(2024, 6, 21), True, "530.0005")
    with pytest.raises(ValueError, match="strike must be a number, got 'abc'"):
        format_occ("SPY", date(2024, 6, 21), True, "abc")
    with pytest.raises(ValueError, match="strike must be > 0"):
        format_occ("SPY", date(2024, 6, 21), True, float("inf"))


def test_occ_many_is_the_scalar_format_contract_by_contract():
    # Strikes on every listing increment and on the 1/1000 grid, at magnitudes where the
    # float's decimal repr matters; the scalar parser of the symbols is the reference too.
    rng = np.random.default_rng(7)
    inc = rng.choice([0.001, 0.01, 0.5, 1.0, 2.5, 5.0, 100.0], 500)
    strikes = np.round(rng.integers(1, 20_000, 500) * inc, 4)
    strikes = strikes[(strikes > 0) & (strikes < 100_000)]
    expiries = [
        date(2024, 1, 5).fromordinal(738_890 + int(d)) for d in rng.integers(0, 900, len(strikes))
    ]
    calls = rng.random(len(strikes)) < 0.5
    got = format_occ_many("brk.b", expiries, calls, strikes)
    want = [
        format_occ("BRK.B", e, bool(c), D(repr(float(k))))
        for e, c, k in zip(expiries, calls, strikes, strict=True)
    ]
    assert got == want
    assert [float(parse_occ(s).strike) for s in got] == strikes.tolist()


@pytest.mark.parametrize("bad", [0.1 + 0.2, 530.0005, 0.0, -5.0, 100_000.0, float("nan")])
def test_occ_many_rejects_what_the_scalar_format_rejects(bad):
    with pytest.raises(ValueError, match="strike"):
        format_occ("SPY", date(2024, 6, 21), True, D(repr(bad)))
    with pytest.raises(ValueError, match=f"strike .*got {bad!r}"):
        format_occ_many("SPY", [date(2024, 6, 21)] * 2, [True, False], [530.0, bad])
    with pytest.raises(ValueError, match="root"):
        format_occ_many("spy 1", [date(2024, 6, 21)], [True], [530.0])


@pytest.mark.parametrize(
    ("price", "side", "scheme", "want"),
    [
        ("1.234", "buy", "penny_pilot", "1.23"),  # buys round down
        ("1.231", "sell", "penny_pilot", "1.24"),  # sells round up
        ("3.02", "buy", "penny_pilot", "3.00"),  # nickel grid from $3
        ("3.02", "sell", "penny_pilot", "3.05"),
        ("2.996", "sell", "penny_pilot", "3.00"),  # crossing $3 upwards lands on a nickel
        ("3.02", "buy", "all_penny", "3.02"),
        ("2.97", "buy", "standard", "2.95"),
        ("3.01", "sell", "standard", "3.10"),
        ("0.004", "buy", "penny_pilot", "0.01"),  # never a $0 limit
    ],
)
def test_round_limit(price, side, scheme, want):
    assert round_limit(D(price), side, scheme) == D(want), (price, side, scheme)


def test_round_net_limit_is_conservative():
    assert round_net_limit(D("1.237")) == D("1.23")  # debit: pay less
    assert round_net_limit(D("-1.232")) == D("-1.24")  # credit: ask for more
    assert round_net_limit(D("-3.02")) == D("-3.05")
    assert tick_size(D("-3.5")) == D("0.05")


def test_round_limit_bad_input():
    with pytest.raises(ValueError, match=">= 0"):
        round_limit(D("-1"), "buy")
    with pytest.raises(ValueError, match="side"):
        round_limit(D("1"), "short")


@pytest.mark.parametrize("scheme", ["penny_pilot", "all_penny", "standard"])
def test_quotes_round_out_onto_the_decimal_grid(scheme):
    # Against decimal arithmetic: the bid floored and the ask ceiled onto the tick of the
    # price ($3.00 switches it), a collapsed quote widened by a tick. Random prices, and ones
    # on the grid exactly (0.30 must stay 0.30, not drop a tick to binary rounding).
    rng = np.random.default_rng(3)
    price = np.concatenate([rng.lognormal(0.0, 1.5, 3000), np.arange(400) * 0.01, [2.995, 3.0]])
    width = np.maximum(0.02, 0.05 * price) * rng.uniform(0.0, 1.5, price.size)
    width[-402:] = 0.0
    bid, ask = round_out_quotes(price - width / 2, price + width / 2, price, scheme)
    for p, w, b, a in zip(price.tolist(), width.tolist(), bid, ask, strict=True):
        tick = D("0.01") if scheme == "all_penny" else D("0.01") if p < 3 else D("0.05")
        if scheme == "standard":
            tick = D("0.05") if p < 3 else D("0.10")
        want_b = (D(repr(max(p - w / 2, 0.0))) / tick).to_integral_value(ROUND_FLOOR) * tick
        want_a = (D(repr(p + w / 2)) / tick).to_integral_value(ROUND_CEILING) * tick
        if want_a <= want_b:
            want_a = want_b + tick
        assert (b, a) == (float(want_b), float(want_a)), (p, w)


def test_quotes_round_out_refuses_what_is_not_a_price():
    with pytest.raises(ValueError, match="ask must be finite"):
        round_out_quotes(np.array([1.0]), np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="scheme must be one of"):
        round_out_quotes(np.array([1.0]), np.array([1.1]), np.array([1.0]), "nickel")  # type: ignore[arg-type]


def test_owner_client_order_id_is_deterministic_short_and_parseable():
    a = Owner("options", "iron_condor", "2024-06-03T14:30:00Z/SPY/ic/7")
    b = Owner("options", "iron_condor", "2024-06-03T14:30:00Z/SPY/ic/7")
    c = Owner("equity", "iron_condor", "2024-06-03T14:30:00Z/SPY/ic/7")
    assert a.client_order_id == b.client_order_id != c.client_order_id
    assert len(a.client_order_id) <= 48
    tag = parse_client_order_id(a.client_order_id)
    assert (tag.engine, tag.strategy, tag.revision) == ("options", "iron_condor", 0)
    assert not tag.same_decision(parse_client_order_id(c.client_order_id))
    r = replacement_client_order_id(a.client_order_id)
    assert len(r) <= 48
    assert parse_client_order_id(r).revision == 1
    assert parse_client_order_id(replacement_client_order_id(r)).revision == 2
    longest = Owner("abcdefgh", "abcdefghijklmnop", "x").client_order_id + "-r99"
    assert len(longest) == 46
    assert parse_client_order_id(longest).revision == 99
    for foreign in (None, "", "my-order-1", "v28-Options-x-0123456789ab", "v28-a-b-xyz"):
        assert parse_client_order_id(foreign) is None


def test_owner_validation():
    with pytest.raises(ValueError, match="engine"):
        Owner("Equity", "trend", "d")
    with pytest.raises(ValueError, match="strategy"):
        Owner("equity", "a-very-long-strategy-name", "d")
    with pytest.raises(ValueError, match="decision_id"):
        Owner("equity", "trend", "")


def test_order_requests_validate_and_round():
    o = Owner("options", "t", "d")
    r = OrderRequest.option("SPY240621C00530000", 2, "buy", "buy_to_open", "6.07", owner=o)
    assert r.type == "limit"
    assert r.limit_price == D("6.05")
    assert r.time_in_force == "day"
    m = OrderRequest.multileg(
        [
            Leg("SPY240621P00520000", 1, "sell", "sell_to_open"),
            Leg("SPY240621P00515000", 1, "buy", "buy_to_open"),
        ],
        1,
        "-1.234",
        owner=o,
    )
    assert m.limit_price == D("-1.24")
    assert m.kind == "mleg"
    with pytest.raises(ValueError, match="whole"):
        OrderRequest.option("SPY240621C00530000", D("1.5"), "buy", "buy_to_open", owner=o)
    with pytest.raises(ValueError, match="intent"):
        OrderRequest.option("SPY240621C00530000", 1, "buy", "sell_to_open", owner=o)
    with pytest.raises(ValueError, match="2-4 legs"):
        OrderRequest.multileg([Leg("SPY240621P00520000", 1, "sell", "sell_to_open")], 1, owner=o)
    with pytest.raises(ValueError, match="one underlying"):
        OrderRequest.multileg(
            [
                Leg("SPY240621P00520000", 1, "sell", "sell_to_open"),
                Leg("QQQ240621P00450000", 1, "buy", "buy_to_open"),
            ],
            1,
            owner=o,
        )
    with pytest.raises(ValueError, match="ticker"):
        OrderRequest.equity("SPY240621P00520000", 1, "buy", owner=o)
    with pytest.raises(ValueError, match="qty"):
        OrderRequest.equity("SPY", 0, "buy", owner=o)
    with pytest.raises(ValueError, match="limit_price"):
        OrderRequest.equity("SPY", 1, "buy", "limit", owner=o)


def test_broker_occ_reexports_the_one_parser():
    import v28quant.broker.occ as broker_occ
    import v28quant.occ as occ

    for name in ("OccSymbol", "format_occ", "is_occ", "parse_occ"):
        assert getattr(broker_occ, name) is getattr(occ, name)
