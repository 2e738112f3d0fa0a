"""Reliability suite: the tally each test adds to and the table printed at the end of the run.

``V28_RELIABILITY_FULL=1`` (``make reliability``) runs the full counts; the default run is the
bounded form that fits the CI time limit.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from reliability.tally import FIGURE_ROWS, FIGURES, FULL, ROWS, TALLY


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
    if not TALLY and not FIGURES:
        return
    tr = terminalreporter
    tr.section(f"reliability ({'full' if FULL else 'bounded'})")
    for label, key in ROWS:
        tr.write_line(f"{label:<32} {TALLY.get(key, 0):>6}")
    for label, key in FIGURE_ROWS:
        tr.write_line(f"{label:<32} {FIGURES.get(key, 'not run')}")
