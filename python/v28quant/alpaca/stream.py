"""``AlpacaTradeUpdates``: order updates pushed by Alpaca's trade-updates websocket.

alpaca-py's ``TradingStream`` runs its own event loop (``run``), so it runs on a thread of its
own; each update is converted to our ``Order`` and handed to an async handler on the caller's
loop (``Executor.on_update``). The stream reconnects by itself; polling stays the fallback for
anything it misses while down.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from alpaca.trading.stream import TradingStream

from v28quant.alpaca.config import AlpacaConfig
from v28quant.alpaca.convert import to_order
from v28quant.broker.base import Order

log = logging.getLogger(__name__)

OrderHandler = Callable[[Order], Coroutine[Any, Any, None]]


def stream_url(trading_url: str) -> str:
    """Return the websocket beside a trading endpoint (``https://host`` -> ``wss://host/stream``)."""
    parts = urlsplit(trading_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, "/stream", "", ""))


class AlpacaTradeUpdates:
    """A started stream of order updates for one account.

    Parameters
    ----------
    config : AlpacaConfig
        The account (keys, and the trading endpoint the stream lives beside).
    url : str, optional
        The websocket URL (default: ``stream_url(config.trading_url)``).
    """

    def __init__(self, config: AlpacaConfig, *, url: str | None = None) -> None:
        self._config = config
        self.url = url or stream_url(config.trading_url)
        self._stream: TradingStream | None = None
        self._thread: threading.Thread | None = None

    async def start(self, handler: OrderHandler) -> None:
        """Connect and deliver every update to ``handler`` on the current event loop."""
        if self._thread is not None:
            raise RuntimeError("the trade-updates stream is already started")
        loop = asyncio.get_running_loop()

        async def on_update(update: Any) -> None:  # runs on the stream's own loop
            try:
                order = to_order(update.order)
            except Exception:
                log.exception("trade update %r could not be read; polling will catch up", update)
                return
            done: Future[None] = asyncio.run_coroutine_threadsafe(handler(order), loop)
            try:
                await asyncio.wrap_future(done)
            except Exception:
                log.exception("handling the trade update of %s failed", order.client_order_id)

        self._stream = TradingStream(
            self._config.key_id,
            self._config.secret_key,
            paper=not self._config.live,
            url_override=self.url,
        )
        self._stream.subscribe_trade_updates(on_update)
        self._thread = threading.Thread(
            target=self._stream.run, name="alpaca-trade-updates", daemon=True
        )
        self._thread.start()
        log.info("trade updates: listening at %s", self.url)

    async def aclose(self) -> None:
        """Stop the stream and wait for its thread to end."""
        stream, thread = self._stream, self._thread
        if stream is None or thread is None:
            return
        await asyncio.to_thread(self._stop, stream, thread)
        self._stream = self._thread = None

    @staticmethod
    def _stop(stream: TradingStream, thread: threading.Thread) -> None:
        try:
            stream.stop()
        except Exception:  # the stream's loop may not have started yet
            log.debug("trade-updates stream stop before start", exc_info=True)
        thread.join(timeout=30)
