"""Loopback Discord webhook receiver for tests.

Accepts ``POST /api/webhooks/{id}/{token}`` with a JSON body and answers 204, recording the body.
``fail(times, status)`` answers the next ``times`` posts with that server error (an outage;
``recover()`` ends it early).
``rate_limit(times, retry_after, global_limit)`` answers the next ``times`` posts with Discord's 429
shape (``{"message": "You are being rate limited.", "retry_after": <float s>, "global": false}``
plus ``Retry-After`` and ``X-RateLimit-*`` headers; the global limit says ``"global": true`` and
``X-RateLimit-Global: true`` instead of the bucket's headers). ``delete_webhook()`` answers every
later post 404 with Discord's ``Unknown Webhook`` body (``restore_webhook()`` ends it).
``answered_errors`` records the status of every post answered with an error other than a 429.
Requests to any other path get 404. ``FakeDiscord(bucket=(5, 2.0))`` enforces the webhook's rate
limit as Discord does: the first post opens a window of 2 s, the headers count the posts left in
it, and a post beyond 5 in the window is answered 429 with the window's remaining seconds.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fakes.loopback import serve, stop


class FakeDiscord:
    def __init__(self, bucket: tuple[int, float] | None = None) -> None:
        self._bucket = bucket
        self._window_end = 0.0
        self._window_posts = 0
        self.received: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.rejected: list[float] = []
        self._pending_429: list[tuple[float, bool]] = []
        self._pending_errors: list[int] = []
        self._deleted = False
        self.answered_errors: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def webhook_url(self) -> str:
        assert self._server is not None
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/api/webhooks/123456789/s3cr3t-T0KEN-abcdef"

    def rate_limit(
        self, times: int = 1, retry_after: float = 0.3, global_limit: bool = False
    ) -> None:
        with self._lock:
            self._pending_429.extend([(retry_after, global_limit)] * times)

    def fail(self, times: int = 1, status: int = 503) -> None:
        with self._lock:
            self._pending_errors.extend([status] * times)

    def recover(self) -> None:
        """End an outage: the errors ``fail`` still had pending are not answered."""
        with self._lock:
            self._pending_errors.clear()

    def delete_webhook(self) -> None:
        with self._lock:
            self._deleted = True

    def restore_webhook(self) -> None:
        with self._lock:
            self._deleted = False

    def _take_from_bucket(self, now: float) -> tuple[int, int, float]:
        """Count a post in the rate-limit window: (limit, posts left (< 0: over), reset after)."""
        if self._bucket is None:
            return 5, 4, 2.0
        limit, seconds = self._bucket
        if now >= self._window_end:
            self._window_end, self._window_posts = now + seconds, 0
        self._window_posts += 1
        return limit, limit - self._window_posts, self._window_end - now

    def __enter__(self) -> FakeDiscord:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not self.path.startswith("/api/webhooks/"):
                    self.send_response(404)
                    self.end_headers()
                    return
                with fake._lock:
                    deleted = fake._deleted
                    if deleted:
                        fake.answered_errors.append(404)
                if deleted:
                    data = json.dumps({"message": "Unknown Webhook", "code": 10015}).encode()
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                with fake._lock:
                    error = fake._pending_errors.pop(0) if fake._pending_errors else None
                    if error is not None:
                        fake.answered_errors.append(error)
                if error is not None:
                    self.send_response(error)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with fake._lock:
                    retry = fake._pending_429.pop(0) if fake._pending_429 else None
                    now = time.monotonic()
                    limit, left, reset_after = fake._take_from_bucket(now)
                    if retry is None and left < 0:
                        retry = (reset_after, False)
                    if retry is not None:
                        fake.rejected.append(now)
                    else:
                        fake.received.append(json.loads(body))
                        fake.times.append(now)
                if retry is not None:
                    after, global_limit = retry
                    data = json.dumps(
                        {
                            "message": "You are being rate limited.",
                            "retry_after": after,
                            "global": global_limit,
                        }
                    ).encode()
                    self.send_response(429)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Retry-After", str(max(1, round(after))))
                    if global_limit:
                        self.send_header("X-RateLimit-Global", "true")
                    else:
                        self.send_header("X-RateLimit-Limit", "5")
                        self.send_header("X-RateLimit-Remaining", "0")
                        self.send_header("X-RateLimit-Reset-After", f"{after:.3f}")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(204)
                self.send_header("X-RateLimit-Limit", str(limit))
                self.send_header("X-RateLimit-Remaining", str(left))
                self.send_header("X-RateLimit-Reset-After", f"{reset_after:.3f}")
                self.end_headers()

        self._server = serve(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self._server)
        self._server = None
