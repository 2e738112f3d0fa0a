"""The risk gate and the kill switch, shared by both engines.

Every order an engine wants passes ``RiskGate.check`` before it reaches the execution service.
The checks, with their limits in ``[risk]`` of the settings file (``v28quant/defaults.toml``
documents each default):

* the kill switch: while halted no order that opens or adds to a position passes (cancels are
  not orders and stay allowed; the orders of a ``flatten`` pass, they only close). The account
  watch (``mark``) halts on the daily loss (``max_daily_loss_fraction`` of the previous
  close's equity: the venue's, else the runner's roll-up of the previous session, else the
  day's first mark) and the drawdown
  (``max_drawdown_fraction`` of the peak); the operator's resume after such a halt counts that
  limit from the equity at the next mark;
* per order: quantity (``max_order_qty``) and notional (``max_order_notional``; options at 100
  shares per contract);
* an order that only reduces a position held (a sale of shares held, no further than flat) is a
  close: it lowers risk, so no limit but the PDT rule holds it back (a winner may have grown
  past the order limits; a halt must not trap a position);
* buying power: the notional a stock order opens or adds, long or short, must fit in the
  buying power less a reserve (``buying_power_reserve_fraction`` of equity); what an order
  opening options holds must fit in the options buying power less the same reserve
  (``options_need``: a premium paid, a put's strike x 100 a contract, a multi-leg order's max
  loss at its net price); a call sold to open needs 100 shares a contract held and not behind
  another short call, else it is refused (``naked_call``); closing orders need none;
* exposure: the position after the order within ``max_position_fraction`` of equity, the gross
  exposure within ``max_gross_exposure``, at most ``max_positions`` names held (a stock and
  the options on it count as one; a multi-leg order opening legs on a new name is one more;
  a name an open order of the journal would open counts as held while the order works);
* PDT (FINRA Rule 4210 as it stood until 2026-06-04): below ``pdt_equity_threshold`` of
  equity, an order that would close a position opened the same session is a day trade (each
  leg of a multi-leg order is one); it is refused where it would take the day trades of the
  last five sessions past
  ``pdt_max_day_trades``, counting from the journal's count or the venue's
  (``Account.daytrade_count``), whichever is larger (the venue also counts trades made
  outside this journal), plus the day trades the open orders would make once filled.
  ``check_close`` applies this rule alone to the orders that only close an options structure.
  FINRA retired the pattern-day-trader rule on 2026-06-04 (Regulatory Notice 26-10: no
  day-trade count, no $25,000 minimum; an intraday margin standard instead) and Alpaca removed
  its day-trade count from the account on 2026-07-06. ``pdt_rule`` says when the rule applies:
  ``"venue"`` (the default) where the venue still counts day trades (``Account.daytrade_count``
  is reported), as a broker still on the old rule does, so the gate refuses what that venue
  would; ``"on"`` always; ``"off"`` never;
* orders per engine and cycle (``max_orders_per_cycle``);
* an options structure (``OptionsRisk``, given by the options engine with the limits of its
  ``[options]`` settings): its max loss at expiry within ``max_loss_per_structure`` (x the
  regime's risk multiplier) for defined-risk shapes, and the options book's delta, gamma, vega
  and theta after it within the Greek budget ``[options.greeks]``. An order that leaves a Greek
  outside the budget is denied unless it brings that Greek closer to zero.

``RiskGate.mark`` watches the account each cycle: equity below the previous close by more
than ``max_daily_loss_fraction``, or below its peak by more than ``max_drawdown_fraction``, halts
trading. The state lives in the journal (``decisions`` rows of engine ``"risk"``), so the
operator CLI can halt, resume and flatten without the runner running, and a restart keeps a
halt. Every denial is journaled with its reason.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from v28quant.broker.base import CONTRACT_SIZE, Account, Leg, OrderRequest, Position
from v28quant.calendar import ET, ExchangeCalendar, default_calendar
from v28quant.journal import Journal
from v28quant.occ import is_occ, parse_occ, underlying_of
from v28quant.settings import RiskLimits

log = logging.getLogger(__name__)

RISK_ENGINE = "risk"
HALT, RESUME, FLATTEN, FLATTENED, MARK, DENY = (
    "halt",
    "resume",
    "flatten",
    "flattened",
    "mark",
    "deny",
)
#: Strategy name of the orders a flatten places; they pass a halt.
FLATTEN_STRATEGY = "flatten"
#: The check that denies every new order while halted.
HALTED = "halted"
#: The buying power checks: stock (margin) and options (not marginable).
BUYING_POWER, OPTIONS_BUYING_POWER = "buying_power", "options_buying_power"
#: The loss limits a gate's halt names (``limit`` of its reasoning).
DAILY_LOSS, DRAWDOWN = "daily_loss", "drawdown"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an order may go out; ``reason`` names the failed check and its numbers."""

    allowed: bool
    check: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class GreekBudget:
    """Absolute limits on the options book's Greeks.

    Delta in shares, gamma in shares per dollar, vega in dollars per 1.00 of vol, theta in
    dollars per calendar day.
    """

    max_delta_shares: float
    max_gamma: float
    max_vega: float
    max_theta_per_day: float


