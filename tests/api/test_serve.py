"""`api.serve.QuietServer`: uvicorn whose main loop wakes once a second, and exits at once on
a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.media import free_port
from tests.support.wait import wait_for

APP = """
import sys, uvicorn
from api.serve import QuietServer

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

QuietServer(uvicorn.Config(app, port=int(sys.argv[1]), log_level="warning")).run()
"""


def _switches(pid: int) -> int:
    """How often the process's main thread has gone to sleep and been woken."""
    status = Path(f"/proc/{pid}/task/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("voluntary_ctxt_switches"))
    return int(line.split()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).content == b"ok"
    except httpx.HTTPError:
        return False


def test_it_serves_wakes_once_a_second_and_exits_at_once_on_a_signal() -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", APP, str(port)])
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout_s=20, what="serving")
        before = _switches(server.pid)
        time.sleep(3)
        assert _switches(server.pid) - before <= 6  # uvicorn's own loop: about 30
        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(5) in (0, -signal.SIGTERM)  # uvicorn raises it again, once done
        assert time.monotonic() - began < 0.8  # not at the next second's wake-up
    finally:
        server.kill()
