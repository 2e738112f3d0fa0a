"""The options engine: chain to signals to regime-chosen structures, and their whole life.

Each ``cycle`` (every 5 minutes in the trading window, at the venue's or simulated time):

1. the venue's account activities (assignment, exercise, expiry) move the ``Book`` and the
   wheel, with a journal row and a notice each;
2. orders still resting are looked up: a fill opens, closes or rolls a structure; an unfilled
   limit is walked one rung towards the natural price; past the natural it is cancelled (where
   cycles are further apart than 5 minutes, ``follow`` does this step alone at the 5-minute
   slots between them);
3. per underlying: the chain snapshot -> ``OptionsAnalyser`` (liquidity, SVI surface, IV rank,
   Heston / Merton / CRR model values, mispricing) -> ``Signal`` objects, journaled and fed to
   the aggregator with the regime; a chain its quotes leave unusable (``ChainUnusable``: empty,
   illiquid, no arbitrage-free surface) skips the underlying for the cycle with one warning
   and a notice held back while it repeats; any other failure is an error with its traceback;
4. open structures: take profit, stop, expiry-day close, roll (one ``mleg`` order closing and
   opening, one idempotent client order id), early-assignment risk before ex-dividend dates;
   a close or roll refused or rejected is tried again each cycle, and said once per structure
   and reason (``manage``), the journal keeping each try;
5. entries: the regime's row of the strategy table (settings, not code), the wheel's covered call
   first where it holds shares; each candidate resolved from the chain, sized to the max loss
   per structure and the portfolio Greek budget, checked by the Monte Carlo touch probability
   and by the risk gate (which checks that max loss and the Greek budget, and journals any
   denial), and placed through the execution service as one order with its reservation (cash
   behind puts and spreads, shares behind covered calls; the wheel's assigned shares are
   reserved as soon as the assignment is applied). An underlying whose structure was stopped
   out within ``[options] reentry_cooldown_minutes`` opens nothing (``options.cooldown``).

The entry threshold is the runner's options threshold for the mode (``[paper]
options_min_confidence`` in paper, never above ``[paper] min_confidence``):
the score ``confidence x (1 + alignment) / 2`` of the underlying's vol view must reach it, so
with 0 the engine opens a structure whenever a liquid chain resolves one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from v28quant.broker.base import (
    BrokerError,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    OrderTag,
    Owner,
    parse_client_order_id,
    replacement_client_order_id,
)
from v28quant.broker.occ import parse_occ
from v28quant.calendar import ET, default_calendar
from v28quant.data.base import chain_frame
from v28quant.engines import CycleReport
from v28quant.journal import INTENT_STATUS, NOT_SENT_STATUS, REFUSED_STATUS, UNKNOWN_STATUS
from v28quant.occ import is_occ
from v28quant.options import contracts as C
from v28quant.options.config import OptionsConfig
from v28quant.options.context import OptionsContext, OptionsCycle
from v28quant.options.decisions import leg_prices, level_needed, new_leg_net, place
from v28quant.options.entry import enter_one
from v28quant.options.errors import ChainUnusable
from v28quant.options.lifecycle import (
    CREDIT_STRATEGIES,
    Book,
    Event,
    Held,
    Pending,
    StrayShares,
    legs_max_loss,
)
from v28quant.options.manage import manage_one, portfolio_greeks
from v28quant.options.monte_carlo_view import MonteCarloView
from v28quant.options.signals import AnalysisSettings, ChainAnalysis, OptionsAnalyser, vol_symbol
from v28quant.options.strategies import StrategyName
from v28quant.options.trend import Trend, trend_of
from v28quant.options.wheel_shares import follow_splits, reserve_wheel_shares
from v28quant.premarket import ENGINE_READ_LIMIT_S, PremarketReadTimeout, in_limit
from v28quant.quotes import Quote
from v28quant.reconcile import activities_since
from v28quant.risk import RiskGate, held_legs_need
from v28quant.settings import RiskLimits
from v28quant.signals import Signal

log = logging.getLogger(__name__)
ENGINE = "options"
#: Strategy of the engine's stock orders that flatten what a spread's settlement left.
FLATTEN_STRATEGY = "flatten"
#: Journal statuses of an order no venue acknowledged (see ``_never_sent``).
_UNSENT = frozenset(
    {INTENT_STATUS, UNKNOWN_STATUS, NOT_SENT_STATUS, REFUSED_STATUS, OrderStatus.REJECTED.value}
)
CREDIT = frozenset({"cash_secured_put", "covered_call", "bull_put", "bear_call", "iron_condor"})
#: Why a resting order of the engine that its book does not know is cancelled.
NOT_IN_BOOK = "not in the options book"
#: Why the rest of an opening order is cancelled once its part fill stalls.
PART_FILL_REST = "part filled, no more fills since: the filled units are booked and managed"
#: Why the rest of a closing order is cancelled once its part fill stalls.
PART_CLOSE_REST = "part filled, no more fills since: the units left close under the same rule"


class OptionsEngine:
    """The options engine (see the module docstring).

    Parameters
    ----------
    config : OptionsConfig, optional
        ``[options]`` settings (default: the shipped defaults and ``V28_CONFIG``).
    book_path : Path, optional
        Where the book is persisted (default: beside the journal, ``<journal>.options.json``).
    """

    name = ENGINE

    def __init__(self, config: OptionsConfig | None = None, *, book_path: Path | None = None):
        self.cfg = config or OptionsConfig.load()
        self.analyser = OptionsAnalyser(
            AnalysisSettings(rate=self.cfg.rate, liquidity=self.cfg.liquidity)
        )
        self._book_path = book_path
        self.book: Book | None = None
        self._closes: dict[str, np.ndarray] = {}
        self.monte_carlo = MonteCarloView()
        self._workers = max(1, min(4, os.cpu_count() or 1))
        self._threads: asyncio.Semaphore | None = None
        self._gate: RiskGate | None = None
        self._iv_key: tuple[int, date] | None = None
        self._iv_by_symbol: dict[str, list[float]] = {}
        self._level: int | None = None  # the account's options level, read at pre-market
        self._paused: tuple[date, str] | None = None  # (session, why) no opening order goes

    # -- runner hooks -----------------------------------------------------------------------

    def announces_fill(self, tag: OrderTag) -> bool:
        """Whether this engine sends the fill notice of an order with ``tag`` itself.

        It does for its structures' orders (strategy, units, net price: more than the legs'
        fills say); the fills of its flattens are the execution service's to announce.
        """
        return tag.engine == ENGINE and tag.strategy != FLATTEN_STRATEGY

    def _book_of(self, ctx: OptionsContext) -> Book:
        if self.book is None:
            path = self._book_path
            if path is None and getattr(ctx.journal, "path", None) is not None:
                path = Path(f"{ctx.journal.path}.options.json")
            self.book = Book(path)
        return self.book

    def underlyings(self, ctx: OptionsContext) -> tuple[str, ...]:
        """Return the underlyings traded: ``[options] underlyings`` or the runner's universe."""
        return self.cfg.underlyings or tuple(ctx.universe)

    async def premarket(self, ctx: OptionsContext) -> None:
        """Load the book, apply overnight activities and read the daily closes.

        Expiries settle after the close, so their activities arrive overnight; two years of
        daily closes per underlying feed the IV-rank proxy and the jump fit. Orders of the
        engine resting at the venue that the book does not know are cancelled
        (``_cancel_unbooked``): a restart inside a session finds any a lost book left.
        """
        # each venue or feed read is cut at the runner's limit (PremarketReadTimeout, a
        # BrokerError): a read that hangs fails here as one the venue refused
        limit_s = getattr(ctx, "shared", {}).get(ENGINE_READ_LIMIT_S)
        book = self._book_of(ctx)
        await self._activities(ctx, book, limit_s)
        await self._cancel_unbooked(ctx, book, limit_s)
        await self._reconcile(ctx, book, limit_s)
        await self._report_unmanaged(ctx, book, limit_s)
        await self._read_level(ctx, limit_s)
        start = ctx.now.date() - timedelta(days=740)
        end = default_calendar().last_close(ctx.now)  # not today's partial bar after the open
        for u in self.underlyings(ctx):
            try:
                bars = await in_limit(
                    f"history of {u}", ctx.feed.bars([u], start, end, "1Day"), limit_s
                )
                self._closes[u] = bars["close"].to_numpy(dtype=float)
                await asyncio.to_thread(self.monte_carlo.fit, u, self._closes[u])
            except PremarketReadTimeout:  # a feed that hangs would hold each underlying in turn
                raise
            except Exception as exc:  # one bad symbol never stops the others
                self._error(ctx, f"premarket {u}", exc)
        book.save()

    async def _read_level(self, ctx: OptionsContext, limit_s: float | None) -> None:
        """Read the account's options level; journal and notify the strategies it rules out.

        Deciding before the open spares the venue's 403 on every cycle and underlying; a
        level that cannot be read leaves every strategy to the venue's answer.
        """
        try:
            level = int((await in_limit("account", ctx.broker.account(), limit_s)).options_level)
        except Exception as exc:
            self._level = None
            self._error(ctx, "premarket options level", exc)
            return
        self._level = level
        needs = {s: level_needed(s) for s in get_args(StrategyName)}
        skipped = {s: n for s, n in needs.items() if n > level}
        if not skipped:
            return
        why = {
            "rule": "Alpaca options levels: 1 sells covered calls and cash-secured puts, "
            "2 also buys calls and puts, 3 also trades spreads (multi-leg orders, rolls)",
            "options_level": level,
            "skipped": skipped,
            "allowed": sorted(s for s, n in needs.items() if n <= level),
        }
        ctx.journal.record_decision(
            f"options-level-{ctx.now.isoformat()}",
            ENGINE,
            "entry",
            "*",
            "options_level",
            why,
            ctx.now,
        )
        ctx.notifier.notify(
            f"OPTIONS: the account is approved for options level {level}: "
            f"not opening {', '.join(sorted(skipped))} this session"
        )

    def opening_refusal(self, ctx: OptionsContext, level: int) -> str | None:
        """Return why no order opening options at ``level`` may go out now, or None.

        A venue's refusal for the options level holds for the rest of its session only: the
        next session tries again, approval may have come meanwhile.
        """
        if self._paused is not None and self._paused[0] == ctx.now.astimezone(ET).date():
            return self._paused[1]
        if self._level is not None and self._level < level:
            return f"the account is approved for options level {self._level}; this needs {level}"
        return None

    def refuse_opening(self, ctx: OptionsContext, reason: str) -> None:
        """Place no opening order for the rest of the session: the venue refused one.

        Journaled and notified once, not once per order the engine would otherwise send and
        see refused; closing orders still go.
        """
        today = ctx.now.astimezone(ET).date()
        if self._paused is not None and self._paused[0] == today:
            return
        self._paused = (today, reason)
        ctx.journal.record_decision(
            f"options-opening-paused-{today.isoformat()}",
            ENGINE,
            "entry",
            "*",
            "opening_paused",
            {"reason": reason, "until": "the next session", "closing_orders": "still sent"},
            ctx.now,
        )
        log.warning("options engine: no opening orders until the next session: %s", reason)
        ctx.notifier.notify(f"OPTIONS: no opening orders until the next session: {reason}")

    async def end_of_day(self, ctx: OptionsContext) -> None:
        """Persist the book and journal the day's open structures and wheel stages."""
        book = self._book_of(ctx)
        book.save()
        ctx.journal.record_decision(
            f"options-eod-{ctx.now.date().isoformat()}",
            ENGINE,
            "book",
            "*",
            "end_of_day",
            {
                "held": {k: v.to_json() for k, v in book.held.items()},
                "wheel": {k: vars(v) for k, v in book.wheel.items()},
                "pending": sorted(book.pending),
            },
            ctx.now,
        )

    async def cycle(self, ctx: OptionsContext) -> CycleReport:
        """Run one options cycle at ``ctx.now`` (see the module docstring)."""
        tally = await self._cycle(ctx)
        return CycleReport(
            tally.engine,
            tally.at,
            tally.signals,
            tally.orders,
            tally.denied,
            tally.note,
            dict(tally.details),
        )

    async def _cycle(self, ctx: OptionsContext) -> OptionsCycle:
        now = ctx.now
        book = self._book_of(ctx)
        report = OptionsCycle(ENGINE, now)
        await self._activities(ctx, book)
        analyses: dict[str, tuple[ChainAnalysis, pd.DataFrame]] = {}
        names = list(self.underlyings(ctx))
        self._threads = asyncio.Semaphore(self._workers)  # bound to this cycle's event loop
        # the fits release the GIL: underlyings are analysed side by side on worker threads
        results = await asyncio.gather(
            *(self._analyse(ctx, u, now) for u in names), return_exceptions=True
        )
        for u, res in zip(names, results, strict=True):
            if isinstance(res, BaseException):
                if not isinstance(res, Exception):
                    raise res
                if isinstance(res, ChainUnusable):
                    self._unusable(ctx, u, res)
                else:
                    self._error(ctx, f"analysis {u}", res)
                report.details.setdefault("errors", {})[u] = f"{type(res).__name__}: {res}"
            else:
                analyses[u] = res
        signals = [s for a, _ in analyses.values() for s in a.signals]
        ctx.journal.record_cycle(signals, (), now)  # one transaction: one fsync, not one each
        report.signals = len(signals)
        views = self._views(ctx, signals, now)
        chains = await self._with_legs_quoted(
            ctx, {u: raw for u, (_, raw) in analyses.items()}, _book_legs(book)
        )
        analyses = {u: (a, chains[u]) for u, (a, _) in analyses.items()}
        stale = {s: t.isoformat() for raw in chains.values() for s, t in _stale(raw).items()}
        if stale:  # no exit rule or walk prices off these: their structures wait for a quote
            report.details["stale_quotes"] = stale
        await self._pending(ctx, book, {u: raw for u, (_, raw) in analyses.items()}, report)
        # after our own fills are applied: what is still missing went some other way (a flatten)
        await self._reconcile(ctx, book)
        await self._manage(ctx, book, analyses, report)
        await self._enter(ctx, book, analyses, views, report)
        book.save()
        report.details["held"] = len(book.held)
        report.details["pending"] = len(book.pending)
        return report

    # -- 1. activities ----------------------------------------------------------------------

    async def _activities(
        self, ctx: OptionsContext, book: Book, limit_s: float | None = None
    ) -> None:
        follow_splits(ctx, book)  # first: a settlement read now is taken as after the split
        # the overlap re-reads rows the venue posts late, dated before the cursor (an option
        # event carries a date only); the book's seen ids drop the repeats
        since = activities_since(book.activity_cursor)
        stray: dict[str, int] = {}
        last: dict[str, str] = {}
        moved: dict[str, str] = {}
        for a in await in_limit("activities", ctx.broker.activities(since), limit_s):
            for ev in book.apply_activity(a):
                self._event(ctx, ev, a.ts)
                if ev.structure_id in book.held:  # a leg or some units settled, the rest open
                    _reserve_for_legs_left(ctx, book.held[ev.structure_id])
                und = parse_occ(ev.symbol).underlying
                moved[und] = a.id
                if "stray_shares" in ev.detail:
                    stray[und] = stray.get(und, 0) + int(ev.detail["stray_shares"])
                    last[und] = a.id
        reserve_wheel_shares(ctx, book, moved)  # assigned shares are the wheel's at once
        # what the next read cannot list again leaves the book (else its file grows forever)
        if (next_read := activities_since(book.activity_cursor)) is not None:
            book.forget_activities_before(next_read)
        for und, shares in stray.items():
            if shares != 0:
                s = StrayShares(und, shares, last[und])
                book.stray.setdefault(s.key, s)
        # saved before a flatten is sent: one cut or crashed leaves it owed to the next try,
        # which finds its send still going, or sends under the same client order id
        book.save()
        await self._flatten_stray(ctx, book, limit_s)

    async def _flatten_stray(self, ctx: OptionsContext, book: Book, limit_s: float | None) -> None:
        """Send the flattens of stray shares the book owes, each cut at ``limit_s`` seconds.

        A flatten leaves the book once its order has the venue's answer; one whose send is
        still going (a try cut before) is left to it, never sent twice.
        """
        going = ctx.executor.sending()
        owed = [s for s in book.stray.values() if _stray_owner(s).client_order_id not in going]
        if any(s.held is None for s in owed):
            positions = await in_limit("positions", ctx.broker.positions(), limit_s)
            held = {p.symbol: p.qty for p in positions}
            for s in owed:
                if s.held is None:
                    s.held = str(held.get(s.underlying, Decimal(0)))
            book.save()
        for s in owed:
            await in_limit(f"flatten of {s.underlying}", self._flatten(ctx, s), limit_s)
            del book.stray[s.key]
            book.save()

    async def _flatten(self, ctx: OptionsContext, stray: StrayShares) -> None:
        """Sell (buy back) the stock a spread's settlement left: the spread never wanted it.

        Both legs of a spread settling in the money cancel out; only the net is traded, as one
        market order owned by the engine (id from the activity, so a restart never repeats it).
        ``stray.held`` is the account's position after the settlement: where the equity engine
        holds the stock on the other side (long 27, and an assignment of 100 shares short
        leaves short 73), the order stops at flat, since Alpaca refuses one order that turns a
        short into a long or a long into a short; the equity engine's next cycle orders its own
        position again from flat. An order the venue already holds under the flatten's id (sent
        by an earlier run, perhaps sized on the position then) is its answer: journaled, never
        sized or sent again.
        """
        sent = await ctx.executor.venue_order(_stray_owner(stray).client_order_id)
        if sent is not None:  # an earlier run sent it, maybe sized on another position
            log.info(
                "options flatten of %s already at the venue: %s", stray.underlying, sent.status
            )
            return
        shares, held = stray.shares, Decimal(str(stray.held))
        qty = Decimal(-shares)
        if held * (held + qty) < 0:
            qty = -held
        side: Literal["buy", "sell"] = "buy" if qty > 0 else "sell"
        req = OrderRequest.equity(stray.underlying, abs(qty), side, owner=_stray_owner(stray))
        why: dict[str, Any] = {
            "rule": "flatten stock left by a spread's settlement",
            "shares": shares,
        }
        if qty != -shares:
            why["stops_at_flat"] = (
                f"the account holds {held}: {abs(qty)} of {abs(shares)} shares reach flat; "
                "the rest is the equity engine's position, left to its next cycle"
            )
        out = await place(ctx, req, why, None)
        # the execution service notifies its fill, refusal or rejection: no second notice
        log.info("options flatten %s %s %s: %s", side, abs(qty), stray.underlying, out.status)

    # -- the venue's orders ----------------------------------------------------------------

    async def _cancel_unbooked(
        self, ctx: OptionsContext, book: Book, limit_s: float | None
    ) -> None:
        """Cancel the engine's orders resting at the venue that its book does not know.

        A book file lost, or written by an older run, leaves such orders unfollowed: never
        walked nor cancelled, and a fill of one would hold contracts no structure manages. An
        order alone cannot tell the book the structure it was meant for (its exits, its roll),
        so cancelling is the safe choice; one that fills first is left to the reconcile of
        positions. The book's own orders and the replacements of them it has not saved yet
        stay, as do the flattens of stock a settlement left, which the book never names.
        """
        try:
            resting = await in_limit("open orders", ctx.broker.orders("open"), limit_s)
        except BrokerError as exc:  # the next pre-market looks again
            self._error(ctx, "listing the venue's open orders", exc)
            return
        booked = [tag for cid in book.pending if (tag := parse_client_order_id(cid)) is not None]
        cancelled = []
        for order in resting:
            tag = order.owner
            if tag is None or tag.engine != ENGINE or tag.strategy == FLATTEN_STRATEGY:
                continue
            if any(tag.same_decision(b) for b in booked):
                continue
            try:
                cid = order.client_order_id
                await in_limit(f"cancel of {cid}", ctx.executor.cancel(cid, NOT_IN_BOOK), limit_s)
            except BrokerError as exc:  # one order's trouble: the others are still cancelled
                self._error(ctx, f"cancel of {order.client_order_id}", exc)
                continue
            cancelled.append(order.client_order_id)
        if cancelled:
            log.warning("options engine: cancelled %s: %s", ", ".join(cancelled), NOT_IN_BOOK)
            ctx.notifier.notify(
                f"OPTIONS: cancelled {len(cancelled)} resting order(s) {NOT_IN_BOOK}: "
                f"{', '.join(cancelled)}"
            )

    # -- the broker's positions -------------------------------------------------------------

    async def _reconcile(
        self, ctx: OptionsContext, book: Book, limit_s: float | None = None
    ) -> None:
        """Make the book hold what the broker holds (``Book.reconcile``); journal each change.

        A structure whose legs went without a fill or an activity of ours (the runner's
        flatten, a person at the venue) must not hold the engine's slots, Greek budget or
        collateral.
        """
        positions = await in_limit("positions", ctx.broker.positions(), limit_s)
        occ = {p.symbol: int(p.qty) for p in positions if is_occ(p.symbol)}
        shares = {p.symbol: int(p.qty) for p in positions if not is_occ(p.symbol)}
        busy = {p.old_id for p in book.pending.values() if p.old_id}
        wheel_before = {u: w.shares for u, w in book.wheel.items()}
        changes = book.reconcile(occ, shares, busy)
        for c in changes:
            h = c.held
            why = {
                "rule": "book reconciled with the broker's positions",
                "reason": _RECONCILE_REASON[c.kind],
                "structure_id": h.structure_id,
                "strategy": h.strategy,
                "before": c.before,
                "broker_holds": c.held_qty,
                **({} if c.kind == "closed_out" else {"now": {"legs": h.legs, "units": h.units}}),
            }
            ctx.journal.record_decision(
                f"options-reconcile-{h.structure_id}-{ctx.now.isoformat()}",
                ENGINE,
                h.strategy,
                h.underlying,
                c.kind,
                why,
                ctx.now,
            )
            log.warning("options book: %s %s: %s", c.kind, h.structure_id, why["reason"])
            if c.kind == "closed_out":
                self._release_cid(ctx, h.client_order_id, "structure no longer held")
            else:
                if c.kind == "trimmed":  # the units gone need no collateral: free it
                    ctx.journal.shrink_reservations(
                        h.client_order_id,
                        h.units,
                        int(c.before["units"]),
                        reason=f"structure trimmed to {h.units}/{c.before['units']} units",
                        ts=ctx.now,
                    )
                else:
                    _reserve_for_legs_left(ctx, h)
                ctx.notifier.error("options book", f"{h.structure_id} {c.kind}: {why}")
        moved = {u: "reconcile" for u, n in wheel_before.items() if book.wheel[u].shares != n}
        if moved:
            reserve_wheel_shares(ctx, book, moved)
        if changes or moved:
            book.save()

    async def _report_unmanaged(
        self, ctx: OptionsContext, book: Book, limit_s: float | None
    ) -> None:
        """Journal and notify, once a session, the option contracts held that no structure names.

        The book manages only what it opened (exits, rolls, expiry day): contracts a lost book
        left, a fill of an order it never knew, or a person's own trades at the venue get no
        exit rule, so a person must close or manage them.
        """
        named = {s for h in book.held.values() for s in h.legs}
        named |= {s for p in book.pending.values() for s in _order_legs(book, p)}
        try:
            positions = await in_limit("positions", ctx.broker.positions(), limit_s)
        except BrokerError as exc:  # the rest of the pre-market job goes on; next session looks
            self._error(ctx, "listing the positions for contracts outside the book", exc)
            return
        loose = {
            p.symbol: int(p.qty)
            for p in positions
            if is_occ(p.symbol) and p.qty != 0 and p.symbol not in named
        }
        if not loose:
            return
        ctx.journal.record_decision(
            f"options-unmanaged-{ctx.now.astimezone(ET).date()}",
            ENGINE,
            "book",
            "*",
            "unmanaged",
            {"contracts": loose, "reason": UNMANAGED_REASON},
            ctx.now,
        )
        held = ", ".join(f"{q:+d} {s}" for s, q in sorted(loose.items()))
        log.warning("options: contracts held outside the book: %s", held)
        ctx.notifier.notify_quietly(
            f"OPTIONS: {len(loose)} contract(s) held that the options book does not manage "
            f"({held}): no exit rule applies; close them (`v28quant flatten` closes everything) "
            "or manage them at the venue"
        )

    def _event(self, ctx: OptionsContext, ev: Event, ts: datetime) -> None:
        ctx.journal.record_decision(
            f"options-{ev.kind}-{ev.symbol}-{ts.isoformat()}",
            ENGINE,
            "lifecycle",
            ev.symbol,
            ev.kind,
            {"structure_id": ev.structure_id, "contracts": ev.qty, **ev.detail},
            ts,
        )
        if ev.kind != "closed":
            ctx.notifier.notify(f"OPTIONS {ev.kind.upper()} {ev.qty} x {ev.symbol} {ev.detail}")
        if ev.kind == "closed" and ev.detail.get("client_order_id"):
            cid = str(ev.detail["client_order_id"])
            self._release_cid(ctx, cid, f"structure settled ({ev.detail.get('by')})")

    # -- 2. resting orders ------------------------------------------------------------------

    def extra_cycle_slots(self, ctx: OptionsContext, grid: Sequence[datetime]) -> list[datetime]:
        """Return the slots of today's 5-minute ``grid`` at which a held structure needs a cycle.

        The expiry-day rule closes a structure whose short leg is near the money in the last
        ``[exits] expiry_close_minutes`` before its series' cut-off; cycles further apart (a
        daily backtest's one at 09:45) would never see that window, and the short would be
        assigned where live trading closes it. So: the first slot inside that window, for each
        structure expiring today.
        """
        window = timedelta(minutes=self.cfg.exits.expiry_close_minutes)
        wanted = set()
        for h in self._book_of(ctx).held.values():
            cutoff = C.expiry_cutoff(h.underlying, h.expiry)
            slot = next((t for t in grid if cutoff - window <= t < cutoff), None)
            if slot is not None:
                wanted.add(slot)
        return sorted(wanted)

    async def follow(self, ctx: OptionsContext) -> bool:
        """Follow the resting orders between cycles, without an analysis; True while any rests.

        The runner calls this at the 5-minute slots between cycles further apart (a daily
        backtest), so the orders walk on the live cadence. Each walks on its legs' quotes now
        (``_leg_chains``), as a cycle's walk does on its chain.
        """
        book = self._book_of(ctx)
        if not book.pending:
            return False
        report = OptionsCycle(ENGINE, ctx.now)
        await self._pending(ctx, book, await self._leg_chains(ctx, book), report)
        book.save()
        return bool(book.pending)

    async def _leg_chains(self, ctx: OptionsContext, book: Book) -> dict[str, pd.DataFrame]:
        """Return each underlying's chain narrowed to the expiries and strikes of its orders' legs.

        A few contracts quoted, not the whole chain an analysis needs. An underlying whose chain
        does not come is left out: its orders walk on their ladders as placed.
        """
        legs: dict[str, set[str]] = {}
        for p in book.pending.values():
            legs.setdefault(p.underlying, set()).update(_order_legs(book, p))
        chains: dict[str, pd.DataFrame] = {}
        for u, symbols in legs.items():
            occ = [parse_occ(s) for s in symbols if is_occ(s)]
            if not occ:
                continue
            strikes = [float(o.strike) for o in occ]
            try:
                chains[u] = await asyncio.wait_for(
                    ctx.feed.option_chain(
                        u,
                        expiry_from=min(o.expiry for o in occ),
                        expiry_to=max(o.expiry for o in occ),
                        strike_from=min(strikes),
                        strike_to=max(strikes),
                    ),
                    self.cfg.chain_timeout_seconds,
                )
            except Exception as exc:  # one chain's trouble: that walk goes on its ladder
                self._error(ctx, f"quotes of {u}'s resting orders", exc)
        return await self._with_legs_quoted(ctx, chains, legs)

    async def _with_legs_quoted(
        self,
        ctx: OptionsContext,
        chains: Mapping[str, pd.DataFrame],
        legs: Mapping[str, set[str]],
    ) -> dict[str, pd.DataFrame]:
        """Return ``chains`` with a row for each of ``legs`` they lack, quoted by its symbol.

        A chain snapshot lists the contracts quoted around the money now; a leg the engine
        holds or works can fall outside it (a put left far below by a rally) while the account
        still holds it and the venue still quotes it. Without its row the exit rules and the
        walk would not see the whole structure. A leg's row takes the Penny Program flag of its
        class from the chain's other rows (the program lists whole classes).

        A leg whose latest quote is stale (``DataFeed.option_quote_cutoff``; Alpaca's chain
        leaves such a contract out) gets no row: nothing is priced off it. Its chain names it,
        with the quote's time, in ``attrs["stale_quotes"]``, and an order trading it does not
        walk (``_walk``). So too where the chain is empty (a lone leg's own strike, its one
        contract left out); a fresh leg gets a row only beside the chain's own, whose Penny
        Program flag it takes.
        """
        out = dict(chains)
        for u, raw in chains.items():
            listed = set(raw["symbol"])
            missing = sorted(s for s in legs.get(u, ()) if is_occ(s) and s not in listed)
            if not missing:
                continue
            try:
                quotes = await ctx.feed.latest_quotes(missing)
            except Exception as exc:  # the structure waits for a whole picture, as before
                self._error(ctx, f"quotes of {u}'s legs off the chain", exc)
                continue
            cutoff = ctx.feed.option_quote_cutoff()
            stale = {s: q.ts for s, q in quotes.items() if cutoff is not None and q.ts < cutoff}
            fresh = [q for s, q in quotes.items() if s not in stale]
            penny = bool(raw["penny"].all())
            # an empty chain (a lone leg left out as stale) names no class to price a leg on
            priced = bool(fresh) and not raw.empty
            rows = pd.concat([raw, chain_frame(_chain_rows(u, fresh, penny))]) if priced else raw
            out[u] = chain_frame(
                rows.reset_index(drop=True),
                underlying_price=raw.attrs.get("underlying_price", float("nan")),
                as_of=raw.attrs.get("as_of"),
                source=raw.attrs.get("source", ""),
            )
            out[u].attrs["stale_quotes"] = stale
        return out

    async def _pending(
        self,
        ctx: OptionsContext,
        book: Book,
        chains: Mapping[str, pd.DataFrame],
        report: OptionsCycle,
    ) -> None:
        # a replace is a new order at the venue: while halted, nothing that opens is walked
        halted = bool(book.pending) and self.gate(ctx).state().halted
        for cid, p in list(book.pending.items()):
            try:
                await self._follow(ctx, book, cid, p, chains, halted, report)
            except BrokerError as exc:  # one order's trouble at the venue: the others go on
                self._error(ctx, f"resting order {cid}", exc)

    async def _follow(
        self,
        ctx: OptionsContext,
        book: Book,
        cid: str,
        p: Pending,
        chains: Mapping[str, pd.DataFrame],
        halted: bool,
        report: OptionsCycle,
    ) -> None:
        """Follow one resting order: drop it, book its fill or its end, or walk its price.

        An order still being sent, or its walk (its cycle cut off at the time limit, the send
        going on), is left for the next cycle: the venue lists it only once it takes the request.
        """
        sending = ctx.executor.sending()
        if cid in sending or replacement_client_order_id(cid) in sending:
            return
        if await _never_sent(ctx, cid):
            log.warning("options order %s never reached the venue: no longer pending", cid)
            del book.pending[cid]
            self._release_cid(ctx, cid, "order never reached the venue")
            return
        order = await ctx.executor.track(cid, 0.0)
        walks = 0
        while order.status.value == "replaced":  # a walk the book did not save (a crash)
            cid = replacement_client_order_id(cid)
            order = await ctx.executor.track(cid, 0.0)
            walks += 1
        if cid != p.client_order_id:
            del book.pending[p.client_order_id]
            p.client_order_id = cid
            book.pending[cid] = p
            for _ in range(walks):  # a rung per walk at least; its price is the venue's
                _climb(p)
        if _part_filled_and_stalled(p, order):
            # a part-filled order is not walked (a replace would resend its whole qty): left
            # working, an opening order's filled units are no structure's, watched by no exit
            # rule, and a close's rest rests at its price perhaps until it is assigned. So the
            # rest is cancelled: the filled units are booked, or reconcile trims the structure
            # to what is left and the rule that started the close closes that with its own order
            why = PART_FILL_REST if p.kind != "close" else PART_CLOSE_REST
            order = (await ctx.executor.cancel(cid, why)).order or order
        if order.status.value == "filled" or (
            order.status.terminal and order.filled_qty > 0 and p.kind != "close"
        ):  # an order that opens ended part filled: the broker holds what did fill
            self._filled(ctx, book, p, order)
            del book.pending[cid]
            book.save()  # booked and announced: a restart must not announce it again
        elif order.status.terminal:
            if order.filled_qty > 0:  # a close ended part filled: reconcile trims the structure
                self._announce_fill(ctx, p, f"part close {p.strategy}", order)
                _finish_close_under_its_rule(book, p)
            else:
                log.info("options order %s ended %s unfilled", cid, order.status.value)
            del book.pending[cid]
            if p.kind != "close":
                self._release_cid(ctx, cid, f"order {order.status.value} unfilled")
            book.save()  # its end is announced: a restart must not announce it again
        elif order.filled_qty > p.announced_qty:  # part filled and still working
            self._announce_fill(ctx, p, f"{p.kind} {p.strategy}", order)
            book.save()  # a restart must not announce these units again
        elif order.filled_qty == 0 and not (halted and p.kind != "close"):
            resting = _resting_net(book, p, order)
            await self._walk(ctx, book, p, chains.get(p.underlying), report, resting)

    def _reprice(self, book: Book, p: Pending, raw: pd.DataFrame) -> list[str] | None:
        """Return the ladder on this cycle's quotes (mid to natural), or None without them.

        None too where a structure sold to open has no credit left at the mid: the order
        walks on the credits of its ladder as placed (``contracts.limit_ladder``).
        """
        legs = _order_legs(book, p)
        quotes = raw.set_index("symbol").reindex(list(legs))
        bid, ask = quotes["bid"].to_numpy(float), quotes["ask"].to_numpy(float)
        if not (np.isfinite(bid).all() and np.isfinite(ask).all()):
            return None
        q = np.array(list(legs.values()), dtype=float)
        mid = float(np.sum(q * 0.5 * (bid + ask)))
        nat = float(np.sum(q * np.where(q > 0, ask, bid)))
        steps = max(len(p.ladder) - 1, 1)
        scheme = C.tick_scheme_of(raw, legs, p.underlying)
        credit = p.kind == "open" and p.strategy in CREDIT_STRATEGIES
        ladder = C.limit_ladder(
            round(mid, 6), round(max(nat, mid), 6), steps, scheme, credit=credit
        )
        return [str(x) for x in ladder] or None

    async def _walk(
        self,
        ctx: OptionsContext,
        book: Book,
        p: Pending,
        raw: pd.DataFrame | None,
        report: OptionsCycle,
        resting: Decimal,
    ) -> None:
        """Move ``p`` to the next rung asking more than ``resting``, the net the venue holds.

        The venue's price, not the book's rung: a walk whose replace reached the venue but not
        the book's save (a crash) is known by its count alone, and a walk may skip rungs. An
        order with a leg quoted only by a stale quote stays where it is, named in the cycle's
        ``walks_held``.
        """
        stale = _stale_legs(book, p, raw)
        if stale:  # its price would move on a quote the market may have left: it waits
            held = ", ".join(f"{s} quoted {t.isoformat()}" for s, t in sorted(stale.items()))
            report.details.setdefault("walks_held", {})[p.client_order_id] = f"stale: {held}"
            log.warning("options order %s not walked, stale quote: %s", p.client_order_id, held)
            return
        before = (p.ladder, p.rung, p.waited)
        fresh = self._reprice(book, p, raw) if raw is not None else None
        if fresh is not None:  # the market moved since the order went in: walk on today's quotes
            p.ladder = _within_approval(p, fresh, report)
            p.rung = min(p.rung, len(p.ladder) - 1)
        capped = fresh is not None and p.ladder != fresh
        target = _walk_target(p, resting)
        if target is not None:
            p.waited += 1 if target == p.rung else 0
            p.rung = target
            net = Decimal(p.ladder[p.rung])
            price = abs(net) if _single_leg(p) else net
            try:
                out = await ctx.executor.replace(
                    p.client_order_id, reason=f"walk limit to rung {p.rung}", limit_price=price
                )
            except OrderRejected as exc:  # journaled and notified by the executor
                log.info("walk of options order %s rejected: %s", p.client_order_id, exc)
                out = None
            except BrokerError as exc:  # outcome unknown: the next walk looks its -r<n> up first
                self._error(ctx, f"walk of {p.client_order_id}", exc)
                out = None
            if out is None or out.status == "refused":
                # rejected by the venue, its outcome unknown, or no cash free for the higher
                # price: the book keeps the order on its rung, and it walks again next cycle
                p.ladder, p.rung, p.waited = before
                return
            del book.pending[p.client_order_id]
            p.client_order_id = out.client_order_id
            book.pending[p.client_order_id] = p
            book.save()  # the replacement is live at the venue: the book must name it now
            report.orders += 1
        elif p.waited < 1:
            p.waited += 1
        else:
            where = "the price the risk gate approved" if capped else "the natural price"
            await ctx.executor.cancel(p.client_order_id, f"not filled at {where}")

    def _filled(self, ctx: OptionsContext, book: Book, p: Pending, order: Any) -> None:
        net = float(order.filled_avg_price or 0)
        if _single_leg(p):  # a single-leg order reports the (positive) premium
            q = next(iter(p.legs.values()))
            net = net if q > 0 else -net
        units = int(order.filled_qty)
        if p.kind == "close":
            h = book.closed(p.old_id or p.structure_id)
            if h is not None:
                self._release_cid(ctx, h.client_order_id, "structure closed")
            what = f"closed {h.strategy if h else p.strategy}"
        else:
            leg_entry = leg_prices(p, order)
            held = Held(
                p.structure_id,
                p.strategy,
                p.underlying,
                p.expiry,
                p.legs,
                units,
                net if p.kind == "open" else new_leg_net(p, order),
                _max_loss_at_fill(p, leg_entry) if p.kind == "open" else p.max_loss,
                ctx.now,
                order.client_order_id,
                wheel=p.wheel,
                leg_entry=leg_entry,
            )
            if p.kind == "roll" and p.old_id is not None and order.status.value == "filled":
                old = book.held.get(p.old_id)
                kept = book.rolled(p.old_id, held, p.closing, p.kept_net)
                if old is not None and kept is None:  # a side kept open keeps its reservation
                    self._release_cid(ctx, old.client_order_id, "structure rolled")
            else:
                if p.kind == "roll" and p.old_id in book.held:  # part filled: reconcile trims it
                    held.rolls = book.held[p.old_id].rolls + 1
                book.opened(held)
            if order.status.terminal and units < int(order.qty):
                # the units never filled need no collateral: free it for the next order
                why = f"order {order.status.value} with {units}/{order.qty} filled"
                ctx.journal.shrink_reservations(
                    order.client_order_id, units, int(order.qty), reason=why, ts=ctx.now
                )
            what = f"{p.kind} {p.strategy}"
        self._announce_fill(ctx, p, what, order)

    def _announce_fill(self, ctx: OptionsContext, p: Pending, what: str, order: Any) -> None:
        """Announce the units of ``order`` filled since its last notice, at their own price.

        The execution service leaves this order's fills to us. Each notice names the units
        filled so far against the order's total and the order's status, so a part fill is one
        notice when first seen and the rest another; no unit is announced twice. An order that
        ends with no fill since its part fill's notice is said to have ended, with no fill.
        """
        filled, total = int(order.filled_qty), int(order.qty)
        new = filled - p.announced_qty
        if new <= 0:
            ctx.notifier.notify(
                f"OPTIONS {what} {p.underlying}: order {order.status.value} with "
                f"{filled}/{total} filled ({order.client_order_id})"
            )
            return
        ctx.notifier.execution(
            p.underlying,
            what,
            new,
            _average_of_new(order.filled_avg_price, filled, p.announced_avg, p.announced_qty),
            engine=ENGINE,
            filled=f"{filled}/{total}",
            status=order.status.value,
            legs=",".join(p.legs),
            client_order_id=order.client_order_id,
        )
        p.announced_qty, p.announced_avg = filled, str(order.filled_avg_price)

    def _release_cid(self, ctx: OptionsContext, cid: str, reason: str) -> None:
        """Release what the order ``cid`` reserved (its replacements carry it along)."""
        ctx.journal.release_reservations(reason=reason, ts=ctx.now, client_order_id=cid)

    # -- 3. analysis ------------------------------------------------------------------------

    async def _analyse(
        self, ctx: OptionsContext, u: str, now: datetime
    ) -> tuple[ChainAnalysis, pd.DataFrame]:
        today = now.astimezone(ET).date()
        horizon = today + timedelta(days=max(self.cfg.dte_max, 60) + 75)
        chain = await asyncio.wait_for(
            ctx.feed.option_chain(u, expiry_from=today, expiry_to=horizon),
            self.cfg.chain_timeout_seconds,
        )
        if chain.empty:
            raise ChainUnusable("the feed returned an empty option chain")
        hist = self._iv_history(ctx, u, now)
        closes = self._closes.get(u)
        async with self._threads or asyncio.Semaphore(1):
            a = await asyncio.to_thread(
                self.analyser.analyse, u, chain, now=now, iv_history=hist, daily_closes=closes
            )
            mc = await asyncio.to_thread(
                self.monte_carlo.signal, u, chain, a.spot, now, self.cfg.rate
            )
        if mc is not None:
            a.signals.append(mc)
        return a, chain

    def _iv_history(self, ctx: OptionsContext, u: str, now: datetime) -> list[float]:
        """Return the journal's 30-day ATM IV of ``u``, the last value of each earlier session.

        Earlier sessions' rows no longer change, so the journal is read once per session for
        every underlying (not once per underlying and cycle).
        """
        today = now.astimezone(ET).date()
        key = (id(ctx.journal), today)
        if self._iv_key != key:
            self._iv_by_symbol = self._read_iv_history(ctx, now, today)
            self._iv_key = key
        return list(self._iv_by_symbol.get(vol_symbol(u), []))

    @staticmethod
    def _read_iv_history(ctx: OptionsContext, now: datetime, today: date) -> dict[str, list[float]]:
        since = now - timedelta(days=400)
        df = ctx.journal.hourly_last_values("options_iv_rank", "atm_iv_30d", since)
        if df.empty:
            return {}
        day = df["ts"].dt.tz_convert(ET).dt.date
        last = df.assign(day=day)
        last = last[last["day"] < today].groupby(["symbol", "day"])["value"].last()
        out: dict[str, list[float]] = {}
        for (sym, _), x in last.items():
            if x is not None and not pd.isna(x):
                out.setdefault(str(sym), []).append(float(x))
        return out

    def _views(
        self, ctx: OptionsContext, signals: Sequence[Signal], now: datetime
    ) -> dict[str, tuple[float, float, str]]:
        """Return (value, confidence, source) of each vol symbol's combined view."""
        out: dict[str, tuple[float, float, str]] = {}
        regime = getattr(ctx.regime, "state", ctx.regime)
        agg = ctx.aggregator
        if agg is not None and regime is not None and signals:
            for sym, a in agg.aggregate(signals, regime, now).items():
                if a.contributions:  # a table without the options models weighs nothing
                    out[sym] = (float(a.value), float(a.confidence), "aggregator")
        by: dict[str, list[Signal]] = {}
        for s in signals:
            by.setdefault(s.symbol, []).append(s)
        for sym, ss in by.items():
            if sym in out:
                continue
            w = sum(s.confidence for s in ss)
            value = sum(s.confidence * s.value for s in ss) / w if w > 0 else 0.0
            out[sym] = (value, w / len(ss), "options_models")
        return out

    # -- 4 and 5: manage and enter ----------------------------------------------------------

    async def _manage(
        self,
        ctx: OptionsContext,
        book: Book,
        analyses: Mapping[str, tuple[ChainAnalysis, pd.DataFrame]],
        report: OptionsCycle,
    ) -> None:
        busy = {p.old_id for p in book.pending.values() if p.old_id}
        current = portfolio_greeks(book, analyses, self.cfg.rate)
        for h in list(book.held.values()):
            if h.structure_id in busy or h.underlying not in analyses:
                continue
            a, raw = analyses[h.underlying]
            label = _regime_label(ctx, h.underlying)
            try:
                await manage_one(self, ctx, book, h, a, raw, label, report, current)
            except Exception as exc:
                self._error(ctx, f"manage {h.structure_id}", exc)

    async def _enter(
        self,
        ctx: OptionsContext,
        book: Book,
        analyses: Mapping[str, tuple[ChainAnalysis, pd.DataFrame]],
        views: Mapping[str, tuple[float, float, str]],
        report: OptionsCycle,
    ) -> None:
        current = portfolio_greeks(book, analyses, self.cfg.rate)
        report.details["greeks"] = {
            k: round(float(getattr(current, k)), 3)
            for k in ("delta", "gamma", "vega", "theta_per_day")
        }
        for u, (a, _) in analyses.items():
            off = self.opening_refusal(ctx, 1)
            if off is not None:
                report.note = f"no opening orders this session: {off}"
                report.details["opening_paused"] = off
                return
            if len(book.held) + _opening(book) >= self.cfg.max_open_structures:
                report.note = "max_open_structures reached"
                return
            label = _regime_label(ctx, u)
            try:
                await enter_one(
                    self, ctx, book, u, a, views.get(vol_symbol(u)), current, label, report
                )
            except Exception as exc:
                self._error(ctx, f"entry {u}", exc)

    # -- helpers ----------------------------------------------------------------------------

    def _error(self, ctx: OptionsContext, where: str, exc: BaseException) -> None:
        # exc_info=exc, not log.exception: an analysis failure arrives from gather(), outside
        # any except block, where log.exception would log "NoneType: None" for its traceback
        log.error("options engine: %s failed: %s", where, exc, exc_info=exc)
        ctx.notifier.error(f"options engine ({where})", f"{type(exc).__name__}: {exc}")

    def _unusable(self, ctx: OptionsContext, u: str, exc: ChainUnusable) -> None:
        """Say that ``u``'s chain cannot be analysed this cycle: a data condition, no traceback.

        The notice carries the reason alone, so that the same condition cycle after cycle is
        held back as a repeat although its numbers (counts, fit errors) move; the log keeps
        each occurrence with them.
        """
        log.warning("options engine: %s not analysed this cycle: %s", u, exc)
        ctx.notifier.notify_quietly(
            f"OPTIONS: {u} not analysed, its chain is unusable: {exc.reason}; it is skipped "
            "each cycle until its quotes are usable"
        )

    def gate(self, ctx: OptionsContext) -> RiskGate:
        """Return the runner's risk gate, or one with the default ``[risk]`` limits."""
        if ctx.risk is not None:
            return ctx.risk  # type: ignore[no-any-return]
        if self._gate is None or self._gate.journal is not ctx.journal:
            self._gate = RiskGate(RiskLimits.model_validate({}), ctx.journal)
        return self._gate

    def trend(self, underlying: str, spot: float) -> Trend:
        """Return the trend of ``underlying`` (``options.trend``) from the pre-market closes."""
        closes = self._closes.get(underlying)
        return trend_of(closes, spot, self.cfg.trend_days, self.cfg.trend_min_t)

    def min_confidence(self, ctx: OptionsContext) -> float:
        """Return the runner's options threshold for the mode (``[paper]`` in paper mode)."""
        cfg = ctx.config
        if cfg is None:
            return 0.6
        own = getattr(cfg, "options_min_confidence", None)
        return float(own(ctx.mode) if callable(own) else cfg.min_confidence(ctx.mode))