class BookGreeks(NamedTuple):
    """The options book's Greeks in ``GreekBudget`` units."""

    delta: float
    gamma: float
    vega: float
    theta_per_day: float


@dataclass(frozen=True, slots=True)
class OptionsRisk:
    """What an options order does to the options book, for the gate's budget checks.

    Parameters
    ----------
    before, after : BookGreeks
        The book's Greeks now and once the order has filled.
    budget : GreekBudget
        The Greek budget in force.
    max_loss : float or None
        Largest loss at expiry of the structure the order opens, dollars over all its units;
        None where its risk is collateral instead (cash-secured puts, covered calls).
    max_loss_limit : float
        Dollars per structure.
    book_max_loss : float
        Max loss of the engine's other open defined-risk structures, dollars; with
        ``max_loss`` it is held within ``[risk] max_options_fraction`` of equity.
    """

    before: BookGreeks
    after: BookGreeks
    budget: GreekBudget
    max_loss: float | None = None
    max_loss_limit: float = math.inf
    book_max_loss: float = 0.0


def greek_excess(before: BookGreeks, after: BookGreeks, budget: GreekBudget) -> Verdict | None:
    """Return the denial of the first Greek ``after`` leaves outside ``budget``, or None.

    A Greek already outside the budget may move towards zero: only growing past the budget is
    refused.
    """
    caps = (budget.max_delta_shares, budget.max_gamma, budget.max_vega, budget.max_theta_per_day)
    for name, cap, b, a in zip(
        ("delta", "gamma", "vega", "theta"), caps, before, after, strict=True
    ):
        if abs(a) > cap and abs(a) > abs(b):
            return Verdict(
                False,
                f"greek_{name}",
                f"portfolio {name} would go from {b:.2f} to {a:.2f}, beyond the budget {cap:g}",
            )
    return None


def options_verdict(o: OptionsRisk, book_limit: float = math.inf) -> Verdict | None:
    """Return the denial of an options structure by its max loss or the Greek budget, or None.

    ``book_limit``: dollars the book's defined-risk structures may lose at most together
    (``[risk] max_options_fraction`` of equity).
    """
    if o.max_loss is not None and not o.max_loss <= o.max_loss_limit:
        return Verdict(
            False,
            "max_loss",
            f"max loss {o.max_loss:.2f} > max_loss_per_structure {o.max_loss_limit:.2f}",
        )
    if o.max_loss is not None and not o.book_max_loss + o.max_loss <= book_limit:
        return Verdict(
            False,
            "options_at_risk",
            f"options book max loss {o.book_max_loss:.2f} + {o.max_loss:.2f} > "
            f"max_options_fraction of equity {book_limit:.2f}",
        )
    return greek_excess(o.before, o.after, o.budget)


@dataclass(frozen=True, slots=True)
class HaltState:
    """The kill switch as the journal records it."""

    halted: bool
    reason: str | None = None
    since: datetime | None = None
    by: str | None = None
    flatten_pending: bool = False


def record_control(
    journal: Journal, action: str, reason: str, by: str, ts: datetime, **extra: Any
) -> None:
    """Journal a kill-switch action (``halt``, ``resume``, ``flatten``, ``flattened``)."""
    if action not in (HALT, RESUME, FLATTEN, FLATTENED):
        raise ValueError(f"action must be halt, resume, flatten or flattened, got {action!r}")
    journal.record_decision(
        f"risk-{action}-{ts.isoformat()}-{uuid.uuid4().hex[:8]}",
        RISK_ENGINE,
        "kill_switch",
        "*",
        action,
        {"reason": reason, "by": by, **extra},
        ts,
    )
    log.warning("kill switch: %s by %s: %s", action, by, reason)


def halt_state(journal: Journal) -> HaltState:
    """Return the kill-switch state: the latest ``halt``/``flatten`` against ``resume``."""
    # only the kill switch's actions: the account marks, one a cycle, are never decoded here;
    # the latest written wins (an operator's wall-clock resume would outrank a simulated halt)
    rows = journal.decisions(
        engine=RISK_ENGINE, action=(HALT, RESUME, FLATTEN, FLATTENED), as_written=True
    )
    halted, reason, since, by, pending = False, None, None, None, False
    for r in rows:
        if r["action"] in (HALT, FLATTEN):
            if not halted:
                since = r["ts"]
            halted, reason, by = True, r["reasoning"].get("reason"), r["reasoning"].get("by")
        if r["action"] == FLATTEN:
            pending = True
        elif r["action"] == FLATTENED:
            pending = False
        elif r["action"] == RESUME:
            halted, reason, since, by, pending = False, None, None, None, False
    return HaltState(halted, reason, since, by, pending)


