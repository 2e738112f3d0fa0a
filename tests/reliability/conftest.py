"""Reliability suite: the tally each test adds to and the table printed at the end of the run.

``V28_RELIABILITY_FULL=1`` (``make reliability``) runs the full counts; the default run is the
bounded form that fits the CI time limit.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

FULL = os.environ.get("V28_RELIABILITY_FULL", "") not in ("", "0")

#: What the suite did and found; filled by the tests through the ``tally`` fixture.
TALLY: Counter[str] = Counter()

ROWS = (
    ("kill trials", "trials"),
    ("faults injected", "faults"),
    ("bad inputs tried", "bad_inputs"),
    ("bad data symbols tried", "bad_data"),
    ("orders duplicated (must be 0)", "duplicated"),
    ("journal rows lost (must be 0)", "rows_lost"),
    ("secret leaks (must be 0)", "leaks"),
    ("files scanned for secrets", "files_scanned"),
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under this folder ``reliability``."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def tally() -> Counter[str]:
    """Return the session's tally (see ``ROWS``)."""
    return TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the reliability table when any reliability test ran."""
    if not TALLY:
        return
    tr = terminalreporter
    tr.section(f"reliability ({'full' if FULL else 'bounded'})")
    for label, key in ROWS:
        tr.write_line(f"{label:<32} {TALLY.get(key, 0):>6}")
