"""Option structures: covered calls, cash-secured puts, verticals and iron condors.

A ``Structure`` is a set of option legs (signed contracts per unit) plus, for a covered call,
the 100 shares per unit that back it. From its legs it knows its net price (debit > 0, credit
< 0, per share), its payoff at expiry, maximum gain and loss (dollars per unit, found exactly:
the payoff is piecewise linear with kinks at the strikes), breakevens and Greeks. ``order``
turns it into one broker order: a single-leg option order for one leg, one ``mleg`` order for
two to four legs (all legs fill together; a structure is never legged in).

Builders pick contracts from an annotated chain (``v28quant.options.contracts.annotate``):

* ``cash_secured_put``: sell the put nearest the target delta; the strike x 100 is held in cash.
* ``covered_call``: sell the call nearest the target delta against 100 held shares.
* ``credit_vertical``: sell the put (bull put) or call (bear call) nearest the target delta and
  buy the wing ``<= max_width`` further out of the money.
* ``debit_vertical``: buy the near-the-money call (bull call) or put (bear put) and sell the
  one nearest the short delta target further out of the money.
* ``iron_condor``: a bull put and a bear call on one expiry.

Multi-leg structures are assumed to expire together (one expiry per structure), so their
payoff at expiry is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

import numpy as np
import pandas as pd

from v28quant.broker.base import Intent, Leg, OrderRequest, Owner, Side
from v28quant.broker.ticks import TickScheme, round_limit
from v28quant.options.contracts import (
    DeltaTarget,
    NoContract,
    limit_ladder,
    pick_by_delta,
    pick_wing,
    tick_scheme_for,
)
from v28quant.options.lifecycle import CREDIT_STRATEGIES

CONTRACT = 100.0
StrategyName = Literal[
    "cash_secured_put",
    "covered_call",
    "bull_put",
    "bear_call",
    "bull_call",
    "bear_put",
    "iron_condor",
]


@dataclass(frozen=True, slots=True)
class StructureLeg:
    """One option leg: ``qty`` signed contracts per structure unit (+ long, - short).

    Prices per share; Greeks per share of one contract (delta dV/dS, gamma, vega per 1.00
    vol, theta per year) at the model vol ``iv``.
    """

    symbol: str
    kind: Literal["call", "put"]
    strike: float
    expiry: date
    qty: int
    bid: float
    ask: float
    iv: float
    delta: float
    gamma: float
    vega: float
    theta: float
    penny: bool = True

    @property
    def mid(self) -> float:
        """Mid price per share."""
        return 0.5 * (self.bid + self.ask)

    @classmethod
    def from_row(cls, row: pd.Series, qty: int) -> StructureLeg:
        """Build a leg from an annotated chain row (``contracts.annotate``)."""
        return cls(
            symbol=str(row["symbol"]),
            kind="call" if row["type"] == "call" else "put",
            strike=float(row["strike"]),
            expiry=pd.Timestamp(row["expiry"]).date(),
            qty=int(qty),
            bid=float(row["bid"]),
            ask=float(row["ask"]),
            iv=float(row["model_iv"]),
            delta=float(row["m_delta"]),
            gamma=float(row["m_gamma"]),
            vega=float(row["m_vega"]),
            theta=float(row["m_theta"]),
            penny=bool(row.get("penny", True)),
        )

    def intrinsic(self, s: np.ndarray) -> np.ndarray:
        """Value at expiry per share for underlying prices ``s``."""
        return (
            np.maximum(s - self.strike, 0.0)
            if self.kind == "call"
            else np.maximum(self.strike - s, 0.0)
        )


@dataclass(frozen=True, slots=True)
class StructureGreeks:
    """Greeks of one structure unit in position terms.

    Delta in shares, gamma in shares per dollar, vega in dollars per 1.00 of vol, theta in
    dollars per calendar day.
    """

    delta: float
    gamma: float
    vega: float
    theta_per_day: float


@dataclass(frozen=True)
class Structure:
    """An options structure (see the module docstring).

    Attributes
    ----------
    strategy : StrategyName
    underlying : str
    spot : float
        Underlying price when it was built.
    legs : tuple of StructureLeg
    shares : int
        Shares per unit that are part of the structure (100 for a covered call, else 0).
    share_basis : float
        Cost per share of those shares (their payoff reference).
    """

    strategy: StrategyName
    underlying: str
    spot: float
    legs: tuple[StructureLeg, ...]
    shares: int = 0
    share_basis: float = 0.0
    notes: dict[str, float | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the legs: one to four, one expiry."""
        if not self.legs or len(self.legs) > 4:
            raise ValueError(f"a structure needs 1-4 option legs, got {len(self.legs)}")
        if len({leg.expiry for leg in self.legs}) != 1:
            raise ValueError("all legs of a structure must share one expiry")

    @property
    def expiry(self) -> date:
        """The expiry all legs share."""
        return self.legs[0].expiry

    @property
    def net_mid(self) -> float:
        """Net option premium at the mids per share per unit (debit > 0, credit < 0)."""
        return sum(leg.qty * leg.mid for leg in self.legs)

    @property
    def natural(self) -> float:
        """Net premium crossing every spread (buys at the ask, sells at the bid)."""
        return sum(leg.qty * (leg.ask if leg.qty > 0 else leg.bid) for leg in self.legs)

    def payoff(self, s: np.ndarray | float, net: float | None = None) -> np.ndarray:
        """Return the profit at expiry in dollars per unit for underlying prices ``s``.

        ``net`` is what was paid per share for the options (default the mid).
        """
        x = np.asarray(s, dtype=float)
        paid = self.net_mid if net is None else net
        opt = sum(leg.qty * leg.intrinsic(x) for leg in self.legs)
        return CONTRACT * (opt - paid) + self.shares * (x - self.share_basis)

    def _kinks(self) -> np.ndarray:
        return np.array(sorted({0.0, *(leg.strike for leg in self.legs)}))

    def _tail_slope(self) -> float:
        calls = sum(leg.qty for leg in self.legs if leg.kind == "call")
        return CONTRACT * calls + self.shares

    def max_loss(self, net: float | None = None) -> float:
        """Largest loss at expiry in dollars per unit (>= 0; ``inf`` when unbounded)."""
        if self._tail_slope() < 0:
            return math.inf
        worst = float(np.min(self.payoff(self._kinks(), net)))
        return max(0.0, -worst)

    def max_gain(self, net: float | None = None) -> float:
        """Largest profit at expiry in dollars per unit (``inf`` when unbounded)."""
        if self._tail_slope() > 0:
            return math.inf
        return float(np.max(self.payoff(self._kinks(), net)))

    def breakevens(self, net: float | None = None) -> list[float]:
        """Return the underlying prices at expiry where the profit is zero, ascending.

        Exact: the payoff is linear between the strikes.
        """
        k = self._kinks()
        tail = k[-1] * 2.0 + 1.0
        xs = np.append(k, tail)
        p = self.payoff(xs, net)
        out: list[float] = []
        for i in range(len(xs) - 1):
            a, b = p[i], p[i + 1]
            if a == 0.0:
                out.append(float(xs[i]))
            elif a * b < 0:
                out.append(float(xs[i] - a * (xs[i + 1] - xs[i]) / (b - a)))
        if p[-1] != 0.0 and (slope := self._tail_slope()) != 0.0 and p[-1] * slope < 0:
            out.append(float(xs[-1] - p[-1] / slope))
        return sorted(set(out))

    def greeks(self) -> StructureGreeks:
        """Position Greeks of one unit (see ``StructureGreeks``)."""
        return StructureGreeks(
            delta=CONTRACT * sum(leg.qty * leg.delta for leg in self.legs) + self.shares,
            gamma=CONTRACT * sum(leg.qty * leg.gamma for leg in self.legs),
            vega=CONTRACT * sum(leg.qty * leg.vega for leg in self.legs),
            theta_per_day=CONTRACT * sum(leg.qty * leg.theta for leg in self.legs) / 365.0,
        )

    def collateral(self) -> float:
        """Return the cash a cash account holds per unit while the structure is open.

        The max loss of a defined-risk structure, the strike x 100 of a cash-secured put, 0 for
        a covered call (its shares are the collateral).
        """
        if self.strategy == "covered_call":
            return 0.0
        if self.strategy == "cash_secured_put":
            return CONTRACT * self.legs[0].strike
        return self.max_loss(self.natural)

    def limit_prices(self, steps: int = 3) -> list[Decimal]:
        """Return the opening price ladder from the mid to the natural on valid ticks.

        See ``contracts.limit_ladder``: a credit strategy's ladder holds credits only (empty
        when its mid is no credit).
        """
        return limit_ladder(
            round(self.net_mid, 6),
            round(self.natural, 6),
            steps,
            self.tick_scheme(),
            credit=self.strategy in CREDIT_STRATEGIES,
        )

    def tick_scheme(self) -> TickScheme:
        """Return the tick scheme of its orders: the coarser grid if one leg is off the penny."""
        return tick_scheme_for(self.underlying, all(leg.penny for leg in self.legs))

    def order(
        self, qty: int, limit: Decimal, owner: Owner, *, closing: bool = False
    ) -> OrderRequest:
        """Return the one order that opens (with ``closing``: closes) ``qty`` units.

        ``limit`` is the signed net per unit (debit > 0).
        """
        if qty < 1:
            raise ValueError(f"qty must be >= 1, got {qty}")
        return order_for(
            [(leg.symbol, -leg.qty if closing else leg.qty) for leg in self.legs],
            qty,
            limit,
            owner,
            opening=not closing,
            scheme=self.tick_scheme(),
        )

    def describe(self) -> dict[str, object]:
        """Return a JSON-ready summary for the journal and notices."""
        g = self.greeks()
        return {
            "strategy": self.strategy,
            "underlying": self.underlying,
            "expiry": self.expiry.isoformat(),
            "legs": [
                {
                    "symbol": leg.symbol,
                    "qty": leg.qty,
                    "strike": leg.strike,
                    "bid": leg.bid,
                    "ask": leg.ask,
                    "iv": round(leg.iv, 5),
                    "delta": round(leg.delta, 4),
                }
                for leg in self.legs
            ],
            "shares": self.shares,
            "net_mid": round(self.net_mid, 4),
            "natural": round(self.natural, 4),
            "max_loss": None if math.isinf(ml := self.max_loss()) else round(ml, 2),
            "max_gain": None if math.isinf(mg := self.max_gain()) else round(mg, 2),
            "breakevens": [round(b, 4) for b in self.breakevens()],
            "greeks": {
                "delta": round(g.delta, 3),
                "gamma": round(g.gamma, 4),
                "vega": round(g.vega, 3),
                "theta_per_day": round(g.theta_per_day, 3),
            },
            **self.notes,
        }


