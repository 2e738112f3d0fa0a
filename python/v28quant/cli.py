"""The operator's command line, ``v28quant``: reads and writes the journal only.

``status``, ``why SYMBOL``, ``halt``, ``resume``, ``flatten``, ``accept-positions`` and ``report``
need neither the runner nor the broker: the runner journals what it does (its start, each cycle,
the regime, risk marks, orders, fills) and reads the kill switch from the journal at every
cycle, so a ``halt`` written here stops new orders at the next cycle and a ``flatten`` is carried
out by the runner at its next cycle (or at its next start); ``accept-positions`` is carried out
by its next pre-market reconcile (``v28quant.accept_positions``).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from v28quant.accept_positions import pending_request, request_acceptance
from v28quant.journal import Journal
from v28quant.journal.store import JournalError
from v28quant.occ import underlying_of
from v28quant.risk import (
    DENY,
    FLATTEN,
    HALT,
    MARK,
    RESUME,
    RISK_ENGINE,
    halt_state,
    record_control,
)
from v28quant.why import equity_verdict, verdict_line

T = TypeVar("T")

ACCEPT = "accept-positions"


def _journal_path(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    from v28quant.settings import load_settings

    return load_settings().journal_path


def _missing_journal(path: Path) -> str:
    """Return the one-line error for a journal that does not exist.

    Keyless runs journal under the configured runs folder (``[runner] runs_dir``), never at the
    default path; the line names the newest of those journals so the operator can pass one,
    since acting on a guessed journal (a halt, a flatten) is worse than stopping.
    """
    line = f"error: no journal at {path} (set --journal or V28_JOURNAL)"
    newest = _keyless_journals()
    if newest:
        line += (
            f"; keyless runs journal under their run folder, the newest: "
            f"{', '.join(str(p) for p in newest)}: pass --journal PATH to use one"
        )
    return line


def _keyless_journals(limit: int = 2) -> list[Path]:
    """Return up to ``limit`` keyless runs' journals in the runs folder, newest (mtime) first."""
    from v28quant.config import load_config
    from v28quant.settings import SettingsError

    try:
        _, cfg = load_config()
    except SettingsError:  # the settings' own error is not this command's: no hint
        return []
    found = [p for p in Path(cfg.runner.runs_dir).glob("*/journal.sqlite") if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)[:limit]


