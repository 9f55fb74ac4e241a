"""The capability probe: parsers on real output, and the real binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from common.ffmpeg.probe import (
    parse_codecs,
    parse_hwaccels,
    parse_protocols,
    parse_version,
    parse_video_codec,
    probe,
    source_video_codec,
    try_encoder,
)
from tests.support.media import ffmpeg, free_port
from tests.support.peers import publisher, running

ENCODERS = """Encoders:
 V..... = Video
 A..... = Audio
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D libx265              libx265 H.265 / HEVC (codec hevc)
 A..... aac                  AAC (Advanced Audio Coding)
 A....D libmp3lame           libmp3lame MP3 (MPEG audio layer 3) (codec mp3)
"""


@pytest.mark.parametrize(
    ("text", "version", "major"),
    [
        ("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026", "5.1.9-0+deb12u1", 5),
        (
            "ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright",
            "n9.0.2-17-g2a571b6068-20260930",
            9,
        ),
        ("ffmpeg version 6.0-static https://johnvansickle.com/ffmpeg/", "6.0-static", 6),
        ("ffmpeg version N-112345-gabcdef Copyright", "N-112345-gabcdef", None),
        ("garbage", "unknown", None),
    ],
)
def test_parse_version(text: str, version: str, major: int | None) -> None:
    assert parse_version(text) == (version, major)


def test_parse_codecs_skips_the_legend() -> None:
    assert parse_codecs(ENCODERS) == {"libx264", "libx265", "aac", "libmp3lame"}


def test_probe_of_the_real_binary() -> None:
    capabilities = probe(ffmpeg())
    assert capabilities.major is not None and capabilities.major >= 5
    assert {"libx264", "aac"} <= capabilities.encoders


PROTOCOLS = """Supported file protocols:
Input:
  file
  http
  srt
Output:
  file
  rtmp
  srt
"""


def test_parse_protocols_joins_inputs_and_outputs() -> None:
    assert parse_protocols(PROTOCOLS) == {"file", "http", "srt", "rtmp"}


def test_parse_hwaccels() -> None:
    assert parse_hwaccels("Hardware acceleration methods:\nvdpau\ncuda\n\n") == {"vdpau", "cuda"}
    assert parse_hwaccels("garbage") == frozenset()


def test_trying_an_encoder_tells_why_it_fails() -> None:
    assert try_encoder(ffmpeg(), "libx264", "video") is None
    error = try_encoder(ffmpeg(), "mpsoc_vcu_h264", "video")  # no U30 here
    assert error is not None
    assert "mpsoc_vcu_h264" in error or "xlnx_hwdev" in error or "not found" in error.lower()


def test_the_real_binary_knows_the_protocols_restreams_use() -> None:
    capabilities = probe(ffmpeg())
    # RTSP is a format in FFmpeg, not listed by -protocols: an rtsp:// pull needs it all the same.
    assert {"rtmp", "srt", "udp", "http", "rtp", "file", "rtsp"} <= capabilities.protocols
    assert capabilities.failed_encoders == {}


def test_the_source_codec_is_read_from_the_input_as_opened(tmp_path: Path) -> None:
    clip = tmp_path / "clip.ts"
    subprocess.run(
        [
            ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi",
            "-i", "testsrc2=size=160x90:rate=10:duration=1", "-c:v", "libx265",
            "-x265-params", "log-level=error", str(clip),
        ],
        check=True,
    )  # fmt: skip
    assert source_video_codec(ffmpeg(), ["-i", str(clip)]) == "hevc"
    assert source_video_codec(ffmpeg(), ["-i", str(tmp_path / "missing.ts")]) is None
    line = "  Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), yuv420p"
    assert parse_video_codec(f"Input #0, mpegts\n{line}\n") == "h264"


def test_the_source_codec_of_a_live_source_that_never_ends(tmp_path: Path) -> None:
    """A UDP pull has no end: the probe stops once FFmpeg has listed the input's streams."""
    port = free_port()
    sender = publisher(["-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"], rate=10)
    with running(sender, tmp_path / "sender.log"):
        codec = source_video_codec(ffmpeg(), ["-i", f"udp://127.0.0.1:{port}"], timeout_s=12)
    assert codec == "h264"
