"""Assembling a run: arguments, settings, venue, logging, the opening banner, the services.

``build_and_run(argv)`` is what ``run_v28_production.py`` calls (through
``v28quant.runner.main``); ``run_with`` is the same path for callers that already hold their
arguments (``v28quant.backtest.run_backtest``). A mistake in the arguments or the settings is
one ``error:`` line on stderr and exit status 2.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import importlib
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from v28quant.broker.errors import AuthenticationError
from v28quant.calendar import ExchangeCalendar, default_calendar
from v28quant.config import EquityConfig, RunConfig, check_config, load_config
from v28quant.engines import Engine, EngineContext, fills_announced_by
from v28quant.errors import describe_error
from v28quant.execution.lock import JournalLock, JournalLocked
from v28quant.journal import Journal
from v28quant.journal.store import JournalError, JournalStore
from v28quant.logsetup import secret_values, setup_logging
from v28quant.memory import fix_mmap_threshold, frozen_heap
from v28quant.offhours import OffHoursJobs, plan_for
from v28quant.optimization.apply import PromotedSet, apply_params, code_version, config_digest
from v28quant.risk import RiskGate
from v28quant.runner import Runner
from v28quant.runner_args import RunArgs, parse_args
from v28quant.settings import Settings, SettingsError
from v28quant.threads import limit_blas_to_one_thread
from v28quant.venue import Venue, open_venue

if TYPE_CHECKING:
    from v28quant.execution import Executor

log = logging.getLogger("v28quant.runner")

EngineFactory = Callable[[RunConfig, dict[str, Any]], Sequence[Engine]]


@dataclass
class RunOutcome:
    """What a finished run leaves: its exit status, journal, report and equity by session."""

    exit_code: int
    journal_path: Path
    report_dir: Path | None
    equity: list[tuple[date, Decimal, Decimal]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def default_engines(cfg: RunConfig, params: dict[str, Any]) -> list[Engine]:
    """Return the equity engine, and the options engine when its module is installed."""
    from v28quant.equity.engine import EquityEngine

    known = {f.name for f in dataclasses.fields(EquityConfig)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise SettingsError(f"params: unknown equity parameter(s) {', '.join(unknown)}")
    equity_cfg = dataclasses.replace(cfg.equity, **params)
    engines: list[Engine] = [EquityEngine(equity_cfg)]
    if importlib.util.find_spec("v28quant.options.engine") is not None:
        from v28quant.options.config import OptionsConfig

        mod = importlib.import_module("v28quant.options.engine")
        engines.append(mod.OptionsEngine(OptionsConfig.load(cfg.source)))
    return engines


def _check_options_settings(cfg: RunConfig) -> None:
    """Read ``[options]`` with the other settings: a bad value is refused before anything starts.

    The options engine reads its table when it is made, after the run folder, the journal's
    lock and the banner.
    """
    if importlib.util.find_spec("v28quant.options.engine") is not None:
        from v28quant.options.config import OptionsConfig

        OptionsConfig.load(cfg.source)


def _promoted(journal: Path, scope: dict[str, Any]) -> PromotedSet | None:
    """Return the promoted parameter set beside ``journal`` (None when there is none).

    ``scope`` is this run's universe and TOML digest, which the set must have been tuned for.

    Raises
    ------
    SettingsError
        A promoted-parameters file the journal does not vouch for.
    """
    from v28quant.optimization.apply import load_promoted
    from v28quant.optimization.promote import PromotionRefused

    try:
        return load_promoted(journal, scope)
    except PromotionRefused as exc:
        raise SettingsError(f"promoted parameters: {exc}") from None


def _apply_promoted(cfg: RunConfig, promoted: PromotedSet) -> tuple[RunConfig, dict[str, Any]]:
    """Return ``cfg`` with the promoted set applied, and its ``[equity]`` overrides.

    The applied values pass the checks every TOML value passes: the search space's ranges
    are the tuner's, not the settings' own.

    Raises
    ------
    SettingsError
        A promoted value outside its setting's valid range, naming the setting and the file.
    """
    cfg, equity = apply_params(cfg, promoted.params)
    cfg = dataclasses.replace(cfg, equity=dataclasses.replace(cfg.equity, **equity))
    try:
        check_config(cfg)
    except SettingsError as exc:
        raise SettingsError(
            f"promoted parameters: {promoted.path}: {exc} (walk-forward and promote a set "
            "within it, or remove the file)"
        ) from None
    return cfg, equity


def _parameters_line(promoted: PromotedSet | None, cfg: RunConfig, mode: str) -> str:
    if promoted is None:
        return "parameters: as configured (no promoted set beside the journal)"
    e = cfg.equity

    def num(x: float | None) -> str:
        return "?" if x is None else f"{x:.3f}"

    trials = "?" if promoted.n_trials is None else promoted.n_trials
    line = (
        f"parameters: PROMOTED set {promoted.digest[:16]} from {promoted.path.resolve()} "
        f"(promoted {promoted.promoted_at}, walk-forward DSR {num(promoted.dsr)} over {trials} "
        f"trial(s), OOS Sharpe {num(promoted.oos_sharpe)}): aggregator weights and "
        f"min_confidence {cfg.aggregator.min_confidence:.2f}, target_vol {e.target_vol:.3f}, "
        f"max_weight {e.max_weight:.3f}, min_trade_weight {e.min_trade_weight:.4f}, "
        f"ml_veto_confidence {e.ml_veto_confidence:.2f}, screen_keep {e.screen_keep}"
    )
    if mode == "paper":
        line += f"; paper mode trades at [paper] min_confidence {cfg.paper.min_confidence:.2f}"
    return line


def _banner(
    mode: str,
    venue: Venue,
    journal: Path,
    cfg: RunConfig,
    log_file: Path | None,
    promoted: PromotedSet | None,
) -> None:
    if venue.keyless:
        bar = "=" * 78
        log.warning(bar)
        log.warning("SIMULATED TRADING: no Alpaca keys in use; no order reaches a real market")
        log.warning(bar)
    log.info("mode: %s%s", mode, " (keyless, simulated clock)" if venue.keyless else "")
    log.info("broker: %s", venue.broker_desc)
    log.info("data feed: %s", venue.data_desc)
    log.info("journal: %s", journal.resolve())
    log.info("log file: %s", log_file.resolve() if log_file else "(stdout only)")
    log.info(
        "universe: %s; aggregator min_confidence %.2f",
        ",".join(venue.universe),
        cfg.min_confidence(mode),
    )
    log.info("%s", _parameters_line(promoted, cfg, mode))


def _run_dir(cfg: RunConfig, mode: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(cfg.runner.runs_dir) / f"{mode}-{stamp}"
    path, n = base, 1
    while path.exists():
        path, n = Path(f"{base}-{n}"), n + 1
    return path


async def _serve(
    args: RunArgs,
    settings: Settings,
    cfg: RunConfig,
    venue: Venue,
    journal_path: Path,
    calendar: ExchangeCalendar,
    engines: Sequence[Engine],
    parameters: dict[str, Any],
) -> tuple[int, Runner]:
    from v28quant.execution import Executor
    from v28quant.notify import make_notifier
    from v28quant.settlement_close import SettlementCloses
    from v28quant.signals import SignalAggregator

    journal = Journal(journal_path)
    alpaca_keys = [
        key.get_secret_value()
        for key in (settings.alpaca_key_id, settings.alpaca_secret_key)
        if key is not None
    ]
    notifier = make_notifier(settings.discord_webhook_url, outbox=journal, secrets=alpaca_keys)
    await notifier.resend_unsent()  # what an earlier process left unsent goes out first
    executor = Executor(
        venue.broker,
        journal,
        notifier=notifier,
        clock=venue.clock,
        quotes=venue.feed,
        announced_elsewhere=fills_announced_by(engines),
        settlement_closes=SettlementCloses(venue.feed, calendar),
    )
    try:
        await _follow_trade_updates(venue, executor)
        ctx = EngineContext(
            mode=args.mode,  # type: ignore[arg-type]  # checked by argparse choices
            clock=venue.clock,
            broker=venue.broker,
            feed=venue.feed,
            journal=journal,
            executor=executor,
            aggregator=SignalAggregator.from_settings(cfg.aggregator_settings(args.mode)),
            risk=RiskGate(settings.risk, journal, calendar),
            settings=settings,
            config=cfg,
            notifier=notifier,
            universe=venue.universe,
            calendar=calendar,
            model_dir=Path(cfg.runner.model_dir),
            synthetic=venue.keyless,
        )
        if args.mode == "backtest":
            minutes = cfg.backtest.cycle_minutes
        elif venue.keyless:
            minutes = cfg.paper.sim_cycle_minutes
        else:
            minutes = cfg.runner.cycle_minutes
        plan = plan_for(cfg.offhours, args.mode, venue.keyless, args.tune_off_hours)
        offhours = OffHoursJobs(cfg.offhours, plan, venue.sim_clock is not None)
        runner = Runner(
            ctx,
            venue,
            engines,
            cycle_minutes=minutes,
            once=args.once,
            offhours=offhours,
            parameters=parameters,
        )
        if args.once and args.mode == "live":
            market = venue.venue_clock.last_market if venue.venue_clock else None
            if market is None and venue.venue_clock is not None:
                market = await venue.venue_clock.refresh()
            if market is None or not market.is_open:
                raise SettingsError("--once: refused in live mode while the market is closed")
        runner.install_signal_handlers()
        code = await runner.run()
        return code, runner
    finally:
        try:
            await executor.aclose()
            await venue.aclose()
        finally:
            await notifier.aclose()
            journal.close()


async def _follow_trade_updates(venue: Venue, executor: Executor) -> None:
    """On Alpaca, journal orders as the trade-updates stream pushes them (polling otherwise)."""
    from v28quant.broker.alpaca import AlpacaBroker

    if isinstance(venue.broker, AlpacaBroker):
        from v28quant.alpaca.stream import AlpacaTradeUpdates

        await executor.follow(AlpacaTradeUpdates(venue.broker.config))


def _check_journal_writable(journal: Path) -> None:
    """Refuse, in one line, a journal path nothing can be written to; make nothing there.

    Checked before the venue loads its history, so a bad path is said at once. The folder and
    the lock file are made only once the venue has accepted every argument
    (``_make_journal_folder``): a run refused for a weekend or an unknown symbol leaves none.

    Raises
    ------
    SettingsError
        A file is in the way, or the nearest existing folder is read-only or virtual.
    """
    folder = journal.parent
    while not folder.exists():  # the folder the journal's own folders would be made in
        folder = folder.parent
    try:
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        with tempfile.TemporaryFile(dir=folder):  # unnamed where the OS allows: nothing left
            pass
    except OSError as exc:
        raise SettingsError(f"--journal {journal}: cannot write there ({exc.strerror})") from None


def _make_journal_folder(journal: Path) -> None:
    """Make the journal's folder and its lock file, or refuse the run in one line.

    Raises
    ------
    SettingsError
        Nothing can be written there (a file in the way, a read-only or virtual file system):
        said before the run starts, not as a traceback once the engines are built.
    """
    try:
        journal.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{journal}.lock", "a"):  # the file JournalLock takes; made here, kept
            pass
    except OSError as exc:
        raise SettingsError(f"--journal {journal}: cannot write there ({exc.strerror})") from None


def run_with(
    args: RunArgs,
    settings: Settings,
    cfg: RunConfig,
    *,
    engines: EngineFactory = default_engines,
    params: dict[str, Any] | None = None,
    configure_logging: bool = True,
) -> RunOutcome:
    """Run with checked arguments and loaded settings; write the report of simulated runs.

    Raises
    ------
    SettingsError
        The venue cannot serve the arguments (unknown symbol, dates outside the history, ...).
    """
    calendar = default_calendar()
    if args.journal is not None:
        _check_journal_writable(args.journal)
    venue = open_venue(args.mode, settings, cfg, args, calendar)
    run_dir = _run_dir(cfg, args.mode) if venue.keyless else None
    journal_path = args.journal or (
        run_dir / "journal.sqlite" if run_dir is not None else settings.journal_path
    )
    _make_journal_folder(journal_path)
    # One instance per journal, checked before the banner: a second runner says so and stops.
    lock = _lock_journal(journal_path)
    try:
        return _run_locked(
            args,
            settings,
            cfg,
            venue,
            calendar,
            run_dir,
            journal_path,
            engines,
            params,
            configure_logging,
        )
    finally:
        lock.release()


def _lock_journal(journal_path: Path) -> JournalLock:
    """Take the journal's lock, or refuse the run in one line naming the holder's pid.

    Raises
    ------
    SettingsError
        Another live process holds the journal: two runners must never trade one account.
    """
    lock = JournalLock(journal_path)
    try:
        return lock.acquire()
    except JournalLocked as exc:
        who = f"process {exc.holder_pid}" if exc.holder_pid is not None else "another process"
        raise SettingsError(
            f"--journal {journal_path}: in use by {who} (lock {lock.path}; stop that runner "
            "first: two runners must never trade one account)"
        ) from None


def _run_locked(
    args: RunArgs,
    settings: Settings,
    cfg: RunConfig,
    venue: Venue,
    calendar: ExchangeCalendar,
    run_dir: Path | None,
    journal_path: Path,
    engines: EngineFactory,
    params: dict[str, Any] | None,
    configure_logging: bool,
) -> RunOutcome:
    """``run_with`` once this process holds the journal's lock."""
    if journal_path.exists():  # refuse a corrupt or newer journal before anything starts
        try:
            JournalStore(journal_path).close()
        except JournalError as exc:
            raise SettingsError(f"--journal: {exc}") from None
    promoted = None
    if params is None:  # a caller's own parameters (a tuning trial) are what it evaluates
        scope = {
            "universe": list(venue.universe),
            "config_sha256": config_digest(cfg.source),
            "code_version": code_version(),
        }
        promoted = _promoted(journal_path, scope)
        if promoted is not None:
            cfg, params = _apply_promoted(cfg, promoted)
    parameters: dict[str, Any] = {"source": "configured"}
    if promoted is not None:
        parameters = {
            "source": "promoted",
            "file": str(promoted.path.resolve()),
            "report_digest": promoted.digest,
            "promoted_at": promoted.promoted_at,
            "dsr": promoted.dsr,
            "n_trials": promoted.n_trials,
            "params": promoted.params,
            # paper mode trades at [paper] min_confidence, not the promoted one: say which
            "min_confidence_in_force": cfg.min_confidence(args.mode),
        }
    if venue.keyless and args.mode == "paper":  # the simulated account outlives the process
        from v28quant.broker.sim import SimBroker, state_path_for

        if isinstance(venue.broker, SimBroker):
            venue.broker.keep_state(state_path_for(journal_path))
    log_dir = run_dir if run_dir is not None else Path(cfg.runner.log_dir)
    log_file = None
    if configure_logging:
        log_file = setup_logging(
            args.log_level,
            log_dir,
            secret_values(settings),
            max_bytes=cfg.runner.log_max_bytes,
            backups=cfg.runner.log_backups,
        )
    _banner(args.mode, venue, journal_path, cfg, log_file, promoted)
    made = engines(cfg, params or {})
    log.info("engines: %s", ", ".join(e.name for e in made))
    with frozen_heap():  # what is loaded now lives as long as the run
        code, runner = asyncio.run(
            _serve(args, settings, cfg, venue, journal_path, calendar, made, parameters)
        )
    outcome = RunOutcome(code, journal_path, None, runner.state.equity)
    if venue.keyless and not args.once and len(runner.state.equity) >= 1:
        from v28quant.backtest.report import nothing_traded, write_report

        report_dir = args.report_dir or (run_dir or journal_path.parent) / "report"
        outcome.metrics = write_report(
            report_dir,
            journal_path,
            _account_curve(journal_path),
            initial_equity=Decimal(str(cfg.backtest.cash)),
            marks=_closing_marks(journal_path),
            trials=cfg.backtest.trials,
            costs=cfg.backtest,
        )
        outcome.report_dir = report_dir
        log.info("report: %s", (report_dir / "report.html").resolve())
        if why := nothing_traded(outcome.metrics):
            log.warning("%s", why)
    return outcome


