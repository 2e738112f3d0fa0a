"""``v28quant.memory``: freed heap goes back to the system, large blocks get their own mapping.

Independent references: the kernel's count of the process's resident pages (``/proc/self/statm``)
around memory the test itself allocates and frees through the C library, and glibc's own count
of bytes in mapped blocks (``mallinfo2``).
"""

from __future__ import annotations

import ctypes
import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import v28quant
from v28quant.memory import _MALLOC_TRIM, fix_mmap_threshold, frozen_heap, release_memory

MIB = 1024 * 1024


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(_MALLOC_TRIM is None, reason="needs glibc's malloc_trim")
def test_freed_heap_held_below_a_live_block_is_returned() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # 64 MiB in 4 KiB blocks (below the mmap threshold, so on the heap), touched so resident
    blocks = [libc.malloc(4096) for _ in range(16384)]
    for b in blocks:
        ctypes.memset(b, 1, 4096)
    pin = libc.malloc(4096)  # a live block above them: free() alone cannot shrink the heap
    ctypes.memset(pin, 1, 4096)
    for b in blocks:
        libc.free(b)
    held = _rss()
    assert release_memory()
    returned = held - _rss()
    libc.free(pin)
    assert returned >= 48 * MIB, f"only {returned / MIB:.1f} MiB returned of 64 MiB freed"


# Run in a fresh interpreter: in a long test process the heap already holds free chunks large
# enough for the block, and glibc serves those before it ever weighs a mapping.
_MAPPED_AFTER_A_LARGE_FREE = """
import ctypes
from v28quant.memory import fix_mmap_threshold
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
assert fix_mmap_threshold()
libc.free(libc.malloc(8 << 20))
before = libc.mallinfo2().hblkhd
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblkhd - before)
libc.free(block)
"""


def _mapped_after_a_large_free() -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(v28quant.__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", _MAPPED_AFTER_A_LARGE_FREE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


@pytest.mark.skipif(_MALLOC_TRIM is None, reason="needs glibc's mallopt")
def test_a_fixed_mmap_threshold_is_not_raised_by_a_large_free() -> None:
    # glibc's own accounting (mallinfo2's bytes in mapped blocks) is the reference. By default
    # freeing an 8 MiB mapped block raises the threshold to 8 MiB, and a 1 MiB block then
    # lands in the heap (what a fresh interpreter on the build machine shows, though not in
    # every environment); with the threshold fixed it still gets a mapping of its own.
    with pytest.raises(ValueError, match="nbytes must be > 0"):
        fix_mmap_threshold(0)
    assert _mapped_after_a_large_free() >= MIB


_ALLOCATOR_PROBE = """
import os, sys, _testcapi
from v28quant.memory import use_system_allocator
use_system_allocator()
print(_testcapi.pymem_getallocatorsname(), os.environ.get("PYTHONMALLOC"), sys.argv[1:])
"""


def _probe(env_malloc: str | None) -> list[str]:
    pytest.importorskip("_testcapi")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    env["PYTHONPATH"] = str(Path(v28quant.__file__).parents[1])
    if env_malloc is not None:
        env["PYTHONMALLOC"] = env_malloc
    out = subprocess.run(
        [sys.executable, "-c", _ALLOCATOR_PROBE, "--mode", "paper"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


@pytest.mark.skipif(_MALLOC_TRIM is None, reason="needs glibc")
def test_the_runner_restarts_itself_on_the_system_allocator() -> None:
    # Reference: CPython's own name for the allocator in use (_testcapi). The process restarts
    # once, with its arguments, on glibc's malloc; only the restarted one gets to print.
    lines = _probe(None)
    assert len(lines) == 1, lines
    name, env, args = lines[0].split(" ", 2)
    assert name == "malloc", lines
    assert env == "malloc", lines
    assert args == "['--mode', 'paper']", lines


def test_an_allocator_the_operator_chose_is_kept() -> None:
    lines = _probe("pymalloc")
    assert len(lines) == 1, lines
    assert lines[0].split(" ")[:2] == ["pymalloc", "pymalloc"], lines


@pytest.mark.skipif(_MALLOC_TRIM is None, reason="needs glibc")
def test_a_failed_restart_is_said_and_the_process_goes_on() -> None:
    # An interpreter that cannot be restarted (here sys.executable emptied, as when embedded)
    # must not stop the runner: one line on stderr, the same allocator, PYTHONMALLOC unset.
    probe = _ALLOCATOR_PROBE.replace(
        "use_system_allocator()", "sys.executable = ''\nuse_system_allocator()"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    env["PYTHONPATH"] = str(Path(v28quant.__file__).parents[1])
    pytest.importorskip("_testcapi")
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert proc.stdout.split(" ")[:2] == ["pymalloc", "None"], proc.stdout
    assert "could not restart on the system allocator (sys.executable is empty)" in proc.stderr


class _Node:
    """A reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_frozen_heap_leaves_live_objects_out_and_frees_garbage_before_and_after() -> None:
    # gc's own counts: the live objects on entry sit in the permanent generation inside the
    # block and are back afterwards; a cycle dropped before entry is freed, not frozen, and
    # one dropped inside is freed by a collection there.
    before = _Node()
    dropped_before = weakref.ref(before)
    del before
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        assert dropped_before() is None
        assert gc.get_freeze_count() > 1000
        inside = _Node()
        dropped_inside = weakref.ref(inside)
        del inside
        gc.collect()
        assert dropped_inside() is None
    assert gc.get_freeze_count() == 0
