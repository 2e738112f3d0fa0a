"""The runner's own pre-market job and per-cycle account watch, shared by every engine.

Pre-market (before the engines' own jobs): re-read the venue clock; reconcile the journal with
the broker (fail closed: a difference it cannot explain means no trading this session; option
settlements journaled with the underlying's close, ``v28quant.settlement_close``); mark
the account for the risk gate; load the daily history of the universe and the market proxy;
fit the hierarchical regime controller (market regime over symbol regimes) and put its
assessment in ``ctx.regime`` for both engines, journaled as a ``regime`` decision; set the
capital split between the engines and the risk scale (``v28quant.allocation``).

Each cycle slot: re-read the venue clock, mark the account (a loss-limit breach halts),
carry out a pending operator ``flatten``, and settle our orders with the venue (deferred fills,
unknown outcomes). A halt, whoever set it, is notified once when the runner first sees it and
once when it is lifted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from v28quant.accept_positions import reconcile_for_trading
from v28quant.allocation import allocate
from v28quant.broker.base import BrokerError, Intent, OrderRequest, Owner, Position, Side
from v28quant.broker.errors import BrokerUnavailable
from v28quant.data.base import DataError
from v28quant.engines import EngineContext
from v28quant.ml.features import pivot_float
from v28quant.ml.model_store import ModelStore
from v28quant.occ import is_occ, underlying_of
from v28quant.risk import (
    FLATTEN_STRATEGY,
    FLATTENED,
    RISK_ENGINE,
    HaltState,
    record_control,
)
from v28quant.settlement_close import SettlementCloses
from v28quant.venue import Venue

log = logging.getLogger(__name__)

T = TypeVar("T")


class PremarketReadTimeout(BrokerUnavailable):
    """A venue or feed read of the pre-market job or the account watch did not answer in time."""


#: ``ctx.shared`` key of the seconds each venue or feed read of an engine's own pre-market job
#: may take (absent or None: no limit, a simulated venue's). The runner sets it.
ENGINE_READ_LIMIT_S = "premarket_read_limit_s"


async def in_limit(what: str, read: Awaitable[T], limit_s: float | None) -> T:
    """Await ``read`` cut at ``limit_s`` seconds (None: no limit), as ``PremarketReadTimeout``.

    A timeout the read raises itself stays as it is.
    """
    if limit_s is None:
        return await read
    scope = asyncio.timeout(limit_s)
    try:
        async with scope:
            return await read
    except TimeoutError as exc:
        if not scope.expired():
            raise
        raise PremarketReadTimeout(f"{what}: no answer within {limit_s:g} s") from exc


async def load_history(
    ctx: EngineContext, symbols: list[str], sessions: int, *, limit_s: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return daily bars (long) and closes (wide) of ``symbols`` up to the last close.

    A symbol whose data fails to load is dropped with a warning; the others go on. Run after
    the open (``--once``, a mid-session start) it still ends at the last close: the feeds also
    serve today's partial bar, which the models would take for a close. Each symbol's read is
    cut at ``limit_s`` seconds (``PremarketReadTimeout``: a feed that hangs fails the load).
    """
    start = ctx.now - timedelta(days=int(sessions * 1.5) + 10)
    end = ctx.calendar.last_close(ctx.now)
    frames = []
    for sym in symbols:
        try:
            bars = await in_limit(
                f"history of {sym}", ctx.feed.bars([sym], start, end, "1Day"), limit_s
            )
        except (KeyError, ValueError, OSError, DataError) as exc:
            log.warning("history of %s unavailable, dropped today: %s", sym, exc)
            continue
        if bars.empty:
            log.warning("history of %s is empty, dropped today", sym)
            continue
        frames.append(bars)
    if not frames:
        return pd.DataFrame(), pd.DataFrame()
    long = pd.concat(frames, ignore_index=True)
    wide = pivot_float(long, "timestamp", "symbol", "close").sort_index()
    wide = wide.iloc[-sessions:]
    long = long[long["timestamp"] >= wide.index[0]].reset_index(drop=True)
    return long, wide


def log_returns(closes: pd.DataFrame) -> pd.DataFrame:
    """Return daily log returns of ``closes`` (first row dropped)."""
    return pd.DataFrame(np.log(closes)).diff().iloc[1:]


