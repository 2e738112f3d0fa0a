"""``release_memory``: freed heap in the middle of glibc's arena goes back to the system.

Independent reference: the kernel's count of the process's resident pages (``/proc/self/statm``)
around memory the test itself allocates and frees through the C library.
"""

from __future__ import annotations

import ctypes
import os

import pytest
from v28quant.memory import _MALLOC_TRIM, fix_mmap_threshold, release_memory

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


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
        )
    ]


@pytest.mark.skipif(_MALLOC_TRIM is None, reason="needs glibc's mallopt")
def test_a_fixed_mmap_threshold_is_not_raised_by_a_large_free() -> None:
    # glibc's own accounting (mallinfo2's bytes in mapped blocks) is the reference. By default
    # freeing an 8 MiB mapped block raises the threshold to 8 MiB and a 1 MiB block then lands
    # in the heap; with the threshold fixed it still gets a mapping of its own.
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = _MallInfo2
    with pytest.raises(ValueError, match="nbytes must be > 0"):
        fix_mmap_threshold(0)
    assert fix_mmap_threshold()
    libc.free(libc.malloc(8 * MIB))
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(MIB)
    mapped = libc.mallinfo2().hblkhd - before
    libc.free(block)
    assert mapped >= MIB, f"a 1 MiB block after an 8 MiB free: {mapped} bytes mapped"
