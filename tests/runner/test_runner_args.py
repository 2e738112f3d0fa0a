"""Bad arguments end in one clear line and a non-zero exit, never a traceback.

Independent reference: the exchange calendar (2022-06-11 is a Saturday, 2022-07-04 Independence
Day) and the bundled sample history's range (skfolio's stocks end on 2022-12-28).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import v28quant
from v28quant.journal import Journal

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "V28_", "DISCORD_"))}
    env["PYTHONPATH"] = str(Path(v28quant.__file__).resolve().parents[1])
    return subprocess.run(
        [sys.executable, str(ROOT / "run_v28_production.py"), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--mode", "paper", "--universe", "TSLA"], "unknown symbol(s) TSLA"),
        (["--mode", "paper", "--universe", "VIX,SPX,AAPL"], "VIX, SPX is an index, not tradable"),
        (["--mode", "paper", "--journal", "."], "is a directory"),
        (["--mode", "backtest", "--from", "garbage"], "--from: not a date (YYYY-MM-DD): 'garbage'"),
        (
            ["--mode", "backtest", "--from", "2022-06-11", "--to", "2022-06-30"],
            "not a trading session",
        ),
        (
            ["--mode", "backtest", "--from", "2022-07-04", "--to", "2022-07-08"],
            "not a trading session",
        ),
        (
            ["--mode", "backtest", "--from", "2030-01-02", "--to", "2030-02-01"],
            "outside the bundled",
        ),
        (["--mode", "backtest", "--from", "2022-06-01", "--to", "2022-05-02"], "is after --to"),
        # no --from given: the error must not blame one on the user
        (
            ["--mode", "backtest", "--to", "1991-06-03"],
            "error: --from (not given: a year before --to) 1990-06-04: outside the bundled",
        ),
        (["--mode", "live"], "APCA_API_KEY_ID"),
        (["--mode", "paper", "--days", "0"], "--days: must be >= 1"),
        (["--mode", "bogus"], "invalid choice: 'bogus'"),
        (["--mode", "paper", "--config", "missing.toml"], "no such file"),
        (["--mode", "backtest", "--tune-off-hours"], "--tune-off-hours: not with --mode backtest"),
        (["--mode", "paper", "--once", "--days", "100000"], "--days: not with --once"),
    ],
)
def test_bad_argument_is_one_line(tmp_path: Path, args: list[str], expect: str) -> None:
    out = _run(*args, tmp=tmp_path)
    assert out.returncode == 2, (args, out.stdout[-2000:], out.stderr[-2000:])
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, (args, out.stderr)
    assert expect in lines[0], (args, out.stderr)
    assert "Traceback" not in out.stdout + out.stderr


def _usable_sessions() -> tuple[int, str, str]:
    """Count, from the bundled bars themselves, the days every default symbol traded.

    The default keyless universe is the sample's 20 stocks with the market proxy SP500; the
    runner fits on the first 300 of those sessions, so the rest can be replayed.
    """
    from v28quant.calendar import ET
    from v28quant.data.samples import INDEXES, sample_history

    bars = sample_history().bars
    symbols = {*(s for s in bars["symbol"].unique() if s not in INDEXES), "SP500"}
    bars = bars[bars["symbol"].isin(symbols)]
    per_day = bars.groupby(bars["timestamp"].dt.tz_convert(ET).dt.date)["symbol"].nunique()
    days = sorted(per_day[per_day == len(symbols)].index)
    return len(days) - 300, str(days[300]), str(days[-1])


@pytest.mark.parametrize("source", ["--days", "[paper] days"])
def test_days_beyond_the_bundled_history_is_refused(tmp_path: Path, source: str) -> None:
    """One session more than the history holds is one line naming the limit, not hours of replay."""
    usable, lo, hi = _usable_sessions()
    args = ["--mode", "paper", "--journal", "j.sqlite"]
    if source == "--days":
        args += ["--days", str(usable + 1)]
    else:
        (tmp_path / "c.toml").write_text(f"[paper]\ndays = {usable + 1}\n")
        args += ["--config", "c.toml"]
    out = _run(*args, tmp=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    assert out.stderr == (
        f"error: {source} {usable + 1}: the bundled history holds {usable} usable sessions for "
        f"this universe ({lo}..{hi}); at most {usable}\n"
    )
    assert not (tmp_path / "j.sqlite").exists()


def test_bad_toml_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[equity]\ntarget_volatility = 0.2\n")
    out = _run("--mode", "paper", "--config", "c.toml", tmp=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: [equity] target_volatility: unknown setting"


def test_bad_options_value_is_one_line(tmp_path: Path) -> None:
    """A value the options engine would misread (``"no"`` taken as true) ends the run at once.

    Refused with the rest of the settings, before anything starts: no run folder, no banner.
    """
    (tmp_path / "c.toml").write_text('[options]\nwheel = "no"\n')
    out = _run("--mode", "paper", "--days", "1", "--config", "c.toml", tmp=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    assert out.stderr == "error: [options] wheel: must be bool, got 'no'\n"
    assert out.stdout == ""
    assert not (tmp_path / "runs").exists()


def test_unwritable_journal_is_one_line(tmp_path: Path) -> None:
    """A journal whose folder cannot be made (a file is in the way) is refused before the run."""
    (tmp_path / "plain.txt").write_text("not a folder\n")
    out = _run("--mode", "paper", "--journal", "plain.txt/j.sqlite", tmp=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: --journal plain.txt/j.sqlite: cannot write"), lines
    assert not (tmp_path / "runs").exists()  # nothing started: no run folder


@pytest.mark.parametrize(
    "args",
    [
        ["--mode", "backtest", "--from", "2022-12-24", "--to", "2022-12-28"],  # a Saturday
        ["--mode", "paper", "--universe", "TSLA"],
    ],
)
def test_a_refused_run_leaves_no_journal_folder_or_lock(tmp_path: Path, args: list[str]) -> None:
    """A run refused for its arguments makes nothing: no journal folder, no lock file."""
    out = _run(*args, "--journal", "new/j.sqlite", tmp=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_backtest_refuses_a_journal_that_holds_a_run(tmp_path: Path) -> None:
    """A backtest starts from fresh cash: on a used journal its report would count old fills."""
    with Journal(tmp_path / "j.sqlite") as j:  # what any earlier run leaves: its start record
        j.record_decision(
            "runner-start-x",
            "runner",
            "runner",
            "*",
            "start",
            {"mode": "backtest"},
            datetime(2022, 12, 12, 13, 55, tzinfo=UTC),
        )
    out = _run(
        "--mode", "backtest", "--from", "2022-12-19", "--to", "2022-12-20",
        "--journal", "j.sqlite", tmp=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: --journal j.sqlite: it already holds a run"), lines
    assert not (tmp_path / "runs").exists()


def test_keyless_paper_refuses_a_backtests_journal(tmp_path: Path) -> None:
    """Paper on a backtest's journal: the journal's orders and positions are no account's.

    The simulated account is saved beside a paper journal only; on a backtest's journal every
    session failed its reconcile and the run still exited 0 with a report.
    """
    with Journal(tmp_path / "j.sqlite") as j:
        j.record_decision(
            "runner-start-x",
            "runner",
            "runner",
            "*",
            "start",
            {"mode": "backtest"},
            datetime(2022, 12, 12, 13, 55, tzinfo=UTC),
        )
    out = _run("--mode", "paper", "--universe", "AAPL", "--journal", "j.sqlite", tmp=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: --journal j.sqlite: it holds a backtest"), lines
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("argv", "toml", "expect"),
    [
        (["--universe", "AAPL,aapl, MSFT,AAPL"], None, ("AAPL", "MSFT")),
        ([], 'universe = ["msft", "AAPL", "MSFT", "aapl"]\n', ("MSFT", "AAPL")),
    ],
)
def test_a_symbol_named_twice_is_traded_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    toml: str | None,
    expect: tuple[str, ...],
) -> None:
    """The venue's universe (what the banner lists and the engines trade) names each once."""
    import asyncio

    from v28quant.calendar import default_calendar
    from v28quant.config import load_config
    from v28quant.runner_args import parse_args
    from v28quant.venue import open_venue

    for name in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "V28_UNIVERSE", "V28_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = None
    if toml is not None:
        config = tmp_path / "c.toml"
        config.write_text(toml)
    args = parse_args(["--mode", "paper", *argv])
    settings, cfg = load_config(config)
    venue = open_venue("paper", settings, cfg, args, default_calendar())
    try:
        assert venue.universe == expect, venue.universe
    finally:
        asyncio.run(venue.aclose())


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (None, "error: V28_CONFIG: no such file 'v28.toml'"),
        ("[risk\n", "error: V28_CONFIG: v28.toml is not valid TOML"),
        ("[bogus]\n", "error: V28_CONFIG: v28.toml: bogus: unknown setting"),
    ],
)
def test_a_bad_config_from_the_environment_is_named_as_such(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str | None,
    line: str,
) -> None:
    """The user who set ``V28_CONFIG`` and passed no ``--config`` is told which to fix."""
    from v28quant.runner_setup import build_and_run

    monkeypatch.chdir(tmp_path)
    if text is not None:
        (tmp_path / "v28.toml").write_text(text)
    monkeypatch.setenv("V28_CONFIG", "v28.toml")
    assert build_and_run(["--mode", "paper"]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith(line), err


@pytest.mark.parametrize(
    ("toml", "env", "line"),
    [
        (
            'universe = ["AAPL", "ZZZ"]\n',
            None,
            "error: universe (V28_UNIVERSE or the config file): unknown symbol(s) ZZZ",
        ),
        (
            None,
            "AAPL,VIX",
            "error: universe (V28_UNIVERSE or the config file): VIX is an index, not tradable",
        ),
    ],
)
def test_a_bad_universe_from_the_settings_is_not_blamed_on_the_flag(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    toml: str | None,
    env: str | None,
    line: str,
) -> None:
    """A symbol from the TOML's ``universe`` or ``V28_UNIVERSE``, with no ``--universe`` given."""
    from v28quant.runner_setup import build_and_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("V28_CONFIG", raising=False)
    argv = ["--mode", "paper", "--journal", "j.sqlite"]
    if toml is not None:
        (tmp_path / "v28.toml").write_text(toml)
        argv += ["--config", "v28.toml"]
    if env is not None:
        monkeypatch.setenv("V28_UNIVERSE", env)
    assert build_and_run(argv) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith(line), err


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--mode", "backtest", "--from", ""], "--from: not a date (YYYY-MM-DD): ''"),
        (
            ["--mode", "backtest", "--from", "2022-12-20", "--to", ""],
            "--to: not a date (YYYY-MM-DD): ''",
        ),
        (["--mode", "backtest", "--report", ""], "--report: empty path"),
        (["--mode", "paper", "--config", ""], "--config: empty path"),
        (["--mode", "paper", "--journal", ""], "--journal: empty path"),
    ],
)
def test_an_empty_value_is_refused_not_read_as_the_default(args: list[str], line: str) -> None:
    """An unset shell variable (``--from "$START"``) is refused, not read as the default.

    An empty ``--from`` was the default span (a year's backtest), ``--report ""`` the current
    folder ("" is the path ".").
    """
    from v28quant.runner_args import UsageError, parse_args

    with pytest.raises(UsageError) as refused:
        parse_args(args)
    assert str(refused.value) == line


def test_an_options_underlying_the_history_does_not_hold_is_refused(tmp_path: Path) -> None:
    """Not an error per cycle: the options engine failed on it at every cycle of the run."""
    (tmp_path / "c.toml").write_text('[options]\nunderlyings = ["AAPL", "zzzz"]\n')
    out = _run("--mode", "paper", "--config", "c.toml", "--journal", "new/j.sqlite", tmp=tmp_path)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    (line,) = out.stderr.splitlines()
    assert line.startswith("error: [options] underlyings: unknown symbol(s) ZZZZ: "), line
    assert "AAPL, AMD, BAC" in line  # what the bundled history offers instead
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]