#: Sessions between two fits of the regime detectors (assessed every session).
REGIME_REFIT_SESSIONS = 5

#: Daily market returns the regime detectors are fitted and assessed on (about three years).
MARKET_SESSIONS = 756


#: Sessions before the fit's own that a fresh fit's POMDP belief is filtered over, from the
#: uniform prior at the first: the belief a filter running all along under the new fit would
#: hold. By 60 sessions the prior is forgotten (on SP500 autumn 2022 the belief after a refit is
#: within 1e-3 of one filtered over 250 sessions; 20 leave 0.03), for 60 HMM filter passes
#: (about 0.25 s).
BELIEF_SESSIONS = 60

CONTROLLER_STORE_NAME = "regime_controller"


class RegimeUnavailable(RuntimeError):
    """No regime today: the fit or the assessment failed and no earlier fit could stand in."""


def _stored_controller(ctx: EngineContext, mkt: pd.Series, symbols: set[str]) -> tuple[Any, int]:
    """Return the stored controller and its age in sessions, if it covers ``symbols``.

    Only a controller fitted by ``mkt``'s last session is taken: a backtest over later
    sessions may share the store, and its fits would read the future.
    """
    store = ModelStore(ctx.model_dir)
    meta = store.find(
        CONTROLLER_STORE_NAME,
        trained_by=mkt.index[-1].date(),
        accept=lambda m: symbols <= set(m.features),
    )
    if meta is None:
        return None, REGIME_REFIT_SESSIONS
    controller, _ = store.load(CONTROLLER_STORE_NAME, meta.version)
    trained = pd.Timestamp(meta.train_end).date()
    return controller, sum(1 for t in mkt.index if t.date() > trained)


def _refit_on_file(ctx: EngineContext, mkt: pd.Series, symbols: set[str]) -> Any:
    """Return a stored controller fitted on today's data and symbols, or None.

    A backtest run again over the same sessions refits on the same days as the first run,
    each fit warm-started from the one before: the fit stored on identical data stands in.
    """
    store = ModelStore(ctx.model_dir)
    meta = store.find(
        CONTROLLER_STORE_NAME,
        trained_by=mkt.index[-1].date(),
        max_age_days=0,
        accept=lambda m: (
            m.features == sorted(symbols) and m.train_start == str(mkt.index[0].date())
        ),
    )
    return None if meta is None else store.load(CONTROLLER_STORE_NAME, meta.version)[0]


def _observe_sessions(controller: Any, history: pd.Series, sessions: int) -> None:
    """Move the POMDP belief through the ``sessions`` sessions before today's (``history``'s last).

    Each is observed as an unbroken run assessed it: the market returns to that session's last
    close, ``MARKET_SESSIONS`` long. After a fit, this filters the recent history under the new
    fit; for a controller restored from the store (which keeps the belief as at its fit), it
    observes the sessions it missed.
    """
    n = len(history)
    for stop in range(max(n - sessions, 1), n):
        controller.observe(history.iloc[:stop].iloc[-MARKET_SESSIONS:])


