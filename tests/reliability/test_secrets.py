"""No secret leaks: every log, journal, report, notice and console line a run produces is clean.

Two real runs of ``run_v28_production.py`` as child processes, their secrets given in ``.env``:
a keyed paper ``--once`` against the loopback Alpaca fakes (real alpaca-py clients) and a keyless
simulated paper day; both with ``DISCORD_WEBHOOK_URL`` pointed at the fake Discord. Then every
file under the run folder (SQLite journals dumped row by row, logs, reports, model store), the
console output and every notice Discord received are searched for the API key, the secret, the
webhook URL and its token, each raw, URL-encoded and JSON-escaped.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pandas as pd
import pytest
import v28quant
from fakes.alpaca_data import FakeAlpacaData, bars_from_csv
from fakes.discord import FakeDiscord

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET = "PKLEAKPROBE77", "leak/probe+secret=value&x"
SYMBOLS = ("AAPL", "JPM", "MSFT")


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def _texts(folder: Path) -> Iterator[tuple[str, str]]:
    """Yield (name, text) for every file: SQLite files dumped, others decoded leniently."""
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name.endswith(("-wal", "-shm")):
            continue
        raw = p.read_bytes()
        if raw.startswith(b"SQLite format 3\x00"):
            db = sqlite3.connect(str(p))
            yield str(p), "\n".join(db.iterdump())
            db.close()
        else:
            yield str(p), raw.decode("utf-8", errors="replace")
            # binary files (pickles, PNGs) may hold a secret as latin-1 bytes too
            yield f"{p} (latin-1)", raw.decode("latin-1")


def _run(argv: list[str], cwd: Path, dotenv: str) -> str:
    (cwd / ".env").write_text(dotenv)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "V28_", "DISCORD_"))}
    env["PYTHONPATH"] = str(Path(v28quant.__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, str(ROOT / "run_v28_production.py"), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (cwd / ".env").unlink()  # the one file allowed to hold the secrets
    return out.stdout + out.stderr


def _leaks(folder: Path, extra: list[tuple[str, str]], secrets: list[str], tally: Counter[str]):
    forms = set().union(*(_forms(s) for s in secrets))
    hits = []
    for name, text in [*_texts(folder), *extra]:
        tally["files_scanned"] += 1
        hits += [(name, f) for f in forms if f in text]
    tally["leaks"] += len(hits)
    return hits


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


def test_keyed_paper_once_leaks_nothing(
    shared_data: Path, fake_trading, tmp_path: Path, tally: Counter[str]
) -> None:
    folder = shared_data / "equities" / "yf_adjusted_2019_2025"
    bars, quotes = {}, {}
    for sym in (*SYMBOLS, "SPY"):
        bars[sym] = bars_from_csv(folder / f"{sym}.csv", end="2024-05-31")
        last = float(
            pd.read_csv(folder / f"{sym}.csv").query("date <= '2024-05-31'")["close"].iloc[-1]
        )
        quotes[sym] = _quote(last)
        fake_trading.set_quote(sym, f"{last - 0.01:.2f}", f"{last + 0.01:.2f}", 10_000, 10_000)
    (tmp_path / "v28.toml").write_text(
        '[paper]\nmin_confidence = 0.0\n[equity]\nmin_trade_weight = 0.0\nmarket_symbol = "SPY"\n'
    )
    with (
        FakeAlpacaData(bars=bars, quotes=quotes, now=fake_trading.now) as data,
        FakeDiscord() as dc,
    ):
        dotenv = (
            f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY='{SECRET}'\n"
            f"APCA_API_BASE_URL={fake_trading.url}\nAPCA_API_DATA_URL={data.url}\n"
            f"DISCORD_WEBHOOK_URL={dc.webhook_url}\n"
        )
        console = _run(
            [
                "--mode",
                "paper",
                "--once",
                "--config",
                "v28.toml",
                "--universe",
                ",".join(SYMBOLS),
                "--journal",
                str(tmp_path / "j.sqlite"),
            ],
            tmp_path,
            dotenv,
        )
        notices = [("discord", json.dumps(m)) for m in dc.received]
        hook = dc.webhook_url
    # the run used the secrets: the venue saw the key, orders went through
    assert any(m == "POST" and p == "/v2/orders" for m, p, _ in fake_trading.requests)
    secrets = [KEY, SECRET, hook, hook.rsplit("/", 1)[1]]
    hits = _leaks(tmp_path, [("console", console), *notices], secrets, tally)
    assert hits == [], hits


@pytest.mark.slow
def test_keyless_paper_day_with_notices_leaks_nothing(tmp_path: Path, tally: Counter[str]) -> None:
    (tmp_path / "v28.toml").write_text("[paper]\nmin_confidence = 0.0\n")
    with FakeDiscord() as dc:
        console = _run(
            ["--mode", "paper", "--days", "1", "--config", "v28.toml", "--universe", "AAPL,JPM"],
            tmp_path,
            f"DISCORD_WEBHOOK_URL={dc.webhook_url}\n",
        )
        notices = [("discord", json.dumps(m)) for m in dc.received]
        hook = dc.webhook_url
    assert list(tmp_path.rglob("report.html")), "the keyless day wrote no report"
    hits = _leaks(tmp_path, [("console", console), *notices], [hook, hook.rsplit("/", 1)[1]], tally)
    assert hits == [], hits


def test_the_scan_finds_a_planted_secret(tmp_path: Path) -> None:
    """The scanner itself: a secret planted URL-encoded in a log and raw in a journal is found."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "x.log").write_text(f"GET /?k={quote(SECRET, safe='')}\n")
    db = sqlite3.connect(str(tmp_path / "j.sqlite"))
    db.execute("CREATE TABLE t (x TEXT)")
    db.execute("INSERT INTO t VALUES (?)", (f"key={KEY}",))
    db.commit()
    db.close()
    hits = _leaks(tmp_path, [], [KEY, SECRET], Counter())
    assert {h[1] for h in hits} == {quote(SECRET, safe=""), KEY}
