"""Adapters of the option pricing models: Heston, Merton and Monte Carlo mispricing.

Each prices the liquid near-the-money contracts of a chain snapshot and emits one signal per
contract (``symbol`` = the OCC symbol): long when the model price is above the market mid
(the option is cheap to the model), short when below.

* value ``tanh(edge / scale)`` with ``edge`` = 100 (model IV - market IV), in vol points;
* support ``2 Phi(|z|) - 1`` with ``z = edge / sqrt(spread^2 + fit^2 + mc^2)``: the edge in
  units of its noise, where ``spread`` is half the bid-ask spread in vol points (an edge inside
  the spread cannot be captured), ``fit`` the model's RMS error on the chain when it was fitted
  (a model that misprices everything by 3 points has no 1-point edge) and ``mc`` the Monte
  Carlo standard error in vol points (0 for the closed forms).
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from v28quant.models.base import CHAIN, MarketSnapshot, TrackRecord, record_of
from v28quant.models.quant import GarchAdapter
from v28quant.options.black_scholes import implied_vol
from v28quant.options.contracts import without_attrs
from v28quant.quant_models import heston_model, merton_jump_diffusion, monte_carlo_pricer
from v28quant.signals import Signal, combine_confidence, support_from_z

log = logging.getLogger(__name__)


def select_quotes(
    chain: pd.DataFrame,
    spot: float,
    as_of: datetime,
    max_contracts: int = 40,
    max_days: int = 120,
) -> pd.DataFrame:
    """Two-sided quotes with 2..``max_days`` days left, the ``max_contracts`` nearest the money.

    Adds columns ``t`` (years, ACT/365), ``mid``, ``call`` (bool) and ``moneyness`` ln(K/S).
    The selection from the thread's last chain is kept (callers must not modify it): the
    pricing adapters of a cycle share it. The frame carries no ``attrs``.
    """
    sums = (float(chain["bid"].sum()), float(chain["ask"].sum()))
    key = (id(chain), len(chain), sums, float(spot), as_of.date(), max_days)
    # one cache per thread: the options engine selects quotes of several underlyings at once
    if getattr(_last_selection, "key", None) != key:
        _last_selection.key, _last_selection.chosen = key, {}
    chosen: dict[int, pd.DataFrame] = _last_selection.chosen
    if max_contracts not in chosen:
        chosen[max_contracts] = _select(without_attrs(chain), spot, as_of, max_contracts, max_days)
    return chosen[max_contracts]


def _select(
    chain: pd.DataFrame, spot: float, as_of: datetime, max_contracts: int, max_days: int
) -> pd.DataFrame:
    bid, ask = chain["bid"].to_numpy(np.float64), chain["ask"].to_numpy(np.float64)
    expiry = pd.to_datetime(chain["expiry"]).to_numpy("datetime64[D]")
    days = (expiry - np.datetime64(as_of.date(), "D")).astype(np.int64)
    ok = (bid > 0) & (ask >= bid) & (days >= 2) & (days <= max_days)
    rows = np.flatnonzero(ok)
    strike = chain["strike"].to_numpy(np.float64)
    m = np.log(strike[rows] / spot)
    order = rows[np.argsort(np.abs(m), kind="stable")][:max_contracts]
    return chain.take(order).assign(
        t=days[order] / 365.0,
        mid=0.5 * (bid[order] + ask[order]),
        call=(chain["type"].to_numpy()[order] == "call"),
        moneyness=np.log(strike[order] / spot),
    )


_last_selection = threading.local()


@dataclass(frozen=True)
class _Terms:
    """The selected quotes' strikes, years to expiry and types, read from the frame once."""

    strike: np.ndarray
    t: np.ndarray
    call: np.ndarray

    @classmethod
    def of(cls, q: pd.DataFrame) -> _Terms:
        return cls(q["strike"].to_numpy(), q["t"].to_numpy(), q["call"].to_numpy())


def _vol_points(price: Any, q: _Terms, spot: float, rate: float, div: float) -> np.ndarray:
    iv = implied_vol(np.asarray(price, float), spot, q.strike, q.t, rate, div, q.call)
    return 100.0 * np.asarray(iv, dtype=np.float64)


