"""Docker Compose's secrets: made once by its `secrets` service, read by every service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.cli.localfarm import farm_environment


def main(argv: list[str]) -> int:
    """The CLI in a process of its own (it fills its environment from the data directory)."""
    command = [sys.executable, "-m", "common.cli.main", *argv]
    return subprocess.run(command, check=False, capture_output=True, timeout=60).returncode


def test_made_once_and_read_through_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    argv = ["admin", "init-secrets", "--postgres-host", "postgres", "--data-dir", str(tmp_path)]
    assert main(argv) == 0
    first = json.loads((tmp_path / "secrets.json").read_text())
    password = (tmp_path / "postgres_password").read_text()
    assert first["POSTGRES_PASSWORD"] == password and len(password) == 48
    assert first["DATABASE_URL"] == f"postgresql://streamfleet:{password}@postgres:5432/streamfleet"
    assert {"STREAMFLEET_ADMIN_PASSWORD", "STREAMFLEET_JWT_SECRET"} <= set(first)
    assert oct((tmp_path / "secrets.json").stat().st_mode & 0o777) == "0o600"
    assert main(argv) == 0  # every `docker compose up` runs it again: nothing changes
    assert json.loads((tmp_path / "secrets.json").read_text()) == first
    # What a service of the project sees; a variable set in .env wins.
    assert farm_environment(tmp_path)["DATABASE_URL"] == first["DATABASE_URL"]
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    assert farm_environment(tmp_path)["DATABASE_URL"] == "postgresql://elsewhere/db"
