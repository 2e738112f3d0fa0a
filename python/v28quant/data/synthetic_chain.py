"""Synthetic option chains for replay: listed contracts, model quotes and the chain frame.

When no recorded snapshot is fresh, replay lists contracts and quotes them from a volatility
surface shaped like real SPY chains (``v28quant.data.chain_shape``): the spot ATM vol is trailing
realised vol x a variance-risk-premium factor; ATM variance reverts from there to a long-run
level with time to expiry; the smile at each expiry is SSVI, with a negative skew (in proportion
to the vol level, decaying with time to expiry) and curvature fitted once to the Cboe SPY chains
of 2023-09-14 and 2022-07-08 by ``tools/fit_synthetic_chain.py`` (flat beyond four ATM standard
deviations).
Prices are Black-Scholes-Merton (``v28quant.options.black_scholes``) at those vols; bid/ask
spreads are ``max(min_width, rel_spread * price)`` rounded outward onto the option tick grid of
``v28quant.broker.ticks`` (all-penny for the penny-program underlyings). Prices are European:
the early-exercise premium of American options is ignored (small for the short-dated,
near-the-money options engines trade; zero for calls without dividends).

Listed strikes and expiries are fixed per session from the previous close (strikes do not move
intraday): weekly Friday expiries out to ``weekly_days`` and third-Friday monthlies out to
``monthly_days``, moved to Thursday when Friday is a holiday.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from v28quant.broker.ticks import TickScheme, round_out_quotes
from v28quant.calendar import ET, ExchangeCalendar
from v28quant.data.chain_shape import atm_total_variance, skew_phi, ssvi_total_variance
from v28quant.occ import format_occ_many

YEAR_SECONDS = 365.0 * 86400.0
PENNY_UNDERLYINGS = frozenset(
    {
        "SPY",
        "QQQ",
        "IWM",
        "DIA",
        "AAPL",
        "MSFT",
        "AMZN",
        "NVDA",
        "TSLA",
        "META",
        "GOOGL",
        "AMD",
        "SPX",
        "SP500",
    }
)


@dataclass(frozen=True)
class SyntheticChainModel:
    """How synthetic option chains are priced (see the module docstring).

    Vols are annualised, ``rate`` continuously compounded, ``rel_spread`` a fraction of the
    option price and ``min_width`` dollars per share; day counts are calendar days.
    """

    rate: float = 0.04
    vol_window: int = 21
    vol_floor: float = 0.05
    vol_default: float = 0.25
    # Implied over realised vol. On the two SPY days of the fit the ratio was 0.96 and 0.76
    # (both after volatile months); over long samples implied variance exceeds realised on
    # average (Carr and Wu, "Variance risk premiums", Review of Financial Studies 22(3), 2009).
    variance_risk_premium: float = 1.10
    # Fitted by tools/fit_synthetic_chain.py to the Cboe SPY chains of 2023-09-14 and 2022-07-08
    # (shared/data/options; 4819 out-of-the-money quotes, 61 expiries, 5 days to 2.5 years):
    # smile RMSE 0.99 vol points, ATM term structure RMSE 0.88 vol points.
    ssvi_rho: float = -0.5843
    ssvi_eta: float = 5.1213
    ssvi_gamma: float = 0.3077
    long_run_vol: float = 0.2136
    vol_reversion: float = 1.1341  # per year
    # The fitted days' one-month ATM vols were 0.12 and 0.22: the skew grows with the vol level
    # up to 0.25 and is held there, not extrapolated to 50 %-vol single stocks.
    skew_vol_cap: float = 0.25
    rel_spread: float = 0.03
    min_width: float = 0.02
    weekly_days: int = 35
    monthly_days: int = 120
    strike_sd: float = 3.0
    max_strikes: int = 60

    def __post_init__(self) -> None:  # noqa: D105 - validation only
        if not -1.0 < self.ssvi_rho < 1.0:
            raise ValueError(f"ssvi_rho must be in (-1, 1), got {self.ssvi_rho}")
        if self.ssvi_eta <= 0 or not 0.0 <= self.ssvi_gamma <= 1.0:
            raise ValueError(
                f"ssvi_eta must be > 0 and ssvi_gamma in [0, 1], got {self.ssvi_eta}, "
                f"{self.ssvi_gamma}"
            )
        if min(self.long_run_vol, self.vol_reversion, self.skew_vol_cap) <= 0:
            raise ValueError(
                f"long_run_vol, vol_reversion and skew_vol_cap must be > 0, got "
                f"{self.long_run_vol}, {self.vol_reversion}, {self.skew_vol_cap}"
            )


def third_friday(y: int, m: int) -> date:
    """Return the third Friday of month ``m`` of year ``y`` (standard monthly expiry)."""
    d = date(y, m, 15)
    return d + timedelta(days=(4 - d.weekday()) % 7)


def last_trade_time(calendar: ExchangeCalendar, underlying: str, expiry: date) -> datetime:
    """Return when options on ``underlying`` expiring on ``expiry`` stop trading."""
    if calendar.is_session(expiry):
        return calendar.option_close(underlying, expiry, expiry=expiry)
    return datetime.combine(expiry, time(16), ET)


def listed_contracts(
    model: SyntheticChainModel, calendar: ExchangeCalendar, today: date, ref: float, vol: float
) -> pd.DataFrame:
    """List synthetic contracts (columns expiry, strike, type) for session ``today``.

    Strikes span ``strike_sd`` standard deviations (annualised ``vol``) around the reference
    price ``ref`` on the usual listing increments, thinned to at most ``max_strikes``.
    """
    cols = _listed_columns(model, calendar, today, ref, vol)
    return pd.DataFrame(list(zip(*cols.values(), strict=True)), columns=list(cols))


def _listed_columns(
    model: SyntheticChainModel, calendar: ExchangeCalendar, today: date, ref: float, vol: float
) -> dict[str, list[Any]]:
    """Return the columns of ``listed_contracts``: per expiry, per strike, a call then a put."""
    expiries: set[date] = set()
    d = today
    while d <= today + timedelta(days=model.monthly_days):
        if d.weekday() == 4:
            weekly = d <= today + timedelta(days=model.weekly_days)
            if weekly or d == third_friday(d.year, d.month):
                try:
                    e = calendar.expiry_session(d)
                except ValueError:
                    e = d
                if e >= today:
                    expiries.add(e)
        d += timedelta(days=1)
    inc = next(
        x for x in (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0) if ref / x <= 120 or x == 100.0
    )
    cols: dict[str, list[Any]] = {"expiry": [], "strike": [], "type": []}
    for e in sorted(expiries):
        t = max((e - today).days, 1) / 365.0
        width = max(0.05, model.strike_sd * vol * math.sqrt(t))
        lo_k = math.ceil(ref * math.exp(-width) / inc) * inc
        hi_k = math.floor(ref * math.exp(width) / inc) * inc
        step = inc
        while (hi_k - lo_k) / step + 1 > model.max_strikes:
            step *= 2
        centre = round(ref / step) * step
        ks = np.arange(centre - step * math.floor((centre - lo_k) / step), hi_k + step / 2, step)
        strikes = [round(float(k), 4) for k in ks if k > 0]
        cols["expiry"] += [e] * (2 * len(strikes))
        cols["strike"] += [k for k in strikes for _ in range(2)]
        cols["type"] += ["call", "put"] * len(strikes)
    return cols


class SessionListings:
    """Listed contracts per (underlying, reference price), computed once per session.

    Only the current session's are kept: a replay moves forward, and keeping every session's
    grew a weeks-long run by megabytes a day.
    """

    def __init__(self, model: SyntheticChainModel, calendar: ExchangeCalendar) -> None:
        self.model, self.calendar = model, calendar
        self._day: date | None = None
        self._frames: dict[tuple[str, float], pd.DataFrame] = {}

    def get(
        self, underlying: str, today: date, ref: float, vol: Callable[[], float]
    ) -> pd.DataFrame:
        """Return ``listed_contracts`` of ``underlying`` for ``today`` (``vol()`` on a miss)."""
        if self._day != today:
            self._frames.clear()
            self._day = today
        got = self._frames.get((underlying, ref))
        if got is None:
            listed = _listed_columns(self.model, self.calendar, today, ref, vol())
            got = _in_chain_order(underlying, listed)
            self._frames[(underlying, ref)] = got
        return got


def _in_chain_order(underlying: str, listed: dict[str, list[Any]]) -> pd.DataFrame:
    """Return the ``listed`` columns as a frame sorted as a chain, with ``expiry_ns``, ``symbol``.

    In a chain frame's row order (expiry, type, strike) and with its expiry dtype, so building
    each snapshot's frame converts and sorts nothing; the OCC symbols once a session, dropped
    with the session's listings. One frame from sorted arrays: pandas' sort and column inserts
    cost more than the listing.
    """
    expiry = np.array(listed["expiry"], dtype=object)
    expiry_ns = expiry.astype("datetime64[ns]")
    strike = np.array(listed["strike"], dtype=np.float64)
    kind = np.array(listed["type"], dtype=object)
    codes, _ = pd.factorize(kind, sort=True)
    order = np.lexsort((strike, codes, expiry_ns))
    call = kind[order] == "call"
    return pd.DataFrame(
        {
            "expiry": expiry[order],
            "strike": strike[order],
            "type": kind[order].tolist(),
            "expiry_ns": expiry_ns[order],
            "symbol": format_occ_many(underlying, expiry[order], call, strike[order]),
        }
    )


def price_options(
    model: SyntheticChainModel,
    calendar: ExchangeCalendar,
    underlying: str,
    *,
    spot: float,
    div: float,
    realised_vol: float,
    expiry: NDArray[np.object_],
    strike: NDArray[np.float64],
    is_call: NDArray[np.bool_],
    now: datetime,
) -> dict[str, NDArray[np.float64]]:
    """Quote contracts at ``now`` from the model.

    Returns arrays ``spot, t`` (years to the last trade time), ``iv, price, bid, ask`` and the
    Greeks ``delta, gamma, theta`` (per year) ``, vega`` (per 1.00 of vol).
    """
    from v28quant.options import black_scholes as bsm

    m = model
    atm = max(m.vol_floor, realised_vol) * m.variance_risk_premium
    codes, expiries = pd.factorize(expiry)
    left = [(last_trade_time(calendar, underlying, e) - now).total_seconds() for e in expiries]
    t = np.maximum(np.asarray(left, dtype=np.float64), 0.0)[codes] / YEAR_SECONDS
    fwd = spot * np.exp((m.rate - div) * t)
    iv = implied_vols(m, atm, np.log(strike / fwd), t)
    price = np.asarray(bsm.price(spot, strike, t, m.rate, div, iv, is_call), dtype=float)
    g = bsm.greeks(spot, strike, t, m.rate, div, iv, is_call)
    width = np.maximum(m.min_width, m.rel_spread * price)
    scheme: TickScheme = "all_penny" if underlying in PENNY_UNDERLYINGS else "penny_pilot"
    bid, ask = round_out_quotes(price - width / 2, price + width / 2, price, scheme)
    return {
        "spot": np.full_like(price, spot),
        "t": t,
        "iv": iv,
        "price": price,
        "bid": bid,
        "ask": ask,
        "delta": np.asarray(g.delta, float),
        "gamma": np.asarray(g.gamma, float),
        "theta": np.asarray(g.theta, float),
        "vega": np.asarray(g.vega, float),
    }


def implied_vols(
    model: SyntheticChainModel, atm: float, k: NDArray[np.float64], t: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Return the model's implied vols at log-moneyness ``k = ln(K/F)`` and ``t`` years.

    ``atm`` is the spot ATM vol; the term structure and SSVI smile are the model's. Times under
    an hour count as an hour, and the smile is flat beyond four ATM standard deviations.
    """
    te = np.maximum(t, 1.0 / (365 * 24))
    theta = atm_total_variance(te, atm * atm, model.long_run_vol**2, model.vol_reversion)
    reach = 4.0 * np.sqrt(theta)
    kk = np.clip(k, -reach, reach)
    m = model
    phi = skew_phi(te, theta, m.ssvi_rho, m.ssvi_eta, m.ssvi_gamma, m.skew_vol_cap)
    w = ssvi_total_variance(kk, theta, phi, m.ssvi_rho)
    return np.asarray(np.sqrt(w / te), dtype=np.float64)


