"""``AlpacaData`` through the real alpaca-py clients (``raw_data=False``.

every payload is validated by alpaca-py's own pydantic models) against the loopback fake data API.

Independent references: the shipped files in ../shared/data (SPY daily bars, the NVDA Alpaca
option-chain snapshot) that the fake serves; Black-Scholes vega recomputed from the snapshot's
own IV to pin down Alpaca's vega unit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fakes.alpaca_data import (
    FakeAlpacaData,
    bars_from_csv,
    contracts_from_snapshots,
    snapshots_from_csv,
)
from v28quant.alpaca.ratelimit import RateLimiter
from v28quant.data.alpaca import AlpacaData, DataError
from v28quant.data.base import BAR_COLUMNS, CHAIN_COLUMNS, DataFeed

KEY, SECRET = "PKTESTKEY", "test-secret-value"
NOW = datetime(2025, 7, 9, 15, 0, tzinfo=UTC)
#: 30 s after the NVDA snapshot's last quotes (19:59:54-19:59:59.97 UTC): every quote is fresh.
CHAIN_NOW = datetime(2025, 7, 8, 20, 0, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def spy_csv(shared_data: Path) -> Path:
    return shared_data / "equities/yahoo_raw_2019_2023/SPY.csv"


@pytest.fixture(scope="module")
def nvda(shared_data: Path) -> dict:
    return snapshots_from_csv(shared_data / "options/NVDA_2025-07-08_alpaca_snapshot.csv")


@pytest.fixture
def fake(spy_csv: Path, nvda: dict):
    quotes = {
        "SPY": {
            "t": "2025-07-09T14:59:59Z",
            "ax": "V",
            "ap": 528.02,
            "as": 2,
            "bx": "V",
            "bp": 527.9,
            "bs": 3,
            "c": ["R"],
            "z": "B",
        }
    }
    with FakeAlpacaData(
        bars={"SPY": bars_from_csv(spy_csv)},
        quotes=quotes,
        option_snapshots=nvda,
        contracts=contracts_from_snapshots(nvda),
        page_size=50,
        now=NOW,
    ) as f:
        yield f


def client(fake: FakeAlpacaData, **kw) -> AlpacaData:
    kw.setdefault("limiter", RateLimiter(rate=60_000, burst=1000))
    kw.setdefault("now", lambda: NOW)
    return AlpacaData(KEY, SECRET, data_url=fake.url, trading_url=fake.url, **kw)


def test_is_a_datafeed(fake: FakeAlpacaData) -> None:
    assert isinstance(client(fake), DataFeed)


async def test_daily_bars_paginated(fake: FakeAlpacaData, spy_csv: Path) -> None:
    c = client(fake)
    b = await c.bars(["SPY"], date(2023, 1, 1), date(2023, 12, 31))
    assert list(b.columns) == list(BAR_COLUMNS)
    ref = pd.read_csv(spy_csv)
    ref = ref[(ref.date >= "2023-01-01") & (ref.date <= "2023-12-31")]
    assert len(b) == len(ref) == 250
    np.testing.assert_array_equal(b["close"].to_numpy(), ref["close"].to_numpy())
    np.testing.assert_array_equal(b["volume"].to_numpy(), ref["volume"].to_numpy(float))
    # midnight New York in UTC: 05:00Z in winter, 04:00Z in summer
    assert b["timestamp"].iloc[0] == pd.Timestamp("2023-01-03 05:00", tz="UTC")
    assert b["timestamp"].dt.tz_convert("America/New_York").dt.date.iloc[-1] == date(2023, 12, 29)
    pages = [q for m, p, q in fake.requests if p == "/v2/stocks/bars"]
    assert len(pages) == 5
    assert all(q["feed"] == "iex" for q in pages)


async def test_sip_end_clamped(fake: FakeAlpacaData) -> None:
    c = client(fake, feed="sip")
    await c.bars(["SPY"], date(2023, 12, 1), None)  # the fake 403s recent SIP data
    q = [q for m, p, q in fake.requests if p == "/v2/stocks/bars"][-1]
    assert q["feed"] == "sip"
    assert datetime.fromisoformat(q["end"]) <= NOW - timedelta(minutes=15)


async def test_latest_quotes(fake: FakeAlpacaData) -> None:
    c = client(fake)
    qs = await c.latest_quotes(["SPY", "NOPE"])
    assert set(qs) == {"SPY"}
    q = qs["SPY"]
    assert (q.bid, q.ask, q.bid_size, q.ask_size) == (Decimal("527.9"), Decimal("528.02"), 3, 2)
    assert q.ts == datetime(2025, 7, 9, 14, 59, 59, tzinfo=UTC)
    assert not q.synthetic
    with pytest.raises(KeyError, match="NOPE"):
        await c.quote("NOPE")
    oq = await c.quote("NVDA250711C00180000")
    assert (oq.bid, oq.ask) == (Decimal("0.01"), Decimal("0.02"))


async def test_closing_price(fake: FakeAlpacaData, spy_csv: Path) -> None:
    ref = pd.read_csv(spy_csv).set_index("date")
    got = await client(fake).closing_price("SPY", datetime(2023, 9, 14, 20, tzinfo=UTC))
    assert got == Decimal(repr(float(ref.loc["2023-09-14", "close"])))


async def test_option_chain_nvda(fake: FakeAlpacaData, shared_data: Path) -> None:
    raw = pd.read_csv(shared_data / "options/NVDA_2025-07-08_alpaca_snapshot.csv")
    ch = await client(fake, now=lambda: CHAIN_NOW).option_chain("NVDA")
    assert list(ch.columns) == list(CHAIN_COLUMNS)
    assert len(ch) == len(raw) == 194
    assert not ch["synthetic"].any()
    m = ch.merge(raw, left_on="symbol", right_on="contract_symbol", suffixes=("", "_f"))
    assert len(m) == 194
    # strike, expiry and type parsed from the OCC symbol agree with the file's own columns
    np.testing.assert_array_equal(m["strike"], m["strike_f"])
    assert (m["expiry"].dt.date.astype(str) == m["expiration"]).all()
    assert (m["type"] == m["type_f"]).all()
    np.testing.assert_array_equal(m["bid"], m["bid_f"])
    # IV and greeks missing where Alpaca did not compute them -> NaN, never 0
    assert m["iv"].isna().sum() == m["iv_f"].isna().sum() > 100
    has = m.dropna(subset=["theta_f"])
    np.testing.assert_allclose(has["theta"], has["theta_f"] * 365.0, rtol=1e-12)
    np.testing.assert_allclose(has["vega"], has["vega_f"] * 100.0, rtol=1e-12)
    # unit check: BSM vega per 1.00 vol from the row's own IV (forward ~160.09 per the data
    # README, T from the quote time to the 16:00 ET expiry) agrees with the converted vega
    # within a factor 2.5: Alpaca's model inputs (rate, time convention) are not published
    # and its vegas run 0.5-0.8x ours, but a per-point / per-1.00 mix-up is a factor 100.
    from v28quant.options import black_scholes as bsm

    t = (
        datetime(2025, 7, 11, 20, tzinfo=UTC) - datetime(2025, 7, 8, 20, tzinfo=UTC)
    ).total_seconds() / (365 * 86400)
    near = has[(has["strike"] > 150) & (has["strike"] < 170)]
    assert len(near) > 5
    ref = bsm.greeks(
        160.09,
        near["strike"].to_numpy(),
        t,
        0.0,
        0.0,
        near["iv"].to_numpy(),
        (near["type"] == "call").to_numpy(),
    ).vega
    ratio = near["vega"].to_numpy() / ref
    assert np.all((ratio > 0.4) & (ratio < 2.5)), ratio


async def test_option_chain_filters(fake: FakeAlpacaData) -> None:
    c = client(fake, now=lambda: CHAIN_NOW)
    ch = await c.option_chain("NVDA", type="put", strike_from=150, strike_to=170)
    assert set(ch["type"]) == {"put"}
    assert ch["strike"].between(150, 170).all()
    assert len(ch) > 5
    q = [q for m, p, q in fake.requests if p.startswith("/v1beta1/options/snapshots/")][-1]
    assert q["feed"] == "indicative"
    assert q["type"] == "put"


async def test_option_contracts_manual_pagination(fake: FakeAlpacaData) -> None:
    df = await client(fake).option_contracts("NVDA")
    assert len(df) == 194
    assert df["symbol"].is_unique
    pages = [q for m, p, q in fake.requests if p == "/v2/options/contracts"]
    assert len(pages) == 4  # 194 contracts, 50 a page
    assert "page_token" not in pages[0]
    assert all("page_token" in q for q in pages[1:])
    calls = await client(fake).option_contracts("NVDA", type="call", strike_from=160)
    assert set(calls["type"]) == {"call"}
    assert (calls["strike"] >= 160).all()


async def test_429_waits_for_reset_then_succeeds(fake: FakeAlpacaData) -> None:
    reset = str(int(time.time()) + 1)
    fake.fail(
        "GET",
        r"/v2/stocks/quotes/latest",
        429,
        {"message": "too many requests."},
        {"X-Ratelimit-Limit": "200", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": reset},
        times=1,
    )
    c = client(fake)
    t0 = time.monotonic()
    assert "SPY" in await c.latest_quotes(["SPY"])
    waited = time.monotonic() - t0
    hits = [p for m, p, q in fake.requests if p == "/v2/stocks/quotes/latest"]
    assert len(hits) == 2, hits
    assert waited >= float(reset) - time.time() - 1.0  # it honoured the reset header


async def test_429_exhausted_and_403_are_clear_errors(fake: FakeAlpacaData, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail(
        "GET",
        r"/v2/stocks/quotes/latest",
        429,
        {"message": "too many requests."},
        {"Retry-After": "0"},
        times=10,
    )
    with pytest.raises(DataError, match="429"):
        await client(fake, max_attempts=3).latest_quotes(["SPY"])
    fake.fail(
        "GET",
        r"/v2/stocks/bars",
        403,
        {"message": "subscription does not permit querying recent SIP data"},
    )
    with pytest.raises(DataError, match=r"403.*subscription does not permit") as ei:
        await client(fake).bars(["SPY"], date(2023, 1, 1), date(2023, 1, 31))
    assert KEY not in str(ei.value)
    assert SECRET not in str(ei.value)
    assert SECRET not in caplog.text
    assert KEY not in caplog.text


def test_401_without_keys_is_refused_by_the_fake(fake: FakeAlpacaData) -> None:
    import requests

    r = requests.get(fake.url + "/v2/stocks/quotes/latest?symbols=SPY", timeout=5)
    assert r.status_code == 401
    assert r.json() == {"message": "unauthorized"}


async def test_empty_results(fake: FakeAlpacaData) -> None:
    c = client(fake)
    b = await c.bars(["SPY"], date(1990, 1, 1), date(1990, 1, 31))
    assert b.empty
    assert list(b.columns) == list(BAR_COLUMNS)
    ch = await c.option_chain("AAPL")
    assert ch.empty
    assert list(ch.columns) == list(CHAIN_COLUMNS)
    assert math.isnan(ch.attrs["underlying_price"])


def test_a_missing_quote_side_is_not_a_price_of_zero() -> None:
    # A quote without a bid or an ask is dropped by latest_quotes, never priced at 0.
    from v28quant.data.alpaca import _price

    with pytest.raises(ValueError, match="no bid price"):
        _price(None, "bid")
    assert _price(1.25, "ask") == Decimal("1.25")


def test_a_silent_server_times_out_with_a_clear_error() -> None:
    # A listener that accepts connections and never answers: without a timeout the SDK would
    # wait forever; with one, the call ends in DataError within the budget.
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        feed = AlpacaData(
            KEY, SECRET, data_url=url, trading_url=url, timeout_s=0.3, now=lambda: NOW
        )
        with pytest.raises(DataError, match="unreachable"):
            asyncio.run(feed.latest_quotes(["SPY"]))


async def test_daily_history_is_split_adjusted_and_a_settlement_close_is_as_traded(
    shared_data: Path,
) -> None:
    """A split reads as the day's move in the models' history; a settlement close is as traded.

    AAPL split 2:1 on 2005-02-28 (88.99 -> 44.86 as traded): the history must show the move
    Yahoo's adjusted close shows that day, not a 50 % crash.
    """
    path = shared_data / "equities/yahoo_2000_2012/AAPL.csv"
    raw = bars_from_csv(path, "2005-01-03", "2005-03-31")
    adjusted = bars_from_csv(path, "2005-01-03", "2005-03-31", adjusted=True)
    with FakeAlpacaData(bars={"AAPL": raw}, adjusted_bars={"AAPL": adjusted}, now=NOW) as f:
        c = client(f)
        b = await c.bars(["AAPL"], date(2005, 2, 1), date(2005, 3, 4))
        settled = await c.closing_price("AAPL", datetime(2005, 2, 25, 21, tzinfo=UTC))
        asked = [q.get("adjustment") for _, p, q in f.requests if p == "/v2/stocks/bars"]
    assert asked == ["all", "raw"]  # the models' history, then the settlement's close
    ref = pd.read_csv(path).set_index("date")
    days = b["timestamp"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d")
    ret = b["close"].pct_change().set_axis(days)
    market = ref.loc["2005-02-28", "adj_close"] / ref.loc["2005-02-25", "adj_close"] - 1
    assert ret["2005-02-28"] == pytest.approx(market, abs=1e-12)  # +0.8 %, not -49.6 %
    assert abs(ret).max() < 0.1
    assert settled == Decimal("88.99")


async def test_a_settlement_close_is_the_official_close_whatever_the_quote_feed(
    spy_csv: Path,
) -> None:
    """On the IEX feed a daily bar closes on IEX's last trade, not the closing auction.

    Expiries settle on the official close, which only the consolidated (SIP) tape carries; the
    free plan serves SIP history older than 15 minutes.
    """
    official = bars_from_csv(spy_csv, "2023-09-11", "2023-09-15")
    iex_tape = [{**b, "c": round(b["c"] + 0.07, 2)} for b in official]
    with FakeAlpacaData(bars={"SPY": official}, iex_bars={"SPY": iex_tape}, now=NOW) as f:
        close = await client(f, feed="iex").closing_price(
            "SPY", datetime(2023, 9, 14, 20, tzinfo=UTC)
        )
        asked = [q for _, p, q in f.requests if p == "/v2/stocks/bars"]
    ref = pd.read_csv(spy_csv).set_index("date")
    assert close == Decimal(repr(float(ref.loc["2023-09-14", "close"])))
    assert [q["feed"] for q in asked] == ["sip"]


async def test_a_settlement_close_is_refused_until_the_consolidated_tape_has_it(
    spy_csv: Path,
) -> None:
    # 5 minutes after the close the free plan has no SIP data of the last 15 minutes: the
    # day's bar is not final, so no close is given (the settlement asks again later).
    after_close = datetime(2023, 9, 14, 20, 5, tzinfo=UTC)
    with FakeAlpacaData(bars={"SPY": bars_from_csv(spy_csv)}, now=after_close) as f:
        feed = AlpacaData(
            KEY,
            SECRET,
            data_url=f.url,
            trading_url=f.url,
            now=lambda: after_close,
            limiter=RateLimiter(rate=60_000, burst=1000),
        )
        with pytest.raises(ValueError, match="not final"):
            await feed.closing_price("SPY", after_close)
        later = datetime(2023, 9, 14, 20, 16, tzinfo=UTC)
        feed._now = lambda: later
        f.now = later
        ref = pd.read_csv(spy_csv).set_index("date")
        assert await feed.closing_price("SPY", after_close) == Decimal(
            repr(float(ref.loc["2023-09-14", "close"]))
        )


async def test_history_drops_a_symbol_the_data_api_refuses_and_loads_the_others(
    spy_csv: Path,
) -> None:
    # One symbol's bars answered 500 (or 400 for a symbol the API does not know): that symbol
    # is left out of the day's history, the rest of the universe still trades.
    from types import SimpleNamespace

    from v28quant.calendar import default_calendar
    from v28quant.premarket import load_history

    spy = bars_from_csv(spy_csv)
    morning = datetime(2023, 6, 1, 13, tzinfo=UTC)
    with FakeAlpacaData(bars={"SPY": spy, "AAPL": spy}, now=morning) as f:
        f.fail("GET", r"/v2/stocks/bars", 500, {"message": "internal server error"})
        ctx = SimpleNamespace(now=morning, calendar=default_calendar(), feed=client(f))
        _, closes = await load_history(ctx, ["AAPL", "SPY"], 20)  # AAPL asked first
    ref = pd.read_csv(spy_csv).set_index("date").loc[:"2023-05-31", "close"].tail(20)
    assert list(closes.columns) == ["SPY"]
    np.testing.assert_array_equal(closes["SPY"].to_numpy(), ref.to_numpy())


async def test_option_chain_carries_the_penny_program_flag(fake: FakeAlpacaData) -> None:
    """Alpaca's ``ppind`` on the class's contract records is the chain's ``penny`` column.

    NVDA is in the Penny Program (every record says ``ppind`` true); made a class outside it,
    its chain says so on every row, and one contract record is read per day for it.
    """
    c = client(fake)
    assert (await c.option_chain("NVDA"))["penny"].all()
    for record in fake.contracts:
        record["ppind"] = False
    later = client(fake)
    assert not (await later.option_chain("NVDA"))["penny"].any()
    await later.option_chain("NVDA")
    reads = [q for _, p, q in fake.requests if p == "/v2/options/contracts"]
    assert len(reads) == 2
    assert all(q["limit"] == "1" for q in reads)


async def test_every_page_of_a_paged_call_passes_the_rate_limiter(
    fake: FakeAlpacaData, nvda: dict
) -> None:
    # alpaca-py follows next_page_token inside one SDK call. A limiter of one request a second
    # and a burst of one, on a time that moves only when it sleeps: n requests sent must have
    # waited n - 1 seconds, whichever call or page sent them.
    from fakes.fixtures import FakeTime

    t = FakeTime()
    c = client(fake, limiter=RateLimiter(rate=1, per=1.0, burst=1, now=t.now, sleep=t.sleep))
    await c.bars(["SPY"], date(2023, 1, 1), date(2023, 12, 31))  # 250 bars, 50 a page
    await c.option_chain("NVDA")  # 194 snapshots, 50 a page
    bars = [q for _, p, q in fake.requests if p == "/v2/stocks/bars"]
    chain = [q for _, p, q in fake.requests if p == "/v1beta1/options/snapshots/NVDA"]
    assert (len(bars), len(chain)) == (5, 4)
    assert sum(t.slept) == pytest.approx(len(fake.requests) - 1)


async def test_a_crossed_contract_is_left_out_and_the_rest_kept(
    spy_csv: Path, nvda: dict, caplog: pytest.LogCaptureFixture
) -> None:
    # As the replay feed does: a crossed quote (bid > ask) is no price; only its contract goes,
    # the rest of the chain and of the quotes stay, and one line says how many went.
    snaps = {"NVDA": {s: {**v} for s, v in nvda["NVDA"].items()}}
    crossed = sorted(snaps["NVDA"])[100:102]
    for s in crossed:
        q = snaps["NVDA"][s]["latestQuote"]
        snaps["NVDA"][s]["latestQuote"] = {**q, "bp": q["ap"] + 0.05}
    good = sorted(snaps["NVDA"])[102]
    caplog.set_level(logging.WARNING, logger="v28quant.data.alpaca")
    with FakeAlpacaData(option_snapshots=snaps, page_size=50, now=NOW) as f:
        c = client(f, now=lambda: CHAIN_NOW)
        chain = await c.option_chain("NVDA")
        said_chain = [r.getMessage() for r in caplog.records]
        caplog.clear()
        quotes = await c.latest_quotes([*crossed, good])
        said_quotes = [r.getMessage() for r in caplog.records]
    assert len(chain) == len(snaps["NVDA"]) - 2
    assert not set(crossed) & set(chain["symbol"])
    assert (chain["bid"] <= chain["ask"]).all()
    assert set(quotes) == {good}
    for said in (said_chain, said_quotes):
        assert len(said) == 1, said
        assert "2 crossed" in said[0], said
        assert all(s in said[0] for s in crossed), said


async def test_a_contract_with_a_stale_quote_is_left_out_of_the_chain(
    nvda: dict, caplog: pytest.LogCaptureFixture
) -> None:
    # Alpaca stamps the chain now but each contract carries its own quote time: one last quoted
    # over 5 minutes (the default limit, a setting) before the newest its feed serves is no
    # price to trade on. The free indicative feed serves quotes 15 minutes behind: there a
    # 10-minute-old quote is among the newest, a 21-minute-old one is stale.
    from v28quant.settings import Settings

    def quoted_ago(minutes: int) -> dict:
        snaps = {"NVDA": {s: {**v} for s, v in nvda["NVDA"].items()}}
        at = (CHAIN_NOW - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for s in stale:
            snaps["NVDA"][s]["latestQuote"] = {**snaps["NVDA"][s]["latestQuote"], "t": at}
        return snaps

    stale = sorted(nvda["NVDA"])[40:43]
    with FakeAlpacaData(option_snapshots=quoted_ago(10), now=CHAIN_NOW) as f:
        delayed = await client(f, now=lambda: CHAIN_NOW).option_chain("NVDA")
        real_time = await client(f, now=lambda: CHAIN_NOW, options_feed="opra").option_chain("NVDA")
    assert set(stale) <= set(delayed["symbol"])
    assert not set(stale) & set(real_time["symbol"])
    snaps = quoted_ago(21)
    caplog.set_level(logging.WARNING, logger="v28quant.data.alpaca")
    with FakeAlpacaData(option_snapshots=snaps, now=CHAIN_NOW) as f:
        caplog.clear()
        chain = await client(f, now=lambda: CHAIN_NOW).option_chain("NVDA")
        said = [r.getMessage() for r in caplog.records]
        patient = Settings(
            alpaca_key_id=KEY,
            alpaca_secret_key=SECRET,
            alpaca_base_url=f.url,
            alpaca_data_url=f.url,
            option_quote_max_age_s=15 * 60,
        )
        kept = await AlpacaData.from_settings(patient, now=lambda: CHAIN_NOW).option_chain("NVDA")
    assert len(chain) == len(snaps["NVDA"]) - 3
    assert not set(stale) & set(chain["symbol"])
    assert len(said) == 1, said
    assert "3 stale" in said[0], said
    assert all(s in said[0] for s in stale), said
    assert set(stale) <= set(kept["symbol"])  # within a 15-minute limit they are kept
    assert "quoted before 19:40:30 UTC" in said[0], said  # 20:00:30 less 15 + 5 minutes


async def test_a_data_error_names_what_was_asked_for(fake: FakeAlpacaData) -> None:
    # An operator reading "Alpaca data API error 500" cannot tell which symbol's data failed.
    c = client(fake)
    fake.fail("GET", r"/v2/stocks/bars", 500, {"message": "internal server error"})
    with pytest.raises(DataError, match=r"bars of SPY, QQQ.*500.*internal server error"):
        await c.bars(["SPY", "QQQ"], date(2023, 1, 1), date(2023, 1, 31))
    fake.fail("GET", r"/v1beta1/options/snapshots/NVDA", 503, {"message": "unavailable"})
    with pytest.raises(DataError, match=r"option chain of NVDA.*503"):
        await c.option_chain("NVDA")
    fake.fail("GET", r"/v2/stocks/quotes/latest", 500, {"message": "down"})
    with pytest.raises(DataError, match=r"latest quotes of SPY.*500"):
        await c.latest_quotes(["SPY"])
    fake.fail("GET", r"/v2/options/contracts", 500, {"message": "down"})
    with pytest.raises(DataError, match=r"option contracts of NVDA.*500"):
        await c.option_contracts("NVDA")