def _day_start(account: Account, rolled_up: Decimal | None) -> Decimal:
    """Return the equity the day's loss counts from: the previous close where it is known.

    The venue's previous-close equity (Alpaca's ``last_equity``) counts an overnight gap and
    the losses of a session the runner joined late. A venue that reports none (the simulated
    exchange) has the runner's own roll-up of the previous session, ``rolled_up``: the equity
    the end-of-day line gave. Without either, the equity at the day's first mark.
    """
    last = account.last_equity
    if last is not None and last > 0:
        return last
    return rolled_up if rolled_up is not None and rolled_up > 0 else Decimal(account.equity)


def _last_resume(journal: Journal) -> tuple[str | None, set[str]]:
    """Return the last resume's decision id and the loss limits whose halts it lifted."""
    rows = journal.decisions(engine=RISK_ENGINE, action=(HALT, RESUME), as_written=True)
    resume, lifted, since_resume = None, set(), set()
    for r in rows:
        if r["action"] == HALT:
            limit = r["reasoning"].get("limit")
            if limit is not None:
                since_resume.add(str(limit))
        else:
            resume, lifted, since_resume = str(r["decision_id"]), since_resume, set()
    return resume, lifted


def day_trades(fills: Iterable[Mapping[str, Any]], sessions: set[Any]) -> int:
    """Count the day trades among ``fills`` on the given sessions.

    Per session and symbol, one when the same session holds both a buy and a sell (FINRA's
    count of round trips, simplified to one per symbol and day).
    """
    sides: dict[tuple[Any, str], set[str]] = {}
    for f in fills:
        day = f["ts"].astimezone(ET).date()
        if day in sessions:
            sides.setdefault((day, str(f["symbol"])), set()).add(str(f["side"]))
    return sum(1 for s in sides.values() if {"buy", "sell"} <= s)


@dataclass
class _Marks:
    day: Any = None
    day_start: Decimal | None = None
    peak: Decimal | None = None
    resume: str | None = None  # the operator's resume the loss limits count from
    orders: dict[tuple[str, datetime], int] = field(default_factory=dict)


