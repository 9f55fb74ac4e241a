"""The argv builder's tee argument, read by the real FFmpeg: Debian's and the static build a
fresh machine gets (imageio-ffmpeg)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from contextlib import ExitStack

import imageio_ffmpeg
import pytest

from common.definitions.restream import RestreamDefinition
from common.ffmpeg.argv import build_argv
from common.ffmpeg.placement import Placement

FFMPEGS = {"path": shutil.which("ffmpeg"), "imageio": imageio_ffmpeg.get_ffmpeg_exe()}


def udp_receiver(stack: ExitStack) -> socket.socket:
    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    return sock


def received(sock: socket.socket) -> int:
    total = 0
    while True:
        try:
            total += len(sock.recv(65536))
        except TimeoutError:
            return total


@pytest.fixture(params=sorted(FFMPEGS))
def ffmpeg(request: pytest.FixtureRequest) -> str:
    binary: str | None = FFMPEGS[request.param]
    if binary is None:
        pytest.skip("no ffmpeg on PATH (Debian's package ffmpeg)")
    return binary


def test_a_quote_in_one_url_leaves_the_other_outputs_and_the_meter_alone(ffmpeg: str) -> None:
    with ExitStack() as stack:
        first, second, meter = (udp_receiver(stack) for _ in range(3))
        port = {s: s.getsockname()[1] for s in (first, second, meter)}
        definition = RestreamDefinition.model_validate(
            {
                "input": {
                    "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
                    "resolution_width": 160,
                    "resolution_height": 90,
                    "encoding_rate": 10,
                    "video_duration_sec": 1,
                    "test_video_bitrate": 100,
                },
                "outputs": [
                    {
                        "output_type": "OUTPUT_TYPE_UDP_URL",
                        "output_stream_url": f"udp://127.0.0.1:{port[first]}?a='\\",
                    },
                    {
                        "output_type": "OUTPUT_TYPE_UDP_URL",
                        "output_stream_url": f"udp://127.0.0.1:{port[second]}",
                    },
                ],
            }
        )
        argv = build_argv(definition, Placement("n", meter_port=port[meter]))
        result = subprocess.run(
            [ffmpeg, *argv], capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "Slave muxer" not in result.stderr, result.stderr
        assert all(received(s) > 10_000 for s in (first, second, meter)), result.stderr
