"""The runner's start sends first the Discord notices an earlier run left unsent.

A keyed paper ``--once`` on the loopback fakes, over a journal holding a notice an earlier
process queued and never posted (it was killed). References: what the Discord fake received
and the journal's ``notices`` rows read with sqlite3.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from reliability.keyed_world import keyed_world
from v28quant.journal import Journal

LEFT_UNSENT = "FILL buy 10 AAPL @ 190.00 (engine=equity)"


@pytest.mark.slow
def test_a_restarted_runner_sends_the_unsent_notice_first_and_once(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with keyed_world(shared_data, monkeypatch, tmp_path) as world:
        queued = datetime.now(UTC) - timedelta(minutes=5)
        with Journal(world.journal) as journal:  # what the killed run had written
            journal.record_notice(LEFT_UNSENT, queued)

        assert world.run_once() == 0
        when = queued.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M")
        late = f"(delayed: queued {when} ET by the run that stopped before posting it) "
        contents = [str(m["content"]) for m in world.discord.received]
        assert contents[0] == late + LEFT_UNSENT, contents
        con = sqlite3.connect(str(world.journal))
        try:
            posted = con.execute("SELECT posted_ts FROM notices ORDER BY id LIMIT 1").fetchone()
        finally:
            con.close()
        assert posted[0] is not None

        assert world.run_once() == 0  # a second restart sends it no more
        again = [str(m["content"]) for m in world.discord.received[len(contents) :]]
        assert not [c for c in again if c.startswith("(delayed")], again
