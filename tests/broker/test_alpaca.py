"""AlpacaBroker against the loopback fake: failures the venue can throw at us.

The behaviours checked are those research/alpaca.md §5, §7 and §9 document for Alpaca and
alpaca-py 0.44: a POST that stores the order then errors, 429 with ``X-Ratelimit-Reset``, 403 /
422 / 401 bodies (a 401 without ``code``, a 502 without JSON), activities paged by the last id,
option contracts paged by ``next_page_token``. Everything goes through the real TradingClient.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from decimal import Decimal as D

import pytest
from fakes.fixtures import OPEN, FakeTime
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.broker import (
    AuthenticationError,
    BrokerUnavailable,
    InsufficientBuyingPower,
    OptionsLevelError,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    Owner,
    RateLimited,
    connect,
)
from v28quant.broker.alpaca import AlpacaBroker
from v28quant.broker.sim import SimBroker
from v28quant.clock import SimClock
from v28quant.settings import SettingsError, load_settings

KEY, SECRET = "PKTESTKEY0001", "sEcReT-do-not-log-0001"
C530 = "SPY240607C00530000"


def make(fake, ft: FakeTime | None = None, **kw) -> AlpacaBroker:
    ft = ft or FakeTime()
    lim = RateLimiter(rate=10_000, burst=1000, now=ft.now, sleep=ft.sleep)
    return AlpacaBroker(KEY, SECRET, url=fake.url, limiter=lim, backoff_s=0.0, **kw)


def quotes(fake) -> None:
    fake.set_quote("SPY", "530.00", "530.10")
    fake.set_quote(C530, "3.90", "4.00")


def own(d: str) -> Owner:
    return Owner("equity", "trend", d)


async def test_500_after_store_then_lookup_never_duplicates(fake_trading):
    quotes(fake_trading)
    fake_trading.inject(
        "POST", "/v2/orders", 500, {"message": "internal server error"}, after_store=True
    )
    b = make(fake_trading)
    req = OrderRequest.equity("SPY", 5, "buy", owner=own("a500"))
    o = await b.submit(req)
    assert o.client_order_id == req.client_order_id
    assert o.status == OrderStatus.FILLED
    assert len(fake_trading.orders) == 1
    assert fake_trading.count("POST", "/v2/orders") == 1
    assert fake_trading.count("GET", "/v2/orders:by_client_order_id") == 1


async def test_html_200_after_store_is_resolved_by_lookup(fake_trading):
    """A proxy answers 200 with an HTML page after the venue stored the order.

    The body cannot be parsed, so the outcome is unknown; submit looks the order up instead of
    resending.
    """
    quotes(fake_trading)
    fake_trading.inject("POST", "/v2/orders", 200, "<html>gateway</html>", after_store=True)
    b = make(fake_trading)
    req = OrderRequest.equity("SPY", 2, "buy", owner=own("html"))
    o = await b.submit(req)
    assert o.client_order_id == req.client_order_id
    assert o.status == OrderStatus.FILLED
    assert len(fake_trading.orders) == 1
    assert fake_trading.count("POST", "/v2/orders") == 1
    # The POST really was answered with HTML, and the order came from the look-up.
    assert fake_trading.responses[0] == ("POST", "/v2/orders", 200, "<html>gateway</html>")
    assert fake_trading.count("GET", "/v2/orders:by_client_order_id") == 1


async def test_replace_refuses_a_fractional_qty(fake_trading):
    quotes(fake_trading)
    b = make(fake_trading)
    o = await b.submit(OrderRequest.equity("SPY", 1, "buy", "limit", D("1.00"), owner=own("fr")))
    with pytest.raises(ValueError, match="whole number"):
        await b.replace(o.id, qty=D("1.5"))


async def test_500_before_store_is_resent_once(fake_trading):
    quotes(fake_trading)
    fake_trading.inject("POST", "/v2/orders", 503, "<html>upstream busy</html>")
    b = make(fake_trading)
    o = await b.submit(OrderRequest.equity("SPY", 1, "buy", owner=own("b500")))
    assert o.status == OrderStatus.FILLED
    assert len(fake_trading.orders) == 1
    assert fake_trading.count("POST", "/v2/orders") == 2


async def test_timeout_then_late_store_makes_one_order(fake_trading):
    """The first POST is held by the venue past the client's timeout.

    The client finds no order, resends, and gets it filled; then the first POST is processed and
    refused as a duplicate client_order_id. One order exists. The venue holds the request until the
    test releases it, so no sleep races the timeout.
    """
    quotes(fake_trading)
    late = threading.Event()
    fake_trading.inject("POST", "/v2/orders", 200, hold=late)
    b = make(fake_trading, timeout_s=0.5)
    req = OrderRequest.equity("SPY", 1, "buy", owner=own("slow"))
    try:
        o = await b.submit(req)
    finally:
        late.set()
    assert o.status == OrderStatus.FILLED
    deadline = time.monotonic() + 30  # a bound on waiting for the server thread, not a timing
    while len(posts(fake_trading)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    answers = posts(fake_trading)
    assert [a[2] for a in answers] == [200, 422], answers  # the resend, then the late one
    assert "client_order_id must be unique" in answers[1][3]["message"]
    assert len(fake_trading.orders) == 1, fake_trading.orders


def posts(fake) -> list[tuple[str, str, int, object]]:
    return [r for r in fake.responses if r[:2] == ("POST", "/v2/orders")]


async def test_async_rejection_is_reported(fake_trading):
    quotes(fake_trading)
    b = make(fake_trading)
    o = await b.submit(OrderRequest.equity("SPY", 1, "buy", "limit", D("500"), owner=own("rj")))
    assert o.status == OrderStatus.NEW
    assert o.is_open
    fake_trading.reject(o.id)
    got = await b.order_by_client_id(o.client_order_id)
    assert got.status == OrderStatus.REJECTED
    assert not got.is_open
    assert await b.orders("open") == []


async def test_duplicate_client_order_id_resolves_to_existing(fake_trading):
    quotes(fake_trading)
    req = OrderRequest.equity("SPY", 2, "buy", owner=own("dup"))
    first = await make(fake_trading).submit(req)
    # A restarted process (new broker) submits the same decision again: 422, then a look-up.
    again = await make(fake_trading).submit(req)
    assert again.id == first.id
    assert len(fake_trading.orders) == 1


async def test_lookup_failure_after_ambiguous_submit_fails_closed(fake_trading):
    quotes(fake_trading)
    fake_trading.inject("POST", "/v2/orders", 500, {"message": "boom"}, after_store=True)
    fake_trading.inject("GET", "/v2/orders:by_client_order_id", 502, "bad gateway", times=5)
    with pytest.raises(BrokerUnavailable):
        await make(fake_trading).submit(OrderRequest.equity("SPY", 1, "buy", owner=own("u")))
    assert fake_trading.count("POST", "/v2/orders") == 1  # never resent blind


async def test_429_waits_until_reset_header(fake_trading):
    ft = FakeTime()
    fake_trading.inject(
        "GET",
        "/v2/account",
        429,
        {"message": "too many requests."},
        headers={
            "X-Ratelimit-Limit": "200",
            "X-Ratelimit-Remaining": "0",
            "X-Ratelimit-Reset": str(int(ft.t) + 7),
        },
    )
    acct = await make(fake_trading, ft).account()
    assert acct.cash == D(100_000)
    assert sum(ft.slept) == pytest.approx(7.0), ft.slept
    assert fake_trading.count("GET", "/v2/account") == 2


async def test_429_that_persists_raises_rate_limited(fake_trading):
    ft = FakeTime()
    fake_trading.inject(
        "GET",
        "/v2/positions",
        429,
        {"message": "too many requests."},
        headers={"X-Ratelimit-Reset": str(int(ft.t) + 1)},
        times=10,
    )
    with pytest.raises(RateLimited):
        await make(fake_trading, ft, max_attempts=3).positions()
    assert fake_trading.count("GET", "/v2/positions") == 3


async def test_remaining_zero_pauses_next_request(fake_trading):
    ft = FakeTime()
    fake_trading.inject(
        "GET",
        "/v2/clock",
        200,
        headers={"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(int(ft.t) + 3)},
    )
    b = make(fake_trading, ft)

    async def go():
        await b.clock()
        assert ft.slept == []
        await b.account()

    await go()
    assert sum(ft.slept) == pytest.approx(3.0)


async def test_403_and_422_and_401_mapped(fake_trading):
    quotes(fake_trading)
    b = make(fake_trading)
    with pytest.raises(InsufficientBuyingPower, match="insufficient buying power"):
        await b.submit(OrderRequest.equity("SPY", 1000, "buy", owner=own("big")))
    fake_trading.options_level = 1
    with pytest.raises(OptionsLevelError, match="level"):
        await b.submit(OrderRequest.option(C530, 1, "buy", "buy_to_open", owner=own("lvl")))
    fake_trading.inject(
        "POST",
        "/v2/orders",
        422,
        {"code": 42210000, "message": "potential wash trade detected. use complex orders"},
    )
    with pytest.raises(OrderRejected, match="wash trade") as ei:
        await b.submit(OrderRequest.equity("SPY", 1, "sell", owner=own("wash")))
    assert ei.value.status == 422
    assert ei.value.code == 42210000
    fake_trading.inject("GET", "/v2/account", 401, {"message": "unauthorized"})
    with pytest.raises(AuthenticationError, match="APCA_API_KEY_ID"):
        await b.account()
    assert len(fake_trading.orders) == 0


async def test_non_json_502_on_reads_is_retried_then_unavailable(fake_trading):
    fake_trading.inject("GET", "/v2/clock", 502, "<html>Bad Gateway</html>", times=1)
    b = make(fake_trading)
    assert (await b.clock()).is_open  # retried once
    fake_trading.inject("GET", "/v2/clock", 502, "<html>Bad Gateway</html>", times=5)
    with pytest.raises(BrokerUnavailable, match="502"):
        await b.clock()


async def test_unreachable_venue_is_broker_unavailable():
    b = AlpacaBroker(
        KEY, SECRET, url="http://127.0.0.1:9", timeout_s=0.5, backoff_s=0.0, max_attempts=2
    )
    with pytest.raises(BrokerUnavailable, match="unreachable"):
        await b.account()


async def test_activities_are_paged(fake_trading):
    quotes(fake_trading)
    b = make(fake_trading, activities_page_size=3)

    async def go():
        for i in range(7):
            await b.submit(OrderRequest.equity("SPY", i + 1, "buy", owner=own(f"p{i}")))
        return await b.activities()

    acts = await go()
    assert [a.qty for a in acts] == [D(i + 1) for i in range(7)]  # oldest first, none lost
    assert len({a.id for a in acts}) == 7
    assert fake_trading.count("GET", "/v2/account/activities") == 3


async def test_option_contracts_are_paged(fake_trading):
    for k in (520, 525, 530, 535, 540):
        fake_trading.set_quote(f"SPY240607C00{k}000", "1.00", "1.10")
    fake_trading.set_quote("QQQ240607C00450000", "1.00", "1.10")
    rows = await make(fake_trading).option_contracts("SPY", page_size=2)
    assert [r["strike"] for r in rows] == [D(520), D(525), D(530), D(535), D(540)]
    assert all(r["underlying"] == "SPY" and r["type"] == "call" for r in rows)
    assert fake_trading.count("GET", "/v2/options/contracts") == 3


async def test_secrets_never_logged(fake_trading, caplog, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("APCA_API_BASE_URL", fake_trading.url)
    caplog.set_level(logging.DEBUG)
    b = connect(load_settings())
    assert isinstance(b, AlpacaBroker)
    await b.account()
    assert "Alpaca paper" in caplog.text
    assert SECRET not in caplog.text
    assert KEY not in caplog.text
    assert SECRET not in repr(b)


def test_connect_without_keys_gives_sim_and_live_needs_confirmation(monkeypatch, caplog):
    for var in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "V28_LIVE_CONFIRM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir("/tmp")  # no stray .env
    caplog.set_level(logging.INFO)

    class NoQuotes:
        async def quote(self, s):
            raise KeyError(s)

        async def closing_price(self, s, d):
            raise KeyError(s)

    b = connect(load_settings(), quotes=NoQuotes(), clock=SimClock(OPEN))
    assert isinstance(b, SimBroker)
    assert "SIMULATED exchange" in caplog.text
    with pytest.raises(SettingsError, match="V28_LIVE_CONFIRM"):
        connect(load_settings(), live=True)
    with pytest.raises(SettingsError, match="APCA_API_KEY_ID"):
        connect(load_settings(live_confirm=True), live=True)
    with pytest.raises(SettingsError, match="needs clock="):
        connect(load_settings(), quotes=NoQuotes())  # never wall time by default


async def test_orders_page_past_the_limit_with_until(fake_trading):
    """Page through open orders by ``until`` without losing any.

    GET /v2/orders has no page token, only ``limit`` (<= 500) and exclusive ``until`` (Alpaca's
    API reference): pages of 5 must still return all 12 open orders, including three submitted
    in the same microsecond that straddle a page boundary.
    """
    quotes(fake_trading)
    b = make(fake_trading, orders_page_size=5)
    stamps = [0, 1, 2, 3, 4, 5, 5, 5, 8, 9, 10, 11]  # seconds after OPEN

    async def go():
        cids = []
        for i, s in enumerate(stamps):
            fake_trading.now = OPEN + timedelta(seconds=s)
            o = await b.submit(
                OrderRequest.equity("SPY", 1, "buy", "limit", D("500"), owner=own(f"pg{i}"))
            )
            assert o.status == OrderStatus.NEW, o
            cids.append(o.client_order_id)
        got = await b.orders("open")
        return cids, got

    cids, got = await go()
    assert sorted(o.client_order_id for o in got) == sorted(cids), len(got)
    assert len({o.id for o in got}) == 12
    gets = [q for m, p, q in fake_trading.requests if m == "GET" and p == "/v2/orders"]
    assert [g["limit"] for g in gets] == ["5"] * len(gets), gets
    assert len(gets) >= 3, gets
    with pytest.raises(ValueError, match="orders_page_size"):
        make(fake_trading, orders_page_size=501)


def test_activity_rows_signed_and_malformed_rows_named() -> None:
    # A sell (full or partial) reduces the position: the signed change is negative.
    from v28quant.broker.alpaca import to_activity
    from v28quant.broker.base import BrokerError

    row = {"id": "1", "transaction_time": "2024-06-03T14:30:00Z", "qty": "3", "side": "sell"}
    for kind in ("FILL", "PARTIAL_FILL"):
        assert to_activity({**row, "activity_type": kind}).qty == D(-3)
    with pytest.raises(BrokerError, match="neither transaction_time nor date"):
        to_activity({"id": "2", "activity_type": "OPEXP"})


def test_a_short_sale_activity_is_a_sell() -> None:
    # Alpaca reports a trade activity's execution side in full: a short sale is "sell_short",
    # a sale that lowers the position by its qty as any sell does (and journals as a sell).
    from v28quant.broker.alpaca import to_activity

    row = {"id": "1", "transaction_time": "2024-06-03T14:30:00Z", "qty": "3"}
    for side, signed in (("sell_short", D(-3)), ("sell_short_exempt", D(-3)), ("buy", D(3))):
        a = to_activity({**row, "activity_type": "FILL", "side": side})
        assert (a.qty, a.side) == (signed, "buy" if signed > 0 else "sell"), side
