"""The vocabulary every model speaks, and the one place where the models' opinions meet.

Each model (ML, regime detectors, GARCH, CAPM, option mispricing, ...) emits :class:`Signal`
objects through its adapter (:mod:`v28quant.models`); :class:`SignalAggregator` combines them per
symbol with regime-dependent weights into an :class:`Aggregate`, the only input the engines
trade on.

What ``confidence`` means
-------------------------
One meaning across every model: **how much the model's own out-of-sample record and its current
input support the value it gives**, in [0, 1]. It is the product of two factors,

``confidence = record x support``

* ``record`` in [0, 1]: the model's out-of-sample evidence of skill,
  :func:`record_from_pvalue` ``= max(0, 1 - 2 p)`` of the one-sided test of its out-of-sample
  results against no skill (a test of directional hits that counts calls sharing a date or
  an overlapping outcome as the dependent evidence they are, a t-test of the information
  coefficient, ...). No demonstrated skill (p >= 1/2) gives 0; overwhelming evidence
  gives 1. A model with no out-of-sample record yet gets :data:`UNTESTED_RECORD`.
* ``support`` in [0, 1]: how strongly the current input supports this particular value, in the
  model's own uncertainty: :func:`support_from_z` ``= 2 Phi(|z|) - 1`` for an estimate ``z``
  standard errors from "no view" (a CAPM alpha t statistic, an option edge over its standard
  error and half spread), or the share of the input the model has seen in training (an ML
  feature row inside its training range), or the agreement of the model's own parts.

It is never ``|value|`` restated: a strong value from a model with no record, or from an input
unlike its training data, has low confidence. See :func:`combine_confidence`.

References
----------
C. Genest, J. V. Zidek (1986), "Combining probability distributions: a critique and an annotated
bibliography", Statistical Science 1(1) (linear opinion pools).
"""

from __future__ import annotations

import logging
import math
import numbers
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from v28quant.regime import REGIME_LABELS

log = logging.getLogger(__name__)

#: ``record`` of a model that has no out-of-sample record yet: it counts half.
UNTESTED_RECORD = 0.5

#: The shipped defaults (weights, lifetimes, threshold); see the file for the rationale.
DEFAULTS_RESOURCE = "aggregator_weights.toml"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def record_from_pvalue(p_value: float) -> float:
    """Out-of-sample record factor ``max(0, 1 - 2 p)`` from a one-sided p-value against no skill.

    Raises ``ValueError`` when ``p_value`` is not in [0, 1].
    """
    if not (math.isfinite(p_value) and 0.0 <= p_value <= 1.0):
        raise ValueError(f"p_value must be in [0, 1], got {p_value!r}")
    return max(0.0, 1.0 - 2.0 * p_value)


def support_from_z(z: float) -> float:
    """Support factor ``2 Phi(|z|) - 1 = erf(|z| / sqrt 2)`` of an estimate ``z`` s.e. from 0.

    NaN (no standard error known) gives 0.
    """
    if math.isnan(z):
        return 0.0
    return math.erf(abs(z) / math.sqrt(2.0))


def combine_confidence(record: float, support: float) -> float:
    """``record x support``, each checked to lie in [0, 1] (the module's one meaning)."""
    for name, x in (("record", record), ("support", support)):
        if not (math.isfinite(x) and 0.0 <= x <= 1.0):
            raise ValueError(f"{name} must be in [0, 1], got {x!r}")
    return record * support


