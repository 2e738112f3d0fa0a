"""The equity engine: universe -> CAPM screen -> signals -> aggregator -> sizing -> orders.

Pre-market (after the runner's own job has loaded the history and assessed the regime): every
signal source refits on the daily history (GARCH, CAPM, the HMM and manifold regimes, the ML
classifiers; the adapters of ``v28quant.models`` too when that package is installed), each in a
worker thread so the event loop keeps serving, the classifiers beside the transformer and SAC
once the day's features are built; a failing source is logged and journaled and the others go
on. The CAPM ranking screens the universe: the ``screen_keep`` symbols with the
highest expected return, plus whatever is held. A held symbol the screen dropped is only held
or reduced (its exits still run), never added to.

Each cycle: the sources' signals for the screened and held symbols are journaled (once per data
time), aggregated with the regime's weights (``SignalAggregator``, threshold from settings:
``[aggregator]``, or ``[paper]`` in paper mode), turned into target weights
(``v28quant.equity.sizing``; a buy sized at the ask it pays, within its target and the risk
gate's per-order limits), gated by the stacked ensemble (its veto journaled as it starts,
changes and ends, not every cycle it lasts), checked by the risk gate and placed
through the execution service with ``Owner("equity", "aggregate", ...)``. Orders are whole
shares, except a close to flat (``v28quant.equity.sizing``); of a stock the venue takes no
fraction of (``Broker.asset``), that close sells the whole shares, and the fraction left is a
hold, journaled once, for the operator to close at the venue. A short sale is sent only with
``[equity] allow_short``, from an account the venue lets sell short, of a stock it lends
(``Broker.asset``); otherwise the symbol holds, with the reason in the cycle's details and a
hold journaled when it starts or changes (for ``why``), rather than have the venue refuse it
every cycle; a short view without ``allow_short`` is such a hold too. A hold's end is
journaled too (``hold_ended``), so ``why`` gives a hold only while it is in force. A
restarted engine takes the holds and vetoes in force from the journal (``_resume``), so each
ends once and none is journaled twice; one an earlier session left in force, its process gone
before its end of day, ends then. Decision ids are the session, the cycle slot and the
symbol, so a restart inside a slot re-sends nothing; a symbol with an order of ours still
working at the venue gets no new order until that one ends.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from v28quant.broker.base import Account, BrokerError, OrderRequest, Owner, Position, Side
from v28quant.calendar import ET
from v28quant.config import EquityConfig
from v28quant.engines import CycleReport, EngineContext
from v28quant.equity.data_checks import unusable_data
from v28quant.equity.learned import LearnedSource
from v28quant.equity.learning import TradeLearner
from v28quant.equity.sizing import (
    capped_weight,
    fit_opening,
    ml_veto,
    order_qty,
    reduces,
    target_qty,
    target_weights,
    toward_zero,
    whole_shares,
)
from v28quant.equity.sources import MarketView, MlSource, data_time, default_sources
from v28quant.occ import is_occ
from v28quant.signals import Signal

log = logging.getLogger(__name__)

ENGINE = "equity"
STRATEGY = "aggregate"

#: Why a short view sells nothing when the settings forbid short sales.
NO_SHORT_SALE = "[equity] allow_short is false: no short sale"

#: What a source's refit step returns (the classifiers' ``prepare`` returns the view it kept).
T = TypeVar("T")


def exposures(held: dict[str, Any], equity: Any) -> dict[str, float]:
    """Return each held symbol's signed exposure, market value / equity, clipped to [-1, 1]."""
    eq = float(equity)
    out: dict[str, float] = {}
    for sym, p in held.items():
        value = p.market_value if p.market_value is not None else p.qty * p.avg_entry_price
        out[sym] = float(min(max(float(value) / eq, -1.0), 1.0)) if eq > 0 else 0.0
    return out


