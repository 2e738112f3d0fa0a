"""The runner's thread policy: every loaded BLAS library on one thread, undone on request.

Checked with threadpoolctl's own report of the libraries' thread counts.
"""

from __future__ import annotations

import pytest
import scipy.linalg  # noqa: F401  (both OpenBLAS builds loaded before the report)
from threadpoolctl import threadpool_info
from v28quant.threads import limit_blas_to_one_thread


def _blas_threads() -> dict[str, int]:
    return {d["filepath"]: d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}


def test_every_blas_library_is_held_to_one_thread_and_restored() -> None:
    before = _blas_threads()
    assert before  # numpy's and scipy's OpenBLAS
    if set(before.values()) == {1}:
        pytest.skip("the BLAS libraries are already on one thread here: nothing to limit")
    limiter = limit_blas_to_one_thread()
    try:
        assert set(_blas_threads().values()) == {1}
    finally:
        limiter.restore_original_limits()
    assert _blas_threads() == before


def test_the_runner_runs_on_one_blas_thread_and_restores_the_limits(monkeypatch) -> None:
    import v28quant.runner_setup as setup

    seen: list[set[int]] = []

    def record(*args: object) -> object:
        seen.append(set(_blas_threads().values()))
        raise setup.SettingsError("stop here")

    before = _blas_threads()
    if set(before.values()) == {1}:
        pytest.skip("the BLAS libraries are already on one thread here: nothing to limit")
    monkeypatch.setattr(setup, "run_with", record)
    assert setup.build_and_run(["--mode", "paper"]) == 2
    assert seen == [{1}]
    assert _blas_threads() == before
