"""Option price ticks and conservative rounding of limit prices.

Minimum price variations of US equity options (Cboe / OCC rules, per share of premium):

- ``"penny_pilot"`` (the Penny Interval Program, the default here and what Alpaca's docs describe):
  $0.01 below $3.00, $0.05 at or above $3.00;
- ``"all_penny"`` (SPY, QQQ, IWM): $0.01 at every price;
- ``"standard"`` (classes outside the programme): $0.05 below $3.00, $0.10 at or above.

Rounding is *conservative*: a buy limit is rounded **down** (never pay more than asked) and a sell
limit **up** (never receive less). The order may then fill less often, never at a worse price.
For a multi-leg net price (positive = debit paid, negative = credit received) the same rule is a
floor on the signed net: a debit gets smaller, a credit larger. The one exception is a limit
meant to fill at once (a ladder's last rung, the natural): a net of legs quoted in pennies is off
the $0.05 grid at $3.00 and above, and floored it would sit below the natural and never fill, so
it is rounded the other way (:func:`round_net_marketable`).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

import numpy as np
from numpy.typing import NDArray

TickScheme = Literal["penny_pilot", "all_penny", "standard"]

PENNY = Decimal("0.01")
THRESHOLD = Decimal("3.00")
_TICKS: dict[str, tuple[Decimal, Decimal]] = {
    "penny_pilot": (Decimal("0.01"), Decimal("0.05")),
    "all_penny": (Decimal("0.01"), Decimal("0.01")),
    "standard": (Decimal("0.05"), Decimal("0.10")),
}


def tick_size(price: Decimal, scheme: TickScheme = "penny_pilot") -> Decimal:
    """Minimum increment (dollars per share) at ``price`` under ``scheme``."""
    below, above = _ticks_of(scheme)
    return below if abs(Decimal(price)) < THRESHOLD else above


def _ticks_of(scheme: str) -> tuple[Decimal, Decimal]:
    """Return the scheme's ticks below and at or above $3.00 (``ValueError`` if unknown)."""
    try:
        return _TICKS[scheme]
    except KeyError:
        raise ValueError(f"scheme must be one of {sorted(_TICKS)}, got {scheme!r}") from None


def _to_grid(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return ((price / tick).to_integral_value(rounding=rounding) * tick).quantize(PENNY)


def round_limit(
    price: Decimal | str | int, side: str, scheme: TickScheme = "penny_pilot"
) -> Decimal:
    """Round a single-leg option limit price to a valid tick: buys down, sells up.

    Raises ``ValueError`` for a negative price or an unknown side. A buy that would round to
    zero is kept at one tick, since a $0 limit is not a valid order.
    """
    p = Decimal(price)
    if p < 0:
        raise ValueError(f"option limit price must be >= 0, got {p}")
    if side == "buy":
        out = _to_grid(p, tick_size(p, scheme), ROUND_FLOOR)
        return out if out > 0 else tick_size(Decimal(0), scheme)
    if side == "sell":
        out = _to_grid(p, tick_size(p, scheme), ROUND_CEILING)
        # Rounding up can cross $3 onto the coarser grid; re-round there (still upwards).
        return _to_grid(out, tick_size(out, scheme), ROUND_CEILING)
    raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")


def round_net_limit(net: Decimal | str | int, scheme: TickScheme = "penny_pilot") -> Decimal:
    """Round a multi-leg net limit (debit > 0, credit < 0) conservatively: floor of the signed net.

    The tick is taken at ``abs(net)``; flooring a credit can cross $3 in magnitude, in which case
    the coarser tick is applied again (still towards a larger credit).
    """
    n = Decimal(net)
    out = _to_grid(n, tick_size(n, scheme), ROUND_FLOOR)
    return _to_grid(out, tick_size(out, scheme), ROUND_FLOOR)


def round_net_marketable(net: Decimal | str | int, scheme: TickScheme = "penny_pilot") -> Decimal:
    """Round a multi-leg net limit towards a fill: ceiling of the signed net.

    A debit gets larger and a credit smaller, by less than one tick, so a limit at the natural
    stays marketable on the tick grid (a debit natural of 3.12 is 3.15 on the $0.05 grid; floored
    to 3.10 it would rest below every offer). The fill is still at the market's price or better.
    """
    n = Decimal(net)
    out = _to_grid(n, tick_size(n, scheme), ROUND_CEILING)
    return _to_grid(out, tick_size(out, scheme), ROUND_CEILING)


def round_out(bid: float, ask: float, tick: Decimal) -> tuple[Decimal, Decimal]:
    """Round a quote outward onto the ``tick`` grid: the bid down (not below 0), the ask up.

    A quote that would collapse to a single price is widened to one tick, so the ask is always
    above the bid; used to put model prices on the grid a venue would quote them on.
    """
    b = (Decimal(repr(max(float(bid), 0.0))) / tick).to_integral_value(ROUND_FLOOR) * tick
    a = (Decimal(repr(float(ask))) / tick).to_integral_value(ROUND_CEILING) * tick
    if a <= b:
        a = b + tick
    return b, a


# how far below a grid point (in ticks) a float still counts as on it: binary floats miss
# decimal prices by ~1e-16 of the price, and no quoted price lies this close to a tick
_GRID_SLACK = 1e-9


def round_out_quotes(
    bid: NDArray[np.float64],
    ask: NDArray[np.float64],
    price: NDArray[np.float64],
    scheme: TickScheme = "penny_pilot",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`round_out` of many quotes at once, each on the tick of its ``price``.

    The tick is :func:`tick_size` at ``price`` under ``scheme``. The grid is counted in whole
    cents, so each result is the float nearest its decimal price (``0.3``, not
    ``0.30000000000000004``); a price within 1e-9 of a tick's width of the grid counts as on
    it. ``ValueError`` names an argument holding a NaN or an infinity.
    """
    below, above = (int(x / PENNY) for x in _ticks_of(scheme))
    for name, values in (("bid", bid), ("ask", ask), ("price", price)):
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"{name} must be finite, got {np.asarray(values)[~np.isfinite(values)][:3]}"
            )
    tick = np.where(np.abs(price) < float(THRESHOLD), below, above)
    b = np.floor(np.maximum(bid, 0.0) * 100.0 / tick + _GRID_SLACK) * tick
    a = np.ceil(np.asarray(ask, dtype=np.float64) * 100.0 / tick - _GRID_SLACK) * tick
    a = np.where(a <= b, b + tick, a)
    return b / 100.0, a / 100.0
