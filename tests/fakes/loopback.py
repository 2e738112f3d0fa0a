"""Start and stop a threaded HTTP server on 127.0.0.1 (an OS-chosen port): shared by the fakes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """Return a started server; its ``server_address[1]`` is the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    return server


def stop(server: ThreadingHTTPServer | None) -> None:
    """Stop ``server`` (None: nothing to do)."""
    if server is not None:
        server.shutdown()
        server.server_close()