def order_for(
    legs: Sequence[tuple[str, int]],
    qty: int,
    limit: Decimal,
    owner: Owner,
    *,
    opening: bool | Sequence[bool],
    scheme: TickScheme,
) -> OrderRequest:
    """Return one order for signed ``(symbol, contracts per unit)`` legs.

    A single-leg option order for one leg, else one ``mleg`` order (up to four legs, one net
    limit, debit > 0).

    ``opening`` says per leg (or for all) whether it opens or closes a position; ``scheme``
    is the legs' tick scheme (``contracts.tick_scheme_of``).
    """
    flags = [opening] * len(legs) if isinstance(opening, bool) else list(opening)
    if len(flags) != len(legs):
        raise ValueError("opening must give one flag per leg")
    built: list[Leg] = []
    for (sym, q), op in zip(legs, flags, strict=True):
        side: Side = "buy" if q > 0 else "sell"
        intent: Intent = f"{side}_to_{'open' if op else 'close'}"  # type: ignore[assignment]
        built.append(Leg(sym, abs(int(q)), side, intent))
    if len(built) == 1:
        leg = built[0]
        if leg.ratio != 1:
            raise ValueError("a single-leg order has ratio 1")
        price = abs(limit)
        return OrderRequest.option(
            leg.occ_symbol,
            qty,
            leg.side,
            leg.intent,
            round_limit(price, leg.side, scheme),
            owner=owner,
            tick_scheme=scheme,
        )
    return OrderRequest.multileg(built, qty, limit, owner=owner, tick_scheme=scheme)


