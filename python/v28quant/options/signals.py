"""Per-cycle option analysis: chain -> surface -> model values -> mispricing ``Signal`` objects.

For one underlying and one chain snapshot, ``OptionsAnalyser.analyse``:

1. keeps the liquid contracts (``contracts.liquidity_filter``) and fits an SVI surface
   (``v28quant.options.surface``) to the out-of-the-money quotes of the expiries in
   ``surface_dte``, free of static arbitrage (a needed refit starts from the previous cycle's
   surface);
2. reads the 30-day at-the-money implied vol off the surface and ranks it against its own
   history (the journal's record of this very number, one value per session) or, while that
   history is shorter than ``min_history_days``, against trailing 21-day realised vol times a
   variance-risk-premium factor, computed from the feed's daily closes (labelled as a proxy);
3. values the candidate contracts (out of the money, ``candidate_dte``, |delta| in
   ``candidate_delta``) with: the surface (BSM at the SVI vol); Heston, calibrated per
   underlying on the out-of-the-money quotes (warm-started from the previous cycle); Merton
   with jumps fitted to the underlying's daily returns, used only where jump risk matters
   (excess kurtosis above ``jump_kurtosis``); and the CRR tree for the early-exercise premium
   of these American contracts, removed from the market mid before the vol compared with
   Merton's European prices is inverted;
4. expresses the mispricing in vol points (market IV - model IV, the market IV on the basis
   each model was fitted on: raw mids for the surface and Heston) with a standard error made
   of the half bid-ask spread in vol and the spread between the models, and a z-score;
5. the engine adds Monte Carlo for the path-dependent quantity its strategies care about, the
   probability of touching a short strike before expiry (``v28quant.options.touch``).

Vol views go to the aggregator under the symbol ``"<UNDERLYING>:IV"`` (``vol_symbol``), never
mixed with directional views on the underlying itself. Their ``value`` is the premium-selling
edge: +1 implied vol rich (sell premium), -1 cheap (buy premium). ``confidence`` follows the
project's meaning (how much the model's fit and current inputs support the value): it is
``record x support``. The record is the fit quality ``1 / (1 + rmse)`` (rmse of the model's
fit in vol points; for Merton, fitted to past returns rather than to prices, its relative
moment mismatch in percent and a factor 1/2) times the share of candidates priced; the support
is ``erf(|z| / sqrt 2)``, how many standard errors the mean edge is from zero. Merton's edge
is a variance risk premium (implied vol against a jump-diffusion fitted to realised returns)
and stays out of the consensus.

References
----------
J. Gatheral (2006), "The Volatility Surface", Wiley, ch. 3 (SVI) and ch. 2 (Heston).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from v28quant.options import contracts as C
from v28quant.options.black_scholes import implied_vol
from v28quant.options.errors import ChainUnusable
from v28quant.options.iv_rank import iv_rank, realised_vol_history
from v28quant.options.slices import spread_expiries, thin_strikes
from v28quant.options.surface import SviSurface
from v28quant.quant_models import crr_binomial, heston_model, merton_jump_diffusion
from v28quant.quant_models.heston_model import HestonParams
from v28quant.signals import Signal


def vol_symbol(underlying: str) -> str:
    """Return the aggregator symbol of an underlying's vol views (``"SPY:IV"``)."""
    return f"{underlying.upper()}:IV"


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """Windows and model switches of ``OptionsAnalyser`` (days are calendar days)."""

    rate: float = 0.045
    surface_dte: tuple[int, int] = (5, 120)
    max_abs_y: float = 0.35
    max_slices: int = 5
    max_strikes_per_slice: int = 30
    heston_dte: tuple[int, int] = (14, 120)
    heston_expiries: int = 3
    candidate_dte: tuple[int, int] = (14, 60)
    candidate_delta: tuple[float, float] = (0.10, 0.60)
    max_candidates: int = 40
    heston_max_quotes: int = 30
    jump_kurtosis: float = 1.0
    crr_steps: int = 150
    mc_paths: int = 4000
    mc_steps_per_day: int = 2
    min_history_days: int = 20
    variance_risk_premium: float = 1.10
    liquidity: C.LiquidityRules = field(default_factory=C.LiquidityRules)


