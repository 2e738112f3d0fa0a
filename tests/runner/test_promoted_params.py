"""At start-up the runner trades the promoted parameter set, and only one the journal vouches for.

Independent references: the parameters handed to ``promote`` (what the engines and the
aggregator must receive), the runner's log file and the journal read with ``sqlite3``.
The walk-forward that passes is a stand-in evaluator over the runner's parameter space with a
planted edge (daily Sharpe ratio 0.2); the backtests themselves are tested elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from v28quant.config import RunConfig, load_config
from v28quant.engines import CycleReport, EngineContext
from v28quant.journal import Journal
from v28quant.optimization.apply import load_promoted
from v28quant.optimization.backtest_objective import backtest_space
from v28quant.optimization.evaluation import WindowReturns
from v28quant.optimization.promote import PROMOTED_FILE, PromotionRefused, promote, save_report
from v28quant.optimization.walkforward import WalkForwardOptimizer
from v28quant.optimization.windows import WindowScheme
from v28quant.runner_args import RunArgs
from v28quant.runner_setup import build_and_run, run_with

UNIVERSE = ("AAPL", "MSFT", "JPM")
CHOSEN = {
    "aggregator.min_confidence": 0.35,
    "equity.target_vol": 0.2,
    "equity.screen_keep": 7,
    "equity.max_weight": 0.05,
    "weights.crisis.garch": 2.5,
}


class PlantedEdge:
    """Evaluator over the runner's parameter space whose returns have a daily Sharpe of 0.2."""

    name = "backtest"
    label_horizon = 5

    def __init__(self) -> None:
        self.space = backtest_space()

    def dates(self) -> pd.DatetimeIndex:
        return pd.bdate_range("2019-01-01", periods=800)

    def evaluate(
        self,
        params: Mapping[str, float],
        train: pd.DatetimeIndex,
        test: pd.DatetimeIndex,
        seed: int,
    ) -> WindowReturns:
        rng = np.random.default_rng(seed)
        return WindowReturns(
            pd.Series(0.002 + 0.01 * rng.standard_normal(len(train)), index=train),
            pd.Series(0.002 + 0.01 * rng.standard_normal(len(test)), index=test),
        )


class Quiet:
    """An engine that trades nothing (the test is about what it was built with)."""

    name = "quiet"

    async def premarket(self, ctx: EngineContext) -> None:
        return None

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        return CycleReport(self.name, ctx.now)

    async def end_of_day(self, ctx: EngineContext) -> None:
        return None


def _promote(journal_path: Path, out: Path) -> dict[str, float]:
    ev = PlantedEdge()
    params = ev.space.validate(CHOSEN)
    report = WalkForwardOptimizer(ev, WindowScheme("anchored", 2, 300, 5)).run_fixed(params)
    assert report.passed, report.verdict
    with Journal(journal_path) as j:
        now = datetime.now(UTC)
        save_report(report, out, j, now, now)
        promote(out, j)
    return params


@pytest.fixture
def promoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, float]]:
    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    journal = tmp_path / "j.sqlite"
    return journal, _promote(journal, tmp_path / "wf")


def test_the_runner_starts_with_the_promoted_set(
    promoted: tuple[Path, dict[str, float]],
) -> None:
    journal, params = promoted
    assert load_promoted(journal).params == params  # type: ignore[union-attr]
    seen: dict[str, Any] = {}

    def engines(cfg: RunConfig, equity: dict[str, Any]) -> list[Quiet]:
        seen.update(cfg=cfg, equity=equity)
        return [Quiet()]

    settings, cfg = load_config(None, journal_path=journal)
    args = RunArgs("paper", None, UNIVERSE, journal, None, None, None, True, "INFO", None)
    assert run_with(args, settings, cfg, engines=engines).exit_code == 0
    got: RunConfig = seen["cfg"]
    assert got.aggregator.min_confidence == 0.35
    assert got.aggregator.weights["crisis"]["garch"] == 2.5
    assert seen["equity"]["target_vol"] == 0.2
    assert seen["equity"]["screen_keep"] == 7
    assert seen["equity"]["max_weight"] == 0.05
    # the first log lines say so, with the digest of the walk-forward that passed
    digest = json.loads((journal.with_name(PROMOTED_FILE)).read_text())["report_digest"]
    (log_file,) = Path("runs").glob("paper-*/v28quant.log")  # keyless: the run's folder
    head = log_file.read_text().splitlines()[:12]
    line = next(x for x in head if "parameters:" in x)
    assert f"PROMOTED set {digest[:16]}" in line
    assert "min_confidence 0.35, target_vol 0.200, max_weight 0.050" in line
    assert "screen_keep 7;" in line
    assert "[paper] min_confidence 0.20" in line  # paper mode keeps its own threshold
    db = sqlite3.connect(str(journal))
    (start,) = db.execute("SELECT reasoning FROM decisions WHERE action = 'start'").fetchall()
    db.close()
    why = json.loads(start[0])["parameters"]
    assert why["source"] == "promoted"
    assert why["report_digest"] == digest
    assert why["params"] == params
    # the promoted threshold is not the one paper mode trades at: the record says which is
    shipped = tomllib.loads(resources.files("v28quant").joinpath("defaults.toml").read_text())
    assert why["min_confidence_in_force"] == shipped["paper"]["min_confidence"] != 0.35