# ---------------------------------------------------------------------------- builders


def _single(
    chain: pd.DataFrame, expiry: date, kind: Literal["call", "put"], band: DeltaTarget
) -> pd.Series:
    return pick_by_delta(chain, expiry, kind, band)


def cash_secured_put(
    chain: pd.DataFrame, spot: float, expiry: date, band: DeltaTarget
) -> Structure:
    """Sell one put nearest ``band`` (the strike x 100 held in cash)."""
    row = _single(chain, expiry, "put", band)
    return Structure(
        "cash_secured_put", str(row["underlying"]), spot, (StructureLeg.from_row(row, -1),)
    )


def covered_call(
    chain: pd.DataFrame,
    spot: float,
    expiry: date,
    band: DeltaTarget,
    *,
    share_basis: float,
    min_strike: float | None = None,
) -> Structure:
    """Sell one call nearest ``band`` against 100 held shares bought at ``share_basis``.

    ``min_strike`` keeps the call at or above a floor (the wheel sells above its assigned
    basis so being called away locks in a gain).
    """
    rows = (
        chain
        if min_strike is None
        else chain[(chain["type"] != "call") | (chain["strike"] >= min_strike)]
    )
    row = _single(rows, expiry, "call", band)
    return Structure(
        "covered_call",
        str(row["underlying"]),
        spot,
        (StructureLeg.from_row(row, -1),),
        shares=100,
        share_basis=share_basis,
    )


