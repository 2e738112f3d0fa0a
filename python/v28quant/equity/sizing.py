"""From aggregates to target weights and share quantities.

Target weight of a symbol (fraction of equity, long positive):

``w = clip(value x (target_vol / sigma_garch) x capital_share, max_weight) x risk_multiplier``

the clip to ``[-max_weight, max_weight]`` (``[0, max_weight]`` without shorting). ``value`` is
the aggregate in [-1, 1]; ``sigma_garch`` the GARCH one-day forecast, annualised, so a symbol
twice as volatile gets half the weight (volatility targeting); ``capital_share`` the allocator's
share of the account for this engine; ``risk_multiplier`` the regime controller's scale times
the POMDP controller's exposure. The risk multiplier comes after the cap and the budget below,
so it scales every position, those at the cap too: a crisis regime's 0.3 leaves 0.3 of the
exposure a calm regime would take.

The share is a budget too: the targets' gross weight, with the exposure of the held symbols
this cycle does not re-target, stays within ``capital_share`` (``fit_budget`` scales the
targets down together); the options engine has the rest of the account.

A buy is sized at the ask it pays, not the mid (``fit_opening``): its notional at the ask stays
within the target and the risk gate's ``max_order_notional``.

Orders are whole shares, rounded toward zero, whatever is held: a fractional holding (a 3-for-2
split of a position, shares bought elsewhere) would otherwise make every later order fractional,
and Alpaca takes a fractional quantity only on a market day order of a fractionable asset, never
on a short sale. The one exception is a close to flat (``order_qty`` to a target of zero, or the
close before a position changes side), which sells or buys back exactly what is held: the
engine's orders are market day orders, which Alpaca fills fractionally for a fractionable asset,
and the simulated exchange takes any quantity.

ML gating: when the stacked ensemble votes against the direction of the trade with a confidence
of at least ``ml_veto_confidence``, the trade is not made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from v28quant.config import EquityConfig
from v28quant.signals import Signal


@dataclass(frozen=True, slots=True)
class Target:
    """One symbol's target and how it was reached."""

    symbol: str
    weight: float
    value: float
    vol: float
    reason: str


def capped_weight(value: float, vol: float, cfg: EquityConfig, capital_share: float) -> float:
    """Return the weight of the module docstring before the risk multiplier.

    0 for a non-positive volatility.
    """
    if not (math.isfinite(vol) and vol > 0):
        return 0.0
    w = value * (cfg.target_vol / vol) * capital_share
    lo = -cfg.max_weight if cfg.allow_short else 0.0
    return float(min(max(w, lo), cfg.max_weight))


def fit_budget(weights: dict[str, float], budget: float) -> dict[str, float]:
    """Return ``weights`` scaled down together so that their ``sum |w|`` is at most ``budget``.

    Weights are fractions of equity; a non-positive budget gives zero weights.
    """
    gross = sum(abs(w) for w in weights.values())
    if gross <= budget:
        return dict(weights)
    scale = max(budget, 0.0) / gross
    return {sym: w * scale for sym, w in weights.items()}


def target_weights(
    capped: dict[str, float], budget: float, risk_multiplier: float
) -> dict[str, float]:
    """Return the target weights: ``capped`` fitted into ``budget``, times ``risk_multiplier``."""
    return {sym: w * risk_multiplier for sym, w in fit_budget(capped, budget).items()}


def whole_shares(qty: Decimal) -> Decimal:
    """Return the signed share count ``qty`` rounded toward zero to whole shares."""
    return qty.quantize(Decimal(1), rounding=ROUND_DOWN)


def target_qty(weight: float, equity: Decimal, price: Decimal) -> Decimal:
    """Return whole shares worth ``weight`` of ``equity`` at ``price`` (rounded toward zero)."""
    if price <= 0:
        raise ValueError(f"price must be > 0, got {price}")
    return whole_shares(Decimal(str(weight)) * equity / price)


def fit_opening(
    qty: Decimal,
    held: Decimal,
    weight: float,
    equity: Decimal,
    price: Decimal,
    max_notional: Decimal,
    max_qty: Decimal,
) -> Decimal:
    """Return the signed shares of an order that opens or adds, cut to fit where it trades.

    ``price`` is what the order pays or receives per share (a buy: the ask). A buy goes no
    further than the target at that price (the target at the mid would spend more than
    ``weight`` of ``equity``); either side stays within the risk gate's per-order limits,
    ``max_notional`` dollars at ``price`` and ``max_qty`` shares, so the gate does not refuse
    it: the rest of the target goes in later cycles. Never turns a buy into a sell.
    """
    cap = min(whole_shares(max_notional / price), max_qty)
    if qty > 0:
        room = whole_shares(target_qty(weight, equity, price) - held)
        return max(min(qty, room, cap), Decimal(0))
    return max(qty, -cap)


def order_qty(target: Decimal, held: Decimal) -> Decimal:
    """Return the signed shares to order toward ``target`` from ``held``, never across zero.

    Whole shares toward the target (rounded toward zero), except a close to flat, which is
    exactly ``-held``, a fraction included (see the module docstring). Alpaca refuses one order
    that turns a long into a short or a short into a long (403 "insufficient qty available for
    order"), and so does the simulated exchange: such a move first closes the position, and a
    later cycle, flat by then, orders the rest.
    """
    if target == 0 or held > 0 > target or held < 0 < target:
        return -held
    return whole_shares(target - held)


def reduces(qty: Decimal, held: Decimal) -> bool:
    """Whether an order of ``qty`` signed shares shrinks the position ``held``, never past flat."""
    return held * qty < 0 and abs(qty) <= abs(held)


def toward_zero(weight: float, exposure: float) -> float:
    """Return ``weight`` kept between zero and ``exposure``: a position that may only shrink."""
    return min(max(weight, min(exposure, 0.0)), max(exposure, 0.0))


def ml_veto(ensemble: Signal | None, direction: int, threshold: float) -> dict[str, Any] | None:
    """Return why the ensemble blocks a trade in ``direction`` (+1 buy, -1 sell), or None."""
    if ensemble is None or direction == 0 or ensemble.value == 0:
        return None
    opposed = (ensemble.value > 0) != (direction > 0)
    if opposed and ensemble.confidence >= threshold:
        return {
            "ensemble_value": round(ensemble.value, 4),
            "ensemble_confidence": round(ensemble.confidence, 4),
            "threshold": threshold,
        }
    return None
