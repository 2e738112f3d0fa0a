"""One adapter per model, turning its output into :class:`~v28quant.signals.Signal` objects.

The engines build a :class:`~v28quant.models.base.MarketSnapshot` each cycle, call
:func:`collect_signals` on the adapters of :func:`all_equity_adapters` /
:func:`all_option_adapters`, and hand the signals to the
:class:`~v28quant.signals.SignalAggregator`. Adapters that need a refit (GARCH, the option
models) are fitted in the pre-market job through :func:`fit_adapters`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from v28quant.models.base import Adapter, MarketSnapshot, TrackRecord, session_close
from v28quant.models.learned import (
    SacAdapter,
    StackedEnsembleAdapter,
    TransformerAdapter,
    XGBoostAdapter,
)
from v28quant.models.options import HestonAdapter, MertonAdapter, MonteCarloAdapter
from v28quant.models.quant import CapmAdapter, GarchAdapter
from v28quant.models.regimes import HmmAdapter, ManifoldAdapter
from v28quant.regime.hierarchical import HierarchicalRegimeController
from v28quant.signals import Signal

log = logging.getLogger(__name__)

__all__ = [
    "Adapter",
    "CapmAdapter",
    "GarchAdapter",
    "HestonAdapter",
    "HmmAdapter",
    "ManifoldAdapter",
    "MarketSnapshot",
    "MertonAdapter",
    "MonteCarloAdapter",
    "SacAdapter",
    "StackedEnsembleAdapter",
    "TrackRecord",
    "TransformerAdapter",
    "XGBoostAdapter",
    "all_equity_adapters",
    "all_option_adapters",
    "collect_signals",
    "fit_adapters",
    "session_close",
]


def all_equity_adapters(
    *,
    controller: HierarchicalRegimeController | None = None,
    garch: GarchAdapter | None = None,
    xgboost: Any = None,
    stacked: Any = None,
    transformer: Any = None,
    sac: Any = None,
    reference: Any = None,
) -> list[Adapter]:
    """Build the equity engine's adapters.

    GARCH and CAPM always; the regime detectors with a fitted controller; each learned model
    that is given (``reference``: its training features, for the range support).
    """
    out: list[Adapter] = [garch or GarchAdapter(), CapmAdapter()]
    if controller is not None:
        out += [HmmAdapter(controller), ManifoldAdapter(controller)]
    if xgboost is not None:
        out.append(XGBoostAdapter(xgboost, reference))
    if stacked is not None:
        out.append(StackedEnsembleAdapter(stacked, reference))
    if transformer is not None:
        out.append(TransformerAdapter(transformer, reference))
    if sac is not None:
        out.append(SacAdapter(sac))
    return out


def all_option_adapters(garch: GarchAdapter | None = None) -> list[Adapter]:
    """Build the options engine's mispricing adapters (Monte Carlo uses ``garch``'s fits)."""
    return [HestonAdapter(), MertonAdapter(), MonteCarloAdapter(garch=garch)]


def fit_adapters(adapters: Iterable[Adapter], snapshot: MarketSnapshot) -> None:
    """Pre-market: refit every adapter that has a ``fit(snapshot)`` (GARCH first)."""
    ordered = sorted(adapters, key=lambda a: a.name != "garch")
    for a in ordered:
        fit = getattr(a, "fit", None)
        if callable(fit):
            try:
                fit(snapshot)
            except ValueError as exc:
                log.warning("fit of %s failed: %s", a.name, exc)


def collect_signals(adapters: Sequence[Adapter], snapshot: MarketSnapshot) -> list[Signal]:
    """Every adapter's signals; an adapter that fails is logged and skipped, never fatal."""
    out: list[Signal] = []
    for a in adapters:
        try:
            out.extend(a.signals(snapshot))
        except (ValueError, KeyError) as exc:
            log.warning("adapter %s failed: %s", a.name, exc)
    return out
