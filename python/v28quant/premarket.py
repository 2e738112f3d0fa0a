"""The runner's own pre-market job and per-cycle account watch, shared by every engine.

Pre-market (before the engines' own jobs): re-read the venue clock; reconcile the journal with
the broker (fail closed: a difference it cannot explain means no trading this session); mark
the account for the risk gate; load the daily history of the universe and the market proxy;
fit the hierarchical regime controller (market regime over symbol regimes) and put its
assessment in ``ctx.regime`` for both engines, journaled as a ``regime`` decision.

Each cycle slot: re-read the venue clock, mark the account (a loss-limit breach halts), and
carry out a pending operator ``flatten``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from v28quant.broker.base import Intent, OrderRequest, Owner, Side
from v28quant.broker.occ import is_occ
from v28quant.engines import EngineContext
from v28quant.ml.pomdp_controller import ControllerDecision
from v28quant.reconcile import reconcile
from v28quant.risk import FLATTEN_STRATEGY, FLATTENED, record_control
from v28quant.signals import RegimeState
from v28quant.venue import Venue

log = logging.getLogger(__name__)


@dataclass
class RegimeView:
    """The session's regime as both engines use it.

    Attributes
    ----------
    state : RegimeState
        The market regime the aggregator weighs the models by.
    risk_multiplier : float
        In (0, 1]: the regime controller's multiplier times the POMDP controller's exposure.
    per_symbol : dict
        Symbol regimes where the controller gives them.
    pomdp : ControllerDecision
        The POMDP controller's action and belief.
    """

    state: RegimeState
    risk_multiplier: float
    per_symbol: dict[str, RegimeState]
    pomdp: ControllerDecision


async def load_history(
    ctx: EngineContext, symbols: list[str], sessions: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return daily bars (long) and closes (wide) of ``symbols`` up to the last close.

    A symbol whose data fails to load is dropped with a warning; the others go on.
    """
    start = ctx.now - timedelta(days=int(sessions * 1.5) + 10)
    frames = []
    for sym in symbols:
        try:
            bars = await ctx.feed.bars([sym], start, ctx.now, "1Day")
        except (KeyError, ValueError, OSError) as exc:
            log.warning("history of %s unavailable, dropped today: %s", sym, exc)
            continue
        if bars.empty:
            log.warning("history of %s is empty, dropped today", sym)
            continue
        frames.append(bars)
    if not frames:
        return pd.DataFrame(), pd.DataFrame()
    long = pd.concat(frames, ignore_index=True)
    wide = long.pivot_table(index="timestamp", columns="symbol", values="close").sort_index()
    wide = wide.iloc[-sessions:]
    long = long[long["timestamp"] >= wide.index[0]].reset_index(drop=True)
    return long, wide


def log_returns(closes: pd.DataFrame) -> pd.DataFrame:
    """Return daily log returns of ``closes`` (first row dropped)."""
    return pd.DataFrame(np.log(closes)).diff().iloc[1:]


def _pomdp_likelihoods(state: RegimeState) -> dict[str, float]:
    """Map regime probabilities onto the POMDP's states (each label counted once)."""
    p = state.probabilities
    return {
        "bull": float(p.get("bull_quiet", 0.0)),
        "neutral": float(p.get("sideways", 0.0)),
        "bear": float(p.get("bear_volatile", 0.0) + p.get("crisis", 0.0)),
    }