def _last(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return rows[-1] if rows else None


def _equity_line(journal: Journal) -> str | None:
    """Return the equity, day P&L and drawdown: at the close once the day is rolled up.

    The account watch marks equity through the session; after the close the runner's
    end-of-day roll-up holds the closing equity, which is what the day made.
    """
    from v28quant.calendar import ET

    mark = _last(journal.decisions(engine=RISK_ENGINE, action=MARK))
    close = _last(journal.decisions(engine="runner", action="end_of_day"))
    if close is not None and (mark is None or close["ts"] >= mark["ts"]):
        day = close["reasoning"]["day"]
        eq = float(close["reasoning"]["equity"])
        text = f"equity {eq:,.2f} at the close of {day}"
        if mark is not None and mark["ts"].astimezone(ET).date().isoformat() == day:
            start_eq, peak = (float(mark["reasoning"][k]) for k in ("day_start", "peak"))
            peak = max(peak, eq)
            text += (
                f"; day P&L {eq - start_eq:+,.2f}; drawdown from peak "
                f"{(peak - eq) / peak if peak else 0:.2%}"
            )
        return f"{text} (end-of-day roll-up, {close['ts']:%Y-%m-%d %H:%M}Z)"
    if mark is None:
        return None
    r = mark["reasoning"]
    eq, start_eq, peak = (float(r[k]) for k in ("equity", "day_start", "peak"))
    return (
        f"equity {eq:,.2f}; day P&L {eq - start_eq:+,.2f}; drawdown from peak "
        f"{(peak - eq) / peak if peak else 0:.2%} (last intraday mark, "
        f"{mark['ts']:%Y-%m-%d %H:%M}Z)"
    )


def status(journal: Journal) -> list[str]:
    """Return the status lines: run, kill switch, regime, P&L, positions, orders, last cycles."""
    out = []
    start = _last(journal.decisions(engine="runner", action="start"))
    if start:
        r = start["reasoning"]
        out.append(
            f"last start: {start['ts']:%Y-%m-%d %H:%M:%S}Z mode {r.get('mode')}, pid {r.get('pid')}"
        )
        out.append(f"broker: {r.get('broker')}")
    else:
        out.append("last start: none journaled")
    state = halt_state(journal)
    out.append(
        f"kill switch: HALTED since {state.since:%Y-%m-%d %H:%M}Z by {state.by}: {state.reason}"
        + (" (flatten pending)" if state.flatten_pending else "")
        if state.halted
        else "kill switch: off (trading allowed)"
    )
    regime = _last(journal.decisions(engine="regime", action="regime"))
    if regime:
        r = regime["reasoning"]
        scale = r.get("risk_multiplier")
        scale_text = f"{scale:.3f}" if isinstance(scale, int | float) else str(scale)
        out.append(
            f"regime: {r.get('label')} (risk multiplier {scale_text}) at "
            f"{regime['ts']:%Y-%m-%d %H:%M}Z"
        )
    equity_line = _equity_line(journal)
    if equity_line:
        out.append(equity_line)
    out += _reconcile_lines(journal)
    positions = journal.last_positions()
    out.append(
        "positions: "
        + (", ".join(f"{s} {q}" for s, q in sorted(positions.items())) if positions else "none")
    )
    orders = journal.open_orders()
    out.append(f"open orders: {len(orders)}")
    for o in orders[:20]:
        req = o.get("request") or {}
        out.append(
            f"  {o['client_order_id']} {o['status']} {req.get('side')} {req.get('qty')} "
            f"{req.get('symbol')}"
        )
    for c in journal.last_decisions("cycle"):
        r = c["reasoning"]
        note = f"; {r['note']}" if r.get("note") else ""
        out.append(
            f"last {c['engine']} cycle: {c['ts']:%Y-%m-%d %H:%M}Z, {r.get('signals')} new "
            f"signal(s), {r.get('orders')} order(s), {r.get('denied')} denied{note}"
        )
    return out


def _reconcile_lines(journal: Journal) -> list[str]:
    """Return the last reconcile's line when it stopped trading, and a pending acceptance."""
    out = []
    last = journal.last_reconcile()
    if last is not None and not last["ok"]:
        fatal = [d for d in last["differences"] if d.get("fatal")]
        what = "; ".join(
            f"{d['kind']} {d.get('symbol', '')} (journal {d.get('expected')}, venue "
            f"{d.get('broker')})"
            if d["kind"] == "position_mismatch"
            else d["kind"]
            for d in fatal
        )
        out.append(f"last reconcile FAILED at {last['ts']:%Y-%m-%d %H:%M}Z, no trading: {what}")
        if any(d["kind"] == "position_mismatch" for d in fatal):
            out.append(
                "  if the venue's positions are right: v28quant accept-positions --reason '...'"
            )
    request = pending_request(journal)
    if request is not None:
        out.append(
            f"accept-positions pending (the next pre-market reconcile takes the venue's "
            f"positions): {request['reasoning']['reason']}"
        )
    return out


#: ``why``'s answer when the journal holds nothing on a symbol (the command then exits 1).
NOTHING_ON_RECORD = "no signals journaled for {}"


def why(journal: Journal, symbol: str, at: datetime | None) -> list[str]:
    """Return the reasons on record for ``symbol`` at or before ``at`` (default: the latest).

    The latest views (the equity aggregate and its models, else the raw signals, the options
    engine's included), the equity engine's word on the symbol in its last cycle (why it ordered
    nothing, or what it ordered), its hold in force (a position no model covered, a short
    sale refused, a fraction the venue will not sell), the stacked ensemble's veto in force, the
    risk gate's last denial of an order on the symbol or its options, then each engine's last
    order on the symbol and the decision behind it.
    """
    lines = _views(journal, symbol, at)
    hold = (
        _last_hold(journal, symbol.upper(), at)
        + _gate_in_force(journal, symbol.upper(), at)
        + _last_denial(journal, symbol.upper(), at)
    )
    if lines == [NOTHING_ON_RECORD.format(symbol.upper())]:
        return lines + hold
    screen = _screened_out(journal, symbol.upper(), at)
    if screen is not None:
        lines.append(screen)
    lines += hold
    seen: set[str] = set()
    for o in journal.last_orders(symbol.upper(), at, limit=50):
        if o["engine"] in seen:  # the newest of each engine: a stock buy beside a spread
            continue
        seen.add(o["engine"])
        r = o["reasoning"]
        target = (
            f"; target {r['target_qty']} shares, weight {r['target_weight']:+.2%}"
            if "target_qty" in r and "target_weight" in r
            else ""
        )
        lines.append(
            f"  last order {o['intent_ts']:%Y-%m-%d %H:%M}Z by {o['engine']}/{o['strategy']}: "
            f"{_order_text(o)}{target} -> {o['status']}{_fill_text(o)} ({o['client_order_id']})"
        )
    return lines


def _is_spread(order: dict[str, Any]) -> bool:
    return bool(order["request"].get("kind") == "mleg")


def _order_text(order: dict[str, Any]) -> str:
    """Return what the order asked: a spread as its open, close or roll of the strategy."""
    if not _is_spread(order):
        return str(order["action"])
    moves = {leg["intent"].split("_to_")[1] for leg in order["request"]["legs"]}
    move = moves.pop() if len(moves) == 1 else "roll"  # a roll closes legs and opens others
    return f"{move} {order['strategy']} x{order['request']['qty']}"


def _fill_text(order: dict[str, Any]) -> str:
    """Return the fill: a spread's net per share signed as the venue signs it (+ debit)."""
    price = order["filled_avg_price"]
    if not price:
        return ""
    if not _is_spread(order):
        return f" {order['filled_qty']} @ {price}"
    net = Decimal(str(price))
    paid = "debit" if net > 0 else "credit"
    return f" {order['filled_qty']} at a {abs(net):.2f} {paid} per share"


def _last_hold(journal: Journal, symbol: str, at: datetime | None) -> list[str]:
    """Return the equity engine's hold of ``symbol`` in force at ``at``, if any.

    The engine journals a hold as it starts, changes and ends (``hold_ended``), not every cycle.
    """
    holds = [
        d
        for d in journal.decisions(engine="equity", action=("hold", "hold_ended"))
        if d["symbol"] == symbol and (at is None or d["ts"] <= at)
    ]
    if not holds or holds[-1]["action"] != "hold":
        return []
    last = holds[-1]
    return [f"  equity hold at {last['ts']:%Y-%m-%d %H:%M}Z: {last['reasoning']['reason']}"]


def _gate_in_force(journal: Journal, symbol: str, at: datetime | None) -> list[str]:
    """Return the stacked ensemble's veto of trades in ``symbol`` in force at ``at``, if any.

    The engine journals a veto as it starts, changes and ends (``ungated``), not every cycle.
    """
    rows = [
        d
        for d in journal.decisions(engine="equity", action=("gated", "ungated"))
        if d["symbol"] == symbol and (at is None or d["ts"] <= at)
    ]
    if not rows or rows[-1]["action"] != "gated":
        return []
    veto = rows[-1]["reasoning"]["ml_gate"]
    return [
        f"  gated by the stacked ensemble since {rows[-1]['ts']:%Y-%m-%d %H:%M}Z: its vote "
        f"{veto['ensemble_value']:+.2f} at confidence {veto['ensemble_confidence']:.2f} "
        f"(veto from {veto['threshold']:.2f}) is against the trade"
    ]


def _last_denial(journal: Journal, symbol: str, at: datetime | None) -> list[str]:
    """Return the risk gate's last denial of an order on ``symbol`` or its contracts."""
    denials = [
        d
        for d in journal.decisions(action=DENY)
        if symbol in (d["symbol"], underlying_of(d["symbol"])) and (at is None or d["ts"] <= at)
    ]
    if not denials:
        return []
    last = denials[-1]
    qty = last["reasoning"].get("request", {}).get("qty")
    return [
        f"  last denied by the risk gate {last['ts']:%Y-%m-%d %H:%M}Z: {last['engine']}/"
        f"{last['strategy']} {qty} {last['symbol']}: {last['reasoning']['reason']}"
    ]


def _screened_out(journal: Journal, symbol: str, at: datetime | None) -> str | None:
    """Say why the equity engine has no view on ``symbol``: its last CAPM screen left it out.

    The engine aggregates only the screened and the held symbols, so an unscreened stock's
    answer otherwise holds the options engine's views alone. None when the last screen at or
    before ``at`` kept it (or there is none).
    """
    screens = [
        d
        for d in journal.decisions(engine="equity", action="screen")
        if at is None or d["ts"] <= at
    ]
    if not screens:
        return None
    last = screens[-1]
    kept, universe = last["reasoning"].get("kept", []), last["reasoning"].get("universe", [])
    when = f"{last['ts']:%Y-%m-%d %H:%M}Z"
    if symbol in kept:
        return None
    if symbol not in universe:
        return f"  equity: not in the equity engine's universe at its screen of {when}"
    return (
        f"  equity: left out by the CAPM screen of {when} (kept {len(kept)} of "
        f"{len(universe)}: {', '.join(kept)}); no equity aggregate unless held"
    )


def _views(journal: Journal, symbol: str, at: datetime | None) -> list[str]:
    query = getattr(journal, "why", None)
    if query is not None:
        try:
            answer = query(symbol.upper(), at=at)
        except LookupError:  # no aggregate on record: fall back to the raw signals
            answer = None
        if isinstance(answer, dict) and answer.get("aggregate_ts") is None:
            answer = None  # a hold alone: the raw signals answer, and ``why`` adds the hold
        if isinstance(answer, dict) and "text" in answer:
            return str(answer["text"]).splitlines()
        if answer is not None:
            text = answer if isinstance(answer, str) else json.dumps(answer, indent=1, default=str)
            return text.splitlines()
    sym = symbol.upper()
    sig = journal.signals()
    # the options engine journals an underlying's views as "SYM:IV", "SYM:<contract>", ...
    sig = sig[(sig["symbol"] == sym) | sig["symbol"].str.startswith(sym + ":")]
    if at is not None:
        sig = sig[sig["ts"] <= at]
    if sig.empty:
        return [NOTHING_ON_RECORD.format(sym)]
    ts = sig["ts"].max()
    lines = [f"{sym} at {ts}:"]
    for _, r in sig[sig["ts"] == ts].iterrows():
        lines.append(
            f"  {r['model']} ({r['symbol']}): value {r['value']:+.3f} confidence "
            f"{r['confidence']:.2f} {json.dumps(r['reasoning'], default=str)}"
        )
    for d in journal.decisions(since=ts.to_pydatetime(), symbol=sym):
        if d["ts"] == ts.to_pydatetime():
            lines.append(f"  decision {d['action']} by {d['engine']}: {d['reasoning']}")
    verdict = equity_verdict(journal, sym, at)
    if verdict is not None:  # an aggregate's answer (above) has it after the aggregate
        lines.append(verdict_line(verdict))
    return lines


#: ``report``'s answer for a day the exchange did not open (the command then exits 1).
NO_SESSION = "no session on {} (weekend or holiday)"
#: ``report``'s answer for a session the journal holds no row of (the command then exits 1).
NOTHING_ON_DAY = "nothing journaled on {}"


def report(journal: Journal, day: date | None) -> list[str]:
    """Return the roll-up of ``day`` (default: the day of the latest journaled signal or fill)."""
    from v28quant.calendar import default_calendar

    if day is not None and default_calendar().session_times(day) is None:
        return [NO_SESSION.format(day)]
    if day is None:
        fills = journal.fills()
        stamps = [f["ts"] for f in fills[-1:]]
        last_signal = journal.last_signal_ts()
        if last_signal is not None:
            stamps.append(last_signal)
        if not stamps:
            return ["nothing journaled yet"]
        from v28quant.calendar import ET

        day = max(stamps).astimezone(ET).date()
    summary = journal.daily_summary(day)
    if not _journaled_anything(summary):
        return [NOTHING_ON_DAY.format(day)]
    return json.dumps(summary, indent=1, default=str).splitlines()


def _journaled_anything(summary: dict[str, Any]) -> bool:
    """Whether the day's roll-up counts any row (its positions are an earlier day's snapshot)."""
    counted = ("signals", "decisions", "orders", "fills", "activities")
    return any(summary[k] for k in counted) or any(summary["reconciles"].values())


def build_parser() -> argparse.ArgumentParser:
    """Return the ``v28quant`` argument parser."""
    p = argparse.ArgumentParser(prog="v28quant", description=__doc__.splitlines()[0])
    p.add_argument("--journal", type=Path, help="journal file (default: V28_JOURNAL)")
    # also after the command (``v28quant status --journal J``), as the research commands take it
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument(
        "--journal",
        type=Path,
        default=argparse.SUPPRESS,
        help="journal file (default: V28_JOURNAL)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, what: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=what, parents=[after])

    command("status", "mode, broker, regime, positions, P&L, orders, last cycle")
    w = command("why", "the reasons on record for a symbol")
    w.add_argument("symbol")
    w.add_argument(
        "--at",
        help="ISO time, naive ones in UTC; a bare date (YYYY-MM-DD) is the end of that "
        "session, 16:00 New York (default: the latest)",
    )
    for name, what in ((HALT, "stop new orders"), (RESUME, "allow orders again")):
        c = command(name, what)
        c.add_argument("--reason", default=f"operator {name}")
    f = command(FLATTEN, "halt, cancel our orders and close every position")
    f.add_argument("--reason", default="operator flatten")
    a = command(ACCEPT, "take the venue's positions at the next reconcile (after checking them)")
    a.add_argument("--reason", required=True, help="what makes the venue's positions right")
    r = command("report", "the roll-up of one day")
    r.add_argument("--day", help="YYYY-MM-DD (default: the latest)")
    from v28quant.optimization.cli import add_subparsers as add_research_commands

    add_research_commands(sub)  # tune, walk-forward, promote
    return p


def _parsed(flag: str, parse: Callable[[str], T], what: str, text: str | None) -> T | None:
    """Return ``parse(text)`` (None without the flag); a ValueError naming ``flag`` when it fails.

    An empty value (``--day "$DAY"`` with ``DAY`` unset) fails: read as "the latest", it would
    answer for another day than the one meant.
    """
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"{flag}: not {what}: {text!r}") from None


def _check_symbol(symbol: str | None) -> None:
    """Refuse a ``why`` symbol no engine could trade (a typo is not "nothing on record").

    Raises
    ------
    ValueError
        One line naming the text given.
    """
    if symbol is not None and not symbol.replace(".", "").isalnum():
        raise ValueError(f"why: not a ticker symbol: {symbol!r}")


def _as_of(text: str) -> datetime:
    """Return ``--at``'s time: a bare date is that session's end, a naive time is UTC.

    The runner journals a day's signals and orders during the session, so midnight of the date
    would come before all of them.
    """
    from v28quant.calendar import regular_close

    try:
        return regular_close(date.fromisoformat(text))
    except ValueError:
        at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _record(journal: Journal, command: str, reason: str, path: Path) -> list[str]:
    """Journal the operator's control ``command``; return the lines saying so.

    Raises
    ------
    ValueError
        ``accept-positions`` without a reason.
    sqlite3.Error
        The journal did not store it.
    """
    if command == ACCEPT:
        request_acceptance(journal, reason, "operator", datetime.now(UTC))
        return [
            f"{ACCEPT} journaled in {path}: the runner's next pre-market reconcile takes "
            "the venue's positions as they are then"
        ]
    record_control(journal, command, reason, "operator", datetime.now(UTC))
    return [f"{command} journaled in {path}: the runner acts on it at its next cycle"]


def main(argv: list[str] | None = None) -> int:
    """Run one operator command; return the exit status (2 on a bad argument)."""
    args = build_parser().parse_args(argv)
    if hasattr(args, "handler"):  # research commands create their journal when needed
        from v28quant.optimization.cli import run_command

        return run_command(args)
    path = _journal_path(args.journal)
    if not path.is_file():
        print(_missing_journal(path), file=sys.stderr)
        return 2
    try:
        at_text, day_text = getattr(args, "at", None), getattr(args, "day", None)
        at = _parsed("--at", _as_of, "an ISO time", at_text)
        day = _parsed("--day", date.fromisoformat, "a date (YYYY-MM-DD)", day_text)
        _check_symbol(getattr(args, "symbol", None))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        journal = Journal(path, create=False)  # a control only a new file holds stops nothing
    except JournalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with journal:
        if args.command == "status":
            lines = status(journal)
        elif args.command == "why":
            lines = why(journal, args.symbol, at)
        elif args.command == "report":
            lines = report(journal, day)
        else:
            try:
                lines = _record(journal, args.command, args.reason, path)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            except sqlite3.Error as exc:  # read-only for this user, or locked past the timeout
                print(
                    f"error: {args.command} NOT journaled: journal {path} cannot be written "
                    f"({exc})",
                    file=sys.stderr,
                )
                return 2
    print("\n".join(lines))
    nothing = (
        NOTHING_ON_RECORD.format(getattr(args, "symbol", "").upper()),
        NO_SESSION.format(day),
        NOTHING_ON_DAY.format(day),
    )
    return 1 if len(lines) == 1 and lines[0] in nothing else 0


if __name__ == "__main__":
    sys.exit(main())
