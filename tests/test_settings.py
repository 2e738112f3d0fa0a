"""Settings: one clear line per bad setting, secrets never shown, live needs confirmation.

Independent reference: the rules of DESIGN.md "Settings" (Alpaca's own variable names,
``V28_LIVE_CONFIRM=yes`` for live, secrets never logged).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from v28quant.settings import SettingsError, load_settings

ENV = (
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "APCA_API_BASE_URL",
    "APCA_API_DATA_URL",
    "V28_LIVE_CONFIRM",
    "DISCORD_WEBHOOK_URL",
    "V28_JOURNAL",
    "V28_DATA_FEED",
    "V28_OPTIONS_FEED",
    "V28_UNIVERSE",
    "V28_CONFIG",
    "V28_ALPACA_RATE_LIMIT",
    "V28_OPTION_QUOTE_MAX_AGE_S",
)
KEY, SECRET = "PKLIVEKEYID0001", "sEcReT-Value-42"
HOOK = "https://discord.com/api/webhooks/111/hook-TOKEN-xyz"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory


def test_defaults_are_paper_without_keys() -> None:
    s = load_settings()
    assert not s.has_alpaca_keys
    assert s.data_feed == "iex"
    assert s.options_feed == "indicative"
    assert s.trading_url(live=False) == "https://paper-api.alpaca.markets"
    s.require_mode("paper")
    s.require_mode("backtest")


@pytest.mark.parametrize(
    ("var", "value", "expect"),
    [
        ("APCA_API_BASE_URL", "ftp://example", r"^APCA_API_BASE_URL: must be an http\(s\) URL"),
        ("APCA_API_DATA_URL", "https://", r"^APCA_API_DATA_URL: must be an http\(s\) URL"),
        ("V28_DATA_FEED", "bogus", r"^V28_DATA_FEED: .*'iex' or 'sip'"),
        ("V28_OPTIONS_FEED", "nasdaq", r"^V28_OPTIONS_FEED: .*'indicative' or 'opra'"),
        ("V28_LIVE_CONFIRM", "maybe", r"^V28_LIVE_CONFIRM: .*boolean"),
        ("V28_UNIVERSE", "SPY,$$$", r"^V28_UNIVERSE: must be a list of ticker symbols"),
        ("V28_ALPACA_RATE_LIMIT", "0", r"^V28_ALPACA_RATE_LIMIT: .*greater than or equal to 1"),
        ("V28_ALPACA_RATE_LIMIT", "fast", r"^V28_ALPACA_RATE_LIMIT: .*integer"),
        ("V28_OPTION_QUOTE_MAX_AGE_S", "0", r"^V28_OPTION_QUOTE_MAX_AGE_S: .*greater than 0"),
    ],
)
def test_bad_setting_is_one_line_naming_it(monkeypatch, var: str, value: str, expect: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=expect) as ei:
        load_settings()
    assert "\n" not in str(ei.value)


def test_bad_webhook_url_does_not_echo_it(monkeypatch) -> None:
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", "discord.com/api/webhooks/1/TOPSECRET")
    with pytest.raises(SettingsError, match=r"^DISCORD_WEBHOOK_URL: must be") as ei:
        load_settings()
    assert "TOPSECRET" not in str(ei.value)


def test_toml_file(tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "v28.toml"
    p.write_text(
        'universe = ["spy", "iwm"]\ndata_feed = "sip"\n[risk]\nmax_position_fraction = 0.05\n'
    )
    s = load_settings(p)
    assert s.universe == ("SPY", "IWM")
    assert s.data_feed == "sip"
    assert s.risk.max_position_fraction == 0.05
    p.write_text("[risk]\nmax_position_fraction = 2\n")
    with pytest.raises(SettingsError, match=r"^risk.max_position_fraction: .*less than"):
        load_settings(p)
    p.write_text('alpaca_secret_key = "x"\n')
    with pytest.raises(SettingsError, match=r"^alpaca_secret_key: secrets belong in the env"):
        load_settings(p)
    p.write_text("universe = [\n")
    with pytest.raises(SettingsError, match=r"^V28_CONFIG: .* is not valid TOML"):
        load_settings(p)
    monkeypatch.setenv("V28_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError, match=r"^V28_CONFIG: no such file"):
        load_settings()


def test_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY={SECRET}\nV28_JOURNAL=/tmp/j.sqlite\n"
    )
    s = load_settings()
    assert s.has_alpaca_keys
    assert s.alpaca_secret_key.get_secret_value() == SECRET
    assert str(s.journal_path) == "/tmp/j.sqlite"


def test_secrets_never_in_repr_or_logs(monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", HOOK)
    s = load_settings()
    logging.getLogger("v28quant.test").info("settings: %s / %r", s, s)
    for text in (repr(s), str(s), caplog.text, s.model_dump_json()):
        assert SECRET not in text, text
        assert KEY not in text, text
        assert "hook-TOKEN" not in text, text


def test_live_needs_keys_and_confirmation(monkeypatch) -> None:
    with pytest.raises(SettingsError, match=r"^APCA_API_KEY_ID: --mode live needs Alpaca keys"):
        load_settings().require_mode("live")
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    with pytest.raises(SettingsError, match=r"^APCA_API_SECRET_KEY: is not set"):
        load_settings().require_mode("paper")
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    with pytest.raises(
        SettingsError, match=r"^V28_LIVE_CONFIRM: --mode live also needs V28_LIVE_CONFIRM=yes"
    ) as ei:
        load_settings().require_mode("live")
    assert SECRET not in str(ei.value)
    monkeypatch.setenv("V28_LIVE_CONFIRM", "yes")
    s = load_settings()
    s.require_mode("live")
    assert s.trading_url(live=True) == "https://api.alpaca.markets"
    with pytest.raises(SettingsError, match=r"^--mode: must be live, paper or backtest"):
        s.require_mode("yolo")


def test_empty_keys_mean_no_keys(monkeypatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "")
    monkeypatch.setenv("APCA_API_SECRET_KEY", " ")
    assert not load_settings().has_alpaca_keys


def test_endpoint_overrides(monkeypatch) -> None:
    monkeypatch.setenv("APCA_API_BASE_URL", "http://127.0.0.1:8765/")
    monkeypatch.setenv("APCA_API_DATA_URL", "http://127.0.0.1:8766")
    s = load_settings()
    assert s.trading_url(live=True) == "http://127.0.0.1:8765"
    assert s.data_url() == "http://127.0.0.1:8766"


def test_unknown_symbol_names_the_setting(monkeypatch) -> None:
    from v28quant.settings import check_universe

    monkeypatch.setenv("V28_UNIVERSE", "SPY,ZZZQ")
    s = load_settings()
    with pytest.raises(
        SettingsError,
        match=r"^V28_UNIVERSE: unknown symbol\(s\) ZZZQ "
        r"\(not in replay\)$",
    ):
        check_universe(s, ["spy", "AAPL"], "replay")
    check_universe(load_settings(universe=["AAPL"]), ["AAPL"], "replay")  # no error


def test_describe_error_is_one_line_naming_the_setting(monkeypatch) -> None:
    from v28quant.broker import AuthenticationError, BrokerUnavailable
    from v28quant.errors import describe_error

    monkeypatch.setenv("APCA_API_DATA_URL", "data.alpaca.markets")
    with pytest.raises(SettingsError) as ei:
        load_settings()
    assert describe_error(ei.value) == (
        "APCA_API_DATA_URL: must be an http(s) URL, got 'data.alpaca.markets'"
    )
    assert describe_error(AuthenticationError("Alpaca rejected the API keys (401)")).startswith(
        "APCA_API_KEY_ID / APCA_API_SECRET_KEY: "
    )
    assert (
        describe_error(BrokerUnavailable("Alpaca 503: down\n<html>")) == "broker: Alpaca 503: down"
    )
    line = describe_error(RuntimeError("x" * 1000 + "\nsecond line"))
    assert "\n" not in line
    assert len(line) == 300
    assert line.startswith("RuntimeError: ")


def test_settings_describe_error_is_a_deprecated_alias() -> None:
    import v28quant.settings as settings
    from v28quant.errors import describe_error

    with pytest.warns(DeprecationWarning, match="v28quant.errors.describe_error"):
        alias = settings.describe_error
    assert alias is describe_error


def test_the_account_rate_limit_reaches_the_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    from v28quant.alpaca.config import AlpacaConfig

    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    assert AlpacaConfig.from_settings(load_settings()).rate_limit_per_min == 200  # Alpaca's default
    monkeypatch.setenv("V28_ALPACA_RATE_LIMIT", "10000")  # Algo Trader Plus
    assert AlpacaConfig.from_settings(load_settings()).rate_limit_per_min == 10_000


def test_an_options_threshold_above_the_paper_threshold_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from v28quant.config import load_config

    cfg_file = tmp_path / "v28.toml"
    cfg_file.write_text("[paper]\nmin_confidence = 0.2\noptions_min_confidence = 0.5\n")
    with caplog.at_level(logging.WARNING, logger="v28quant.config"):
        _, cfg = load_config(cfg_file)
    assert cfg.options_min_confidence("paper") == 0.2
    assert "options_min_confidence 0.5 is above [paper] min_confidence 0.2" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="v28quant.config"):
        load_config(None)  # the shipped defaults: 0.15 under 0.2, nothing to say
    assert "options_min_confidence" not in caplog.text


@pytest.mark.parametrize(
    ("toml", "expect"),
    [
        ("paper = 3\n", "[paper]: must be a table, got 3"),
        ("[backtest]\nslippage_bps = -2.0\n", "[backtest] slippage_bps: must be finite and >= 0"),
        ("[backtest]\nspread_bps = -4.0\n", "[backtest] spread_bps: must be finite and >= 0"),
        ("[backtest]\ncommission_per_share = -0.01\n", "[backtest] commission_per_share: must"),
        ("[risk]\nmax_position_fraction = true\n", "risk.max_position_fraction: must be a number"),
        ("[risk]\nmax_order_qty = false\n", "risk.max_order_qty: must be a number"),
        ("universe = 5\n", "universe: must be a list of ticker symbols"),
        # a weight change below 0 trades every change; NaN stops every equity cycle
        ("[equity]\nmin_trade_weight = -0.01\n", "[equity] min_trade_weight: must be in [0, 1]"),
        ("[equity]\nmin_trade_weight = nan\n", "[equity] min_trade_weight: must be in [0, 1]"),
        # a confidence is at most 1: above it the ensemble's veto silently never fires
        ("[equity]\nml_veto_confidence = 1.5\n", "[equity] ml_veto_confidence: must be in [0, 1]"),
        ("[equity]\nrf_annual = nan\n", "[equity] rf_annual: must be a finite rate in (-1, 1)"),
        ("[backtest]\ncash = inf\n", "[backtest] cash: must be finite and > 0"),
        ("[backtest]\nslippage_bps = inf\n", "[backtest] slippage_bps: must be finite and >= 0"),
        ("[runner]\nlog_max_bytes = -1\n", "[runner] log_max_bytes: must be >= 0"),
        ("[runner]\nlog_backups = -1\n", "[runner] log_backups: must be >= 0"),
        # the aggregator's tables: refused with the rest, not a traceback once the run started
        ("[aggregator.weights]\nfoo = 1\n", "[aggregator] weights['foo'] must be a table"),
        (
            "[aggregator.weights.sideways]\ngarch = -5\n",
            "[aggregator] weights['sideways']['garch'] must be finite >= 0, got -5",
        ),
        (
            '[aggregator.weights.sideways]\ngarch = "high"\n',
            "[aggregator] weights['sideways']['garch'] must be finite >= 0, got 'high'",
        ),
        (
            "[aggregator.lifetime_minutes]\ngarch = -5\n",
            "[aggregator] lifetime_minutes['garch'] must be > 0, got -5",
        ),
        (
            '[aggregator.lifetime_minutes]\ngarch = "long"\n',
            "[aggregator] lifetime_minutes['garch'] must be > 0, got 'long'",
        ),
        # a misspelt name would leave the shipped weight or lifetime silently in force
        (
            "[aggregator.weights.sideways]\ngarhc = 2\n",
            "[aggregator] weights.sideways: unknown ['garhc']; known: capm, garch, heston,",
        ),
        (
            "[aggregator.weights.bullquiet]\ngarch = 2\n",
            "[aggregator] weights: unknown ['bullquiet']; known: bear_volatile, bull_quiet,",
        ),
        (
            "[aggregator.lifetime_minutes]\nhestn = 30\n",
            "[aggregator] lifetime_minutes: unknown ['hestn']; known: capm, default, garch,",
        ),
    ],
)
def test_a_wrong_type_or_sign_in_toml_is_one_line(tmp_path: Path, toml: str, expect: str) -> None:
    """Wrong types and signs are refused by name, never taken (true as 100 %) nor a traceback.

    Independent reference: the meaning of each key in ``defaults.toml`` (costs are never
    negative; a fraction or a count is a number, not a boolean; a section is a table).
    """
    from v28quant.config import load_config

    cfg_file = tmp_path / "v28.toml"
    cfg_file.write_text(toml)
    with pytest.raises(SettingsError) as info:
        load_config(cfg_file)
    assert str(info.value).startswith(expect), str(info.value)


def test_a_config_path_that_is_a_folder_is_named_as_one(tmp_path: Path) -> None:
    """``--config configs`` (the folder, not its file) is not "no such file": the folder exists."""
    from v28quant.config import load_config

    with pytest.raises(SettingsError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"--config: {tmp_path} is a folder; give the TOML file's path"