async def assess_regime(ctx: EngineContext, market: str, returns: pd.DataFrame) -> Any:
    """Assess the hierarchical regime (refitting the detectors every few sessions), journal it.

    The controller (``v28quant.regime.hierarchical``) combines the HMM and the manifold
    detector on the market proxy, sets the risk multiplier through its POMDP risk scale, and
    reads each symbol's regime below; it is kept in ``ctx.shared["regime_controller"]`` so the
    equity engine's ``hmm`` and ``manifold`` sources read the same fitted detectors. A refit
    starts the HMMs from the last fit as well as from a random start, so the regime estimates
    behind the risk scale move when the data's likelihood does, not with the random start. A
    refit that fails leaves the last fit (in memory or in the store) standing, says so in the
    journal and the notifier, and is tried again next session; with no fit to stand in, or when
    the assessment itself fails, :class:`RegimeUnavailable` is raised.
    """
    from v28quant.regime.hierarchical import HierarchicalRegimeController

    history = returns[market].dropna()
    mkt = history.iloc[-MARKET_SESSIONS:]
    symbols = {
        s: returns[s].dropna().iloc[-378:]
        for s in returns.columns
        if s != market and returns[s].notna().sum() > 260
    }
    controller: Any = ctx.shared.get("regime_controller")
    age = int(ctx.shared.get("regime_age", REGIME_REFIT_SESSIONS))
    # a backtest starts as a cold run does: its fits depend on its dates, not on the store
    restored = controller is None and ctx.mode != "backtest"
    if restored:
        controller, age = _stored_controller(ctx, mkt, set(symbols))
    refit = controller is None or age >= REGIME_REFIT_SESSIONS
    failure = ""
    if refit and (done := _refit_on_file(ctx, mkt, set(symbols))) is not None:
        controller, age = done, 0
    elif refit:
        fresh = HierarchicalRegimeController(n_starts=1)
        try:
            await asyncio.to_thread(fresh.fit, mkt, symbols, warm_start=controller)
            await asyncio.to_thread(_observe_sessions, fresh, history, BELIEF_SESSIONS)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            if controller is None:
                raise RegimeUnavailable(f"regime fit failed, no earlier fit to use: {exc}") from exc
            # the last fit stands, and the refit is tried again next session
            failure = f"refit failed, the fit of {age} sessions ago stands: {exc}"
            log.error("regime %s", failure)
            ctx.notifier.error("regime", failure)
            refit = False
        else:
            controller, age = fresh, 0
            ModelStore(ctx.model_dir, journal=ctx.journal).save(
                controller,
                CONTROLLER_STORE_NAME,
                train_start=str(mkt.index[0].date()),
                train_end=str(mkt.index[-1].date()),
                features=sorted(symbols),
                validation_scores={},
                params={"n_states": controller.n_states, "n_starts": 1},
            )
    if restored and age > 0:  # a restart: the belief moves as the unbroken run's did
        await asyncio.to_thread(_observe_sessions, controller, history, age)
    ctx.shared["regime_controller"] = controller
    ctx.shared["regime_age"] = age + 1
    try:
        assessment = await asyncio.to_thread(controller.assess, mkt, symbols)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
        raise RegimeUnavailable(f"regime assessment failed: {exc}") from exc
    state = assessment.state
    ctx.journal.record_decision(
        f"regime-{ctx.now.isoformat()}",
        "regime",
        "hierarchical",
        market,
        "regime",
        {
            "label": state.label,
            "probabilities": dict(state.probabilities),
            "risk_multiplier": float(assessment.risk_multiplier),
            "agreement": float(assessment.agreement),
            "detail": dict(assessment.reasoning),
            "per_symbol": {s: r.label for s, r in assessment.per_symbol.items()},
            "refit": refit,
            **({"refit_failed": failure} if failure else {}),
        },
        ctx.now,
    )
    log.info(
        "regime: %s, risk multiplier %.2f%s",
        state.label,
        assessment.risk_multiplier,
        " (detectors refitted)" if refit else "",
        extra={"probabilities": dict(state.probabilities)},
    )
    return assessment


async def shared_premarket(ctx: EngineContext, venue: Venue) -> bool:
    """Run the shared pre-market job; False means the session must not trade.

    With a keyed venue each look at the venue or the feed is cut at ``[runner]
    cycle_limit_seconds`` (``PremarketReadTimeout``): one that hangs would hold the day's
    cycles. The job's own length (its fits) is not limited. A simulated venue's reads are the
    machine's speed: no limit there.
    """
    limit_s = None if venue.sim_clock is not None else ctx.config.runner.cycle_limit_seconds
    if venue.venue_clock is not None:
        await in_limit("venue clock", venue.venue_clock.refresh(), limit_s)
    journal: Any = ctx.journal  # JournalLike's dict-typed parameters: Journal takes Mappings
    closes = SettlementCloses(ctx.feed, ctx.calendar)
    report = await in_limit(
        "reconcile",
        reconcile_for_trading(journal, ctx.broker, ctx.clock, notifier=ctx.notifier, closes=closes),
        limit_s,
    )
    if not report.ok:
        return False
    account = await in_limit("account", ctx.broker.account(), limit_s)
    state = ctx.risk.mark(account, ctx.now)
    if state.halted:
        log.warning("kill switch is on (%s): no new orders until `v28quant resume`", state.reason)
    announce_kill_switch(ctx, state)
    lookback = ctx.config.equity.lookback_sessions
    bars, closes = await load_history(
        ctx, [*ctx.universe, venue.market_symbol], lookback, limit_s=limit_s
    )
    if closes.empty or venue.market_symbol not in closes:
        log.error("no history for the market proxy %s: no trading today", venue.market_symbol)
        return False
    returns = log_returns(closes)
    ctx.shared["bars"] = bars
    ctx.shared["closes"] = closes
    ctx.shared["market_symbol"] = venue.market_symbol
    try:
        ctx.regime = await assess_regime(ctx, venue.market_symbol, returns)
    except RegimeUnavailable as exc:
        log.error("%s: no trading today", exc)
        ctx.notifier.error("regime", f"{exc}; no trading today")
        ctx.journal.record_decision(
            f"regime-{ctx.now.isoformat()}",
            "regime",
            "hierarchical",
            venue.market_symbol,
            "unavailable",
            {"error": str(exc)},
            ctx.now,
        )
        return False
    try:
        allocate(ctx, float(account.equity))
    except ValueError as exc:  # the engines then use their whole share (1.0)
        log.error("capital split not set today: %s", exc)
    return True