UNMANAGED_REASON = (
    "held at the broker, named by no structure or order of the options book: no exit rule applies"
)

_RECONCILE_REASON = {
    "closed_out": "no leg is held by the broker any more (closed outside the engine)",
    "trimmed": "the broker holds fewer units of every leg",
    "partial": "some legs are no longer held: the book keeps those the broker holds",
}


async def _never_sent(ctx: OptionsContext, cid: str) -> bool:
    """Tell whether order ``cid`` never reached the venue: unacknowledged, and not found there.

    A submit whose outcome was unknown (timeouts, 5xx) may have left nothing at the venue, and
    the book names an order before it is journaled and sent (``decisions.place_in_book``), so a
    crash may leave it pending with no journal row, or refused; tracking such an order would
    raise every cycle. An acknowledged order the venue lost still raises.
    """
    row = ctx.journal.order_by_client_id(cid)
    if row is not None and (row.get("broker_order_id") or row["status"] not in _UNSENT):
        return False
    return await ctx.broker.order_by_client_id(cid) is None


def _reserve_for_legs_left(ctx: OptionsContext, h: Held) -> None:
    """Set the cash ``h``'s opening order reserves to what its legs and units left hold.

    For a structure reconcile left ``partial`` or a settlement took a leg or units from. A lone
    long leg holds nothing, a lone short put its strike x 100 a contract. Short calls have no
    amount (a covered call's shares, an uncovered call): their reservation stays as it was.
    """
    need = held_legs_need(h.legs)
    if need is None:
        return
    ctx.journal.set_cash_reservation(
        h.client_order_id,
        need * h.units,
        reason=f"structure left with {', '.join(sorted(h.legs))} x {h.units}",
        ts=ctx.now,
    )


