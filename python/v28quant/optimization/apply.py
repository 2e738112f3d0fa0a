"""Tuned parameters into the runner's configuration, and the promoted set the runner trades.

:func:`apply_params` maps a parameter set of :func:`~v28quant.optimization.backtest_objective.
backtest_space` onto a :class:`~v28quant.config.RunConfig`: ``weights.<regime>.<model>`` over the
``[aggregator]`` weight table, ``aggregator.min_confidence`` and the ``equity.*`` sizing and
gating keys. Backtest trials and the runner's start-up use this one mapping, so what was tested
is what trades.

:func:`load_promoted` reads the set ``v28quant promote`` wrote beside the journal and accepts it
only when the journal itself vouches for it: a journaled promotion of exactly those parameters
whose walk-forward (same report digest) is journaled as passed, made with the runner's own
engines (evaluator ``backtest``), and no later promotion since; given the run's scope, tuned
for its universe and under its TOML file, byte for byte, by this release; and whose
walk-forward report (the file the promotion names) tests a tuned set only on sessions after
those its search saw, checked at every start, so a set promoted before ``promote`` checked
that does not trade. A file edited by hand, copied from another journal, superseded by a later
promotion (a restored backup), tuned for other symbols or settings or by another release,
tested in sample, or promoted from the sample strategy is refused with a line naming why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from v28quant.config import RunConfig
from v28quant.optimization.promote import (
    PROMOTE_MODEL,
    PROMOTED_FILE,
    WALK_FORWARD_MODEL,
    PromotionRefused,
    read_report,
    report_digest,
    require_held_out,
    runner_params,
)


def apply_params(cfg: RunConfig, params: Mapping[str, float]) -> tuple[RunConfig, dict[str, Any]]:
    """Return ``cfg`` with the aggregator keys of ``params``, and the ``[equity]`` overrides.

    ``params`` is a validated set of the backtest search space; the ``[equity]`` overrides go to
    the engine factory (``runner_setup.default_engines``), as in a backtest.
    """
    weights: dict[str, dict[str, float]] = {}
    for name, value in params.items():
        if name.startswith("weights."):
            _, regime, model = name.split(".", 2)
            weights.setdefault(regime, {})[model] = float(value)
    merged = {r: dict(ms) for r, ms in cfg.aggregator.weights.items()}
    for regime, models in weights.items():
        merged.setdefault(regime, {}).update(models)
    agg = dataclasses.replace(
        cfg.aggregator,
        weights=merged,
        min_confidence=float(
            params.get("aggregator.min_confidence", cfg.aggregator.min_confidence)
        ),
    )
    equity = {
        k.split(".", 1)[1]: (int(v) if k == "equity.screen_keep" else float(v))
        for k, v in params.items()
        if k.startswith("equity.")
    }
    return dataclasses.replace(cfg, aggregator=agg), equity


def config_digest(source: Path | None) -> str | None:
    """SHA-256 hex digest of a TOML configuration file's bytes; None for the shipped defaults."""
    return None if source is None else hashlib.sha256(Path(source).read_bytes()).hexdigest()


def code_version() -> str:
    """Return the v28quant release running: what a tuned set's scope records it was tuned by."""
    import v28quant

    return v28quant.__version__


def _settings(digest: str | None) -> str:
    return "the shipped defaults" if digest is None else f"TOML sha256 {digest[:12]}"


def _check_scope(path: Path, tuned: Mapping[str, Any], run: Mapping[str, Any]) -> None:
    """Refuse a set tuned for another universe or other settings than this run's.

    A walk-forward vouches for its parameters on what it ran over only, with the release that
    ran it. A scope without ``universe`` or ``config_sha256`` (an evaluator that says nothing
    of them) is not checked on it; a universe of None (recorded before the tuner named its
    default one) is refused, and so is a non-empty scope without ``code_version`` (recorded
    before releases were) when the run names its own.
    """
    ours = sorted(run["universe"])
    if "universe" in tuned and tuned["universe"] != ours:
        universe = tuned["universe"]
        named = ",".join(universe) if universe else "an unrecorded default"
        raise PromotionRefused(
            f"{path}: tuned for universe {named}; this run trades "
            f"{','.join(ours)} (tune and promote for it, or remove the file)"
        )
    if "config_sha256" in tuned and tuned["config_sha256"] != run["config_sha256"]:
        raise PromotionRefused(
            f"{path}: tuned under the settings of {_settings(tuned['config_sha256'])}; this run "
            f"has {_settings(run['config_sha256'])} (the settings changed since: walk-forward "
            "and promote again, or remove the file)"
        )
    # the engines of another release may decide differently on the same parameters
    if tuned and "code_version" in run and tuned.get("code_version") != run["code_version"]:
        version = tuned.get("code_version")
        named = f"v28quant {version}" if version else "an unrecorded version"
        raise PromotionRefused(
            f"{path}: tuned by {named}; this run is v28quant {run['code_version']} "
            "(walk-forward and promote again with this release, or remove the file)"
        )