def _account_curve(journal_path: Path) -> list[tuple[date, Decimal, Decimal]]:
    """Return each session's closing equity and gross exposure (dollars) from the journal.

    The end-of-day roll-ups of every run on the journal, oldest first: a resumed keyless paper
    run reports the account since its first session, as its fills (the whole journal's) do.
    """
    with Journal(journal_path) as journal:
        rows = journal.decisions(engine="runner", action="end_of_day")
    closes = {
        date.fromisoformat(r["reasoning"]["day"]): (
            Decimal(r["reasoning"]["equity"]),
            Decimal(r["reasoning"]["exposure"]),
        )
        for r in rows
    }
    return [(day, equity, exposure) for day, (equity, exposure) in sorted(closes.items())]


def _closing_marks(journal_path: Path) -> dict[str, Decimal] | None:
    """Return the prices the last session's closing equity marked the positions at.

    None when its roll-up journaled none (a journal written before the roll-up kept them).
    """
    with Journal(journal_path) as journal:
        rows = journal.decisions(engine="runner", action="end_of_day")
    if not rows:
        return None
    marks = max(rows, key=lambda r: str(r["reasoning"]["day"]))["reasoning"].get("marks")
    return None if marks is None else {sym: Decimal(price) for sym, price in marks.items()}


def build_and_run(argv: list[str] | None = None) -> int:
    """Entry of ``run_v28_production.py``: the exit status (2 on a bad argument or setting)."""
    fix_mmap_threshold()  # a process that runs for weeks gives large freed blocks back at once
    blas = limit_blas_to_one_thread()  # the engines' worker threads are the parallelism
    try:
        args = parse_args(argv)
        overrides: dict[str, Any] = {}
        if args.journal is not None:
            overrides["journal_path"] = args.journal
        settings, cfg = load_config(args.config, **overrides)
        settings.require_mode(args.mode)
        _check_options_settings(cfg)
        return run_with(args, settings, cfg).exit_code
    except (SettingsError, AuthenticationError) as exc:  # a 401: wrong keys are a bad setting
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return 2
    finally:
        blas.restore_original_limits()  # for callers in the same process (tests, the demo)
