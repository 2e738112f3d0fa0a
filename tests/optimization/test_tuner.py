"""The tuner finds a known optimum, prunes, and gives the same study on 1 and 2 Dask workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import optuna
import pytest
from v28quant.optimization import tuner as tuner_module
from v28quant.optimization.distributed import TaskRunner
from v28quant.optimization.synthetic import QuadraticEvaluator
from v28quant.optimization.tuner import BayesianTuner, TunerConfig, default_storage, open_storage
from v28quant.optimization.windows import WindowScheme

OPTIMUM = {"a": 0.3, "b": 0.7}
SCHEME = WindowScheme("anchored", 4, 300, 1)


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_tuner_finds_the_known_optimum() -> None:
    # The Sharpe ratio of QuadraticEvaluator peaks at OPTIMUM whatever the noise (common random
    # numbers); 0.1 of the unit range is ~7 % of the mean return lost at the edge of tolerance.
    ev = QuadraticEvaluator(OPTIMUM)
    res = BayesianTuner(ev, TunerConfig(n_trials=64, seed=3), SCHEME).optimize()
    for k, v in OPTIMUM.items():
        assert res.best_params[k] == pytest.approx(v, abs=0.1), f"{k}: {res.best_params}"
    assert res.n_trials == 64
    assert res.n_pruned > 0, "far-off trials should be pruned after the first windows"
    # the best trial's walk-forward is deflated with every trial run
    assert res.walk_forward.n_trials == 64
    assert res.walk_forward.dsr.n_trials == 64


def _study_outcome(workers: int, storage: str) -> list[tuple[str, float | None, dict[str, float]]]:
    ev = QuadraticEvaluator(OPTIMUM)
    cfg = TunerConfig(n_trials=12, batch_size=6, seed=5, storage=storage, study_name="same")
    with TaskRunner(workers=workers, progress=False) as runner:
        res = BayesianTuner(ev, cfg, SCHEME, runner).optimize()
    return [(t.state.name, t.value, t.params) for t in res.study.trials]


@pytest.mark.slow
def test_one_and_two_dask_workers_give_the_same_study(tmp_path) -> None:  # type: ignore[no-untyped-def]
    one = _study_outcome(1, default_storage(tmp_path / "one" / "journal.sqlite"))
    two = _study_outcome(2, default_storage(tmp_path / "two" / "journal.sqlite"))
    assert one == two
    assert any(state == "PRUNED" for state, _, _ in one)


def test_study_is_resumed_from_its_storage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = f"sqlite:///{tmp_path / 'study.sqlite'}"
    ev = QuadraticEvaluator(OPTIMUM)
    for _ in range(2):
        cfg = TunerConfig(n_trials=8, seed=1, storage=storage, study_name="resume")
        res = BayesianTuner(ev, cfg, SCHEME).optimize()
    assert len(res.study.trials) == 16
    assert res.walk_forward.n_trials == 16


def test_a_resumed_study_does_not_repeat_the_trials_of_the_run_before(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Night after night the off-hours tuner continues one study with the same seed.

    Reference: the parameter sets the stored study holds, compared across the two runs; and
    the same two runs into a second storage, which must hold the same trials.
    """
    ev = QuadraticEvaluator(OPTIMUM)

    def night(path: object) -> list[dict[str, float]]:
        cfg = TunerConfig(n_trials=4, batch_size=2, seed=1, storage=f"sqlite:///{path}")
        return [t.params for t in BayesianTuner(ev, cfg, SCHEME).optimize().study.trials]

    one, two = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    night(one)
    both = night(one)
    assert len(both) == 8
    repeated = [p for p in both[4:] if p in both[:4]]
    assert repeated == [], f"the second night re-ran {repeated}"
    night(two)
    assert night(two) == both  # still a function of the seed and the study


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        TunerConfig(batch_size=0)
    with pytest.raises(ValueError, match="scheduler"):
        TaskRunner(scheduler="localhost:8786")


class _Spy(BayesianTuner):
    """Records what the study held at every ask and every pruning decision."""

    asks: list[int]  # trials finished (complete or pruned) when each trial was asked
    prunes: dict[int, int]  # trial number -> complete trials at its last pruning decision

    def study(self) -> optuna.Study:
        study = super().study()
        self.asks, self.prunes = [], {}
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        before, prune = study.sampler.before_trial, study.pruner.prune

        def spy_before(s: optuna.Study, t: Any) -> None:
            self.asks.append(len(s.get_trials(deepcopy=False, states=done)))
            before(s, t)

        def spy_prune(s: optuna.Study, t: optuna.trial.FrozenTrial) -> bool:
            complete = (optuna.trial.TrialState.COMPLETE,)
            self.prunes[t.number] = len(s.get_trials(deepcopy=False, states=complete))
            return prune(s, t)

        study.sampler.before_trial = spy_before  # type: ignore[method-assign]
        study.pruner.prune = spy_prune  # type: ignore[method-assign]
        return study


