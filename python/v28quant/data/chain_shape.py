"""The shape of synthetic implied-volatility surfaces: SSVI smiles on a mean-reverting term.

Smile: each expiry is an SSVI slice of total implied variance (Gatheral and Jacquier,
"Arbitrage-free SVI volatility surfaces", Quantitative Finance 14(1), 2014, eq. 4.1)::

    w(k) = theta / 2 * (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2)),

with ``k = ln(K / F)``, ``theta`` the at-the-money total variance and ``phi`` the slice's
curvature. Its at-the-money skew is ``d iv / dk = rho phi iv_atm / 2``: proportional to the vol
level at a given ``phi``, as on real SPY chains (the log-vol skew ``d ln iv / dk`` one month out
was about -3.3 both on a calm day at 10 % vol and a stressed one at 22 %). So ``phi`` follows
time to expiry, ``phi(t) = eta t^-gamma``, capped per slice at the bounds of their Theorem 4.2
(``theta phi (1 + |rho|) <= 4``, ``theta phi^2 (1 + |rho|) <= 4``), which keep every slice free
of butterfly arbitrage.

Term structure: at-the-money variance averaged to ``t`` reverts from the spot level ``v0`` to a
long-run ``v_long`` at rate ``kappa`` (the expected average variance of a mean-reverting
variance, as in Heston's model)::

    theta(t) = t * (v_long + (v0 - v_long) * (1 - exp(-kappa t)) / (kappa t)).

Units: variances in vol^2 per year, ``t`` in years, ``kappa`` per year.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def skew_phi(
    t: ArrayLike,
    theta: ArrayLike,
    rho: float,
    eta: float,
    gamma: float,
    vol_cap: float = np.inf,
) -> NDArray[np.float64]:
    """Return the slice curvature ``phi = eta t^-gamma`` capped to keep the slice arbitrage-free.

    ``t`` in years (> 0), ``theta`` the slice's ATM total variance (> 0). Above an ATM vol of
    ``vol_cap`` the skew stops growing with the vol level (``phi`` scaled by
    ``vol_cap / iv_atm``), for vol levels beyond those the shape was fitted on.
    """
    tt = np.asarray(t, dtype=np.float64)
    th = np.asarray(theta, dtype=np.float64)
    lim = 4.0 / (1.0 + abs(rho))
    held = np.minimum(1.0, vol_cap / np.sqrt(th / tt))
    phi = np.minimum(eta * tt**-gamma * held, np.minimum(lim / th, np.sqrt(lim / th)))
    return np.asarray(phi, dtype=np.float64)


def ssvi_total_variance(
    k: ArrayLike, theta: ArrayLike, phi: ArrayLike, rho: float
) -> NDArray[np.float64]:
    """Return SSVI total implied variance ``w(k)`` (years x vol^2), broadcasting."""
    kk = np.asarray(k, dtype=np.float64)
    th = np.asarray(theta, dtype=np.float64)
    p = np.asarray(phi, dtype=np.float64)
    out = 0.5 * th * (1.0 + rho * p * kk + np.sqrt((p * kk + rho) ** 2 + 1.0 - rho * rho))
    return np.asarray(out, dtype=np.float64)


def atm_total_variance(
    t: ArrayLike, v0: ArrayLike, v_long: float, kappa: float
) -> NDArray[np.float64]:
    """Return ATM total variance ``theta(t)`` reverting from ``v0`` to ``v_long`` at ``kappa``."""
    tt = np.asarray(t, dtype=np.float64)
    x = kappa * tt
    # (1 - exp(-x)) / x, with its limit 1 at x -> 0 (expm1 keeps the small-x digits)
    frac = np.where(x > 1e-12, -np.expm1(-x) / np.where(x > 1e-12, x, 1.0), 1.0)
    return np.asarray(tt * (v_long + (np.asarray(v0) - v_long) * frac), dtype=np.float64)
