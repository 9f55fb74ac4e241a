"""`streamfleet restreams|nodes|events`: the operator's commands against a real API server
(uvicorn on loopback), as a person (tables) and as a program (`--json`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import redis

from common.cli import operate
from common.cli.main import main
from common.db import Database
from tests.api.test_native import BODY
from tests.conftest import ADMIN_PASSWORD
from tests.support.nodes import simulate_node
from tests.support.wait import wait_for


def said(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.fixture
def cli(served: str, admin: dict[str, str], tmp_path: Path) -> list[str]:
    """The arguments every command takes here: the API and an admin's key."""
    key = admin["Authorization"].removeprefix("Bearer ")
    return ["--api", served, "--key", key, "--data-dir", str(tmp_path)]


def test_restreams_listed_shown_started_and_stopped(
    cli: list[str], served: str, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    made = httpx.post(f"{served}/v1/restreams", json={**BODY, "name": "lobby"}, headers=admin)
    restream_id = made.json()["id"]
    listed = said(capsys, "restreams", "ls", *cli).splitlines()
    assert listed[0].split() == ["ID", "NAME", "STATE", "NODE", "KBIT/S", "REASON"]
    assert listed[1].split()[:4] == [restream_id, "lobby", "idle", "-"]
    as_json = json.loads(said(capsys, "restreams", "ls", "--json", *cli))
    assert [r["id"] for r in as_json] == [restream_id]
    started = said(capsys, "restreams", "start", restream_id, *cli)
    assert f"id       {restream_id}" in started and "state    pending" in started
    assert said(capsys, "restreams", "ls", "--state", "idle", *cli).count("\n") == 1  # header
    shown = said(capsys, "restreams", "show", restream_id, "--json", *cli)
    assert json.loads(shown)["active"] is True
    stopped = said(capsys, "restreams", "stop", restream_id, *cli)
    assert "state    idle" in stopped or "state    stopping" in stopped
    with pytest.raises(SystemExit) as refused:
        main(["restreams", "show", "f" * 24, *cli])
    assert "streamfleet restreams: " in str(refused.value) and "[HTTP 404]" in str(refused.value)


def test_restreams_listed_page_after_page_with_the_lists_filter(
    cli: list[str],
    served: str,
    admin: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ls` lists every restream, however many pages (it used to show the first 500), and
    `--state` is the list's own filter, so that it applies to all of them."""
    monkeypatch.setattr(operate, "LIST_PAGE", 2)
    ids = [
        httpx.post(f"{served}/v1/restreams", json={**BODY, "name": f"r{i}"}, headers=admin)
        .raise_for_status()
        .json()["id"]
        for i in range(5)
    ]
    httpx.post(f"{served}/v1/restreams/{ids[4]}/start", headers=admin).raise_for_status()
    listed = json.loads(said(capsys, "restreams", "ls", "--json", *cli))
    assert [r["id"] for r in listed] == ids
    idle = json.loads(said(capsys, "restreams", "ls", "--json", "--state", "idle", *cli))
    assert [r["id"] for r in idle] == ids[:4]


def test_nodes_listed_drained_and_returned(
    cli: list[str],
    committing_db: Database,
    redis_client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    simulate_node(committing_db, redis_client, "n1")
    listed = said(capsys, "nodes", "ls", *cli).splitlines()
    assert listed[0].split()[:3] == ["NAME", "STATE", "LIVE"]
    assert listed[1].split()[:3] == ["n1", "active", "yes"]
    assert said(capsys, "nodes", "drain", "n1", *cli) == "n1: draining\n"
    assert json.loads(said(capsys, "nodes", "ls", "--json", *cli))[0]["state"] == "draining"
    assert said(capsys, "nodes", "undrain", "n1", *cli) == "n1: active\n"


def test_events_listed_and_followed_as_they_come(
    served: str,
    admin: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --key: logged in as the administrator from the environment, as on a local
    farm. --follow runs until interrupted, one line (or JSON object) per event, from now."""
    monkeypatch.setenv("STREAMFLEET_ADMIN_PASSWORD", ADMIN_PASSWORD)
    args = ["--api", served, "--data-dir", str(tmp_path)]
    follower = subprocess.Popen(
        [sys.executable, "-m", "common.cli.main", "events", "--follow", "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    assert follower.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(follower.stdout or []), daemon=True)
    reader.start()
    made: list[str] = []
    try:

        def followed() -> bool:  # until the stream is open, what is made goes unseen
            body = {**BODY, "name": f"r{len(made)}", "active": True}
            made.append(httpx.post(f"{served}/v1/restreams", json=body, headers=admin).json()["id"])
            return bool(lines)

        wait_for(followed, timeout_s=20, every_s=0.3, what="an event followed")
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(10)
    event = json.loads(lines[0])
    assert event["subject"]["id"] in made and event["to_state"] == "pending"
    listed = said(capsys, "events", *args).splitlines()
    assert sum("restream.state" in line and "idle -> pending" in line for line in listed) == len(
        made
    )
