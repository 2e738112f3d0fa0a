"""Every ``[options]`` setting is read as written or refused in one line naming its key.

Independent reference: the TOML the trader writes and the ranges the keys mean (a fraction of
the credit won is at most 1, a delta lies in (0, 1), a count of contracts is a whole number),
written out by hand below; nothing is taken from the code under test.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from v28quant.options.config import OptionsConfig
from v28quant.settings import SettingsError

BAD: list[tuple[dict[str, Any], str]] = [
    ({"wheel": "no"}, "[options] wheel: must be bool, got 'no'"),
    ({"wheel": 1}, "[options] wheel: must be bool, got 1"),
    ({"max_units": "ten"}, "[options] max_units: must be int, got 'ten'"),
    ({"max_units": 2.7}, "[options] max_units: must be int, got 2.7"),
    ({"dte_min": True}, "[options] dte_min: must be int, got True"),
    ({"dte_target": 21.5}, "[options] dte_target: must be int, got 21.5"),
    ({"dte_min": 50}, "[options] dte_min: must be in [0, dte_max 45], got 50"),
    ({"rate": True}, "[options] rate: must be float, got True"),
    ({"rate": 4.5}, "[options] rate: must be a fraction in (-1, 1) (0.045 for 4.5 %), got 4.5"),
    ({"rate": float("nan")}, "[options] rate: must be a finite number, got nan"),
    ({"short_delta": [True, 0.3, 0.25]}, "[options] short_delta: must be float, got True"),
    ({"max_width_fraction": "0.05"}, "[options] max_width_fraction: must be float, got '0.05'"),
    (
        {"max_loss_per_structure": float("inf")},
        "[options] max_loss_per_structure: must be a finite number, got inf",
    ),
    ({"max_per_underlying": 0}, "[options] max_per_underlying: must be >= 1, got 0"),
    ({"chain_timeout_seconds": 0}, "[options] chain_timeout_seconds: must be > 0, got 0.0"),
    (
        {"underlyings": "SPY"},
        "[options] underlyings: must be a list of ticker symbols, got 'SPY'",
    ),
    (
        {"underlyings": ["SPY QQQ"]},
        "[options] underlyings: must be a list of ticker symbols, got ['SPY QQQ']",
    ),
    ({"liquidity": 5}, "[options] liquidity: must be a table, got 5"),
    ({"liquidity": {"min_bid": True}}, "[options.liquidity] min_bid: must be float, got True"),
    ({"liquidity": {"min_bid": -0.05}}, "[options.liquidity] min_bid: must be >= 0, got -0.05"),
    (
        {"liquidity": {"max_rel_spread": 0}},
        "[options.liquidity] max_rel_spread: must be > 0, got 0.0",
    ),
    ({"greeks": {"max_vega": -1.0}}, "[options.greeks] max_vega: must be >= 0, got -1.0"),
    (
        {"exits": {"take_profit_credit": 1.5}},
        "[options.exits] take_profit_credit: must be in (0, 1], got 1.5",
    ),
    (
        {"exits": {"stop_loss_debit": 1.5}},
        "[options.exits] stop_loss_debit: must be in (0, 1], got 1.5",
    ),
    ({"exits": {"max_rolls": 2.5}}, "[options.exits] max_rolls: must be int, got 2.5"),
    ({"exits": {"roll_delta": "0.5"}}, "[options.exits] roll_delta: must be float, got '0.5'"),
    ({"exits": {"roll_dte": True}}, "[options.exits] roll_dte: must be int, got True"),
    (
        {"exits": {"expiry_close_minutes": -1}},
        "[options.exits] expiry_close_minutes: must be >= 0, got -1",
    ),
    (
        {"strategies": {"default": "iron_condor"}},
        "[options.strategies] default: must be a list of strategy names, got 'iron_condor'",
    ),
    (
        {"strategies": {"bull_quiet": 5}},
        "[options.strategies] bull_quiet: must be a list of strategy names, got 5",
    ),
    (
        {"strategies": {"bull_quite": ["bull_put"]}},
        "[options.strategies] bull_quite: not a regime; the regimes are bull_quiet, sideways, "
        "bear_volatile, crisis (and default for any other)",
    ),
    (
        {"dividends": {"KO": [["2024-06-14", -0.49]]}},
        "[options.dividends] KO amount: must be > 0 (dollars per share), got -0.49",
    ),
    (
        {"dividends": {"KO": [["2024-06-14"]]}},
        "[options.dividends] KO: each row must be [ex-date, amount], got ['2024-06-14']",
    ),
    (
        {"dividends": {"KO": [["2024-13-14", 0.49]]}},
        "[options.dividends] KO: ex-date must be a date (YYYY-MM-DD), got '2024-13-14'",
    ),
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[str(o) for o, _ in BAD])
def test_a_bad_value_is_one_error_naming_its_key(override: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        OptionsConfig.load(None, override)
    assert str(caught.value) == message, (override, str(caught.value))


def test_values_from_a_toml_file_are_read_as_written(tmp_path: Path) -> None:
    """Integers stand for floats, TOML dates for ex-dates; a symbol named twice counts once."""
    toml = tmp_path / "c.toml"
    toml.write_text(
        "[options]\n"
        'underlyings = ["spy", "KO", "SPY"]\n'
        "rate = 0\n"
        "wheel = false\n"
        "max_units = 3\n"
        "[options.exits]\n"
        "stop_loss_credit = 2\n"
        "[options.dividends]\n"
        'KO = [[2024-06-14, 0.485], ["2024-09-13", 1]]\n'
    )
    cfg = OptionsConfig.load(toml)
    assert cfg.underlyings == ("SPY", "KO")
    assert (cfg.rate, cfg.wheel, cfg.max_units) == (0.0, False, 3)
    assert cfg.exits.stop_loss_credit == 2.0
    assert cfg.dividends["KO"] == ((date(2024, 6, 14), 0.485), (date(2024, 9, 13), 1.0))