async def watch_account(ctx: EngineContext, venue: Venue, *, limit_s: float | None = None) -> None:
    """Re-read the venue clock, mark the account, run a pending flatten, settle our orders.

    The settling (``Executor.sync``) looks up the orders the journal holds open or unknown and
    journals fills an earlier look deferred (the venue listed the activity after the order's
    status), while the session still knows whose they are. Each of these steps is cut at
    ``limit_s`` seconds (``PremarketReadTimeout``; None: no limit): every engine's cycle waits
    on the watch. The flatten's wait for its short covers to fill is shortened to fit
    (``flatten_fill_wait_s``). A flatten cut there leaves its closing orders' sends going; the
    next flatten leaves their positions to them.
    """
    if venue.venue_clock is not None:
        await in_limit("venue clock", venue.venue_clock.refresh(), limit_s)
    account = await in_limit("account", ctx.broker.account(), limit_s)
    state = ctx.risk.mark(account, ctx.now)
    announce_kill_switch(ctx, state)
    if state.flatten_pending:
        await in_limit("flatten", flatten(ctx, fill_wait_s=flatten_fill_wait_s(limit_s)), limit_s)
    await in_limit("settling our orders", ctx.executor.sync(), limit_s)


def announce_kill_switch(ctx: EngineContext, state: HaltState) -> None:
    """Notify a halt once when the runner first sees it, and its end once.

    The halt seen last is kept in ``ctx.shared``: a halt holding for many cycles is one notice.
    """
    seen = (state.since, state.reason) if state.halted else None
    if seen == ctx.shared.get("kill_switch_seen"):
        return
    ctx.shared["kill_switch_seen"] = seen
    if state.halted:
        flatten_note = "; a flatten is pending" if state.flatten_pending else ""
        ctx.notifier.notify(
            f"HALT by {state.by}: {state.reason}{flatten_note}; no new orders until "
            "`v28quant resume`"
        )
    else:
        ctx.notifier.notify("RESUME: the kill switch is off; new orders allowed")


#: Seconds the flatten waits for its short option closes to fill before closing what covers them.
FLATTEN_FILL_WAIT_S = 30.0


def flatten_fill_wait_s(limit_s: float | None) -> float:
    """Return the flatten's wait for its short covers under a limit of ``limit_s`` (None: none).

    Half the limit at most, the other half left to its cancels and closing orders: a limit
    under twice ``FLATTEN_FILL_WAIT_S`` would otherwise cut every flatten with shorts in its
    wait. A shorter wait holds back what the unfilled shorts cover, the flatten says so, and
    the next watch tries again.
    """
    return FLATTEN_FILL_WAIT_S if limit_s is None else min(FLATTEN_FILL_WAIT_S, limit_s / 2)


def _flatten_phase(pos: Position) -> int:
    """0: short options, 1: long options, 2: stock (the order in which a flatten closes them)."""
    if is_occ(pos.symbol):
        return 0 if pos.qty < 0 else 1
    return 2


