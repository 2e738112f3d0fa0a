"""Lots no engine chose: shares bought by hand, then traded by an engine.

The equity engine sizes against the account's whole position, so it sells shares bought by
hand when it trims. Its sale closes the hand order's lot first, as that order's trip, then its
own; it must not open a lot of its own, nor book a trip, for shares it never bought.

References: P&L worked out by hand for each fill sequence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from v28quant.round_trips import pair_trades, round_trips


def _fill(i: int, cid: str, side: str, qty: str, price: str, day: int) -> dict[str, Any]:
    return {
        "fill_id": f"f{i}",
        "client_order_id": cid,
        "symbol": "AAPL",
        "side": side,
        "qty": Decimal(qty),
        "price": Decimal(price),
        "ts": datetime(2024, 6, day, 15, tzinfo=UTC),
    }


#: The equity engine buys 10 @ 100, 5 more are bought by hand @ 90, the equity engine sells 15.
BOUGHT_BY_HAND_THEN_SOLD = [
    _fill(1, "v28-equity-aggregate-a", "buy", "10", "100", 3),
    _fill(2, "hand-bought", "buy", "5", "90", 4),
    _fill(3, "v28-equity-aggregate-b", "sell", "15", "110", 5),
]


def test_the_engines_sale_of_shares_bought_by_hand_is_the_hand_orders_trip() -> None:
    """By hand: equity 10 x (110 - 100) = +100; the hand order's 5 x (110 - 90) = +100.

    Nothing is left open: before, the 5 shares the equity lot did not hold opened an equity
    short of 5 @ 110 and the hand order's lot of 5 stayed open.
    """
    (equity,) = round_trips(BOUGHT_BY_HAND_THEN_SOLD, engine="equity")
    assert (equity.side, equity.qty, equity.entry_price, equity.exit_price) == (
        "long",
        10,
        100,
        110,
    )
    assert equity.pnl == 100.0
    (hand,) = round_trips(BOUGHT_BY_HAND_THEN_SOLD, engine="other")
    assert (hand.side, hand.qty, hand.entry_price, hand.pnl) == ("long", 5, 90, 100.0)
    assert pair_trades(BOUGHT_BY_HAND_THEN_SOLD).lots == {}


def test_the_engines_next_buy_closes_nothing_invented() -> None:
    """Buying 5 @ 105 afterwards opens an equity lot of 5 @ 105 and books no trip.

    Before, it covered the phantom short of 5 @ 110: an invented equity trip of
    5 x (110 - 105) = +25 for the learner and the allocator.
    """
    fills = [*BOUGHT_BY_HAND_THEN_SOLD, _fill(4, "v28-equity-aggregate-c", "buy", "5", "105", 6)]
    assert [t.pnl for t in round_trips(fills, engine="equity")] == [100.0]
    pairing = pair_trades(fills)
    assert sorted((t.engine, t.pnl) for t in pairing.trips) == [
        ("equity", Decimal(100)),
        ("other", Decimal(100)),
    ]
    assert {k: [(lot.qty, lot.price) for lot in v] for k, v in pairing.lots.items()} == {
        ("equity", "AAPL"): [(Decimal(5), Decimal(105))]
    }


def test_the_engine_closes_shares_bought_by_hand_before_its_own() -> None:
    """The equity engine sells 5 of 15: the hand order's 5 @ 90 go, its own 10 @ 100 stay.

    By hand: the hand order's trip 5 x (110 - 90) = +100; the equity engine keeps 10 @ 100.
    """
    fills = [
        *BOUGHT_BY_HAND_THEN_SOLD[:2],
        _fill(3, "v28-equity-aggregate-b", "sell", "5", "110", 5),
    ]
    assert round_trips(fills, engine="equity") == []
    (hand,) = round_trips(fills, engine="other")
    assert hand.pnl == 100.0
    lots = pair_trades(fills).lots
    assert {k: [(lot.qty, lot.price) for lot in v] for k, v in lots.items()} == {
        ("equity", "AAPL"): [(Decimal(10), Decimal(100))]
    }


def test_a_hand_order_still_closes_the_engines_oldest_lot() -> None:
    """A sale by hand closes the oldest lot whoever holds it, as it closes the account's position.

    By hand: the equity engine's 10 @ 100 sold by hand @ 110 is its trip of +100.
    """
    fills = [
        _fill(1, "v28-equity-aggregate-a", "buy", "10", "100", 3),
        _fill(2, "hand-sold", "sell", "10", "110", 4),
    ]
    (trip,) = round_trips(fills, engine="equity")
    assert trip.pnl == 100.0
    assert pair_trades(fills).lots == {}
