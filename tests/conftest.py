"""Fixtures shared across the test tree.

Real market history lives in ``shared/data`` beside the repository clone (see its README); tests
reach it only through the ``shared_data`` fixture and skip when it is absent (fail under CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN
from hypothesis import settings
from v28quant.journal import Journal

# Property tests draw the same examples on every run: CI must not pass or fail by chance
# (`pytest --hypothesis-seed=N` or a different profile explores further).
settings.register_profile("deterministic", derandomize=True, deadline=None)
settings.load_profile("deterministic")

# This file sits in <clone>/tests, so the clone's parent holds shared/data.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the shared real-market-data folder; tests that need it skip without it."""
    if not SHARED_DATA.is_dir():
        # CI always has it beside the clone: a missing folder there is a failure, not a skip.
        if os.environ.get("CI"):
            pytest.fail(f"shared market data not found at {SHARED_DATA}")
        pytest.skip(f"shared market data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """Yield a fresh journal file in the test's temporary folder, closed afterwards."""
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


@pytest.fixture
def fake_trading() -> Iterator[FakeAlpacaTrading]:
    """Yield a started fake of Alpaca's trading API at ``OPEN``; stopped after the test."""
    fake = FakeAlpacaTrading(now=OPEN).start()
    try:
        yield fake
    finally:
        fake.stop()
