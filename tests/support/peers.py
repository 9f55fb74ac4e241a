"""Third-party peers the media tests talk to on loopback: FFmpeg itself (publishing, serving,
receiving), nginx-rtmp, srt-live-transmit, an RTSP server that serves players, and a plain
HTTP server for HLS/DASH files.

Debian's nginx-rtmp and srt-tools, and the npm RTSP server, are installed by `.ci/run` (and by
`make rtsp` where npm exists); a test that needs one that is missing is skipped, saying so.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import itertools
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.media import ffmpeg, free_port
from tests.support.wait import wait_for

RTSP_PACKAGE = Path(__file__).parents[2] / "worker" / "rtsp"  # the node's RTSP server's
NGINX_RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(argv: list[str], log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A peer process for the duration of the block."""
    sink = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
    try:
        yield process
    finally:
        _stop(process)
        if log is not None and not isinstance(sink, int):
            sink.close()


def publisher(output: list[str], *, size: str = "320x180", rate: int = 25) -> list[str]:
    """FFmpeg sending a live H.264 + AAC test signal (2 s GOP) to `output` (format and URL)."""
    return [
        ffmpeg(), "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(2 * rate),
        "-b:v", "500k", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", *output,
    ]  # fmt: skip


def receiver(input_args: list[str], recording: Path, seconds: float) -> list[str]:
    """FFmpeg reading `input_args` and recording `seconds` of it, as is."""
    return [
        ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *input_args,
        "-t", str(seconds), "-map", "0", "-c", "copy", "-f", "mpegts", str(recording),
    ]  # fmt: skip


@contextlib.contextmanager
def nginx_rtmp(tmp: Path, port: int | None = None) -> Iterator[int]:
    """nginx with the RTMP module on `port` (a free one if not given): application `live`,
    live on. Yields the port."""
    if shutil.which("nginx") is None or not NGINX_RTMP_MODULE.exists():
        pytest.skip("nginx-rtmp is not installed (Debian: libnginx-mod-rtmp; .ci/run installs it)")
    port = port or free_port()
    prefix = tmp / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(
        f"load_module {NGINX_RTMP_MODULE};\n"
        "daemon off;\nmaster_process off;\n"
        f"error_log {prefix}/error.log info;\npid {prefix}/nginx.pid;\n"
        "events { worker_connections 256; }\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n"
        "  application live { live on; record off; } } }\n"
    )
    with running(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")], prefix / "out"):
        wait_for(lambda: _listening(port), timeout_s=10, what="nginx-rtmp")
        yield port


@contextlib.contextmanager
def srt_relay(source: str, target: str, log: Path) -> Iterator[None]:
    """srt-live-transmit between two URIs (e.g. udp://:5000 to srt://:6000?mode=listener)."""
    binary = shutil.which("srt-live-transmit")
    if binary is None:
        pytest.skip("srt-live-transmit is not installed (Debian: srt-tools; .ci/run installs it)")
    with running([binary, "-q", source, target], log):
        yield


@contextlib.contextmanager
def rtsp_server(log: Path) -> Iterator[tuple[int, int]]:
    """An RTSP server (npm rtsp-streaming-server): yields (publish port, play port)."""
    node = shutil.which("node")
    if node is None or not (RTSP_PACKAGE / "node_modules" / "rtsp-streaming-server").exists():
        pytest.skip("the RTSP server peer needs Node.js and `make rtsp` (npm ci in worker/rtsp)")
    publish, play = free_port(), free_port()
    rtp = 20000 + (play % 20000)
    with running(
        [node, str(RTSP_PACKAGE / "rtsp_server.js"), str(publish), str(play), str(rtp)], log
    ):
        wait_for(lambda: _listening(publish) and _listening(play), timeout_s=10, what="rtsp")
        yield publish, play


@contextlib.contextmanager
def http_files(directory: Path) -> Iterator[int]:
    """A plain HTTP server of `directory` (for HLS/DASH pulls). Yields its port."""
    with _serving(functools.partial(_QuietHandler, directory=str(directory))) as port:
        yield port


@contextlib.contextmanager
def http_status(status: int) -> Iterator[int]:
    """An HTTP server answering every GET with `status` and no body (an origin that refuses
    credentials, say). Yields its port."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with _serving(Answer) as port:
        yield port


@contextlib.contextmanager
def _serving(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def bound(port: int, *, udp: bool) -> bool:
    """True once something on this machine listens on `port` (TCP) or has it bound (UDP).

    Read from /proc/net, not by connecting: FFmpeg in listen mode takes the first connection
    that comes, and a probe's would be it."""
    tables = ("/proc/net/udp", "/proc/net/udp6") if udp else ("/proc/net/tcp", "/proc/net/tcp6")
    for table in tables:
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state = fields[1], fields[3]
                if int(local.rsplit(":", 1)[1], 16) == port and (udp or state == "0A"):
                    return True
    return False


class FrameCounter:
    """A player: FFmpeg reading `url` and decoding nothing, whose frame counter is sampled
    (time, frames) every 0.2 s from its progress output. Use as a context manager."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, int]] = []
        self.process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FrameCounter:
        argv = [
            ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "error",
            "-progress", "pipe:1", "-stats_period", "0.2",
            "-i", self.url, "-map", "0:v", "-c", "copy", "-f", "null", "-",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None:
            _stop(self.process)
        if self._thread is not None:
            self._thread.join(5)

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("frame="):
                self.samples.append((time.monotonic(), int(line.removeprefix("frame="))))

    @property
    def frames(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def longest_stall_s(self, since: float) -> float:
        """The longest time after `since` during which the counter did not move."""
        pairs = itertools.pairwise(list(self.samples))
        moved = [t for (_, before), (t, n) in pairs if n > before and t > since]
        return max(b - a for a, b in itertools.pairwise([since, *moved, time.monotonic()]))
