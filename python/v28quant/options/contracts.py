"""Contract resolution: which listed options an options structure should use, and at what price.

Three steps, each a pure function of an option-chain frame (``v28quant.data.base.CHAIN_COLUMNS``):

1. ``liquidity_filter``: keep contracts a trader could actually trade (a bid above zero, a
   relative spread below a cap, enough open interest and volume where the venue reports them)
   and count why the others were dropped.
2. ``annotate``: time to the series' last trading minute (years, ACT/365 on the exchange
   calendar's option cut-off), days to expiry, the model implied vol (from the SVI surface when
   one is given, else the chain's own column), the forward-implied dividend yield and the
   Black-Scholes-Merton Greeks at that vol.
3. ``pick_expiry`` / ``pick_by_delta`` / ``pick_wing``: the expiry inside a DTE window nearest
   its target, the short strike nearest a target |delta| inside a band (ties broken by
   liquidity: tighter spread, then more open interest), and the long wing whose width fits a
   risk budget.

Limit prices start at the mid and walk towards the natural price (what crossing the spread on
every leg would cost) in equal steps, each rounded to a valid tick (``v28quant.broker.ticks``:
conservatively, never a worse price than the rung asks).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from v28quant.broker.ticks import TickScheme, round_net_limit, round_net_marketable
from v28quant.calendar import ET, ExchangeCalendar, default_calendar
from v28quant.options import black_scholes as bsm
from v28quant.options.surface import SviSurface

YEAR_SECONDS = 365.0 * 86400.0
OptionType = Literal["call", "put"]


class NoContract(LookupError):
    """No listed contract satisfies the request; the message says which rule failed."""


@dataclass(frozen=True, slots=True)
class LiquidityRules:
    """Thresholds of ``liquidity_filter``.

    Attributes
    ----------
    min_bid : float
        Lowest acceptable bid (dollars per share); the bid must also be > 0.
    max_rel_spread : float
        Highest ``(ask - bid) / mid``.
    min_open_interest, min_volume : float
        Contracts; applied only where the venue reports the field (Alpaca's indicative
        snapshots carry neither), which the filter's report says.
    """

    min_bid: float = 0.05
    max_rel_spread: float = 0.25
    min_open_interest: float = 100.0
    min_volume: float = 0.0


@dataclass(frozen=True, slots=True)
class LiquidityReport:
    """What the liquidity filter kept and why it dropped the rest (counts per reason)."""

    kept: int
    dropped: dict[str, int]
    open_interest_known: bool
    volume_known: bool


def liquidity_filter(
    chain: pd.DataFrame, rules: LiquidityRules | None = None
) -> tuple[pd.DataFrame, LiquidityReport]:
    """Keep the tradable rows of ``chain``.

    Parameters
    ----------
    chain : DataFrame
        An option chain with at least ``bid``, ``ask``, ``open_interest`` and ``volume``.
    rules : LiquidityRules, optional
        Thresholds (defaults above).

    Returns
    -------
    kept : DataFrame
        The rows passing every rule, with a ``rel_spread`` column added; ``attrs`` kept.
    report : LiquidityReport
        Rows kept, and the number dropped by each rule (a row counts under its first failure).
    """
    rules = rules or LiquidityRules()
    frame = without_attrs(chain)
    bid = frame["bid"].to_numpy(dtype=float)
    ask = frame["ask"].to_numpy(dtype=float)
    mid = 0.5 * (bid + ask)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(mid > 0, (ask - bid) / mid, np.inf)
    oi = frame["open_interest"].to_numpy(dtype=float)
    vol = frame["volume"].to_numpy(dtype=float)
    oi_known, vol_known = bool(np.isfinite(oi).any()), bool(np.isfinite(vol).any())
    checks: list[tuple[str, np.ndarray]] = [
        ("no_bid", ~(np.isfinite(bid) & (bid > 0) & (bid >= rules.min_bid))),
        ("no_ask", ~(np.isfinite(ask) & (ask >= bid))),
        ("wide_spread", ~(rel <= rules.max_rel_spread)),
    ]
    if oi_known:
        checks.append(("low_open_interest", ~(np.nan_to_num(oi) >= rules.min_open_interest)))
    if vol_known:
        checks.append(("low_volume", ~(np.nan_to_num(vol) >= rules.min_volume)))
    failed = np.zeros(len(chain), dtype=bool)
    dropped: dict[str, int] = {}
    for reason, bad in checks:
        new = bad & ~failed
        dropped[reason] = int(new.sum())
        failed |= bad
    kept = np.flatnonzero(~failed)
    out = frame.take(kept).reset_index(drop=True)
    out["rel_spread"] = rel[kept]
    out.attrs = dict(chain.attrs)
    return out, LiquidityReport(int((~failed).sum()), dropped, oi_known, vol_known)


def without_attrs(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a shallow copy of ``frame`` without its ``attrs``.

    pandas deep-copies ``attrs`` into the result of every step (even a column read), which on a
    chain snapshot costs more than the step itself.
    """
    bare = frame.copy(deep=False)
    bare.attrs = {}
    return bare


