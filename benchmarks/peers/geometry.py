"""Half-plane geodesic with 1,000 output points.

v28quant (Dormand-Prince 5(4), dense output, C++) vs scipy.integrate.odeint (LSODA) and
solve_ivp(DOP853) on the same initial-value problem.

The metric is the Fisher metric of N(mu, sigma^2), (dmu^2 + 2 dsigma^2) / sigma^2, whose
geodesics are exact half-circles in (mu / sqrt 2, sigma); every solver's error is measured against
that closed form. The scipy right-hand side uses the closed-form Christoffel symbols in numpy.

Run: PYTHONPATH=python python benchmarks/peers/geometry.py
"""

from __future__ import annotations

import timeit

import numpy as np
from scipy.integrate import odeint, solve_ivp
from v28quant.geometry import FisherNormalMetric, geodesic

X0, V0, T_END, N = (0.0, 1.0), (1.0, 0.5), 3.0, 1000
RTOL = 1e-10


def exact(t):
    u0, s0 = X0[0] / np.sqrt(2), X0[1]
    du, ds = V0[0] / np.sqrt(2), V0[1]
    c = u0 + s0 * ds / du
    r = np.hypot(u0 - c, s0)
    arg = np.arctanh((u0 - c) / r) + np.hypot(du, ds) / s0 * t
    return np.column_stack([np.sqrt(2) * (c + r * np.tanh(arg)), r / np.cosh(arg)])


def rhs(y, t=None):
    _mu, s, vm, vs = y
    # Gamma^mu_{mu s} = -1/s, Gamma^s_{mu mu} = 1/(2 s), Gamma^s_{s s} = -1/s.
    return [vm, vs, 2.0 * vm * vs / s, -0.5 * vm * vm / s + vs * vs / s]


def best(fn, number):
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def main() -> None:
    metric = FisherNormalMetric()
    t = np.linspace(0.0, T_END, N)
    ref = exact(t)
    y0 = [X0[0], X0[1], V0[0], V0[1]]

    def ours():
        return geodesic(metric, X0, V0, T_END, n_points=N, rtol=RTOL).x

    def lsoda():
        return odeint(rhs, y0, t, rtol=RTOL, atol=RTOL)[:, :2]

    def dop853():
        return (
            solve_ivp(
                lambda tt, y: rhs(y),
                (0.0, T_END),
                y0,
                method="DOP853",
                t_eval=t,
                rtol=RTOL,
                atol=RTOL,
            )
            .y[:2]
            .T
        )

    rows = []
    for name, fn, number in [
        ("v28quant geodesic (DOPRI5, C++)", ours, 200),
        ("scipy odeint (LSODA)", lsoda, 20),
        ("scipy solve_ivp DOP853", dop853, 5),
    ]:
        err = float(np.max(np.abs(fn() - ref)))
        rows.append((name, best(fn, number), err))
    print(
        f"max |ours - odeint| = {np.max(np.abs(ours() - lsoda())):.2e}, "
        f"max |ours - DOP853| = {np.max(np.abs(ours() - dop853())):.2e}"
    )
    print()
    print(
        "| solver (1,000 output points, rtol = atol = 1e-10) | time | max error vs semicircle "
        "| ratio vs v28quant |"
    )
    print("|---|---|---|---|")
    base = rows[0][1]
    for name, sec, err in rows:
        print(f"| {name} | {sec * 1e6:.1f} us | {err:.1e} | {sec / base:.1f}x |")


if __name__ == "__main__":
    main()
