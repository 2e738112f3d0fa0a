"""The process's policy for native thread pools: BLAS on one thread under the engines.

The engines parallelise across symbols on worker threads (the compiled fits release the GIL).
BLAS threads inside them would only oversubscribe the cores, and OpenBLAS's pthreads workers
busy-wait between calls: with the BLAS libraries left at two threads, the options analysis
of ten full chains on two worker threads used twice the CPU of the same work on one thread
(``benchmarks/options/bench_cycle.py``), the extra in OpenBLAS's own workers.

threadpoolctl's limits on OpenBLAS are process-wide, and only one Python thread at a time may
set them (the others' calls are ignored while it lives), so the policy is set once, on the
main thread, before any worker thread starts.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def limit_blas_to_one_thread() -> threadpool_limits:
    """Hold every BLAS library loaded now, numpy's and scipy's, to one thread.

    Call on the main thread at start. Returns the limiter; its ``restore_original_limits()``
    undoes the policy.
    """
    import scipy.linalg  # noqa: F401  (scipy brings its own OpenBLAS: load it to limit it too)

    return threadpool_limits(limits=1, user_api="blas")
