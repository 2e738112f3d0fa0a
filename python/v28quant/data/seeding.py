"""Seeds derived from names, stable across runs and Python versions."""

from __future__ import annotations

import hashlib


def stable_seed(*parts: object) -> int:
    """Return a 64-bit seed from ``parts`` (joined by ``|``), the same in every process.

    Python's ``hash`` is salted per process; BLAKE2b of the text is not, so a synthetic series
    seeded by (seed, symbol, session) is the same in every run.
    """
    return int.from_bytes(
        hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "little"
    )