class RiskGate:
    """Pre-trade checks and the kill switch (see the module docstring).

    Parameters
    ----------
    limits : RiskLimits
        ``settings.risk``.
    journal : Journal
        Where denials, marks and kill-switch actions are recorded and read back.
    calendar : ExchangeCalendar, optional
        Sessions for the PDT window (default: the shared NYSE calendar).
    """

    def __init__(
        self, limits: RiskLimits, journal: Journal, calendar: ExchangeCalendar | None = None
    ) -> None:
        self.limits = limits
        self.journal = journal
        self.calendar = calendar or default_calendar()
        self._m = _Marks()
        marks = journal.decisions(engine=RISK_ENGINE, action=MARK, as_written=True)
        if marks:  # each mark carries the peak it was measured against
            last = marks[-1]["reasoning"]
            self._m.peak = Decimal(str(last.get("peak", last["equity"])))
            self._m.resume = last.get("resume")

    # -- the account watch ------------------------------------------------------------------

    def state(self) -> HaltState:
        """Return the kill switch as journaled now."""
        return halt_state(self.journal)

    def mark(self, account: Account, now: datetime) -> HaltState:
        """Record equity, update the session start and the peak, halt on a loss-limit breach."""
        equity = Decimal(account.equity)
        day = now.astimezone(ET).date()
        if self._m.day != day:
            start = datetime.combine(day, time(0), ET)
            today = self.journal.decisions(engine=RISK_ENGINE, action=MARK, since=start)
            first = (
                Decimal(str(today[-1]["reasoning"]["day_start"]))
                if today
                else _day_start(account, self._previous_close(day))
            )
            self._m.day, self._m.day_start, self._m.orders = day, first, {}
        self._m.peak = equity if self._m.peak is None else max(self._m.peak, equity)
        self._rebase_on_resume(equity)
        start_eq, peak = self._m.day_start or equity, self._m.peak
        self.journal.record_decision(
            f"risk-mark-{now.isoformat()}",
            RISK_ENGINE,
            "watch",
            "*",
            MARK,
            {
                "equity": str(equity),
                "day_start": str(start_eq),
                "peak": str(peak),
                **({"resume": self._m.resume} if self._m.resume else {}),
            },
            now,
        )
        state = self.state()
        if state.halted:
            return state
        lim = self.limits
        loss = (start_eq - equity) / start_eq if start_eq > 0 else Decimal(0)
        dd = (peak - equity) / peak if peak > 0 else Decimal(0)
        if loss > Decimal(str(lim.max_daily_loss_fraction)):
            why = f"daily loss {loss:.2%} > max_daily_loss_fraction {lim.max_daily_loss_fraction}"
            record_control(
                self.journal, HALT, why, "risk_gate", now, equity=str(equity), limit=DAILY_LOSS
            )
        elif dd > Decimal(str(lim.max_drawdown_fraction)):
            why = f"drawdown {dd:.2%} > max_drawdown_fraction {lim.max_drawdown_fraction}"
            record_control(
                self.journal, HALT, why, "risk_gate", now, equity=str(equity), limit=DRAWDOWN
            )
        return self.state()

    def _previous_close(self, day: date) -> Decimal | None:
        """Return the equity of the runner's end-of-day roll-up of the session before ``day``."""
        try:
            before = self.calendar.previous_session(day)
        except ValueError:  # outside the calendar's range: no session known before
            return None
        rows = self.journal.decisions(
            engine="runner", action="end_of_day", since=self.calendar.windows(before).session.close
        )
        equity = [r["reasoning"]["equity"] for r in rows if r["reasoning"]["day"] == str(before)]
        return Decimal(str(equity[-1])) if equity else None

    def _rebase_on_resume(self, equity: Decimal) -> None:
        """Count a tripped loss limit from ``equity`` once the operator has resumed.

        A resume after the gate's daily-loss halt would otherwise be undone by the next mark,
        which measures the same loss against the same day start (and a drawdown halt against
        the same peak): the operator could never trade again that day, or ever. Only the limits
        whose halts the resume lifted are re-based; a resume after an operator's own halt
        changes neither. Each mark journals the resume it counts from, so a restart, or a
        resume written while the runner was down, is applied exactly once.
        """
        resume, lifted = _last_resume(self.journal)
        if resume is None or resume == self._m.resume:
            return
        self._m.resume = resume
        if DAILY_LOSS in lifted:
            self._m.day_start = equity
        if DRAWDOWN in lifted:
            self._m.peak = equity
        if lifted:
            log.warning("risk: resumed; %s now counted from equity %s", sorted(lifted), equity)

    # -- the order check --------------------------------------------------------------------

    def check(
        self,
        request: OrderRequest,
        price: Decimal,
        account: Account,
        positions: Iterable[Position],
        now: datetime,
        *,
        cycle: datetime | None = None,
        options: OptionsRisk | None = None,
    ) -> Verdict:
        """Check one order; a denial is journaled (``decisions`` action ``deny``) and logged.

        Parameters
        ----------
        request : OrderRequest
            The order as it would be sent.
        price : Decimal
            Its expected price per share or per contract share (limit, or the quote); for a
            multi-leg order the net per unit, debit > 0, credit < 0 (its options buying power
            is the max loss at that net).
        account, positions
            The broker's view now.
        now : datetime
            Data time (the simulated clock in backtests).
        cycle : datetime, optional
            The cycle it belongs to, for ``max_orders_per_cycle`` (default ``now``).
        options : OptionsRisk, optional
            For an order opening an options structure: its max loss and the book's Greeks.
        """
        key = (request.owner.engine, cycle or now)
        done = self._m.orders.get(key, 0)
        verdict = self._verdict(request, Decimal(price), account, list(positions), now, done)
        if verdict.allowed and options is not None:
            cap = float(Decimal(account.equity)) * self.limits.max_options_fraction
            verdict = options_verdict(options, cap) or verdict
        if verdict.allowed:
            self._m.orders[key] = self._m.orders.get(key, 0) + 1
            return verdict
        self._deny(request, verdict, now, options)
        return verdict

    def check_close(
        self, request: OrderRequest, account: Account, now: datetime, *, must_close: bool = False
    ) -> Verdict:
        """Check an order that only closes (an options structure's exit) against PDT alone.

        A close reduces risk: the kill switch, the per-cycle count and the exposure limits
        never hold one back. Only the PDT rule may, as it would at Alpaca, which refuses a
        day trade past the limit for an account under the threshold. ``must_close``: the
        position cannot be held to the next session (it expires today); a day trade is then
        the lesser harm than exercise or assignment, so the close passes and the warning is
        logged. A denial is journaled like any other.
        """
        verdict = self._pdt(_closing_legs(request), account, now)
        if verdict is None:
            return Verdict(True)
        if must_close:
            log.warning(
                "risk: %s passes though %s: it must close", request.client_order_id, verdict.reason
            )
            return Verdict(True, verdict.check, f"must close; {verdict.reason}")
        self._deny(request, verdict, now, None)
        return verdict

    def denial_summary(self, engine: str, since: datetime) -> str | None:
        """Return one line on ``engine``'s denials journaled at or after ``since``, or None.

        ``equity: 3 orders denied by the risk gate: max_positions (AAPL, MSFT), order_notional
        (JPM)``. The denials of a halt are left out: the kill switch has its own notices. No
        number from the reasons enters the line and its checks and names are sorted, so the
        same denials cycle after cycle give the same text (which the notifier holds back).
        """
        names: dict[str, set[str]] = {}
        count = 0
        for row in self.journal.decisions(engine=engine, action=DENY, since=since):
            check = str(row["reasoning"].get("check"))
            if check != HALTED:
                names.setdefault(check, set()).add(_denied_name(row))
                count += 1
        if not count:
            return None
        checks = ", ".join(f"{c} ({', '.join(sorted(n))})" for c, n in sorted(names.items()))
        orders = "1 order" if count == 1 else f"{count} orders"
        return f"{engine}: {orders} denied by the risk gate: {checks}"

    def _deny(
        self, request: OrderRequest, verdict: Verdict, now: datetime, options: OptionsRisk | None
    ) -> None:
        """Journal and log a denial with its reason."""
        # a multi-leg order under its underlying, where the operator's ``why`` looks
        symbol = request.symbol or underlying_of(request.legs[0].occ_symbol)
        self.journal.record_decision(
            f"{request.client_order_id}-deny-{now.isoformat()}",
            request.owner.engine,
            request.owner.strategy,
            symbol,
            DENY,
            {
                "check": verdict.check,
                "reason": verdict.reason,
                "request": request.to_dict(),
                **({} if options is None else {"options": _options_record(options)}),
            },
            now,
        )
        log.warning(
            "risk: %s %s %s %s denied: %s",
            request.owner.engine,
            request.side or request.owner.strategy,
            request.qty,
            symbol,
            verdict.reason,
            extra={"check": verdict.check, "client_order_id": request.client_order_id},
        )

    def _verdict(
        self,
        req: OrderRequest,
        price: Decimal,
        account: Account,
        positions: list[Position],
        now: datetime,
        done: int,
    ) -> Verdict:
        lim = self.limits
        closing_only = req.owner.strategy == FLATTEN_STRATEGY
        held = {p.symbol: p for p in positions}
        now_qty = held[req.symbol].qty if req.symbol in held else Decimal(0)
        if req.kind != "mleg" and _only_reduces(req, now_qty):
            # a close lowers risk (a winner may have outgrown the order limits): as for
            # ``check_close``, only the PDT rule may hold it back
            pdt = (
                None
                if closing_only
                else self._pdt([(str(req.symbol), str(req.side))], account, now)
            )
            return pdt or Verdict(True)
        state = self.state()
        if state.halted and not closing_only:
            return Verdict(False, HALTED, f"trading halted ({state.reason})")
        if done >= lim.max_orders_per_cycle and not closing_only:
            return Verdict(False, "orders_per_cycle", f"{done} orders this cycle already")
        if req.qty > lim.max_order_qty:
            return Verdict(False, "order_qty", f"qty {req.qty} > max_order_qty {lim.max_order_qty}")
        mult = Decimal(1) if req.kind == "equity" else CONTRACT_SIZE
        notional = abs(price) * req.qty * mult
        if notional > Decimal(str(lim.max_order_notional)):
            return Verdict(
                False,
                "order_notional",
                f"notional {notional:.2f} > max_order_notional {lim.max_order_notional}",
            )
        if req.kind == "mleg" or req.symbol is None:  # a roll closes its old legs
            if closing_only:
                return Verdict(True)
            opens = _opens(req)
            refused = self._new_name_refusal(req, held) if opens else None
            unfunded = self._options_funding(req, price, account, held) if opens else None
            closing = _closing_legs(req)
            pdt = self._pdt(closing, account, now) if closing else None
            return refused or unfunded or pdt or Verdict(True)
        if closing_only:
            return Verdict(True)
        # opens or adds to a position, or turns one around (its close may be a day trade)
        after = now_qty + (req.qty if req.side == "buy" else -req.qty)
        equity = Decimal(account.equity)
        verdict = self._exposure(req, price, mult, after, now_qty, equity, account, held)
        if verdict is None and now_qty != 0 and after * now_qty < 0:
            verdict = self._pdt([(req.symbol, str(req.side))], account, now)
        return verdict or Verdict(True)

    def _exposure(
        self,
        req: OrderRequest,
        price: Decimal,
        mult: Decimal,
        after: Decimal,
        now_qty: Decimal,
        equity: Decimal,
        account: Account,
        held: Mapping[str, Position],
    ) -> Verdict | None:
        lim = self.limits
        added = abs(after - now_qty) * abs(price) * mult
        if req.kind == "equity":
            # a short sale takes buying power as a buy does (margin on the shares borrowed)
            unfunded = self._short_of(added, Decimal(account.buying_power), equity, BUYING_POWER)
        else:
            unfunded = self._options_funding(req, price, account, held)
        if unfunded is not None:
            return unfunded
        if equity <= 0:
            return Verdict(False, "equity", f"account equity {equity} <= 0")
        frac = abs(after) * abs(price) * mult / equity
        if frac > Decimal(str(lim.max_position_fraction)):
            return Verdict(
                False,
                "position_fraction",
                f"position {frac:.2%} of equity > max_position_fraction "
                f"{lim.max_position_fraction}",
            )
        gross = sum((abs(p.market_value or Decimal(0)) for p in held.values()), Decimal(0))
        gross += added
        if gross / equity > Decimal(str(lim.max_gross_exposure)):
            return Verdict(
                False,
                "gross_exposure",
                f"gross {gross / equity:.2f}x equity > max_gross_exposure {lim.max_gross_exposure}",
            )
        return self._new_name_refusal(req, held)

    def _short_of(
        self, need: Decimal, power: Decimal, equity: Decimal, check: str
    ) -> Verdict | None:
        """Return the ``check`` denial when ``need`` passes ``power`` less the reserve, or None."""
        reserve = equity * Decimal(str(self.limits.buying_power_reserve_fraction))
        if need > 0 and need > power - reserve:
            return Verdict(
                False,
                check,
                f"needs {need:.2f}, {check.replace('_', ' ')} {power} less reserve {reserve:.2f}",
            )
        return None

    def _options_funding(
        self, req: OrderRequest, price: Decimal, account: Account, held: Mapping[str, Position]
    ) -> Verdict | None:
        """Return the denial of an order opening options the account cannot back, or None.

        Options are not marginable: what the order holds (``options_need``) comes out of the
        options buying power less the reserve, as at Alpaca.
        """
        need = options_need(req, price, held)
        if isinstance(need, Verdict):
            return need
        power = Decimal(account.options_buying_power)
        return self._short_of(need, power, Decimal(account.equity), OPTIONS_BUYING_POWER)

    def _new_name_refusal(self, req: OrderRequest, held: Mapping[str, Position]) -> Verdict | None:
        """Return the ``max_positions`` denial of ``req`` when it opens a name not held, or None.

        Names, not legs: an iron condor's four legs and the stock under it are one position. A
        name an order still working would open counts as held: the venue shows no position
        until it fills, and each cycle would otherwise open one more name beside it.
        """
        names = {underlying_of(s) for s, p in held.items() if p.qty != 0}
        symbol = req.symbol if req.symbol is not None else req.legs[0].occ_symbol
        if underlying_of(symbol) in names:
            return None
        names |= self._working_names()
        if underlying_of(symbol) in names or len(names) < self.limits.max_positions:
            return None
        return Verdict(
            False,
            "max_positions",
            f"{len(names)} names held or being opened by working orders = max_positions (a "
            "stock and its options are one)",
        )

    def _working_names(self) -> set[str]:
        """Return the names the journal's open orders open or add to once filled."""
        rows = (o["request"] for o in self.journal.open_orders() if o["request"])
        return {underlying_of(symbol) for r in rows for symbol in _opening_symbols(r)}

    def _pdt(
        self, closing: Sequence[tuple[str, str]], account: Account, now: datetime
    ) -> Verdict | None:
        """Return the PDT denial of an order closing ``closing`` ((symbol, side) pairs), or None.

        Day trades so far: the larger of the journal's count and the venue's.
        """
        lim = self.limits
        if not _pdt_applies(lim.pdt_rule, account):
            return None
        equity = Decimal(account.equity)
        if equity >= Decimal(str(lim.pdt_equity_threshold)):
            return None
        today = now.astimezone(ET).date()
        since = datetime.combine(today - timedelta(days=10), time(0), ET)
        fills = self.journal.fills(since=since)
        opened = _filled_on(fills, today)
        added = _day_trade_symbols(closing, opened)
        if not added:
            return None
        last5 = set(self.calendar.sessions(today - timedelta(days=9), today)[-5:])
        journaled = day_trades(fills, last5)
        # orders sent but not filled yet: neither the journal's fills nor the venue count them
        working = self._working_day_trades(opened) - _both_sides(opened) - added
        count = max(journaled, account.daytrade_count or 0) + len(working)
        if count + len(added) > lim.pdt_max_day_trades:
            return Verdict(
                False,
                "pdt",
                f"would be day trade {count + len(added)} in five sessions (journal "
                f"{journaled}, venue {account.daytrade_count}, working {len(working)}, this "
                f"order {len(added)}) with equity {equity:.2f} < pdt_equity_threshold "
                f"{lim.pdt_equity_threshold}",
            )
        return None

    def _working_day_trades(self, opened: set[tuple[str, str]]) -> set[str]:
        """Return the symbols the open orders would day trade (their opposite filled today)."""
        parts = (_request_parts(o["request"]) for o in self.journal.open_orders() if o["request"])
        return {symbol for p in parts for symbol in _day_trade_symbols(p, opened)}


