"""`streamfleet up`: the whole farm on one machine, as separate processes.

API, worker and reconciler beat (and Flower with `--flower`) run as children, each through
its own `streamfleet` subcommand, exactly as they run in production. PostgreSQL and Redis
come from `DATABASE_URL`/`REDIS_URL`, or are started embedded under `--data-dir`.
Ctrl-C or SIGTERM stops everything in order: API and beat, then the worker (which stops its
FFmpeg), then the embedded services. Children die with `up` even if it is killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from common.cli.localfarm import (
    SERVICES_FILE,
    EmbeddedPostgres,
    EmbeddedRedis,
    free_port,
    load_secrets,
    write_json,
)
from common.processes import popen_tied

if TYPE_CHECKING:
    from common.config import Settings

CHILD_STOP_TIMEOUT_S = 30.0
UP_WAIT_S = 120.0  # for the API to be ready, then for the worker's lease
CHILDREN = ("worker", "beat", "api", "flower")


@dataclass
class UpOptions:
    host: str
    port: int
    data_dir: Path
    flower: bool
    flower_port: int
    node: str | None


@dataclass
class Farm:
    options: UpOptions
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    changed: threading.Event = field(default_factory=threading.Event)  # a stop, or a child died
    relays: list[threading.Thread] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        data_dir = str(self.options.data_dir.resolve())
        command = [sys.executable, "-m", "common.cli.main", *args, "--data-dir", data_dir]
        # Its own process group: a Ctrl-C in the terminal reaches `up` alone, which then stops
        # the children in order; and each child gets SIGTERM should `up` itself be killed.
        child = popen_tied(
            command, env=env, process_group=0, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        relay = threading.Thread(target=_relay, args=(name, child.stdout), name=f"log-{name}")
        relay.start()
        self.relays.append(relay)
        self.watch(name, child)

    def watch(self, name: str, child: subprocess.Popen[bytes]) -> None:
        """A child of the farm: its exit wakes `_watch` (a thread waits for it)."""
        self.children[name] = child

        def wait() -> None:
            child.wait()
            self.changed.set()

        threading.Thread(target=wait, name=f"wait-{name}", daemon=True).start()

    def stop_soon(self) -> None:
        self.stopping.set()
        self.changed.set()

    def died(self) -> str | None:
        """A child that exited, said as such, if any."""
        for name, child in self.children.items():
            if child.poll() is not None:
                return f"{name} exited with code {child.returncode}"
        return None

    def stop(self) -> None:
        """Stop children (front to back), then the embedded services."""
        for group in (("api", "beat", "flower"), ("worker",)):
            running = [self.children[n] for n in group if n in self.children]
            for child in running:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + CHILD_STOP_TIMEOUT_S
            for child in running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(max(0.1, deadline - time.monotonic()))
                if child.poll() is None:
                    child.kill()
                    child.wait()
        for relay in self.relays:  # their last lines
            relay.join(5)
        with contextlib.suppress(FileNotFoundError):
            (self.options.data_dir / SERVICES_FILE).unlink()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def run_up(options: UpOptions) -> int:
    from common.migrate import upgrade

    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    farm = Farm(options)
    env = dict(os.environ)
    for name, value in load_secrets(data_dir).items():
        env.setdefault(name, value)
    if options.node:
        env["STREAMFLEET_NODE_NAME"] = options.node
    settings = _check_settings(env)

    def on_signal(signum: int, _frame: object) -> None:
        # Not here: the handler may run while this thread holds an event's lock.
        threading.Thread(target=farm.stop_soon, daemon=True).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if "DATABASE_URL" not in env:
            new = not (data_dir / "pg").exists()
            with _step(
                f"creating an embedded PostgreSQL in {data_dir / 'pg'} (the first time only)"
                if new
                else "starting the embedded PostgreSQL"
            ):
                farm.postgres = EmbeddedPostgres.start(data_dir)
            env["DATABASE_URL"] = farm.postgres.url
        if "REDIS_URL" not in env:
            with _step("starting the embedded Redis"):
                farm.redis = EmbeddedRedis.start(data_dir)
            env["REDIS_URL"] = farm.redis.url
        write_json(
            data_dir / SERVICES_FILE,
            {"DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": env["REDIS_URL"]},
            private=True,
        )
        with _step("migrating the database"):
            upgrade(env["DATABASE_URL"])
        _say("starting the worker, the reconciler and the API (their lines: name | line)")
        farm.spawn("worker", ["worker"], env)
        beat_env = env
        if "STREAMFLEET_BEAT_HTTP_PORT" not in env:  # the farm's figures are on its /metrics
            beat_env = {
                **env,
                "STREAMFLEET_BEAT_HTTP_PORT": str(free_port(options.host)),
                "STREAMFLEET_BEAT_HTTP_ADDRESS": options.host,
            }
        farm.spawn("beat", ["beat"], beat_env)
        farm.spawn("api", ["api", "--host", options.host, "--port", str(options.port)], env)
        if options.flower:
            farm.spawn("flower", ["flower", "--port", str(options.flower_port)], env)
        if not _wait_until_up(farm, _base_url(options), env, settings.node_name):
            return 1
        _announce(options, beat_env, settings)
        return _watch(farm)
    finally:
        farm.stop()
        _say("streamfleet stopped")


def _check_settings(env: dict[str, str]) -> Settings:
    """Refuse a bad configuration before anything starts, rather than announce the farm and
    watch its children fail (raises ValidationError: `main` names each refused setting)."""
    from common.config import Settings

    saved = os.environ.copy()
    os.environ.update(env)  # the settings read the environment the children will have
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _watch(farm: Farm) -> int:
    """Wait for a stop signal, or for a child to die (which stops the farm): woken by either,
    not polling."""
    while not farm.stopping.is_set():
        farm.changed.wait()
        farm.changed.clear()
        died = farm.died()
        if died is not None and not farm.stopping.is_set():
            _say(f"{died}: stopping the farm")
            return 1
    return 0


def _wait_until_up(farm: Farm, base: str, env: dict[str, str], node: str) -> bool:
    """Up means the API answers ready and the node's worker holds its lease (as the API says,
    logged in as the administrator); False if a child died or a stop came first."""
    from common.cli.check import fetch

    def ready() -> bool:
        with contextlib.suppress(OSError):
            return fetch(f"{base}/readyz")[0] == 200
        return False

    def live() -> bool:
        body = {"email": env.get("STREAMFLEET_ADMIN_EMAIL", "admin@streamfleet.local"),
                "password": env["STREAMFLEET_ADMIN_PASSWORD"]}  # fmt: skip
        with contextlib.suppress(OSError):
            status, login = fetch(f"{base}/api/auth/login", body)
            if status == 200:
                status, nodes = fetch(f"{base}/v1/nodes", token=login["token"])
                return status == 200 and any(n["name"] == node and n["live"] for n in nodes)
        return False

    for what, done in ((f"the API at {base}", ready), (f"node {node}'s worker", live)):
        with _step(f"waiting for {what}"):
            deadline = time.monotonic() + UP_WAIT_S
            while not done():
                died = farm.died()
                if died or farm.stopping.is_set() or time.monotonic() > deadline:
                    why = died or ("stopped" if farm.stopping.is_set() else "no answer in time")
                    _say(f"not up: {why}")
                    return False
                time.sleep(0.2)
    return True


@contextlib.contextmanager
def _step(what: str) -> Iterator[None]:
    """Say what is being done, then how long it took."""
    _say(f"{what} ...")
    began = time.monotonic()
    yield
    _say(f"{what}: done in {time.monotonic() - began:.1f} s")


def _relay(name: str, stream: IO[bytes] | None) -> None:
    """A child's output, each line after its name."""
    assert stream is not None
    label = f"{name:<{max(map(len, CHILDREN))}} | ".encode()
    out = sys.stdout.buffer
    for line in stream:
        out.write(label + line)
        out.flush()


