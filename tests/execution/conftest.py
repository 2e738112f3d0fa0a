"""Fixtures shared by the execution tests on the loopback fake of Alpaca's trading API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN


@pytest.fixture
def fake() -> Iterator[FakeAlpacaTrading]:
    """Serve the venue during a session, SPY quoted 530.00 x 530.10."""
    f = FakeAlpacaTrading(now=OPEN).start()
    f.set_quote("SPY", "530.00", "530.10")
    yield f
    f.stop()