def expiry_cutoff(
    underlying: str, expiry: date, calendar: ExchangeCalendar | None = None
) -> datetime:
    """Return the last trading minute of a series.

    That is the equity close of its expiry session (16:00 ET, or the early close): expiring
    ETF series do not trade to 16:15.
    """
    cal = calendar or default_calendar()
    try:
        day = cal.expiry_session(expiry)
        return cal.option_close(underlying, day, expiry=day)
    except ValueError:  # beyond the calendar's range: a plain 16:00 close
        return datetime.combine(expiry, time(16), ET)


def implied_spot(chain: pd.DataFrame, rate: float, now: datetime) -> float:
    """Return the chain's underlying price, or infer it from put-call parity.

    ``S ~ F exp(-(r - q) t)`` with ``q`` unknown is taken as ``S ~ F`` discounted at the rate
    only over that (short) expiry; the median of ``K + (C - P)`` over the five strikes with the
    smallest ``|C - P|`` gives ``F``.
    """
    px = float(chain.attrs.get("underlying_price", float("nan")))
    if math.isfinite(px) and px > 0:
        return px
    q = chain[(chain["bid"] > 0) & (chain["ask"] > 0)]
    for exp, g in q.groupby("expiry"):
        mids = g.assign(m=0.5 * (g["bid"] + g["ask"])).pivot_table(
            index="strike", columns="type", values="m"
        )
        if not {"call", "put"} <= set(mids.columns):
            continue
        diff = (mids["call"] - mids["put"]).dropna()
        if len(diff) < 2:
            continue
        near = diff.abs().nsmallest(5).index
        t = max((pd.Timestamp(exp).date() - now.astimezone(ET).date()).days, 0) / 365.0
        fwd = float(np.median(np.asarray(near, float) + diff[near].to_numpy()))
        return fwd * math.exp(-rate * t)
    raise NoContract("no underlying price in the chain and no call/put pair to infer one from")


