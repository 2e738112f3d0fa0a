"""Order-safety faults found in review, each reproduced against the real client or SimBroker.

1. live money without confirmation; 2. an order reconcile hid; 3. one key, two requests;
4. an ambiguous attempt followed by a definite refusal; 7. private attributes of alpaca-py.
Every Alpaca case drives the real alpaca-py ``TradingClient`` against the loopback fake.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.fixtures import OPEN, FakeTime, StaticQuotes
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker import (
    ClientOrderIdConflict,
    InsufficientBuyingPower,
    OrderRequest,
    OrderStatus,
    Owner,
    SubmitOutcomeUnknown,
    connect,
)
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.broker.sim import SimBroker
from v28quant.clock import SimClock
from v28quant.execution import Decision, Executor
from v28quant.journal import Journal
from v28quant.reconcile import reconcile
from v28quant.settings import SettingsError, load_settings

KEY, SECRET = "PKTESTKEY0002", "sEcReT-do-not-log-0002"


def make(fake: FakeAlpacaTrading, **kw: Any) -> AlpacaBroker:
    ft = FakeTime()
    lim = RateLimiter(rate=10_000, burst=1000, now=ft.now, sleep=ft.sleep)
    return AlpacaBroker(KEY, SECRET, url=fake.url, limiter=lim, backoff_s=0.0, **kw)


def own(d: str) -> Owner:
    return Owner("equity", "trend", d)


# ---------------------------------------------------------------- 1. live host, paper mode


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    for var in ("V28_LIVE_CONFIRM", "APCA_API_BASE_URL", "APCA_API_DATA_URL"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_fault1_live_host_in_paper_mode_is_refused(keys: pytest.MonkeyPatch) -> None:
    """APCA_API_BASE_URL at Alpaca's live host without --mode live and V28_LIVE_CONFIRM."""
    keys.setenv("APCA_API_BASE_URL", "https://api.alpaca.markets")
    with pytest.raises(SettingsError, match=r"APCA_API_BASE_URL.*V28_LIVE_CONFIRM"):
        connect(load_settings())
    with pytest.raises(SettingsError, match="V28_LIVE_CONFIRM"):
        connect(load_settings(), live=True)


def test_fault1_any_non_paper_host_needs_live_and_confirmation(
    keys: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    keys.setenv("APCA_API_BASE_URL", "https://broker-gateway.example.com")
    with pytest.raises(SettingsError, match="APCA_API_BASE_URL"):
        connect(load_settings())
    keys.setenv("V28_LIVE_CONFIRM", "yes")
    caplog.set_level(logging.WARNING)
    broker = connect(load_settings(), live=True)
    assert isinstance(broker, AlpacaBroker)
    assert "LIVE at https://broker-gateway.example.com" in caplog.text


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://api.alpaca.markets", False),
        ("http://paper-api.alpaca.markets", False),
        ("http://10.0.0.5:8080", False),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("https://paper-api.alpaca.markets", True),
    ],
)
def test_fault1_plain_http_only_on_loopback(keys: pytest.MonkeyPatch, url: str, ok: bool) -> None:
    """Keys travel in headers: over plain http only to this machine."""
    keys.setenv("APCA_API_BASE_URL", url)
    if ok:
        assert isinstance(connect(load_settings()), AlpacaBroker)
    else:
        with pytest.raises(SettingsError, match="APCA_API_BASE_URL"):
            connect(load_settings())


def test_fault1_live_mode_on_the_paper_host_is_refused(keys: pytest.MonkeyPatch) -> None:
    keys.setenv("APCA_API_BASE_URL", "https://paper-api.alpaca.markets")
    keys.setenv("V28_LIVE_CONFIRM", "yes")
    with pytest.raises(SettingsError, match="paper"):
        connect(load_settings(), live=True)


# ---------------------------------------------------------------- 2. reconcile hid an order


@pytest.mark.asyncio
async def test_fault2_unsent_intent_is_not_sent_and_a_late_landing_fails_closed(
    tmp_path: Path,
) -> None:
    """Fault 2: an unsent intent is not_sent, and its late landing fails reconcile.

    An intent with no broker id becomes ``not_sent`` (never ``rejected``); when the order
    then lands (a late POST), reconcile reports the journal-terminal, venue-open order.
    """
    clock = SimClock(OPEN)
    q = StaticQuotes(clock)
    q.set("SPY", "530.00", "530.10")
    venue = SimBroker(q, clock)
    journal = Journal(tmp_path / "j.sqlite")
    req = OrderRequest.equity("SPY", 1, "buy", "limit", "500.00", owner=own("late"))
    cid = req.client_order_id
    journal.record_order_intent(cid, "equity", "trend", "late", req.to_dict(), clock.now())
    first = await reconcile(journal, venue, clock)
    assert first.ok, first.reason
    row = journal.order_by_client_id(cid)
    assert row is not None
    assert row["status"] == "not_sent"
    await venue.submit(req)  # the POST lands after all
    second = await reconcile(journal, venue, clock)
    assert not second.ok
    assert [d["kind"] for d in second.fatal] == ["journal_terminal_broker_open"]
    assert cid in (second.reason or "")
    journal.close()


# ---------------------------------------------------------------- 3. one key, two requests


