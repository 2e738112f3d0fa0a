"""Settings from the environment, ``.env`` and an optional TOML file.

Alpaca's own variable names are used for the keys and endpoints (``APCA_API_KEY_ID``,
``APCA_API_SECRET_KEY``, ``APCA_API_BASE_URL``, ``APCA_API_DATA_URL``). Everything else is
``V28_*`` (or the TOML file named by ``V28_CONFIG``). Secrets are ``SecretStr``: they print as
``**********`` and are never logged or journaled.
"""

from __future__ import annotations

import tomllib
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError as _SourceError

from v28quant.alpaca.config import DATA_URL, LIVE_URL, PAPER_URL


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it in one line."""


def _env(name: str) -> Any:
    return Field(None, validation_alias=AliasChoices(name, name.lower()))


class RiskLimits(BaseSettings):
    """Risk limits shared by both engines (fractions of account equity unless stated)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    max_position_fraction: float = Field(0.10, gt=0, le=1)
    max_gross_exposure: float = Field(1.0, gt=0, le=4)
    max_options_fraction: float = Field(0.30, ge=0, le=1)
    max_daily_loss_fraction: float = Field(0.03, gt=0, le=1)
    max_orders_per_cycle: int = Field(20, ge=1)
    max_order_notional: float = Field(25_000.0, gt=0)  # dollars per order
    max_order_qty: int = Field(5_000, ge=1)  # shares or contracts per order
    max_drawdown_fraction: float = Field(0.10, gt=0, le=1)  # from the equity peak
    max_positions: int = Field(20, ge=1)
    pdt_equity_threshold: float = Field(25_000.0, ge=0)  # dollars; FINRA pattern day trader
    pdt_max_day_trades: int = Field(3, ge=0)  # in five sessions, below the threshold
    # "venue": the rule where the venue still counts day trades (reports a day-trade count);
    # "on": always below the threshold; "off": never (see v28quant.risk)
    pdt_rule: Literal["venue", "on", "off"] = "venue"
    buying_power_reserve_fraction: float = Field(0.02, ge=0, lt=1)  # of equity, never spent

    @field_validator("*", mode="before")
    @classmethod
    def _not_bool(cls, v: Any) -> Any:
        # pydantic reads true as 1: a TOML typo would lift a fraction's limit to 100 %
        if isinstance(v, bool):
            raise ValueError(f"must be a number, got {str(v).lower()}")
        return v


