"""A short tour of the compiled core: ``python -m v28quant.demo``."""

from __future__ import annotations

import numpy as np

from v28quant.options import black_scholes


def main() -> None:
    spot, rate, div, t = 100.0, 0.05, 0.02, 0.5
    strikes = np.array([80.0, 90.0, 100.0, 110.0, 120.0])
    vol = 0.25
    calls = black_scholes.price(spot, strikes, t, rate, div, vol, call=True)
    g = black_scholes.greeks(spot, strikes, t, rate, div, vol, call=True)
    print(f"Black-Scholes-Merton calls: spot {spot}, T {t} y, r {rate}, q {div}, vol {vol}")
    print(f"{'strike':>8} {'price':>10} {'delta':>8} {'gamma':>8} {'vega':>8} {'theta':>8}")
    for k, p, d, gm, v, th in zip(strikes, calls, g.delta, g.gamma, g.vega, g.theta, strict=True):
        print(f"{k:8.2f} {p:10.4f} {d:8.4f} {gm:8.4f} {v:8.3f} {th:8.3f}")


if __name__ == "__main__":
    main()
