"""The only door to live trading for a parameter set, and the off-hours guard of research jobs.

A walk-forward report is saved as JSON with a SHA-256 digest of its content and journaled as a
model run carrying that digest. :func:`promote` refuses unless the report file is intact (its
digest recomputes), the journal holds a walk-forward run with that digest, and the report passed
with a DSR of at least :data:`PROMOTE_MIN_DSR` (a run's ``--min-dsr`` cannot lower that bar),
its parameters are ones the runner trades (:func:`runner_params`, the rule the runner's
start-up applies too), and, for a tuned set, every test window lies after the last session the
search saw (:func:`require_held_out`): the search picked the set on those sessions, so scores
there are in sample however the DSR deflates them. It then writes them atomically beside the
journal, where the runner reads them (:func:`~v28quant.optimization.apply.load_promoted`),
and journals the promotion.

Research jobs (tuning, walk-forward) run only off-hours: :func:`require_off_hours` raises on a
session day between ``margin`` before the 09:00 ET pre-market job and the runner's after-close
time, and :func:`off_hours_deadline` says when a job started off-hours must stop.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from v28quant.calendar import ET, ExchangeCalendar, default_calendar
from v28quant.journal import Journal
from v28quant.optimization.provenance import SEARCH_KEY, SearchSpan
from v28quant.optimization.walkforward import WalkForwardReport

if TYPE_CHECKING:
    from v28quant.optimization.tuner import TuneResult

REPORT_FILE = "walkforward.json"
PROMOTED_FILE = "v28_promoted_params.json"
WALK_FORWARD_MODEL = "optimization.walk_forward"
PROMOTE_MODEL = "optimization.promote"
TUNE_MODEL = "optimization.tune"
#: Deflated Sharpe ratio a walk-forward needs to be promoted, whatever ``--min-dsr`` it ran
#: with: a report's own ``passed`` is only as strict as the bar its run was given.
PROMOTE_MIN_DSR = 0.95


class PromotionRefused(RuntimeError):
    """A promotion without a passing, journaled, intact walk-forward."""


class TradingHoursError(RuntimeError):
    """A research job asked to run while the runner trades."""


def _canonical(payload: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in payload.items() if k != "digest"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def report_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of a report's JSON content (its ``digest`` field left out)."""
    return hashlib.sha256(_canonical(payload)).hexdigest()


@contextlib.contextmanager
def _staged_write(path: Path, text: str) -> Iterator[None]:
    """Write ``text`` beside ``path`` and put it in place once the ``with`` body succeeds.

    A body that fails (the journal refusing the record the file must match) leaves ``path``
    as it was and no temporary file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        yield
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _atomic_write(path: Path, text: str) -> None:
    with _staged_write(path, text):
        pass


def read_report(path: Path) -> dict[str, Any]:
    """Return the content of the walk-forward report at ``path``.

    Raises
    ------
    OSError
        The file is missing or unreadable.
    ValueError
        Not JSON, or JSON of another shape than a report.
    """
    payload = json.loads(path.read_text())
    if not isinstance(payload, dict):
        raise ValueError(f"not a walk-forward report (a JSON object), got {type(payload).__name__}")
    return payload


def save_report(
    report: WalkForwardReport,
    out_dir: str | Path,
    journal: Journal | None,
    started: datetime,
    finished: datetime,
) -> Path:
    """Write ``walkforward.json`` (with its digest) into ``out_dir`` and journal the run."""
    payload = report.to_dict()
    digest = report_digest(payload)
    path = Path(out_dir) / REPORT_FILE
    _atomic_write(path, json.dumps({**payload, "digest": digest}, indent=1, allow_nan=False))
    if journal is not None:
        journal.record_model_run(
            WALK_FORWARD_MODEL,
            digest[:16],
            started,
            finished,
            report.candidate,
            {
                "digest": digest,
                "report": str(path.resolve()),
                "passed": report.passed,
                "verdict": report.verdict,
                "dsr": report.dsr.dsr,
                "n_trials": report.n_trials,
                "oos_sharpe": report.oos_sharpe,
                "mode": report.mode,
                "evaluator": report.evaluator,
            },
        )
    return path


def record_tune(
    journal: Journal, result: TuneResult, storage: str | None, report: Path, params_file: Path
) -> None:
    """Journal a tuning run: its best parameters and the sessions its search saw."""
    journal.record_model_run(
        TUNE_MODEL,
        result.study.study_name,
        result.started,
        result.finished,
        result.best_params,
        {
            "storage": storage,
            "best_oos_sharpe": result.best_value,
            "n_complete": result.n_complete,
            "n_pruned": result.n_pruned,
            "walk_forward": str(report),
            "params_file": str(params_file),
            "dsr": result.walk_forward.dsr.dsr,
            SEARCH_KEY: result.searched.to_dict(),
        },
    )


def _journaled_runs(journal_path: Path, model: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Params and metrics of every journaled run of ``model``.

    Read-only: the runner may hold the journal.
    """
    if not journal_path.is_file():
        return []
    db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT params, metrics FROM model_runs WHERE model = ? ORDER BY id", (model,)
        ).fetchall()
    finally:
        db.close()
    return [(json.loads(p), json.loads(m)) for p, m in rows]