def options_need(
    req: OrderRequest, price: Decimal, held: Mapping[str, Position]
) -> Decimal | Verdict:
    """Return the options buying power an order opening options holds, or its denial.

    What the execution service reserves for it (``Structure.collateral``,
    ``execution.claims.spend_of``) and Alpaca holds:

    * a single leg bought: its premium; a put sold to open: strike x 100 a contract (the
      premium received is not counted); a call sold to open: nothing where 100 long shares a
      contract, not already behind another short call, cover it, else it is refused (naked);
    * a multi-leg order: its max loss at expiry at the net ``price`` per unit (debit > 0): a
      debit spread its debit, a credit spread or iron condor its width x 100 less the credit.
      Only the legs it opens count: a roll's closing legs free their collateral once filled,
      as the execution service frees their reservation, and the calls they buy back free
      their shares' cover at once. A long leg expiring before a short one counts for nothing:
      a short far call over a long near call is a call sold uncovered.
    """
    legs = req.legs or (Leg(str(req.symbol), 1, req.side or "buy", req.intent or "buy_to_open"),)
    opening = _at_last_expiry([_payoff_leg(g) for g in legs if str(g.intent).endswith("_to_open")])
    short_calls = max(-sum((n for call, _, n in opening if call), Decimal(0)), Decimal(0))
    if short_calls:
        underlying = underlying_of(legs[0].occ_symbol)
        lots = _free_share_lots(underlying, held, _closing_call_contracts(req))
        if short_calls * req.qty > lots:
            return Verdict(
                False,
                "naked_call",
                f"{short_calls * req.qty} calls sold to open on {underlying}: {lots} lots of "
                "100 shares free to cover them (uncovered calls are not traded)",
            )
    loss = _expiry_loss(opening, short_calls)
    if req.kind == "mleg":
        net = loss + price * CONTRACT_SIZE
    else:
        net = loss + (abs(price) * CONTRACT_SIZE if req.side == "buy" else Decimal(0))
    return max(net, Decimal(0)) * req.qty


