"""Shared test fixtures. Real market history lives in ../shared/data (see its README)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
