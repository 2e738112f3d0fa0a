"""Fit the shape of replay's synthetic option chains to real SPY chains (run once, offline).

Reads the Cboe SPY snapshots in ``shared/data/options`` (2023-09-14 and 2022-07-08) and SPY's
daily closes in ``shared/data/equities/yahoo_raw_2019_2023``, and prints the numbers written into
``v28quant.data.synthetic_chain.SyntheticChainModel``:

1. Per expiry (5 days to 2.5 years): the forward F and discount D from a regression of near-ATM
   call - put mids on strike (C - P = D (F - K); SPY options are American, so only strikes
   within 5 % of spot are used, where early exercise is worth little), then Black implied vols
   of out-of-the-money mids (puts below F, calls above) with bid > 0 and a spread under half
   the mid, within 3.5 standard deviations of the forward.
2. One SSVI smile (rho, and phi(t) = eta t^-gamma) for both days, with a free ATM total
   variance per expiry, by least squares in implied vol (``v28quant.data.chain_shape``).
3. The term structure: the fitted ATM variances against expiry, one spot variance per day, a
   shared long-run variance and reversion speed.
4. The variance risk premium: the fitted spot ATM vol over SPY's trailing 21-session realised
   vol on each day (geometric mean), which is how replay sets the spot level from history.

Usage: ``PYTHONPATH=python python tools/fit_synthetic_chain.py [path/to/shared/data]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from v28quant.data.chain_shape import atm_total_variance, skew_phi, ssvi_total_variance
from v28quant.options.black_scholes import black_implied_vol

DAYS = ("2023-09-14", "2022-07-08")
MAX_YEARS = 2.5  # the longest listed expiries pin the long-run level of the term structure


def otm_vols(path: Path) -> pd.DataFrame:
    """Return (t, k, iv) of usable out-of-the-money quotes of one Cboe snapshot."""
    df = pd.read_csv(path)
    spot = float(df["underlying_price"].iloc[0])
    day = pd.Timestamp(df["quote_date"].iloc[0])
    df["t"] = (pd.to_datetime(df["expiration"]) - day).dt.days / 365.0
    df["mid"] = (df["bid"] + df["ask"]) / 2.0
    rows = []
    for t, g in df[(df["t"] >= 5 / 365) & (df["t"] <= MAX_YEARS)].groupby("t"):
        c, p = g[g["type"] == "call"], g[g["type"] == "put"]
        both = c.merge(p, on="strike", suffixes=("_c", "_p"))
        near = both[
            (abs(both["strike"] / spot - 1.0) <= 0.05) & (both["bid_c"] > 0) & (both["bid_p"] > 0)
        ]
        if len(near) < 4:
            continue
        slope, icpt = np.polyfit(near["strike"].to_numpy(float), near["mid_c"] - near["mid_p"], 1)
        disc = -slope
        fwd = icpt / disc
        g = g[(g["bid"] > 0) & ((g["ask"] - g["bid"]) < 0.5 * g["mid"])]
        g = g[(g["type"] == "call") == (g["strike"] >= fwd)]
        k = np.log(g["strike"].to_numpy(float) / fwd)
        iv = np.asarray(
            black_implied_vol(
                g["mid"].to_numpy(float) / disc,
                fwd,
                g["strike"].to_numpy(float),
                float(t),
                (g["type"] == "call").to_numpy(),
            ),
            dtype=float,
        )
        atm = np.nanmedian(iv[np.argsort(np.abs(k))[:4]])
        keep = np.isfinite(iv) & (np.abs(k) <= 3.5 * atm * np.sqrt(float(t)))
        rows += [(float(t), kk, v) for kk, v in zip(k[keep], iv[keep], strict=True)]
    return pd.DataFrame(rows, columns=["t", "k", "iv"])


def realised_vol(closes: pd.Series, day: str, window: int = 21) -> float:
    """Return annualised close-to-close vol of the ``window`` sessions up to ``day``."""
    c = closes[closes.index <= day].tail(window + 1).to_numpy(float)
    return float(np.std(np.diff(np.log(c)), ddof=1) * np.sqrt(252.0))


def main(shared: Path) -> None:
    """Fit and print the synthetic-chain parameters (see the module docstring)."""
    quotes = [otm_vols(shared / "options" / f"SPY_{d}_cboe.csv") for d in DAYS]
    slices = [sorted(q["t"].unique()) for q in quotes]
    n_slices = [len(s) for s in slices]

    def unpack(x: np.ndarray) -> tuple[float, float, float, list[np.ndarray]]:
        rho, eta, gamma = x[:3]
        thetas, i = [], 3
        for n in n_slices:
            thetas.append(np.exp(x[i : i + n]))
            i += n
        return rho, eta, gamma, thetas

    def residuals(x: np.ndarray) -> np.ndarray:
        rho, eta, gamma, thetas = unpack(x)
        out = []
        for q, ts, th in zip(quotes, slices, thetas, strict=True):
            t = q["t"].to_numpy()
            theta = th[np.searchsorted(ts, t)]
            phi = skew_phi(t, theta, rho, eta, gamma)
            w = ssvi_total_variance(q["k"].to_numpy(), theta, phi, rho)
            out.append(np.sqrt(np.maximum(w, 1e-12) / t) - q["iv"].to_numpy())
        return np.concatenate(out)

    x0 = [-0.7, 3.0, 0.4]
    for q, ts in zip(quotes, slices, strict=True):
        for t in ts:
            s = q[q["t"] == t]
            x0.append(np.log(float(s.loc[s["k"].abs().idxmin(), "iv"]) ** 2 * t))
    lo = [-0.999, 0.01, 0.0] + [-np.inf] * sum(n_slices)
    hi = [0.999, 50.0, 1.0] + [np.inf] * sum(n_slices)
    fit = least_squares(residuals, np.asarray(x0), bounds=(lo, hi), x_scale="jac")
    rho, eta, gamma, thetas = unpack(fit.x)
    rmse = float(np.sqrt(np.mean(fit.fun**2)))
    print(f"SSVI: rho {rho:.4f} eta {eta:.4f} gamma {gamma:.4f}; RMSE {100 * rmse:.2f} vol pts")
    print(f"      over {sum(len(q) for q in quotes)} quotes, {sum(n_slices)} expiries")

    def term_res(y: np.ndarray) -> np.ndarray:
        v_long, kappa, *v0 = np.exp(y)
        out = []
        for ts, th, v in zip(slices, thetas, v0, strict=True):
            t = np.asarray(ts)
            model = atm_total_variance(t, v, v_long, kappa)
            out.append(np.sqrt(model / t) - np.sqrt(th / t))
        return np.concatenate(out)

    y0 = np.log([0.04, 2.0] + [float(th[0] / ts[0]) for ts, th in zip(slices, thetas, strict=True)])
    term = least_squares(term_res, y0)
    v_long, kappa, *v0 = np.exp(term.x)
    print(
        f"term: long-run vol {np.sqrt(v_long):.4f} kappa {kappa:.4f}; "
        f"RMSE {100 * np.sqrt(np.mean(term.fun**2)):.2f} vol pts"
    )
    closes = pd.read_csv(shared / "equities" / "yahoo_raw_2019_2023" / "SPY.csv", index_col="date")[
        "close"
    ]
    ratios = []
    for day, v, ts, th in zip(DAYS, v0, slices, thetas, strict=True):
        rv = realised_vol(closes, day)
        ratios.append(np.sqrt(v) / rv)
        t30 = float(np.interp(30 / 365, ts, th / np.asarray(ts)))  # ATM variance at 30 days
        skew = rho * float(skew_phi(30 / 365, t30 * 30 / 365, rho, eta, gamma)) * np.sqrt(t30) / 2
        print(
            f"{day}: spot ATM vol {np.sqrt(v):.4f}, 21-day realised {rv:.4f} "
            f"(ratio {ratios[-1]:.3f}); 30-day ATM vol {np.sqrt(t30):.4f}, "
            f"ATM skew d iv/dk {skew:.4f}"
        )
    print(
        f"variance risk premium (vol ratio, geometric mean): {np.exp(np.mean(np.log(ratios))):.4f}"
    )


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
