"""Keep a long-running process's resident memory flat: freed heap goes back to the system.

Each pre-market job refits models and each cycle builds chains and frames; the memory they free
goes back to glibc's allocator, which keeps much of it in its arenas rather than returning it to
the system. Over weeks that reads as a leak in the process's resident size. Two remedies, both
glibc's own (``mallopt(3)``, ``malloc_trim(3)``):

- ``fix_mmap_threshold`` at start: glibc serves blocks of 128 KiB and up from their own mappings
  but raises that threshold to the size of each such block freed (up to 32 MiB), after which the
  arrays a cycle builds and drops land in the arenas, fragment there and stay resident;
- ``release_memory`` at each session's end: a collection, then ``malloc_trim``; the objects
  alive when the run starts (``frozen_heap``) are left out of those collections.

A keyless soak of 12 sessions grew by about 8 MiB a session with neither
(``tests/reliability/test_soak.py`` holds the bound). With both, it still grew by 2.4-2.6 MiB a
session, in CPython's own small-object allocator: pymalloc keeps each 1 MiB arena while any
object in it lives, and the few objects a session leaves alive (about 0.1 MiB by tracemalloc)
held two more arenas every session. ``use_system_allocator`` at start hands Python's small
objects to glibc instead (``PYTHONMALLOC=malloc``), whose free pages ``malloc_trim`` returns:
0.7 MiB a session over the second half of 20 sessions.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


def _load_malloc_trim() -> Callable[[int], int] | None:
    """Return glibc's ``malloc_trim`` (``None`` off Linux or on a C library without it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def _load_mallopt() -> Callable[[int, int], int] | None:
    """Return glibc's ``mallopt`` (``None`` off glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MALLOC_TRIM = _load_malloc_trim()
_MALLOPT = _load_mallopt() if _MALLOC_TRIM is not None else None  # glibc only: both or neither
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (<malloc.h>)
#: Blocks from this size up get their own mapping (glibc's initial threshold, kept fixed).
MMAP_THRESHOLD = 128 * 1024


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Serve every block of ``nbytes`` or more from its own mapping, for the whole process.

    Setting the threshold turns off glibc's dynamic raise of it, so a large block's pages go back
    to the system when it is freed instead of staying in an arena.

    Returns
    -------
    bool
        True when set (glibc), False on another C library.
    """
    if nbytes <= 0:
        raise ValueError(f"nbytes must be > 0, got {nbytes}")
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(_M_MMAP_THRESHOLD, nbytes))


def release_memory() -> bool:
    """Collect garbage, then return the allocator's free pages to the system.

    Returns
    -------
    bool
        True when the C allocator could be trimmed (glibc), False when only the collection ran.
    """
    gc.collect()
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave the objects alive on entry out of every collection until the block ends.

    Modules, models and the loaded history live as long as the run; without this, each
    session's ``release_memory`` walks all of them again (0.2 s a session with the ML stack
    loaded). A collection runs first, so no garbage is frozen with them; on exit they are
    handed back to the collector (``gc.freeze``, ``gc.unfreeze``).
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def use_system_allocator() -> None:
    """Restart this interpreter with ``PYTHONMALLOC=malloc`` unless an allocator was chosen.

    Call it first thing in a long-running process's entry point: the allocator is fixed when
    the interpreter starts, so the process replaces itself (``execv``, same PID, same command
    line) with one that allocates Python objects through glibc. Does nothing off glibc, or when
    ``PYTHONMALLOC`` is already set (the operator's choice, e.g. ``debug``, is kept). When the
    interpreter cannot be restarted (no ``sys.executable``, an ``execv`` error) it says so on
    stderr and the process goes on with the allocator it has: memory grows faster, nothing else
    changes.
    """
    if _MALLOC_TRIM is None or os.environ.get("PYTHONMALLOC"):
        return
    os.environ["PYTHONMALLOC"] = "malloc"
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if not sys.executable:
            raise OSError("sys.executable is empty")
        os.execv(sys.executable, sys.orig_argv)
    except OSError as exc:
        del os.environ["PYTHONMALLOC"]  # children must not believe it is in effect
        print(
            f"v28quant: could not restart on the system allocator ({exc}); continuing on pymalloc",
            file=sys.stderr,
        )
