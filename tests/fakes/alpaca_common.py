"""Shared pieces of the fake Alpaca trading API: wire formats, errors it answers, faults."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xc

NY = ZoneInfo("America/New_York")
_NS = uuid.UUID("a1a1a1a1-0000-4000-8000-000000000001")
_OPEN = {"accepted", "new", "partially_filled", "pending_new", "pending_cancel", "pending_replace"}
_OCC = re.compile(r"^([A-Z.]{1,6})(\d{6})([CP])(\d{8})$")
_XNYS = None


def _cal():
    global _XNYS
    if _XNYS is None:
        _XNYS = xc.get_calendar("XNYS")
    return _XNYS


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _s(d: Decimal | None) -> str | None:
    return None if d is None else format(d.normalize(), "f")


def _occ(sym: str) -> tuple[str, date, bool, Decimal] | None:
    m = _OCC.match(sym)
    if not m:
        return None
    root, ymd, cp, k = m.groups()
    return (
        root,
        date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:])),
        cp == "C",
        Decimal(int(k)) / 1000,
    )


class _Reply(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def _err(status: int, code: int | None, message: str, **extra: Any) -> _Reply:
    body: dict[str, Any] = {"message": message, **extra}
    if code is not None:
        body = {"code": code, **body}
    return _Reply(status, body)


@dataclass
class Fault:
    method: str
    path: str  # regex matched against the path (query excluded)
    status: int = 500
    body: Any = None
    headers: dict[str, str] | None = None
    times: int = 1
    after_store: bool = False  # process the request, then answer with this fault
    delay_s: float = 0.0  # sleep before answering (with or without a fault status)
    hold: threading.Event | None = None  # wait for the test to set it before processing
    # (with after_store: after processing, before answering)

    @property
    def replaces_answer(self) -> bool:
        """An error status, or any status with a body of its own (a proxy's HTML 200)."""
        return self.status >= 400 or self.body is not None