def test_fault3_same_owner_different_request_raises_at_alpaca() -> None:
    """Fault 3 at Alpaca: one key, two requests, is an error.

    A 50-share sell under the key of an earlier 1-share buy: the venue's duplicate-key
    answer must not hand back the buy.
    """
    fake = FakeAlpacaTrading(now=OPEN).start()
    try:
        fake.set_quote("SPY", "530.00", "530.10")
        b = make(fake)
        owner = own("reused")
        import asyncio

        first = asyncio.run(b.submit(OrderRequest.equity("SPY", 1, "buy", owner=owner)))
        assert first.status == OrderStatus.FILLED
        sell = OrderRequest.equity("SPY", 50, "sell", owner=owner)
        with pytest.raises(ClientOrderIdConflict, match="qty"):
            asyncio.run(make(fake).submit(sell))
        assert len(fake.orders) == 1
    finally:
        fake.stop()


@pytest.mark.asyncio
async def test_fault3_executor_catches_it_even_without_the_journal_row(tmp_path: Path) -> None:
    """A fresh journal has no hash to compare: the venue's order is compared with the request."""
    clock = SimClock(OPEN)
    q = StaticQuotes(clock)
    q.set("SPY", "530.00", "530.10")
    venue = SimBroker(q, clock)
    owner = own("reused2")
    await venue.submit(OrderRequest.equity("SPY", 1, "buy", owner=owner))
    journal = Journal(tmp_path / "fresh.sqlite")
    ex = Executor(venue, journal, clock=clock, quotes=q)
    with pytest.raises(ClientOrderIdConflict, match="another request"):
        await ex.place(Decision(OrderRequest.equity("SPY", 50, "buy", owner=owner), {}))
    row = journal.order_by_client_id(owner.client_order_id)
    assert row is not None
    assert "another request" in (row["reason"] or "")
    ex.journal.close()
    journal.close()


# ---------------------------------------------------------------- 4. ambiguous, then definite


@pytest.fixture
def fake() -> Any:
    f = FakeAlpacaTrading(now=OPEN).start()
    f.set_quote("SPY", "530.00", "530.10")
    yield f
    f.stop()


def test_fault4_refusal_after_an_ambiguous_attempt_resolves_by_lookup(
    fake: FakeAlpacaTrading,
) -> None:
    """Fault 4: a refusal after an ambiguous attempt is settled by look-up.

    Attempt 1 is stored then answered 500; the look-up lags (404); attempt 2 is refused for
    buying power (the first order used it). A final look-up finds the first order.
    """
    import asyncio

    fake.inject("POST", "/v2/orders", 500, {"message": "boom"}, after_store=True)
    fake.inject("GET", "/v2/orders:by_client_order_id", 404, {"message": "order not found"})
    fake.inject(
        "POST", "/v2/orders", 403, {"code": 40310000, "message": "insufficient buying power"}
    )
    req = OrderRequest.equity("SPY", 5, "buy", owner=own("amb"))
    o = asyncio.run(make(fake).submit(req))
    assert o.client_order_id == req.client_order_id
    assert o.status == OrderStatus.FILLED
    assert len(fake.orders) == 1
    assert fake.count("GET", "/v2/orders:by_client_order_id") == 2


def test_fault4_refusal_after_ambiguity_with_nothing_found_stays_unknown(
    fake: FakeAlpacaTrading,
) -> None:
    import asyncio

    fake.inject("POST", "/v2/orders", 503, {"message": "busy"})
    fake.inject(
        "POST", "/v2/orders", 403, {"code": 40310000, "message": "insufficient buying power"}
    )
    req = OrderRequest.equity("SPY", 5, "buy", owner=own("amb2"))
    with pytest.raises(SubmitOutcomeUnknown, match="insufficient buying power"):
        asyncio.run(make(fake).submit(req))


def test_fault4_first_attempt_refusal_is_definite(fake: FakeAlpacaTrading) -> None:
    import asyncio

    fake.inject(
        "POST", "/v2/orders", 403, {"code": 40310000, "message": "insufficient buying power"}
    )
    with pytest.raises(InsufficientBuyingPower):
        asyncio.run(make(fake).submit(OrderRequest.equity("SPY", 5, "buy", owner=own("def"))))
    assert fake.count("GET", "/v2/orders:by_client_order_id") == 0


def test_fault4_unparseable_2xx_is_resolved_by_lookup(fake: FakeAlpacaTrading) -> None:
    """Valid JSON that is not an order (alpaca-py's model refuses it) after the venue stored it."""
    import asyncio

    fake.inject("POST", "/v2/orders", 200, {"unexpected": True}, after_store=True)
    req = OrderRequest.equity("SPY", 2, "buy", owner=own("garbled"))
    o = asyncio.run(make(fake).submit(req))
    assert o.client_order_id == req.client_order_id
    assert len(fake.orders) == 1
    assert fake.count("POST", "/v2/orders") == 1
    assert fake.count("GET", "/v2/orders:by_client_order_id") == 1


# ---------------------------------------------------------------- 7. alpaca-py internals


def test_fault7_missing_private_attribute_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault 7: a missing private attribute of alpaca-py is a clear error.

    If a release of alpaca-py drops ``_session`` (where our timeouts live), construction
    fails naming the attribute and the installed version, instead of silently adding it.
    """
    from importlib.metadata import version

    import alpaca.trading.client as tc

    real = tc.TradingClient

    class Renamed(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            del self._session

    monkeypatch.setattr("v28quant.broker.alpaca.TradingClient", Renamed)
    with pytest.raises(RuntimeError, match=rf"_session.*alpaca-py {version('alpaca-py')}"):
        AlpacaBroker(KEY, SECRET, url="http://127.0.0.1:9")


def test_fault7_alpaca_py_is_bounded_to_the_tested_versions() -> None:
    root = Path(__file__).resolve().parents[2]
    assert "alpaca-py>=0.44,<0.45" in (root / "pyproject.toml").read_text()
    assert "alpaca-py==0.44." in (root / "requirements-v28.txt").read_text()