def _registry_adapters() -> list[Any]:
    """Return the adapters of ``v28quant.models`` when that package is installed."""
    try:
        from v28quant.models import all_equity_adapters
    except ImportError:
        return []
    return list(all_equity_adapters())


class EquityEngine:
    """The equity engine (see the module docstring).

    Parameters
    ----------
    config : EquityConfig
        ``[equity]`` of the settings.
    sources : list, optional
        Signal sources (default: the built-in ones and the ``v28quant.models`` adapters).
    """

    name = ENGINE

    def __init__(self, config: EquityConfig, sources: list[Any] | None = None) -> None:
        self.cfg = config
        self.sources = sources if sources is not None else self._default_sources()
        self.view: MarketView | None = None
        self.screened: list[str] = []
        self._journaled: set[tuple[str, str, str]] = set()
        # each symbol's hold in force, as journaled when it began or last changed, this session
        self._holds: dict[str, dict[str, str]] = {}
        # the stacked ensemble's veto in force on each symbol, as journaled when it began
        self._gates: dict[str, dict[str, Any]] = {}
        # whether the holds and vetoes in force were taken from the journal (``_resume``)
        self._resumed = False
        ml = next((s for s in self.sources if isinstance(s, MlSource)), None)
        self.learning = TradeLearner(ml) if ml is not None else None

    def _default_sources(self) -> list[Any]:
        own = default_sources()
        own += [LearnedSource(s) for s in own if isinstance(s, MlSource)]
        extra = _registry_adapters()
        names = {getattr(a, "name", "") for a in extra}
        return [s for s in own if s.name not in names] + extra

    @property
    def garch_vol(self) -> dict[str, float]:
        """Return the GARCH volatility forecasts (annualised) of the day, by symbol."""
        for s in self.sources:
            if s.name == "garch":
                return dict(s.vol)
        return {}

    async def premarket(self, ctx: EngineContext) -> None:
        """Refit every source on the day's history and screen the universe."""
        closes = ctx.shared.get("closes")
        if closes is None or closes.empty:
            raise RuntimeError("no daily history from the runner's pre-market job")
        market = str(ctx.shared["market_symbol"])
        symbols = [s for s in ctx.universe if s in closes and closes[s].notna().sum() > 260]
        view = MarketView(
            now=ctx.now,
            symbols=symbols,
            bars=ctx.shared["bars"],
            closes=closes,
            market=market,
            data_ts=data_time(closes.index, ctx.now),
            model_dir=ctx.model_dir,
            journal=ctx.journal,
            regime_controller=ctx.shared.get("regime_controller"),
            resume_models=ctx.mode != "backtest",
        )
        learned = [s for s in self.sources if isinstance(s, LearnedSource)]
        for src in self.sources:
            if src in learned:
                continue  # trained beside the classifiers, below
            if isinstance(src, MlSource) and learned:
                # The classifiers (compiled tree builders, off the GIL) and the torch models
                # train on the same features at once: on two cores a refresh takes about the
                # longer of the two, not their sum. Each keeps its own seeds, so the models are
                # those trained one after the other.
                ml_view = await self._refit(ctx, src.name, src.prepare, view)
                await asyncio.gather(
                    *([self._refit(ctx, src.name, src.train, ml_view)] if ml_view else []),
                    *(self._refit(ctx, s.name, s.refit, view) for s in learned),
                )
            else:
                await self._refit(ctx, src.name, src.refit, view)
        self.view = view
        if self.learning is not None:
            try:
                self.learning.prepare(view)
            except (ValueError, KeyError) as exc:  # no classifier today: nothing to watch
                log.warning("equity: continuous learner not ready: %s", exc)
        self.screened = self._screen(symbols)
        ctx.journal.record_decision(
            f"equity-screen-{ctx.now.isoformat()}",
            ENGINE,
            "capm_screen",
            "*",
            "screen",
            {"kept": self.screened, "universe": symbols, "keep": self.cfg.screen_keep},
            ctx.now,
        )
        log.info("equity: CAPM screen keeps %s", ",".join(self.screened))

    async def _refit(
        self, ctx: EngineContext, name: str, step: Callable[[MarketView], T], view: MarketView
    ) -> T | None:
        """Run one source's refit ``step`` in a worker thread; a failure is journaled (None)."""
        try:
            return await asyncio.to_thread(step, view)
        except Exception as exc:  # one family failing must not stop the others
            log.exception("equity: source %s failed to refit: %s", name, exc)
            ctx.journal.record_decision(
                f"equity-refit-{name}-{ctx.now.isoformat()}",
                ENGINE,
                "premarket",
                "*",
                "error",
                {"source": name, "error": f"{type(exc).__name__}: {exc}"},
                ctx.now,
            )
            return None

    def _screen(self, symbols: list[str]) -> list[str]:
        for s in self.sources:
            if s.name == "capm" and not s.ranking.empty:
                ranked = [str(x) for x in s.ranking.index if x in symbols]
                return ranked[: self.cfg.screen_keep]
        return symbols[: self.cfg.screen_keep]

    def _journal_signals(self, ctx: EngineContext, signals: list[Signal]) -> int:
        fresh: dict[tuple[str, str, str], Signal] = {}
        for s in signals:
            key = (s.model, s.symbol, s.ts.isoformat())
            if key not in self._journaled:
                fresh.setdefault(key, s)
        ctx.journal.record_cycle(fresh.values(), (), ctx.now)  # one transaction, one fsync
        self._journaled.update(fresh)
        return len(fresh)

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        """Aggregate, size, gate, check and place (see the module docstring)."""
        slot = ctx.now
        self._resume(ctx)
        if self.view is None or ctx.regime is None:
            return CycleReport(ENGINE, slot, note="no pre-market data; nothing to do")
        account = await ctx.broker.account()
        positions = await ctx.broker.positions()
        working = await self._working(ctx)
        held = {p.symbol: p for p in positions if p.asset_class == "us_equity" and p.qty != 0}
        symbols = sorted(set(self.screened) | set(held))
        view = replace(
            self.view, now=ctx.now, symbols=symbols, positions=exposures(held, account.equity)
        )
        signals = [s for src in self.sources for s in src.signals(view)]
        n_sig = self._journal_signals(ctx, signals)
        # the market proxy's GARCH signal is journaled, but only tradable symbols aggregate
        wanted = set(symbols)
        aggregates = ctx.aggregator.aggregate(
            [s for s in signals if s.symbol in wanted], ctx.regime.state, now=ctx.now
        )
        for agg_ in aggregates.values():  # the why-query reads these back
            ctx.journal.record_aggregate(agg_, ctx.now)
        quotes = await ctx.feed.latest_quotes(symbols)
        equity = Decimal(account.equity)
        ensemble = {s.symbol: s for s in signals if s.model == "stacked_ensemble"}
        vols = self.garch_vol
        share = float(ctx.shared.get("capital_split", {}).get(ENGINE, 1.0))
        risk = float(ctx.regime.risk_multiplier)
        unusable = {
            sym: bad
            for sym in symbols
            if (bad := unusable_data(sym, quotes.get(sym), self.view.closes, ctx.now)) is not None
        }
        # a symbol skipped for its data keeps its exposure and leaves the rest of the share
        usable = [sym for sym in symbols if sym not in unusable]
        dropped = set(held) - set(self.screened)
        weights = self._weights(aggregates, usable, view.positions, risk, share, dropped)
        orders = denied = 0
        details: dict[str, Any] = {}
        holds: dict[str, dict[str, str]] = {}
        gates: dict[str, dict[str, Any]] = {}
        day = slot.astimezone(ET)
        for sym in symbols:
            agg = aggregates.get(sym)
            quote = quotes.get(sym)
            if sym in unusable:
                log.warning("equity: %s skipped this cycle: %s", sym, unusable[sym])
                details[sym] = f"skipped: {unusable[sym]}"
                continue
            held_qty = held[sym].qty if sym in held else Decimal(0)
            decision_id = f"{day:%Y-%m-%d}-{day:%H%M}-{sym}"
            if agg is None:  # only a held symbol can lack one: the screened were fitted
                details[sym] = self._hold_unmodelled(ctx, sym, held_qty, decision_id, holds)
                continue
            if quote is None:  # unusable_data refuses a missing quote
                continue
            if sym in working:
                details[sym] = "an order of ours is still working: no order added to it"
                continue
            price = quote.mid
            reasoning: dict[str, Any] = {
                "aggregate": round(agg.value, 4),
                "confidence": round(agg.confidence, 4),
                "tradable": agg.tradable,
                "min_confidence": ctx.aggregator.min_confidence,
                "regime": agg.regime.label,
                "contributions": {m: list(c) for m, c in agg.contributions.items()},
                "risk_multiplier": round(ctx.regime.risk_multiplier, 4),
                "garch_vol": vols.get(sym),
                "price": str(price),
                "data_ts": self.view.data_ts.isoformat(),
                "synthetic_prices": bool(ctx.synthetic or quote.synthetic),
                "capital_share": round(share, 5),
                "equity": str(equity),
            }
            if not agg.tradable:
                details[sym] = f"hold: confidence {agg.confidence:.2f} below threshold"
                continue
            if sym not in weights:  # a failed fit is no view to exit on: nothing to size by
                details[sym] = "hold: no GARCH volatility to size by"
                continue
            w = weights[sym]
            target = target_qty(w, equity, price)
            delta = target - held_qty
            reasoning["target_weight"] = round(w, 5)
            reasoning["target_qty"] = str(target)
            qty = order_qty(target, held_qty)
            if sym in dropped and not reduces(qty, held_qty):
                details[sym] = (
                    f"hold: dropped by the CAPM screen, so held or reduced, never added to "
                    f"(target {target} shares, {held_qty} held)"
                )
                continue
            if qty != whole_shares(qty):  # only a close to flat is fractional
                unsplit = await self._fraction_refusal(ctx, sym)
                if unsplit is not None:
                    qty = whole_shares(qty)
                    left = held_qty + qty
                    remainder = (
                        f"{left} shares of {sym} left: {unsplit}; only closing the position at "
                        f"the venue (DELETE /v2/positions/{sym}) sells them"
                    )
                    if qty == 0:
                        details[sym] = self._hold_once(
                            ctx, sym, remainder, left, decision_id, holds
                        )
                        continue
                    reasoning["order_qty"] = str(qty)
                    reasoning["remainder"] = remainder
            if qty == 0 and target == 0 and agg.value < 0 and not self.cfg.allow_short:
                # journaled without the aggregate: a stronger or weaker short view is no change
                reason = f"a short view, and {NO_SHORT_SALE}"
                self._hold_once(ctx, sym, reason, held_qty, decision_id, holds)
                details[sym] = (
                    f"hold: a short view (aggregate {agg.value:+.2f}), and {NO_SHORT_SALE}"
                )
                continue
            if qty == 0:
                details[sym] = _nothing_to_order(target, held_qty)
                continue
            change = abs(delta) * price / equity
            if target != 0 and change < Decimal(str(self.cfg.min_trade_weight)):
                details[sym] = (
                    f"hold: a change of {change:.2%} of equity is below min_trade_weight "
                    f"{self.cfg.min_trade_weight:.2%} (target weight {w:.4f}, risk multiplier "
                    f"{risk:.3f})"
                )
                continue
            if qty != delta:  # whole shares, or a close before the position changes side
                reasoning["order_qty"] = str(qty)
            if held_qty * target < 0:
                reasoning["crosses_zero"] = "closes the position first; the rest next cycle"
            # a market buy pays the ask: its cost, and the gate's notional, are at the ask
            order_price = quote.ask if qty > 0 else price
            reasoning["order_price"] = str(order_price)
            if not reduces(qty, held_qty):
                if qty < 0:  # a short sale the venue would refuse, every cycle, is not sent
                    refusal = await self._short_refusal(ctx, sym, account)
                    if refusal is not None:
                        details[sym] = self._hold_once(
                            ctx, sym, f"{refusal}: no short sale", held_qty, decision_id, holds
                        )
                        continue
                limits = ctx.risk.limits
                fitted = fit_opening(
                    qty, held_qty, w, equity, order_price,
                    Decimal(str(limits.max_order_notional)), Decimal(limits.max_order_qty),
                )  # fmt: skip
                if fitted == 0:
                    details[sym] = (
                        f"hold: no whole share more fits the target and the order limits at "
                        f"{order_price}"
                    )
                    continue
                if fitted != qty:
                    reasoning["order_qty"] = str(fitted)
                    reasoning["order_cut"] = "to the target and the order limits at order_price"
                qty = fitted
            direction = 1 if delta > 0 else -1
            veto = ml_veto(ensemble.get(sym), direction, self.cfg.ml_veto_confidence)
            if veto is not None:
                gates[sym] = {**veto, "direction": direction}
                if self._gates.get(sym) != gates[sym]:  # journaled as it starts or changes
                    ctx.journal.record_decision(
                        f"equity-gate-{decision_id}",
                        ENGINE,
                        STRATEGY,
                        sym,
                        "gated",
                        {**reasoning, "ml_gate": veto},
                        ctx.now,
                    )
                details[sym] = "gated by the stacked ensemble"
                continue
            side: Side = "buy" if qty > 0 else "sell"
            request = OrderRequest.equity(
                sym, abs(qty), side, owner=Owner(ENGINE, STRATEGY, decision_id)
            )
            verdict = ctx.risk.check(request, order_price, account, positions, ctx.now, cycle=slot)
            if not verdict.allowed:
                denied += 1
                details[sym] = f"{side} {abs(qty)}: denied by the risk gate: {verdict.reason}"
                continue
            ctx.journal.record_decision(
                decision_id, ENGINE, STRATEGY, sym, side, reasoning, ctx.now
            )
            outcome = await ctx.executor.place(self._decision(request, reasoning, order_price))
            if outcome.status not in ("refused", "rejected"):
                account, positions = with_order(account, positions, request, order_price)
            orders += 1
            details[sym] = f"{side} {abs(qty)}: {outcome.status}"
        # a symbol this cycle did not judge (its data, an order working) keeps its hold and veto
        unjudged = set(unusable) | working
        held_on = {sym: hold for sym, hold in self._holds.items() if sym in unjudged}
        self._end_holds(ctx, {**held_on, **holds}, details, "neither held nor screened any more")
        kept = {sym: veto for sym, veto in self._gates.items() if sym in unjudged}
        self._end_gates(ctx, {**kept, **gates}, "the stacked ensemble's veto ended")
        return CycleReport(ENGINE, slot, n_sig, orders, denied, details=details)

    def _resume(self, ctx: EngineContext) -> None:
        """Take the holds and vetoes in force from the journal, once, as the engine starts.

        Kept only in memory, they would be lost by a restart: one that then ends would get no
        end row (``why`` would give it for good), one still in force would be journaled again.
        Those an earlier session left in force (its process gone before its end of day) end now.
        """
        if self._resumed:
            return
        self._resumed = True
        holds = _in_force(ctx, "hold", "hold_ended")
        gates = _in_force(ctx, "gated", "ungated")
        self._holds = {
            sym: {k: str(v) for k, v in d["reasoning"].items()} for sym, d in holds.items()
        }
        self._gates = {sym: _veto_of(d["reasoning"]["ml_gate"]) for sym, d in gates.items()}
        today = ctx.now.astimezone(ET).date()
        ended = "the session it began in ended"
        self._end_holds(
            ctx, {s: h for s, h in self._holds.items() if _day(holds[s]) == today}, {}, ended
        )
        self._end_gates(
            ctx, {s: v for s, v in self._gates.items() if _day(gates[s]) == today}, ended
        )

    def _end_gates(self, ctx: EngineContext, gates: dict[str, dict[str, Any]], why: str) -> None:
        """Journal the end of each veto not in ``gates``, the vetoes in force; keep those.

        A veto is journaled as it starts and changes, not every cycle it lasts; its end is
        journaled too, so that the journal tells which veto is in force.
        """
        day = ctx.now.astimezone(ET)
        for sym, veto in self._gates.items():
            if sym not in gates:
                ctx.journal.record_decision(
                    f"equity-ungate-{day:%Y-%m-%d}-{day:%H%M}-{sym}",
                    ENGINE,
                    STRATEGY,
                    sym,
                    "ungated",
                    {"reason": why, "ml_gate": veto},
                    ctx.now,
                )
        self._gates = gates

    def _end_holds(
        self,
        ctx: EngineContext,
        holds: dict[str, dict[str, str]],
        details: dict[str, Any],
        otherwise: str,
    ) -> None:
        """Journal the end of each hold not in ``holds``, the holds in force; keep those.

        A hold is journaled as it starts and changes, not every cycle it lasts; its end is
        journaled too, so that the operator's ``why`` gives a hold only while it is in force.
        The end's reason is what the cycle did with the symbol instead (``details``), else
        ``otherwise``.
        """
        day = ctx.now.astimezone(ET)
        for sym, hold in self._holds.items():
            if sym not in holds:
                ctx.journal.record_decision(
                    f"equity-hold-ended-{day:%Y-%m-%d}-{day:%H%M}-{sym}",
                    ENGINE,
                    STRATEGY,
                    sym,
                    "hold_ended",
                    {"reason": str(details.get(sym, otherwise)), "hold": hold},
                    ctx.now,
                )
        self._holds = holds

    async def follow(self, ctx: EngineContext) -> bool:
        """Look up this engine's orders still working between cycles; True while any works.

        The runner calls this at the 5-minute slots between cycles further apart (a daily
        backtest). The rest of an order the quote's displayed size cut short (a part fill of a
        market order on the simulated exchange) then fills at the next slot's quote, as it
        would by the next 5-minute cycle live, instead of resting until the close and expiring.
        Each look-up journals what the venue says, as a cycle's would.
        """
        # the journal's open orders, not the venue's: one the venue fills on this look is
        # still looked up, so its fill is journaled now rather than by the next session's sync
        ours = [
            row["client_order_id"]
            for row in ctx.journal.open_orders()
            if row["engine"] == ENGINE and row.get("broker_order_id")
        ]
        working = 0
        for cid in ours:
            order = await ctx.executor.track(cid, 0.0)
            working += not order.status.terminal
        return working > 0

    def _weights(
        self,
        aggregates: dict[str, Any],
        symbols: list[str],
        held: dict[str, float],
        risk: float,
        share: float,
        dropped: set[str],
    ) -> dict[str, float]:
        """Return the target weight of each tradable symbol, all within the engine's share.

        ``symbols``: those with data fit to trade on. The held symbols without a tradable
        aggregate, without a GARCH volatility to size by, or left out of ``symbols`` keep their
        exposure (``held``, fractions of equity), so they use that much of the budget first;
        the latter two get no weight and so no order. A held symbol the screen ``dropped``
        may only shrink: its weight is kept between zero and its exposure.
        """
        vols = self.garch_vol
        capped = {
            sym: capped_weight(agg.value, vols[sym], self.cfg, share)
            for sym, agg in aggregates.items()
            if sym in symbols and agg.tradable and _sizable(vols.get(sym))
        }
        for sym in dropped & capped.keys():
            capped[sym] = toward_zero(capped[sym], held[sym])
        kept = sum(abs(x) for sym, x in held.items() if sym not in capped)
        return target_weights(capped, share - kept, risk)

    @staticmethod
    async def _short_refusal(ctx: EngineContext, symbol: str, account: Account) -> str | None:
        """Return why the venue would refuse a short sale of ``symbol``, or None."""
        if not account.shorting_enabled:
            return "the account may not sell short (the venue's shorting_enabled is false)"
        try:
            asset = await ctx.broker.asset(symbol)
        except BrokerError as exc:  # unknown is not a yes: the sale waits for an answer
            return f"the venue did not say whether it lends {symbol} ({exc})"
        if not asset.lends:
            return (
                f"the venue will not lend {symbol} for a short sale (shortable "
                f"{str(asset.shortable).lower()}, easy_to_borrow "
                f"{str(asset.easy_to_borrow).lower()})"
            )
        return None

    @staticmethod
    async def _fraction_refusal(ctx: EngineContext, symbol: str) -> str | None:
        """Return why the venue would refuse a fractional order of ``symbol``, or None."""
        try:
            asset = await ctx.broker.asset(symbol)
        except BrokerError as exc:  # unknown is not a yes: the whole shares go, the rest waits
            return f"the venue did not say whether it takes a fraction of {symbol} ({exc})"
        if not asset.fractionable:
            return f"the venue takes no fractional order of {symbol} (fractionable false)"
        return None

    def _hold_unmodelled(
        self,
        ctx: EngineContext,
        symbol: str,
        held_qty: Decimal,
        decision_id: str,
        holds: dict[str, dict[str, str]],
    ) -> str:
        """Note in ``holds`` the hold of a held ``symbol`` no model covers; return its detail.

        With no signal there is no aggregate either, so the journaled hold is what the
        operator's ``why`` finds on the symbol. It is journaled in the session's first cycle
        that holds so and again when what it says (the reason, the shares held) changes, not
        every cycle: a stock left unmodelled all day would add 72 rows that say the same.
        """
        reason = "no model gave it a signal (its data may be missing): held, nothing to size by"
        return self._hold_once(ctx, symbol, reason, held_qty, decision_id, holds)

    def _hold_once(
        self,
        ctx: EngineContext,
        symbol: str,
        reason: str,
        held_qty: Decimal,
        decision_id: str,
        holds: dict[str, dict[str, str]],
    ) -> str:
        """Note in ``holds`` that ``symbol`` holds for ``reason``; return the cycle's detail.

        The hold is journaled (for the operator's ``why``) when it starts and when what it
        says changes, not every cycle it lasts; ``_end_holds`` journals its end.
        """
        holds[symbol] = {"reason": reason, "held_qty": str(held_qty)}
        if self._holds.get(symbol) != holds[symbol]:
            ctx.journal.record_decision(
                f"equity-hold-{decision_id}",
                ENGINE,
                STRATEGY,
                symbol,
                "hold",
                holds[symbol],
                ctx.now,
            )
        return f"hold: {reason}"

    @staticmethod
    async def _working(ctx: EngineContext) -> set[str]:
        """Return the stocks with an order of ours (any engine's) still working at the venue.

        Orders are sized as target minus the position: the rest of an order still working (a
        partial fill, a market order accepted before the open) would be ordered a second time.
        An order still being sent counts too: a cycle cut off at its time limit leaves its send
        going on (``Executor.place``), and the venue lists the order only once it takes it.
        """
        at_venue = {
            o.symbol
            for o in await ctx.broker.orders("open")
            if o.symbol and not is_occ(o.symbol) and o.owner is not None
        }
        return at_venue | _stocks_being_sent(ctx)

    @staticmethod
    def _decision(request: OrderRequest, reasoning: dict[str, Any], price: Decimal) -> Any:
        from v28quant.execution import Decision

        return Decision(request, reasoning, est_price=price)

    async def drift_check(self, ctx: EngineContext) -> Any:
        """Off-hours: the continuous learner's drift test (a ``DriftReport``, or None)."""
        if self.learning is None:
            return None
        return await self.learning.check(ctx.journal, ctx.now)

    async def aclose(self) -> None:
        """At the runner's exit: wait (bounded) for the learner's drift checks to journal."""
        if self.learning is not None:
            await self.learning.aclose()

    async def end_of_day(self, ctx: EngineContext) -> None:
        """Feed the day's closed trades to the learner; drop the day's journaling bookkeeping."""
        self._journaled.clear()
        self._resume(ctx)  # a restart after the last cycle comes straight here
        # the next session's holds and vetoes are its own, journaled again if still in force
        self._end_holds(ctx, {}, {}, "the session ended")
        self._end_gates(ctx, {}, "the session ended")
        if self.learning is not None:
            await self.learning.after_session(ctx.journal, ctx.now)