@dataclass(frozen=True, slots=True)
class PromotedSet:
    """A promoted parameter set the journal vouches for.

    Attributes
    ----------
    params : dict
        The parameters, validated against the backtest search space.
    digest : str
        SHA-256 digest of the walk-forward report that passed.
    path : Path
        The promoted-parameters file.
    promoted_at : str
        ISO time of the promotion.
    dsr, oos_sharpe : float or None
        The walk-forward's deflated Sharpe ratio and out-of-sample Sharpe ratio (annualised).
    n_trials : int or None
        Trials the DSR deflated for; None for a promotion recorded before it was kept.
    """

    params: dict[str, float]
    digest: str
    path: Path
    promoted_at: str
    dsr: float | None
    oos_sharpe: float | None
    n_trials: int | None


def _journaled(journal_path: Path, model: str) -> list[dict[str, Any]]:
    """Metrics of every journaled run of ``model`` (read-only: the runner may hold the journal)."""
    if not journal_path.is_file():
        return []
    db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT metrics FROM model_runs WHERE model = ? ORDER BY id", (model,)
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise PromotionRefused(f"{journal_path}: cannot read its model runs: {exc}") from None
    finally:
        db.close()
    return [json.loads(r[0]) for r in rows]


def _promoted_report(path: Path, record: Mapping[str, Any], digest: str) -> dict[str, Any]:
    """Return the walk-forward report a promoted file names, checked to be the promoted one."""
    report = Path(str(record.get("report")))
    try:
        payload = read_report(report)
    except (OSError, ValueError) as exc:
        raise PromotionRefused(
            f"{path}: its walk-forward report {report} is unreadable ({exc}); whether the set "
            "was tested out of sample for its search cannot be checked without it"
        ) from None
    if payload.get("digest") != digest or report_digest(payload) != digest:
        raise PromotionRefused(f"{path}: {report} is not the promoted walk-forward {digest[:16]}")
    return payload


def load_promoted(
    journal_path: str | Path, scope: Mapping[str, Any] | None = None
) -> PromotedSet | None:
    """Return the promoted set beside the journal at ``journal_path``; None when there is none.

    ``scope`` is the run's own ``{"universe": [...], "config_sha256": ..., "code_version": ...}``;
    when given, the set must have been tuned for it (as its journaled promotion records).

    Raises
    ------
    PromotionRefused
        The file exists but is unreadable, was not promoted through this journal or not by
        its latest promotion, its walk-forward is not journaled as passed, its report is gone
        or tests a tuned set on sessions its search saw (``require_held_out``, as ``promote``
        checks), its parameters are not the runner's, or it was tuned for another universe or
        settings than ``scope``.
    """
    journal = Path(journal_path)
    path = journal.with_name(PROMOTED_FILE)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        params, digest = dict(record["params"]), str(record["report_digest"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PromotionRefused(f"{path}: not a promoted-parameters file: {exc}") from None
    checked = runner_params(record.get("evaluator"), params, path)
    promotions = _journaled(journal, PROMOTE_MODEL)
    vouched = [m.get("report_digest") == digest and m.get("params") == params for m in promotions]
    if not any(vouched):
        raise PromotionRefused(f"{path}: no promotion of these parameters in {journal}")
    if not vouched[-1]:  # only the latest promotion trades: an older file is a rollback
        latest = promotions[-1]
        raise PromotionRefused(
            f"{path}: superseded by the promotion of {latest.get('promoted_at')} (walk-forward "
            f"{str(latest.get('report_digest'))[:16]}); promote again to go back to this set"
        )
    if scope is not None:
        _check_scope(path, promotions[-1].get("scope") or {}, scope)
    runs = [m for m in _journaled(journal, WALK_FORWARD_MODEL) if m.get("digest") == digest]
    if not runs or not all(m.get("passed") is True for m in runs):
        raise PromotionRefused(f"{path}: walk-forward {digest[:16]} is not journaled as passed")
    # checked again at every start: a promotion made before promote checked it must not trade
    report = _promoted_report(path, record, digest)
    require_held_out(Path(str(record.get("report"))), report, journal)
    return PromotedSet(
        params=checked,
        digest=digest,
        path=path,
        promoted_at=str(record.get("promoted_at")),
        dsr=record.get("dsr"),
        oos_sharpe=record.get("oos_sharpe"),
        n_trials=record.get("n_trials"),
    )
