"""A backtest session decides and fills on data dated at or before each of its cycles.

One keyless backtest session (2022-12-21, AAPL and JPM, both engines trading), run twice: on the
bundled history, and on the same history with every bar after that session scrambled (prices
x 1.7). Nothing the session journaled may change: a model, feature, signal, quote or fill that
read a later bar would.

Independent references: the journal files read with ``sqlite3``; the recorded daily bars of the
bundled history; the exchange's regular close (16:00 New York); and the replay feed asked, on its
own clock, for the daily bars at the cycle's time, from whose partial bar the fill is priced by
hand: the ask is the last price plus half of ``spread_bps`` (a half cent at least) rounded up
to a cent, paid with ``slippage_bps`` on top.
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from v28quant.backtest import run_backtest
from v28quant.calendar import ET
from v28quant.clock import SimClock
from v28quant.data import samples
from v28quant.data.replay import ReplayFeed
from v28quant.data.samples import History

SESSION = date(2022, 12, 21)
PREVIOUS_CLOSE = datetime(2022, 12, 20, 16, 0, tzinfo=ET)
UNIVERSE = ["AAPL", "JPM"]
SPREAD_BPS, SLIPPAGE_BPS = 4.0, 2.0  # [backtest] of the defaults
TABLES = {
    "signals": "SELECT ts, model, symbol, value, confidence FROM signals",
    "aggregates": "SELECT ts, data_ts, symbol, value, confidence, contributions FROM aggregates",
    "decisions": "SELECT ts, engine, strategy, symbol, action, reasoning FROM decisions",
    "fills": "SELECT client_order_id, symbol, qty, price, side, ts FROM fills",
}


def _rows(path: Path, sql: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(str(path))
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql).fetchall()]
    finally:
        db.close()


def _scrambled_after(history: History, day: date) -> History:
    bars = history.bars.copy()
    later = (bars["timestamp"].dt.tz_convert(ET).dt.date > day).to_numpy()
    for c in ("open", "high", "low", "close"):
        bars.loc[later, c] = bars.loc[later, c] * 1.7
    return History(bars, source=history.source, synthetic=history.synthetic)


def _backtest(root: Path) -> Path:
    root.mkdir()
    cfg = root / "v28.toml"
    cfg.write_text(
        f'[runner]\nmodel_dir = "{root / "models"}"\nruns_dir = "{root / "runs"}"\n'
        "[aggregator]\nmin_confidence = 0.0\n"  # both engines trade on the first day
    )
    result = run_backtest(
        cfg, SESSION, SESSION, UNIVERSE, journal=root / "journal.sqlite", report_dir=root / "r"
    )
    return result.journal_path


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("no-look-ahead")
    plain = _backtest(root / "plain")
    recorded = samples.sample_history()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(samples, "sample_history", lambda: _scrambled_after(recorded, SESSION))
        scrambled = _backtest(root / "scrambled")
    return plain, scrambled


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_session_journals_the_same_whatever_follows_it(
    journals: tuple[Path, Path], table: str
) -> None:
    plain, scrambled = journals
    # sorted: engines working at the same time journal in either order
    rows = sorted(_rows(plain, TABLES[table]), key=repr)
    assert rows, f"the session journaled no {table}"
    assert sorted(_rows(scrambled, TABLES[table]), key=repr) == rows


def test_each_cycle_reads_the_signals_of_the_last_close(journals: tuple[Path, Path]) -> None:
    plain, _ = journals
    signals = {
        (s["model"], s["symbol"], s["ts"]): s["value"]
        for s in _rows(plain, "SELECT model, symbol, ts, value FROM signals")
    }
    cycles = [
        a
        for a in _rows(plain, "SELECT ts, data_ts, symbol, contributions FROM aggregates")
        if datetime.fromisoformat(a["ts"]).astimezone(ET).date() == SESSION
    ]
    assert {a["symbol"] for a in cycles} == set(UNIVERSE)
    for a in cycles:
        cycle, data = datetime.fromisoformat(a["ts"]), datetime.fromisoformat(a["data_ts"])
        assert cycle.astimezone(ET).time() < time(16), a  # a cycle before today's close ...
        assert data == PREVIOUS_CLOSE, a  # ... reads yesterday's, not today's
        used = json.loads(a["contributions"])
        assert used, a
        for model, c in used.items():
            assert c["value"] == signals[(model, a["symbol"], a["data_ts"])], (model, a)


def test_signals_are_dated_at_or_before_the_cycle_that_journals_them(
    journals: tuple[Path, Path],
) -> None:
    plain, _ = journals
    cycle = datetime.combine(SESSION, time(9, 45), ET)
    equity = {"capm", "garch", "hmm", "manifold", "sac", "stacked_ensemble", "xgboost"}
    for s in _rows(plain, "SELECT model, symbol, ts FROM signals"):
        ts = datetime.fromisoformat(s["ts"])
        if s["symbol"].endswith(":IV"):  # the options engine's, from the chain at its cycle
            assert ts.astimezone(ET).date() == SESSION, s
            assert ts.astimezone(ET).time() < time(16), s
        elif s["model"] in equity and ts < cycle:
            assert ts == PREVIOUS_CLOSE, s


def _day_bar(history: History, symbol: str, day: date) -> pd.Series:
    b = history.bars[history.bars["symbol"] == symbol]
    return b[(b["timestamp"].dt.tz_convert(ET).dt.date == day).to_numpy()].iloc[0]


async def test_an_equity_fill_pays_the_quote_of_its_decision_time(
    journals: tuple[Path, Path],
) -> None:
    plain, _ = journals
    orders = {
        o["client_order_id"]: o["intent_ts"]
        for o in _rows(plain, "SELECT client_order_id, intent_ts FROM orders")
    }
    stock = [f for f in _rows(plain, TABLES["fills"]) if len(f["symbol"]) <= 15]
    assert stock, "the equity engine bought nothing"
    history = samples.sample_history()
    for f in stock:
        t = datetime.fromisoformat(f["ts"])
        assert f["ts"] == orders[f["client_order_id"]], f  # filled when decided, 09:45
        feed = ReplayFeed(history, SimClock(t), equity_spread_bps=SPREAD_BPS)
        bars = await feed.bars([f["symbol"]], date(2022, 12, 1), date(2023, 1, 31))
        today, recorded = bars.iloc[-1], _day_bar(history, f["symbol"], SESSION)
        assert today["timestamp"].tz_convert(ET).date() == SESSION  # nothing after today
        last = float(today["close"])  # the price at the cycle: today's bar is partial
        assert today["open"] == recorded["open"]
        assert recorded["low"] <= today["low"] <= last <= today["high"] <= recorded["high"]
        assert last != recorded["close"]  # not the close, known only at 16:00
        ask = math.ceil(round((last + max(0.005, last * SPREAD_BPS / 2e4)) * 100, 6)) / 100
        paid = ask * (1 + SLIPPAGE_BPS / 1e4)
        assert float(f["price"]) == pytest.approx(paid, abs=1e-9), (f, last)
        assert f["side"] == "buy"
        assert float(f["price"]) >= recorded["low"]  # never better than any trade of the day