def test_a_hand_edited_set_is_refused(
    promoted: tuple[Path, dict[str, float]], capsys: pytest.CaptureFixture[str]
) -> None:
    journal, _ = promoted
    path = journal.with_name(PROMOTED_FILE)
    record = json.loads(path.read_text())
    record["params"]["aggregator.min_confidence"] = 0.0
    path.write_text(json.dumps(record))
    with pytest.raises(PromotionRefused, match="no promotion of these parameters"):
        load_promoted(journal)
    argv = ["--mode", "paper", "--once", "--journal", str(journal), "--universe", "AAPL"]
    assert build_and_run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: promoted parameters:")


def test_a_set_of_another_evaluator_or_journal_is_refused(
    promoted: tuple[Path, dict[str, float]], tmp_path: Path
) -> None:
    journal, _ = promoted
    path = journal.with_name(PROMOTED_FILE)
    record = json.loads(path.read_text())
    other = tmp_path / "other" / "j.sqlite"
    other.parent.mkdir()
    Journal(other).close()
    other.with_name(PROMOTED_FILE).write_text(json.dumps(record))
    with pytest.raises(PromotionRefused, match="no promotion"):
        load_promoted(other)  # copied beside a journal that never promoted it
    path.write_text(json.dumps({**record, "evaluator": "sample-strategy"}))
    with pytest.raises(PromotionRefused, match="not of the runner's engines"):
        load_promoted(journal)
    path.unlink()
    assert load_promoted(journal) is None


def test_a_superseded_set_is_refused(
    promoted: tuple[Path, dict[str, float]], tmp_path: Path
) -> None:
    journal, first = promoted
    path = journal.with_name(PROMOTED_FILE)
    old = path.read_text()  # e.g. a backup restored, or a deploy of last week's folder
    ev = PlantedEdge()
    newer = ev.space.validate({**CHOSEN, "equity.target_vol": 0.1})
    report = WalkForwardOptimizer(ev, WindowScheme("anchored", 2, 300, 5)).run_fixed(newer)
    with Journal(journal) as j:
        now = datetime.now(UTC)
        save_report(report, tmp_path / "wf2", j, now, now)
        promote(tmp_path / "wf2", j)
    assert load_promoted(journal).params == newer  # type: ignore[union-attr]
    path.write_text(old)
    db = sqlite3.connect(str(journal))
    rows = db.execute(
        "SELECT metrics FROM model_runs WHERE model = 'optimization.promote' ORDER BY id"
    ).fetchall()
    db.close()
    assert [json.loads(r[0])["params"] for r in rows] == [first, newer]  # the journal's word
    with pytest.raises(PromotionRefused, match="superseded"):
        load_promoted(journal)


class ScopedEdge(PlantedEdge):
    """The planted edge, tuned for a given universe under the shipped defaults (no TOML)."""

    def scope(self) -> dict[str, Any]:
        return {"universe": sorted(UNIVERSE), "config_sha256": None}