async def flatten(ctx: EngineContext, *, fill_wait_s: float = FLATTEN_FILL_WAIT_S) -> int:
    """Cancel our open orders and close every position through the execution service.

    Short option legs are bought back first, then long legs sold, then the stock: a spread's
    long leg or a covered call's shares are never sold while the short they cover is open.
    An underlying whose short legs are not filled within ``fill_wait_s`` keeps its long legs
    and shares; ``flattened`` is then not journaled, so the next account watch tries again. Nor
    is it when a closing order was refused, rejected or its outcome is unknown, or when an
    earlier flatten's closing order of a position is still being sent or works at the venue
    (``_closes_under_way``): that position is left to it, never closed twice.
    Returns the number of closing orders placed.
    """
    from v28quant.execution import Decision

    under_way = _closes_under_way(ctx)
    for order in await ctx.broker.orders("open"):
        if order.client_order_id.startswith("v28-") and order.client_order_id not in under_way:
            await ctx.executor.cancel(order.client_order_id, "operator flatten")
    placed = 0
    stamp = ctx.now.isoformat()
    positions = sorted((p for p in await ctx.broker.positions() if p.qty != 0), key=_flatten_phase)
    shorts_open: dict[str, str] = {}  # client order id -> underlying, of unfilled short closes
    held_back: set[str] = set()
    not_closed: list[str] = []  # positions whose closing order the venue does not hold
    closing = set(under_way.values())
    left_to_earlier: list[str] = []  # positions an earlier flatten's order is still closing
    for pos in positions:
        phase = _flatten_phase(pos)
        if phase > 0 and shorts_open:
            held_back |= await _await_fills(ctx, shorts_open, fill_wait_s)
            shorts_open.clear()
        if phase > 0 and underlying_of(pos.symbol) in held_back:  # buying back shorts always goes
            log.warning("flatten %s held back: a short option on it is still open", pos.symbol)
            continue
        if pos.symbol in closing:
            log.warning("flatten %s left to its closing order still under way", pos.symbol)
            left_to_earlier.append(pos.symbol)
            if phase == 0:  # what it covers waits for it to fill
                held_back.add(underlying_of(pos.symbol))
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
        if outcome.order is None:  # refused, rejected or unknown: nothing to wait for
            not_closed.append(pos.symbol)
            if phase == 0:
                held_back.add(underlying_of(pos.symbol))
        elif phase == 0 and outcome.status != "filled":
            shorts_open[outcome.client_order_id] = underlying_of(pos.symbol)
    if shorts_open:  # only short legs were held: nothing waits on them
        await _await_fills(ctx, shorts_open, 0.0)
    if held_back or not_closed or left_to_earlier:
        why = (
            f"{placed} closing order(s) placed; not closed: {not_closed}; "
            f"{left_to_earlier} still closing by an earlier order; "
            f"{sorted(held_back)} wait for their short legs"
        )
        log.error("flatten not finished: %s", why)
        ctx.notifier.error("flatten", why)
        return placed
    record_control(ctx.journal, FLATTENED, f"{placed} closing order(s) placed", "runner", ctx.now)
    return placed


def _closes_under_way(ctx: EngineContext) -> dict[str, str]:
    """Return the earlier flattens' closing orders that may yet fill: client order id -> symbol.

    Those still being sent (``Executor.sending``: a watch cut at its time limit leaves its
    sends going) and those the journal holds open (working at the venue, or ``intent`` and
    ``unknown``, which may have reached it). A second close of the same position would sell
    (buy) it twice and turn it short (long).
    """
    rows: list[dict[str, Any] | None] = [*ctx.journal.open_orders()]
    rows += [ctx.journal.order_by_client_id(cid) for cid in ctx.executor.sending()]
    return {
        row["client_order_id"]: str(row["request"]["symbol"])
        for row in rows
        if row is not None and (row["engine"], row["strategy"]) == (RISK_ENGINE, FLATTEN_STRATEGY)
    }


async def _await_fills(ctx: EngineContext, orders: dict[str, str], wait_s: float) -> set[str]:
    """Wait up to ``wait_s`` for ``orders`` to fill; return the underlyings of the unfilled."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    unfilled: set[str] = set()
    for cid, und in orders.items():
        try:
            order = await ctx.executor.track(cid, max(0.0, deadline - loop.time()))
        except BrokerError as exc:  # a look-up failing: the short may still be open
            log.warning("flatten order %s not looked up: %s", cid, exc)
            unfilled.add(und)
            continue
        if order.status.value != "filled":
            unfilled.add(und)
    return unfilled
