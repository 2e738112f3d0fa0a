"""``--once`` in keyed paper mode against the loopback fakes with the real alpaca-py clients.

Independent reference: the fake exchange's own record of the requests it received (which order
ids it was sent, and how many times), and Alpaca's client-order-id convention of DESIGN.md
(``v28-<engine>-...``). Real daily bars from ``shared/data`` (yf_adjusted_2019_2025) feed the
models; the fake's clock (2024-06-03 10:30 New York) is the runner's clock.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fakes.alpaca_data import FakeAlpacaData, bars_from_csv
from fakes.fixtures import point_runner_at_fakes
from v28quant.runner_setup import build_and_run

SYMBOLS = ("AAPL", "JPM", "MSFT")


def _quote(price: float) -> dict[str, object]:
    return {
        "t": "2024-06-03T14:29:59Z",
        "ap": round(price + 0.01, 2),
        "as": 50,
        "bp": round(price - 0.01, 2),
        "bs": 50,
        "ax": "V",
        "bx": "V",
        "c": ["R"],
        "z": "A",
    }


@pytest.fixture
def fakes(shared_data: Path, fake_trading, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    folder = shared_data / "equities" / "yf_adjusted_2019_2025"
    bars, quotes = {}, {}
    for sym in (*SYMBOLS, "SPY"):
        bars[sym] = bars_from_csv(folder / f"{sym}.csv", end="2024-05-31")
        last = float(
            pd.read_csv(folder / f"{sym}.csv").query("date <= '2024-05-31'")["close"].iloc[-1]
        )
        quotes[sym] = _quote(last)
        fake_trading.set_quote(sym, f"{last - 0.01:.2f}", f"{last + 0.01:.2f}", 10_000, 10_000)
    with FakeAlpacaData(bars=bars, quotes=quotes, now=fake_trading.now) as data:
        point_runner_at_fakes(monkeypatch, fake_trading.url, data.url)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "v28.toml").write_text(
            "[paper]\nmin_confidence = 0.0\n[equity]\nmin_trade_weight = 0.0\n"
            'market_symbol = "SPY"\n'
        )
        yield fake_trading, data


def _posted(fake) -> list[str]:
    return [
        body["client_order_id"]
        for method, path, body in fake.requests
        if method == "POST" and path == "/v2/orders"
    ]


def test_once_places_equity_orders_then_a_restart_sends_no_duplicate(fakes, tmp_path: Path) -> None:
    trading, _ = fakes
    argv = [
        "--mode",
        "paper",
        "--once",
        "--config",
        "v28.toml",
        "--universe",
        ",".join(SYMBOLS),
        "--journal",
        str(tmp_path / "j.sqlite"),
    ]
    assert build_and_run(argv) == 0
    first = _posted(trading)
    equity = [c for c in first if c.startswith("v28-equity-aggregate-")]
    assert equity, f"no equity-engine order reached the venue: {first}"
    assert len(set(first)) == len(first)
    log = (tmp_path / "logs" / "v28quant.log").read_text()
    assert "test-secret-value" not in log
    assert "PKTESTKEY0001" not in log
    assert f"Alpaca paper at {trading.url}" in log
    # a restart in the same slot reconciles and resends nothing
    assert build_and_run(argv) == 0
    assert _posted(trading) == first