def _base_url(options: UpOptions) -> str:
    host = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host  # noqa: S104
    return f"http://{host}:{options.port}"


def _announce(options: UpOptions, env: dict[str, str], settings: Settings) -> None:
    base = _base_url(options)
    host = base.removeprefix("http://").rsplit(":", 1)[0]
    email = env.get("STREAMFLEET_ADMIN_EMAIL", "admin@streamfleet.local")
    password = env["STREAMFLEET_ADMIN_PASSWORD"]
    lines = [
        "",
        f"streamfleet is up: console {base}/ui/   API {base}   docs {base}/docs",
        f"node {settings.node_name} runs {_ffmpeg_of(settings)}",
        "log in (Callaba Engine API):",
        f"  curl -s -X POST {base}/api/auth/login -H 'Content-Type: application/json' \\",
        f'       -d \'{{"email": "{email}", "password": "{password}"}}\'',
        "API key (native /v1 API):",
        f"  {_own_command()} admin create-key --name me --data-dir {options.data_dir}",
    ]
    bearer = f"-H 'Authorization: Bearer {env['STREAMFLEET_METRICS_TOKEN']}'"
    lines += [
        "Prometheus metrics (the token is in secrets.json): the API's, and the farm's (the",
        "reconciler's: restreams and nodes by state):",
        f"  curl -s {base}/metrics {bearer}",
    ]
    beat_port = env.get("STREAMFLEET_BEAT_HTTP_PORT", "0")
    if beat_port != "0":
        lines.append(f"  curl -s http://{host}:{beat_port}/metrics {bearer}")
    if options.flower:
        lines.append(f"Flower: http://{host}:{options.flower_port}  (same e-mail and password)")
    lines.append("Ctrl-C stops everything.")
    _say("\n".join(lines))


def _ffmpeg_of(settings: Settings) -> str:
    """Which FFmpeg the node runs, as its worker will find it: version and path."""
    from common.ffmpeg.binary import FfmpegNotFound, resolve_ffmpeg
    from common.ffmpeg.probe import parse_version

    try:
        binary = resolve_ffmpeg(settings.ffmpeg_binary)
        answer = subprocess.run(
            [binary, "-version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (FfmpegNotFound, OSError, subprocess.TimeoutExpired) as error:
        return f"no usable FFmpeg ({error})"
    version, _ = parse_version(answer.stdout)
    return f"FFmpeg {version} ({binary})"


def _own_command() -> str:
    """How to run `streamfleet` from a shell: its path when it is not on PATH (a virtualenv's
    bin/ that is not activated)."""
    own = Path(sys.argv[0])
    found = shutil.which("streamfleet")
    if own.name != "streamfleet" or (found and Path(found).resolve() == own.resolve()):
        return "streamfleet"
    return os.path.relpath(own)


def _say(message: str) -> None:
    print(message, flush=True)
