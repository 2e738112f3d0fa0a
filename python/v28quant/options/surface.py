"""Implied-volatility surface from raw SVI slices of total implied variance (compiled core).

Raw SVI per expiry ``t_i`` (Gatheral 2004): total implied variance ``w = iv**2 * t`` at
log-moneyness ``y = ln(strike / F(t))``,

    w_i(y) = a + b * (rho * (y - m) + sqrt((y - m)**2 + sigma**2)).

Between expiries ``w`` is linear in ``t`` at fixed ``y``; this keeps the surface free of
calendar arbitrage whenever the slices are ordered (``w_{i+1}(y) >= w_i(y)``). Before the first
expiry ``w(y, t) = (t / t_1) w_1(y)`` (the first slice's implied vol at fixed ``y``); after the
last one ``w(y, t) = (t / t_N) w_N(y)`` (the last slice's implied vol held). The forward curve
``F(t)`` is log-linear through ``(0, spot)`` (when given) and ``(t_i, F_i)``, extended flat in
carry rate beyond its end nodes.

References
----------
J. Gatheral (2004), "A parsimonious arbitrage-free implied volatility parameterization",
Global Derivatives. J. Gatheral, A. Jacquier (2014), "Arbitrage-free SVI volatility surfaces",
Quant. Finance 14(1) (g(y), eq. 2.1). Zeliade Systems (2009), "Quasi-explicit calibration of
Gatheral's SVI model", white paper ZWP-0005.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from v28quant import _core
from v28quant._arrays import broadcast_flat, shape_out
from v28quant._typing import FloatArray
from v28quant.options import black_scholes
from v28quant.options.errors import ChainUnusable
from v28quant.options.svi_arbitrage import repair_surface

_YEAR_DAYS = 365.0
_REPORT_WIDTH = 8.0  # arbitrage_report's default half-width in ATM standard deviations
WARM_START_DAYS = 5.0  # a warm start is the same expiries seen up to a long weekend earlier
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArbitrageReport:
    """Static-arbitrage diagnostics of an SVI surface on a grid of log-moneyness.

    Attributes
    ----------
    butterfly : DataFrame
        One row per slice: ``t``, ``min_g`` (minimum of the Gatheral-Jacquier density factor
        g(y); negative means butterfly arbitrage, ``-inf`` a point where ``w <= 0``),
        ``y_at_min`` and ``free`` (``min_g >= 0``).
    calendar : DataFrame
        One row per pair of consecutive slices: ``t1``, ``t2``, ``min_dw`` (minimum of
        ``w_2(y) - w_1(y)``; negative means calendar arbitrage), ``y_at_min`` and ``free``.
    """

    butterfly: pd.DataFrame
    calendar: pd.DataFrame

    @property
    def free(self) -> bool:
        """True when no slice has butterfly and no pair has calendar arbitrage on the grid."""
        return bool(self.butterfly["free"].all() and self.calendar["free"].all())


class SviSurface:
    """Total implied variance surface of raw SVI slices, linear in maturity at fixed ``y``.

    Parameters
    ----------
    expiries : array_like, shape (n,)
        Slice maturities in years, strictly increasing, > 0.
    params : array_like, shape (n, 5)
        Raw SVI ``(a, b, rho, m, sigma)`` of total variance per slice.
    forwards : array_like, shape (n,)
        Forward price of each slice (currency per unit of underlying).
    spot : float, optional
        Spot price, the ``t = 0`` node of the forward curve.
    """

    def __init__(
        self,
        expiries: ArrayLike,
        params: ArrayLike,
        forwards: ArrayLike,
        spot: float | None = None,
    ) -> None:
        self.expiries = np.ascontiguousarray(expiries, dtype=np.float64).ravel()
        raw = np.asarray(params, dtype=np.float64)
        if raw.shape == (5,):
            raw = raw.reshape(1, 5)
        if raw.ndim != 2 or raw.shape[1] != 5:
            raise ValueError(
                f"params must have shape (n_expiries, 5) of raw SVI (a, b, rho, m, sigma), "
                f"got shape {raw.shape}"
            )
        self.params = np.ascontiguousarray(raw)
        self.forwards = np.ascontiguousarray(forwards, dtype=np.float64).ravel()
        self.spot = None if spot is None else float(spot)
        if self.spot is not None and not self.spot > 0.0:
            raise ValueError(f"spot must be > 0, got {self.spot}")
        self.fit_info: pd.DataFrame | None = None
        # Validate once (the core raises ValueError naming the bad slice).
        self._args()
        _core.svi_forward(*self._args(), np.zeros(1))

    def _args(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
        return self.expiries, self.params.ravel(), self.forwards, self.spot or 0.0

    @overload
    def total_variance(self, y: float, t: float) -> float: ...

    @overload
    def total_variance(self, y: ArrayLike, t: ArrayLike) -> FloatArray: ...

    def total_variance(self, y: ArrayLike, t: ArrayLike) -> float | FloatArray:
        """Total implied variance ``w(y, t)`` (years * vol^2); ``y = ln(K / F(t))``, ``t >= 0``."""
        flat, shape, scalar = broadcast_flat(("y", "t"), y, t)
        return shape_out(_core.svi_total_variance(*self._args(), *flat), shape, scalar)

    @overload
    def implied_vol(self, strike: float, t: float) -> float: ...

    @overload
    def implied_vol(self, strike: ArrayLike, t: ArrayLike) -> FloatArray: ...

    def implied_vol(self, strike: ArrayLike, t: ArrayLike) -> float | FloatArray:
        """Annualised Black implied vol at ``strike`` and maturity ``t > 0`` (years)."""
        flat, shape, scalar = broadcast_flat(("strike", "t"), strike, t)
        return shape_out(_core.svi_implied_vol(*self._args(), *flat), shape, scalar)

    @overload
    def forward(self, t: float) -> float: ...

    @overload
    def forward(self, t: ArrayLike) -> FloatArray: ...

    def forward(self, t: ArrayLike) -> float | FloatArray:
        """Forward ``F(t)`` of the surface's forward curve."""
        flat, shape, scalar = broadcast_flat(("t",), t)
        return shape_out(_core.svi_forward(*self._args(), flat[0]), shape, scalar)

    @overload
    def log_moneyness(self, strike: float, t: float) -> float: ...

    @overload
    def log_moneyness(self, strike: ArrayLike, t: ArrayLike) -> FloatArray: ...

    def log_moneyness(self, strike: ArrayLike, t: ArrayLike) -> float | FloatArray:
        """``y = ln(strike / F(t))``."""
        return np.log(np.asarray(strike, dtype=np.float64)) - np.log(self.forward(t))

    def arbitrage_report(self, n_y: int = 2001, width: float = _REPORT_WIDTH) -> ArbitrageReport:
        """Butterfly (``g(y) >= 0``) and calendar (``w`` non-decreasing in ``t``) checks.

        Each slice is scanned on ``n_y`` points of ``|y| <= width * sqrt(w_i(0))`` (``width``
        ATM standard deviations); each consecutive pair on the later slice's range. Because
        ``w`` is linear in ``t`` between slices, ordered slices imply an arbitrage-free surface
        in maturity.
        """
        bfly, cal = _scan(self.params, n_y, width)
        t = self.expiries
        return ArbitrageReport(
            pd.DataFrame(
                [(t[i], g, y, g >= 0.0) for i, (g, y) in enumerate(bfly)],
                columns=["t", "min_g", "y_at_min", "free"],
            ),
            pd.DataFrame(
                [(t[i], t[i + 1], dw, y, dw >= 0) for i, (dw, y) in enumerate(cal)],
                columns=["t1", "t2", "min_dw", "y_at_min", "free"],
            ),
        )

    @classmethod
    def fit(
        cls,
        chain: pd.DataFrame,
        *,
        quote_date: Any = None,
        spot: float | None = None,
        quotes: str = "mid",
        min_t: float = 2.0 / _YEAR_DAYS,
        max_rel_spread: float = 0.5,
        min_quotes: int = 8,
        parity_strikes: int = 6,
        max_abs_y: float | None = None,
        rate: float | None = None,
        repair: bool = True,
        max_repair_rmse: float = 5.0,
        warm_start: SviSurface | None = None,
    ) -> SviSurface:
        """Fit one raw SVI slice per expiry to the out-of-the-money quotes of an option chain.

        Parameters
        ----------
        chain : DataFrame
            One row per contract with columns ``strike``, ``type`` (``"call"``/``"put"`` or
            ``"C"``/``"P"``), ``bid`` and ``ask`` (option prices), and either ``t`` (years) or
            ``expiration`` with ``quote_date`` (a column or the argument; ACT/365). With
            ``quotes="iv"`` the column ``iv`` (decimal) supplies the implied vols while mids
            still give the forward.
        spot : float, optional
            Spot price, stored as the ``t = 0`` node of the forward curve.
        min_t : float
            Expiries shorter than this (years) are dropped (0DTE contracts).
        max_rel_spread : float
            Quotes with ``(ask - bid) / mid`` above this are dropped; ``bid > 0`` is required.
        min_quotes : int
            Expiries with fewer usable OTM quotes are dropped.
        parity_strikes : int
            Number of strikes nearest the money (smallest ``|C - P|``) in the put-call parity
            regression ``C - P = D F - D K`` giving the forward ``F`` and discount ``D``.
        max_abs_y : float, optional
            Keep only quotes with ``|ln(K / F)| <= max_abs_y``.
        rate : float, optional
            Continuously compounded rate fixing the discount ``D = exp(-rate t)``; the forward
            is then the median of ``K + (C - P) / D`` over the ``parity_strikes`` nearest the
            money. Use it for American options (SPY), whose early-exercise premia bias the
            regressed ``D`` (above 1 on short expiries).
        repair : bool
            When the free fits have static arbitrage (butterfly, calendar or Lee's bound, on
            1.5 times the range :meth:`arbitrage_report` scans), refit all slices jointly
            under the no-arbitrage conditions (:func:`v28quant.options.svi_arbitrage.
            repair_surface`); ``fit_info["repaired"]`` says it was done.
            With ``repair=False`` the surface follows the quotes and :meth:`arbitrage_report`
            says where arbitrage remains.
        max_repair_rmse : float
            Largest RMSE (vol points) of any refitted slice against its quotes: beyond it the
            quotes themselves cross too far for an arbitrage-free SVI surface to follow them,
            and ``ChainUnusable`` is raised rather than a surface far from the market returned.
        warm_start : SviSurface, optional
            An earlier fit of the same expiries (the previous cycle's): where the joint refit
            is needed and this surface has one slice per fitted expiry, each within
            ``WARM_START_DAYS`` of its maturity, the refit starts from its slices, which
            follows quotes that moved a little in a fraction of the time. Ignored otherwise.

        Raises
        ------
        ValueError
            A frame that is not a chain (a missing column, no maturity) or a bad argument.
        ChainUnusable
            A ``ValueError`` for quotes that cannot be fitted: no usable expiry, or, with
            ``repair``, free fits from which no arbitrage-free surface within
            ``max_repair_rmse`` of the quotes was reached.

        Notes
        -----
        Only out-of-the-money quotes are used (puts below the forward, calls at or above it),
        so early-exercise premia of American options (SPY) mostly drop out; prices are
        undiscounted by ``D`` and inverted to Black total variance. Each slice is first fitted
        freely (quasi-explicit); the joint refit, when needed, minimises the same squared
        errors in total variance over all slices at once, so a crossing far beyond the quotes
        is resolved in the unquoted wings rather than by bending a quoted smile. The
        per-expiry forward, discount, quote count, fit error (RMSE and max error in vol points)
        and whether the slice was ``repaired`` are stored in ``fit_info``.
        """
        if quotes not in ("mid", "iv"):
            raise ValueError(f"quotes must be 'mid' or 'iv', got {quotes!r}")
        for col in ("strike", "type", "bid", "ask"):
            if col not in chain.columns:
                raise ValueError(f"chain is missing the column {col!r}")
        if "t" in chain.columns:
            t_all = chain["t"].to_numpy(dtype=float)
        else:
            if "expiration" not in chain.columns:
                raise ValueError("chain needs a 't' column or an 'expiration' column")
            qd = quote_date if quote_date is not None else chain.get("quote_date")
            if qd is None:
                raise ValueError("give quote_date (argument or column) with 'expiration'")
            days = (pd.to_datetime(chain["expiration"]) - pd.to_datetime(qd)).dt.days
            t_all = days.to_numpy(dtype=float) / _YEAR_DAYS
        # plain arrays from here: pandas steps per expiry cost more than the fits
        codes, types = pd.factorize(chain["type"])  # a missing type is code -1: not a call
        c_all = np.array([*(str(x).lower().startswith("c") for x in types), False])[codes]
        k_all = chain["strike"].to_numpy(dtype=float)
        bid, ask = chain["bid"].to_numpy(dtype=float), chain["ask"].to_numpy(dtype=float)
        mid_all = 0.5 * (bid + ask)
        with np.errstate(invalid="ignore", divide="ignore"):
            use = (t_all >= min_t) & (bid > 0) & (ask >= bid)
            use &= (ask - bid) / mid_all <= max_rel_spread
        t_all, k_all, c_all, mid_all = t_all[use], k_all[use], c_all[use], mid_all[use]
        iv_all = chain["iv"].to_numpy(dtype=float)[use] if quotes == "iv" else None

        rows, info = [], []
        for t in np.unique(t_all):
            at = np.flatnonzero(t_all == t)
            k_g, c_g, mid_g = k_all[at], c_all[at], mid_all[at]
            strikes, diff = _parity_pairs(k_g, c_g, mid_g)
            if len(strikes) < 2:
                continue
            near = np.argsort(np.abs(diff))[: max(parity_strikes, 2)]
            if rate is None:
                slope, intercept = np.polyfit(strikes[near], diff[near], 1)
                disc = -slope
                if not disc > 0:
                    continue
                fwd = intercept / disc
            else:
                disc = float(np.exp(-rate * float(t)))
                fwd = float(np.median(strikes[near] + diff[near] / disc))
            otm = np.where(k_g < fwd, ~c_g, c_g)
            k = k_g[otm]
            if iv_all is not None:
                w = iv_all[at][otm] ** 2 * float(t)
            else:
                # Undiscount by D and invert Black on the forward (Jaeckel's Let's Be Rational);
                # NaN for a mid outside the no-arbitrage bounds.
                iv = black_scholes.black_implied_vol(
                    mid_g[otm] / disc,
                    fwd,
                    k,
                    float(t),
                    call=c_g[otm],
                )
                w = np.asarray(iv) ** 2 * float(t)
            y = np.log(k / fwd)
            ok = np.isfinite(w) & (w > 0)
            if max_abs_y is not None:
                ok &= np.abs(y) <= max_abs_y
            y, w = y[ok], w[ok]
            if len(y) < max(min_quotes, 5):
                continue
            params = np.array(_core.svi_fit_slice(y, w, np.empty(0))[0])
            params[1] = max(params[1], 0.0)  # a flat smile's b comes out as -1e-13
            rows.append((float(t), params, fwd))
            info.append(
                {
                    "t": float(t),
                    "forward": fwd,
                    "discount": disc,
                    "n_quotes": len(y),
                    "y": y,
                    "w": w,
                }
            )
        if not rows:
            raise ChainUnusable("no expiry had enough usable out-of-the-money quotes to fit")
        surf = cls(
            [r[0] for r in rows],
            _repair(rows, info, enabled=repair, max_rmse=max_repair_rmse, warm=warm_start),
            [r[2] for r in rows],
            spot,
        )
        surf.fit_info = pd.DataFrame(info)
        return surf