def maturities(
    chain: pd.DataFrame, now: datetime, calendar: ExchangeCalendar | None = None
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Return each row's time to its last trading minute (years) and its calendar days left.

    ``t`` runs to the series' last trading minute (:func:`expiry_cutoff`) in years of
    ``YEAR_SECONDS``; ``dte`` counts calendar days from ``now``'s New York date. ``t <= 0``
    for a series that has stopped trading.
    """
    cal = calendar or default_calendar()
    expiry = chain["expiry"]
    if expiry.dtype != "datetime64[ns]":
        expiry = pd.to_datetime(expiry)
    days = expiry.to_numpy("datetime64[D]")
    if np.isnat(days).any():
        raise ValueError("chain has rows without an expiry")
    # per listed expiry, then spread over its contracts
    uniq, codes = np.unique(days, return_inverse=True)
    exps = uniq.astype(object).tolist()
    und = str(chain["underlying"].iloc[0]) if len(chain) else ""
    today = now.astimezone(ET).date()
    t_exp = np.array([(expiry_cutoff(und, e, cal) - now).total_seconds() for e in exps])
    t = np.asarray((t_exp / YEAR_SECONDS)[codes], dtype=np.float64)
    dte = np.array([(e - today).days for e in exps], dtype=np.int64)[codes]
    return t, dte


def annotate(
    chain: pd.DataFrame,
    *,
    spot: float,
    now: datetime,
    rate: float,
    surface: SviSurface | None = None,
    calendar: ExchangeCalendar | None = None,
    maturity: tuple[NDArray[np.float64], NDArray[np.int64]] | None = None,
) -> pd.DataFrame:
    """Add model columns to a chain.

    Adds ``t`` (years), ``dte`` (calendar days), ``model_iv``, ``div`` and the BSM Greeks
    ``m_delta``, ``m_gamma``, ``m_vega`` (per 1.00 vol), ``m_theta`` (per year).

    ``model_iv`` is the surface's vol at the row's strike and maturity when ``surface`` is given
    (the chain's ``iv`` otherwise); ``div`` is the continuous yield that makes the surface's
    forward consistent with ``spot`` (``rate - ln(F / S) / t``; 0 without a surface). Rows
    already expired at ``now`` or without any vol are dropped. ``maturity`` is the chain's
    ``maturities(chain, now, calendar)`` where the caller has them already.
    """
    if not spot > 0:
        raise ValueError(f"spot must be > 0, got {spot}")
    t, dte = maturity if maturity is not None else maturities(chain, now, calendar)
    mid = 0.5 * (chain["bid"].to_numpy(float) + chain["ask"].to_numpy(float))
    live = np.flatnonzero(t > 0)
    k, tt = chain["strike"].to_numpy(float)[live], t[live]
    if surface is not None and len(live):
        model_iv = np.asarray(surface.implied_vol(k, tt), dtype=float)
        div = rate - np.log(np.asarray(surface.forward(tt), dtype=float) / spot) / tt
    else:
        model_iv = chain["iv"].to_numpy(dtype=float)[live]
        div = np.zeros(len(live))
    ok = np.isfinite(model_iv) & (model_iv > 0)
    rows = live[ok]
    added: dict[str, NDArray[Any]] = {
        "t": t[rows],
        "dte": dte[rows],
        "mid": mid[rows],
        "model_iv": model_iv[ok],
        "div": div[ok],
    }
    if len(rows):
        g = bsm.greeks(
            spot,
            k[ok],
            tt[ok],
            rate,
            div[ok],
            model_iv[ok],
            (chain["type"].to_numpy()[rows] == "call"),
        )
        greeks = (g.delta, g.gamma, g.vega, g.theta)
    else:
        greeks = (np.empty(0),) * 4
    for name, values in zip(("m_delta", "m_gamma", "m_vega", "m_theta"), greeks, strict=True):
        added[name] = np.asarray(values)
    # one frame built from columns (the chain's, then the new ones, as a column-at-a-time
    # assignment would order them): pandas pays per column set, not per row
    cols = {c: added.pop(c) if c in added else chain[c].array.take(rows) for c in chain.columns}
    df = pd.DataFrame({**cols, **added})
    df.attrs = copy.deepcopy(chain.attrs)
    return df


@dataclass(frozen=True, slots=True)
class DeltaTarget:
    """Where a short strike goes: |delta| in ``[low, high]``, nearest ``target``.

    Attributes
    ----------
    low, high : float
        The band of absolute delta (e.g. 0.20-0.30).
    target : float
        The preferred absolute delta inside the band.
    bucket : float
        Deltas within one bucket of each other count as a tie, broken by liquidity.
    """

    low: float = 0.20
    high: float = 0.30
    target: float = 0.25
    bucket: float = 0.025

    def __post_init__(self) -> None:
        """Check the band is ordered inside (0, 1)."""
        if not 0.0 < self.low <= self.target <= self.high < 1.0:
            raise ValueError(
                f"delta band must satisfy 0 < low <= target <= high < 1, got "
                f"{self.low}, {self.target}, {self.high}"
            )


def expiries_by_preference(
    chain: pd.DataFrame, dte_min: int, dte_max: int, dte_target: int | None = None
) -> list[date]:
    """Return the expiries in ``[dte_min, dte_max]`` days, most preferred first.

    Preference: nearest ``dte_target`` (the window's middle by default); of equally near
    expiries the one with more open interest, then the one with more quotes. Raises
    ``NoContract`` naming the window when none is listed.
    """
    if dte_min > dte_max:
        raise ValueError(f"dte_min {dte_min} > dte_max {dte_max}")
    target = (dte_min + dte_max) / 2 if dte_target is None else dte_target
    inside = chain[(chain["dte"] >= dte_min) & (chain["dte"] <= dte_max)]
    if inside.empty:
        listed = sorted(set(chain["dte"].tolist()))
        raise NoContract(f"no expiry with {dte_min}-{dte_max} DTE (listed DTEs: {listed[:12]})")
    g = inside.groupby("expiry").agg(
        dte=("dte", "first"), oi=("open_interest", "sum"), n=("symbol", "count")
    )
    g["dist"] = (g["dte"] - target).abs()
    order = g.sort_values(["dist", "oi", "n"], ascending=[True, False, False]).index
    return [cast(date, pd.Timestamp(e).date()) for e in order]


def pick_expiry(
    chain: pd.DataFrame, dte_min: int, dte_max: int, dte_target: int | None = None
) -> date:
    """Return the most preferred expiry of ``expiries_by_preference``."""
    return expiries_by_preference(chain, dte_min, dte_max, dte_target)[0]


def _of_expiry(chain: pd.DataFrame, expiry: date, kind: OptionType) -> pd.DataFrame:
    exp = pd.to_datetime(chain["expiry"]).dt.date
    return chain[(exp == expiry) & (chain["type"] == kind)]


def pick_by_delta(
    chain: pd.DataFrame, expiry: date, kind: OptionType, band: DeltaTarget
) -> pd.Series:
    """Return the ``kind`` contract of ``expiry`` nearest the band's target |delta|.

    Only contracts with a model |delta| inside the band qualify; ties (same delta bucket) go
    to the tighter spread, then the larger open interest.

    Raises ``NoContract`` when no strike of that expiry has a delta in the band.
    """
    rows = _of_expiry(chain, expiry, kind)
    d = rows["m_delta"].abs()
    rows = rows[(d >= band.low) & (d <= band.high)]
    if rows.empty:
        raise NoContract(
            f"no liquid {kind} expiring {expiry} with |delta| in [{band.low}, {band.high}]"
        )
    key = pd.DataFrame(
        {
            "bucket": ((rows["m_delta"].abs() - band.target).abs() / band.bucket).round(),
            "spread": rows["rel_spread"] if "rel_spread" in rows else 0.0,
            "oi": -rows["open_interest"].fillna(0.0),
        },
        index=rows.index,
    )
    best = key.sort_values(["bucket", "spread", "oi"], kind="stable").index[0]
    return rows.loc[best]


def pick_wing(
    chain: pd.DataFrame,
    short: pd.Series,
    *,
    max_width: float,
    min_width: float = 0.0,
) -> pd.Series:
    """Return the long leg protecting ``short``.

    Same expiry and type, further out of the money (lower strike for a put, higher for a
    call), the widest listed width ``<= max_width`` (dollars per share) and ``> min_width``;
    ties by liquidity.

    Raises ``NoContract`` when no listed strike fits.
    """
    kind: OptionType = "put" if short["type"] == "put" else "call"
    rows = _of_expiry(chain, pd.Timestamp(short["expiry"]).date(), kind)
    width = (short["strike"] - rows["strike"]) * (1 if kind == "put" else -1)
    rows = rows[(width > min_width) & (width <= max_width + 1e-9)]
    if rows.empty:
        raise NoContract(
            f"no liquid {kind} wing within {max_width:.2f} of the short {short['strike']:g}"
        )
    w = (short["strike"] - rows["strike"]).abs()
    order = pd.DataFrame(
        {"w": -w, "spread": rows.get("rel_spread", 0.0)}, index=rows.index
    ).sort_values(["w", "spread"], kind="stable")
    return rows.loc[order.index[0]]


def limit_ladder(
    mid: Decimal | float,
    natural: Decimal | float,
    steps: int = 3,
    scheme: TickScheme = "penny_pilot",
    *,
    credit: bool = False,
) -> list[Decimal]:
    """Net limit prices from the mid to the natural price in ``steps`` equal moves.

    Prices are signed nets per unit (debit > 0, credit < 0); the natural is the worse side
    (a larger debit or a smaller credit). Each rung is rounded conservatively to the tick
    (floor of the signed net) but the last, the natural, which is rounded towards a fill
    (``round_net_marketable``: an off-grid natural floored would never fill); repeated rungs
    are dropped. With ``credit`` (a structure sold to open) so are the rungs asking nothing or
    a debit: wide quotes can put the natural of a credit spread on the debit side, and paying
    to open it would leave no way to make money. The ladder then ends at its last credit, and
    is empty when the mid is no credit.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    m, n = Decimal(str(mid)), Decimal(str(natural))
    if n < m:
        raise ValueError(f"natural {n} must not be better than the mid {m} (debit > 0)")
    out: list[Decimal] = []
    for i in range(steps + 1):
        if i < steps:
            rung = round_net_limit(m + (n - m) * Decimal(i) / Decimal(steps), scheme)
        else:
            rung = round_net_marketable(n, scheme)
        if not out or rung != out[-1]:
            out.append(rung)
    return [x for x in out if x < 0] if credit else out


def tick_scheme_for(underlying: str, penny: bool = True) -> TickScheme:
    """Return the tick scheme of an underlying's options, ``penny`` its Penny Program flag.

    Outside the program (Alpaca's ``ppind`` false) $0.05 below $3.00 and $0.10 above; in it,
    every price in pennies for the all-penny classes (SPY, QQQ, IWM), the penny-pilot rule
    otherwise.
    """
    if not penny:
        return "standard"
    return "all_penny" if underlying.upper() in {"SPY", "QQQ", "IWM"} else "penny_pilot"


def tick_scheme_of(chain: pd.DataFrame, symbols: Iterable[str], underlying: str) -> TickScheme:
    """Return the tick scheme of an order on ``symbols``, from their rows of ``chain``.

    One leg outside the Penny Program puts the order's net on the coarser grid; a leg the
    chain does not list counts as in it (``CHAIN_COLUMNS``' default).
    """
    rows = chain[chain["symbol"].isin(list(symbols))]
    penny = rows["penny"] if "penny" in rows else pd.Series([], dtype=bool)
    return tick_scheme_for(underlying, bool(penny.all()))