def _journaled_walk_forwards(journal_path: Path) -> list[dict[str, Any]]:
    """Metrics of every journaled walk-forward."""
    return [m for _, m in _journaled_runs(journal_path, WALK_FORWARD_MODEL)]


def _searches_of(path: Path, payload: Mapping[str, Any], journal_path: Path) -> list[SearchSpan]:
    """Spans of the searches that chose the report's candidate.

    The report's own span, and that of every journaled tune run whose best parameters are the
    candidate: a parameter file stripped of its span, or given an earlier one, is still known
    by the journal that recorded its tuning. Tune runs journaled before spans were recorded
    name none and are left out.
    """
    where = str(path)
    spans = [SearchSpan.from_dict(payload[SEARCH_KEY], where)] if SEARCH_KEY in payload else []
    candidate = payload.get("candidate")
    for params, metrics in _journaled_runs(journal_path, TUNE_MODEL):
        if params == candidate and SEARCH_KEY in metrics:
            spans.append(SearchSpan.from_dict(metrics[SEARCH_KEY], f"{journal_path} tune run"))
    return spans


def require_held_out(path: Path, payload: Mapping[str, Any], journal_path: Path) -> None:
    """Refuse a tuned set whose walk-forward tests it on sessions its search saw.

    Raises
    ------
    PromotionRefused
        A test window starts on or before the last session a search that chose the candidate
        saw, or a recorded span does not read.
    """
    try:
        spans = _searches_of(path, payload, journal_path)
    except ValueError as exc:
        raise PromotionRefused(f"searched sessions unreadable: {exc}") from None
    if not spans:
        return
    last = max(spans, key=lambda s: s.last_session)
    overlap = [
        w
        for w in payload.get("windows", [])
        if datetime.fromisoformat(w["test_start"]).date() <= last.last_session
    ]
    if not overlap:
        return
    windows = ", ".join(
        f"{w['index']} ({w['test_start'][:10]}..{w['test_end'][:10]})" for w in overlap
    )
    raise PromotionRefused(
        f"{path}: not out of sample for its search: study {last.study} scored trials on "
        f"sessions {last.first_session}..{last.last_session}, and test window(s) {windows} "
        f"overlap them. Run walk-forward --params on sessions after {last.last_session} "
        "(a later --end, or more --train-days so the first test window starts after it), "
        "or tune again with an earlier --end to hold out the last stretch"
    )


def runner_params(evaluator: object, params: Mapping[str, float], where: Path) -> dict[str, float]:
    """Return ``params`` as the runner trades them; refuse a set the runner cannot trade.

    One rule for :func:`promote` and the runner's start-up, so that what is promoted trades:
    an unattended restart that met a set the runner refuses would stay down.

    Raises
    ------
    PromotionRefused
        Parameters of another evaluator than the runner's own engines (``backtest``), e.g. of
        the sample strategy, or not valid in the backtest search space.
    """
    from v28quant.optimization.backtest_objective import BacktestEvaluator, backtest_space

    if evaluator != BacktestEvaluator.name:
        raise PromotionRefused(
            f"{where}: parameters of the {evaluator!r} evaluator, not of the runner's engines "
            f"(the runner trades only a walk-forward run with --objective {BacktestEvaluator.name})"
        )
    try:
        return backtest_space().validate(params)
    except (TypeError, ValueError) as exc:  # TypeError: no mapping at all
        raise PromotionRefused(f"{where}: candidate parameters rejected: {exc}") from None


@dataclass(frozen=True, slots=True)
class Promotion:
    """A promoted parameter set and where it was written."""

    params: dict[str, float]
    digest: str
    path: Path
    promoted_at: datetime


