"""`common.health.Serving`: answers at once, sleeps between clients, stops at once."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from common.health import Serving


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


def _switches(native_id: int) -> int:
    """How often the thread has gone to sleep and been woken."""
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("voluntary_ctxt_switches"))
    return int(line.split()[1])


def test_it_answers_sleeps_between_clients_and_stops_at_once() -> None:
    serving = Serving(ThreadingHTTPServer(("127.0.0.1", 0), _Hello), "test-http")
    serving.start()
    url = f"http://127.0.0.1:{serving.server.server_address[1]}/"
    assert httpx.get(url, timeout=5).content == b"hello"
    assert serving.thread.native_id is not None
    before = _switches(serving.thread.native_id)
    time.sleep(2.5)
    assert _switches(serving.thread.native_id) - before <= 1  # serve_forever: every 0.5 s
    assert httpx.get(url, timeout=5).content == b"hello"
    began = time.monotonic()
    serving.stop()
    assert time.monotonic() - began < 0.5 and not serving.thread.is_alive()
