"""The node's own RTSP server: npm's rtsp-streaming-server, run by the worker. Only its node
publishes (with the password of this run); players anywhere read H.264 and HEVC alike."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.support.media import ffmpeg, free_port, probe, stream_of
from tests.support.peers import running
from tests.support.processes import check_supervised
from tests.support.wait import wait_for
from worker.rtsp_server import RtspServer


@pytest.fixture
def server() -> Iterator[RtspServer]:
    why = RtspServer("0.0.0.0", 0).missing()
    if why is not None:
        pytest.skip(f"no RTSP server here: {why}")
    # It takes two ports in a row (players', and port + 1 for its node's publishers): another
    # test may hold the second, or take either between the look and the start: try another.
    served = wait_for(lambda: started(free_port()), timeout_s=10, what="two free ports")
    yield served
    served.stop()


def started(port: int) -> RtspServer | None:
    served = RtspServer("0.0.0.0", port)
    return served if served.start() is None else None


def publishing(url: str, codec: str) -> list[str]:
    return [
        ffmpeg(), "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10",
        "-c:v", codec, "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p",
        "-f", "rtsp", "-rtsp_transport", "udp", url,
    ]  # fmt: skip


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_the_node_publishes_and_players_read(server: RtspServer, codec: str) -> None:
    with running(publishing(f"{server.publish_url}/cam", codec)):
        played = wait_for(
            lambda: probe(f"rtsp://127.0.0.1:{server.port}/live/cam", timeout_s=8),
            timeout_s=20,
            what="the stream played",
        )
    assert stream_of(played, "video")["codec_name"] == {"libx264": "h264"}.get(codec, "hevc")


def test_no_one_else_publishes(server: RtspServer) -> None:
    intruder = f"rtsp://127.0.0.1:{server.publish_port}/live/cam"
    result = subprocess.run(
        [*publishing(intruder, "libx264")[:-1], "-t", "1", intruder],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "401" in result.stderr


def test_it_is_started_again_when_it_dies_and_leaves_nothing_when_stopped(
    server: RtspServer,
) -> None:
    check_supervised(server)
