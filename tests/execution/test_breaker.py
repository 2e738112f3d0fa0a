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
