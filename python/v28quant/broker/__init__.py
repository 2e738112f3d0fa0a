"""Brokers: the ``Broker`` protocol, its domain types, and ``connect`` to pick a venue.

``connect`` gives ``AlpacaBroker`` when Alpaca keys are configured and the built-in
``SimBroker`` otherwise, and says loudly which one it chose.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from v28quant.broker.base import (
    Account,
    Activity,
    Asset,
    AuthenticationError,
    Broker,
    BrokerError,
    BrokerUnavailable,
    ClientOrderIdConflict,
    InsufficientBuyingPower,
    Leg,
    MarketClock,
    OptionsLevelError,
    Order,
    OrderNotCancelable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    OrderTag,
    Owner,
    Position,
    RateLimited,
    SubmitOutcomeUnknown,
    TradingDay,
    UnreadableResponse,
    parse_client_order_id,
    request_differences,
    request_hash,
)

if TYPE_CHECKING:
    from v28quant.clock import Clock
    from v28quant.quotes import QuoteSource
    from v28quant.settings import Settings

log = logging.getLogger(__name__)


def connect(
    settings: Settings | None = None,
    *,
    live: bool = False,
    quotes: QuoteSource | None = None,
    clock: Clock | None = None,
) -> Broker:
    """Return the broker the settings call for.

    Alpaca (paper, or live when ``live``) when ``APCA_API_KEY_ID``/``APCA_API_SECRET_KEY`` are
    set: only Alpaca's paper host (or loopback) without ``live``, any other host only with
    ``live`` and ``V28_LIVE_CONFIRM=yes``, plain http only on loopback. Otherwise the simulated
    exchange (``v28quant.broker.sim.keyless``): replay of the bundled sample history on a
    simulated clock at its last session unless ``quotes`` (and a ``clock``, where the source has
    none) are given, its account kept beside the journal. Raises ``SettingsError`` with one line
    naming the setting when something is missing.
    """
    from v28quant.settings import SettingsError, load_settings

    settings = settings or load_settings()
    if live and not settings.live_confirm:
        raise SettingsError("V28_LIVE_CONFIRM: live trading needs V28_LIVE_CONFIRM=yes")
    if settings.has_alpaca_keys:
        from v28quant.broker.alpaca import AlpacaBroker

        broker = AlpacaBroker.from_settings(settings, live=live)  # refuses unconfirmed live hosts
        url = broker.config.trading_url
        log.warning(
            "BROKER: Alpaca %s at %s",
            "LIVE" if live else "paper",
            url,
            extra={"broker": "alpaca", "live": live, "url": url},
        )
        return broker
    if live:
        raise SettingsError(
            "APCA_API_KEY_ID: live trading needs Alpaca keys "
            "(APCA_API_KEY_ID and APCA_API_SECRET_KEY)"
        )
    from v28quant.broker.sim.keyless import keyless_exchange

    try:
        return keyless_exchange(settings.journal_path, quotes=quotes, clock=clock)
    except ValueError as e:  # a quote source without a clock, or a clock behind the saved state
        raise SettingsError(f"simulated exchange: {e}") from e


__all__ = [
    "Account",
    "Activity",
    "Asset",
    "AuthenticationError",
    "Broker",
    "BrokerError",
    "BrokerUnavailable",
    "ClientOrderIdConflict",
    "InsufficientBuyingPower",
    "Leg",
    "MarketClock",
    "OptionsLevelError",
    "Order",
    "OrderNotCancelable",
    "OrderNotFound",
    "OrderRejected",
    "OrderRequest",
    "OrderStatus",
    "OrderTag",
    "Owner",
    "Position",
    "RateLimited",
    "SubmitOutcomeUnknown",
    "TradingDay",
    "UnreadableResponse",
    "connect",
    "parse_client_order_id",
    "request_differences",
    "request_hash",
]