@dataclass(frozen=True, slots=True)
class Signal:
    """One model's view on one symbol.

    Parameters
    ----------
    model : str
        Name of the model that produced it (e.g. ``"xgboost"``, ``"garch"``).
    symbol : str
        The instrument it is about (a ticker, or an OCC option symbol for option mispricing).
    value : float
        Direction and strength in [-1, 1]: -1 fully short, 0 flat, +1 fully long.
    confidence : float
        In [0, 1], with the one meaning of the module docstring (record x support).
    reasoning : Mapping[str, Any]
        The small set of numbers that produced it, logged and journaled as JSON.
    ts : datetime
        Time of the data it was computed from (timezone-aware): the close of the last daily bar,
        the time of the chain snapshot. Never the wall clock in a backtest.
    lifetime : timedelta, optional
        How long after ``ts`` the signal stays usable; the aggregator drops it as stale later.
        ``None`` defers to the aggregator's table of lifetimes per model.
    """

    model: str
    symbol: str
    value: float
    confidence: float
    reasoning: Mapping[str, Any] = field(default_factory=dict)
    ts: datetime = field(default_factory=_utcnow)
    lifetime: timedelta | None = None

    def __post_init__(self) -> None:
        """Check the ranges; raise ``ValueError`` naming the bad field."""
        if not self.model:
            raise ValueError("Signal.model must be a non-empty string")
        if not self.symbol:
            raise ValueError("Signal.symbol must be a non-empty string")
        if not (math.isfinite(self.value) and -1.0 <= self.value <= 1.0):
            raise ValueError(f"Signal.value must be in [-1, 1], got {self.value!r}")
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"Signal.confidence must be in [0, 1], got {self.confidence!r}")
        if self.ts.tzinfo is None:
            raise ValueError("Signal.ts must be timezone-aware")
        if self.lifetime is not None and self.lifetime <= timedelta(0):
            raise ValueError(f"Signal.lifetime must be positive, got {self.lifetime!r}")


