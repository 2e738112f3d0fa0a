"""The Discord notices' outbox: notices kept in the journal until posted, sent late at restart.

References: what the loopback Discord fake received, and the journal's ``notices`` rows read
with sqlite3. A "process" is one ``asyncio.run``; one that dies is a loop that ends with its
notice still unsent, without ``aclose`` (nothing runs after a kill -9 either).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.discord import FakeDiscord
from pydantic import SecretStr
from v28quant.journal import Journal
from v28quant.notify import DiscordNotifier, make_notifier

# nothing listens on port 9: every post fails with a connection error, then waits to retry
UNREACHABLE = "http://127.0.0.1:9/api/webhooks/987654321/another-SECRET-token"
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def discord():
    with FakeDiscord() as d:
        yield d


def rows(path: Path) -> list[dict]:
    con = sqlite3.connect(str(path))
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM notices ORDER BY id")]
    finally:
        con.close()


def die_with_unsent(path: Path, *texts: str) -> None:
    """One process: Discord unreachable, the notices queued, then the process dies."""

    async def run() -> None:
        notifier = make_notifier(SecretStr(UNREACHABLE), outbox=journal)
        await notifier.resend_unsent()
        for text in texts:
            assert notifier.notify(text)
        await asyncio.sleep(0.1)  # a first attempt fails; the retry waits past the end

    journal = Journal(path)
    try:
        asyncio.run(run())
    finally:
        journal.close()


def start_and_stop(path: Path, url: str) -> int:
    """One process started as the runner starts one, stopped cleanly; how many it re-sent."""

    async def run() -> int:
        notifier = make_notifier(SecretStr(url), outbox=journal)
        resent = await notifier.resend_unsent()
        await notifier.aclose(timeout=10)
        return resent

    journal = Journal(path)
    try:
        return asyncio.run(run())
    finally:
        journal.close()


def delayed(queued_ts: str, text: str) -> str:
    when = datetime.fromisoformat(queued_ts).astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M")
    return f"(delayed: queued {when} ET by the run that stopped before posting it) {text}"


def test_a_notice_a_dead_process_left_unsent_goes_out_late_once(
    tmp_path: Path, discord: FakeDiscord
) -> None:
    path = tmp_path / "j.sqlite"
    die_with_unsent(path, "FILL buy 10 SPY @ 450.05 (engine=equity)")
    [kept] = rows(path)
    assert kept["posted_ts"] is None
    assert kept["given_up_ts"] is None
    assert discord.received == []

    assert start_and_stop(path, discord.webhook_url) == 1
    assert [m["content"] for m in discord.received] == [
        delayed(kept["queued_ts"], "FILL buy 10 SPY @ 450.05 (engine=equity)")
    ]
    [posted] = rows(path)
    assert posted["posted_ts"] is not None
    assert posted["given_up_ts"] is None

    assert start_and_stop(path, discord.webhook_url) == 0  # a second restart: nothing more
    assert len(discord.received) == 1


def test_a_late_notice_pushed_over_discords_limit_by_its_prefix_says_it_was_cut(
    tmp_path: Path, discord: FakeDiscord
) -> None:
    # A notice of 1,990 characters fits; the restart's "delayed" prefix pushes it over 2,000,
    # so it goes out cut to fit, with the mark at its end.
    path = tmp_path / "j.sqlite"
    text = "z" * 1990
    die_with_unsent(path, text)
    [kept] = rows(path)
    assert start_and_stop(path, discord.webhook_url) == 1
    mark = " …(cut)"
    [late] = [m["content"] for m in discord.received]
    assert late == delayed(kept["queued_ts"], text)[: 2000 - len(mark)] + mark


def test_a_notice_discord_refuses_is_given_up_and_never_resent(
    tmp_path: Path, discord: FakeDiscord
) -> None:
    path = tmp_path / "j.sqlite"
    discord.fail(times=1, status=400)

    async def run() -> None:
        with Journal(path) as journal:
            notifier = make_notifier(SecretStr(discord.webhook_url), outbox=journal)
            await notifier.resend_unsent()
            assert notifier.notify("HALT: max drawdown")
            await notifier.aclose(timeout=10)

    asyncio.run(run())
    [refused] = rows(path)
    assert refused["posted_ts"] is None
    assert refused["given_up_ts"] is not None
    assert "400" in refused["given_up_reason"]
    assert start_and_stop(path, discord.webhook_url) == 0
    assert discord.received == []


def test_a_notice_over_a_day_old_at_restart_is_given_up_as_stale(
    tmp_path: Path, discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.sqlite"
    die_with_unsent(path, "FILL sell 5 AAPL @ 190.10", "FILL buy 3 MSFT @ 420.00")
    old, fresh = rows(path)
    con = sqlite3.connect(str(path))  # the first was queued 25 hours ago
    with con:
        long_ago = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
        con.execute("UPDATE notices SET queued_ts = ? WHERE id = ?", (long_ago, old["id"]))
    con.close()

    caplog.set_level(logging.INFO, logger="v28quant.notify")
    assert start_and_stop(path, discord.webhook_url) == 1
    assert [m["content"] for m in discord.received] == [
        delayed(fresh["queued_ts"], "FILL buy 3 MSFT @ 420.00")
    ]
    stale, posted = rows(path)
    assert stale["posted_ts"] is None
    assert stale["given_up_reason"] == "stale at restart"
    assert posted["posted_ts"] is not None
    stale_lines = [r.getMessage() for r in caplog.records if "stale at restart" in r.getMessage()]
    assert len(stale_lines) == 1, stale_lines
    assert "1 notice(s)" in stale_lines[0]


def test_posted_notices_are_never_resent(tmp_path: Path, discord: FakeDiscord) -> None:
    path = tmp_path / "j.sqlite"

    async def run() -> None:
        with Journal(path) as journal:
            notifier = make_notifier(SecretStr(discord.webhook_url), outbox=journal)
            await notifier.resend_unsent()
            assert notifier.notify("FILL buy 1 SPY @ 450")
            assert notifier.error("equity cycle", "KeyError: 'AAPL'")
            assert notifier.error("equity cycle", "KeyError: 'AAPL'")  # held back: no row
            await notifier.aclose(timeout=10)

    asyncio.run(run())
    sent = ["FILL buy 1 SPY @ 450", "ERROR in equity cycle: KeyError: 'AAPL'"]
    assert [m["content"] for m in discord.received] == sent
    assert [r["content"] for r in rows(path)] == sent
    assert all(r["posted_ts"] is not None for r in rows(path))
    assert start_and_stop(path, discord.webhook_url) == 0
    assert len(discord.received) == 2


def test_notices_beyond_a_full_queue_still_waiting_at_the_stop_go_out_at_the_next_start(
    tmp_path: Path, discord: FakeDiscord
) -> None:
    path = tmp_path / "j.sqlite"

    async def run() -> list[bool]:
        with Journal(path) as journal:
            notifier = DiscordNotifier(UNREACHABLE, max_queue=1, outbox=journal)
            accepted = [notifier.notify(f"m{i}") for i in range(3)]
            await notifier.aclose(timeout=0.1)
            return accepted

    assert asyncio.run(run()) == [True, True, True]
    kept = rows(path)
    assert [(r["posted_ts"], r["given_up_ts"]) for r in kept] == [(None, None)] * 3
    assert start_and_stop(path, discord.webhook_url) == 3
    assert [m["content"] for m in discord.received] == [
        delayed(r["queued_ts"], f"m{i}") for i, r in enumerate(kept)
    ]


def test_without_a_webhook_nothing_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"

    async def run() -> int:
        with Journal(path) as journal:
            notifier = make_notifier(None, outbox=journal)
            assert notifier.notify("FILL buy 1 SPY @ 450")
            return await notifier.resend_unsent()

    assert asyncio.run(run()) == 0
    assert rows(path) == []


def test_an_outage_longer_than_a_few_retries_loses_no_notice(
    tmp_path: Path, discord: FakeDiscord
) -> None:
    # Discord answers 503 eight times, then a global rate limit six times: every notice still
    # goes out, in the order queued, and its row is settled as posted.
    path = tmp_path / "j.sqlite"
    discord.fail(times=8, status=503)
    discord.rate_limit(times=6, retry_after=0.01, global_limit=True)
    texts = [f"FILL buy {i} SPY @ 450" for i in range(1, 4)]

    async def run() -> None:
        with Journal(path) as journal:
            notifier = DiscordNotifier(
                discord.webhook_url, min_interval=0.0, backoff=0.01, outbox=journal
            )
            for text in texts:
                assert notifier.notify(text)
            await notifier.aclose(timeout=10)

    asyncio.run(run())
    assert [m["content"] for m in discord.received] == texts
    assert len(discord.rejected) == 6
    assert [(r["posted_ts"] is not None, r["given_up_reason"]) for r in rows(path)] == [
        (True, None)
    ] * 3


def test_a_notice_unsent_through_an_outage_stays_for_the_next_start(
    tmp_path: Path, discord: FakeDiscord
) -> None:
    # Discord unreachable for the whole run, the stop's wait spent on retries: the notice stays
    # unsent in the journal (not given up), and the next start posts it.
    path = tmp_path / "j.sqlite"

    async def run() -> None:
        with Journal(path) as journal:
            notifier = DiscordNotifier(UNREACHABLE, min_interval=0.0, backoff=0.01, outbox=journal)
            assert notifier.notify("HALT: max drawdown")
            await notifier.aclose(timeout=1.0)

    asyncio.run(run())
    [kept] = rows(path)
    assert (kept["posted_ts"], kept["given_up_ts"]) == (None, None)
    assert start_and_stop(path, discord.webhook_url) == 1
    assert [m["content"] for m in discord.received] == [
        delayed(kept["queued_ts"], "HALT: max drawdown")
    ]


def test_a_deleted_webhook_is_said_once_and_its_notices_kept(
    tmp_path: Path, discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    # A 404 (Unknown Webhook) is not the notice's fault: the run says once that the webhook is
    # gone, stops posting, and keeps every notice unsent for a start with a working webhook.
    path = tmp_path / "j.sqlite"
    discord.delete_webhook()
    texts = ["FILL buy 1 SPY @ 450", "HALT: max drawdown", "ERROR in equity cycle: boom"]

    async def run() -> None:
        with Journal(path) as journal:
            notifier = DiscordNotifier(discord.webhook_url, min_interval=0.0, outbox=journal)
            for text in texts:  # one notice a cycle
                notifier.notify(text)
                await asyncio.sleep(0.2)
            await notifier.aclose(timeout=2)

    caplog.set_level(logging.WARNING, logger="v28quant.notify")
    asyncio.run(run())
    assert discord.answered_errors == [404]
    warnings = [r.getMessage() for r in caplog.records if r.name == "v28quant.notify"]
    assert len(warnings) == 1, warnings
    assert "webhook gone (HTTP 404" in warnings[0], warnings
    assert [(r["posted_ts"], r["given_up_ts"]) for r in rows(path)] == [(None, None)] * 3

    discord.restore_webhook()
    assert start_and_stop(path, discord.webhook_url) == 3
    assert [m["content"] for m in discord.received] == [
        delayed(r["queued_ts"], text) for r, text in zip(rows(path), texts, strict=True)
    ]


def test_notices_beyond_a_full_queue_wait_in_the_journal_and_go_out_in_order(
    tmp_path: Path, discord: FakeDiscord
) -> None:
    # Discord down while more notices come than the queue holds: those beyond it wait in the
    # journal, not given up, and go out after the queue, in the order they were queued, once
    # Discord answers again.
    path = tmp_path / "j.sqlite"
    discord.fail(times=6, status=503)
    texts = [f"FILL buy {i} SPY @ 450" for i in range(1, 7)]

    async def run() -> list[bool]:
        with Journal(path) as journal:
            notifier = DiscordNotifier(
                discord.webhook_url, max_queue=2, min_interval=0.0, backoff=0.05, outbox=journal
            )
            accepted = [notifier.notify(text) for text in texts[:4]]
            await asyncio.sleep(0.1)  # the outage goes on; two more come in the meantime
            accepted += [notifier.notify(text) for text in texts[4:]]
            await notifier.aclose(timeout=10)
            return accepted

    assert asyncio.run(run()) == [True] * 6
    assert [m["content"] for m in discord.received] == texts
    assert [(r["content"], r["given_up_reason"]) for r in rows(path)] == [(t, None) for t in texts]
    assert all(r["posted_ts"] is not None for r in rows(path))


def test_more_unsent_notices_at_restart_than_the_queue_holds_all_go_out(
    tmp_path: Path, discord: FakeDiscord
) -> None:
    # An earlier run left three notices; the queue holds one: the other two wait in the journal
    # and follow it, in order, each marked late (reference: the fake, and the rows).
    path = tmp_path / "j.sqlite"
    texts = ["FILL buy 1 SPY @ 450", "FILL buy 2 SPY @ 451", "FILL buy 3 SPY @ 452"]
    die_with_unsent(path, *texts)
    kept = rows(path)

    async def run() -> int:
        with Journal(path) as journal:
            notifier = DiscordNotifier(
                discord.webhook_url, max_queue=1, min_interval=0.0, outbox=journal
            )
            resent = await notifier.resend_unsent()
            await notifier.aclose(timeout=10)
            return resent

    assert asyncio.run(run()) == 3
    assert [m["content"] for m in discord.received] == [
        delayed(r["queued_ts"], text) for r, text in zip(kept, texts, strict=True)
    ]
    assert [(r["posted_ts"] is not None, r["given_up_reason"]) for r in rows(path)] == [
        (True, None)
    ] * 3


def test_notices_waiting_beyond_the_queue_when_a_loop_ends_go_out_under_the_next_loop(
    tmp_path: Path, discord: FakeDiscord
) -> None:
    # A first event loop ends in an outage with notices past the queue's room waiting in the
    # journal; under the next loop Discord answers: those and the new one all go out, in order.
    path = tmp_path / "j.sqlite"
    discord.fail(times=1000, status=503)
    texts = [f"FILL buy {i} SPY @ 450" for i in range(1, 4)]

    with Journal(path) as journal:
        notifier = DiscordNotifier(
            discord.webhook_url, max_queue=1, min_interval=0.0, backoff=0.05, outbox=journal
        )

        async def first() -> None:
            for text in texts:
                assert notifier.notify(text)
            await asyncio.sleep(0.2)

        async def second() -> None:
            assert notifier.notify("HALT: max drawdown")
            await asyncio.sleep(0.5)  # the second loop runs on a while
            await notifier.aclose(timeout=10)

        asyncio.run(first())
        discord.recover()
        asyncio.run(second())

    assert [m["content"] for m in discord.received] == [*texts, "HALT: max drawdown"]
    assert all(r["posted_ts"] is not None for r in rows(path))