def _stray_owner(stray: StrayShares) -> Owner:
    """Return the owner of the flatten of ``stray``: its client order id is the same each try."""
    return Owner(ENGINE, FLATTEN_STRATEGY, stray.key)


def _book_legs(book: Book) -> dict[str, set[str]]:
    """Return the option symbols of every held structure and working order, by underlying."""
    out: dict[str, set[str]] = {}
    for h in book.held.values():
        out.setdefault(h.underlying, set()).update(h.legs)
    for p in book.pending.values():
        out.setdefault(p.underlying, set()).update(_order_legs(book, p))
    return out


def _chain_rows(underlying: str, quotes: Iterable[Quote], penny: bool) -> list[dict[str, Any]]:
    """Return chain rows (``CHAIN_COLUMNS``; no vendor vol or Greeks) for option quotes.

    ``penny``: whether the underlying's options are in the Penny Program.
    """
    rows = []
    for q in quotes:
        occ = parse_occ(q.symbol)
        bid, ask = float(q.bid), float(q.ask)
        rows.append(
            {
                "symbol": q.symbol,
                "underlying": underlying,
                "expiry": occ.expiry,
                "strike": float(occ.strike),
                "type": "call" if occ.call else "put",
                "bid": bid,
                "ask": ask,
                "mid": 0.5 * (bid + ask),
                "penny": penny,
                "synthetic": q.synthetic,
            }
        )
    return rows


