"""Probes and metrics of a process without a web framework (the reconciler): `/livez`,
`/readyz` and `/metrics` on a small HTTP server in a daemon thread.

Liveness says the process itself works (a probe that fails restarts it); readiness says it can
do its work now (it may fail while PostgreSQL or Redis is away, and restarts nothing). A
dependency's outage must never fail liveness: every pod of a fleet would restart at once.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import selectors
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

Probe = Callable[[], tuple[bool, dict[str, Any]]]


class Serving:
    """A server's requests handled on a daemon thread that sleeps until a client or the stop
    comes. socketserver's `serve_forever` wakes every half second to see whether to stop:
    on a node at rest, that was a good part of what its processes cost."""

    def __init__(self, server: socketserver.TCPServer, name: str) -> None:
        self.server = server
        self._stop, self._stopping = socket.socketpair()
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Stop accepting (requests being handled finish on their own threads), close."""
        self._stop.send(b"x")
        if self.thread.is_alive():
            self.thread.join(5)
        self.server.server_close()
        self._stop.close()
        self._stopping.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.server.fileno(), selectors.EVENT_READ)
            selector.register(self._stopping, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._stopping in ready:
                    return
                self.server.handle_request()  # a client is waiting: accepted at once


def process_registry() -> CollectorRegistry:
    """A metrics registry with the standard collectors every process exports: `process_*`
    (CPU, memory, file descriptors, start time), `python_gc_*` and `python_info`."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def authorized(header: str | None, token: str | None) -> bool:
    """No token configured: open. Else `Bearer <token>`, compared in constant time."""
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


class ProbeServer:
    def __init__(
        self,
        port: int,
        address: str,
        *,
        alive: Probe,
        ready: Probe,
        metrics: Callable[[], bytes],
        metrics_token: str | None = None,
    ) -> None:
        routes = {"/livez": (alive, 500), "/readyz": (ready, 503)}

        class Handler(BaseHTTPRequestHandler):
            timeout = 10.0

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in routes:
                    probe, failing = routes[path]
                    ok, facts = probe()
                    body = json.dumps({"ok": ok, **facts}).encode()
                    self._answer(200 if ok else failing, "application/json", body)
                elif path == "/metrics":
                    if authorized(self.headers.get("Authorization"), metrics_token):
                        self._answer(200, CONTENT_TYPE_LATEST, metrics())
                    else:
                        self._answer(401, "text/plain", b"/metrics needs Bearer <metrics token>\n")
                else:
                    self._answer(404, "text/plain", b"not found\n")

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def handle(self) -> None:
                with contextlib.suppress(TimeoutError, ConnectionError):
                    super().handle()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the log

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._serving = Serving(self.server, "probes")

    def start(self) -> None:
        self._serving.start()

    def stop(self) -> None:
        self._serving.stop()
