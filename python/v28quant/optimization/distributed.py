"""Running evaluation tasks on Dask: a LocalCluster by default, any scheduler by address.

Tasks are plain functions of their arguments (each carrying its own seed), gathered back in
submission order, so a result never depends on how many workers ran it or which finished first.
Large shared inputs (the evaluator with its history) are scattered to every worker once.
:meth:`TaskRunner.submit` returns at once, so the caller can work (or submit more) while the
workers run; :meth:`Pending.result` then waits for that submission's results, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

log = logging.getLogger(__name__)
T = TypeVar("T")


class Pending(Generic[T]):
    """Tasks from :meth:`TaskRunner.submit`; :meth:`result` returns their results in order.

    In-process (no Dask) the tasks run when :meth:`result` is first called; on Dask they are
    queued on the cluster from submission on.
    """

    def __init__(
        self,
        runner: TaskRunner,
        fn: Callable[..., T],
        arg_lists: Sequence[Sequence[Any]],
        desc: str,
        futures: list[Any] | None,
    ) -> None:
        self._runner, self._fn, self._args, self._desc = runner, fn, arg_lists, desc
        self._futures = futures
        self._results: list[T] | None = None
        self._cancelled = False

    def result(self) -> list[T]:
        """``[fn(*args) for args in arg_lists]``, in that order (waits for the tasks)."""
        if self._results is not None:
            return self._results
        if self._cancelled:
            raise RuntimeError(f"{self._desc}: the tasks were cancelled")
        if not self._args:
            self._results = []
            return self._results
        n = len(self._args)
        bar = tqdm(total=n, desc=self._desc, disable=not self._runner.progress, leave=False)
        try:
            if self._futures is None:
                out = []
                # One BLAS/OpenMP thread, as on the Dask workers: the same numerics in the last
                # bit, and no oversubscription of the cores.
                with threadpool_limits(limits=1):
                    for args in self._args:
                        out.append(self._fn(*args))
                        bar.update()
                self._results = out
            else:
                from dask.distributed import as_completed

                for _ in as_completed(self._futures):
                    bar.update()
                self._results = self._runner._client.gather(self._futures)
                self._futures = None
            return self._results
        finally:
            bar.close()

    def cancel(self) -> None:
        """Drop the tasks not yet run (a no-op once :meth:`result` has returned)."""
        if self._results is not None:
            return
        if self._futures is not None and self._runner._client is not None:
            self._runner._client.cancel(self._futures)
        self._futures = None
        self._cancelled = True


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

    def submit(
        self,
        fn: Callable[..., T],
        arg_lists: Sequence[Sequence[Any]],
        desc: str = "tasks",
        priority: int = 0,
    ) -> Pending[T]:
        """Queue ``fn(*args)`` for each of ``arg_lists`` and return without waiting.

        Among queued tasks a higher ``priority`` runs first, then earlier submissions; the order
        only decides when a task runs, never its result.
        """
        futures = None
        if self._client is not None and arg_lists:
            futures = self._client.map(
                fn, *zip(*arg_lists, strict=True), pure=False, priority=priority
            )
        return Pending(self, fn, list(arg_lists), desc, futures)

    def map(
        self, fn: Callable[..., T], arg_lists: Sequence[Sequence[Any]], desc: str = "tasks"
    ) -> list[T]:
        """``[fn(*args) for args in arg_lists]``, in that order, run on the cluster."""
        return self.submit(fn, arg_lists, desc).result()
