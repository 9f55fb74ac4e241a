"""A local farm for the benchmarks: `streamfleet up` in a directory, plus extra workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def wait(condition: Any, timeout_s: float, what: str, every_s: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise SystemExit(f"timed out waiting for {what}")


class LocalFarm:
    """`streamfleet up --data-dir DIR` (embedded PostgreSQL and Redis unless DATABASE_URL /
    REDIS_URL are set), logged in on both APIs."""

    def __init__(
        self, data_dir: Path, port: int, quiet: bool, env: dict[str, str], node: str = "bench"
    ) -> None:
        self.data_dir = data_dir
        self.env = env
        self.quiet = quiet
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "common.cli.main", "up", "--port", str(port),
             "--data-dir", str(data_dir), "--node", node],
            cwd=ROOT, stdout=self._log(), stderr=self._log(), env=env,
        )  # fmt: skip
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        wait(self._ready, 90, "the farm to start")
        secrets = json.loads((data_dir / "secrets.json").read_text())
        login = self.http.post(
            "/api/auth/login",
            json={
                "email": env.get("STREAMFLEET_ADMIN_EMAIL", "admin@streamfleet.local"),
                "password": env.get(
                    "STREAMFLEET_ADMIN_PASSWORD", secrets["STREAMFLEET_ADMIN_PASSWORD"]
                ),
            },
        )
        login.raise_for_status()
        self.callaba = {"x-access-token": login.json()["token"]}
        key = subprocess.run(
            [sys.executable, "-m", "common.cli.main", "admin", "create-key",
             "--name", "bench", "--data-dir", str(data_dir)],
            cwd=ROOT, capture_output=True, text=True, check=True, env=env,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        self.bearer = {"Authorization": f"Bearer {key}"}
        wait(lambda: self.live(node), 60, "the worker")

    def _log(self) -> int | None:
        return subprocess.DEVNULL if self.quiet else None

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise SystemExit("streamfleet up exited")
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def live(self, node: str) -> bool:
        nodes = self.http.get("/v1/nodes", headers=self.bearer).json()
        return any(n["name"] == node and n["live"] for n in nodes)

    def start_worker(self, node: str) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "common.cli.main", "worker", "--node", node,
             "--data-dir", str(self.data_dir)],
            cwd=ROOT, stdout=self._log(), stderr=self._log(), env=self.env,
        )  # fmt: skip
        self.workers[node] = worker
        wait(lambda: self.live(node), 60, f"worker {node}", every_s=0.1)
        return worker

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(path, json=body, headers=self.callaba)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        for worker in self.workers.values():
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers.values():
            worker.wait(60)
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def environment(**overrides: str) -> dict[str, str]:
    """The benchmarks' farm: no per-credential rate limit (a client polling every 5 ms makes
    200 requests a second)."""
    return {**os.environ, "STREAMFLEET_API_REQUESTS_PER_S": "0", **overrides}
