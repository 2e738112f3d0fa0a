"""The reliability suite's tally and its scale (bounded by default, full on request)."""

from __future__ import annotations

import os
from collections import Counter

#: ``V28_RELIABILITY_FULL=1`` (``make reliability``): full counts; otherwise the bounded form.
FULL = os.environ.get("V28_RELIABILITY_FULL", "") not in ("", "0")

#: What the suite did and found; the tests add to it through the ``tally`` fixture.
TALLY: Counter[str] = Counter()

#: Measured figures (soak memory, cycle times, load) as the text the table shows.
FIGURES: dict[str, str] = {}

#: The table's rows: (label, tally key).
ROWS = (
    ("kill trials", "trials"),
    ("faults injected", "faults"),
    ("bad inputs tried", "bad_inputs"),
    ("bad data cases tried", "bad_data"),
    ("orders duplicated (must be 0)", "duplicated"),
    ("journal rows lost (must be 0)", "rows_lost"),
    ("secret leaks (must be 0)", "leaks"),
    ("texts scanned for secrets", "files_scanned"),
    ("fd/task leaks (must be 0)", "resource_leaks"),
)

#: The figures' rows: (label, figure key), shown after the counts when measured.
FIGURE_ROWS = (
    ("soak sessions (both engines)", "soak_sessions"),
    ("soak RSS growth", "soak_rss"),
    ("soak cycle time p50/p95/max", "soak_cycle"),
    ("load cycle (100 sym, 10 und.)", "load_cycle"),
    ("load peak requests/min", "load_rate"),
    ("runner --once (100 sym, 10 und.)", "load_runner"),
    ("runner --once peak requests/min", "load_runner_rate"),
)