def _stale_legs(book: Book, p: Pending, raw: pd.DataFrame | None) -> dict[str, datetime]:
    """Return the legs of order ``p`` whose only quote this cycle is stale, with its time."""
    stale = {} if raw is None else _stale(raw)
    return {s: t for s, t in stale.items() if s in _order_legs(book, p)}


def _stale(raw: pd.DataFrame) -> dict[str, datetime]:
    """Return the legs ``_with_legs_quoted`` found quoted only by a stale quote, with its time."""
    return dict(raw.attrs.get("stale_quotes", {}))


def _order_legs(book: Book, p: Pending) -> dict[str, int]:
    """Return the contracts order ``p`` trades per unit, signed: + bought, - sold.

    A close trades the structure's legs back; a roll also closes the old structure's legs.
    """
    legs = {s: -q for s, q in p.legs.items()} if p.kind == "close" else dict(p.legs)
    if p.kind == "roll" and p.old_id in book.held:
        closing = p.closing or book.held[p.old_id].legs
        legs.update({s: -q for s, q in closing.items()})
    return legs


def _resting_net(book: Book, p: Pending, order: Any) -> Decimal:
    """Return the signed net per unit ``order`` rests at (debit > 0, credit < 0).

    A single-leg order's limit is the (positive) premium: a sale asks it as a credit.
    """
    price = Decimal(order.limit_price)
    if not _single_leg(p):
        return price
    (qty,) = _order_legs(book, p).values()
    return price if qty > 0 else -price


