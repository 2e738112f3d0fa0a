"""Trading costs charged in every evaluation: commissions, the bid-ask spread and slippage.

Costs are fractions of the notional traded. Stocks pay half the quoted spread plus slippage plus
commission on every unit of turnover (sum of absolute weight changes); option sales pay a
fraction of the premium for crossing the option's wider spread plus a per-contract commission.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

BPS = 1e-4


@dataclass(frozen=True, slots=True)
class CostModel:
    """Transaction costs of the evaluated strategies.

    Parameters
    ----------
    commission_bps : float
        Commission and exchange/regulatory fees per unit of stock notional traded, in basis
        points (Alpaca charges no commission on stocks; SEC and FINRA fees remain).
    spread_bps : float
        Full quoted bid-ask spread of the stocks, in basis points; a trade pays half.
    slippage_bps : float
        Price moved against the order beyond the quote (impact and latency), in basis points.
    option_spread_fraction : float
        Half the option's bid-ask spread as a fraction of its mid premium, paid per sale.
    option_commission : float
        Commission per option contract in dollars (100 shares of underlying per contract).
    """

    commission_bps: float = 0.5
    spread_bps: float = 2.0
    slippage_bps: float = 1.0
    option_spread_fraction: float = 0.03
    option_commission: float = 0.65

    def __post_init__(self) -> None:
        """Check the fields."""
        for name in (
            "commission_bps",
            "spread_bps",
            "slippage_bps",
            "option_spread_fraction",
            "option_commission",
        ):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"CostModel.{name} must be finite and >= 0, got {v!r}")

    @property
    def stock_rate(self) -> float:
        """Cost per unit of stock notional traded (a fraction, not bps)."""
        return (self.commission_bps + self.spread_bps / 2.0 + self.slippage_bps) * BPS

    def stock_cost(self, turnover: NDArray[np.float64]) -> NDArray[np.float64]:
        """Cost as a fraction of capital for the given turnover (sum of |weight changes|)."""
        return np.asarray(turnover, dtype=np.float64) * self.stock_rate

    def option_cost(
        self, premium: NDArray[np.float64], underlying: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Cost of selling one option per unit of underlying, as a fraction of the underlying.

        ``option_spread_fraction * premium / S + option_commission / (100 S)``.
        """
        p = np.asarray(premium, dtype=np.float64)
        s = np.asarray(underlying, dtype=np.float64)
        return self.option_spread_fraction * p / s + self.option_commission / (100.0 * s)
