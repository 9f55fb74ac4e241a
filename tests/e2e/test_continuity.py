"""Continuity against a real nginx-rtmp: a restream with a backup input keeps one RTMP session
to its destination while its primary, then its backup too, go away and come back.

Primary and backup are FFmpeg publishers of plain colour (white, grey) to nginx-rtmp; the
restream pulls both and publishes to the same server; a receiver reads what it publishes and
tells, frame by frame, whose picture it is by its brightness (the slate is black)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.continuity import (
    BLACK,
    GREY,
    WHITE,
    Receiver,
    continuity_body,
    publisher,
    publishing_client,
)
from tests.support.farm import Farm, running_farm
from tests.support.media import free_port
from tests.support.wait import wait_for
from worker.rtmp_server import RtmpServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Farm]:
    with running_farm(tmp_path_factory.mktemp("continuity"), pg_server_url) as started:
        yield started


@pytest.fixture
def server() -> Iterator[RtmpServer]:
    rtmp = RtmpServer("127.0.0.1", free_port(), module_server=True)
    why = rtmp.start()
    if why is not None:
        pytest.skip(why)
    yield rtmp
    rtmp.stop()


def on_air(farm: Farm, url: str) -> str | None:
    live = farm.http.get(f"{url}/stats", headers=farm.bearer).json()["live"] or {}
    found: str | None = live.get("on_air")
    return found


def events(farm: Farm, url: str) -> list[str]:
    return [e["reason"] for e in farm.http.get(f"{url}/events", headers=farm.bearer).json()]


def test_a_backup_input_and_a_slate_keep_one_rtmp_session(farm: Farm, server: RtmpServer) -> None:
    base = f"rtmp://127.0.0.1:{server.port}/live"
    processes: dict[str, subprocess.Popen[bytes]] = {
        "primary": publisher("white", f"{base}/primary"),
        "backup": publisher("gray", f"{base}/backup"),
    }
    receiver: Receiver | None = None
    try:
        wait_for(
            lambda: publishing_client(server, "backup"), timeout_s=20, every_s=0.2, what="sources"
        )
        body: dict[str, Any] = continuity_body(base, loss_ms=500, failback_s=2)
        made = farm.http.post("/v1/restreams", json=body, headers=farm.bearer)
        assert made.status_code == 201, made.text
        assert [i["input_stream_url"] for i in made.json()["inputs"]] == [
            f"{base}/primary", f"{base}/backup",
        ]  # fmt: skip
        url = f"/v1/restreams/{made.json()['id']}"
        wait_for(lambda: publishing_client(server, "out"), timeout_s=30, every_s=0.2, what="out")
        session = publishing_client(server, "out")
        receiver = Receiver(f"{base}/out")
        wait_for(lambda: receiver.showing(WHITE), timeout_s=20, every_s=0.1, what="the primary")

        processes.pop("primary").kill()
        wait_for(lambda: receiver.showing(GREY), timeout_s=10, every_s=0.05, what="the backup")
        wait_for(lambda: on_air(farm, url) == "backup", timeout_s=5, every_s=0.1, what="stats")
        processes.pop("backup").kill()
        wait_for(lambda: receiver.showing(BLACK), timeout_s=10, every_s=0.05, what="the slate")
        processes["primary"] = publisher("white", f"{base}/primary")
        wait_for(lambda: receiver.showing(WHITE), timeout_s=20, every_s=0.1, what="primary again")

        assert publishing_client(server, "out") == session  # one session all along
        assert receiver.longest_gap_s() < 2.0
        wait_for(lambda: on_air(farm, url) == "primary", timeout_s=5, every_s=0.1, what="stats")
        assert farm.http.get(f"{url}/stats", headers=farm.bearer).json()["live"]["restarts"] == 0
        said = events(farm, url)
        switched = [
            r.split(" (")[0].removeprefix("on air: ") for r in said if r.startswith("on air:")
        ]
        # The slate bridges a switch until the next input's key frame: backup, slate, primary
        # in this order, with perhaps a slate between.
        order = iter(switched)
        assert all(step in order for step in ("backup", "slate", "primary")), said
    finally:
        if receiver is not None:
            receiver.process.kill()
        for process in processes.values():
            process.kill()