def test_batch_n_plus_1_is_asked_before_batch_n_is_told() -> None:
    # The driver asks batch n+1 before it reads batch n's windows (so its work overlaps the
    # workers'): those asks see batches up to n-1 only; batch n+1's pruning decisions are taken
    # after batch n is told. Fixed by batch index, so the same whatever the worker count.
    ev = QuadraticEvaluator(OPTIMUM)
    cfg = TunerConfig(n_trials=16, batch_size=4, seed=5, n_startup_trials=4)
    spy = _Spy(ev, cfg, SCHEME)
    res = spy.optimize()
    assert spy.asks == [0] * 8 + [4] * 4 + [8] * 4
    states = [t.state.name for t in res.study.trials]
    assert spy.prunes, "no pruning decision was taken"
    for number, complete in spy.prunes.items():
        batch = number // 4
        assert complete == states[: 4 * batch].count("COMPLETE"), f"trial {number}"
    assert {t.state.name for t in res.study.trials} <= {"COMPLETE", "PRUNED"}


def test_deadline_stops_cleanly_with_no_trial_left_running(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The deadline passes while batch 0 runs: batch 1 is never asked, batch 0 is finished and
    # told, and nothing is left RUNNING in the study.
    deadline = datetime(2030, 1, 1, tzinfo=UTC)
    times = iter([deadline - timedelta(minutes=1)])
    monkeypatch.setattr(tuner_module, "_now", lambda: next(times, deadline))
    ev = QuadraticEvaluator(OPTIMUM)
    cfg = TunerConfig(n_trials=16, batch_size=4, seed=5, deadline=deadline)
    res = BayesianTuner(ev, cfg, SCHEME).optimize()
    assert len(res.study.trials) == 4
    assert {t.state.name for t in res.study.trials} <= {"COMPLETE", "PRUNED"}
    assert res.n_trials == 4


class _FailsOnce(QuadraticEvaluator):
    """Raises on the ninth evaluation (in-process): the first of batch 0's tail windows."""

    def __init__(self) -> None:
        super().__init__(OPTIMUM)
        self.calls = 0

    def evaluate(self, params: Any, train: Any, test: Any, seed: int) -> Any:
        self.calls += 1
        if self.calls == 9:  # batch 0's head is 4 trials x 2 windows, none pruned (no history)
            raise RuntimeError("evaluation failed")
        return super().evaluate(params, train, test, seed)


def test_an_error_fails_the_trials_in_flight_instead_of_leaving_them_running(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = f"sqlite:///{tmp_path / 'study.sqlite'}"
    cfg = TunerConfig(n_trials=16, batch_size=4, seed=5, storage=storage, study_name="fails")
    with pytest.raises(RuntimeError, match="evaluation failed"):
        BayesianTuner(_FailsOnce(), cfg, SCHEME).optimize()
    # batch 0 failed in its tail, batch 1 was asked: all their trials are stored FAIL
    stored = optuna.load_study(study_name="fails", storage=storage)
    assert [t.state.name for t in stored.trials] == ["FAIL"] * 8


def test_the_study_records_every_session_its_trials_saw(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Anchored windows span the evaluator's first to last date; a resumed run widens that."""
    storage = default_storage(tmp_path / "journal.sqlite")
    spans = []
    for n_dates in (800, 1000):  # the same study resumed over a longer history
        ev = QuadraticEvaluator(OPTIMUM, n_dates=n_dates)
        cfg = TunerConfig(n_trials=4, seed=1, storage=storage, study_name="spans")
        res = BayesianTuner(ev, cfg, SCHEME).optimize()
        stored = optuna.load_study(study_name="spans", storage=open_storage(storage))
        assert stored.user_attrs["search"] == res.searched.to_dict()
        assert res.walk_forward.search == res.searched
        spans.append(stored.user_attrs["search"])
    first = QuadraticEvaluator(OPTIMUM, n_dates=1000).dates()
    assert spans == [
        {"study": "spans", "first_session": "2010-01-01", "last_session": f"{first[799]:%Y-%m-%d}"},
        {"study": "spans", "first_session": "2010-01-01", "last_session": f"{first[-1]:%Y-%m-%d}"},
    ]
