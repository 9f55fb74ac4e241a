"""A webhook endpoint on loopback: checks each delivery's signature, fails the first ones
(`tests/api/test_webhooks.py`, `tests/e2e/test_walking_skeleton.py`)."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from typing import Any

from common.webhooks import delivery


class Receiver:
    """An HTTP endpoint on loopback that checks each delivery's signature and fails the first
    `failures` it gets."""

    def __init__(self, failures: int) -> None:
        self.secret = ""
        self.failures = failures
        self.redirect: str | None = None  # answer 302 to it
        self.got: list[dict[str, Any]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                at, mac = (p.split("=", 1)[1] for p in self.headers[delivery.SIGNATURE].split(","))
                expected = hmac.new(
                    receiver.secret.encode(), f"{at}.".encode() + body, hashlib.sha256
                ).hexdigest()
                receiver.got.append(
                    {
                        "body": json.loads(body),
                        "signed": hmac.compare_digest(mac, expected),
                        "fresh": abs(time.time() - int(at)) < 60,
                        "delivery": self.headers["Streamfleet-Delivery"],
                        "at": time.monotonic(),
                    }
                )
                status = 503 if len(receiver.got) <= receiver.failures else 200
                answer = b"not now" if status == 503 else b"thanks"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