@dataclass(frozen=True, slots=True)
class RegimeState:
    """A regime detector's reading of the market.

    Parameters
    ----------
    label : str
        The most likely regime (e.g. ``"bull_quiet"``, ``"bear_volatile"``).
    probabilities : Mapping[str, float]
        Probability of each regime label; sums to 1.
    source : str
        Which detector produced it (``"hmm"``, ``"manifold"``, ``"hierarchical"``).
    ts : datetime
        Time of the data it was computed from.
    """

    label: str
    probabilities: Mapping[str, float]
    source: str
    ts: datetime = field(default_factory=_utcnow)

    def __post_init__(self) -> None:
        """Check the label and the probabilities; raise ``ValueError`` when inconsistent."""
        if self.label not in self.probabilities:
            raise ValueError(f"RegimeState.label {self.label!r} is not among its probabilities")
        total = sum(self.probabilities.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"RegimeState.probabilities must sum to 1, got {total}")
        if self.ts.tzinfo is None:
            raise ValueError("RegimeState.ts must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Aggregate:
    """The combined view on one symbol.

    Parameters
    ----------
    symbol : str
        The instrument.
    value : float
        In [-1, 1]: the confidence-and-weight average of the models' values.
    confidence : float
        In [0, 1]: the weighted mean confidence times the models' agreement.
    tradable : bool
        ``confidence >= min_confidence``.
    regime : RegimeState
        The regime whose weights were used.
    contributions : Mapping[str, tuple[float, float, float]]
        Model -> (value, confidence, weight used) of every signal that counted.
    reasoning : Mapping[str, Any]
        Threshold, regime probabilities, dropped (stale / unweighted) signals, dispersion.
    ts : datetime, optional
        Data time: the latest ``ts`` among the contributing signals.
    """

    symbol: str
    value: float
    confidence: float
    tradable: bool
    regime: RegimeState
    contributions: Mapping[str, tuple[float, float, float]]
    reasoning: Mapping[str, Any]
    ts: datetime | None = None


WeightTable = Mapping[str, Mapping[str, float]]


def default_settings() -> dict[str, Any]:
    """Read the shipped defaults (``aggregator_weights.toml`` in the package) as a dict."""
    text = resources.files("v28quant").joinpath(DEFAULTS_RESOURCE).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _real(value: Any) -> float | None:
    """Return ``value`` as a finite float; None for text, a bool, NaN or an infinity.

    ``float()`` would take ``true`` as 1 and fail on text without naming the setting.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _check_weights(table: WeightTable) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for regime, row in table.items():
        if not isinstance(row, Mapping):
            raise ValueError(f"weights[{regime!r}] must be a table model -> weight")
        out[str(regime)] = {}
        for model, w in row.items():
            x = _real(w)
            if x is None or x < 0.0:
                raise ValueError(f"weights[{regime!r}][{model!r}] must be finite >= 0, got {w!r}")
            out[str(regime)][str(model)] = x
    return out


def _lifetimes(table: Mapping[str, Any]) -> dict[str, timedelta]:
    """Return ``[aggregator] lifetime_minutes`` as lifetimes, each checked by its model's name."""
    out = {}
    for model, minutes in table.items():
        x = _real(minutes)
        if x is None or x <= 0.0:
            raise ValueError(f"lifetime_minutes[{model!r}] must be > 0, got {minutes!r}")
        out[model] = timedelta(minutes=x)
    return out


def _check_names(settings: Mapping[str, Any]) -> None:
    """Refuse a regime or model name in ``[aggregator]`` that nothing here would ever read.

    A misspelt name (``garhc``) would silently leave the shipped weight or lifetime in force.
    The models are those of the shipped tables; the regimes those of any detector's states.
    """
    shipped = default_settings()
    models = set(shipped["weights"]["default"])
    regimes = {"default", *(label for labels in REGIME_LABELS.values() for label in labels)}
    tables: list[tuple[str, Any, set[str]]] = [
        ("lifetime_minutes", settings.get("lifetime_minutes", {}), {"default", *models}),
        ("weights", settings.get("weights", {}), regimes),
    ]
    if isinstance(weights := settings.get("weights"), Mapping):
        tables += [(f"weights.{regime}", row, models) for regime, row in weights.items()]
    for name, table, known in tables:
        if isinstance(table, Mapping) and (unknown := sorted(set(table) - known)):
            raise ValueError(f"{name}: unknown {unknown}; known: {', '.join(sorted(known))}")


class SignalAggregator:
    """Regime-weighted combination of model signals, per symbol.

    Parameters
    ----------
    weights : Mapping[str, Mapping[str, float]], optional
        Regime label -> model -> weight (>= 0). Merged over the shipped defaults entry by entry;
        a ``"default"`` table serves regimes and models a regime's table does not name.
    min_confidence : float
        Aggregates below it are not ``tradable``.
    lifetimes : Mapping[str, timedelta], optional
        Model -> lifetime, merged over the shipped defaults (``"default"`` for unknown models).
        A signal's own ``lifetime`` takes precedence.

    Notes
    -----
    For a symbol, with fresh signals ``(v_m, c_m)`` and the weight of each model mixed over the
    regime probabilities ``w_m = sum_r P(r) W[r][m]``:

    * ``value = sum w_m c_m v_m / sum w_m c_m`` (0 when no weight-confidence mass): raising a
      model's value never lowers it; a weight-0 model changes nothing; models missing for the
      symbol drop out of both sums, which renormalises the weights of the others;
    * ``confidence = (sum w_m c_m / sum w_m) x (1 - D)``, the weighted mean confidence times the
      agreement ``1 - D``, with ``D = sum w_m c_m (v_m - value)^2 / sum w_m c_m`` the weighted
      dispersion of the values (in [0, 1] for values in [-1, 1]): models voting on both sides
      lower the confidence; one side at +1 against the other at -1 with equal mass gives 0.

    Signals are stale when ``now - ts > lifetime``; signals dated after ``now`` are refused as
    look-ahead. Both are dropped and named in the aggregate's reasoning, as are models with no
    weight in the table. For each (symbol, model) the latest fresh signal counts.
    """

    def __init__(
        self,
        weights: WeightTable | None = None,
        min_confidence: float = 0.6,
        lifetimes: Mapping[str, timedelta] | None = None,
    ) -> None:
        if not (math.isfinite(min_confidence) and 0.0 <= min_confidence <= 1.0):
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        defaults = default_settings()
        table = _check_weights(defaults["weights"])
        for regime, row in _check_weights(weights or {}).items():
            table.setdefault(regime, {}).update(row)
        self.weights: dict[str, dict[str, float]] = table
        self.min_confidence = float(min_confidence)
        life = {m: timedelta(minutes=float(x)) for m, x in defaults["lifetime_minutes"].items()}
        for m, td in (lifetimes or {}).items():
            if td <= timedelta(0):
                raise ValueError(f"lifetimes[{m!r}] must be positive, got {td!r}")
            life[m] = td
        self.lifetimes = life

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None) -> SignalAggregator:
        """Build from a settings file's ``[aggregator]`` table (or the whole file's dict).

        Keys: ``min_confidence``, ``weights.<regime>.<model>``, ``lifetime_minutes.<model>``;
        whatever is absent keeps the shipped default.
        """
        s: Mapping[str, Any] = settings or {}
        if "aggregator" in s:
            s = s["aggregator"]
        unknown = set(s) - {"min_confidence", "weights", "lifetime_minutes"}
        if unknown:
            raise ValueError(f"unknown [aggregator] settings {sorted(unknown)}")
        mc = float(s.get("min_confidence", default_settings()["min_confidence"]))
        lt = _lifetimes(s.get("lifetime_minutes", {}))
        aggregator = cls(weights=s.get("weights"), min_confidence=mc, lifetimes=lt)
        _check_names(s)  # after the values' checks: a misplaced value is named as such first
        return aggregator

    def weight(self, model: str, regime: RegimeState) -> float:
        """Weight of ``model`` mixed over the regime's probabilities."""
        default = self.weights.get("default", {})
        total = 0.0
        for label, p in regime.probabilities.items():
            row = self.weights.get(label, default)
            total += p * row.get(model, default.get(model, 0.0))
        return total

    def lifetime(self, signal: Signal) -> timedelta:
        """Return the signal's own lifetime, else its model's, else the default."""
        if signal.lifetime is not None:
            return signal.lifetime
        return self.lifetimes.get(signal.model, self.lifetimes["default"])

    def aggregate(
        self, signals: Iterable[Signal], regime: RegimeState, now: datetime | None = None
    ) -> dict[str, Aggregate]:
        """Combine the signals per symbol (see the class notes).

        ``now`` is the decision time (venue or simulated clock); by default the latest data time
        among the signals and the regime, never the wall clock.
        """
        sigs = list(signals)
        if now is None:
            now = max([s.ts for s in sigs] + [regime.ts])
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        latest: dict[tuple[str, str], Signal] = {}
        dropped: dict[str, dict[str, str]] = {}
        for s in sigs:
            age = now - s.ts
            if age < timedelta(0):
                why = f"dated {s.ts.isoformat()} after now {now.isoformat()} (look-ahead)"
                dropped.setdefault(s.symbol, {})[s.model] = why
                continue
            life = self.lifetime(s)
            if age > life:
                dropped.setdefault(s.symbol, {})[s.model] = f"stale: age {age} > lifetime {life}"
                continue
            key = (s.symbol, s.model)
            if key not in latest or s.ts >= latest[key].ts:
                latest[key] = s
        by_symbol: dict[str, list[Signal]] = {}
        for (sym, _), s in sorted(latest.items()):
            by_symbol.setdefault(sym, []).append(s)
        out: dict[str, Aggregate] = {}
        for sym in sorted(set(by_symbol) | set(dropped)):
            out[sym] = self._one(sym, by_symbol.get(sym, []), regime, dropped.get(sym, {}))
        return out

    def _one(
        self, symbol: str, sigs: list[Signal], regime: RegimeState, dropped: Mapping[str, str]
    ) -> Aggregate:
        contributions: dict[str, tuple[float, float, float]] = {}
        unweighted: list[str] = []
        sw = swc = swcv = 0.0
        for s in sigs:
            w = self.weight(s.model, regime)
            if w <= 0.0:
                unweighted.append(s.model)
                continue
            contributions[s.model] = (s.value, s.confidence, w)
            sw += w
            swc += w * s.confidence
            swcv += w * s.confidence * s.value
        if swc > 0.0:
            value = max(-1.0, min(1.0, swcv / swc))
            disp = sum(w * c * (v - value) ** 2 for v, c, w in contributions.values()) / swc
            confidence = max(0.0, min(1.0, (swc / sw) * (1.0 - min(disp, 1.0))))
        else:
            value, disp, confidence = 0.0, 0.0, 0.0
        tradable = confidence >= self.min_confidence
        ts = max((s.ts for s in sigs if s.model in contributions), default=None)
        reasoning: dict[str, Any] = {
            "regime": regime.label,
            "regime_source": regime.source,
            "regime_probabilities": dict(regime.probabilities),
            "min_confidence": self.min_confidence,
            "mean_confidence": swc / sw if sw > 0 else 0.0,
            "dispersion": disp,
            "models": len(contributions),
        }
        if dropped:
            reasoning["dropped"] = dict(dropped)
        if unweighted:
            reasoning["unweighted"] = sorted(unweighted)
        agg = Aggregate(symbol, value, confidence, tradable, regime, contributions, reasoning, ts)
        log.info(
            "aggregate %s value=%+.3f confidence=%.3f tradable=%s regime=%s",
            symbol,
            value,
            confidence,
            tradable,
            regime.label,
            extra={"symbol": symbol, "contributions": contributions, "reasoning": reasoning},
        )
        return agg
