"""The journal's SQLite plumbing: one connection, one transaction per write, migrations.

WAL mode with ``synchronous=FULL``: every write is its own transaction, committed (and the WAL
fsynced) before the method returns, so a row the caller has seen acknowledged survives a crash of
the process *and* of the machine. ``NORMAL`` would survive a process crash only; the journal writes
a few rows per 5-minute cycle, so the fsync per commit costs nothing that matters.

Thread-safe: one connection guarded by a lock (the runner writes from the event loop's worker
thread and from executor threads). From async code go through ``AsyncJournal``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from v28quant.journal.schema import MIGRATIONS

#: Seconds a write waits for another connection's lock before failing.
BUSY_TIMEOUT_S = 30.0

Statement = tuple[str, Iterable[Any]]


class JournalError(RuntimeError):
    """The journal file cannot be used (not a SQLite database, or from a newer v28quant)."""


class JournalStore:
    """One SQLite file, created (with its schema) if missing and migrated if older.

    Parameters
    ----------
    path : str or Path
        The database file.
    create : bool
        Whether a missing or empty file becomes a new journal; when False (readers and the
        operator's controls, which act only through a journal some runner reads) it is refused
        and left as it is.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per write.
        if self.path.is_dir():
            raise JournalError(f"journal {self.path} is a directory; give the journal file's path")
        try:
            self._db = sqlite3.connect(
                str(self.path) if create else f"{self.path.resolve().as_uri()}?mode=rw",
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_S,
                uri=not create,
            )
        except sqlite3.OperationalError as exc:  # a missing folder, no permission
            raise JournalError(f"journal {self.path} cannot be opened: {exc}") from None
        self._db.row_factory = sqlite3.Row
        try:  # checked before WAL mode is switched on, so a refused file is left untouched
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"journal {self.path} is not a usable SQLite file: {exc}") from None
        if version > len(MIGRATIONS):
            self._db.close()
            raise JournalError(
                f"journal {self.path} has schema version {version}, newer "
                f"than this v28quant ({len(MIGRATIONS)}); upgrade v28quant"
            )
        if version == 0:
            self._refuse_foreign_tables()
            if not create:
                self._db.close()
                raise JournalError(
                    f"journal {self.path} is not a v28quant journal (it holds no tables; "
                    "the runner creates its journal at its first start); give the journal's path"
                )
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"journal {self.path}: could not switch to WAL mode ({mode})")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _refuse_foreign_tables(self) -> None:
        """Refuse a file without the journal's schema that holds tables: another program's.

        A mistyped path (the Optuna study beside the journal) would otherwise get the journal's
        tables added, and a halt written there would stop no runner.
        """
        rows = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
        if rows:
            self._db.close()
            names = ", ".join(str(r[0]) for r in rows[:5])
            raise JournalError(
                f"journal {self.path} is not a v28quant journal (a SQLite file with other "
                f"tables: {names}); give the journal's path"
            )

    @property
    def schema_version(self) -> int:
        """The number of migrations applied to the file."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            for i in range(version, len(MIGRATIONS)):
                with self._transaction() as db:
                    for stmt in MIGRATIONS[i].split(";"):
                        if stmt.strip():
                            db.execute(stmt)
                    db.execute(f"PRAGMA user_version={i + 1}")

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self._write_many([(sql, params)])[-1]

    def _write_many(self, stmts: Sequence[Statement]) -> list[sqlite3.Cursor]:
        """Run the statements in one committed transaction; return their cursors."""
        with self._transaction() as db:
            return [db.execute(sql, tuple(p)) for sql, p in stmts]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock over one ``BEGIN IMMEDIATE`` transaction, committed or rolled back."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a healthy file."""
        return str(self._read("PRAGMA integrity_check")[0][0])