@dataclass
class _MispricingAdapter(ABC):
    """Shared loop: select quotes, price them with the model, turn edges into signals."""

    scale: float = 2.0
    max_contracts: int = 40
    track: TrackRecord | None = None
    name: str = ""
    lifetime: timedelta = CHAIN

    def __post_init__(self) -> None:
        """Start with no fitted underlyings."""
        self.params: dict[str, Any] = {}
        self.fit_error: dict[str, float] = {}

    @abstractmethod
    def _price(
        self, und: str, q: pd.DataFrame, spot: float, snap: MarketSnapshot
    ) -> tuple[np.ndarray, np.ndarray]:
        """Model prices and their standard errors (0 for exact prices)."""

    @abstractmethod
    def _calibrate(self, und: str, q: pd.DataFrame, spot: float, snap: MarketSnapshot) -> Any:
        """Model parameters for the underlying ``und``."""

    def _quotes(self, und: str, snap: MarketSnapshot) -> tuple[pd.DataFrame, float]:
        spot = float(snap.spots[und])
        when = snap.chain_ts or snap.daily_ts
        return select_quotes(snap.chains[und], spot, when, self.max_contracts), spot

    def fit(self, snapshot: MarketSnapshot) -> _MispricingAdapter:
        """Calibrate per underlying and record the model's RMS error on the chain (vol points)."""
        self.params, self.fit_error = {}, {}
        for und in snapshot.chains:
            try:
                q, spot = self._quotes(und, snapshot)
                self.params[und] = self._calibrate(und, q, spot, snapshot)
                model, _ = self._price(und, q, spot, snapshot)
                div = snapshot.dividends.get(und, 0.0)
                terms = _Terms.of(q)
                gap = _vol_points(model, terms, spot, snapshot.rate, div)
                gap = gap - _vol_points(q["mid"], terms, spot, snapshot.rate, div)
                self.fit_error[und] = float(np.sqrt(np.nanmean(gap**2)))
            except (ValueError, KeyError) as exc:
                log.warning("%s calibration for %s failed: %s", self.name, und, exc)
                self.params.pop(und, None)
        return self

    def refit(self, snapshot: MarketSnapshot) -> None:
        """Pre-market calibration (the engines' source protocol)."""
        self.fit(snapshot)

    def signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        """One signal per selected contract of each calibrated underlying."""
        out: list[Signal] = []
        ts = snapshot.chain_ts or snapshot.daily_ts
        record = record_of(self.track)
        for und in self.params:
            if und not in snapshot.chains or und not in snapshot.spots:
                continue
            try:
                q, spot = self._quotes(und, snapshot)
                model, se = self._price(und, q, spot, snapshot)
            except ValueError as exc:
                log.warning("%s pricing for %s failed: %s", self.name, und, exc)
                continue
            div = snapshot.dividends.get(und, 0.0)
            terms = _Terms.of(q)
            mkt = _vol_points(q["mid"], terms, spot, snapshot.rate, div)
            edge = _vol_points(model, terms, spot, snapshot.rate, div) - mkt
            spread = 0.5 * (
                _vol_points(q["ask"], terms, spot, snapshot.rate, div)
                - _vol_points(q["bid"], terms, spot, snapshot.rate, div)
            )
            mc = np.abs(_vol_points(model + se, terms, spot, snapshot.rate, div) - (edge + mkt))
            noise = np.sqrt(spread**2 + self.fit_error.get(und, 0.0) ** 2 + mc**2)
            cols = {c: q[c].to_numpy() for c in ("symbol", "strike", "expiry", "type", "mid")}
            for i in range(len(q)):
                if not (math.isfinite(edge[i]) and math.isfinite(noise[i]) and noise[i] > 0):
                    continue
                z = edge[i] / noise[i]
                reasoning = {
                    "underlying": und,
                    "strike": float(cols["strike"][i]),
                    "expiry": str(pd.Timestamp(cols["expiry"][i]).date()),
                    "type": str(cols["type"][i]),
                    "mid": float(cols["mid"][i]),
                    "model_price": float(model[i]),
                    "edge_vol_points": float(edge[i]),
                    "half_spread_vol_points": float(spread[i]),
                    "fit_error_vol_points": self.fit_error.get(und, 0.0),
                    "z": float(z),
                }
                conf = combine_confidence(record, support_from_z(z))
                v = math.tanh(edge[i] / self.scale)
                sym = str(cols["symbol"][i])
                out.append(Signal(self.name, sym, v, conf, reasoning, ts, self.lifetime))
        return out


