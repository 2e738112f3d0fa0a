"""``release_memory``: freed heap in the middle of glibc's arena goes back to the system.

Independent reference: the kernel's count of the process's resident pages (``/proc/self/statm``)
around memory the test itself allocates and frees through the C library.
"""

from __future__ import annotations

import ctypes
import os

import pytest
from v28quant.memory import _MALLOC_TRIM, release_memory

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
