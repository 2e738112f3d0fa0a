"""``AlpacaConfig``: everything the Alpaca adapters need, frozen, built once from settings.

One name each for the knobs both adapters share: ``timeout_s`` (per HTTP request),
``max_attempts`` (tries per call on 429s and transient failures), ``backoff_s`` (first pause
between transient retries, doubling), ``rate_limit_per_min`` (the account's request limit).

The trading host decides whether real money moves. Alpaca's paper host is the only one a paper
run may use; any other host (Alpaca's live host, a gateway, a proxy) needs ``--mode live`` and
``V28_LIVE_CONFIRM=yes``. Keys travel in request headers, so a plain ``http://`` endpoint is
refused unless it is this machine (loopback: the test fakes).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from v28quant.settings import Settings

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"
_PAPER_HOST = "paper-api.alpaca.markets"


def is_loopback(url: str) -> bool:
    """Tell whether ``url`` points at this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, setting: str) -> None:
    """Refuse a plain-http endpoint off this machine (the keys would travel unencrypted).

    Raises
    ------
    SettingsError
        Naming ``setting``.
    """
    from v28quant.settings import SettingsError

    scheme = urlsplit(url).scheme
    if scheme == "http" and not is_loopback(url):
        raise SettingsError(
            f"{setting}: {url} is plain http; the API keys would travel unencrypted "
            "(only loopback addresses may use http)"
        )
    if scheme not in ("http", "https"):
        raise SettingsError(f"{setting}: must be an http(s) URL, got {url!r}")


def trading_endpoint(base_url: str | None, *, live: bool, live_confirm: bool) -> str:
    """Return the trading URL for this mode, refusing any that could move real money unconfirmed.

    Parameters
    ----------
    base_url : str or None
        ``APCA_API_BASE_URL`` (None: Alpaca's paper or live host by mode).
    live : bool
        ``--mode live``.
    live_confirm : bool
        ``V28_LIVE_CONFIRM=yes``.

    Raises
    ------
    SettingsError
        Live without confirmation; a paper run aimed at a host other than Alpaca's paper host
        (or loopback); a live run aimed at the paper host; plain http off this machine.
    """
    from v28quant.settings import SettingsError

    if live and not live_confirm:
        raise SettingsError("V28_LIVE_CONFIRM: live trading needs V28_LIVE_CONFIRM=yes")
    url = base_url or (LIVE_URL if live else PAPER_URL)
    check_endpoint(url, "APCA_API_BASE_URL")
    if is_loopback(url):
        return url
    paper_host = urlsplit(url).hostname == _PAPER_HOST
    if not live and not paper_host:
        raise SettingsError(
            f"APCA_API_BASE_URL: {url} is not Alpaca's paper host ({PAPER_URL}); trading "
            "there can move real money and needs --mode live and V28_LIVE_CONFIRM=yes"
        )
    if live and paper_host:
        raise SettingsError(
            f"APCA_API_BASE_URL: --mode live but {url} is Alpaca's paper host; "
            "unset APCA_API_BASE_URL or run in paper mode"
        )
    return url


@dataclass(frozen=True, slots=True)
class AlpacaConfig:
    """How to reach one Alpaca account (see the module docstring).

    Attributes
    ----------
    key_id, secret_key : str
        The API keys (never in ``repr``).
    trading_url, data_url : str
        Endpoints, already checked.
    live : bool
        Whether ``trading_url`` can move real money (not Alpaca's paper host, not loopback).
    timeout_s : float
        Per-request HTTP timeout, seconds.
    max_attempts : int
        Tries per call on 429s, per read on transient failures, per submit on unknown outcomes.
    backoff_s : float
        First pause between transient-failure retries, seconds (doubles each time).
    rate_limit_per_min : int
        The account's request limit (shared by the broker and data adapters).
    feed, options_feed : str
        Stock feed (``iex`` free, ``sip`` paid) and option feed (``indicative``, ``opra``).
    option_quote_max_age_s : float
        Oldest option quote a chain snapshot may price a contract from, seconds.
    """

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    trading_url: str = PAPER_URL
    data_url: str = DATA_URL
    live: bool = False
    timeout_s: float = 10.0
    max_attempts: int = 3
    backoff_s: float = 0.5
    rate_limit_per_min: int = 200
    feed: Literal["iex", "sip"] = "iex"
    options_feed: Literal["indicative", "opra"] = "indicative"
    option_quote_max_age_s: float = 300.0

    def __post_init__(self) -> None:
        """Check the fields; a bad one is a ValueError naming it."""
        if not self.key_id or not self.secret_key:
            raise ValueError("APCA_API_KEY_ID and APCA_API_SECRET_KEY are both required")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff_s < 0:
            raise ValueError(f"backoff_s must be >= 0, got {self.backoff_s}")
        if self.rate_limit_per_min < 1:
            raise ValueError(f"rate_limit_per_min must be >= 1, got {self.rate_limit_per_min}")
        if self.feed not in ("iex", "sip"):
            raise ValueError(f"feed must be 'iex' or 'sip', got {self.feed!r}")
        if not self.option_quote_max_age_s > 0:
            raise ValueError(
                f"option_quote_max_age_s must be > 0, got {self.option_quote_max_age_s}"
            )
        if self.options_feed not in ("indicative", "opra"):
            raise ValueError(
                f"options_feed must be 'indicative' or 'opra', got {self.options_feed!r}"
            )

    @classmethod
    def from_settings(cls, settings: Settings, *, live: bool = False) -> AlpacaConfig:
        """Build from ``Settings``, checking the endpoints for the mode.

        Raises
        ------
        SettingsError
            Missing keys, or an endpoint the mode may not use (``trading_endpoint``).
        """
        from v28quant.settings import SettingsError

        if settings.alpaca_key_id is None or settings.alpaca_secret_key is None:
            raise SettingsError(
                "APCA_API_KEY_ID: Alpaca needs both APCA_API_KEY_ID and APCA_API_SECRET_KEY"
            )
        url = trading_endpoint(
            settings.alpaca_base_url, live=live, live_confirm=settings.live_confirm
        )
        data = settings.alpaca_data_url or DATA_URL
        check_endpoint(data, "APCA_API_DATA_URL")
        return cls(
            key_id=settings.alpaca_key_id.get_secret_value(),
            secret_key=settings.alpaca_secret_key.get_secret_value(),
            trading_url=url,
            data_url=data,
            live=live,
            feed=settings.data_feed,
            options_feed=settings.options_feed,
            rate_limit_per_min=settings.alpaca_rate_limit,
            option_quote_max_age_s=settings.option_quote_max_age_s,
        )