def held_legs_need(legs: Mapping[str, int]) -> Decimal | None:
    """Return the options buying power held ``legs`` (signed contracts per unit) hold per unit.

    Their largest loss at expiry, premiums aside (paid or received already), as ``options_need``
    counts it: nothing for long legs alone, strike x 100 for a lone short put, the width x 100
    for a vertical. None where calls are net short: no amount backs an uncovered call.
    """
    occs = [(parse_occ(s), q) for s, q in legs.items()]
    payoff = _at_last_expiry([(o.call, o.strike, Decimal(q), o.expiry) for o, q in occs])
    if sum((n for call, _, n in payoff if call), Decimal(0)) < 0:
        return None
    return _expiry_loss(payoff, Decimal(0))


def _payoff_leg(g: Leg) -> tuple[bool, Decimal, Decimal, date]:
    """Return (call, strike, signed contracts per unit, expiry) of one leg."""
    occ = parse_occ(g.occ_symbol)
    return occ.call, occ.strike, Decimal(g.ratio if g.side == "buy" else -g.ratio), occ.expiry


def _at_last_expiry(
    legs: Sequence[tuple[bool, Decimal, Decimal, date]],
) -> list[tuple[bool, Decimal, Decimal]]:
    """Return (call, strike, signed contracts) of the legs still there at the last short's expiry.

    A long leg expiring before a short one covers nothing after it: a short far call over a
    long near call is a naked call from the near expiry on. Dropping it only asks more.
    """
    last = max((e for _, _, n, e in legs if n < 0), default=None)
    return [(c, k, n) for c, k, n, e in legs if n < 0 or last is None or e >= last]


