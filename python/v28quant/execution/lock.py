"""``JournalLock``: one running instance per journal, so two runners never trade one account."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType


class JournalLocked(RuntimeError):
    """Another process holds the journal; the message names its pid."""

    def __init__(self, message: str, holder_pid: int | None) -> None:
        super().__init__(message)
        self.holder_pid = holder_pid


class JournalLock:
    """An exclusive ``flock`` on ``<journal>.lock``, holding the owner's pid.

    The kernel drops the lock when its process dies, however it dies (SIGKILL included), so a
    stale lock file never blocks a restart; only a live holder does.

    Parameters
    ----------
    journal_path : str or Path
        The journal file; the lock is the same path with ``.lock`` appended.
    """

    def __init__(self, journal_path: str | Path) -> None:
        self.path = Path(str(journal_path) + ".lock")
        self._fd: int | None = None

    def acquire(self) -> JournalLock:
        """Take the lock or raise ``JournalLocked`` naming the holder's pid."""
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder is not None else "another process"
            raise JournalLocked(
                f"journal {str(self.path)[: -len('.lock')]} is in use by {who} "
                f"(lock {self.path}); stop that runner first, two must never trade one account",
                holder,
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def acquire_or_exit(self) -> JournalLock:
        """Take the lock, or end this process (status 1) with the message naming the holder.

        For entry points: a second runner on one journal must stop before it trades.
        """
        try:
            return self.acquire()
        except JournalLocked as exc:
            raise SystemExit(f"v28quant: {exc}") from None

    def release(self) -> None:
        """Drop the lock (idempotent); the file stays, holding no pid."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> JournalLock:
        """Acquire on entry."""
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release on exit."""
        self.release()


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
