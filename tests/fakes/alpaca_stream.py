"""A loopback fake of Alpaca's trade-updates websocket (``wss://.../stream``).

The handshake alpaca-py 0.44's ``TradingStream`` performs: ``authenticate`` (answered
``authorized``, or ``unauthorized`` for missing keys), then ``listen`` to ``trade_updates``
(answered ``listening``). ``publish`` pushes ``{"stream": "trade_updates", "data": {"event",
"order", "timestamp", ...}}`` to every listening client. Wire ``FakeAlpacaTrading.on_event``
to ``publish`` and every order event of the REST fake is pushed, as Alpaca does.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, serve


class FakeTradeStream:
    """The websocket server, on its own thread and event loop; ``url`` for ``url_override``."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._clients: set[ServerConnection] = set()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-stream")
        self.port = 0
        self.listening = threading.Event()  # a client has subscribed to trade_updates
        self.sent = 0

    def start(self) -> FakeTradeStream:
        self._thread.start()
        self._ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._client, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _client(self, ws: ServerConnection) -> None:
        auth = json.loads(await ws.recv())
        data = auth.get("data") or {}
        ok = auth.get("action") == "authenticate" and data.get("key_id") and data.get("secret_key")
        status = "authorized" if ok else "unauthorized"
        await ws.send(
            json.dumps(
                {"stream": "authorization", "data": {"status": status, "action": "authenticate"}}
            )
        )
        if not ok:
            return
        listen = json.loads(await ws.recv())
        streams = (listen.get("data") or {}).get("streams") or []
        await ws.send(json.dumps({"stream": "listening", "data": {"streams": streams}}))
        if "trade_updates" in streams:
            self._clients.add(ws)
            self.listening.set()
        try:
            await ws.wait_closed()
        finally:
            self._clients.discard(ws)

    def publish(self, event: str, order: dict[str, Any]) -> None:
        """Push one trade update to every listening client (callable from any thread)."""
        msg = {
            "stream": "trade_updates",
            "data": {
                "event": event,
                "timestamp": datetime.now(UTC).isoformat(),
                "order": order,
                "execution_id": None,
                "position_qty": None,
                "price": order.get("filled_avg_price"),
                "qty": order.get("filled_qty"),
            },
        }
        text = json.dumps(msg)
        asyncio.run_coroutine_threadsafe(self._broadcast(text), self._loop)

    async def _broadcast(self, text: str) -> None:
        for ws in list(self._clients):
            await ws.send(text)
            self.sent += 1

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