@dataclass
class ChainAnalysis:
    """Everything one cycle learnt about one underlying's options (journaled as reasoning)."""

    underlying: str
    as_of: datetime
    snapshot_id: str
    spot: float
    chain: pd.DataFrame
    liquidity: C.LiquidityReport
    surface: SviSurface
    fit_rmse_vol_pts: float
    atm_iv_30d: float
    iv_rank: float
    iv_percentile: float
    iv_history_source: str
    heston: heston_model.HestonCalibration | None
    merton: merton_jump_diffusion.MertonMomentFit | None
    candidates: pd.DataFrame
    signals: list[Signal]

    def summary(self) -> dict[str, Any]:
        """Return the JSON-ready numbers a decision cites."""
        h = self.heston
        info = self.surface.fit_info
        return {
            "snapshot_id": self.snapshot_id,
            "as_of": self.as_of.isoformat(),
            "spot": round(self.spot, 4),
            "liquid_contracts": self.liquidity.kept,
            "dropped": self.liquidity.dropped,
            "surface_slices": len(self.surface.expiries),
            "surface_rmse_vol_pts": round(self.fit_rmse_vol_pts, 4),
            # whether the free SVI fits had static arbitrage and were refitted without it
            "surface_repaired": info is not None and bool(info["repaired"].any()),
            "atm_iv_30d": round(self.atm_iv_30d, 5),
            "iv_rank": round(self.iv_rank, 4),
            "iv_percentile": round(self.iv_percentile, 4),
            "iv_history": self.iv_history_source,
            "heston": None
            if h is None
            else {
                **{k: round(v, 5) for k, v in h.params._asdict().items()},
                "rmse_vol_pts": round(h.rmse_vol_points, 4),
                "feller": h.feller,
            },
            "merton": None
            if self.merton is None
            else {
                "lam": round(self.merton.lam, 4),
                "mu_j": round(self.merton.mu_j, 5),
                "delta_j": round(self.merton.delta_j, 5),
            },
            "candidates": len(self.candidates),
        }


# the candidates' columns a model-value table carries, and the columns it adds
_VALUE_COLUMNS = (
    "symbol",
    "type",
    "strike",
    "expiry",
    "dte",
    "t",
    "bid",
    "ask",
    "mid",
    "div",
    "model_iv",
    "m_delta",
    "m_vega",
    "open_interest",
    "rel_spread",
)
_MODEL_COLUMNS = (
    "eep",
    "market_iv",
    "fit_iv",
    "heston_iv",
    "merton_iv",
    "edge_vol_pts",
    "stderr_vol_pts",
    "z",
)


# the value table's implied vols the signals compare
_IV_COLUMNS = ("model_iv", "market_iv", "fit_iv", "heston_iv", "merton_iv")


def snapshot_id(chain: pd.DataFrame) -> str:
    """Return a 16-hex-digit digest of a chain's contracts and quotes (same quotes, same id)."""
    h = hashlib.sha256()
    h.update(str(chain.attrs.get("as_of")).encode())
    h.update("\n".join(map(str, chain["symbol"].tolist())).encode())
    quotes = np.column_stack([chain["bid"].to_numpy(float), chain["ask"].to_numpy(float)])
    h.update(quotes.tobytes())
    return h.hexdigest()[:16]


def _fit_quotes(
    liquid: pd.DataFrame, rows: np.ndarray, strike: np.ndarray, t: np.ndarray
) -> pd.DataFrame:
    """Return the columns ``SviSurface.fit`` reads of the chosen ``rows``, in their order."""
    return pd.DataFrame(
        {
            "strike": strike[rows],
            "type": liquid["type"].array.take(rows),
            "bid": liquid["bid"].to_numpy(dtype=float)[rows],
            "ask": liquid["ask"].to_numpy(dtype=float)[rows],
            "t": t[rows],
        }
    )


def _numeric_columns(ann: pd.DataFrame) -> dict[str, np.ndarray]:
    """Return the annotated chain's columns the candidate and Heston steps read, as arrays."""
    cols = {c: ann[c].to_numpy(dtype=float) for c in ("strike", "t", "div", "mid", "m_delta")}
    cols["rel_spread"] = ann["rel_spread"].to_numpy(dtype=float)
    cols["dte"] = ann["dte"].to_numpy()
    cols["call"] = (ann["type"] == "call").to_numpy()
    return cols


def _confidence(record: float, z: float) -> float:
    """Return ``record x erf(|z| / sqrt 2)``: fit quality times how far the edge is from 0."""
    if not math.isfinite(z):
        return 0.0
    return float(np.clip(record, 0.0, 1.0) * math.erf(abs(z) / math.sqrt(2.0)))


def _tanh_signal(x: float) -> float:
    return float(np.clip(math.tanh(x), -1.0, 1.0))


