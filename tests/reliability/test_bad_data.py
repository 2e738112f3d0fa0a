"""Bad data for one symbol: its cycle is skipped with a logged reason, nothing traded on it.

A keyless paper ``--once`` (pre-market job and one cycle of each engine on the simulated
exchange) with the venue's data feed wrapped so each poisoned symbol gets one kind of garbage:
NaN, zero or negative prices in its bars, a quote of zero price or with no size, a crossed or an
empty option chain. A clean symbol in the same run must still trade (the run is not merely
idle). Independent reference: the journal read with ``sqlite3`` and the log file's text.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import v28quant.runner_setup as runner_setup
from v28quant.equity.data_checks import unusable_data
from v28quant.quotes import Quote
from v28quant.runner_setup import build_and_run

# symbol -> what its data becomes
POISON = {
    "AAPL": "bars_nan",
    "JPM": "bars_negative",
    "MSFT": "quote_zero",
    "XOM": "quote_no_size",
}
CLEAN = "JNJ"
CHAIN_POISON = {"AAPL": "chain_crossed", "MSFT": "chain_empty"}


class PoisonedFeed:
    """Delegates to a real feed and corrupts the poisoned symbols' data."""

    def __init__(self, feed: Any) -> None:
        self._feed = feed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._feed, name)

    async def bars(self, symbols: list[str], *args: Any, **kw: Any) -> pd.DataFrame:
        df = await self._feed.bars(symbols, *args, **kw)
        df = df.copy()
        for sym, kind in POISON.items():
            rows = df["symbol"] == sym
            if not rows.any():
                continue
            last = df.index[rows][-5:]
            cols = ["open", "high", "low", "close"]
            if kind == "bars_nan":
                df.loc[last, cols] = np.nan
            elif kind == "bars_negative":
                df.loc[last, cols] = -df.loc[last, cols].abs()
                df.loc[df.index[rows][-6], cols] = 0.0
        return df

    async def latest_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        quotes = dict(await self._feed.latest_quotes(symbols))
        for sym, q in list(quotes.items()):
            kind = POISON.get(sym)
            if kind == "quote_zero":
                quotes[sym] = Quote(sym, q.bid * 0, q.ask * 0, q.ts, 100, 100, q.synthetic)
            elif kind == "quote_no_size":
                quotes[sym] = Quote(sym, q.bid, q.ask, q.ts, 0, 0, synthetic=False)
        return quotes

    async def quote(self, symbol: str) -> Quote:
        return (await self.latest_quotes([symbol]))[symbol]

    async def option_chain(self, underlying: str, *args: Any, **kw: Any) -> pd.DataFrame:
        df = await self._feed.option_chain(underlying, *args, **kw)
        kind = CHAIN_POISON.get(underlying)
        if kind == "chain_empty":
            return df.iloc[0:0]
        if kind == "chain_crossed" and len(df):
            df = df.copy()
            df["bid"], df["ask"] = df["ask"] + 1.0, df["bid"]
        return df


def test_poisoned_symbols_are_skipped_and_the_clean_one_trades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tally: Counter[str]
) -> None:
    for k in list(os.environ):
        if k.startswith(("APCA_", "V28_", "DISCORD_")):
            monkeypatch.delenv(k)
    real_open = runner_setup.open_venue

    def open_poisoned(*args: Any, **kw: Any) -> Any:
        venue = real_open(*args, **kw)
        venue.feed = PoisonedFeed(venue.feed)
        return venue

    monkeypatch.setattr(runner_setup, "open_venue", open_poisoned)
    # build_and_run sets V28_CONFIG itself: registered here so the test restores it
    monkeypatch.setenv("V28_CONFIG", "v28.toml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v28.toml").write_text(
        "[paper]\nmin_confidence = 0.0\n[equity]\nmin_trade_weight = 0.0\n"
    )
    journal = tmp_path / "j.sqlite"
    universe = ",".join([*POISON, CLEAN])
    argv = ["--mode", "paper", "--once", "--config", "v28.toml", "--universe", universe]
    tally["bad_data"] += len(POISON) + len(CHAIN_POISON)
    assert build_and_run([*argv, "--journal", str(journal)]) == 0
    db = sqlite3.connect(str(journal))
    traded: dict[str, set[str]] = {}
    for engine, text in db.execute("SELECT engine, request FROM orders"):
        req = json.loads(text)
        legs = [leg["occ_symbol"] for leg in req.get("legs") or []] or [req["symbol"]]
        # an OCC symbol is its root followed by 15 characters
        traded.setdefault(engine, set()).update(s[:-15].strip() if len(s) > 15 else s for s in legs)
    db.close()
    assert CLEAN in traded.get("equity", set()), f"the clean symbol did not trade: {traded}"
    on_poison = traded.get("equity", set()) & set(POISON)
    assert not on_poison, f"equity engine traded on bad data: {on_poison}"
    on_bad_chain = traded.get("options", set()) & set(CHAIN_POISON)
    assert not on_bad_chain, f"options engine traded on a crossed or empty chain: {on_bad_chain}"
    log = next(tmp_path.rglob("v28quant.log")).read_text()
    unexplained = [
        s for s in POISON if not any(s in ln and "skip" in ln for ln in log.splitlines())
    ]
    assert not unexplained, f"no logged reason for skipping {unexplained}"


T = pd.Timestamp("2024-06-03 14:30", tz="UTC").to_pydatetime()
GOOD = pd.DataFrame({"X": np.linspace(100.0, 101.0, 40)})
NAN_LAST = GOOD.assign(X=[*[100.0] * 39, np.nan])
NEG_LAST = GOOD.assign(X=[*[100.0] * 39, -1.0])
OK = Quote("X", Decimal(100), Decimal(101), T, 5, 5)


@pytest.mark.parametrize(
    ("quote", "closes", "reason"),
    [
        (None, GOOD, "no quote"),
        (Quote("X", Decimal(0), Decimal(0), T, 10, 10), GOOD, "not positive"),
        (Quote("X", Decimal(100), Decimal(101), T, 0, 5), GOOD, "no size"),
        (OK, NAN_LAST, "NaN"),
        (OK, NEG_LAST, "negative"),
        (OK, GOOD, None),
        (Quote("X", Decimal(100), Decimal(101), T, 0, 0, synthetic=True), GOOD, None),
    ],
)
def test_unusable_data_names_the_reason(
    quote: Quote | None, closes: pd.DataFrame, reason: str | None
) -> None:
    got = unusable_data("X", quote, closes)
    assert (got is None) if reason is None else (got is not None and reason in got)
