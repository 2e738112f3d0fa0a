"""The run-time choice of the instruction-set level (cpp/include/v28/simd_dispatch.hpp).

V28_SIMD caps the level for the whole core; CI reruns the numeric tests under avx2 and base
(each level against the same independent references). Here: a value it does not know is an
error naming it, not a silent fallback.
"""

from __future__ import annotations

import os
import subprocess
import sys

_SCRIPT = """
from v28quant.options import black_scholes as bs
print(bs.price(100.0, 90.0, 0.5, 0.03, 0.01, 0.25, False))
"""


def _run(isa: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, V28_SIMD=isa)
    return subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True)


def test_unknown_level_is_an_error_naming_the_variable() -> None:
    done = _run("avx1024")
    assert done.returncode != 0
    assert "ValueError" in done.stderr, done.stderr
    assert "V28_SIMD must be avx512, avx2, base or unset (got 'avx1024')" in done.stderr
