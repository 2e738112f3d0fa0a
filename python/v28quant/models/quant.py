"""Adapters of the econometric models: GARCH(1,1) volatility and the CAPM.

Both are refitted in the pre-market job (:meth:`fit`) and filtered forward on each cycle's data
(:meth:`signals`), so a cycle costs microseconds per symbol.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from v28quant.models.base import (
    DAILY,
    DailyMemo,
    MarketSnapshot,
    TrackRecord,
    as_snapshot,
    data_key,
    record_of,
)
from v28quant.quant_models import capm, garch
from v28quant.signals import Signal, combine_confidence, support_from_z

log = logging.getLogger(__name__)


@dataclass
class GarchAdapter:
    """GARCH(1,1) volatility forecast against the implied (else trailing) volatility.

    Value: ``tanh(ln(sigma_ref / sigma_fcst) / scale)``: positive when the model expects
    volatility to fall below the reference (vol contractions come with rising prices, the
    leverage effect; for options, premium is rich), negative when it expects a rise.
    Support: ``2 Phi(|ln(sigma_ref / sigma_fcst)| / s) - 1`` with ``s = 1 / sqrt(2 H)``, the
    sampling error of a log volatility measured over the ``H``-day horizon: a forecast that
    differs from the reference by less than measurement noise carries no view.

    Parameters
    ----------
    horizon_days : int
        Forecast horizon ``H`` (trading days).
    trailing_days : int
        Window of the trailing realised vol used when no implied vol is known.
    scale : float
        Log-vol gap that maps to ``tanh(1) = 0.76``.
    """

    horizon_days: int = 21
    trailing_days: int = 63
    scale: float = 0.25
    window: int = 1000
    track: TrackRecord | None = None
    name: str = "garch"
    lifetime: timedelta = DAILY

    def __post_init__(self) -> None:
        """Start with no fitted symbols."""
        self.fits: dict[str, garch.GarchResult] = {}
        self.memo = DailyMemo()
        #: One-day-ahead annualised vol per symbol from the last fit (position sizing).
        self.vol: dict[str, float] = {}

    def fit(self, snapshot: MarketSnapshot | Any) -> GarchAdapter:
        """Fit every symbol with enough history (errors are logged, the symbol left out)."""
        snapshot = as_snapshot(snapshot)
        self.fits, self.vol = {}, {}
        self.memo.clear()
        for sym in snapshot.returns.columns:
            r = snapshot.symbol_returns(str(sym)).to_numpy()[-self.window :]
            try:
                self.fits[str(sym)] = g = garch.fit(r)
            except ValueError as exc:
                log.warning("garch fit for %s failed: %s", sym, exc)
                continue
            self.vol[str(sym)] = math.sqrt(252.0 * g.next_variance)
        return self

    def refit(self, view: Any) -> None:
        """Pre-market refit (the equity engine's source protocol)."""
        self.fit(view)

    def forecast(self, snapshot: MarketSnapshot, symbol: str) -> float:
        """Annualised vol over the horizon, the fitted parameters filtered to the last row."""
        g = self.fits[symbol]
        r = snapshot.symbol_returns(symbol).to_numpy()[-self.window :]
        h = garch.filter_variance(r, g.mu, g.omega, g.alpha, g.beta, g.presample_variance)[-1]
        phi, s2, n = g.persistence, g.unconditional_variance, self.horizon_days
        total = n * s2 + (h - s2) * (1.0 - phi**n) / (1.0 - phi)
        return math.sqrt(252.0 * total / n)

    def signals(self, snapshot: MarketSnapshot | Any) -> list[Signal]:
        """One signal per fitted symbol present in the snapshot (once per day's data)."""
        snap = as_snapshot(snapshot)
        key = data_key(snap.returns, tuple(sorted(snap.implied_vol.items())))
        return self.memo.get(key, lambda: self._signals(snap))

    def _signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        out: list[Signal] = []
        ts = snapshot.daily_ts
        record = record_of(self.track)
        for sym in self.fits:
            if sym not in snapshot.returns.columns:
                continue
            try:
                fc = self.forecast(snapshot, sym)
            except ValueError as exc:
                log.warning("garch forecast for %s failed: %s", sym, exc)
                continue
            implied = snapshot.implied_vol.get(sym)
            if implied is not None and implied > 0:
                ref, kind = float(implied), "implied"
            else:
                r = snapshot.symbol_returns(sym).to_numpy()[-self.trailing_days :]
                ref, kind = float(np.sqrt(252.0 * np.mean(r * r))), "trailing"
            gap = math.log(ref / fc)
            z = gap * math.sqrt(2.0 * self.horizon_days)
            reasoning = {
                "vol_forecast": fc,
                "vol_reference": ref,
                "reference": kind,
                "vol_gap_points": 100.0 * (ref - fc),
                "horizon_days": self.horizon_days,
                "persistence": self.fits[sym].persistence,
            }
            conf = combine_confidence(record, support_from_z(z))
            value = math.tanh(gap / self.scale)
            out.append(Signal(self.name, sym, value, conf, reasoning, ts, self.lifetime))
        return out


@dataclass
class CapmAdapter:
    """CAPM alpha (Jensen 1968) over a rolling window against the snapshot's market.

    Value: ``tanh(alpha_annual / alpha_scale)``, the abnormal return per year the asset has
    earned over what its beta explains. Support: ``2 Phi(|t_alpha|) - 1``, the significance of
    that alpha.
    """

    window: int = 252
    alpha_scale: float = 0.10
    track: TrackRecord | None = None
    name: str = "capm"
    lifetime: timedelta = DAILY

    def __post_init__(self) -> None:
        """Start with an empty screen."""
        #: The universe ranked by CAPM expected return (``quant_models.capm.screen``).
        self.ranking = pd.DataFrame()
        self.memo = DailyMemo()

    def refit(self, view: Any) -> None:
        """Pre-market: rank the universe by CAPM expected return (the engine's screen)."""
        snap = as_snapshot(view)
        simple = np.expm1(snap.returns.iloc[-self.window :])
        self.ranking = capm.screen(simple, market=snap.market, sort_by="expected_return")

    def signals(self, snapshot: MarketSnapshot | Any) -> list[Signal]:
        """One signal per symbol (not the market) with enough history (once per day's data)."""
        snap = as_snapshot(snapshot)
        return self.memo.get(data_key(snap.returns, snap.market), lambda: self._signals(snap))

    def _signals(self, snapshot: MarketSnapshot) -> list[Signal]:
        if snapshot.market not in snapshot.returns.columns:
            raise ValueError(f"market {snapshot.market!r} not in the snapshot's returns")
        simple = np.expm1(snapshot.returns.iloc[-self.window :])
        # the columns as one array: each fit takes the dates both the stock and market have
        values = simple.to_numpy(dtype=np.float64)
        mkt = simple[snapshot.market].to_numpy(dtype=np.float64)
        mkt_known = ~np.isnan(mkt)
        ts = snapshot.daily_ts
        record = record_of(self.track)
        out: list[Signal] = []
        for j, sym in enumerate(simple.columns):
            if sym == snapshot.market:
                continue
            both = mkt_known & ~np.isnan(values[:, j])
            try:
                f = capm.fit(values[both, j], mkt[both])
            except ValueError as exc:
                log.warning("capm fit for %s failed: %s", sym, exc)
                continue
            alpha_annual = 252.0 * f.alpha
            reasoning = {
                "alpha_annual": alpha_annual,
                "alpha_t": f.alpha_t,
                "beta": f.beta,
                "r_squared": f.r_squared,
                "expected_return_annual": 252.0 * f.expected_return(),
                "nobs": f.nobs,
            }
            conf = combine_confidence(record, support_from_z(f.alpha_t))
            value = math.tanh(alpha_annual / self.alpha_scale)
            out.append(Signal(self.name, str(sym), value, conf, reasoning, ts, self.lifetime))
        return out