def _in_force(ctx: EngineContext, begins: str, ends: str) -> dict[str, dict[str, Any]]:
    """Return, by symbol, this engine's last ``begins`` decision by now with no ``ends`` after."""
    last: dict[str, dict[str, Any]] = {}
    for d in ctx.journal.decisions(engine=ENGINE, action=(begins, ends)):
        if d["ts"] <= ctx.now:  # a backtest over a journal with later days reads up to its own
            last[d["symbol"]] = d
    return {sym: d for sym, d in last.items() if d["action"] == begins}


def _veto_of(ml_gate: dict[str, Any]) -> dict[str, Any]:
    """Return the veto in force as a cycle notes it, from its journaled ``ml_gate``.

    A veto only opposes the trade, so the trade's direction is against the ensemble's vote.
    """
    return {**ml_gate, "direction": 1 if ml_gate["ensemble_value"] < 0 else -1}


def _day(decision: dict[str, Any]) -> date:
    """Return the session (the New York date) of a journaled ``decision``."""
    when: datetime = decision["ts"]
    return when.astimezone(ET).date()


def _stocks_being_sent(ctx: EngineContext) -> set[str]:
    """Return the stocks of the journal's open orders whose send is under way."""
    sending = ctx.executor.sending()
    requests = (o["request"] for o in ctx.journal.open_orders() if o["client_order_id"] in sending)
    return {str(r["symbol"]) for r in requests if r and r["symbol"] and not is_occ(r["symbol"])}


