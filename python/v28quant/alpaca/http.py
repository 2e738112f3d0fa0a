"""HTTP plumbing of the Alpaca adapters: a ``requests`` session whose requests time out."""

from __future__ import annotations

from typing import Any

import requests


class TimeoutSession(requests.Session):
    """A ``requests`` session whose requests time out.

    alpaca-py passes no timeout, so a hung connection would otherwise block its worker thread
    forever.
    """

    def __init__(self, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        super().__init__()
        self._timeout_s = timeout_s

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        """Send with the session's timeout unless the caller gave one."""
        kwargs.setdefault("timeout", self._timeout_s)
        return super().request(*args, **kwargs)
