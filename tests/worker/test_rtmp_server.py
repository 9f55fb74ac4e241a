"""The node's own RTMP server: Debian's nginx with the RTMP module, run by the worker."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.media import free_port, probe, stream_of
from tests.support.peers import publisher, running
from tests.support.processes import check_supervised
from tests.support.wait import wait_for
from worker.rtmp_server import RTMP_MODULE, RtmpServer, nginx_config


def test_only_this_node_publishes_and_anyone_plays() -> None:
    config = nginx_config(Path("/run/x"), "0.0.0.0", 1935, RTMP_MODULE)
    assert "listen 0.0.0.0:1935;" in config
    assert "allow publish 127.0.0.1;\n            deny publish all;" in config
    assert "allow play all;" in config and "record off;" in config
    assert "master_process off;" in config  # one process: nothing outlives the worker
    assert "listen [::]:1936;" in nginx_config(Path("/run/x"), "::", 1936, RTMP_MODULE)


@pytest.fixture
def server() -> Iterator[RtmpServer]:
    if shutil.which("nginx") is None or not RTMP_MODULE.exists():
        pytest.skip("nginx-rtmp is not installed (Debian: libnginx-mod-rtmp; .ci/run installs it)")
    server = RtmpServer("127.0.0.1", free_port())
    assert server.start() is None
    yield server
    server.stop()


def test_a_stream_published_to_it_plays_from_it(server: RtmpServer) -> None:
    with running(publisher(["-f", "flv", f"{server.url}/a-key"], size="160x90", rate=10)):
        played = wait_for(
            lambda: probe(f"rtmp://127.0.0.1:{server.port}/live/a-key", timeout_s=5),
            what="the stream played back",
        )
    assert stream_of(played, "video")["width"] == 160


def test_it_is_started_again_when_it_dies_and_leaves_nothing_when_stopped(
    server: RtmpServer,
) -> None:
    check_supervised(server)
    with socket.socket() as probe_port:  # the port is free again
        probe_port.bind(("127.0.0.1", server.port))


def test_it_says_why_it_cannot_run(tmp_path: Path) -> None:
    missing = RtmpServer("127.0.0.1", free_port(), binary="no-such-nginx").start()
    assert missing is not None and "not installed" in missing
    if shutil.which("nginx") is None or not RTMP_MODULE.exists():
        return
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        taken = RtmpServer("127.0.0.1", port).start()
    assert taken is not None and f"port {port} is taken" in taken


def test_a_server_module_takes_publishers_and_shows_its_streams() -> None:
    if shutil.which("nginx") is None or not RTMP_MODULE.exists():
        pytest.skip("nginx-rtmp is not installed (Debian: libnginx-mod-rtmp; .ci/run installs it)")
    server = RtmpServer("127.0.0.1", free_port(), module_server=True)
    assert server.start() is None
    try:
        url = f"rtmp://127.0.0.1:{server.port}/live/key1"
        with running(publisher(["-f", "flv", url], size="160x90", rate=10)):
            assert stream_of(wait_for(lambda: probe(url, timeout_s=5)), "video")["width"] == 160
            # nginx-rtmp averages bitrates over 10 s: bytes show first.
            streams = wait_for(
                lambda: [s for s in server.streams() if s.publisher and s.publisher.bytes > 0],
                timeout_s=20,
                what="the stream's statistics",
            )
        assert [s.name for s in streams] == ["key1"]
        assert streams[0].publisher is not None
        assert streams[0].publisher.address == "127.0.0.1"
    finally:
        server.stop()
