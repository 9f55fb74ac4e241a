"""An SRT server module: the router on libsrt, run by the worker, with real FFmpeg publishers
and players (SRT callers with stream ids, as OBS and ffplay are)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from common.definitions.server import ServerKind, ServerSpec
from tests.support.media import free_port, probe, stream_of
from tests.support.peers import publisher, running
from tests.support.processes import check_supervised
from tests.support.wait import wait_for
from worker import libsrt
from worker.srt_server import SrtServer

SECRET = "0123456789abc"


@pytest.fixture
def server() -> Iterator[SrtServer]:
    if libsrt.missing() is not None:
        pytest.skip("libsrt is not installed (Debian: libsrt1.5-openssl; .ci/run installs it)")
    spec = ServerSpec(
        kind=ServerKind.SRT, name="studio", port=free_port(), latency_ms=120, passphrase=SECRET
    )
    served = SrtServer("127.0.0.1", spec)
    assert served.start() is None
    yield served
    served.stop()


def url(server: SrtServer, streamid: str, passphrase: str = SECRET) -> str:
    return f"srt://127.0.0.1:{server.port}?streamid={streamid}&passphrase={passphrase}"


def width(target: str) -> int:
    return int(stream_of(probe(target, timeout_s=8), "video")["width"])


def refused(target: str) -> bool:
    try:
        probe(target, timeout_s=4)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return True
    return False


def test_streams_are_routed_by_streamid(server: SrtServer) -> None:
    cam1 = publisher(["-f", "mpegts", url(server, "publisher/studio/cam1")], size="160x90", rate=10)
    with running(cam1):
        assert wait_for(lambda: width(url(server, "receiver/studio/cam1")), timeout_s=15) == 160
        assert width(url(server, "#!::r=studio/cam1,m=request")) == 160
        assert width(url(server, "receiver/studio/")) == 160  # the only stream
        assert refused(url(server, "receiver/other-server/cam1"))
        assert refused(url(server, "receiver/studio/cam1", passphrase="wrong-passphrase"))
        cam2 = publisher(["-f", "mpegts", url(server, "publisher/studio/cam2")], size="320x180")
        with running(cam2):
            assert wait_for(lambda: width(url(server, "player/studio/cam2")), timeout_s=15) == 320
            assert width(url(server, "receiver/studio/cam1")) == 160
        shown = {s.name: s for s in server.streams()}
        assert shown["cam1"].publisher is not None and shown["cam1"].publisher.kbps > 0


def test_it_is_started_again_when_it_dies_and_leaves_nothing_when_stopped(
    server: SrtServer,
) -> None:
    check_supervised(server)


def test_it_says_why_it_cannot_run() -> None:
    spec = ServerSpec(kind=ServerKind.SRT, name="studio", port=free_port())
    if libsrt.missing() is not None:
        pytest.skip("libsrt is not installed (Debian: libsrt1.5-openssl; .ci/run installs it)")
    first = SrtServer("127.0.0.1", spec)
    assert first.start() is None
    try:
        taken = SrtServer("127.0.0.1", spec).start()
        assert taken is not None and f"port {spec.port} is taken" in taken
    finally:
        first.stop()