class OptionsAnalyser:
    """Chain -> surface -> model values -> ``Signal`` objects, per underlying and cycle.

    Keeps the last Heston parameters and SVI surface per underlying to warm-start the next
    cycle's calibration and arbitrage-free refit.
    """

    def __init__(self, settings: AnalysisSettings | None = None) -> None:
        self.settings = settings or AnalysisSettings()
        self._heston_prev: dict[str, HestonParams] = {}
        self._surface_prev: dict[str, SviSurface] = {}

    def analyse(
        self,
        underlying: str,
        chain: pd.DataFrame,
        *,
        now: datetime,
        iv_history: Sequence[float] = (),
        daily_closes: np.ndarray | None = None,
    ) -> ChainAnalysis:
        """Analyse one chain snapshot (see the module docstring).

        Parameters
        ----------
        underlying : str
        chain : DataFrame
            A chain frame (``CHAIN_COLUMNS``) at ``now``.
        now : datetime
            Data time of the snapshot (venue or simulated clock), timezone-aware.
        iv_history : sequence of float
            Earlier 30-day ATM implied vols of this underlying, one per session.
        daily_closes : ndarray, optional
            The underlying's daily closes up to now (realised-vol proxy history and the
            Merton jump fit).

        Raises
        ------
        ChainUnusable
            When no liquid quotes remain, no underlying price can be read or inferred, or no
            arbitrage-free surface can be fitted (the ``reason`` says which).
        """
        cfg = self.settings
        und = underlying.upper()
        sid = snapshot_id(chain)
        liquid, report = C.liquidity_filter(chain, cfg.liquidity)
        if liquid.empty:
            raise ChainUnusable("no liquid contracts in the chain", f"dropped: {report.dropped}")
        try:
            spot = C.implied_spot(liquid, cfg.rate, now)
        except C.NoContract as exc:
            raise ChainUnusable(str(exc)) from exc  # fixed text: the same reason each time
        # the snapshot's metadata is read: drop it, or every pandas step below deep-copies it
        liquid.attrs = {}
        t, dte = C.maturities(liquid, now)
        iv = liquid["iv"].to_numpy(dtype=float)
        # quotes the feed gave no implied vol for (stale, crossed) stay out of the surface
        quoted = (t > 0) & np.isfinite(iv) & (iv > 0)
        lo, hi = cfg.surface_dte
        rows = np.flatnonzero(quoted & (dte >= lo) & (dte <= hi))
        if not rows.size:  # only short-dated series listed: fit what there is
            rows = np.flatnonzero(quoted & (t > 1.5 / 365.0))
        rows = rows[spread_expiries(dte[rows], cfg.max_slices, cfg.candidate_dte)]
        strike = liquid["strike"].to_numpy(dtype=float)
        expiry = liquid["expiry"].to_numpy()
        rows = rows[
            thin_strikes(strike[rows], expiry[rows], spot, cfg.max_abs_y, cfg.max_strikes_per_slice)
        ]
        surface = SviSurface.fit(
            _fit_quotes(liquid, rows, strike, t),
            spot=spot,
            rate=cfg.rate,
            min_quotes=6,
            max_abs_y=cfg.max_abs_y,
            warm_start=self._surface_prev.get(und),
        )
        self._surface_prev[und] = surface
        info = surface.fit_info
        rmse = float(np.sqrt(np.mean(info["rmse_vol_pts"] ** 2))) if info is not None else 0.0
        ann = C.annotate(
            liquid, spot=spot, now=now, rate=cfg.rate, surface=surface, maturity=(t, dte)
        )
        t30 = 30.0 / 365.0
        atm = float(surface.implied_vol(float(surface.forward(t30)), t30))
        hist, source = list(iv_history), "journal"
        if len(hist) < cfg.min_history_days:
            proxy = (
                realised_vol_history(daily_closes) * cfg.variance_risk_premium
                if daily_closes is not None
                else np.empty(0)
            )
            hist, source = [*proxy[-252:].tolist(), *hist], "realised_vol_proxy"
        rank, pct = iv_rank(atm, hist)
        cols = _numeric_columns(ann)
        heston = self._heston(und, cols, spot)
        merton = self._merton(daily_closes)
        values = self._model_values(ann, self._candidates(cols), spot, heston, merton)
        signals = self._signals(und, now, values, rmse, heston, merton, atm, rank, source)
        return ChainAnalysis(
            und,
            now,
            sid,
            spot,
            ann,
            report,
            surface,
            rmse,
            atm,
            rank,
            pct,
            source,
            heston,
            merton,
            values,
            signals,
        )

    # -- steps ------------------------------------------------------------------------------

    def _candidates(self, ann: dict[str, np.ndarray]) -> np.ndarray:
        """Return the rows of the annotated chain to value (its columns ``ann``)."""
        cfg = self.settings
        delta, dte = ann["m_delta"], ann["dte"]
        d = np.abs(delta)
        fwd_otm = np.where(ann["call"], delta < 0.5, delta > -0.5)
        keep = np.flatnonzero(
            (dte >= cfg.candidate_dte[0])
            & (dte <= cfg.candidate_dte[1])
            & (d >= cfg.candidate_delta[0])
            & (d <= cfg.candidate_delta[1])
            & fwd_otm
        )
        if len(keep) > cfg.max_candidates:
            spread = ann["rel_spread"][keep]
            keep = keep[np.argsort(spread, kind="stable")[: cfg.max_candidates]]
        return keep

    def _heston(
        self, und: str, ann: dict[str, np.ndarray], spot: float
    ) -> heston_model.HestonCalibration | None:
        cfg = self.settings
        lo, hi = cfg.heston_dte
        k, t, div, dte, call = ann["strike"], ann["t"], ann["div"], ann["dte"], ann["call"]
        y = np.log(k / (spot * np.exp((cfg.rate - div) * t)))
        otm = np.where(y < 0, ~call, call)
        sel = np.flatnonzero((dte >= lo) & (dte <= hi) & otm & (np.abs(y) <= cfg.max_abs_y))
        # a few expiries spread over the window: each costs a quadrature per evaluation
        dtes = np.unique(dte[sel])
        if len(dtes) > cfg.heston_expiries:
            pick = np.unique(np.linspace(0, len(dtes) - 1, cfg.heston_expiries).round())
            sel = sel[np.isin(dte[sel], dtes[pick.astype(int)])]
        if len(sel) < 8:
            return None
        if len(sel) > cfg.heston_max_quotes:
            idx = np.linspace(0, len(sel) - 1, cfg.heston_max_quotes).round().astype(int)
            sel = sel[np.unique(idx)]
        mid = ann["mid"]
        try:
            cal = heston_model.calibrate(
                spot,
                k[sel],
                t[sel],
                cfg.rate,
                div[sel],
                mid[sel],
                call[sel],
                initial=self._heston_prev.get(und),
                max_iterations=40,
            )
        except ValueError:
            return None
        if not math.isfinite(cal.rmse_vol_points):
            return None
        self._heston_prev[und] = cal.params
        return cal

    def _merton(self, closes: np.ndarray | None) -> merton_jump_diffusion.MertonMomentFit | None:
        if closes is None or len(closes) < 250:
            return None
        c = np.asarray(closes, dtype=float)[-504:]
        if not (np.isfinite(c).all() and (c > 0).all()):
            return None  # no log returns from a bad close; the symbol's data checks log it
        r = np.diff(np.log(c))
        try:
            fit = merton_jump_diffusion.calibrate_from_returns(r)
        except ValueError:
            return None
        # jump risk matters only when the tails are fat enough to move option values
        return fit if fit.excess_kurtosis > self.settings.jump_kurtosis and fit.lam > 0 else None

    def _model_values(
        self,
        ann: pd.DataFrame,
        rows: np.ndarray,
        spot: float,
        heston: heston_model.HestonCalibration | None,
        merton: merton_jump_diffusion.MertonMomentFit | None,
    ) -> pd.DataFrame:
        """Return the model-value table of the annotated chain's candidate ``rows``."""
        cfg = self.settings
        out = {name: ann[name].array.take(rows) for name in _VALUE_COLUMNS}
        n = len(rows)
        if not n:
            return pd.DataFrame({**out, **{name: np.empty(0) for name in _MODEL_COLUMNS}})
        c = {name: np.asarray(out[name]) for name in ("strike", "t", "div", "model_iv", "mid")}
        k, t, q, iv, mid = c["strike"], c["t"], c["div"], c["model_iv"], c["mid"]
        call = np.asarray(out["type"]) == "call"
        steps = max(cfg.crr_steps, 1)
        amer = crr_binomial.price(spot, k, t, cfg.rate, q, iv, call, True, steps)
        euro = crr_binomial.price(spot, k, t, cfg.rate, q, iv, call, False, steps)
        eep = np.maximum(np.asarray(amer) - np.asarray(euro), 0.0)
        market_iv = np.asarray(implied_vol(mid - eep, spot, k, t, cfg.rate, q, call))
        # the surface and Heston were fitted to raw (American) mids: their edge is measured on
        # the same basis, else the early-exercise premium reads as puts priced cheap
        fit_iv = np.asarray(implied_vol(mid, spot, k, t, cfg.rate, q, call))
        models = [iv]
        heston_iv = np.full(n, np.nan)
        if heston is not None:
            hp = heston_model.price(spot, k, t, cfg.rate, q, *heston.params, call=call)
            heston_iv = np.asarray(implied_vol(hp, spot, k, t, cfg.rate, q, call))
            models.append(heston_iv)
        merton_iv = np.full(n, np.nan)
        if merton is not None:
            mp = merton_jump_diffusion.price(
                spot, k, t, cfg.rate, q, merton.vol, merton.lam, merton.mu_j, merton.delta_j, call
            )
            # a physical-measure (returns) fit: its edge is a variance risk premium, reported
            # on its own, never averaged into the risk-neutral consensus
            merton_iv = np.asarray(implied_vol(mp, spot, k, t, cfg.rate, q, call))
        stack = np.vstack(models)
        consensus = np.nanmean(stack, axis=0)
        spread = np.nanstd(stack, axis=0) if len(models) > 1 else np.zeros(n)
        vega = np.maximum(np.asarray(out["m_vega"]), 1e-8)
        half_spread_vol = 0.5 * (np.asarray(out["ask"]) - np.asarray(out["bid"])) / vega
        edge = 100.0 * (fit_iv - consensus)
        stderr = 100.0 * np.sqrt(half_spread_vol**2 + spread**2)
        # one frame from the columns: pandas pays per column set, not per row
        return pd.DataFrame(
            {
                **out,
                "eep": eep,
                "market_iv": market_iv,
                "fit_iv": fit_iv,
                "heston_iv": heston_iv,
                "merton_iv": merton_iv,
                "edge_vol_pts": edge,
                "stderr_vol_pts": stderr,
                "z": edge / np.maximum(stderr, 1e-6),
            }
        )

    def _signals(
        self,
        und: str,
        now: datetime,
        v: pd.DataFrame,
        surface_rmse: float,
        heston: heston_model.HestonCalibration | None,
        merton: merton_jump_diffusion.MertonMomentFit | None,
        atm: float,
        rank: float,
        source: str,
    ) -> list[Signal]:
        sym = vol_symbol(und)
        out: list[Signal] = []
        ivs = {c: v[c].to_numpy(dtype=float) for c in _IV_COLUMNS}
        priced = float(np.isfinite(ivs["market_iv"]).mean()) if len(v) else 0.0
        stderr = v["stderr_vol_pts"].to_numpy(dtype=float)

        def edge(col: str) -> tuple[float, float, float, int]:
            if len(v) == 0 or not np.isfinite(ivs[col]).any():
                return math.nan, math.nan, math.nan, 0
            # Merton (fitted to returns) prices European options: compare the European mid
            ref = "market_iv" if col == "merton_iv" else "fit_iv"
            e = 100.0 * (ivs[ref] - ivs[col])
            ok = np.isfinite(e) & np.isfinite(stderr)
            if not ok.any():
                return math.nan, math.nan, math.nan, 0
            se = stderr[ok]
            z = float(np.mean(e[ok] / np.maximum(se, 1e-6)))
            return float(e[ok].mean()), float(se.mean() / math.sqrt(ok.sum())), z, int(ok.sum())

        for name, col, rmse in (
            ("options_surface", "model_iv", surface_rmse),
            ("options_heston", "heston_iv", None if heston is None else heston.rmse_vol_points),
            ("options_merton", "merton_iv", None if merton is None else 100 * merton.max_residual),
        ):
            if rmse is None:
                continue
            e, se, z, n = edge(col)
            if n == 0:
                continue
            # the Merton fit is to past returns, not to these prices: half the weight
            scale = 0.5 if name == "options_merton" else 1.0
            out.append(
                Signal(
                    name,
                    sym,
                    _tanh_signal(z / 2.0),
                    _confidence(scale * priced / (1.0 + rmse), z),
                    {
                        "meaning": "implied minus model vol: +1 rich (sell premium), -1 cheap",
                        "edge_vol_pts": round(e, 4),
                        "stderr_vol_pts": round(se, 4),
                        "z": round(z, 3),
                        "contracts": n,
                        "fit_rmse_vol_pts": round(rmse, 4),
                    },
                    now,
                )
            )
        conf = 0.8 if source == "journal" else 0.4
        out.append(
            Signal(
                "options_iv_rank",
                sym,
                float(np.clip(2.0 * rank - 1.0, -1.0, 1.0)),
                conf,
                {
                    "meaning": "IV rank: +1 at the top of its range (sell premium)",
                    "atm_iv_30d": round(atm, 6),
                    "iv_rank": round(rank, 4),
                    "history": source,
                },
                now,
            )
        )
        return out
