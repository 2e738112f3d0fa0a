"""Where the runner trades: Alpaca with its clock, or the simulated exchange on replay data.

``open_venue`` picks by mode and keys, as DESIGN.md says:

* ``live`` / ``paper`` with Alpaca keys: ``AlpacaBroker`` and ``AlpacaData``; the runner's clock
  is ``VenueClock`` over Alpaca's ``/v2/clock``.
* ``paper`` without keys, and every ``backtest``: ``SimBroker`` filling against ``ReplayFeed``
  over the sample history bundled with the installed packages, on a ``SimClock``. Keyless paper
  replays the last ``--days`` sessions of that history (``--once``: its last session at 10:00);
  a backtest the sessions from ``--from`` to ``--to``. On a journal that has traded, keyless
  paper goes on after the journal's last simulated time, and a session already traded is
  refused rather than replayed; one stopped after its last cycle gets its missing end-of-day
  roll-up first (``_resume``).

Everything the data cannot support is refused here with one line: a symbol the feed does not
know, a date outside the bundled history, a range with no session, a weekend or holiday.
"""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from v28quant.broker.base import Broker
from v28quant.calendar import ET, ExchangeCalendar, default_calendar
from v28quant.clock import Clock, SimClock
from v28quant.config import RunConfig
from v28quant.data.base import DataFeed
from v28quant.runner_args import RunArgs, UsageError
from v28quant.settings import Settings, SettingsError
from v28quant.venue_clock import VenueClock

log = logging.getLogger(__name__)

#: Sessions of history the engines need before the first simulated session (fits, features).
MIN_HISTORY_SESSIONS = 300


@dataclass
class Venue:
    """The broker, data feed and clock of one run, and how to describe them."""

    broker: Broker
    feed: DataFeed
    clock: Clock
    keyless: bool
    broker_desc: str
    data_desc: str
    universe: tuple[str, ...]
    market_symbol: str
    sim_clock: SimClock | None = None
    venue_clock: VenueClock | None = None
    sessions: tuple[date, ...] = ()
    history_range: tuple[date, date] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    async def aclose(self) -> None:
        """Close the broker's and the feed's sessions."""
        try:
            await self.broker.aclose()
        finally:
            await self.feed.aclose()


def _user_universe(settings: Settings) -> bool:
    default = Settings.model_fields["universe"].default
    return tuple(settings.universe) != tuple(default)


def keyless_universe(settings: Settings) -> tuple[str, ...]:
    """Return the symbols a keyless run or backtest trades when no ``--universe`` is given.

    The settings' own universe when the user set one; else the bundled sample's stocks (the
    settings' default names ETFs the sample lacks).
    """
    from v28quant.data.samples import INDEXES, sample_history

    if _user_universe(settings):
        return tuple(settings.universe)
    return tuple(s for s in sample_history().symbols if s not in INDEXES)


def _check_session(cal: ExchangeCalendar, d: date, flag: str, lo: date, hi: date) -> None:
    if not lo <= d <= hi:
        raise UsageError(f"{flag} {d}: outside the bundled history's usable range {lo}..{hi}")
    if not cal.is_session(d):
        raise UsageError(f"{flag} {d}: not a trading session (weekend or exchange holiday)")


def _last_sessions(
    all_sessions: Sequence[date], days: int | None, default: int, lo: date, hi: date
) -> tuple[date, ...]:
    """Return the last ``days`` (else ``default``) sessions of the usable history ``lo..hi``.

    Raises
    ------
    UsageError
        More sessions than the history holds after its warm-up: said, rather than replaying
        everything (hours) or the warm-up the models fit on.
    """
    flag = "--days" if days is not None else "[paper] days"
    n = days if days is not None else default
    usable = len(all_sessions) - MIN_HISTORY_SESSIONS
    if n > usable:
        raise UsageError(
            f"{flag} {n}: the bundled history holds {usable} usable sessions for this "
            f"universe ({lo}..{hi}); at most {usable}"
        )
    return tuple(all_sessions[-n:])


def _options_underlyings(cfg: RunConfig) -> tuple[str, ...]:
    """Return ``[options] underlyings`` (none when the options engine is not installed)."""
    if importlib.util.find_spec("v28quant.options.engine") is None:
        return ()
    from v28quant.options.config import OptionsConfig

    return OptionsConfig.load(cfg.source).underlyings