def test_a_set_tuned_for_another_universe_or_config_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    journal = tmp_path / "j.sqlite"
    ev = ScopedEdge()
    report = WalkForwardOptimizer(ev, WindowScheme("anchored", 2, 300, 5)).run_fixed(CHOSEN)
    with Journal(journal) as j:
        now = datetime.now(UTC)
        save_report(report, tmp_path / "wf", j, now, now)
        promote(tmp_path / "wf", j)
    saved = json.loads((tmp_path / "wf" / "walkforward.json").read_text())
    assert saved["scope"] == {"universe": ["AAPL", "JPM", "MSFT"], "config_sha256": None}
    same = {"universe": ["AAPL", "JPM", "MSFT"], "config_sha256": None}
    assert load_promoted(journal, same) is not None
    with pytest.raises(PromotionRefused, match=r"tuned for universe AAPL,JPM,MSFT.*AAPL,JPM\b"):
        load_promoted(journal, {**same, "universe": ["AAPL", "JPM"]})
    toml = tmp_path / "v28.toml"
    toml.write_text("[paper]\nmin_confidence = 0.1\n")
    sha = hashlib.sha256(toml.read_bytes()).hexdigest()
    with pytest.raises(PromotionRefused, match=rf"settings.*{sha[:12]}"):
        load_promoted(journal, {**same, "config_sha256": sha})
    argv = ["--mode", "paper", "--once", "--journal", str(journal), "--universe", "AAPL,JPM"]
    assert build_and_run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: promoted parameters:")
    assert "tuned for universe" in err[0]


class DefaultUniverseEdge(PlantedEdge):
    """The planted edge, scoped as the backtest objective scopes its default universe."""

    def scope(self) -> dict[str, Any]:
        from v28quant.optimization.backtest_objective import BacktestEvaluator

        return BacktestEvaluator(universe=None).scope()


def test_a_set_tuned_on_the_default_universe_is_refused_for_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reference: the universe a keyless run trades when none is given (``open_venue``)."""
    from v28quant.calendar import default_calendar
    from v28quant.venue import open_venue

    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    journal = tmp_path / "j.sqlite"
    report = WalkForwardOptimizer(DefaultUniverseEdge(), WindowScheme("anchored", 2, 300, 5))
    with Journal(journal) as j:
        now = datetime.now(UTC)
        save_report(report.run_fixed(CHOSEN), tmp_path / "wf", j, now, now)
        promote(tmp_path / "wf", j)
    settings, cfg = load_config(None, journal_path=journal)
    args = RunArgs("paper", None, None, journal, None, None, 1, False, "INFO", None)
    default = open_venue("paper", settings, cfg, args, default_calendar()).universe
    assert load_promoted(journal, {"universe": list(default), "config_sha256": None}) is not None
    with pytest.raises(
        PromotionRefused, match=r"tuned for universe .*; this run trades AAPL,JPM \("
    ):
        load_promoted(journal, {"universe": ["AAPL", "JPM"], "config_sha256": None})


class VersionedEdge(PlantedEdge):
    """The planted edge, tuned for the test's universe by a given v28quant version."""

    def __init__(self, version: str | None) -> None:
        super().__init__()
        self.version = version

    def scope(self) -> dict[str, Any]:
        scope = {"universe": sorted(UNIVERSE), "config_sha256": None}
        return scope if self.version is None else {**scope, "code_version": self.version}


@pytest.mark.parametrize(
    ("version", "named"), [("0.0.9", "v28quant 0.0.9"), (None, "an unrecorded version")]
)
def test_a_set_tuned_by_another_code_version_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str | None, named: str
) -> None:
    """Reference: the installed package's version, from its distribution metadata."""
    from importlib.metadata import version as installed_version

    from v28quant.settings import SettingsError

    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    journal = tmp_path / "j.sqlite"
    report = WalkForwardOptimizer(VersionedEdge(version), WindowScheme("anchored", 2, 300, 5))
    with Journal(journal) as j:
        now = datetime.now(UTC)
        save_report(report.run_fixed(CHOSEN), tmp_path / "wf", j, now, now)
        promote(tmp_path / "wf", j)
    built: list[RunConfig] = []

    def engines(cfg: RunConfig, equity: dict[str, Any]) -> list[Quiet]:
        built.append(cfg)
        return [Quiet()]

    settings, cfg = load_config(None, journal_path=journal)
    args = RunArgs("paper", None, UNIVERSE, journal, None, None, None, True, "INFO", None)
    ours = installed_version("v28quant")
    with pytest.raises(SettingsError, match=rf"tuned by {named}; this run is v28quant {ours}"):
        run_with(args, settings, cfg, engines=engines)
    assert built == []  # refused before any engine was made with it