def credit_vertical(
    chain: pd.DataFrame,
    spot: float,
    expiry: date,
    kind: Literal["put", "call"],
    band: DeltaTarget,
    max_width: float,
) -> Structure:
    """Build a bull put (``kind="put"``) or bear call (``kind="call"``) credit spread."""
    short = _single(chain, expiry, kind, band)
    wing = pick_wing(chain, short, max_width=max_width)
    return Structure(
        "bull_put" if kind == "put" else "bear_call",
        str(short["underlying"]),
        spot,
        (StructureLeg.from_row(short, -1), StructureLeg.from_row(wing, 1)),
    )


def debit_vertical(
    chain: pd.DataFrame,
    spot: float,
    expiry: date,
    kind: Literal["call", "put"],
    long_band: DeltaTarget,
    short_band: DeltaTarget,
) -> Structure:
    """Build a bull call (``kind="call"``) or bear put (``kind="put"``) debit spread.

    Buys near the money (``long_band``) and sells further out (``short_band``).
    """
    long = _single(chain, expiry, kind, long_band)
    short = _single(chain, expiry, kind, short_band)
    further = (
        short["strike"] > long["strike"] if kind == "call" else short["strike"] < long["strike"]
    )
    if not further:
        raise NoContract(
            f"short {kind} {short['strike']:g} is not further out of the money than the long "
            f"{long['strike']:g}"
        )
    return Structure(
        "bull_call" if kind == "call" else "bear_put",
        str(long["underlying"]),
        spot,
        (StructureLeg.from_row(long, 1), StructureLeg.from_row(short, -1)),
    )


def iron_condor(
    chain: pd.DataFrame, spot: float, expiry: date, band: DeltaTarget, max_width: float
) -> Structure:
    """Build a bull put and a bear call on one expiry (short strikes nearest ``band``)."""
    puts = credit_vertical(chain, spot, expiry, "put", band, max_width)
    calls = credit_vertical(chain, spot, expiry, "call", band, max_width)
    if puts.legs[0].strike >= calls.legs[0].strike:
        raise NoContract("the short put and short call strikes cross")
    return Structure("iron_condor", puts.underlying, spot, puts.legs + calls.legs)


def build(
    strategy: StrategyName,
    chain: pd.DataFrame,
    spot: float,
    expiry: date,
    *,
    band: DeltaTarget,
    long_band: DeltaTarget,
    max_width: float,
    share_basis: float | None = None,
) -> Structure:
    """Build ``strategy`` on ``expiry`` (dispatch to the builders above)."""
    if strategy == "cash_secured_put":
        return cash_secured_put(chain, spot, expiry, band)
    if strategy == "covered_call":
        if share_basis is None:
            raise ValueError("a covered call needs share_basis (shares held)")
        return covered_call(chain, spot, expiry, band, share_basis=share_basis)
    if strategy in ("bull_put", "bear_call"):
        kind: Literal["put", "call"] = "put" if strategy == "bull_put" else "call"
        return credit_vertical(chain, spot, expiry, kind, band, max_width)
    if strategy in ("bull_call", "bear_put"):
        dk: Literal["call", "put"] = "call" if strategy == "bull_call" else "put"
        return debit_vertical(chain, spot, expiry, dk, long_band, band)
    if strategy == "iron_condor":
        return iron_condor(chain, spot, expiry, band, max_width)
    raise ValueError(f"unknown strategy {strategy!r}")
