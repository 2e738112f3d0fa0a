"""Performance metrics of a run from its daily equity curve and its fills.

Conventions: daily simple returns ``r_t = E_t / E_{t-1} - 1`` with ``E_0`` the starting equity;
252 sessions a year; risk-free rate 0 (the Sharpe and Sortino ratios are of raw returns).

* Sharpe: ``mean(r) / std(r, ddof=1) * sqrt(252)``.
* Sortino: ``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(252)`` (target 0, all periods in the
  downside deviation; Sortino and Price 1994).
* Max drawdown: ``max_t (1 - E_t / max_{s<=t} E_s)``, the starting equity included.
* Turnover: traded notional / mean equity (and per year); an option fill's notional is its
  premium x 100 shares a contract.
* Hit rate: share of closed round trips with a positive P&L. Round trips pair fills first in,
  first out per engine and symbol (the engine read from the client order id ``v28-<engine>-``;
  :mod:`v28quant.round_trips`, as the allocator and the learner pair them), so the stock an
  assignment delivered to the options engine never closes an equity-engine lot; the legs of a
  structure opened and closed by one order each are one trip. An option's assignment or exercise
  closes it like a fill of the options engine: at its intrinsic value on the underlying's close
  (its expiry: at zero), the stock the settlement moves at that close too (the same cash as
  stock at the strike), so a structure that expires or is assigned ends its trip with its whole
  P&L, and the wheel's shares are the options engine's lots. The operator's flatten (engine
  ``risk``) and fills without a v28 order id close the lots of whichever engine holds the
  symbol, oldest first across engines; what they open (and shares the operator accepted) no
  engine chose, and an engine's trade closes it before its own lots.
* Deflated Sharpe ratio (Bailey and Lopez de Prado 2014, eq. 2 and the expected maximum
  Sharpe of N trials): the probability that the true per-period Sharpe exceeds
  ``SR_0 = sqrt(V) ((1 - g) Z^{-1}(1 - 1/N) + g Z^{-1}(1 - 1/(N e)))``, ``g`` the
  Euler-Mascheroni constant, ``V`` the variance of the Sharpe estimator
  ``(1 - skew SR + (kurt - 1) / 4 SR^2) / (T - 1)`` (Mertens 2002) standing in for the variance
  across trials; with one trial ``SR_0 = 0`` and it is the probabilistic Sharpe ratio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from scipy import stats

from v28quant.occ import is_occ, multiplier
from v28quant.round_trips import Lot, Pairing, journal_trades, pair_trades, trade_engine
from v28quant.sharpe import EULER_GAMMA as EULER_GAMMA  # re-exported: the DSR docstring's g
from v28quant.sharpe import TRADING_DAYS, expected_max_sharpe


def daily_returns(equity: Sequence[float], initial: float) -> np.ndarray:
    """Return simple daily returns of ``equity`` with ``initial`` as the equity before day one."""
    e = np.asarray([initial, *equity], dtype=float)
    out: np.ndarray = e[1:] / e[:-1] - 1.0
    return out


def sharpe(r: np.ndarray) -> float:
    """Return the annualised Sharpe ratio of daily returns (NaN with < 2 returns or no spread)."""
    if len(r) < 2 or np.std(r, ddof=1) == 0:
        return math.nan
    return float(np.mean(r) / np.std(r, ddof=1) * math.sqrt(TRADING_DAYS))


def sortino(r: np.ndarray) -> float:
    """Return the annualised Sortino ratio (target 0) of daily returns.

    NaN with < 2 returns (as the Sharpe ratio: one day is no sample) or without losses.
    """
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) if len(r) >= 2 else 0.0
    if downside == 0:
        return math.nan
    return float(np.mean(r) / downside * math.sqrt(TRADING_DAYS))


def max_drawdown(equity: Sequence[float], initial: float) -> float:
    """Return the largest peak-to-trough loss as a fraction of the peak (0 when none)."""
    e = np.asarray([initial, *equity], dtype=float)
    peaks = np.maximum.accumulate(e)
    return float(np.max(1.0 - e / peaks))


def deflated_sharpe(r: np.ndarray, trials: int) -> dict[str, float]:
    """Return the deflated Sharpe ratio of daily returns ``r`` after ``trials`` trials.

    Returns
    -------
    dict
        ``value`` (a probability), ``sr`` (per period), ``sr0`` (the hurdle), ``trials``,
        ``skew``, ``kurtosis`` (non-excess), ``n``.
    """
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    n = len(r)
    if n < 3 or np.std(r, ddof=1) == 0:
        return {"value": math.nan, "sr": math.nan, "sr0": math.nan, "trials": trials, "n": n}
    sr = float(np.mean(r) / np.std(r, ddof=1))
    skew = float(stats.skew(r, bias=False))
    kurt = float(stats.kurtosis(r, fisher=False, bias=False))
    var_sr = max((1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2) / (n - 1), 1e-12)
    if math.isfinite(var_sr):
        sr0 = expected_max_sharpe(trials, var_sr)  # 0 for one trial: the probabilistic Sharpe
    else:  # non-finite returns: the hurdle is as undefined as the ratio
        sr0 = 0.0 if trials == 1 else math.nan
    value = float(stats.norm.cdf((sr - sr0) / math.sqrt(var_sr)))
    return {
        "value": value,
        "sr": sr,
        "sr0": sr0,
        "trials": trials,
        "skew": skew,
        "kurtosis": kurt,
        "n": n,
    }


def round_trips(fills: Iterable[Mapping[str, Any]]) -> list[float]:
    """Return the dollar P&L of each closed round trip of ``fills`` (``pair_trades``)."""
    return [float(t.pnl) for t in pair_trades(fills).trips]


def engine_pnl(
    pairing: Pairing,
    fills: Iterable[Mapping[str, Any]],
    *,
    commission_per_share: float,
    marks: Mapping[str, Any] | None,
) -> dict[str, dict[str, Any]]:
    """Return each engine's dollar P&L: realised, unrealised, commission and net.

    Per engine (``trade_engine``): ``realised_pnl`` of its closed round trips, their number and
    ``hit_rate``, the ``commission`` its fills paid, ``unrealised_pnl`` of the lots it holds
    at ``marks`` (the prices the closing equity used; NaN where a held symbol has none), its
    ``open_positions`` (symbol -> signed units) and ``net_pnl`` = realised + unrealised -
    commission. Slippage and spread are in the fill prices, so the engines' net P&L adds up
    to the account's equity change.
    """
    per_share = Decimal(str(commission_per_share))
    commission: dict[str, Decimal] = {}
    for f in fills:
        if not is_occ(str(f["symbol"])):  # the simulated exchange charges no option commission
            engine = trade_engine(f)
            shares = abs(Decimal(str(f["qty"])))
            commission[engine] = commission.get(engine, Decimal(0)) + shares * per_share
    trips: dict[str, list[Decimal]] = {}
    for t in pairing.trips:
        trips.setdefault(t.engine, []).append(t.pnl)
    unrealised: dict[str, float] = {}
    held: dict[str, dict[str, float]] = {}
    for (engine, sym), lots in pairing.lots.items():
        qty = sum((lot.qty for lot in lots), Decimal(0))
        held.setdefault(engine, {})[sym] = float(qty)
        mark = None if marks is None else marks.get(sym)
        value = math.nan if mark is None else float(_lots_pnl(lots, Decimal(str(mark)), sym))
        unrealised[engine] = unrealised.get(engine, 0.0) + value
    out = {}
    for engine in sorted({*commission, *trips, *unrealised}):
        pnl = trips.get(engine, [])
        realised, paid = float(sum(pnl, Decimal(0))), float(commission.get(engine, Decimal(0)))
        open_pnl = unrealised.get(engine, 0.0)
        out[engine] = {
            "realised_pnl": realised,
            "round_trips": len(pnl),
            "hit_rate": sum(1 for x in pnl if x > 0) / len(pnl) if pnl else math.nan,
            "commission": paid,
            "unrealised_pnl": open_pnl,
            "open_positions": held.get(engine, {}),
            "net_pnl": realised + open_pnl - paid,
        }
    return out


def _lots_pnl(lots: Iterable[Lot], mark: Decimal, symbol: str) -> Decimal:
    """Return the P&L of open ``lots`` of ``symbol`` marked at ``mark``."""
    return sum((lot.qty * (mark - lot.price) for lot in lots), Decimal(0)) * multiplier(symbol)


def _paid(fill: Mapping[str, Any], cost: str, estimate: float) -> float:
    """Return the dollars ``fill`` paid in ``cost``, or ``estimate`` where none was recorded."""
    paid = fill.get(cost)
    return estimate if paid is None else float(paid)


def compute_metrics(
    equity: Sequence[float],
    initial: float,
    fills: Sequence[Mapping[str, Any]],
    *,
    trials: int,
    commission_per_share: float,
    slippage_bps: float,
    spread_bps: float,
    settlements: Sequence[Mapping[str, Any]] = (),
    marks: Mapping[str, Any] | None = None,
    splits: Sequence[Mapping[str, Any]] = (),
    transfers: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Return every metric of the module docstring for one run.

    Costs are those the simulated exchange charges: the commission per share of stock (its
    option commission is zero), the slippage each fill paid and half the quoted spread each
    stock fill paid (a fill's ``slippage`` and ``half_spread`` in dollars, as the simulated
    exchange records them: a limit caps the slippage, quotes on whole cents widen the spread;
    for a fill without them, ``slippage_bps`` and half ``spread_bps`` of its notional).
    ``half_spread`` counts stock fills only: an option's bid-ask cost is in its fill price.
    ``settlements`` (the journal's OPEXP, OPASN, OPEXC and OPTRD activities) end round trips
    (``v28quant.round_trips.settlement_trades``); they are no fills and trade no notional.
    ``marks`` (symbol -> price) value the lots still open in ``engines`` (``engine_pnl``).
    ``splits`` (the journal's stock splits) re-base the open lots of their stock;
    ``transfers`` (the positions the operator accepted, ``Journal.transfers``) open a lot of
    no engine's or close the oldest lots without a trip.
    """
    r = daily_returns(equity, initial)
    notional = stock = shares = slippage = spread = 0.0
    for f in fills:
        qty, sym = abs(Decimal(str(f["qty"]))), str(f["symbol"])
        value = float(qty * Decimal(str(f["price"])) * multiplier(sym))
        notional += value
        slippage += _paid(f, "slippage", value * slippage_bps / 1e4)
        if not is_occ(sym):
            stock += value
            shares += float(qty)
            spread += _paid(f, "half_spread", value * spread_bps / 2 / 1e4)
    mean_eq = float(np.mean([initial, *equity]))
    years = max(len(r), 1) / TRADING_DAYS
    pairing = pair_trades(journal_trades(fills, settlements, splits, transfers))
    trips = [float(t.pnl) for t in pairing.trips]
    commission = shares * commission_per_share
    return {
        "sessions": len(r),
        "initial_equity": initial,
        "final_equity": float(equity[-1]) if len(equity) else initial,
        "total_return": float(equity[-1] / initial - 1) if len(equity) else 0.0,
        "sharpe": sharpe(r),
        "sortino": sortino(r),
        "max_drawdown": max_drawdown(equity, initial),
        "turnover": notional / mean_eq,
        "turnover_per_year": notional / mean_eq / years,
        "hit_rate": (sum(1 for p in trips if p > 0) / len(trips)) if trips else math.nan,
        "round_trips": len(trips),
        "realised_pnl": sum(trips),
        "fills": len(fills),
        "traded_notional": notional,
        "stock_notional": stock,
        "costs": {
            "commission": commission,
            "slippage": slippage,
            "half_spread": spread,
            "total": commission + slippage + spread,
        },
        "engines": engine_pnl(
            pairing, fills, commission_per_share=commission_per_share, marks=marks
        ),
        "deflated_sharpe": deflated_sharpe(r, trials),
        "risk_free_rate": 0.0,
        "periods_per_year": TRADING_DAYS,
    }
