"""``--once`` after the open sees the history a scheduled pre-market job sees: no bar of today.

Independent references: the bundled sample history's own dates and closes (read straight from
``sample_history``), and the real SPY daily series in ``shared/data`` for the options engine.
Before the fix the 10:00 job was given today's partial (synthetic) daily bar.
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakes.options_world import make_world
from v28quant.calendar import ET
from v28quant.config import RunConfig, load_config
from v28quant.data.samples import sample_history
from v28quant.engines import CycleReport, EngineContext
from v28quant.options.config import OptionsConfig
from v28quant.options.engine import OptionsEngine
from v28quant.runner_args import RunArgs
from v28quant.runner_setup import run_with

UNIVERSE = ("AAPL", "MSFT", "JPM")


class Recorder:
    """An engine that trades nothing and keeps what the pre-market job handed it."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[datetime, pd.DataFrame]] = []

    async def premarket(self, ctx: EngineContext) -> None:
        self.seen.append((ctx.now, ctx.shared["closes"].copy()))

    async def cycle(self, ctx: EngineContext) -> CycleReport:
        return CycleReport(self.name, ctx.now)

    async def end_of_day(self, ctx: EngineContext) -> None:
        return None


@pytest.fixture
def keyless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("V28_CONFIG", "V28_JOURNAL", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "j.sqlite"


def test_once_pre_market_history_ends_at_the_previous_close(keyless: Path) -> None:
    engine = Recorder()

    def engines(cfg: RunConfig, params: dict[str, Any]) -> list[Recorder]:
        return [engine]

    settings, cfg = load_config(None, journal_path=keyless)
    args = RunArgs("paper", None, UNIVERSE, keyless, None, None, None, True, "INFO", None)
    assert run_with(args, settings, cfg, engines=engines).exit_code == 0

    bars = sample_history().bars
    aapl = bars[bars["symbol"] == "AAPL"].sort_values("timestamp")
    days = [t.tz_convert(ET).date() for t in aapl["timestamp"]]
    (now, closes), *_ = engine.seen
    assert now.astimezone(ET).date() == days[-1]  # --once trades the history's last session
    assert now.astimezone(ET).time() >= time(9, 30)  # after the open: a partial bar exists
    last = closes.index[-1].tz_convert(ET).date()
    assert last == days[-2], f"pre-market history ends {last}, --once runs on {days[-1]}"
    assert closes["AAPL"].iloc[-1] == pytest.approx(float(aapl["close"].iloc[-2]))


@pytest.mark.asyncio
async def test_options_premarket_after_the_open_reads_no_partial_bar(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2023, 9, 14, 15, 30, tzinfo=ET)
    ctx = make_world(tmp_path, shared_data, start)
    served: list[pd.DataFrame] = []
    bars = ctx.feed.bars

    async def spy(*a: Any, **k: Any) -> pd.DataFrame:
        frame = await bars(*a, **k)
        served.append(frame)
        return frame

    monkeypatch.setattr(ctx.feed, "bars", spy)
    await OptionsEngine(OptionsConfig.load(None, {})).premarket(ctx)
    raw = pd.read_csv(shared_data / "equities" / "yahoo_raw_2019_2023" / "SPY.csv")
    before = raw[raw["date"] < "2023-09-14"].iloc[-1]
    (frame,) = served
    assert frame["timestamp"].iloc[-1].tz_convert(ET).date().isoformat() == before["date"]
    assert frame["close"].iloc[-1] == pytest.approx(float(before["close"]))
