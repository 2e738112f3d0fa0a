"""Discord notifier through httpx against a loopback webhook receiver.

Independent reference: Discord's documented webhook rate-limit behaviour (429 with JSON
``retry_after`` in seconds, ``X-RateLimit-*`` headers), reproduced by tests/fakes/discord.py.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from fakes.discord import FakeDiscord
from pydantic import SecretStr
from v28quant.notify import DiscordNotifier, NullNotifier, make_notifier


@pytest.fixture
def discord():
    with FakeDiscord() as d:
        yield d


async def test_posts_are_received(discord: FakeDiscord) -> None:
    n = DiscordNotifier(SecretStr(discord.webhook_url), min_interval=0.01)
    assert n.execution("SPY", "buy", 10, "450.05", engine="equity")
    assert n.error("options engine", "quote missing")
    await n.aclose()
    assert [m["content"] for m in discord.received] == [
        "FILL buy 10 SPY @ 450.05 (engine=equity)",
        "ERROR in options engine: quote missing",
    ]
    assert n.sent == 2
    assert n.dropped == 0


async def test_429_retry_after_is_honoured(discord: FakeDiscord, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    discord.rate_limit(times=1, retry_after=0.3)
    n = DiscordNotifier(discord.webhook_url, min_interval=0.0)
    n.notify("first")
    n.notify("second")
    await n.aclose(timeout=5)
    assert [m["content"] for m in discord.received] == ["first", "second"]
    assert len(discord.rejected) == 1
    # the retry came no sooner than retry_after after the 429
    assert discord.times[0] - discord.rejected[0] >= 0.3 - 0.02
    # the URL and its token never reach the log, even in rate-limit messages
    assert "s3cr3t-T0KEN" not in caplog.text
    assert "123456789" not in caplog.text
    assert "rate limited" in caplog.text


async def test_notify_never_blocks_or_raises(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    # nothing listens on this port: every post fails with a connection error
    url = "http://127.0.0.1:9/api/webhooks/987654321/another-SECRET-token"
    n = DiscordNotifier(url, max_queue=3, min_interval=0.0)
    # notify() is synchronous: it only queues, so nothing has been attempted yet
    accepted = [n.notify(f"m{i}") for i in range(10)]
    assert accepted == [True] * 3 + [False] * 7
    assert n.sent == 0
    await n.aclose(timeout=0.2)  # posts fail (connection refused); nothing raises
    assert n.dropped >= 7
    assert "another-SECRET-token" not in caplog.text
    assert "987654321" not in caplog.text
    assert "another-SECRET-token" not in repr(n)


async def test_null_notifier_and_factory() -> None:
    assert isinstance(make_notifier(None), NullNotifier)
    assert isinstance(make_notifier(SecretStr("")), NullNotifier)
    nn = NullNotifier()
    assert nn.execution("SPY", "sell", 1, 1)
    assert nn.error("x", "y")
    await nn.aclose()
    assert isinstance(make_notifier("https://discord.com/api/webhooks/1/x"), DiscordNotifier)
    with pytest.raises(ValueError, match="DISCORD_WEBHOOK_URL"):
        DiscordNotifier("not a url")


async def test_a_notice_over_discords_limit_is_cut_with_a_visible_mark(
    discord: FakeDiscord,
) -> None:
    # Discord takes at most 2,000 characters: a longer notice is cut to fit and says so at its
    # end; one of exactly 2,000 goes out whole.
    n = DiscordNotifier(discord.webhook_url, min_interval=0.0)
    n.notify("x" * 5000)
    n.notify("y" * 2000)
    await n.aclose()
    cut, whole = (m["content"] for m in discord.received)
    assert cut == "x" * (2000 - len(" …(cut)")) + " …(cut)"
    assert whole == "y" * 2000


def test_sender_restarts_under_a_second_event_loop(discord: FakeDiscord) -> None:
    # A runner may drive the same notifier from successive asyncio.run calls; the first loop's
    # end cancels its sender task, so the second must start its own (reference: the loopback
    # receiver records what actually arrived).
    n = DiscordNotifier(discord.webhook_url, min_interval=0.0)

    async def first() -> None:
        assert n.notify("from loop 1")
        for _ in range(200):  # wait for the post, then let the loop end WITHOUT aclose
            if n.sent:
                return
            await asyncio.sleep(0.01)

    async def second() -> bool:
        accepted = n.notify("from loop 2")
        await n.aclose(timeout=2)
        return accepted

    asyncio.run(first())
    assert asyncio.run(second())
    assert [m["content"] for m in discord.received] == ["from loop 1", "from loop 2"]
    assert n.sent == 2
    assert n.dropped == 0


def _notifier_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "v28quant.notify" and r.levelno >= logging.WARNING
    ]


async def test_an_unreachable_webhook_is_reported_once_not_per_post(caplog) -> None:
    # An operator reads the log for a failing Discord: one warning when notices start failing,
    # not one per attempt of every notice, then one at the stop counting what is left unsent
    # (reference: the log records themselves).
    caplog.set_level(logging.DEBUG)
    url = "http://127.0.0.1:9/api/webhooks/987654321/another-SECRET-token"
    n = DiscordNotifier(url, min_interval=0.0, backoff=0.01, max_backoff=0.01)
    for i in range(4):
        n.notify(f"m{i}")
    await n.aclose(timeout=0.5)
    assert n.dropped == 4
    warnings = _notifier_warnings(caplog)
    assert len([m for m in warnings if "failing" in m]) == 1, warnings
    assert len([m for m in warnings if "closed with 4 notice(s) unsent" in m]) == 1, warnings
    assert len(warnings) == 2, warnings
    assert "another-SECRET-token" not in caplog.text


async def test_an_outage_is_reported_once_and_its_end_too(discord: FakeDiscord, caplog) -> None:
    # 503s for the first three posts, then Discord answers again (reference: what the fake
    # received and the log records).
    caplog.set_level(logging.DEBUG)
    discord.fail(times=3, status=503)
    n = DiscordNotifier(discord.webhook_url, min_interval=0.0, backoff=0.01)
    for i in range(3):
        n.notify(f"m{i}")
    await n.aclose(timeout=10)
    # m0 meets the three 503s, then gets through; m1 and m2 wait behind it
    assert [m["content"] for m in discord.received] == ["m0", "m1", "m2"]
    warnings = _notifier_warnings(caplog)
    assert len([m for m in warnings if "failing" in m]) == 1, warnings
    assert len([m for m in warnings if "again" in m]) == 1, warnings
    assert len(warnings) == 2, warnings


async def test_a_repeated_error_is_held_back_then_counted(
    discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reference: what the fake received, against a clock moved by hand past the quiet period.
    import v28quant.notify as notify

    now = [1000.0]
    monkeypatch.setattr(notify.time, "monotonic", lambda: now[0])
    n = DiscordNotifier(discord.webhook_url, min_interval=0.0)
    for _ in range(5):
        n.error("equity cycle", "KeyError: 'AAPL'")
        now[0] += 60.0
    n.error("options cycle", "KeyError: 'AAPL'")  # another place: its own notice
    now[0] += notify.REPEAT_QUIET_S
    n.error("equity cycle", "KeyError: 'AAPL'")
    monkeypatch.undo()
    await n.aclose()
    assert [m["content"] for m in discord.received] == [
        "ERROR in equity cycle: KeyError: 'AAPL'",
        "ERROR in options cycle: KeyError: 'AAPL'",
        "ERROR in equity cycle: KeyError: 'AAPL' (again; 4 repeat(s) held back)",
    ]


def test_the_hold_back_table_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reference: the table's size against the bound, over many distinct texts (order ids).
    import v28quant.notify as notify

    now = [0.0]
    monkeypatch.setattr(notify.time, "monotonic", lambda: now[0])
    n = NullNotifier()
    for i in range(5000):
        n.error("options engine", f"order v28-options-{i} refused")
        now[0] += 1.0
    assert len(n._quiet_sent) <= notify.REPEAT_TEXTS_KEPT
    for _ in range(3):  # a text repeating within its quiet period is still held back
        n.error("equity cycle", "KeyError: 'AAPL'")
    assert n._quiet_sent["ERROR in equity cycle: KeyError: 'AAPL'"][1] == 2


async def test_secrets_never_reach_discord(discord: FakeDiscord) -> None:
    # An error text can carry the webhook URL (an HTTP client's error) or an Alpaca key; the
    # post itself must be scrubbed, not only the journal's copy (reference: what the fake got).
    key = "PKLEAKPROBE77"
    n = DiscordNotifier(discord.webhook_url, min_interval=0.0, secrets=[key])
    n.error("runner", f"stopping: ConnectError posting to {discord.webhook_url}")
    n.error("equity cycle", f"APIError: forbidden for key {key}")
    await n.aclose()
    posted = [m["content"] for m in discord.received]
    assert len(posted) == 2, posted
    for text in posted:
        assert "s3cr3t-T0KEN-abcdef" not in text, text
        assert "123456789" not in text, text
        assert key not in text, text
    assert posted[1] == "ERROR in equity cycle: APIError: forbidden for key [redacted]"


async def test_a_burst_keeps_within_the_webhook_rate_limit() -> None:
    # Twelve fills at once against a webhook that allows 5 posts per 2 s (Discord's bucket,
    # enforced by the fake, which answers 429 beyond it): the client spacing is switched off,
    # so only the X-RateLimit headers can keep the burst out of 429s (reference: the fake's
    # record of what it took and what it refused).
    texts = [f"FILL buy {i} SPY @ 450" for i in range(12)]
    with FakeDiscord(bucket=(5, 2.0)) as discord:
        n = DiscordNotifier(discord.webhook_url, min_interval=0.0)
        for text in texts:
            assert n.notify(text)
        await n.aclose(timeout=30)
    assert discord.rejected == []
    assert [m["content"] for m in discord.received] == texts


async def test_a_run_of_429s_is_one_warning(discord: FakeDiscord, caplog) -> None:
    # A global rate limit that lasts: one warning when it starts, each further 429 at DEBUG
    # (reference: the log records, against the 429s the fake answered).
    caplog.set_level(logging.DEBUG)
    discord.rate_limit(times=6, retry_after=0.01, global_limit=True)
    n = DiscordNotifier(discord.webhook_url, min_interval=0.0)
    n.notify("FILL buy 1 SPY @ 450")
    await n.aclose(timeout=5)
    assert len(discord.rejected) == 6
    assert [m["content"] for m in discord.received] == ["FILL buy 1 SPY @ 450"]
    limited = [m for m in _notifier_warnings(caplog) if "rate limited" in m]
    assert len(limited) == 1, _notifier_warnings(caplog)