class Settings(BaseSettings):
    """Everything the runner needs to know before it starts.

    Attributes
    ----------
    alpaca_key_id, alpaca_secret_key
        Alpaca API keys. With none set, paper and backtest run on the built-in simulated
        exchange and replay data.
    alpaca_base_url, alpaca_data_url
        Override the trading and data endpoints (tests point them at the loopback fake).
    live_confirm
        Must be true (``V28_LIVE_CONFIRM=yes``) for ``--mode live``.
    discord_webhook_url
        Enables Discord notices.
    journal_path
        The SQLite journal (``V28_JOURNAL``).
    data_feed, options_feed
        Alpaca stock feed (``iex`` on the free plan, ``sip`` paid) and option feed
        (``indicative`` free, ``opra`` paid).
    alpaca_rate_limit
        The account's API limit in requests per minute (``V28_ALPACA_RATE_LIMIT``): 200 on
        Alpaca's standard plans, 10,000 with Algo Trader Plus. Every Alpaca call of the process
        shares one bucket at 95 % of it.
    option_quote_max_age_s
        Oldest option quote, in seconds before the newest its feed serves (the ``indicative``
        feed is 15 minutes behind), that Alpaca's chain snapshot may price a contract from
        (``V28_OPTION_QUOTE_MAX_AGE_S``, 300 by default): a contract last quoted earlier is
        left out of the chain, so the options engine never trades off a stale quote.
    universe
        Symbols the equity engine considers; the options engine trades their options.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    alpaca_key_id: SecretStr | None = _env("APCA_API_KEY_ID")
    alpaca_secret_key: SecretStr | None = _env("APCA_API_SECRET_KEY")
    alpaca_base_url: str | None = _env("APCA_API_BASE_URL")
    alpaca_data_url: str | None = _env("APCA_API_DATA_URL")
    live_confirm: bool = Field(False, validation_alias=AliasChoices("V28_LIVE_CONFIRM"))
    discord_webhook_url: SecretStr | None = _env("DISCORD_WEBHOOK_URL")
    journal_path: Path = Field(
        Path("v28_journal.sqlite"), validation_alias=AliasChoices("V28_JOURNAL", "journal_path")
    )
    data_feed: Literal["iex", "sip"] = Field(
        "iex", validation_alias=AliasChoices("V28_DATA_FEED", "data_feed")
    )
    options_feed: Literal["indicative", "opra"] = Field(
        "indicative", validation_alias=AliasChoices("V28_OPTIONS_FEED", "options_feed")
    )
    alpaca_rate_limit: int = Field(
        200, ge=1, validation_alias=AliasChoices("V28_ALPACA_RATE_LIMIT", "alpaca_rate_limit")
    )
    option_quote_max_age_s: float = Field(
        300.0,
        gt=0,
        validation_alias=AliasChoices("V28_OPTION_QUOTE_MAX_AGE_S", "option_quote_max_age_s"),
    )
    # NoDecode: a comma-separated string in the environment, not JSON.
    universe: Annotated[tuple[str, ...], NoDecode] = Field(
        ("SPY", "QQQ", "AAPL", "MSFT", "JPM"),
        validation_alias=AliasChoices("V28_UNIVERSE", "universe"),
    )
    risk: RiskLimits = Field(default_factory=RiskLimits)  # type: ignore[arg-type]

    @field_validator("alpaca_base_url", "alpaca_data_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not (v.startswith("http://") or v.startswith("https://")) or "://" == v[-3:]:
            raise ValueError(f"must be an http(s) URL, got {v!r}")
        return v.rstrip("/")

    @field_validator("alpaca_key_id", "alpaca_secret_key")
    @classmethod
    def _key(cls, v: SecretStr | None) -> SecretStr | None:
        return None if v is None or v.get_secret_value().strip() == "" else v

    @field_validator("discord_webhook_url")
    @classmethod
    def _webhook(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or v.get_secret_value() == "":
            return None
        if not v.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL (value not shown: it is a secret)")
        return v

    @field_validator("universe", mode="before")
    @classmethod
    def _symbols(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [s for s in v.replace(" ", ",").split(",") if s]
        if not isinstance(v, list | tuple):
            raise ValueError(f"must be a list of ticker symbols, got {v!r}")
        syms = tuple(dict.fromkeys(str(s).strip().upper() for s in v))  # once each, in order
        bad = [s for s in syms if not s.replace(".", "").isalnum()]
        if bad or not syms:
            raise ValueError(f"must be a list of ticker symbols, got {v!r}")
        return syms

    @property
    def has_alpaca_keys(self) -> bool:
        """Whether both Alpaca keys are set."""
        return self.alpaca_key_id is not None and self.alpaca_secret_key is not None

    def trading_url(self, live: bool) -> str:
        """Return the trading endpoint: the override if set, else Alpaca's paper or live URL."""
        return self.alpaca_base_url or (LIVE_URL if live else PAPER_URL)

    def data_url(self) -> str:
        """Return the market-data endpoint: the override if set, else Alpaca's."""
        return self.alpaca_data_url or DATA_URL

    def require_mode(self, mode: str) -> None:
        """Check the settings allow ``--mode`` (live, paper or backtest).

        Raises ``SettingsError`` with one line naming the setting: half a key pair in any
        mode; live without both keys or without ``V28_LIVE_CONFIRM=yes``.
        """
        if mode not in ("live", "paper", "backtest"):
            raise SettingsError(f"--mode: must be live, paper or backtest, got {mode!r}")
        if (self.alpaca_key_id is None) != (self.alpaca_secret_key is None):
            missing = "APCA_API_KEY_ID" if self.alpaca_key_id is None else "APCA_API_SECRET_KEY"
            raise SettingsError(
                f"{missing}: is not set, but the other Alpaca key is; set both or neither"
            )
        if mode == "live":
            if not self.has_alpaca_keys:
                raise SettingsError(
                    "APCA_API_KEY_ID: --mode live needs Alpaca keys "
                    "(APCA_API_KEY_ID and APCA_API_SECRET_KEY)"
                )
            if not self.live_confirm:
                raise SettingsError("V28_LIVE_CONFIRM: --mode live also needs V28_LIVE_CONFIRM=yes")


def load_settings(toml_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from the environment and ``.env``, then an optional TOML file.

    The TOML file (``toml_path``, or ``V28_CONFIG`` in the environment) holds the non-secret
    rest: ``universe``, ``journal_path``, ``data_feed``, ``[risk]``. Keyword overrides win.
    Raises ``SettingsError`` with one line naming the bad setting.
    """
    import os

    values: dict[str, Any] = {}
    path = toml_path or os.environ.get("V28_CONFIG")
    if path:
        p = Path(path)
        if not p.is_file():
            raise SettingsError(f"V28_CONFIG: no such file {str(p)!r}")
        try:
            values.update(tomllib.loads(p.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"V28_CONFIG: {p} is not valid TOML: {exc}") from None
        for secret in ("alpaca_key_id", "alpaca_secret_key", "discord_webhook_url"):
            if secret in values:
                raise SettingsError(
                    f"{secret}: secrets belong in the environment or .env, not in {p}"
                )
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{where}: {msg}") from None
    except _SourceError as exc:
        raise SettingsError(str(exc).split(" from source")[0]) from None


def check_universe(settings: Settings, known: Iterable[str], source: str) -> None:
    """Raise ``SettingsError`` naming ``V28_UNIVERSE`` if it lists unknown symbols.

    Unknown to ``source``, the data feed in use (e.g. ``"replay sample history"``).
    """
    have = {s.upper() for s in known}
    unknown = [s for s in settings.universe if s not in have]
    if unknown:
        raise SettingsError(
            f"V28_UNIVERSE: unknown symbol(s) {', '.join(unknown)} (not in {source})"
        )


def __getattr__(name: str) -> Any:
    # describe_error reports broker errors too, so it lives beside the entry points' reporting.
    if name == "describe_error":
        from v28quant.errors import describe_error

        warnings.warn(
            "v28quant.settings.describe_error is deprecated; use v28quant.errors.describe_error",
            DeprecationWarning,
            stacklevel=2,
        )
        return describe_error
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