def test_the_banner_and_start_record_state_the_trials_the_dsr_deflated_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reference: the walk-forward report file, read with json."""
    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    journal = tmp_path / "j.sqlite"
    wf = WalkForwardOptimizer(PlantedEdge(), WindowScheme("anchored", 2, 300, 5))
    report = wf.run_fixed(CHOSEN, n_trials=12, trial_sharpes=[0.01 * k for k in range(12)])
    assert report.passed, report.verdict
    with Journal(journal) as j:
        now = datetime.now(UTC)
        save_report(report, tmp_path / "wf", j, now, now)
        promote(tmp_path / "wf", j)
    saved = json.loads((tmp_path / "wf" / "walkforward.json").read_text())
    assert saved["n_trials"] == saved["dsr"]["n_trials"] == 12
    settings, cfg = load_config(None, journal_path=journal)
    args = RunArgs("paper", None, UNIVERSE, journal, None, None, None, True, "INFO", None)
    assert run_with(args, settings, cfg, engines=lambda cfg, equity: [Quiet()]).exit_code == 0
    (log_file,) = Path("runs").glob("paper-*/v28quant.log")
    line = next(x for x in log_file.read_text().splitlines() if "parameters:" in x)
    assert f"walk-forward DSR {saved['dsr']['dsr']:.3f} over 12 trial(s)" in line
    db = sqlite3.connect(str(journal))
    (start,) = db.execute("SELECT reasoning FROM decisions WHERE action = 'start'").fetchall()
    db.close()
    assert json.loads(start[0])["parameters"]["n_trials"] == 12


def test_a_walk_forward_report_that_is_not_a_report_is_refused_in_one_line(
    promoted: tuple[Path, dict[str, float]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The promoted file names its report; one overwritten with other JSON stops the start."""
    journal, _ = promoted
    report = Path(json.loads(journal.with_name(PROMOTED_FILE).read_text())["report"])
    report.write_text("[]")
    with pytest.raises(PromotionRefused, match="not a walk-forward report"):
        load_promoted(journal)
    with Journal(journal) as j, pytest.raises(PromotionRefused, match="not a walk-forward report"):
        promote(report, j)
    argv = ["--mode", "paper", "--once", "--journal", str(journal), "--universe", "AAPL"]
    assert build_and_run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: promoted parameters:")


def test_a_promoted_value_the_settings_refuse_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The promoted set passes the checks every TOML value passes, whatever the search space.

    A search space whose range reaches past a setting's (here ``equity.max_weight`` down to 0,
    the settings' ``(0, 1]`` excluding it) must not put that value into trading. Reference:
    ``defaults.toml``'s documented range, as the error line states it.
    """
    import dataclasses

    from v28quant.optimization import backtest_objective
    from v28quant.optimization.space import SearchSpace
    from v28quant.settings import SettingsError

    shipped = backtest_space()
    wider = SearchSpace(
        tuple(
            dataclasses.replace(p, low=0.0) if p.name == "equity.max_weight" else p
            for p in shipped.params
        )
    )
    monkeypatch.setattr(backtest_objective, "backtest_space", lambda: wider)
    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    journal = tmp_path / "j.sqlite"
    params = wider.validate({**CHOSEN, "equity.max_weight": 0.0})
    edge = PlantedEdge()
    edge.space = wider
    report = WalkForwardOptimizer(edge, WindowScheme("anchored", 2, 300, 5))
    with Journal(journal) as j:
        now = datetime.now(UTC)
        save_report(report.run_fixed(params), tmp_path / "wf", j, now, now)
        promote(tmp_path / "wf", j)
    path = journal.with_name(PROMOTED_FILE)
    assert json.loads(path.read_text())["params"]["equity.max_weight"] == 0.0
    built: list[RunConfig] = []

    def engines(cfg: RunConfig, equity: dict[str, Any]) -> list[Quiet]:
        built.append(cfg)
        return [Quiet()]

    settings, cfg = load_config(None, journal_path=journal)
    args = RunArgs("paper", None, UNIVERSE, journal, None, None, None, True, "INFO", None)
    with pytest.raises(SettingsError, match=r"\[equity\] max_weight: must be in \(0, 1\]"):
        run_with(args, settings, cfg, engines=engines)
    assert built == []  # refused before any engine was made with it
    argv = ["--mode", "paper", "--once", "--journal", str(journal), "--universe", "AAPL,JPM,MSFT"]
    assert build_and_run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: promoted parameters: {path}: [equity] max_weight")
