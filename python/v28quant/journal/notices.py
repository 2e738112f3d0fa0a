"""The outbox of Discord notices: each notice is kept until it is posted or given up.

A row is written when a notice is queued (``queued_ts``, the text, secrets redacted), and settled
once: ``posted_ts`` when Discord took it, or ``given_up_ts`` with ``given_up_reason`` when it was
refused for good, dropped after its retries, or never queued. A row settled neither way was lost
with the process that queued it; the next start sends it again (``v28quant.notify``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from v28quant.journal._codec import from_iso, ts_text
from v28quant.journal.store import JournalStore
from v28quant.redaction import redact


class NoticeRecords(JournalStore):
    """Writes and the restart read of the ``notices`` table (mixed into ``Journal``)."""

    def record_notice(self, content: str, ts: datetime, *, given_up: str | None = None) -> int:
        """Keep one notice queued at ``ts``; returns its row id.

        With ``given_up`` (a reason), the notice is settled at once: it was never queued.
        """
        cur = self._write(
            "INSERT INTO notices (queued_ts, content, given_up_ts, given_up_reason) "
            "VALUES (?, ?, ?, ?)",
            (
                ts_text(ts),
                str(redact(content, "notice")),
                None if given_up is None else ts_text(ts),
                given_up,
            ),
        )
        return int(cur.lastrowid or 0)

    def mark_notice_posted(self, notice_id: int, ts: datetime) -> None:
        """Settle a notice as posted at ``ts`` (a settled row is left as it is)."""
        self._write(
            "UPDATE notices SET posted_ts = ? "
            "WHERE id = ? AND posted_ts IS NULL AND given_up_ts IS NULL",
            (ts_text(ts), notice_id),
        )

    def give_up_notices(self, notice_ids: Sequence[int], reason: str, ts: datetime) -> None:
        """Settle the notices as given up at ``ts`` for ``reason`` (settled rows are left)."""
        if not notice_ids:
            return
        marks = ",".join("?" * len(notice_ids))
        self._write(
            "UPDATE notices SET given_up_ts = ?, given_up_reason = ? "
            f"WHERE id IN ({marks}) AND posted_ts IS NULL AND given_up_ts IS NULL",
            (ts_text(ts), reason, *notice_ids),
        )

    def unsent_notices(self) -> list[dict[str, Any]]:
        """Return the notices neither posted nor given up, oldest first.

        Each as ``{"id", "content", "queued_ts"}`` (``queued_ts`` an aware UTC datetime).
        """
        rows = self._read(
            "SELECT id, content, queued_ts FROM notices "
            "WHERE posted_ts IS NULL AND given_up_ts IS NULL ORDER BY id"
        )
        return [
            {"id": r["id"], "content": r["content"], "queued_ts": from_iso(r["queued_ts"])}
            for r in rows
        ]
