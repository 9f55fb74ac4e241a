"""The node's own RTMP server: nginx with the RTMP module (Debian's `libnginx-mod-rtmp`), run
by the worker as it runs FFmpeg — configured here, in its own process group, set to die with
the worker, started again when it dies, removed with everything it wrote when the worker stops.

Restreams of this node publish to it (`OUTPUT_TYPE_LOCAL_RTMP_URL`, from 127.0.0.1 only: no one
else may publish into it); players anywhere read it (`rtmp://<node address>:<port>/live/<key>`).
nginx runs as one process (`master_process off`): a master would leave its worker processes
behind when the worker is killed, and the worker is its supervisor here.
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

# Where Debian's libnginx-mod-rtmp puts the module.
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
APPLICATION = "live"
READY_TIMEOUT_S = 5.0
RESTART_PAUSE_S = (0.5, 5.0)  # the first pause after a crash, and the longest
STOP_GRACE_S = 2.0


def nginx_config(prefix: Path, address: str, port: int, module: Path) -> str:
    """nginx.conf of the server: one application, `live`, that keeps nothing (`record off`)."""
    host = f"[{address}]" if ":" in address else address
    return f"""daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
load_module {module};

events {{
    worker_connections 1024;
}}

rtmp {{
    server {{
        listen {host}:{port};
        chunk_size 4096;
        application {APPLICATION} {{
            live on;
            record off;
            allow publish 127.0.0.1;
            deny publish all;
            allow play all;
        }}
    }}
}}
"""


class RtmpServer:
    """nginx-rtmp on `address`:`port`, supervised: `start` says why it cannot run, if it
    cannot; `stop` leaves nothing behind."""

    def __init__(
        self, address: str, port: int, *, binary: str = "nginx", module: Path = RTMP_MODULE
    ) -> None:
        self.address = address
        self.port = port
        self.binary = binary
        self.module = module
        self.prefix: Path | None = None
        self.argv: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where this node's restreams publish (a key follows)."""
        return f"rtmp://127.0.0.1:{self.port}/{APPLICATION}"

    def start(self) -> str | None:
        """Run it and wait until it takes connections: None then; otherwise why it cannot run
        on this node (the node then offers no local RTMP server)."""
        binary = shutil.which(self.binary)
        if binary is None or not self.module.exists():
            return f"nginx with the RTMP module is not installed ({self.binary}, {self.module})"
        taken = self._port_taken()
        if taken is not None:
            return f"port {self.port} is taken: {taken}"
        self.prefix = Path(tempfile.mkdtemp(prefix="streamfleet-rtmp-"))
        config = self.prefix / "nginx.conf"
        config.write_text(nginx_config(self.prefix, self.address, self.port, self.module))
        # -e: its log from the first line on (the built-in one is not writable by everyone).
        self.argv = [
            binary, "-p", str(self.prefix), "-c", str(config), "-e", str(self.prefix / "error.log")
        ]  # fmt: skip
        # Spawned, and spawned again, by one thread that lives as long as it runs: the signal
        # that ends it with the worker comes when the thread that spawned it ends.
        first: Future[str | None] = Future()
        self._watcher = threading.Thread(
            target=self._run, args=(first,), name="rtmp-server", daemon=True
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
            _end(self.process)
        if self._watcher is not None:
            self._watcher.join()
        self._remove()

    # -- inside ----------------------------------------------------------------------------

    def _spawn_and_wait(self) -> str | None:
        assert self.prefix is not None
        tied = pdeathsig_prefix("KILL")  # dies with the worker
        with (self.prefix / "error.log").open("ab") as errors:  # what it says before its log
            self.process = subprocess.Popen(
                [*tied, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,  # its own process group: ended as a whole
                preexec_fn=None if tied else set_parent_death_signal,  # noqa: PLW1509
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"nginx exited ({self.process.returncode}): {self._error_tail()}"
            if self._answers():
                return None
            time.sleep(0.02)
        _end(self.process)
        return f"nginx did not take connections within {READY_TIMEOUT_S:g} s"

    def _run(self, first: Future[str | None]) -> None:
        """Start it, then start it again whenever it dies, after a pause that grows while it
        keeps dying."""
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
                "the node's RTMP server exited (%s): %s; starting it again",
                self.process.returncode,
                self._error_tail(),
            )
            why = self._spawn_and_wait()
            if why is None:
                pause = RESTART_PAUSE_S[0]
            else:
                log.warning("the node's RTMP server could not start again: %s", why)
                pause = min(pause * 2, RESTART_PAUSE_S[1])

    def _answers(self) -> bool:
        host = "127.0.0.1" if self.address in ("0.0.0.0", "::", "") else self.address  # noqa: S104
        try:
            with socket.create_connection((host, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def _port_taken(self) -> str | None:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.address, self.port))
            except OSError as error:
                return error.strerror or str(error)
        return None

    def _error_tail(self) -> str:
        if self.prefix is None:
            return ""
        with contextlib.suppress(OSError):
            lines = (self.prefix / "error.log").read_text(errors="replace").splitlines()
            return lines[-1] if lines else "no error logged"
        return "no error log"

    def _remove(self) -> None:
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGQUIT (nginx's graceful end), SIGKILL to its group if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGQUIT)
        try:
            process.wait(STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
    process.wait()