def _keyless(
    mode: str, settings: Settings, cfg: RunConfig, args: RunArgs, cal: ExchangeCalendar
) -> Venue:
    from v28quant.broker.sim import SimBroker, SimConfig
    from v28quant.data.replay import ReplayFeed
    from v28quant.data.samples import INDEXES, sample_history

    history = sample_history()
    known = set(history.symbols)
    market = cfg.equity.market_symbol
    universe = args.universe if args.universe is not None else keyless_universe(settings)
    # where a bad symbol came from, as the error line says
    flag = "--universe"
    if args.universe is None and _user_universe(settings):
        flag = "universe (V28_UNIVERSE or the config file)"
    stocks = ", ".join(s for s in history.symbols if s not in INDEXES)
    unknown = [s for s in universe if s not in known]
    if unknown:
        raise UsageError(
            f"{flag}: unknown symbol(s) {', '.join(unknown)}: the bundled sample history "
            f"has {stocks} (and the indexes {', '.join(INDEXES)})"
        )
    indexes = [s for s in universe if s in INDEXES]
    if indexes:
        raise UsageError(
            f"{flag}: {', '.join(indexes)} is an index, not tradable; the bundled stocks "
            f"are {stocks}"
        )
    if market not in known:
        raise SettingsError(f"[equity] market_symbol: {market!r} is not in the bundled history")
    unknown = [s for s in _options_underlyings(cfg) if s not in known]
    if unknown:  # else the options engine fails on each at every cycle of the run
        raise SettingsError(
            f"[options] underlyings: unknown symbol(s) {', '.join(unknown)}: the bundled "
            f"sample history has {stocks}"
        )
    bars = history.bars[history.bars["symbol"].isin([*universe, market])]
    firsts = bars.groupby("symbol")["timestamp"].min()
    lasts = bars.groupby("symbol")["timestamp"].max()
    first, last = max(firsts).tz_convert(ET).date(), min(lasts).tz_convert(ET).date()
    all_sessions = cal.sessions(first, last)
    if len(all_sessions) <= MIN_HISTORY_SESSIONS:
        raise UsageError(f"{flag}: too little common history ({len(all_sessions)} sessions)")
    lo, hi = all_sessions[MIN_HISTORY_SESSIONS], all_sessions[-1]
    if mode == "backtest":
        end = args.end or hi
        start = args.start or cal.sessions(end - timedelta(days=365), end)[0]
        # a derived start is not the user's: the error says where it came from
        from_flag = "--from" if args.start else "--from (not given: a year before --to)"
        _check_session(cal, start, from_flag, lo, hi)
        _check_session(cal, end, "--to", lo, hi)
        sessions = tuple(cal.sessions(start, end))
    elif args.once:
        sessions = (hi,)
    else:
        sessions = _last_sessions(all_sessions, args.days, cfg.paper.days, lo, hi)
    if not sessions:
        raise UsageError("no trading session in the requested range")
    first_day = sessions[0]
    start_at = datetime.combine(first_day, time(10, 0) if args.once else time(8, 55), ET)
    if mode == "paper" and args.journal is not None:
        _refuse_backtest_journal(args.journal)
        sessions, start_at = _resume(args.journal, sessions, start_at, once=args.once, calendar=cal)
    if mode == "backtest" and args.journal is not None:
        _refuse_used_journal(args.journal)
    sim = SimClock(start_at)
    feed = ReplayFeed(history, sim, calendar=cal, equity_spread_bps=cfg.backtest.spread_bps)
    bt = cfg.backtest
    sim_cfg = SimConfig(
        cash=Decimal(str(bt.cash)),
        slippage_bps=Decimal(str(bt.slippage_bps)),
        equity_commission_per_share=Decimal(str(bt.commission_per_share)),
    )
    broker = SimBroker(feed, sim, sim_cfg, calendar=cal)
    span = f"{sessions[0]}..{sessions[-1]} ({len(sessions)} session(s))"
    return Venue(
        broker=broker,
        feed=feed,
        clock=sim,
        keyless=True,
        broker_desc=f"SIMULATED exchange (SimBroker, cash {bt.cash:,.0f}, slippage "
        f"{bt.slippage_bps} bps, commission {bt.commission_per_share}/share), no Alpaca",
        data_desc=f"replay of the bundled sample history, {span}; intraday prices synthetic",
        universe=universe,
        market_symbol=market,
        sim_clock=sim,
        sessions=sessions,
        history_range=(lo, hi),
    )


def _journal_clock(journal: Path) -> datetime | None:
    """Return the latest time the runner journaled in ``journal`` (None: no runner record).

    Only the runner's own records (strategy ``runner``: starts, cycles, roll-ups, nights) are
    stamped with the simulated clock; a promotion, say, is stamped with the wall clock.
    """
    if not journal.exists():
        return None
    try:  # read-only: the run itself opens the journal later, under its lock
        db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT MAX(ts) FROM decisions WHERE strategy = 'runner'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None  # no journal yet, or a corrupt one that run_with refuses in its own words
    return None if row is None or row[0] is None else datetime.fromisoformat(row[0])


def _rolled_up(journal: Path, day: date) -> bool:
    """Return whether ``journal`` holds the runner's end-of-day roll-up of ``day``."""
    if not journal.exists():
        return False
    try:  # read-only, as _journal_clock
        db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT ts FROM decisions WHERE strategy = 'runner' AND action = 'end_of_day'"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return False  # run_with refuses a corrupt journal in its own words
    return any(datetime.fromisoformat(ts).astimezone(ET).date() == day for (ts,) in rows)


