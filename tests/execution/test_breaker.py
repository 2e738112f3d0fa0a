"""``VenueBreaker``: new orders pause after an unanswered submit, one probe after the cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from v28quant.execution.breaker import VenueBreaker

T0 = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_closed_until_a_failure_then_paused_for_the_cooldown() -> None:
    b = VenueBreaker(MIN)
    assert b.refusal(T0) is None
    assert b.failed(T0, "Alpaca 503")
    assert not b.failed(T0 + timedelta(seconds=1), "Alpaca 503")  # same outage
    why = b.refusal(T0 + timedelta(seconds=30))
    assert why is not None
    assert "new orders paused" in why
    assert "Alpaca 503" in why
    # the cooldown counts from the last failure: one probe may go after it
    assert b.refusal(T0 + MIN + timedelta(seconds=1)) is None
    assert b.tripped


def test_an_answer_ends_the_outage_and_reports_its_length() -> None:
    b = VenueBreaker(MIN)
    assert b.answered(T0) is None
    b.failed(T0, "timeout")
    assert b.answered(T0 + 2 * MIN) == 2 * MIN
    assert not b.tripped
    assert b.refusal(T0 + 2 * MIN) is None


def test_a_cooldown_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cooldown"):
        VenueBreaker(timedelta(0))


def test_after_the_cooldown_one_probe_goes_and_the_rest_wait_for_its_answer() -> None:
    b = VenueBreaker(MIN)
    b.failed(T0, "Alpaca 503")
    after = T0 + MIN + timedelta(seconds=1)
    assert b.refusal(after) is None  # the probe
    waiting = b.refusal(after)
    assert waiting is not None
    assert "probe" in waiting
    # the probe went unanswered: another full cooldown, then one more probe
    assert not b.failed(after + timedelta(seconds=5), "Alpaca 503")
    assert b.refusal(after + timedelta(seconds=30)) is not None
    again = after + timedelta(seconds=5) + MIN
    assert b.refusal(again) is None
    assert b.refusal(again) is not None
    # the probe answered: every order goes
    b.answered(again)
    assert b.refusal(again) is None
    assert b.refusal(again) is None


def test_a_probe_never_sent_lets_the_next_order_probe() -> None:
    b = VenueBreaker(MIN)
    b.failed(T0, "timeout")
    after = T0 + 2 * MIN
    assert b.refusal(after) is None
    assert b.refusal(after) is not None
    b.withdraw()  # the probe was refused before it left (no reservation, a cancelled cycle)
    assert b.refusal(after) is None
    assert b.refusal(after) is not None
    assert b.tripped