def _parity_pairs(
    strike: NDArray[np.float64], is_call: NDArray[np.bool_], mid: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the strikes quoted as both call and put (ascending) and mean call - put mids."""
    means = []
    for side in (is_call, ~is_call):
        ks, inv = np.unique(strike[side], return_inverse=True)
        means.append((ks, np.bincount(inv, mid[side]) / np.bincount(inv)))
    (kc, mc), (kp, mp) = means
    both, ic, ip = np.intersect1d(kc, kp, assume_unique=True, return_indices=True)
    return both, mc[ic] - mp[ip]


def _repair(
    rows: list[tuple[float, NDArray[np.float64], float]],
    info: list[dict[str, Any]],
    *,
    enabled: bool,
    max_rmse: float,
    warm: SviSurface | None,
) -> NDArray[np.float64]:
    """Refit the slices jointly under the no-arbitrage conditions when ``enabled`` and needed.

    The conditions are held on 1.5 times the range :meth:`SviSurface.arbitrage_report` scans
    for each slice (and for each pair, the later slice's), so the report finds the refitted
    surface free even where a slice's ATM variance moved. Fills the fit errors and
    ``repaired`` into ``info``.
    """
    params = np.array([r[1] for r in rows])
    ys, ws = [row.pop("y") for row in info], [row.pop("w") for row in info]
    half = np.array([1.5 * _report_half_width(p) for p in params])
    repaired = False
    if enabled:
        bfly, cal = _scan(params, 2001, 1.5 * _REPORT_WIDTH)
        if not all(v >= 0.0 for v, _ in [*bfly, *cal]):  # NaN (w <= 0) is arbitrage too
            start = None
            if warm is not None and len(warm.expiries) == len(rows):
                gap = np.abs(warm.expiries - np.array([r[0] for r in rows])) * _YEAR_DAYS
                start = warm.params if np.all(gap <= WARM_START_DAYS) else None
            params = repair_surface(params, ys, ws, half, start=start)
            repaired = True
            _log.debug(
                "SVI surface of %d slices had static arbitrage; refitted jointly under the "
                "no-arbitrage conditions",
                len(rows),
                extra={"slices": len(rows)},
            )
    for row, p, y, w in zip(info, params, ys, ws, strict=True):
        t = row["t"]
        err = 100.0 * (np.sqrt(_core.svi_slice_derivs(p, y)[0] / t) - np.sqrt(w / t))
        row["rmse_vol_pts"] = float(np.sqrt(np.mean(err**2)))
        row["max_err_vol_pts"] = float(np.max(np.abs(err)))
        row["repaired"] = repaired
    worst = max(info, key=lambda row: row["rmse_vol_pts"])
    if repaired and worst["rmse_vol_pts"] > max_rmse:
        raise ChainUnusable(
            f"no arbitrage-free SVI surface within {max_rmse} vol points of the quotes",
            f"the refit misses the expiry t={worst['t']:.4f} by {worst['rmse_vol_pts']:.1f} "
            "(RMSE); the quotes cross too far (check the forwards and the rate)",
        )
    return params


def _scan(
    params: NDArray[np.float64], n_y: int, width: float
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Minimum of g per slice and of ``w_{i+1} - w_i`` per pair, each with its ``y``.

    Slice i is scanned on ``n_y`` points of ``|y| <= width * sqrt(w_i(0))``, pair (i, i + 1)
    on the later slice's points. ``g`` is ``-inf`` where ``w <= 0`` (no density there).
    """
    bfly, cal = [], []
    p_prev = None
    for p in params:
        half = _report_half_width(p, width)
        y = np.linspace(-half, half, n_y)
        w, _, _, g = _core.svi_slice_derivs(p, y)
        g = np.nan_to_num(g, nan=-np.inf)
        j = int(np.argmin(g))
        bfly.append((float(g[j]), float(y[j])))
        if p_prev is not None:
            dw = w - _core.svi_slice_derivs(p_prev, y)[0]
            j = int(np.argmin(dw))
            cal.append((float(dw[j]), float(y[j])))
        p_prev = p
    return bfly, cal


def _report_half_width(p: NDArray[np.float64], width: float = _REPORT_WIDTH) -> float:
    """Half-width of the log-moneyness range scanned for a slice: ``width`` ATM std devs."""
    w0 = float(_core.svi_slice_derivs(p, np.zeros(1))[0][0])
    return float(width * np.sqrt(max(w0, 1e-8)))


def fit_slice(
    y: ArrayLike, w: ArrayLike, weights: ArrayLike | None = None
) -> tuple[NDArray[np.float64], float]:
    """Quasi-explicit raw SVI fit of one slice (Zeliade 2009).

    Parameters
    ----------
    y : array_like
        Log-moneyness ``ln(K / F)``.
    w : array_like
        Total implied variance ``iv**2 * t`` (years * vol^2), > 0.
    weights : array_like, optional
        Non-negative least-squares weights (default ones).

    Returns
    -------
    params : ndarray, shape (5,)
        ``(a, b, rho, m, sigma)``.
    rmse : float
        Weighted root-mean-square error in total variance.
    """
    yy = np.ascontiguousarray(y, dtype=np.float64).ravel()
    ww = np.ascontiguousarray(w, dtype=np.float64).ravel()
    wt = np.empty(0) if weights is None else np.ascontiguousarray(weights, dtype=np.float64).ravel()
    params, rmse, _ = _core.svi_fit_slice(yy, ww, wt)
    return np.asarray(params, dtype=np.float64), float(rmse)
