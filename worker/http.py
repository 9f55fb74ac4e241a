"""The worker's small HTTP server: `/livez` and `/readyz` for probes, `/metrics` for
Prometheus, and `/live/<restream>/<output>/<file>`: the HLS and DASH its restreams write.

`/readyz` (and `/healthz`, its older name) answers 200 while the node's lease is certainly held
(the same test that gates its FFmpeg), 503 otherwise: a worker that cannot reach Redis does not
run restreams. `/livez` answers 200 while the worker's own machinery runs (its lease's threads,
its supervisor's loop), Redis or not: a liveness probe on it never restarts a fleet of workers
for a Redis outage.
Playback serves only files of the media directory, named as FFmpeg names them: no other path
can be reached, and an output's directory is named by a random id that no other answer of this
port gives away. `/metrics` asks for `Authorization: Bearer <metrics token>` when the farm has
one. The server binds the address it is given (the node's, by default), keeps at most
`MAX_CONNECTIONS` connections (more are closed at once) and drops a connection that sends
nothing for `IDLE_TIMEOUT_S`: half-open connections used to keep a thread each, forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from common.health import authorized
from common.lifecycle.commands import REFUSED
from common.live import RestreamStats

log = logging.getLogger(__name__)
# /live/<restream id>/<output id>/<playlist, manifest or segment>
PLAYBACK_PATH = re.compile(
    r"^/live/([0-9a-f]{24})/([0-9a-f]{24})/([A-Za-z0-9_-]+\.(m3u8|mpd|ts|m4s))$"
)
MAX_CONNECTIONS = 64  # players, probes and scrapers at once; one thread each
IDLE_TIMEOUT_S = 10.0  # a connection that sends no request within this is closed
MEDIA_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "mpd": "application/dash+xml",
    "ts": "video/mp2t",
    "m4s": "video/iso.segment",
}


class NodeView(Protocol):
    """What the server reads from the node runtime."""

    node: str

    def lease_valid(self) -> bool: ...
    def alive(self) -> bool: ...
    def restream_stats(self) -> list[RestreamStats]: ...
    def usage(self) -> dict[str, Any]: ...
    def lease_renew_seconds(self) -> list[float]: ...


class NodeCollector(Collector):
    """Per-restream and per-node figures, read from the runtime at scrape time."""

    def __init__(self, view: NodeView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        node = self.view.node
        labels = ["node", "restream"]
        gauges = {
            "bitrate_kbps": GaugeMetricFamily(
                "streamfleet_restream_bitrate_kbps", "Live output bitrate.", labels=labels
            ),
            "fps": GaugeMetricFamily(
                "streamfleet_restream_fps", "Frames per second FFmpeg processes.", labels=labels
            ),
            "speed": GaugeMetricFamily(
                "streamfleet_restream_speed", "FFmpeg's speed (1 = real time).", labels=labels
            ),
        }
        restarts = CounterMetricFamily(
            "streamfleet_restream_restarts", "FFmpeg restarts of this placement.", labels=labels
        )
        stalls = CounterMetricFamily(
            "streamfleet_restream_stalls", "FFmpeg killed for lack of progress.", labels=labels
        )
        running = GaugeMetricFamily(
            "streamfleet_restreams_running", "Restreams this node runs.", labels=["node", "state"]
        )
        states: dict[str, int] = {}
        for stats in self.view.restream_stats():
            key = [node, stats.restream_id]
            for name, gauge in gauges.items():
                value = getattr(stats, name)
                if value is not None:
                    gauge.add_metric(key, value)
            restarts.add_metric(key, stats.restarts)
            stalls.add_metric(key, stats.stalls)
            states[stats.state] = states.get(stats.state, 0) + 1
        for state, count in states.items():
            running.add_metric([node, state], count)
        yield from gauges.values()
        yield from (restarts, stalls, running)
        yield from self._capacity(node)
        ignored = CounterMetricFamily(
            "streamfleet_restream_reports_ignored",
            "Reports of this worker the run table refused (out of order), by the run state "
            "and the report.",
            labels=["node", "state", "observed"],
        )
        for (state, observed), count in sorted(REFUSED.items()):
            ignored.add_metric([node, state, observed], count)
        yield ignored

    def _capacity(self, node: str) -> Iterator[Metric]:
        usage = self.view.usage()
        cpu = GaugeMetricFamily(
            "streamfleet_node_cpu_millicores", "CPU capacity and use.", labels=["node", "kind"]
        )
        cpu.add_metric([node, "capacity"], usage["cpu_capacity"])
        cpu.add_metric([node, "used"], usage["cpu_used"])
        cpu.add_metric([node, "free"], usage["cpu_capacity"] - usage["cpu_used"])
        u30 = GaugeMetricFamily(
            "streamfleet_node_u30_encoder_units",
            "U30 encoder load units in use, per device (1,000,000 each).",
            labels=["node", "device"],
        )
        for device, units in usage["u30_encoder"].items():
            u30.add_metric([node, str(device)], units)
        lease = GaugeMetricFamily(
            "streamfleet_node_lease_valid", "1 while the node holds its lease.", labels=["node"]
        )
        lease.add_metric([node], 1 if self.view.lease_valid() else 0)
        renew = GaugeMetricFamily(
            "streamfleet_node_lease_renew_seconds",
            "How long the last lease renewal took.",
            labels=["node"],
        )
        samples = self.view.lease_renew_seconds()
        if samples:
            renew.add_metric([node], samples[-1])
        yield from (cpu, u30, lease, renew)


class _BoundedServer(ThreadingHTTPServer):
    """One thread per connection, at most `MAX_CONNECTIONS` of them."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: close it rather than queue a thread
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class WorkerHttp:
    """Serves `/healthz`, `/metrics` and playback on a port, in daemon threads."""

    def __init__(
        self,
        view: NodeView,
        port: int,
        address: str = "127.0.0.1",
        media_dir: Path | None = None,
        metrics_token: str | None = None,
    ) -> None:
        self.view = view
        registry = CollectorRegistry()
        registry.register(NodeCollector(view))
        handler = _handler(view, lambda: generate_latest(registry), media_dir, metrics_token)
        self.server = _BoundedServer((address, port), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self.thread.start()
        log.info("worker health and metrics on port %d", self.port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(
    view: NodeView,
    metrics: Callable[[], bytes],
    media_dir: Path | None,
    metrics_token: str | None,
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = IDLE_TIMEOUT_S  # on the connection's socket: a silent client is let go

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            playback = PLAYBACK_PATH.match(path)
            if path in ("/readyz", "/healthz"):
                valid = view.lease_valid()
                body = json.dumps({"node": view.node, "lease_valid": valid}).encode()
                self._answer(200 if valid else 503, "application/json", body)
            elif path == "/livez":
                alive = view.alive()
                body = json.dumps({"node": view.node, "alive": alive}).encode()
                self._answer(200 if alive else 500, "application/json", body)
            elif path == "/metrics":
                if authorized(self.headers.get("Authorization"), metrics_token):
                    self._answer(200, CONTENT_TYPE_LATEST, metrics())
                else:
                    body = b"/metrics needs Authorization: Bearer <metrics token>\n"
                    self._answer(401, "text/plain", body)
            elif playback is not None and media_dir is not None:
                self._media(media_dir.joinpath(*playback.group(1, 2, 3)), playback.group(4))
            else:
                self._answer(404, "text/plain", b"not found\n")

        def _media(self, file: Path, kind: str) -> None:
            try:
                body = file.read_bytes()
            except OSError:  # not written yet, or already deleted as the window moved
                self._answer(404, "text/plain", b"not found\n")
                return
            # Playlists and manifests change every segment; segments never do.
            live = kind in ("m3u8", "mpd")
            self._answer(200, MEDIA_TYPES[kind], body, cache="no-cache" if live else "max-age=60")

        def _answer(
            self, status: int, content_type: str, body: bytes, *, cache: str = "no-store"
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("Access-Control-Allow-Origin", "*")  # players on other origins
            self.end_headers()
            self.wfile.write(body)

        def handle(self) -> None:
            with contextlib.suppress(TimeoutError, ConnectionError):  # silent, or gone
                super().handle()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the log

    return Handler
