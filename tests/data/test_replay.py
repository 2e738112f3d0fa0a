"""Replay data feed.

No look-ahead, reproducible intraday paths, synthetic chain sanity, sample history and users'
files.

Independent references: the recorded daily bars themselves (every synthetic path and intraday
bar must reproduce the day's open/high/low/close), put-call parity (C - P = S e^{-qT} - K e^{-rT},
a model-free identity for European prices), skfolio / arch's own data loaders, and the shipped
Cboe SPY snapshot in ../shared/data.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from v28quant.calendar import ET
from v28quant.clock import SimClock
from v28quant.data.base import BAR_COLUMNS, CHAIN_COLUMNS, DataFeed, parse_occ
from v28quant.data.replay import ReplayFeed, intraday_path, load_chain_snapshot
from v28quant.data.samples import History, load_bars_file, sp500_index_ohlcv, sp500_stocks
from v28quant.quotes import QuoteSource


@pytest.fixture(scope="module")
def spx() -> History:
    return sp500_index_ohlcv()  # real OHLCV, 1999-2018


def feed_at(history: History, when: datetime, seed: int = 0) -> ReplayFeed:
    return ReplayFeed(history, SimClock(when), seed=seed)


NOW = datetime(2015, 6, 10, 10, 5, tzinfo=ET)


def daily_row(h: History, sym: str, day: date) -> pd.Series:
    b = h.bars[h.bars["symbol"] == sym]
    d = b["timestamp"].dt.tz_convert(ET).dt.date
    return b[(d == day).to_numpy()].iloc[0]


async def test_bars_no_look_ahead(spx: History) -> None:
    f = feed_at(spx, NOW)
    b = await f.bars(["SPX"], date(2015, 1, 1), date(2016, 1, 1))
    assert list(b.columns) == list(BAR_COLUMNS)
    days = b["timestamp"].dt.tz_convert(ET).dt.date
    assert days.max() == date(2015, 6, 10), "nothing after today"
    # completed days are the recorded bars, exactly
    done = b[(days < date(2015, 6, 10)).to_numpy()]
    ref = spx.bars[
        (spx.bars.timestamp >= done.timestamp.min()) & (spx.bars.timestamp <= done.timestamp.max())
    ]
    np.testing.assert_array_equal(done["close"].to_numpy(), ref["close"].to_numpy())
    # today's bar is partial: recorded open, a range inside the day's, volume so far
    today, rec = b.iloc[-1], daily_row(spx, "SPX", date(2015, 6, 10))
    assert today["open"] == rec["open"]
    assert rec["low"] <= today["low"] <= today["high"] <= rec["high"]
    assert 0 < today["volume"] < rec["volume"]
    # intraday bars only once they have ended (10:05 -> the 10:00 bar is the last)
    m5 = await f.bars(["SPX"], NOW - timedelta(hours=2), None, "5Min")
    assert m5["timestamp"].max() == pd.Timestamp(NOW - timedelta(minutes=5))
    assert len(m5) == 7  # 09:30 .. 10:00


async def test_future_data_cannot_leak(spx: History) -> None:
    """Scrambling every bar after today changes nothing the feed says today."""
    b = spx.bars.copy()
    future = (b["timestamp"].dt.tz_convert(ET).dt.date > NOW.date()).to_numpy()
    for c in ("open", "high", "low", "close"):
        b.loc[future, c] = b.loc[future, c] * 1.7
    f1, f2 = feed_at(spx, NOW), feed_at(History(b), NOW)
    pd.testing.assert_frame_equal(
        await f1.bars(["SPX"], date(2015, 5, 1), date(2016, 1, 1)),
        await f2.bars(["SPX"], date(2015, 5, 1), date(2016, 1, 1)),
    )
    assert await f1.quote("SPX") == await f2.quote("SPX")
    c1, c2 = await f1.option_chain("SPX"), await f2.option_chain("SPX")
    pd.testing.assert_frame_equal(c1, c2)
    with pytest.raises(ValueError, match="has not closed"):
        await f1.closing_price("SPX", NOW)
    assert (
        await f1.closing_price("SPX", NOW - timedelta(days=1))
        == Decimal(repr(float(daily_row(spx, "SPX", date(2015, 6, 9))["close"])))
        .quantize(Decimal("0.0001"))
        .normalize()
    )


async def test_paths_reproducible_and_seeded(spx: History) -> None:
    # feed A walks through the morning cycle by cycle, feed B jumps straight to 10:05
    a = ReplayFeed(spx, SimClock(datetime(2015, 6, 10, 9, 0, tzinfo=ET)))
    t = datetime(2015, 6, 10, 9, 45, tzinfo=ET)
    while t <= NOW:
        a.clock.set(t)
        await a.quote("SPX")
        t += timedelta(minutes=5)
    b = feed_at(spx, NOW)
    assert await a.quote("SPX") == await b.quote("SPX")
    assert await feed_at(spx, NOW, seed=1).quote("SPX") != await b.quote("SPX")
    # before the open: the previous close, no synthetic pre-market move
    pre = feed_at(spx, datetime(2015, 6, 10, 9, 0, tzinfo=ET))
    assert pre.price("SPX") == daily_row(spx, "SPX", date(2015, 6, 9))["close"]


@pytest.mark.parametrize("day", ["2015-06-10", "2008-10-10", "2016-11-25", "2003-01-02"])
async def test_intraday_bars_rebuild_the_daily_bar(spx: History, day: str) -> None:
    d = date.fromisoformat(day)
    rec = daily_row(spx, "SPX", d)
    f = feed_at(spx, datetime.combine(d, datetime.min.time(), ET) + timedelta(hours=20))
    for tf in ("1Min", "5Min", "1Hour"):
        m = await f.bars(["SPX"], d, d, tf)
        assert m["open"].iloc[0] == rec["open"], tf
        assert m["close"].iloc[-1] == rec["close"], tf
        assert m["high"].max() == rec["high"], tf
        assert m["low"].min() == rec["low"], tf
        assert (m["low"] >= rec["low"]).all(), tf
        assert (m["high"] <= rec["high"]).all(), tf
        assert m["volume"].sum() <= rec["volume"]
        assert m["volume"].sum() > 0.99 * rec["volume"]
    if d == date(2016, 11, 25):  # day after Thanksgiving: 13:00 close, 210 one-minute bars
        assert len(await f.bars(["SPX"], d, d, "1Min")) == 210


def test_intraday_path_properties() -> None:
    rng = np.random.default_rng(5)
    cases = [
        (100, 105, 98, 101),
        (100, 100, 95, 96),
        (100, 103, 97, 97),
        (50, 50, 50, 50),
        (10, 12, 10, 12),
    ]
    for o, h, lo, c in cases:
        p = intraday_path(o, h, lo, c, 390, rng)
        assert (p[0], p[-1], p.max(), p.min()) == (o, c, h, lo), (o, h, lo, c)
    with pytest.raises(ValueError, match="does not bracket"):
        intraday_path(100, 99, 98, 101, 390, rng)


async def test_equity_quotes(spx: History) -> None:
    f = feed_at(spx, NOW)
    assert isinstance(f, QuoteSource)
    assert isinstance(f, DataFeed)
    q = await f.quote("SPX")
    assert q.synthetic
    assert q.ask - q.bid >= Decimal("0.01")
    assert abs(float(q.mid) - f.price("SPX")) <= 0.01
    assert q.bid == q.bid.quantize(Decimal("0.01"))
    assert set(await f.latest_quotes(["SPX", "NOPE"])) == {"SPX"}
    with pytest.raises(KeyError, match="NOPE"):
        await f.quote("NOPE")


async def test_synthetic_chain_sanity(spx: History) -> None:
    f = feed_at(spx, NOW)
    ch = await f.option_chain("SPX")
    assert list(ch.columns) == list(CHAIN_COLUMNS)
    assert ch["synthetic"].all()
    assert ch.attrs["source"].startswith("synthetic")
    assert (ch["bid"] >= 0).all()
    assert (ch["bid"] < ch["ask"]).all()
    assert (ch["expiry"].dt.date >= NOW.date()).all()
    for sym, k, e, ty in zip(ch["symbol"], ch["strike"], ch["expiry"], ch["type"], strict=True):
        occ = parse_occ(sym)
        assert (float(occ.strike), occ.expiry, occ.type) == (k, e.date(), ty)
    # put-call parity of the mids, within half the two spreads (European, q = 0)
    spot, r = ch.attrs["underlying_price"], f.model.rate
    both = ch[ch.type == "call"].merge(
        ch[ch.type == "put"], on=["expiry", "strike"], suffixes=("_c", "_p")
    )
    assert len(both) > 50
    for _, row in both.iterrows():
        e, k = row["expiry"], row["strike"]
        close = datetime.combine(e.date(), datetime.min.time(), ET) + timedelta(hours=16)
        t = (close - NOW).total_seconds() / (365 * 86400)
        parity = spot - k * math.exp(-r * t)
        lhs = row["mid_c"] - row["mid_p"]
        tol = (row["ask_c"] - row["bid_c"] + row["ask_p"] - row["bid_p"]) / 2 + 1e-9
        assert abs(lhs - parity) <= tol, (e, k, spot, t, lhs, parity, tol)
    # a negative skew: OTM puts dearer in vol than OTM calls at the same distance
    near = ch[ch.expiry == ch.expiry.max()]
    assert near[near.strike < 0.9 * spot]["iv"].min() > near[near.strike > 1.1 * spot]["iv"].max()
    # the quote for one contract agrees with its chain row
    row = ch.iloc[len(ch) // 2]
    q = await f.quote(row["symbol"])
    assert (float(q.bid), float(q.ask)) == (row["bid"], row["ask"])
    assert q.synthetic


async def test_chain_filters_and_contracts(spx: History) -> None:
    f = feed_at(spx, NOW)
    ch = await f.option_chain(
        "SPX", expiry_to=date(2015, 6, 30), type="put", strike_from=2000, strike_to=2100
    )
    assert set(ch["type"]) == {"put"}
    assert ch["strike"].between(2000, 2100).all()
    assert (ch["expiry"].dt.date <= date(2015, 6, 30)).all()
    con = await f.option_contracts("SPX", expiry_to=date(2015, 6, 30))
    assert set(con["expiry"].dt.date) == set(
        (await f.option_chain("SPX", expiry_to=date(2015, 6, 30)))["expiry"].dt.date
    )
    # the July 2015 expiry: Friday July 3rd was a holiday, so the weekly moved to Thursday
    exps = set((await f.option_chain("SPX"))["expiry"].dt.date)
    assert date(2015, 7, 2) in exps
    assert date(2015, 7, 3) not in exps


async def test_expired_option_has_no_quote(spx: History) -> None:
    f = feed_at(spx, datetime(2015, 6, 12, 16, 30, tzinfo=ET))
    with pytest.raises(KeyError, match="expired"):
        await f.quote("SPX150612C02000000")


async def test_real_snapshot_then_synthetic(shared_data: Path) -> None:
    spy = load_bars_file(shared_data / "equities/yahoo_raw_2019_2023/SPY.csv")
    snap = load_chain_snapshot(shared_data / "options/SPY_2023-09-14_cboe.csv")
    assert snap.attrs["underlying_price"] == 450.81
    assert not snap["synthetic"].any()
    clock = SimClock(datetime(2023, 9, 15, 10, 0, tzinfo=ET))
    f = ReplayFeed(spy, clock, snapshots=[snap])
    ch = await f.option_chain("SPY", expiry_from=date(2023, 9, 15), expiry_to=date(2023, 9, 15))
    assert not ch["synthetic"].any()
    assert ch.attrs["source"] == "snapshot"
    raw = pd.read_csv(shared_data / "options/SPY_2023-09-14_cboe.csv")
    raw = raw[raw.expiration == "2023-09-15"]
    assert len(ch) == len(raw)
    row = raw.iloc[100]
    q = await f.quote(row["contract_symbol"])
    assert (float(q.bid), float(q.ask), q.synthetic) == (row["bid"], row["ask"], False)
    clock.set(datetime(2023, 9, 18, 10, 0, tzinfo=ET))  # snapshot too old: synthetic again
    assert (await f.option_chain("SPY"))["synthetic"].all()


def test_sample_history_labels() -> None:
    from skfolio.datasets import load_sp500_dataset

    h = sp500_stocks()
    assert len(h.symbols) == 21
    assert "SP500" in h.symbols
    assert h.synthetic["AAPL"] == {"open", "high", "low", "volume"}
    ref = load_sp500_dataset()["JPM"].dropna()
    got = h.bars[h.bars.symbol == "JPM"]
    np.testing.assert_array_equal(got["close"].to_numpy(), ref.to_numpy())
    assert (got["high"] >= got[["open", "close"]].max(axis=1)).all()
    assert (got["low"] <= got[["open", "close"]].min(axis=1)).all()
    spx = sp500_index_ohlcv()
    assert "SPX" not in spx.synthetic  # arch's data is real OHLCV


def test_user_files(tmp_path: Path) -> None:
    p = tmp_path / "abc.csv"
    p.write_text(
        "Date,Open,High,Low,Close,Volume\n2024-01-03,10,11,9.5,10.5,100\n"
        "2024-01-02,9,10.2,8.8,10,200\n"
    )
    h = load_bars_file(p)
    assert h.symbols == ["ABC"]
    assert h.bars["close"].tolist() == [10.0, 10.5]
    assert h.bars["timestamp"].iloc[0] == pd.Timestamp("2024-01-02 05:00", tz="UTC")
    bad = tmp_path / "bad.csv"
    bad.write_text("date,open,high,low,close\n2024-01-02,1,2,1,1\n")
    with pytest.raises(ValueError, match=r"missing column.*volume"):
        load_bars_file(bad)
    bad.write_text("date,open,high,low,close,volume\n2024-01-02,1,1.5,1,2,5\n")
    with pytest.raises(ValueError, match="'high' on 2024-01-02 does not bracket"):
        load_bars_file(bad)
    bad.write_text("date,open,high,low,close,volume\n2024-01-02,1,2,-1,1,5\n")
    with pytest.raises(ValueError, match="'low' on 2024-01-02: must be a positive"):
        load_bars_file(bad)


def test_user_parquet(tmp_path: Path) -> None:
    pq = tmp_path / "x.parquet"
    pd.DataFrame(
        {
            "date": ["2024-01-02"],
            "open": [1.0],
            "high": [2.0],
            "low": [0.5],
            "close": [1.5],
            "volume": [10],
            "symbol": ["XYZ"],
        }
    ).to_parquet(pq)
    assert load_bars_file(pq).symbols == ["XYZ"]


async def test_a_crossed_recorded_quote_is_left_out_and_the_others_quoted(spx: History) -> None:
    # A recorded snapshot row bid 2.00 > ask 1.50 is no usable quote: latest_quotes leaves that
    # contract out (as the Alpaca feed drops a crossed quote) and still quotes the rest.
    from v28quant.data.base import chain_frame

    now = datetime(2015, 6, 10, 10, 5, tzinfo=ET)
    rows = [
        {
            "symbol": sym,
            "underlying": "SPX",
            "expiry": "2015-06-19",
            "strike": k,
            "type": "call",
            "bid": bid,
            "ask": ask,
        }
        for sym, k, bid, ask in (
            ("SPX150619C02100000", 2100.0, 2.0, 1.5),
            ("SPX150619C02110000", 2110.0, 1.0, 1.2),
        )
    ]
    f = ReplayFeed(spx, SimClock(now), snapshots=[chain_frame(rows, as_of=now)])
    got = await f.latest_quotes(["SPX", "SPX150619C02100000", "SPX150619C02110000"])
    assert set(got) == {"SPX", "SPX150619C02110000"}
    assert (got["SPX150619C02110000"].bid, got["SPX150619C02110000"].ask) == (
        Decimal("1.0"),
        Decimal("1.2"),
    )
