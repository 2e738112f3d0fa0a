"""Optuna's journal storage kept in one SQLite file: the default study storage of the tuner.

Optuna's ``JournalStorage`` keeps a study as its log of operations (create trial, set
parameters, tell, ...) and rebuilds it by replaying the log; a backend only appends and reads
log entries. :class:`SqliteJournalBackend` keeps them in one table, one row per entry, numbered
from 0 in the order they were appended. Appending a batch of entries is one transaction, so a
finished trial costs a few inserts where ``RDBStorage`` issues about 90 ORM statements (one per
parameter, value and attribute), which on two cores was driver time taken from the workers.

Several processes may share the file: SQLite serialises the appends (``BEGIN IMMEDIATE``) and
every reader replays the entries it has not seen yet. WAL mode with ``synchronous=NORMAL``: a
committed entry survives a crash of the process; a power cut may lose the last few.

Reference: Optuna's ``optuna.storages.journal.BaseJournalBackend`` (the two methods below).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend, JournalStorage

#: URL scheme of a study kept by this backend: ``journal+sqlite:///path/to/file.sqlite``.
SCHEME = "journal+sqlite:///"

_TABLE = "optuna_journal"


class SqliteJournalBackend(BaseJournalBackend):
    """Optuna journal entries in the SQLite file ``path`` (created with its folder if absent)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} "
                "(log_number INTEGER PRIMARY KEY, log TEXT NOT NULL)"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # a connection per call: cheap next to a trial, and nothing to share between threads
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    def read_logs(self, log_number_from: int) -> list[dict[str, Any]]:
        """Return the entries numbered ``log_number_from`` and later, in order."""
        with self._db() as db:
            rows = db.execute(
                f"SELECT log FROM {_TABLE} WHERE log_number >= ? ORDER BY log_number",
                (log_number_from,),
            ).fetchall()
        return [json.loads(log) for (log,) in rows]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append ``logs`` after the last entry, all or none."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: numbers stay contiguous
            try:
                (start,) = db.execute(
                    f"SELECT COALESCE(MAX(log_number) + 1, 0) FROM {_TABLE}"
                ).fetchone()
                db.executemany(
                    f"INSERT INTO {_TABLE} (log_number, log) VALUES (?, ?)",
                    [(start + i, json.dumps(log)) for i, log in enumerate(logs)],
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


def refuse_journal_file(sqlite_url: str) -> None:
    """Raise ``ValueError`` when ``sqlite:///FILE`` names a file this backend keeps.

    Opened as Optuna's relational storage it would gain empty tables beside the journal and
    show none of its studies.
    """
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    if not path.is_file():
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_TABLE,)
        ).fetchone()
    except sqlite3.DatabaseError:
        return  # not a database: Optuna's own error says so
    finally:
        db.close()
    if found:
        raise ValueError(
            f"{path} holds Optuna's journal (the tuner's default storage): "
            f"open it as {SCHEME}{path}"
        )


def journal_storage(url: str) -> JournalStorage:
    """Optuna storage of a ``journal+sqlite:///path`` URL."""
    if not url.startswith(SCHEME) or len(url) == len(SCHEME):
        raise ValueError(f"expected {SCHEME}<path to a file>, got {url!r}")
    return JournalStorage(SqliteJournalBackend(url[len(SCHEME) :]))