def promote(
    report_path: str | Path,
    journal: Journal,
    out: str | Path | None = None,
    now: datetime | None = None,
) -> Promotion:
    """Promote a passing walk-forward's candidate parameters to live trading.

    Raises
    ------
    PromotionRefused
        The report is missing, unreadable, altered since it was written or not journaled;
        its parameters are not ones the runner trades (:func:`runner_params`: the runner
        would refuse them at start); a tuned set's test windows overlap the sessions its
        search saw (:func:`require_held_out`); or it failed, or its DSR is below
        :data:`PROMOTE_MIN_DSR`.
    """
    path = Path(report_path)
    if path.is_dir():
        path = path / REPORT_FILE
    try:
        payload = read_report(path)
    except (OSError, ValueError) as exc:
        raise PromotionRefused(f"no readable walk-forward report at {path}: {exc}") from None
    digest = payload.get("digest")
    if not isinstance(digest, str) or digest != report_digest(payload):
        raise PromotionRefused(f"{path}: content does not match its digest (altered?)")
    journaled = [m for m in _journaled_walk_forwards(journal.path) if m.get("digest") == digest]
    if not journaled:
        raise PromotionRefused(f"{path}: no walk-forward with digest {digest[:16]} in the journal")
    # ahead of the verdict: a set the runner would refuse is refused however well it did
    candidate: Any = payload.get("candidate")  # not a mapping: refused by runner_params
    params = runner_params(payload.get("evaluator"), candidate, path)
    require_held_out(path, payload, journal.path)
    if not (payload.get("passed") is True and all(m.get("passed") is True for m in journaled)):
        raise PromotionRefused(f"walk-forward did not pass: {payload.get('verdict')}")
    dsr = float(payload["dsr"]["dsr"])
    if not dsr >= PROMOTE_MIN_DSR:
        raise PromotionRefused(
            f"walk-forward passed at its own bar of {payload.get('min_dsr')}, but its DSR "
            f"{dsr:.3f} below {PROMOTE_MIN_DSR} is not enough to trade: {payload.get('verdict')}"
        )
    when = now or datetime.now(UTC)
    target = Path(out) if out is not None else journal.path.with_name(PROMOTED_FILE)
    record = {
        "params": params,
        "report_digest": digest,
        "report": str(path.resolve()),
        "evaluator": payload.get("evaluator"),
        "dsr": payload["dsr"]["dsr"],
        "n_trials": payload["dsr"].get("n_trials"),
        "oos_sharpe": payload.get("oos_sharpe"),
        "promoted_at": when.isoformat(),
        "scope": payload.get("scope", {}),
    }
    # the runner trades the file only with its promotion journaled: journal it first, so a
    # journal that refuses the row leaves the previous promotion in place, file and record
    with _staged_write(target, json.dumps(record, indent=1, sort_keys=True)):
        journal.record_model_run(PROMOTE_MODEL, digest[:16], when, when, params, record)
    return Promotion(params=params, digest=digest, path=target, promoted_at=when)


def is_off_hours(
    now: datetime, calendar: ExchangeCalendar | None = None, margin: timedelta = timedelta(0)
) -> bool:
    """Whether ``now`` is outside the runner's trading day (pre-market job to after close)."""
    if now.tzinfo is None:
        raise ValueError("is_off_hours needs a timezone-aware datetime")
    cal = calendar or default_calendar()
    day = now.astimezone(ET).date()
    if not cal.is_session(day):
        return True
    w = cal.windows(day)
    return not (w.premarket - margin <= now < w.after_close)


def require_off_hours(
    now: datetime,
    calendar: ExchangeCalendar | None = None,
    margin: timedelta = timedelta(minutes=30),
) -> None:
    """Raise :class:`TradingHoursError` unless ``now`` is off-hours with ``margin`` to spare."""
    if not is_off_hours(now, calendar, margin):
        cal = calendar or default_calendar()
        w = cal.windows(now.astimezone(ET).date())
        raise TradingHoursError(
            f"research jobs run off-hours only: {now.astimezone(ET):%Y-%m-%d %H:%M} ET is within "
            f"the trading day ({w.premarket - margin:%H:%M} to {w.after_close:%H:%M} ET)"
        )


def off_hours_deadline(
    now: datetime,
    calendar: ExchangeCalendar | None = None,
    margin: timedelta = timedelta(minutes=30),
) -> datetime:
    """When a research job started at ``now`` must have stopped: ``margin`` before pre-market."""
    require_off_hours(now, calendar, margin)
    cal = calendar or default_calendar()
    day = now.astimezone(ET).date()
    if cal.is_session(day) and now < cal.windows(day).premarket - margin:
        return cal.windows(day).premarket - margin
    return cal.windows(cal.next_session(day)).premarket - margin
