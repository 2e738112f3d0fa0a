"""Smoke test of the offline tour (``python -m v28quant.demo``).

Independent facts: a cash-secured put sold for premium ``p`` adds ``100 p`` to cash (one
contract is 100 shares); its OCC symbol names a put below the quoted spot; the journal holds the
order's intent before the venue's answer (read with sqlite3, not through the journal's code).
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from v28quant import demo
from v28quant.occ import parse_occ


@pytest.mark.slow
def test_demo_sells_one_journaled_put(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.sqlite"
    demo.main(["--underlying", "AAPL", "--session", "2022-06-15", "--journal", str(path)])
    out = capsys.readouterr().out
    for section in ("CAPM", "GARCH(1,1)", "SVI surface", "Heston calibrated", "four ways"):
        assert section in out, out

    con = sqlite3.connect(str(path))
    try:
        orders = con.execute("SELECT client_order_id, request, status FROM orders").fetchall()
        assert len(orders) == 1, orders
        cid, request, status = orders[0]
        events = con.execute(
            "SELECT status FROM order_events WHERE client_order_id = ? ORDER BY id", (cid,)
        ).fetchall()
    finally:
        con.close()
    assert cid.startswith("v28-options-"), cid
    assert status == "filled", orders
    assert [e[0] for e in events] == ["intent", "filled"], events

    req = json.loads(request)
    occ = parse_occ(req["symbol"])
    assert occ.root == "AAPL"
    assert not occ.call
    assert (req["side"], req["intent"], req["qty"]) == ("sell", "sell_to_open", "1")
    spot = Decimal(re.search(r"AAPL quote ([\d.]+) / ([\d.]+)", out).group(1))
    assert occ.strike < spot, (occ, spot)

    cash = Decimal(re.search(r"cash ([\d.]+),", out).group(1))
    assert cash == Decimal(100_000) + 100 * Decimal(req["limit_price"]), (cash, req)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--underlying", "ZZZ"], "error: --underlying ZZZ: not a stock of the bundled sample"),
        (["--underlying", "VIX"], "error: --underlying VIX: not a stock of the bundled sample"),
        (["--session", "junk"], "error: --session: not a date (YYYY-MM-DD): 'junk'"),
        # 2022-06-18 is a Saturday (any calendar); the sample's stocks end on 2022-12-28
        (["--session", "2022-06-18"], "error: --session 2022-06-18: not a trading session"),
        (["--session", "2030-01-02"], "error: --session 2030-01-02: outside the bundled history"),
    ],
)
def test_a_bad_argument_is_one_line_and_trades_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    path = tmp_path / "journal.sqlite"
    with pytest.raises(SystemExit) as exit_:
        demo.main([*argv, "--journal", str(path)])
    assert exit_.value.code == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith(line), err
    assert not path.exists()


@pytest.mark.slow
def test_the_default_journal_leaves_no_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    demo.main(["--underlying", "AAPL", "--session", "2022-06-15"])
    assert "sell_to_open 1" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_a_journal_it_cannot_keep_is_one_line_before_the_tour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("my notes\n")
    for path in (tmp_path / "no-such-folder" / "journal.sqlite", not_sqlite):
        with pytest.raises(SystemExit) as exit_:
            demo.main(["--journal", str(path)])
        assert exit_.value.code == 2
        captured = capsys.readouterr()
        (err,) = captured.err.splitlines()
        assert err.startswith(f"error: --journal: journal {path} "), err
        assert "== CAPM" not in captured.out  # said before the tour, not after it
    assert not (tmp_path / "no-such-folder").exists()
    assert not_sqlite.read_text() == "my notes\n"
