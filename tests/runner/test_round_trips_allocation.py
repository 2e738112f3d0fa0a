"""Round trips from fills, the allocator's daily sleeve returns, and the options capital share.

References: P&L and returns worked out by hand for each fill sequence; the options share checked
against the units a hand computation of the cash budget allows.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from v28quant.allocation import daily_returns
from v28quant.options.sizing import capital_share, size_structure
from v28quant.round_trips import round_trips


def _fill(i: int, cid: str, sym: str, side: str, qty: str, price: str, day: int, hour: int = 15):
    return {
        "fill_id": f"f{i}",
        "client_order_id": cid,
        "symbol": sym,
        "side": side,
        "qty": Decimal(qty),
        "price": Decimal(price),
        "ts": datetime(2024, 6, day, hour, tzinfo=UTC),
    }


FILLS = [
    _fill(1, "v28-equity-aggregate-a", "AAPL", "buy", "10", "100", 3),
    _fill(2, "v28-equity-aggregate-b", "AAPL", "buy", "5", "110", 3),
    _fill(3, "v28-equity-aggregate-c", "AAPL", "sell", "12", "120", 4),  # closes 10 @100, 2 @110
    _fill(4, "v28-equity-aggregate-d", "XOM", "sell", "4", "50", 4),  # opens a short
    _fill(5, "v28-equity-aggregate-e", "XOM", "buy", "4", "45", 5),  # covers it
    _fill(6, "v28-options-entry-f", "SPY240621P00500000", "sell", "1", "2.00", 4),
    _fill(7, "v28-options-close-g", "SPY240621P00500000", "buy", "1", "0.50", 5),
    _fill(8, "manual-order", "AAPL", "sell", "3", "130", 5),  # not ours: ignored
]


def test_fifo_round_trips_and_their_pnl() -> None:
    trips = round_trips(FILLS, engine="equity")
    assert [(t.symbol, t.side, t.qty) for t in trips] == [
        ("AAPL", "long", 10),
        ("AAPL", "long", 2),
        ("XOM", "short", 4),
    ]
    assert [t.pnl for t in trips] == [200.0, 20.0, 20.0]  # 10x20, 2x10, 4x5
    assert trips[0].ret == pytest.approx(math.log(1.2))
    assert trips[2].ret == pytest.approx(-math.log(45 / 50))
    assert len({t.key for t in trips}) == 3
    (opt,) = round_trips(FILLS, engine="options")
    assert opt.pnl == pytest.approx(150.0)  # short put: (2.00 - 0.50) x 100


def test_daily_sleeve_returns_before_today() -> None:
    out = daily_returns(FILLS, 100_000.0, before=date(2024, 6, 5))
    assert list(out) == [date(2024, 6, 3), date(2024, 6, 4)]
    assert out[date(2024, 6, 3)] == {"equity/aggregate": 0.0, "options/structures": 0.0}
    assert out[date(2024, 6, 4)]["equity/aggregate"] == pytest.approx(220 / 100_000)
    everything = daily_returns(FILLS, 100_000.0, before=date(2024, 6, 6))
    assert everything[date(2024, 6, 5)] == pytest.approx(
        {"equity/aggregate": 20 / 100_000, "options/structures": 150 / 100_000}
    )
    with pytest.raises(ValueError, match="equity must be > 0"):
        daily_returns(FILLS, 0.0, before=date(2024, 6, 6))


class _Spread:
    """A bull put spread 5 wide for a 1.00 credit: max loss 400 per unit, collateral 400."""

    strategy = "bull_put"
    natural = -1.0

    def max_loss(self, net: float | None = None) -> float:
        return (5.0 - 1.0) * 100.0

    def collateral(self) -> float:
        return 400.0


def _size(share: float) -> int:
    s: Any = _Spread()
    return size_structure(
        s,
        max_loss=10_000.0,
        max_units=50,
        equity=100_000.0,
        cash_available=2_000.0,
        max_csp_fraction=0.2,
        share=share,
    ).units


def test_the_options_share_scales_the_cash_it_may_commit() -> None:
    assert _size(1.0) == 5  # floor(2000 cash / 400 collateral); max loss allows 25
    assert _size(0.5) == 2  # floor(1000 / 400)
    ctx = SimpleNamespace(shared={"capital_split": {"equity": 0.6, "options": 0.4}})
    assert capital_share(ctx) == 0.4
    assert capital_share(SimpleNamespace()) == 1.0
    with pytest.raises(ValueError, match="capital_split"):
        capital_share(SimpleNamespace(shared={"capital_split": {"options": 1.5}}))
