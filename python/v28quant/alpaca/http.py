"""HTTP plumbing of the Alpaca adapters: a ``requests`` session whose requests time out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests


class TimeoutSession(requests.Session):
    """A ``requests`` session whose requests time out.

    alpaca-py passes no timeout, so a hung connection would otherwise block its worker thread
    forever. ``before_send``, when given, is called (and may block) before every request: the
    rate limiter's gate, which must see each page of a call alpaca-py pages by itself.
    """

    def __init__(self, timeout_s: float, before_send: Callable[[], None] | None = None) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        super().__init__()
        self._timeout_s = timeout_s
        self._before_send = before_send

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        """Send with the session's timeout unless the caller gave one."""
        if self._before_send is not None:
            self._before_send()
        kwargs.setdefault("timeout", self._timeout_s)
        return super().request(*args, **kwargs)