def chain_rows(
    underlying: str,
    listing: pd.DataFrame,
    quotes: dict[str, NDArray[np.float64]],
    *,
    spot: float,
    realised_vol: float,
) -> pd.DataFrame:
    """Build chain rows (``CHAIN_COLUMNS`` less the frame's attributes) for listed contracts.

    ``listing`` holds ``expiry, strike, type, symbol`` per contract, and ``expiry_ns``, the
    expiry as ``datetime64[ns]`` (``SessionListings.get``).

    Open interest is a bell in standardised moneyness that thins with time to expiry, volume a
    fifth of it: enough for liquidity filters to prefer near-the-money, near-dated contracts.
    """
    strike = listing["strike"].to_numpy(float)
    x = np.log(strike / spot) / (realised_vol * np.sqrt(np.maximum(quotes["t"], 1 / 365)))
    oi = np.floor(5000.0 * np.exp(-0.5 * x * x) / (1.0 + 4.0 * quotes["t"])) + 10.0
    return pd.DataFrame(
        {
            "symbol": listing["symbol"],
            "underlying": underlying,
            "expiry": listing["expiry_ns"],
            "strike": listing["strike"],
            "type": listing["type"],
            "bid": quotes["bid"],
            "ask": quotes["ask"],
            "mid": (quotes["bid"] + quotes["ask"]) / 2.0,
            "iv": quotes["iv"],
            "delta": quotes["delta"],
            "gamma": quotes["gamma"],
            "theta": quotes["theta"],
            "vega": quotes["vega"],
            "open_interest": oi,
            "volume": np.floor(oi * 0.2),
            "penny": True,  # the replay takes every class to be in the Penny Program
            "synthetic": True,
        }
    )
