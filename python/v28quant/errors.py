"""The one line a user reads when the program stops on an error.

Entry points (the runner, the command line, the demo) catch what ends them at startup and print
:func:`describe_error` instead of a traceback: a bad setting names the setting, a rejected key
names the key variables, a broker failure says it came from the broker.
"""

from __future__ import annotations

from v28quant.broker.base import AuthenticationError, BrokerError
from v28quant.settings import SettingsError

__all__ = ["describe_error"]

MAX_LINE = 300
"""Longest line :func:`describe_error` returns, in characters."""


def describe_error(exc: BaseException) -> str:
    """Describe ``exc`` in one line of at most :data:`MAX_LINE` characters.

    A ``SettingsError`` already names its setting; a broker's 401 names the key variables;
    anything else is its type and first line.
    """
    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, SettingsError):
        line = text
    elif isinstance(exc, AuthenticationError):
        line = f"APCA_API_KEY_ID / APCA_API_SECRET_KEY: {text}"
    elif isinstance(exc, BrokerError):
        line = f"broker: {text}"
    else:
        line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."
