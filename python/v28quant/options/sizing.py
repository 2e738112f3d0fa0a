"""Sizing and the options risk budget: max loss per structure and the portfolio Greek budget.

A candidate structure is sized to the largest whole number of units whose risk fits:

* defined-risk shapes (verticals, condors): max loss at expiry (at the natural price) x units
  within ``max_loss_per_structure``;
* a cash-secured put: its collateral (strike x 100 per unit) within ``max_csp_fraction`` of
  equity and within the cash the account can spend;
* a covered call: one unit per 100 shares the wheel holds.

The cash a structure may spend is the options buying power less the risk gate's reserve
(``[risk] buying_power_reserve_fraction`` x equity), which the gate never lets an order spend:
sized past it, the gate would deny the whole structure instead of one unit fewer.

The engine's capital share (``capital_split["options"]``, set by the allocator in the
pre-market job, 1 without one) scales the capital it may commit: the equity and the cash a
structure's collateral may use are the account's times that share (the cash no more than the
options buying power less the reserve). The max loss per structure stays the settings' dollar
limit.

Then the units are cut to keep the engine's portfolio Greeks (delta in shares, gamma, vega,
theta per day: ``StructureGreeks`` units) inside the ``GreekBudget`` by the risk gate's own
rule. The checks themselves, and the denials with their reasons, are the risk gate's
(``v28quant.risk.OptionsRisk``): a structure that fits no unit goes to the gate as one unit and
is denied there, journaled with the limit it breaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from v28quant.options.strategies import Structure, StructureGreeks
from v28quant.risk import BookGreeks, GreekBudget, greek_excess


@dataclass(frozen=True, slots=True)
class Sizing:
    """Units to trade, or 0 with the reason none fit and the limit that binds.

    ``limit`` is ``"max_loss"`` when one unit's max loss exceeds ``max_loss_per_structure``
    (the risk gate denies that structure), else ``"cash"``, ``"collateral"``, ``"shares"``
    or ``"ok"``.
    """

    units: int
    reason: str
    max_loss_per_unit: float
    collateral_per_unit: float
    limit: str = "ok"


def capital_share(ctx: Any) -> float:
    """Return the options engine's share of equity from ``ctx.shared`` (1 when unset)."""
    share = getattr(ctx, "shared", {}).get("capital_split", {}).get("options", 1.0)
    if not (isinstance(share, (int, float)) and 0.0 < float(share) <= 1.0):
        raise ValueError(f"capital_split['options'] must be in (0, 1], got {share!r}")
    return float(share)


def size_structure(
    s: Structure,
    *,
    max_loss: float,
    max_units: int,
    equity: float,
    cash_available: float,
    max_csp_fraction: float,
    wheel_shares: int = 0,
    share: float = 1.0,
    reserve: float = 0.0,
) -> Sizing:
    """Return the units of ``s`` that fit the risk limits (see the module docstring).

    ``cash_available`` is the account's options buying power, ``reserve`` the part of it the
    risk gate keeps back.
    """
    equity = equity * share
    cash_available = min(cash_available * share, cash_available - reserve)
    loss = s.max_loss(s.natural)
    coll = s.collateral()
    if s.strategy == "covered_call":
        units = min(max_units, wheel_shares // 100)
        why = (
            "ok" if units > 0 else f"covered call needs 100 shares, the wheel holds {wheel_shares}"
        )
        return Sizing(units, why, loss, coll, "ok" if units else "shares")
    if s.strategy == "cash_secured_put":
        cap = min(max_csp_fraction * equity, cash_available)
        units = min(max_units, int(cap // coll)) if coll > 0 else 0
        why = (
            "ok"
            if units > 0
            else f"collateral {coll:.2f} per unit > min(max_csp_fraction x equity, cash less "
            f"reserve) {cap:.2f}"
        )
        return Sizing(units, why, loss, coll, "ok" if units else "collateral")
    if not math.isfinite(loss) or loss <= 0:
        return Sizing(0, f"max loss per unit is {loss}", loss, coll, "max_loss")
    by_cash = int(cash_available // max(coll, 1e-9))
    if by_cash == 0:
        return Sizing(
            0,
            f"collateral {coll:.2f} per unit > cash less reserve {cash_available:.2f}",
            loss,
            coll,
            "cash",
        )
    units = min(max_units, int(max_loss // loss), by_cash)
    why = "ok" if units > 0 else f"max loss {loss:.2f} per unit > max_loss_per_structure {max_loss}"
    return Sizing(units, why, loss, coll, "ok" if units else "max_loss")


def add_greeks(a: StructureGreeks, b: StructureGreeks, units: float = 1.0) -> StructureGreeks:
    """Return ``a + units x b``."""
    return StructureGreeks(
        a.delta + units * b.delta,
        a.gamma + units * b.gamma,
        a.vega + units * b.vega,
        a.theta_per_day + units * b.theta_per_day,
    )


ZERO_GREEKS = StructureGreeks(0.0, 0.0, 0.0, 0.0)


def book_greeks(g: StructureGreeks) -> BookGreeks:
    """Return ``g`` as the risk gate's ``BookGreeks``."""
    return BookGreeks(g.delta, g.gamma, g.vega, g.theta_per_day)


def fit_greeks(s: Structure, units: int, current: StructureGreeks, budget: GreekBudget) -> int:
    """Return the largest ``n <= units`` the risk gate's Greek rule admits (0: none).

    The rule is the gate's own (``risk.greek_excess``); the gate itself denies the order.
    """
    g = s.greeks()
    before = book_greeks(current)
    for n in range(units, 0, -1):
        if greek_excess(before, book_greeks(add_greeks(current, g, n)), budget) is None:
            return n
    return 0