@dataclass
class HestonAdapter(_MispricingAdapter):
    """Heston (1993) prices with parameters calibrated to the chain in the pre-market job."""

    name: str = "heston"

    def _calibrate(self, und: str, q: pd.DataFrame, spot: float, snap: MarketSnapshot) -> Any:
        div = snap.dividends.get(und, 0.0)
        cal = heston_model.calibrate(
            spot, q["strike"], q["t"], snap.rate, div, q["mid"], q["call"], max_iterations=60
        )
        return cal.params

    def _price(
        self, und: str, q: pd.DataFrame, spot: float, snap: MarketSnapshot
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self.params[und]
        div = snap.dividends.get(und, 0.0)
        px = heston_model.price(
            spot,
            q["strike"],
            q["t"],
            snap.rate,
            div,
            p.v0,
            p.kappa,
            p.theta,
            p.sigma,
            p.rho,
            q["call"],
        )
        arr = np.asarray(px, dtype=np.float64)
        return arr, np.zeros_like(arr)


@dataclass
class MertonAdapter(_MispricingAdapter):
    """Merton (1976) jump-diffusion prices with jumps calibrated to the underlying's returns."""

    name: str = "merton"
    history_days: int = 756

    def _calibrate(self, und: str, q: pd.DataFrame, spot: float, snap: MarketSnapshot) -> Any:
        r = snap.symbol_returns(und).to_numpy()[-self.history_days :]
        return merton_jump_diffusion.calibrate_from_returns(r)

    def _price(
        self, und: str, q: pd.DataFrame, spot: float, snap: MarketSnapshot
    ) -> tuple[np.ndarray, np.ndarray]:
        f = self.params[und]
        div = snap.dividends.get(und, 0.0)
        px = merton_jump_diffusion.price(
            spot, q["strike"], q["t"], snap.rate, div, f.vol, f.lam, f.mu_j, f.delta_j, q["call"]
        )
        arr = np.asarray(px, dtype=np.float64)
        return arr, np.zeros_like(arr)


@dataclass
class MonteCarloAdapter(_MispricingAdapter):
    """Monte Carlo GBM prices at the GARCH volatility expected over each option's life.

    The fair value of an option to someone who believes the GARCH forecast; the standard error
    of the simulation enters the noise of the edge.
    """

    name: str = "monte_carlo"
    max_contracts: int = 10
    paths: int = 20_000
    garch: GarchAdapter | None = None

    def _calibrate(self, und: str, q: pd.DataFrame, spot: float, snap: MarketSnapshot) -> Any:
        if self.garch is None or und not in self.garch.fits:
            raise ValueError(f"no fitted GARCH for {und}")
        return self.garch.fits[und]

    def _price(
        self, und: str, q: pd.DataFrame, spot: float, snap: MarketSnapshot
    ) -> tuple[np.ndarray, np.ndarray]:
        g = self.params[und]
        div = snap.dividends.get(und, 0.0)
        vols = np.asarray(g.vol_term_structure(np.maximum(q["t"].to_numpy() * 252.0, 1.0)))
        px, se = np.empty(len(q)), np.empty(len(q))
        strike, t, call = q["strike"].to_numpy(float), q["t"].to_numpy(float), q["call"].to_numpy()
        for i in range(len(q)):
            res = monte_carlo_pricer.european(
                spot,
                float(strike[i]),
                float(t[i]),
                snap.rate,
                div,
                float(vols[i]),
                call=bool(call[i]),
                paths=self.paths,
                seed=i,
                threads=1,
            )
            px[i], se[i] = res.price, res.stderr
        return px, se