def _expiry_loss(legs: Sequence[tuple[bool, Decimal, Decimal]], lots: Decimal) -> Decimal:
    """Return the largest loss at expiry of ``legs`` per unit, premiums aside, in dollars.

    ``lots``: 100-share lots covering short calls (their value at expiry counts, as a call
    struck at 0). The payoff is linear between strikes and the caller leaves no net short call
    uncovered, so its minimum is at 0 or at a strike.
    """

    def value(spot: Decimal) -> Decimal:
        intrinsic = (
            max(spot - k, Decimal(0)) if call else max(k - spot, Decimal(0)) for call, k, _ in legs
        )
        return sum((n * v for (_, _, n), v in zip(legs, intrinsic, strict=True)), lots * spot)

    worst = min(value(s) for s in {Decimal(0), *(k for _, k, _ in legs)})
    return max(-worst, Decimal(0)) * CONTRACT_SIZE


def _closing_call_contracts(req: OrderRequest) -> Decimal:
    """Return the signed call contracts ``req`` closes (buying back a short call: > 0)."""
    return sum(
        (
            Decimal(g.ratio) * req.qty * (1 if g.side == "buy" else -1)
            for g in req.legs
            if str(g.intent).endswith("_to_close") and parse_occ(g.occ_symbol).call
        ),
        Decimal(0),
    )


