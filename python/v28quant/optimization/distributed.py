"""Running evaluation tasks on Dask: a LocalCluster by default, any scheduler by address.

Tasks are plain functions of their arguments (each carrying its own seed), gathered back in
submission order, so a result never depends on how many workers ran it or which finished first.
Large shared inputs (the evaluator with its history) are scattered to every worker once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

log = logging.getLogger(__name__)
T = TypeVar("T")


class TaskRunner:
    """Runs task batches in-process (``workers=0``) or on a Dask cluster.

    Parameters
    ----------
    workers : int
        Worker processes of the LocalCluster (one thread each, since the evaluations are
        CPU-bound Python and numpy); 0 runs every task in this process, without Dask.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:port``); overrides ``workers``.
    progress : bool
        Show a progress bar per batch.
    """

    def __init__(self, workers: int = 1, scheduler: str | None = None, progress: bool = True):
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        if scheduler is not None and not scheduler.startswith(("tcp://", "tls://", "inproc://")):
            raise ValueError(
                f"scheduler must be an address like tcp://host:8786, got {scheduler!r}"
            )
        self.workers, self.scheduler, self.progress = workers, scheduler, progress
        self._client: Any = None
        self._cluster: Any = None

    def __enter__(self) -> TaskRunner:
        """Start the cluster (or connect to the scheduler)."""
        if self.scheduler is None and self.workers == 0:
            return self
        from dask.distributed import Client, LocalCluster

        if self.scheduler is not None:
            self._client = Client(self.scheduler)
        else:
            self._cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: several clusters may run
                # Shutdown races (a worker's last heartbeat to a closed scheduler) log at ERROR;
                # a failing task still raises in ``map`` through ``gather``.
                silence_logs=logging.CRITICAL,
            )
            self._client = Client(self._cluster)
        log.info("dask: %s", self.describe())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client and any cluster this runner started."""
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def describe(self) -> str:
        """Where tasks run, in words."""
        if self._client is None:
            return "in-process (no Dask)"
        n = len(self._client.scheduler_info().get("workers", {}))
        where = self.scheduler or "LocalCluster"
        return f"{where} with {n} worker(s), dashboard {self._client.dashboard_link}"

    def share(self, obj: T) -> T:
        """``obj`` sent once to every worker; pass the result as a task argument."""
        if self._client is None:
            return obj
        shared: T = self._client.scatter(obj, broadcast=True, hash=False)
        return shared

    def map(
        self, fn: Callable[..., T], arg_lists: Sequence[Sequence[Any]], desc: str = "tasks"
    ) -> list[T]:
        """``[fn(*args) for args in arg_lists]``, in that order, run on the cluster."""
        if not arg_lists:
            return []
        bar = tqdm(total=len(arg_lists), desc=desc, disable=not self.progress, leave=False)
        try:
            if self._client is None:
                out = []
                # One BLAS/OpenMP thread, as on the Dask workers: the same numerics in the last
                # bit, and no oversubscription of the cores.
                with threadpool_limits(limits=1):
                    for args in arg_lists:
                        out.append(fn(*args))
                        bar.update()
                return out
            from dask.distributed import as_completed

            futures = [self._client.submit(fn, *args, pure=False) for args in arg_lists]
            for _ in as_completed(futures):
                bar.update()
            results: list[T] = self._client.gather(futures)
            return results
        finally:
            bar.close()
