"""Static checks of the vectorised faces' types, run by ``mypy --strict`` (not by pytest).

A scalar call is typed ``float`` and an array call ``FloatArray``; a change to a face's
overloads that breaks this fails the type check in CI.
"""

from __future__ import annotations

from typing import assert_type

import numpy as np
from v28quant._typing import FloatArray
from v28quant.geometry import FisherNormalMetric
from v28quant.options import black_scholes as bs
from v28quant.quant_models import (
    capm,
    crr_binomial,
    heston_model,
    merton_jump_diffusion,
    monte_carlo_pricer,
)

K = np.array([90.0, 100.0, 110.0])


def check_black_scholes() -> None:
    """Check the scalar and array faces of Black-Scholes-Merton."""
    assert_type(bs.price(100.0, 100.0, 1.0, 0.02, 0.0, 0.2), float)
    assert_type(bs.price(100.0, K, 1.0, 0.02, 0.0, 0.2), FloatArray)
    assert_type(bs.greeks(100.0, 100.0, 1.0, 0.02, 0.0, 0.2).delta, float)
    assert_type(bs.greeks(100.0, K, 1.0, 0.02, 0.0, 0.2).vega, FloatArray)
    assert_type(bs.implied_vol(8.0, 100.0, 100.0, 1.0, 0.02, 0.0), float)
    assert_type(bs.implied_vol(K / 10, 100.0, K, 1.0, 0.02, 0.0), FloatArray)


def check_models() -> None:
    """Check the scalar and array faces of the pricing models."""
    assert_type(crr_binomial.price(100.0, 100.0, 1.0, 0.02, 0.0, 0.2), float)
    assert_type(crr_binomial.greeks(100.0, K, 1.0, 0.02, 0.0, 0.2).gamma, FloatArray)
    heston = (0.04, 1.5, 0.04, 0.5, -0.7)
    assert_type(heston_model.price(100.0, 100.0, 1.0, 0.02, 0.0, *heston), float)
    assert_type(heston_model.price(100.0, K, 1.0, 0.02, 0.0, *heston), FloatArray)
    merton = (0.2, 0.5, -0.1, 0.15)
    assert_type(merton_jump_diffusion.price(100.0, 100.0, 1.0, 0.02, 0.0, *merton), float)
    mis = monte_carlo_pricer.mispricing(8.0, 7.5, 100.0, 100.0, 1.0, 0.02, 0.0)
    assert_type(mis.edge_vol_points, float)
    assert_type(capm.expected_return(K / 100, 0.08), FloatArray)


def check_geometry() -> None:
    """Check the curvature face for one point and for many."""
    metric = FisherNormalMetric()
    assert_type(metric.gaussian_curvature((0.0, 1.0)), float)
    assert_type(metric.gaussian_curvature(np.ones((4, 2))), float | FloatArray)
