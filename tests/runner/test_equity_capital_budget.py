"""The equity engine's targets stay within its capital share, the options engine has the rest.

The allocator gives the equity engine a share of the account; each symbol's weight is scaled
by it and capped at ``max_weight``, so with enough symbols at the cap their sum outgrew the
share. Reference: hand arithmetic on round numbers (equity $100,000, price $100.00, GARCH vol
at the 0.15 target, a full long view, risk multiplier 1).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from v28quant.broker.state import Account, Position
from v28quant.calendar import ET
from v28quant.config import load_config
from v28quant.equity.engine import EquityEngine
from v28quant.equity.sources import MarketView
from v28quant.journal import Journal
from v28quant.quotes import Quote
from v28quant.risk import RiskGate, Verdict
from v28quant.settings import RiskLimits
from v28quant.signals import Aggregate, RegimeState

NOW = datetime(2024, 3, 5, 9, 45, tzinfo=ET)
REGIME = RegimeState("bull_quiet", {"bull_quiet": 1.0}, "test", NOW)
SYMBOLS = ["AAA", "BBB", "CCC"]
ACCOUNT = Account(
    "a", "ACTIVE", Decimal(100_000), Decimal(100_000), Decimal(200_000), Decimal(0), 0,
    Decimal(100_000),
)  # fmt: skip


class Garch:
    """Every symbol at the 0.15 volatility target: weight = value x risk x share."""

    name = "garch"
    vol = dict.fromkeys(SYMBOLS, 0.15)

    def signals(self, view: MarketView) -> list[Any]:
        return []


class Views:
    """Full-confidence aggregates: ``values`` by symbol."""

    min_confidence = 0.0

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def aggregate(self, signals: Any, regime: RegimeState, now: Any) -> dict[str, Aggregate]:
        return {
            s: Aggregate(s, v, 1.0, True, REGIME, {"x": (v, 1.0, 1.0)}, {})
            for s, v in self.values.items()
        }


class Broker:
    """An account with ``positions`` and no open orders."""

    def __init__(self, positions: list[Position], account: Account = ACCOUNT) -> None:
        self._positions = positions
        self._account = account

    async def account(self) -> Account:
        return self._account

    async def positions(self) -> list[Position]:
        return self._positions

    async def orders(self, status: str) -> list[Any]:
        return []


class Feed:
    """Every symbol quoted 100.00 x 100.00, fresh at ``NOW`` but the ``stale`` ones (20 min).

    No spread: a buy pays the ask, and these targets are hand arithmetic at $100.00
    (``test_equity_buy_at_the_ask`` has the spread).
    """

    def __init__(self, stale: frozenset[str]) -> None:
        self.stale = stale

    async def latest_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        def at(s: str) -> datetime:
            return NOW - timedelta(minutes=20) if s in self.stale else NOW

        price = Decimal("100.00")
        return {s: Quote(s, price, price, at(s), 1000, 1000) for s in symbols}


class Recorder:
    """The execution service: keeps each decision it is given."""

    def __init__(self) -> None:
        self.placed: list[Any] = []

    async def place(self, decision: Any) -> Any:
        self.placed.append(decision)
        return SimpleNamespace(status="accepted")

    def sending(self) -> frozenset[str]:
        return frozenset()  # each place returns with the venue's answer


class Allow:
    limits = RiskLimits()

    def check(self, *args: Any, **kwargs: Any) -> Verdict:
        return Verdict(True)


async def _cycle(
    tmp_path: Path,
    values: dict[str, float],
    positions: list[Position],
    share: float,
    *,
    account: Account = ACCOUNT,
    limits: RiskLimits | None = None,
    risk: float = 1.0,
    stale: frozenset[str] = frozenset(),
) -> tuple[dict[str, tuple[str, Decimal]], dict[str, Any]]:
    """Run one cycle; return (side, qty) of each order placed, and the cycle's details.

    ``limits``: the risk gate's (default: a gate allowing everything); ``risk``: the regime's
    risk multiplier; ``stale``: the symbols whose quote is too old to trade on.
    """
    journal = Journal(tmp_path / "journal.sqlite")
    executor = Recorder()
    ctx: Any = SimpleNamespace(
        now=NOW,
        broker=Broker(positions, account),
        journal=journal,
        executor=executor,
        aggregator=Views(values),
        regime=SimpleNamespace(state=REGIME, risk_multiplier=risk),
        risk=Allow() if limits is None else RiskGate(limits, journal),
        shared={"capital_split": {"equity": share, "options": 1.0 - share}},
        synthetic=False,
        feed=Feed(stale),
    )
    engine = EquityEngine(load_config()[1].equity, sources=[Garch()])
    days = pd.date_range(end=NOW.date(), periods=40, freq="B", tz="UTC")
    closes = pd.DataFrame(dict.fromkeys(SYMBOLS, 100.0), index=days)
    engine.view = MarketView(NOW, SYMBOLS, pd.DataFrame(), closes, "SPY", days[-1].to_pydatetime())
    engine.screened = list(SYMBOLS)
    try:
        report = await engine.cycle(ctx)
    finally:
        journal.close()
    placed = {d.request.symbol: (d.request.side, d.request.qty) for d in executor.placed}
    return placed, report.details


async def _orders(
    tmp_path: Path, values: dict[str, float], positions: list[Position], share: float, **kw: Any
) -> dict[str, tuple[str, Decimal]]:
    """Run one cycle (``_cycle``); return (side, qty) of each order placed."""
    return (await _cycle(tmp_path, values, positions, share, **kw))[0]


@pytest.mark.asyncio
async def test_targets_at_the_cap_are_scaled_into_the_engine_share(tmp_path: Path) -> None:
    # Share 0.20: each weight 1.0 x 0.20 = 0.20, capped at max_weight 0.10; three of them
    # would be 0.30 of equity. Scaled into 0.20: 0.0667 each, 6,667 dollars, 66 shares.
    orders = await _orders(tmp_path, dict.fromkeys(SYMBOLS, 1.0), [], 0.20)
    assert orders == {s: ("buy", Decimal(66)) for s in SYMBOLS}
    spent = sum(q for _, q in orders.values()) * Decimal("100.00")
    assert spent <= Decimal("0.20") * ACCOUNT.equity


@pytest.mark.asyncio
async def test_a_held_position_without_a_view_uses_its_part_of_the_share(tmp_path: Path) -> None:
    # Share 0.20, CCC held at 100 shares x $100 = 0.10 of equity with no tradable view:
    # AAA and BBB (0.10 each at the cap) share the 0.10 left: 0.05 each, 50 shares.
    held = Position("CCC", Decimal(100), Decimal(100), "us_equity", Decimal(10_000))
    values = {"AAA": 1.0, "BBB": 1.0}
    orders = await _orders(tmp_path, values, [held], 0.20)
    assert orders == {"AAA": ("buy", Decimal(50)), "BBB": ("buy", Decimal(50))}


@pytest.mark.asyncio
async def test_targets_inside_the_share_are_left_alone(tmp_path: Path) -> None:
    # Share 0.40: three capped weights of 0.10 fit; 0.10 x 100,000 / 100 = 100 shares each.
    orders = await _orders(tmp_path, dict.fromkeys(SYMBOLS, 1.0), [], 0.40)
    assert orders == {s: ("buy", Decimal(100)) for s in SYMBOLS}


@pytest.mark.asyncio
async def test_a_held_symbol_without_a_garch_volatility_is_held_not_sold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CCC's fit failed (no volatility): its 100 shares (0.10 of equity) are neither sold nor
    # added to, and use their 0.10 of the 0.20 share; AAA and BBB share the 0.10 left.
    monkeypatch.setattr(Garch, "vol", {"AAA": 0.15, "BBB": 0.15})
    held = Position("CCC", Decimal(100), Decimal(100), "us_equity", Decimal(10_000))
    orders = await _orders(tmp_path, dict.fromkeys(SYMBOLS, 1.0), [held], 0.20)
    assert orders == {"AAA": ("buy", Decimal(50)), "BBB": ("buy", Decimal(50))}


@pytest.mark.asyncio
async def test_the_buys_of_one_cycle_share_its_buying_power(tmp_path: Path) -> None:
    # Buying power 20,000 less the 2 % reserve of 100,000 equity = 18,000 for the cycle. Three
    # buys of 100 shares at 100.00 (10,000 each, 0.10 of equity: within the position limit)
    # were each checked against the cycle's one account snapshot; by hand only AAA fits.
    poor = dataclasses.replace(ACCOUNT, buying_power=Decimal(20_000))
    values = dict.fromkeys(SYMBOLS, 1.0)
    orders = await _orders(tmp_path, values, [], 0.40, account=poor, limits=RiskLimits())
    assert orders == {"AAA": ("buy", Decimal(100))}


@pytest.mark.asyncio
async def test_the_buys_of_one_cycle_count_against_max_positions(tmp_path: Path) -> None:
    # One name held (DDD) and max_positions 2: AAA is the second name; BBB and CCC would be
    # the third and fourth, though the cycle's snapshot of the positions still shows one.
    held = Position("DDD", Decimal(10), Decimal(100), "us_equity", Decimal(1_000))
    values = dict.fromkeys(SYMBOLS, 1.0)
    orders = await _orders(tmp_path, values, [held], 0.40, limits=RiskLimits(max_positions=2))
    assert orders == {"AAA": ("buy", Decimal(100))}


@pytest.mark.asyncio
async def test_the_risk_multiplier_scales_weights_at_the_cap(tmp_path: Path) -> None:
    # Share 1.0: each weight 1.0 x 1.0 = 1.0, capped at max_weight 0.10; the regime's risk
    # multiplier 0.5 then halves it: 0.05 x 100,000 / 100.00 = 50 shares. Scaling before the
    # cap left 0.5 -> 0.10, the full-risk position (100 shares).
    orders = await _orders(tmp_path, dict.fromkeys(SYMBOLS, 1.0), [], 1.0, risk=0.5)
    assert orders == {s: ("buy", Decimal(50)) for s in SYMBOLS}


@pytest.mark.asyncio
async def test_the_risk_multiplier_scales_the_targets_the_share_allows(tmp_path: Path) -> None:
    # Share 0.20: three weights at the 0.10 cap fit into 0.20 as 0.0667 each (66 shares at full
    # risk); the risk multiplier 0.5 halves that: 0.0333 x 100,000 / 100.00 = 33 shares.
    orders = await _orders(tmp_path, dict.fromkeys(SYMBOLS, 1.0), [], 0.20, risk=0.5)
    assert orders == {s: ("buy", Decimal(33)) for s in SYMBOLS}


@pytest.mark.asyncio
async def test_a_symbol_with_a_stale_quote_leaves_its_part_of_the_share_to_the_others(
    tmp_path: Path,
) -> None:
    # Share 0.20, CCC's quote 20 minutes old: CCC gets no order, so AAA and BBB (0.10 each at
    # the cap) fit the 0.20 whole: 100 shares each, not the 66 of a three-way split.
    values = dict.fromkeys(SYMBOLS, 1.0)
    orders = await _orders(tmp_path, values, [], 0.20, stale=frozenset({"CCC"}))
    assert orders == {"AAA": ("buy", Decimal(100)), "BBB": ("buy", Decimal(100))}


@pytest.mark.asyncio
async def test_a_held_symbol_with_a_stale_quote_keeps_its_part_of_the_share(
    tmp_path: Path,
) -> None:
    # Share 0.20, CCC held at 100 shares x $100 = 0.10 of equity and its quote stale: it is
    # neither traded nor re-targeted, so AAA and BBB share the 0.10 left: 0.05 each, 50 shares.
    held = Position("CCC", Decimal(100), Decimal(100), "us_equity", Decimal(10_000))
    values = dict.fromkeys(SYMBOLS, 1.0)
    orders = await _orders(tmp_path, values, [held], 0.20, stale=frozenset({"CCC"}))
    assert orders == {"AAA": ("buy", Decimal(50)), "BBB": ("buy", Decimal(50))}


@pytest.mark.asyncio
async def test_a_change_below_min_trade_weight_is_held_with_its_reason(tmp_path: Path) -> None:
    # Share 0.50, risk multiplier 0.04: 0.10 (the cap) x 0.04 = 0.004 of equity, 4 shares at
    # 100.00 = 0.40 % of equity, below min_trade_weight 0.50 %: no order, and the cycle says so.
    orders, details = await _cycle(tmp_path, dict.fromkeys(SYMBOLS, 1.0), [], 0.50, risk=0.04)
    assert orders == {}
    assert details == dict.fromkeys(
        SYMBOLS,
        "hold: a change of 0.40% of equity is below min_trade_weight 0.50% (target weight "
        "0.0040, risk multiplier 0.040)",
    )
