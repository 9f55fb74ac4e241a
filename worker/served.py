"""A server process the worker runs beside its FFmpeg (nginx-rtmp, the SRT router): spawned in
its own process group, set to die with the worker, started again when it dies (after a pause
that grows while it keeps dying), ended with everything it wrote when stopped.

A kind of server says what it needs (`missing`), writes its files and names its command
(`prepare`), and says when it takes connections (`answers`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from common.processes import pdeathsig_prefix, set_parent_death_signal

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 5.0
RESTART_PAUSE_S = (0.5, 5.0)  # the first pause after a crash, and the longest
STOP_GRACE_S = 2.0


class ServedProcess:
    """One supervised server process on `address`:`port` (`transport`: "TCP" or "UDP")."""

    name = "server"
    transport = "TCP"
    end_signal = signal.SIGTERM

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.prefix: Path | None = None
        self.argv: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- what a kind of server says --------------------------------------------------------

    def missing(self) -> str | None:
        """What this node lacks to run it, if anything."""
        return None

    def prepare(self, prefix: Path) -> list[str]:
        """Write its files under `prefix`; its command line."""
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def spawning(self) -> dict[str, str] | None:
        """Called before each spawn: its environment (None: the worker's)."""
        return None

    # -- running it ------------------------------------------------------------------------

    def start(self) -> str | None:
        """Run it and wait until it takes connections: None then; otherwise why it cannot."""
        why = self.missing() or self._port_taken()
        if why is not None:
            return why
        self.prefix = Path(tempfile.mkdtemp(prefix=f"streamfleet-{self.name}-"))
        self.argv = self.prepare(self.prefix)
        # Spawned, and spawned again, by one thread that lives as long as it runs: the signal
        # that ends it with the worker comes when the thread that spawned it ends.
        first: Future[str | None] = Future()
        self._watcher = threading.Thread(
            target=self._run, args=(first,), name=f"{self.name}-{self.port}", daemon=True
        )
        self._watcher.start()
        why = first.result()
        if why is not None:
            self._watcher.join()
            self._remove()
        return why

    def stop(self) -> None:
        """End it (its clients are dropped) and remove its directory."""
        self._stopping.set()
        if self.process is not None:
            self._end(self.process)
        if self._watcher is not None:
            self._watcher.join()
        self._remove()

    @property
    def log_path(self) -> Path | None:
        return self.prefix / "error.log" if self.prefix else None

    def error_tail(self) -> str:
        """Its last error line (else its last line): what it said when it gave up."""
        if self.log_path is None:
            return ""
        with contextlib.suppress(OSError):
            lines = [
                line for line in self.log_path.read_text(errors="replace").splitlines() if line
            ]
            errors = [line for line in lines if "error" in line.lower()]
            return (errors or lines or ["no error logged"])[-1].strip()
        return "no error log"

    # -- inside ----------------------------------------------------------------------------

    def _spawn_and_wait(self) -> str | None:
        assert self.log_path is not None
        tied = pdeathsig_prefix("KILL")  # dies with the worker
        environment = self.spawning()
        with self.log_path.open("ab") as errors:  # what it says before its own log
            self.process = subprocess.Popen(
                [*tied, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                env=environment,
                start_new_session=True,  # its own process group: ended as a whole
                preexec_fn=None if tied else set_parent_death_signal,  # noqa: PLW1509
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"{self.name} exited ({self.process.returncode}): {self.error_tail()}"
            if self.answers():
                return None
            time.sleep(0.02)
        self._end(self.process)
        return f"{self.name} did not take connections within {READY_TIMEOUT_S:g} s"

    def _run(self, first: Future[str | None]) -> None:
        why = self._spawn_and_wait()
        first.set_result(why)
        if why is not None:
            return
        pause = RESTART_PAUSE_S[0]
        while not self._stopping.is_set():
            assert self.process is not None
            self.process.wait()
            if self._stopping.wait(pause):
                return
            self.restarts += 1
            log.warning(
                "%s on port %d exited (%s): %s; starting it again",
                self.name,
                self.port,
                self.process.returncode,
                self.error_tail(),
            )
            why = self._spawn_and_wait()
            if why is None:
                pause = RESTART_PAUSE_S[0]
            else:
                log.warning("%s could not start again: %s", self.name, why)
                pause = min(pause * 2, RESTART_PAUSE_S[1])

    def ports(self) -> list[tuple[int, str]]:
        """The ports it listens on, each with its transport."""
        return [(self.port, self.transport)]

    def _port_taken(self) -> str | None:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        for port, transport in self.ports():
            kind = socket.SOCK_DGRAM if transport == "UDP" else socket.SOCK_STREAM
            with socket.socket(family, kind) as probe:
                if kind == socket.SOCK_STREAM:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.address, port))
                except OSError as error:
                    return f"port {port} is taken: {error.strerror or error}"
        return None

    def _remove(self) -> None:
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        """Its graceful end, SIGKILL to its group if it lingers."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self.end_signal)
            try:
                process.wait(STOP_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def connect_host(address: str) -> str:
    """Where to reach a server listening on `address` from this machine."""
    return "127.0.0.1" if address in ("0.0.0.0", "::", "") else address  # noqa: S104