def _nothing_to_order(target: Decimal, held_qty: Decimal) -> str:
    """Return why a symbol with no shares to order holds: at its target, or within a share."""
    if target == held_qty:
        return f"hold: at its target of {target} shares"
    return f"hold: within a share of its target of {target} shares ({held_qty} held)"


def _sizable(vol: float | None) -> bool:
    """Whether ``vol`` (annualised GARCH volatility) can size a target: finite and positive."""
    return vol is not None and math.isfinite(vol) and vol > 0


def with_order(
    account: Account, positions: list[Position], request: OrderRequest, price: Decimal
) -> tuple[Account, list[Position]]:
    """Return the cycle's view of the account and positions once ``request`` is placed.

    The venue is read once a cycle: without this, each buy would be checked against the
    buying power and the names the cycle's earlier orders already took. A close frees nothing
    until it fills.
    """
    signed = request.qty if request.side == "buy" else -request.qty
    held = next((p.qty for p in positions if p.symbol == request.symbol), Decimal(0))
    qty = held + signed
    spent = max(abs(qty) - abs(held), Decimal(0)) * price  # what it opens, long or short
    assert request.symbol is not None
    after = Position(request.symbol, qty, price, "us_equity", qty * price)
    rest = [p for p in positions if p.symbol != request.symbol]
    return replace(account, buying_power=account.buying_power - spent), [*rest, after]