async def assess_regime(ctx: EngineContext, market: str, returns: pd.DataFrame) -> RegimeView:
    """Assess the market regime, set the risk scale and journal both."""
    from v28quant.ml.pomdp_controller import POMDPController

    mkt = returns[market].dropna()
    per_symbol: dict[str, RegimeState] = {}
    try:
        from v28quant.regime.hierarchical import HierarchicalRegimeController
    except ImportError:  # the market HMM alone until the hierarchical controller is installed
        from v28quant.regime.hmm import HmmRegimeDetector

        state = HmmRegimeDetector(n_states=3, seed=0).fit(mkt).predict(mkt)
        multiplier = 1.0
    else:
        symbols = {s: returns[s].dropna().to_numpy() for s in returns.columns if s != market}
        controller = HierarchicalRegimeController().fit(mkt.to_numpy(), symbols)
        assessment = controller.assess(mkt.to_numpy(), symbols)
        state, multiplier = assessment.state, float(assessment.risk_multiplier)
        per_symbol = dict(assessment.per_symbol)
    pomdp = ctx.shared.get("pomdp")
    if pomdp is None:
        pomdp = ctx.shared["pomdp"] = POMDPController()
    likelihoods = _pomdp_likelihoods(state)
    decision = pomdp.decide(likelihoods if sum(likelihoods.values()) > 0 else None)
    view = RegimeView(state, multiplier * decision.exposure_scale, per_symbol, decision)
    ctx.journal.record_decision(
        f"regime-{ctx.now.isoformat()}",
        "regime",
        "hierarchical",
        market,
        "regime",
        {
            "label": state.label,
            "source": state.source,
            "probabilities": dict(state.probabilities),
            "controller_multiplier": multiplier,
            "pomdp_action": decision.action,
            "pomdp_belief": decision.belief,
            "risk_multiplier": view.risk_multiplier,
            "per_symbol": {s: r.label for s, r in per_symbol.items()},
        },
        ctx.now,
    )
    log.info(
        "regime: %s; POMDP %s; risk multiplier %.2f",
        state.label,
        decision.action,
        view.risk_multiplier,
        extra={"probabilities": dict(state.probabilities)},
    )
    return view


async def shared_premarket(ctx: EngineContext, venue: Venue) -> bool:
    """Run the shared pre-market job; False means the session must not trade."""
    if venue.venue_clock is not None:
        await venue.venue_clock.refresh()
    journal: Any = ctx.journal  # JournalLike's dict-typed parameters: Journal takes Mappings
    report = await reconcile(journal, ctx.broker, ctx.clock, notifier=ctx.notifier)
    if not report.ok:
        return False
    account = await ctx.broker.account()
    state = ctx.risk.mark(account, ctx.now)
    if state.halted:
        log.warning("kill switch is on (%s): no new orders until `v28quant resume`", state.reason)
    lookback = ctx.config.equity.lookback_sessions
    bars, closes = await load_history(ctx, [*ctx.universe, venue.market_symbol], lookback)
    if closes.empty or venue.market_symbol not in closes:
        log.error("no history for the market proxy %s: no trading today", venue.market_symbol)
        return False
    returns = log_returns(closes)
    ctx.shared["bars"] = bars
    ctx.shared["closes"] = closes
    ctx.shared["market_symbol"] = venue.market_symbol
    ctx.regime = await assess_regime(ctx, venue.market_symbol, returns)
    return True


async def watch_account(ctx: EngineContext, venue: Venue) -> None:
    """Re-read the venue clock, mark the account, and run a pending flatten."""
    if venue.venue_clock is not None:
        await venue.venue_clock.refresh()
    account = await ctx.broker.account()
    state = ctx.risk.mark(account, ctx.now)
    if state.flatten_pending:
        await flatten(ctx)


async def flatten(ctx: EngineContext) -> int:
    """Cancel our open orders and close every position through the execution service.

    Returns the number of closing orders placed; journals ``flattened`` when done.
    """
    from v28quant.execution import Decision

    for order in await ctx.broker.orders("open"):
        if order.client_order_id.startswith("v28-"):
            await ctx.executor.cancel(order.client_order_id, "operator flatten")
    placed = 0
    stamp = ctx.now.isoformat()
    for pos in await ctx.broker.positions():
        if pos.qty == 0:
            continue
        side: Side = "sell" if pos.qty > 0 else "buy"
        owner = Owner("risk", FLATTEN_STRATEGY, f"flatten-{stamp}-{pos.symbol}")
        qty = abs(pos.qty)
        if is_occ(pos.symbol):
            intent: Intent = "sell_to_close" if side == "sell" else "buy_to_close"
            request = OrderRequest.option(pos.symbol, qty, side, intent, owner=owner)
        else:
            request = OrderRequest.equity(pos.symbol, qty, side, owner=owner)
        outcome = await ctx.executor.place(
            Decision(request, {"why": "operator flatten", "position": str(pos.qty)})
        )
        log.warning("flatten %s %s %s: %s", side, qty, pos.symbol, outcome.status)
        placed += 1
    record_control(ctx.journal, FLATTENED, f"{placed} closing order(s) placed", "runner", ctx.now)
    return placed