def _journal_modes(journal: Path) -> set[str]:
    """Return the modes of the runs started on ``journal`` (empty: none, or no journal yet)."""
    if not journal.exists():
        return set()
    try:  # read-only, as _journal_clock
        db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT DISTINCT json_extract(reasoning, '$.mode') FROM decisions "
                "WHERE strategy = 'runner' AND action = 'start'"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return set()  # run_with refuses a corrupt journal in its own words
    return {str(r[0]) for r in rows if r[0] is not None}


def _refuse_backtest_journal(journal: Path) -> None:
    """Refuse keyless paper on a backtest's journal.

    Its orders and positions belong to no saved simulated account (one is kept beside a paper
    journal only), so every session would fail its reconcile and trade nothing.

    Raises
    ------
    UsageError
        A backtest was run on ``journal``.
    """
    if "backtest" in _journal_modes(journal):
        raise UsageError(
            f"--journal {journal}: it holds a backtest, whose orders and positions are no "
            "simulated account's: use a new journal for paper"
        )


def _refuse_used_journal(journal: Path) -> None:
    """Refuse a backtest on a journal that already holds a run.

    A backtest starts from fresh cash on an empty simulated exchange: on a used journal its
    reconcile fails (the old orders are unknown to the new exchange), no session trades, and
    its report and roll-ups count the old run's fills as its own.

    Raises
    ------
    UsageError
        The runner has written in ``journal`` before.
    """
    reached = _journal_clock(journal)
    if reached is not None:
        raise UsageError(
            f"--journal {journal}: it already holds a run (its runner last wrote at "
            f"{reached.astimezone(ET):%Y-%m-%d %H:%M} New York); a backtest starts from fresh "
            "cash: use a new journal"
        )


def _resume(
    journal: Path,
    sessions: tuple[date, ...],
    start_at: datetime,
    *,
    once: bool = False,
    calendar: ExchangeCalendar | None = None,
) -> tuple[tuple[date, ...], datetime]:
    """Continue keyless paper after the last simulated time of ``journal``, never before it.

    That time is the later of the simulated account saved beside the journal (saved only when
    its books change) and the runner's last record in the journal. A session whose trading
    window it had reached is done once its end-of-day roll-up is journaled, and so is any
    session it reached under ``--once`` (its one cycle ran); a session it stopped inside, or
    after its last cycle but before its roll-up, goes on from there.

    Raises
    ------
    UsageError
        Every session to replay is done: the bundled history has no later one.
    """
    from v28quant.broker.sim import SimBroker, state_path_for

    cal = calendar or default_calendar()
    marks = [SimBroker.saved_clock(state_path_for(journal)), _journal_clock(journal)]
    reached = max((t for t in marks if t is not None), default=None)
    if reached is None or reached < start_at:
        return sessions, start_at
    day = reached.astimezone(ET).date()

    def done(d: date) -> bool:
        if d != day:
            return d < day
        return once or (reached >= cal.windows(d).trading_end and _rolled_up(journal, d))

    left = tuple(d for d in sessions if not done(d))
    if not left:
        raise UsageError(
            f"--journal {journal}: its simulated trading has reached "
            f"{reached.astimezone(ET):%Y-%m-%d %H:%M} New York and the bundled history has no "
            f"later session (it ends {sessions[-1]}); use a new journal to replay it again"
        )
    start = (
        reached if left[0] == day else datetime.combine(left[0], start_at.astimezone(ET).time(), ET)
    )
    log.warning("keyless paper resumes at %s, after the journal's last simulated time", start)
    return left, start


def _keyed(mode: str, settings: Settings, args: RunArgs) -> Venue:
    from v28quant.broker import connect
    from v28quant.data.alpaca import AlpacaData

    live = mode == "live"
    broker = connect(settings, live=live)
    venue_clock = VenueClock(broker.clock)
    feed = AlpacaData.from_settings(settings, now=venue_clock.now, live=live)
    universe = args.universe or tuple(settings.universe)
    return Venue(
        broker=broker,
        feed=feed,
        clock=venue_clock,
        keyless=False,
        broker_desc=f"Alpaca {'LIVE' if live else 'paper'} at {settings.trading_url(live)}",
        data_desc=f"Alpaca market data at {settings.data_url()}, stock feed "
        f"{settings.data_feed}, options feed {settings.options_feed}",
        universe=universe,
        market_symbol="SPY",
        venue_clock=venue_clock,
    )


def open_venue(
    mode: str, settings: Settings, cfg: RunConfig, args: RunArgs, cal: ExchangeCalendar
) -> Venue:
    """Build the venue for ``mode`` (see the module docstring).

    Raises
    ------
    SettingsError
        One line naming the setting or argument that cannot be served.
    """
    if mode == "backtest" or not settings.has_alpaca_keys:
        if mode == "live":
            raise SettingsError("APCA_API_KEY_ID: --mode live needs Alpaca keys")
        return _keyless(mode, settings, cfg, args, cal)
    if args.days is not None:
        raise UsageError("--days: only without Alpaca keys (simulated sessions)")
    return _keyed(mode, settings, args)
