"""Which sessions a parameter search saw, so that its evidence can be checked to be out of sample.

Every trial of a tuning run is scored on the training and test dates of the same walk-forward
windows; the best trial's score, and any walk-forward whose test windows reuse those dates, are
in sample for the search. The tuner therefore records the span it searched
(:class:`SearchSpan`): on its Optuna study, in the journaled tune run and in the tuned parameter
file (``params.json``, :func:`write_tuned_params`). A walk-forward of that file carries the span
into its report, and ``promote`` refuses one whose test windows do not all lie after it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from v28quant.optimization.windows import Window

#: File of the tuned parameters in a tune run's report folder.
TUNED_PARAMS_FILE = "params.json"
#: Key of the span in a study's user attributes, a tuned parameter file and a report.
SEARCH_KEY = "search"


def _session(raw: Mapping[str, Any], key: str, where: str) -> date:
    value = raw.get(key)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value)
    raise ValueError(f"{where}: {SEARCH_KEY}.{key} is not a YYYY-MM-DD session: {value!r}")


@dataclass(frozen=True, slots=True)
class SearchSpan:
    """First and last session a search scored any trial on (training or test), and its study."""

    study: str
    first_session: date
    last_session: date

    @classmethod
    def of_windows(cls, study: str, windows: Sequence[Window]) -> SearchSpan:
        """Return the span of walk-forward ``windows``: first training to last test session."""
        return cls(
            study,
            min(w.train_start for w in windows).date(),
            max(w.test_end for w in windows).date(),
        )

    @classmethod
    def from_dict(cls, raw: object, where: str) -> SearchSpan:
        """Read a span written by :meth:`to_dict`.

        Raises
        ------
        ValueError
            Not a mapping, or a session missing or not a date: a search whose sessions are
            unknown cannot be shown to be held out, so it is not guessed.
        """
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: {SEARCH_KEY} is not a mapping: {raw!r}")
        first = _session(raw, "first_session", where)
        last = _session(raw, "last_session", where)
        if last < first:
            raise ValueError(f"{where}: {SEARCH_KEY} ends on {last} before it starts on {first}")
        return cls(str(raw.get("study", "")), first, last)

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict with the sessions as ``YYYY-MM-DD``."""
        return {
            "study": self.study,
            "first_session": self.first_session.isoformat(),
            "last_session": self.last_session.isoformat(),
        }

    def union(self, other: SearchSpan | None) -> SearchSpan:
        """Return the span of both searches (a study resumed over other dates saw both)."""
        if other is None:
            return self
        return SearchSpan(
            self.study,
            min(self.first_session, other.first_session),
            max(self.last_session, other.last_session),
        )

    def held_out(self, test_starts: Sequence[date]) -> bool:
        """Whether every test window starting on ``test_starts`` begins after the search."""
        return all(start > self.last_session for start in test_starts)


def write_tuned_params(path: Path, params: Mapping[str, float], span: SearchSpan) -> Path:
    """Write a tuned parameter set and the sessions its search saw to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"params": dict(params), SEARCH_KEY: span.to_dict()}
    path.write_text(json.dumps(body, indent=1, sort_keys=True))
    return path


def read_params_file(path: Path) -> tuple[dict[str, float], SearchSpan | None]:
    """Read a parameter file: a tuned one (:func:`write_tuned_params`) or a plain mapping.

    A plain mapping of parameters (or ``{"params": ...}`` without a span) is a hand-picked
    set: no span. A span that does not read raises ``ValueError`` (see
    :meth:`SearchSpan.from_dict`).
    """
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a JSON object of parameters")
    params = raw.get("params", raw)
    if SEARCH_KEY not in raw:
        return dict(params), None
    return dict(params), SearchSpan.from_dict(raw[SEARCH_KEY], str(path))
