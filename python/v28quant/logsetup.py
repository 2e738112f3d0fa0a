"""Logging for the runner: one line per event, to stdout and a rotating file, secrets scrubbed.

Each line is ``time level logger: message`` followed by the record's structured extras as
compact JSON (``{"symbol": "AAPL", ...}``), so ``grep`` finds an event and a program can still
parse its numbers. Every secret value the settings hold (Alpaca keys, the Discord webhook) is
replaced by ``[redacted]`` in every line, whatever logger wrote it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class LineFormatter(logging.Formatter):
    """``time level logger: message {extras}`` on one line; newlines in messages escaped."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        """Format one record as a single scrubbed line."""
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if extras:
            line += " " + json.dumps(extras, default=str, separators=(",", ":"))
        line = line.replace("\n", "\\n")
        for secret in self._secrets:
            line = line.replace(secret, "[redacted]")
        return line


def setup_logging(
    level: str,
    log_dir: Path | None,
    secrets: Iterable[str] = (),
    *,
    max_bytes: int = 10_000_000,
    backups: int = 5,
) -> Path | None:
    """Send every log record to stdout and, when ``log_dir`` is given, ``log_dir/v28quant.log``.

    Parameters
    ----------
    level : str
        ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``.
    log_dir : Path or None
        Folder of the rotating log file (created if missing).
    secrets : iterable of str
        Values never to print.
    max_bytes, backups : int
        Rotation size and the number of old files kept.

    Returns
    -------
    Path or None
        The log file.

    Raises
    ------
    ValueError
        ``level`` is not a logging level name.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"--log-level: must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_v28", False):
            root.removeHandler(h)
            h.close()
    fmt = LineFormatter(secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    path = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / "v28quant.log"
        handlers.append(
            logging.handlers.RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        )
    for h in handlers:
        h.setFormatter(fmt)
        h._v28 = True  # type: ignore[attr-defined]  # marks our handlers for a later reset
        root.addHandler(h)
    root.setLevel(numeric)
    for noisy in ("httpx", "urllib3", "asyncio", "matplotlib", "numba"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    return path


def secret_values(settings: Any) -> list[str]:
    """Return the secret strings held by ``settings`` (never to be printed)."""
    out = []
    for name in ("alpaca_key_id", "alpaca_secret_key", "discord_webhook_url"):
        value = getattr(settings, name, None)
        if value is not None:
            out.append(value.get_secret_value())
    return out
