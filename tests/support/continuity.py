"""Continuity's peers: colour publishers, a receiver that tells whose picture it shows, and
nginx-rtmp's session of a publisher (for `tests/e2e/test_continuity.py` and
`bench/continuity.py`)."""

from __future__ import annotations

import itertools
import re
import subprocess
import threading
import time
from typing import Any

from tests.support.media import ffmpeg
from worker.rtmp_server import RtmpServer

WHITE, GREY, BLACK = "primary", "backup", "slate"


def colour(mean: int) -> str:
    return WHITE if mean > 200 else GREY if mean > 60 else BLACK


class Receiver:
    """FFmpeg reading the restream's destination, each frame's arrival and colour noted."""

    def __init__(self, url: str) -> None:
        self.frames: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            [ffmpeg(), "-hide_banner", "-i", url, "-map", "0:v", "-vf", "showinfo",
             "-f", "null", "-"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            found = re.search(r" mean:\[(\d+)", line)
            if found:
                self.frames.append((time.monotonic(), colour(int(found.group(1)))))

    def showing(self, what: str, within_s: float = 0.5) -> bool:
        now = time.monotonic()
        recent = [c for at, c in self.frames if now - at < within_s]
        return bool(recent) and all(c == what for c in recent[-5:])

    def longest_gap_s(self) -> float:
        times = [at for at, _ in self.frames]
        return max(b - a for a, b in itertools.pairwise(times))


def publisher(colour_name: str, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", f"color=c={colour_name}:s=320x180:r=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25",
         "-c:a", "aac", "-f", "flv", url],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def publishing_client(server: RtmpServer, stream: str) -> str | None:
    """nginx-rtmp's id of the client publishing `stream`: the same id, the same session."""
    for block in re.findall(rb"<stream>.*?</stream>", server.stat_document() or b"", re.S):
        if f"<name>{stream}</name>".encode() in block:
            found = re.search(
                rb"<client><id>(\d+)</id>(?:(?!</client>).)*<publishing/>", block, re.S
            )
            return found.group(1).decode() if found else None
    return None


def continuity_body(base: str, *, loss_ms: int, failback_s: int) -> dict[str, Any]:
    """A restream pulling `base`/primary with `base`/backup as its backup, publishing to
    `base`/out (320x180 at 25 fps, one key frame a second)."""
    return {
        "name": "kept-alive",
        "inputs": [
            {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": f"{base}/primary"},
            {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": f"{base}/backup"},
        ],
        "continuity": {"input_loss_ms": loss_ms, "failback_s": failback_s, "slate_text": "Back soon"},
        "transcoding": {"video_transcoding": "libx264", "frame_width": 320, "frame_height": 180,
                        "filter_fps": 25, "preset": "veryfast", "tune": "zerolatency",
                        "output_video_bitrate": 400, "gop": 25},
        "outputs": [{"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL", "output_stream_url": f"{base}/out"}],
        "active": True,
    }  # fmt: skip
