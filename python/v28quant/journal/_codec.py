"""How journal values become SQLite text: exact decimals, UTC ISO times, redacted JSON."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from v28quant.decimals import to_decimal
from v28quant.redaction import redact


def plain(obj: Any) -> Any:
    """Return a JSON-able copy of ``obj``.

    Decimal -> str (exact), datetime -> ISO UTC, numpy -> Python, non-finite floats ->
    ``"NaN"``/``"Infinity"``/``"-Infinity"`` (JSON has no such numbers).
    """
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted((plain(v) for v in obj), key=str)
    if isinstance(obj, bool) or obj is None or isinstance(obj, int | str):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime):
        return ts_text(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return plain(obj.value)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return plain(obj.item())
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy array
        return plain(obj.tolist())
    return str(obj)


def json_text(obj: Any, what: str) -> str:
    """Redacted, canonical (sorted keys) JSON of ``obj``; ``what`` names it in warnings."""
    return json.dumps(plain(redact(obj, what)), sort_keys=True, allow_nan=False)


def ts_text(when: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is refused (its zone would be a guess)."""
    if not isinstance(when, datetime):
        raise ValueError(f"expected a datetime, got {when!r}")
    if when.tzinfo is None:
        raise ValueError(f"datetime must be timezone-aware, got {when!r}")
    return when.astimezone(UTC).isoformat()


def dec_text(x: Any, what: str) -> str | None:
    """Exact decimal text (None stays None); floats through ``repr``, not binary."""
    if x is None:
        return None
    try:
        return str(to_decimal(x, what))
    except ValueError as exc:
        if "finite" in str(exc):
            raise
        raise ValueError(f"{what} must be a decimal number, got {x!r}") from None


def from_iso(s: str | None) -> datetime | None:
    """Read back the datetime stored by ``ts_text`` (None stays None)."""
    return None if s is None else datetime.fromisoformat(s)