def _free_share_lots(
    underlying: str, held: Mapping[str, Position], closed_calls: Decimal
) -> Decimal:
    """Return the 100-share lots of ``underlying`` held that no short call already needs.

    Short calls are netted against long calls on the same underlying (a spread's short call is
    covered by its long call); ``closed_calls`` are those the order itself buys back.
    """
    shares = held[underlying].qty if underlying in held else Decimal(0)
    calls = closed_calls + sum(
        (p.qty for s, p in held.items() if is_occ(s) and _is_call_on(s, underlying)), Decimal(0)
    )
    return max(shares // CONTRACT_SIZE, Decimal(0)) - max(-calls, Decimal(0))


def _is_call_on(symbol: str, underlying: str) -> bool:
    occ = parse_occ(symbol)
    return occ.call and occ.underlying == underlying


def _opening_symbols(request: Mapping[str, Any]) -> list[str]:
    """Return the symbols a journaled order request opens or adds to.

    An option leg by its intent; a stock order whatever its side (the equity engine's carry no
    intent; a sale of shares held names a name held already).
    """
    legs = request.get("legs") or [request]
    return [
        str(g.get("occ_symbol") or g["symbol"])
        for g in legs
        if (g.get("occ_symbol") or g.get("symbol"))
        and not str(g.get("intent")).endswith("_to_close")
    ]


def _opens(req: OrderRequest) -> bool:
    """Whether a multi-leg ``req`` opens any leg (a roll's new legs, a new structure)."""
    return any(str(g.intent).endswith("_to_open") for g in req.legs)


def _only_reduces(req: OrderRequest, held_qty: Decimal) -> bool:
    """Whether ``req`` trades against the ``held_qty`` held, no further than flat."""
    signed = req.qty if req.side == "buy" else -req.qty
    return held_qty * signed < 0 and abs(signed) <= abs(held_qty)


def _pdt_applies(rule: str, account: Account) -> bool:
    """Whether the pattern-day-trader rule holds for ``account`` under ``[risk] pdt_rule``.

    ``"venue"``: where the venue reports a day-trade count, i.e. it still enforces the rule
    (Alpaca dropped the count when FINRA retired the rule in 2026; the simulated exchange
    reports none).
    """
    if rule == "venue":
        return account.daytrade_count is not None
    return rule == "on"


def _denied_name(row: Mapping[str, Any]) -> str:
    """Return what a denial row was about: its symbol, or a multi-leg order's underlying."""
    legs = row["reasoning"].get("request", {}).get("legs") or []
    return underlying_of(legs[0]["occ_symbol"]) if legs else str(row["symbol"])


def _filled_on(fills: Iterable[Mapping[str, Any]], day: date) -> set[tuple[str, str]]:
    """Return the (symbol, side) pairs ``fills`` hold on ``day`` (New York time)."""
    return {
        (str(f["symbol"]), str(f["side"])) for f in fills if f["ts"].astimezone(ET).date() == day
    }


def _both_sides(opened: set[tuple[str, str]]) -> set[str]:
    """Return the symbols already bought and sold: day trades the fills count already."""
    return {symbol for symbol, side in opened if side == "buy" and (symbol, "sell") in opened}


def _day_trade_symbols(
    closing: Iterable[tuple[str, str]], opened: set[tuple[str, str]]
) -> set[str]:
    """Return the symbols ``closing`` ((symbol, side) pairs) trades against a fill of the day.

    Each leg of a multi-leg close is its own security, so its own day trade, as ``day_trades``
    counts them afterwards.
    """
    return {symbol for symbol, side in closing if (symbol, _opposite(side)) in opened}


def _opposite(side: str) -> str:
    return "sell" if side == "buy" else "buy"


def _request_parts(request: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (symbol, side) of what a journaled order request may close.

    A multi-leg order's closing legs (by intent); a single order whatever its intent, as the
    equity engine's orders carry none.
    """
    legs = request.get("legs") or []
    if legs:
        return [
            (str(g["occ_symbol"]), str(g["side"]))
            for g in legs
            if str(g["intent"]).endswith("_to_close")
        ]
    return [(str(request["symbol"]), str(request["side"]))] if request.get("symbol") else []


def _closing_legs(req: OrderRequest) -> list[tuple[str, str]]:
    """Return (symbol, side) of each part of ``req`` that closes a position (by its intent)."""
    if req.legs:
        return [(g.occ_symbol, g.side) for g in req.legs if str(g.intent).endswith("_to_close")]
    if req.symbol is not None and str(req.intent).endswith("_to_close"):
        return [(req.symbol, str(req.side))]
    return []


def _options_record(o: OptionsRisk) -> dict[str, Any]:
    """Return an ``OptionsRisk`` as JSON-ready numbers for a denial's journal row."""
    return {
        "before": {k: round(v, 4) for k, v in o.before._asdict().items()},
        "after": {k: round(v, 4) for k, v in o.after._asdict().items()},
        "budget": {
            "delta": o.budget.max_delta_shares,
            "gamma": o.budget.max_gamma,
            "vega": o.budget.max_vega,
            "theta_per_day": o.budget.max_theta_per_day,
        },
        "max_loss": None if o.max_loss is None else round(o.max_loss, 2),
        "max_loss_limit": None if math.isinf(o.max_loss_limit) else round(o.max_loss_limit, 2),
        "book_max_loss": round(o.book_max_loss, 2),
    }
