"""Loopback fakes of outside services for tests (Alpaca's trading and data APIs, Discord).

Each fake is a real HTTP server on 127.0.0.1 (port 0), driven by the real client libraries.
"""
