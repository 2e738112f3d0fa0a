"""Optuna's journal kept in SQLite: a study survives the process, and processes share it.

Independent references: the same trials in Optuna's own in-memory storage, and the journal
table read with ``sqlite3``.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import optuna
import pytest
from v28quant.optimization.journal_sqlite import SCHEME, journal_storage
from v28quant.optimization.tuner import open_storage

DISTS = {
    "x": optuna.distributions.FloatDistribution(-1.0, 1.0),
    "n": optuna.distributions.IntDistribution(1, 9),
    "c": optuna.distributions.CategoricalDistribution(["a", "b"]),
}


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run(study: optuna.Study, n: int) -> None:
    for i in range(n):
        t = study.ask(DISTS)
        t.report(float(t.params["x"]) * i, step=0)
        t.set_user_attr("windows", [i, i + 1])
        if i % 3 == 2:
            study.tell(t, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(t, float(t.params["x"]) ** 2 + t.params["n"])


def _trials(study: optuna.Study) -> list[tuple[object, ...]]:
    return [
        (t.number, t.state, t.params, t.value, t.user_attrs, t.intermediate_values)
        for t in study.get_trials(deepcopy=False)
    ]


def test_a_study_reads_back_as_optuna_holds_it_in_memory(tmp_path: Path) -> None:
    url = f"{SCHEME}{tmp_path / 'sub' / 'study.sqlite'}"
    sampler = optuna.samplers.RandomSampler(seed=4)
    stored = optuna.create_study(study_name="s", storage=open_storage(url), sampler=sampler)
    _run(stored, 10)
    memory = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=4))
    _run(memory, 10)
    # a fresh storage (as another process would open it) replays the same study
    again = optuna.load_study(study_name="s", storage=journal_storage(url))
    assert _trials(again) == _trials(memory)
    assert again.best_value == memory.best_value


def _append(url: str, n: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="shared", storage=journal_storage(url))
    _run(study, n)


def test_processes_share_one_study_without_losing_an_entry(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    url = f"{SCHEME}{path}"
    optuna.create_study(study_name="shared", storage=journal_storage(url))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(url, 15)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    study = optuna.load_study(study_name="shared", storage=journal_storage(url))
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(30))
    assert all(t.state.is_finished() for t in trials)
    db = sqlite3.connect(path)
    numbers = [n for (n,) in db.execute("SELECT log_number FROM optuna_journal ORDER BY 1")]
    db.close()
    assert numbers == list(range(len(numbers)))  # one numbering, no gap, no duplicate


def test_a_bad_url_is_named() -> None:
    with pytest.raises(ValueError, match=r"expected journal\+sqlite:///<path to a file>"):
        journal_storage("journal+sqlite:///")


def test_the_tuner_keeps_its_study_in_the_journal_by_default(tmp_path: Path) -> None:
    from optuna.storages.journal import JournalStorage
    from v28quant.optimization.synthetic import QuadraticEvaluator
    from v28quant.optimization.tuner import BayesianTuner, TunerConfig, default_storage
    from v28quant.optimization.windows import WindowScheme

    url = default_storage(tmp_path / "runs" / "journal.sqlite")
    assert url == f"{SCHEME}{tmp_path / 'runs' / 'v28_optuna.sqlite'}"
    assert isinstance(open_storage(url), JournalStorage)
    ev = QuadraticEvaluator({"a": 0.3, "b": 0.7})
    for _ in range(2):  # the second run continues the stored study
        cfg = TunerConfig(n_trials=8, seed=1, storage=url, study_name="resume")
        res = BayesianTuner(ev, cfg, WindowScheme("anchored", 4, 300, 1)).optimize()
    stored = optuna.load_study(study_name="resume", storage=journal_storage(url))
    assert len(stored.trials) == len(res.study.trials) == 16
    assert [t.value for t in stored.trials] == [t.value for t in res.study.trials]


def test_a_journal_file_opened_as_relational_storage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v28_optuna.sqlite"
    optuna.create_study(study_name="s", storage=journal_storage(f"{SCHEME}{path}"))
    with pytest.raises(ValueError, match=r"holds Optuna's journal .* open it as journal\+sqlite"):
        open_storage(f"sqlite:///{path}")
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("optuna_journal",)]  # nothing was added to the file


def test_an_unknown_study_names_the_studies_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from v28quant.optimization import cli
    from v28quant.optimization.tuner import default_storage

    journal = tmp_path / "j.sqlite"
    url = default_storage(journal)
    optuna.create_study(study_name="v28-sample-strategy", storage=journal_storage(url))
    argv = ["walk-forward", "--workers", "0", "--study", "v28-sample", "--journal", str(journal)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "no study 'v28-sample'" in err
    assert "studies there: v28-sample-strategy" in err
