"""A real farm in processes: `streamfleet up` on a fresh database and its own Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from common.cli.localfarm import EmbeddedRedis
from tests.support.media import free_port
from tests.support.services import fresh_database
from tests.support.wait import wait_for

ADMIN_EMAIL = "ops@example.com"
ADMIN_PASSWORD = "e2e-admin-password"
# Fast reactions for tests: quick retries, a small retry budget.
FAST_ENV = {
    "STREAMFLEET_RESTART_BACKOFF_INITIAL_S": "0.2",
    "STREAMFLEET_RESTART_BACKOFF_MAX_S": "0.5",
    "STREAMFLEET_RETRY_BUDGET": "3",
    "STREAMFLEET_STOP_GRACE_S": "3",
    "STREAMFLEET_WORKER_CONCURRENCY": "4",
    "STREAMFLEET_WORKER_HTTP_PORT": "0",  # several workers per machine: a test that wants it sets one
    "STREAMFLEET_RTMP_SERVER_PORT": "0",  # the same
    "STREAMFLEET_RTSP_SERVER_PORT": "0",  # the same
    "STREAMFLEET_API_REQUESTS_PER_S": "0",  # the tests poll; the limit has its own tests
    "STREAMFLEET_OUTBOUND_PRIVATE": "true",  # webhook receivers and images on loopback
}


class Farm:
    def __init__(self, root: Path, env: dict[str, str], port: int, node: str) -> None:
        self.root = root
        self.env = env
        self.port = port
        self.node = node
        self.data_dir = root / "farm"
        self.base_url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.base_url, timeout=10)
        self.process: subprocess.Popen[bytes] | None = None
        self.extra: list[subprocess.Popen[bytes]] = []
        self.log = root / "farm.log"
        self._token: str | None = None
        self._key: str | None = None

    # -- processes ----------------------------------------------------------------------

    def cli(self, *args: str, timeout_s: float = 60) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "common.cli.main", *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        )
        return result.stdout

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "common.cli.main",
                    "up",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    "--node",
                    self.node,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._ready, timeout_s=60, every_s=0.2, what=f"the farm (log: {self.log})")
        wait_for(lambda: self.node_live(self.node), timeout_s=60, every_s=0.2, what="its worker")

    def _ready(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()
        return self.http.get("/readyz").status_code == 200

    def start_worker(
        self, node: str, env: dict[str, str] | None = None, *, wait: bool = True
    ) -> subprocess.Popen[bytes]:
        """One more worker node; by default it finds the farm through the data dir."""
        inherited = {k: v for k, v in self.env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        command = [sys.executable, "-m", "common.cli.main", "worker", "--node", node]
        with self.worker_log(node, new=True).open("wb") as log:
            worker = subprocess.Popen(
                [*command, "--data-dir", str(self.data_dir)],
                env={**inherited, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.extra.append(worker)
        if wait:
            wait_for(lambda: self.node_live(node), timeout_s=60, every_s=0.2, what=f"node {node}")
        return worker

    def worker_log(self, node: str, *, new: bool = False) -> Path:
        """The log of the last worker started under `node` (or of the next, if `new`)."""
        logs = sorted(self.root.glob(f"worker-{node}.*log"), key=lambda p: p.stat().st_mtime)
        if not new:
            return logs[-1]
        return self.root / (f"worker-{node}.{len(logs)}.log" if logs else f"worker-{node}.log")

    def start_command(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        """Another `streamfleet` subcommand of this farm (Flower, say), found via the data dir."""
        inherited = {k: v for k, v in self.env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        with (self.root / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "common.cli.main", *args, "--data-dir", str(self.data_dir)],
                env=inherited,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.extra.append(process)
        return process

    def stop(self) -> int:
        """SIGTERM, as Ctrl-C would; returns `up`'s exit code."""
        for worker in self.extra:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.extra:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        self.http.close()
        return code

    # -- API ----------------------------------------------------------------------------

    @property
    def callaba(self) -> dict[str, str]:
        if self._token is None:
            response = self.http.post(
                "/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            response.raise_for_status()
            self._token = response.json()["token"]
        return {"x-access-token": self._token}

    @property
    def bearer(self) -> dict[str, str]:
        if self._key is None:
            self._key = self.cli("admin", "create-key", "--name", "e2e").strip().splitlines()[-1]
        return {"Authorization": f"Bearer {self._key}"}

    def remove_all(self) -> None:
        """Remove every restream (what a test leaves behind, for the next on this farm)."""
        for restream in self.post("/api/restream/getAll"):
            self.http.request(
                "DELETE", "/api/restream/remove", json={"id": restream["id"]}, headers=self.callaba
            )

    def node_live(self, name: str) -> bool:
        nodes = self.http.get("/v1/nodes", headers=self.bearer).json()
        return any(n["name"] == name and n["live"] for n in nodes)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(path, json=body, headers=self.callaba)
        assert response.status_code == 200, response.text
        return response.json()

    def get_by_id(self, restream_id: str) -> dict[str, Any]:
        details: dict[str, Any] = self.post("/api/restream/getById", {"id": restream_id})
        return details

    def small_restream(self, name: str, port: int, **changes: Any) -> str:
        """A cheap test-signal restream (160x90, 10 fps) to udp://127.0.0.1:<port>, started;
        the port makes its FFmpeg recognisable in the process list."""
        body = {
            "restream_name": name,
            "input": {
                "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
                "resolution_width": 160,
                "resolution_height": 90,
                "encoding_rate": 10,
                "test_video_bitrate": 100,
            },
            "output": {
                "output_type": "OUTPUT_TYPE_UDP_URL",
                "output_stream_url": f"udp://127.0.0.1:{port}",
            },
            **changes,
        }
        restream_id: str = self.post("/api/restream/create", body)["id"]
        return restream_id

    def states(self, ids: list[str]) -> dict[str, tuple[str, str | None]]:
        """id -> (state, node) of each restream."""
        found = {}
        for restream_id in ids:
            details = self.get_by_id(restream_id)
            found[restream_id] = (details["state"], details["node"])
        return found


@contextmanager
def running_farm(
    root: Path,
    pg_server_url: str,
    extra_env: dict[str, str] | None = None,
    *,
    redis_url: str | None = None,
) -> Iterator[Farm]:
    """A started farm; stopped (and checked to stop cleanly) afterwards. Its Redis is its own
    embedded one unless `redis_url` names another."""
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(pg_server_url, prefix="sf_e2e"))
        if redis_url is None:
            redis = EmbeddedRedis.start(root / "redis")
            stack.callback(redis.stop)
            redis_url = redis.url
        node = f"e2e-{uuid.uuid4().hex[:6]}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "STREAMFLEET_ADMIN_EMAIL": ADMIN_EMAIL,
            "STREAMFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "STREAMFLEET_JWT_SECRET": uuid.uuid4().hex * 2,
            **FAST_ENV,
            **(extra_env or {}),
        }
        farm = Farm(root, env, free_port(), node)
        try:
            farm.start()
            yield farm
        finally:
            code = farm.stop()
        assert code == 0, f"streamfleet up exited with {code}: {farm.log.read_text()[-3000:]}"