def _within_approval(p: Pending, ladder: list[str], report: OptionsCycle) -> list[str]:
    """Return ``ladder`` with no rung asking more than the gate approved for ``p``'s opening.

    The gate held the worst price the order may walk to (its max loss, options buying power
    and the reservation): quotes that moved past it are not chased. The order rests at that
    price and is cancelled unfilled, and the next cycle plans it anew through the gate.
    Noted in the cycle's ``walks_capped``.
    """
    if p.kind != "open" or p.worst is None:
        return ladder
    worst = Decimal(p.worst)
    capped = [x for x in ladder if Decimal(x) < worst]
    if len(capped) == len(ladder):
        return ladder
    said = f"natural {ladder[-1]} past the {p.worst} the risk gate approved"
    report.details.setdefault("walks_capped", {})[p.client_order_id] = said
    log.info("options order %s walks no further: %s", p.client_order_id, said)
    return [*capped, p.worst]


def _walk_target(p: Pending, resting: Decimal) -> int | None:
    """Return the rung ``p`` walks to from its ``resting`` price, or None to stay.

    The first rung past ``p.rung`` asking more than ``resting`` (a larger debit, a smaller
    credit): on quotes that moved, the next rung may ask the resting price itself, which the
    venue refuses to replace ("order parameters are not changed"), or less, which walks away
    from the natural. At the last rung, a natural that moved past ``resting`` is chased once
    (the rung itself: the walk counts it in ``waited``).
    """
    later = range(p.rung + 1, len(p.ladder))
    ahead = next((i for i in later if Decimal(p.ladder[i]) > resting), None)
    if ahead is None and p.waited < 1 and Decimal(p.ladder[-1]) > resting:
        return len(p.ladder) - 1
    return ahead


