"""The worker's health and metrics endpoint."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import Histogram
from prometheus_client.registry import Collector

from common.live import OutputStatus, RestreamStats
from tests.api.test_metrics import sample
from worker import http as worker_http
from worker.http import WorkerHttp


class FakeNode:
    node = "n1"

    def __init__(self) -> None:
        self.valid = True
        self.working = True

    def lease_valid(self) -> bool:
        return self.valid

    def alive(self) -> bool:
        return self.working

    def restream_stats(self) -> list[RestreamStats]:
        return [
            RestreamStats(
                restream_id="r1", node="n1", generation=2, state="running", pid=4242,
                bitrate_kbps=812.5, fps=25.0, speed=1.0, frames=250, bytes_out=1_015_625,
                dup_frames=2, drop_frames=1, uptime_s=10.0, restarts=3, stalls=1,
                updated_at=1_800_000_010.0,
                outputs=[OutputStatus(index=0, status="ok"), OutputStatus(index=1, status="failed")],
            )
        ]  # fmt: skip

    def usage(self) -> dict[str, Any]:
        return {"cpu_capacity": 2000, "cpu_used": 500, "u30_encoder": {0: 250_000}}

    def node_info(self) -> dict[str, str]:
        return {"address": "10.0.0.5", "ffmpeg_version": "5.1.6", "ffmpeg_path": "/usr/bin/ffmpeg"}

    def collectors(self) -> list[Collector]:
        renewals = Histogram("streamfleet_node_lease_renew_duration_seconds", "", registry=None)
        renewals.observe(0.002)
        renewals.observe(0.003)
        return [renewals]


@pytest.fixture
def served() -> Iterator[tuple[FakeNode, str]]:
    node = FakeNode()
    http = WorkerHttp(node, 0, "127.0.0.1")
    http.start()
    yield node, f"http://127.0.0.1:{http.port}"
    http.stop()


def test_readiness_follows_the_lease_and_liveness_the_process(
    served: tuple[FakeNode, str],
) -> None:
    node, base = served
    for ready in ("/readyz", "/healthz"):
        assert httpx.get(f"{base}{ready}").json() == {"node": "n1", "lease_valid": True}
    node.valid = False  # Redis away: not ready, still alive
    assert httpx.get(f"{base}/readyz").status_code == 503
    assert httpx.get(f"{base}/healthz").status_code == 503
    assert httpx.get(f"{base}/livez").json() == {"node": "n1", "alive": True}
    node.working = False
    assert httpx.get(f"{base}/livez").status_code == 500
    assert httpx.get(f"{base}/nope").status_code == 404


def test_metrics(served: tuple[FakeNode, str]) -> None:
    _, base = served
    text = httpx.get(f"{base}/metrics").text
    r1 = {"node": "n1", "restream": "r1"}
    assert sample(text, "streamfleet_restream_output_bytes_total", **r1) == 1_015_625
    assert sample(text, "streamfleet_restream_frames_total", **r1) == 250
    assert sample(text, "streamfleet_restream_dropped_frames_total", **r1) == 1
    assert sample(text, "streamfleet_restream_duplicated_frames_total", **r1) == 2
    assert sample(text, "streamfleet_restream_restarts_total", **r1) == 3
    assert sample(text, "streamfleet_restream_stalls_total", **r1) == 1
    assert sample(text, "streamfleet_restream_speed_ratio", **r1) == 1.0
    assert sample(text, "streamfleet_restream_start_time_seconds", **r1) == 1_800_000_000.0
    assert sample(text, "streamfleet_restream_output_up", **r1, output="0") == 1
    assert sample(text, "streamfleet_restream_output_up", **r1, output="1") == 0
    assert sample(text, "streamfleet_node_restreams", node="n1", state="running") == 1
    assert sample(text, "streamfleet_node_cpu_capacity_cores", node="n1") == 2.0
    assert sample(text, "streamfleet_node_cpu_reserved_cores", node="n1") == 0.5
    assert sample(text, "streamfleet_node_u30_encoder_load_ratio", node="n1", device="0") == 0.25
    assert sample(text, "streamfleet_node_lease_valid", node="n1") == 1
    info = {"address": "10.0.0.5", "ffmpeg_version": "5.1.6", "ffmpeg_path": "/usr/bin/ffmpeg"}
    assert sample(text, "streamfleet_node_info", node="n1", **info) == 1
    assert sample(text, "streamfleet_node_lease_renew_duration_seconds_count") == 2
    assert sample(text, "streamfleet_node_lease_renew_duration_seconds_bucket", le="0.005") == 2
    assert sample(text, "process_cpu_seconds_total") is not None  # the standard collectors
    assert sample(text, "python_gc_collections_total", generation="0") is not None


def test_playback_serves_the_media_directory_and_nothing_else(tmp_path: Path) -> None:
    restream, output = "a" * 24, "b" * 24
    folder = tmp_path / "media" / restream / output
    folder.mkdir(parents=True)
    (folder / "index.m3u8").write_text("#EXTM3U\n")
    (folder / "segment_000001.ts").write_bytes(b"\x47" * 188)
    (tmp_path / "secret.txt").write_text("not for players")
    http = WorkerHttp(FakeNode(), 0, "127.0.0.1", media_dir=tmp_path / "media")
    http.start()
    base = f"http://127.0.0.1:{http.port}/live/{restream}/{output}"
    try:
        playlist = httpx.get(f"{base}/index.m3u8")
        assert (playlist.status_code, playlist.text) == (200, "#EXTM3U\n")
        assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert playlist.headers["cache-control"] == "no-cache"
        segment = httpx.get(f"{base}/segment_000001.ts")
        assert (segment.status_code, segment.headers["content-type"]) == (200, "video/mp2t")
        assert httpx.get(f"{base}/segment_000002.ts").status_code == 404  # not (yet) written
        for path in (
            f"{base}/../../secret.txt",
            f"{base}/%2e%2e%2f%2e%2e%2fsecret.txt",
            f"http://127.0.0.1:{http.port}/live/{restream}/{output}/secret.txt",
            f"http://127.0.0.1:{http.port}/live/../secret.txt",
        ):
            assert httpx.get(path).status_code == 404, path
    finally:
        http.stop()


def test_metrics_ask_for_the_token_when_the_farm_has_one() -> None:
    http = WorkerHttp(FakeNode(), 0, "127.0.0.1", metrics_token="t0k3n-" + "x" * 20)
    http.start()
    base = f"http://127.0.0.1:{http.port}"
    try:
        assert httpx.get(f"{base}/metrics").status_code == 401
        wrong = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer t0k3n"})
        assert wrong.status_code == 401
        right = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer t0k3n-" + "x" * 20})
        assert right.status_code == 200 and "streamfleet_node_lease_valid" in right.text
        assert httpx.get(f"{base}/healthz").status_code == 200  # probes need no token
    finally:
        http.stop()


def test_silent_and_surplus_connections_do_not_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """500 half-open connections used to hold 500 threads, forever: now a connection that
    sends nothing is closed after the idle timeout, and beyond the cap one is closed at once,
    while the port keeps answering."""
    monkeypatch.setattr(worker_http, "IDLE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(worker_http, "MAX_CONNECTIONS", 8)
    http = WorkerHttp(FakeNode(), 0, "127.0.0.1")
    http.start()
    silent = []
    try:
        for _ in range(20):
            silent.append(socket.create_connection(("127.0.0.1", http.port)))
        for sock in silent[8:]:  # beyond the cap: closed at once
            sock.settimeout(2)
            assert sock.recv(1) == b""
        for sock in silent[:8]:  # idle: closed after the timeout
            sock.settimeout(3)
            assert sock.recv(1) == b""
        assert httpx.get(f"http://127.0.0.1:{http.port}/healthz").status_code == 200
    finally:
        for sock in silent:
            sock.close()
        http.stop()


def test_it_binds_the_address_it_is_given() -> None:
    http = WorkerHttp(FakeNode(), 0, "127.0.0.1")
    try:
        assert http.server.server_address[0] == "127.0.0.1"
    finally:
        http.server.server_close()
