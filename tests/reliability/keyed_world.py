"""A keyed paper world on loopback: the fake trading and data APIs, a fake Discord, real bars.

``KeyedWorld`` starts the three fakes with real daily bars from ``shared/data``
(yf_adjusted_2019_2025, up to the session before the fake's 2024-06-03), points the environment
at them (the runner then builds the real alpaca-py clients), and runs ``--once`` through
``build_and_run``. The checks the broker-fault tests share read the fakes' own records: which
client order ids the venue accepted, and how often.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes.alpaca_data import FakeAlpacaData, bars_from_csv, contracts_from_snapshots
from fakes.alpaca_trading import FakeAlpacaTrading
from fakes.discord import FakeDiscord
from fakes.fixtures import OPEN, point_runner_at_fakes
from v28quant.alpaca.config import AlpacaConfig
from v28quant.runner_setup import build_and_run

SYMBOLS = ("AAPL", "JPM", "MSFT")
KEY, SECRET = "PKFAULTKEY0001", "fault-secret-value"
#: Per-request timeout the runner's Alpaca clients get here (seconds; production uses 10).
TIMEOUT_S = 1.0


def quote_json(price: float, t: str = "2024-06-03T14:29:59Z") -> dict[str, Any]:
    """Return one latest-quote record in Alpaca's JSON shape around ``price``."""
    return {
        "t": t,
        "ap": round(price + 0.01, 2),
        "as": 50,
        "bp": round(price - 0.01, 2),
        "bs": 50,
        "ax": "V",
        "bx": "V",
        "c": ["R"],
        "z": "A",
    }


@dataclasses.dataclass
class KeyedWorld:
    """The fakes and the run folder of one test."""

    trading: FakeAlpacaTrading
    data: FakeAlpacaData
    discord: FakeDiscord
    folder: Path
    symbols: tuple[str, ...]

    def run_once(self) -> int:
        """Run ``--once`` (keyed paper) and return its exit status."""
        argv = ["--mode", "paper", "--once", "--config", "v28.toml"]
        argv += ["--universe", ",".join(self.symbols), "--journal", str(self.journal)]
        return build_and_run(argv)

    @property
    def journal(self) -> Path:
        """Return the journal's path."""
        return self.folder / "j.sqlite"

    def log(self) -> str:
        """Return the run log's text."""
        return (self.folder / "logs" / "v28quant.log").read_text()

    def accepted(self) -> Counter[str]:
        """Return how often the venue accepted (2xx) a POST of each client order id."""
        return Counter(
            body["client_order_id"]
            for method, path, status, body in self.trading.responses
            if method == "POST" and path == "/v2/orders" and status < 300
        )

    def duplicated(self) -> int:
        """Return the orders the venue holds beyond one per client order id."""
        held = Counter(o["client_order_id"] for o in self.trading.orders.values())
        return sum(n - 1 for n in held.values() if n > 1) + sum(
            n - 1 for n in self.accepted().values() if n > 1
        )

    def rows_lost(self) -> list[str]:
        """Return client order ids the venue holds that the journal has no row for."""
        if not self.journal.exists():
            return sorted(o["client_order_id"] for o in self.trading.orders.values())
        db = sqlite3.connect(str(self.journal))
        try:
            rows = {r[0] for r in db.execute("SELECT client_order_id FROM orders")}
        finally:
            db.close()
        return sorted(
            o["client_order_id"]
            for o in self.trading.orders.values()
            if o["client_order_id"] not in rows
        )

    def journal_statuses(self) -> dict[str, str]:
        """Return each journaled order's status by client order id."""
        db = sqlite3.connect(str(self.journal))
        try:
            return dict(db.execute("SELECT client_order_id, status FROM orders").fetchall())
        finally:
            db.close()

    def notices(self) -> str:
        """Return every notice Discord received, as one text."""
        return "\n".join(json.dumps(b) for b in self.discord.received)


def load_bars(shared_data: Path, symbols: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return bars and latest quotes (at the last close) of ``symbols`` and SPY."""
    folder = shared_data / "equities" / "yf_adjusted_2019_2025"
    bars, quotes = {}, {}
    for sym in (*symbols, "SPY"):
        bars[sym] = bars_from_csv(folder / f"{sym}.csv", end="2024-05-31")
        quotes[sym] = quote_json(bars[sym][-1]["c"])
    return bars, quotes


@contextmanager
def keyed_world(
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    symbols: tuple[str, ...] = SYMBOLS,
    bars: dict[str, Any] | None = None,
    quotes: dict[str, Any] | None = None,
    *,
    now: datetime = OPEN,
    option_snapshots: dict[str, dict[str, dict]] | None = None,
    config: str = "",
    cash: int = 100_000,
    rate_limit: int = 10_000,
) -> Iterator[KeyedWorld]:
    """Start the fakes and point the environment at them (see the module docstring).

    ``now`` is the venue's time, ``option_snapshots`` (underlying -> OCC -> snapshot) the
    chains the data fake serves, 1,000 a page as Alpaca does, ``config`` more TOML for the
    run's settings file and ``cash`` the account's. ``rate_limit`` is the account's requests
    per minute: Algo Trader Plus' by default, so a fault test waits on its faults, not on the
    limiter (the load test runs at the standard 200).
    """
    if bars is None or quotes is None:
        bars, quotes = load_bars(shared_data, symbols)
    trading = FakeAlpacaTrading(now=now, cash=Decimal(cash)).start()
    chains = option_snapshots or {}
    try:
        for sym, q in quotes.items():
            trading.set_quote(sym, str(q["bp"]), str(q["ap"]), 10_000, 10_000)
        for chain in chains.values():  # the trading fake values and fills what it has quotes of
            for occ, snap in chain.items():
                trading.set_quote(
                    occ, str(snap["latestQuote"]["bp"]), str(snap["latestQuote"]["ap"])
                )
        with (
            FakeAlpacaData(
                bars=bars,
                quotes=quotes,
                option_snapshots=chains,
                contracts=contracts_from_snapshots(chains),
                page_size=1000 if chains else 10_000,
                now=now,
            ) as data,
            FakeDiscord() as disc,
        ):
            point_runner_at_fakes(monkeypatch, trading.url, data.url, KEY, SECRET)
            monkeypatch.setenv("DISCORD_WEBHOOK_URL", disc.webhook_url)
            monkeypatch.setenv("V28_ALPACA_RATE_LIMIT", str(rate_limit))
            monkeypatch.setenv("V28_CONFIG", "v28.toml")  # build_and_run sets it; restored
            real = AlpacaConfig.from_settings.__func__  # type: ignore[attr-defined]

            def quick(cls: type[AlpacaConfig], *a: Any, **kw: Any) -> AlpacaConfig:
                cfg = real(cls, *a, **kw)
                return dataclasses.replace(cfg, timeout_s=TIMEOUT_S, backoff_s=0.05)

            monkeypatch.setattr(AlpacaConfig, "from_settings", classmethod(quick))
            monkeypatch.chdir(folder)
            (folder / "v28.toml").write_text(
                "[paper]\nmin_confidence = 0.0\n[equity]\nmin_trade_weight = 0.0\n"
                'market_symbol = "SPY"\n' + config
            )
            yield KeyedWorld(trading, data, disc, folder, symbols)
    finally:
        trading.stop()