def _climb(p: Pending) -> None:
    """Move ``p`` one rung towards the natural, as one walk of it does.

    At the last rung the walk chases a natural that moved, once: it counts in ``waited``, and
    the next walk cancels.
    """
    at_end = p.rung + 1 >= len(p.ladder)
    p.waited += 1 if at_end else 0
    p.rung = min(p.rung + 1, len(p.ladder) - 1)


def _finish_close_under_its_rule(book: Book, p: Pending) -> None:
    """Mark the structure a part-filled close ``p`` leaves to be closed under ``p``'s rule.

    Judged anew, the rest of a take profit could read as a hold on a moved mid and stay half
    closed.
    """
    h = book.held.get(p.old_id or p.structure_id)
    if h is not None and p.rule is not None:
        h.closing_rule = p.rule


def _part_filled_and_stalled(p: Pending, order: Any) -> bool:
    """Tell whether ``order`` still works with a part fill announced earlier and none since.

    The cycle that first sees a part fill announces it and leaves the rest a cycle to fill.
    """
    filled = int(order.filled_qty)
    return not order.status.terminal and 0 < filled == p.announced_qty


def _max_loss_at_fill(p: Pending, leg_entry: Mapping[str, float]) -> float:
    """Return the max loss per unit of the structure ``p`` opened, at its legs' fill prices.

    The plan's figure is at the price the order went in at; a walk on moved quotes can fill it
    worse, and the book's defined-risk total must hold what was paid. A structure whose legs
    alone are unbounded (a covered call: its shares cover it), or whose legs' prices the venue
    did not give, keeps the plan's figure.
    """
    if set(leg_entry) != set(p.legs):
        return p.max_loss
    at_fill = legs_max_loss(p.legs, leg_entry)
    return at_fill if math.isfinite(at_fill) else p.max_loss


def _single_leg(p: Pending) -> bool:
    """Tell whether ``p`` is a single-leg order (a positive premium, not a signed net).

    A roll is always ``mleg``: it closes the old legs and opens the new, even one new leg.
    """
    return p.kind != "roll" and len(p.legs) == 1


def _average_of_new(
    average: Decimal | None, filled: int, announced_average: str | None, announced: int
) -> str | None:
    """Return the average price of the units filled after the first ``announced``.

    The venue reports one average over all ``filled`` units; the value of the units announced
    before is taken out of it. Rounded to 0.0001: the venue's average is itself rounded.
    """
    if average is None or not announced or announced_average is None:
        return None if average is None else str(average)
    value = Decimal(average) * filled - Decimal(announced_average) * announced
    return format((value / (filled - announced)).quantize(Decimal("0.0001")).normalize(), "f")


def _opening(book: Book) -> int:
    return sum(1 for p in book.pending.values() if p.kind == "open")


def _regime_label(ctx: OptionsContext, u: str) -> str | None:
    r = ctx.regime
    if r is None:
        return None
    per = getattr(r, "per_symbol", None) or {}
    state = per.get(u) or getattr(r, "state", r)
    return getattr(state, "label", None)
