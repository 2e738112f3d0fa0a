"""The tune / walk-forward / promote commands end to end on the bundled history (small runs)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import v28quant
from v28quant.optimization import cli

ROOT = Path(__file__).resolve().parents[2]


def test_help_of_every_command_runs_as_a_module() -> None:
    for cmd in ("tune", "walk-forward", "promote"):
        out = subprocess.run(
            [sys.executable, "-m", "v28quant.optimization", cmd, "--help"],
            capture_output=True,
            text=True,
            check=True,
            env={
                "PYTHONPATH": str(Path(v28quant.__file__).resolve().parents[1]),
                "PATH": "/usr/bin:/bin",
            },
            timeout=120,
        )
        assert f"usage: python -m v28quant.optimization {cmd}" in out.stdout


def test_commands_are_mounted_in_the_operator_cli() -> None:
    from v28quant.cli import build_parser

    args = build_parser().parse_args(["--journal", "/x/j.sqlite", "tune", "--trials", "3"])
    assert args.handler is cli.run_tune
    assert (args.trials, args.workers, args.scheduler) == (3, 2, None)
    assert cli._journal(args) == Path("/x/j.sqlite")  # the parent's option reaches the command
    args = build_parser().parse_args(["walk-forward", "--journal", "/y.sqlite"])
    assert cli._journal(args) == Path("/y.sqlite")


def test_commands_mount_on_another_parser() -> None:
    parser = argparse.ArgumentParser(prog="v28quant")
    cli.add_subparsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["promote", "--report", "r.json"])
    assert args.handler is cli.run_promote


@pytest.mark.slow
def test_walk_forward_then_promote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "journal.sqlite"
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"aggregator.min_confidence": 0.2}))
    out = tmp_path / "wf"
    argv = ["walk-forward", "--params", str(params), "--workers", "0", "--windows", "2"]
    status = cli.main([*argv, "--journal", str(journal), "--out", str(out), "--no-progress"])
    assert status == 0
    report = json.loads((out / "walkforward.json").read_text())
    assert len(report["windows"]) == 2
    assert report["n_trials"] == 1
    for name in ("report.html", "oos_equity.png", "sharpe.png"):
        assert (out / name).stat().st_size > 0
    capsys.readouterr()
    # the default objective's set: the runner would refuse it at start, so promote refuses it
    status = cli.main(["promote", "--report", str(out), "--journal", str(journal)])
    assert status == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("promote refused: "), err
    assert "'sample-strategy' evaluator, not of the runner's engines" in err[0]
    assert not (tmp_path / "v28_promoted_params.json").exists()


def test_bad_arguments_end_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["walk-forward", "--workers", "0", "--universe", "NOPE", "--journal"]
    assert cli.main([*argv, str(tmp_path / "j.sqlite")]) == 2
    assert "symbols not in the history: ['NOPE']" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (None, "walk-forward: --params: cannot read '{f}': No such file or directory"),
        ("{not json", "walk-forward: --params '{f}': Expecting property name enclosed in double"),
    ],
)
def test_a_bad_params_file_is_one_line_before_any_worker_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, line: str
) -> None:
    params = tmp_path / "params.json"
    if content is not None:
        params.write_text(content)
    argv = ["walk-forward", "--params", str(params), "--journal", str(tmp_path / "j.sqlite")]
    assert cli.main(argv) == 2  # with the default two Dask workers: none is started
    out = capsys.readouterr()
    (err,) = out.err.splitlines()
    assert err.startswith(line.format(f=params))
    assert "windows; tasks on" not in out.out


@pytest.mark.parametrize("entry", ["module", "operator"])
def test_promote_to_a_missing_journal_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str
) -> None:
    """A mistyped --journal is refused in one line: no empty journal or promoted file made."""
    from v28quant.cli import main as operator_main

    journal = tmp_path / "journal.sqlite"  # a folder that exists: sqlite would create it
    argv = ["promote", "--report", str(tmp_path / "wf"), "--journal", str(journal)]
    status = cli.main(argv) if entry == "module" else operator_main(argv)
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: no journal at {journal} "), err
    assert list(tmp_path.iterdir()) == []


def test_walk_forward_of_a_study_carries_the_sessions_it_searched(tmp_path: Path) -> None:
    """``walk-forward --study`` takes the study's recorded span; a study without one is refused."""
    import optuna
    from v28quant.optimization.synthetic import QuadraticEvaluator
    from v28quant.optimization.tuner import (
        BayesianTuner,
        TunerConfig,
        default_storage,
        open_storage,
    )
    from v28quant.optimization.windows import WindowScheme

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = default_storage(tmp_path / "journal.sqlite")
    ev = QuadraticEvaluator({"a": 0.3, "b": 0.7})
    config = TunerConfig(n_trials=4, storage=storage, study_name="tuned")
    BayesianTuner(ev, config, WindowScheme("anchored", 2, 300, 1)).optimize()
    old = optuna.create_study(study_name="old", storage=open_storage(storage))
    old.optimize(lambda t: 0.0, n_trials=1)
    parser = cli.build_parser()

    def study(name: str) -> argparse.Namespace:
        return parser.parse_args(["walk-forward", "--study", name, "--storage", storage])

    *_, span = cli._study_params(study("tuned"))
    assert (span.first_session, span.last_session) == (ev.dates()[0].date(), ev.dates()[-1].date())
    with pytest.raises(ValueError, match="study 'old' records no sessions it searched"):
        cli._study_params(study("old"))


def test_a_backtest_search_can_start_later(tmp_path: Path) -> None:
    """``--start`` cuts the sessions a backtest objective's windows come from (a held-out 2022)."""
    args = cli.build_parser().parse_args(
        ["walk-forward", "--objective", "backtest", "--start", "2021-01-02", "--end", "2022-12-28"]
    )
    days = cli._evaluator(args).dates()
    # 2 January 2021 is a Saturday: the first session is Monday the 4th
    assert (days[0], days[-1]) == (pd.Timestamp("2021-01-04"), pd.Timestamp("2022-12-28"))
    assert len(days) == 252 + 249  # NYSE sessions of 2021, and of 2022 to the 28 December
