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

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from common.health import Serving, authorized, process_registry
from common.lifecycle.commands import REFUSED
from common.live import RestreamStats
from common.nodes.capacity import ENGINE_UNITS

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
    def node_info(self) -> dict[str, str]: ...
    def collectors(self) -> list[Collector]: ...


class NodeCollector(Collector):
    """Per-restream and per-node figures, read from the runtime at scrape time, named and typed
    as Prometheus' conventions ask: base units, `_total` counters (rate() gives a bitrate or
    a frame rate; FFmpeg restarting resets them, which rate() handles), an `_info` metric."""

    def __init__(self, view: NodeView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        node = self.view.node
        labels = ["node", "restream"]

        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(f"streamfleet_restream_{name}", doc, labels=labels)

        counters = {
            "bytes_out": counter("output_bytes", "Bytes FFmpeg wrote to its outputs."),
            "frames": counter("frames", "Frames FFmpeg processed."),
            "drop_frames": counter("dropped_frames", "Frames FFmpeg dropped."),
            "dup_frames": counter("duplicated_frames", "Frames FFmpeg duplicated."),
            "restarts": counter("restarts", "FFmpeg restarts of this placement."),
            "stalls": counter("stalls", "FFmpeg killed for lack of progress."),
        }
        speed = GaugeMetricFamily(
            "streamfleet_restream_speed_ratio", "FFmpeg's speed (1 = real time).", labels=labels
        )
        started = GaugeMetricFamily(
            "streamfleet_restream_start_time_seconds",
            "Unix time the restream's running FFmpeg started.",
            labels=labels,
        )
        outputs = GaugeMetricFamily(
            "streamfleet_restream_output_up",
            "1 while an output is written, 0 once it failed (the others go on), by its index.",
            labels=[*labels, "output"],
        )
        on_air = GaugeMetricFamily(
            "streamfleet_restream_on_air_since_seconds",
            "Continuity: the input on air (primary, backup, slate) and since when (Unix time).",
            labels=[*labels, "input"],
        )
        by_state = GaugeMetricFamily(
            "streamfleet_node_restreams",
            "Restreams this node runs, by its view of them (starting, running, retrying).",
            labels=["node", "state"],
        )
        states: dict[str, int] = {}
        for stats in self.view.restream_stats():
            key = [node, stats.restream_id]
            for field, family in counters.items():
                value = getattr(stats, field)
                if value is not None:
                    family.add_metric(key, value)
            if stats.speed is not None:
                speed.add_metric(key, stats.speed)
            if stats.pid is not None:
                started.add_metric(key, stats.updated_at - stats.uptime_s)
            if stats.on_air is not None and stats.on_air_since is not None:
                on_air.add_metric([*key, stats.on_air], stats.on_air_since)
            for output in stats.outputs:
                outputs.add_metric([*key, str(output.index)], 1 if output.status == "ok" else 0)
            states[stats.state] = states.get(stats.state, 0) + 1
        for state, count in states.items():
            by_state.add_metric([node, state], count)
        yield from counters.values()
        yield from (speed, started, outputs, on_air, by_state)
        yield from self._node(node)
        ignored = CounterMetricFamily(
            "streamfleet_restream_reports_ignored",
            "Reports of this worker the run table refused (out of order), by the run state "
            "and the report.",
            labels=["node", "state", "observed"],
        )
        for (state, observed), count in sorted(REFUSED.items()):
            ignored.add_metric([node, state, observed], count)
        yield ignored

    def _node(self, node: str) -> Iterator[Metric]:
        info = self.view.node_info()
        described = InfoMetricFamily(
            "streamfleet_node", "The node: its address and FFmpeg.", labels=["node", *info]
        )
        described.add_metric([node, *info.values()], {})
        usage = self.view.usage()
        capacity = GaugeMetricFamily(
            "streamfleet_node_cpu_capacity_cores",
            "CPU the node offers to placement (cores x overcommit, or as configured).",
            labels=["node"],
        )
        capacity.add_metric([node], usage["cpu_capacity"] / 1000)
        reserved = GaugeMetricFamily(
            "streamfleet_node_cpu_reserved_cores",
            "CPU its restreams reserve, as placement counts it.",
            labels=["node"],
        )
        reserved.add_metric([node], usage["cpu_used"] / 1000)
        u30 = GaugeMetricFamily(
            "streamfleet_node_u30_encoder_load_ratio",
            "Share of a U30 device's encoder its restreams reserve (1 = full), per device.",
            labels=["node", "device"],
        )
        for device, units in usage["u30_encoder"].items():
            u30.add_metric([node, str(device)], units / ENGINE_UNITS)
        lease = GaugeMetricFamily(
            "streamfleet_node_lease_valid", "1 while the node holds its lease.", labels=["node"]
        )
        lease.add_metric([node], 1 if self.view.lease_valid() else 0)
        yield from (described, capacity, reserved, u30, lease)


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
        self.registry = process_registry()
        self.registry.register(NodeCollector(view))
        for collector in view.collectors():
            self.registry.register(collector)
        handler = _handler(view, lambda: generate_latest(self.registry), media_dir, metrics_token)
        self.server = _BoundedServer((address, port), handler)
        self.port = self.server.server_address[1]
        self.serving = Serving(self.server, "http")

    def start(self) -> None:
        self.serving.start()
        log.info("worker health and metrics on port %d", self.port)

    def stop(self) -> None:
        self.serving.stop()


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
