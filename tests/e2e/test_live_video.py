"""A Gjirafa live video on a real farm: published over RTMP with its stream key, fanned out to
two destinations on nginx-rtmp; switching one off and on never interrupts the other."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.farm import Farm, running_farm
from tests.support.ffmpeg_watch import FfmpegWatch
from tests.support.media import free_port
from tests.support.peers import FrameCounter, bound, nginx_rtmp, publisher, running
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("farm")]
INGEST_PORT = free_port()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Farm]:
    ports = {"STREAMFLEET_LIVE_VIDEO_PORTS": f"{INGEST_PORT}-{INGEST_PORT}"}
    with running_farm(tmp_path_factory.mktemp("farm"), pg_server_url, ports) as started:
        yield started


class Gjirafa:
    """A client of the farm's Gjirafa surface, with an operator key of a new project."""

    def __init__(self, farm: Farm, project: str) -> None:
        self.farm = farm
        self.project = farm.cli("admin", "create-project", "--name", project).splitlines()[-1]
        self.key = (
            farm.cli("admin", "create-key", "--name", project, "--project", self.project,
                     "--role", "operator")
            .strip().splitlines()[-1]
        )  # fmt: skip

    def call(self, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.farm.http.request(
            verb, f"/api/v1/{self.project}{path}", json=body, headers={"Authorization": self.key}
        )
        assert response.status_code in (200, 201), response.text
        return response.json()["result"]

    def destinations(self, video: str) -> dict[int, dict[str, Any]]:
        return {r["id"]: r for r in self.call("GET", f"/live-video/{video}/restreams")}


def test_toggling_one_destination_never_interrupts_the_other(farm: Farm, tmp_path: Path) -> None:
    api = Gjirafa(farm, "tv")
    with nginx_rtmp(tmp_path) as platform:
        video = api.call("POST", "/live-videos", {"title": "Match"})
        wait_for(lambda: bound(INGEST_PORT, udp=False), timeout_s=20, what="the ingest")
        ingest = api.call("GET", f"/live-videos/{video['id']}")["ingest"]
        assert ingest["url"] == f"rtmp://127.0.0.1:{INGEST_PORT}/live"

        platform_url = f"rtmp://127.0.0.1:{platform}/live"
        kept = api.call(
            "POST", "/restreams",
            {"videoId": video["id"], "title": "kept", "streamUrl": platform_url, "streamKey": "kept"},
        )  # fmt: skip
        toggled = api.call(
            "POST", "/restreams",
            {"videoId": video["id"], "title": "toggled", "streamUrl": platform_url,
             "streamKey": "toggled"},
        )  # fmt: skip
        refused = api.call(
            "POST", "/restreams",
            {"videoId": video["id"], "title": "refused", "streamUrl": "rtmp://127.0.0.1:9/live",
             "streamKey": "nobody"},
        )  # fmt: skip
        publish = ["-f", "flv", f"rtmp://127.0.0.1:{INGEST_PORT}/live/{ingest['streamKey']}"]
        # What only the farm's FFmpeg have on their command lines (players and the publisher
        # name the same streams, but neither as an flv output nor on 0.0.0.0).
        markers = [
            f"flv {platform_url}/kept",
            f"flv {platform_url}/toggled",
            f"rtmp://0.0.0.0:{INGEST_PORT}/live/{ingest['streamKey']}",
        ]
        with (
            running(publisher(publish, size="320x180", rate=25), tmp_path / "publisher.log"),
            FfmpegWatch(markers) as watch,
        ):
            wait_for(
                lambda: api.call("GET", f"/live-videos/{video['id']}")["state"] == "running",
                timeout_s=30,
                what="the live video running",
            )

            def state(number: int) -> str:
                return str(api.destinations(video["id"])[number]["state"])

            wait_for(lambda: state(kept["id"]) == "running", timeout_s=30, what="kept running")
            wait_for(lambda: state(toggled["id"]) == "running", timeout_s=30, what="toggled")

            # The platform that refuses is reported on its own destination, nowhere else.
            failing = wait_for(
                lambda: api.destinations(video["id"])[refused["id"]]["lastError"],
                timeout_s=30,
                what="the refused destination's error",
            )
            assert state(refused["id"]) in ("retrying", "failed", "starting"), failing

            with FrameCounter(f"{platform_url}/kept") as player:
                wait_for(lambda: player.frames > 25, timeout_s=20, what="the kept stream")
                kept_pid = watch.running(markers[0])[0].pid
                ingest_pid = watch.running(markers[2])[0].pid
                since = time.monotonic()

                off = api.call("PUT", f"/restreams/{toggled['id']}/toggle")
                assert off == {"id": toggled["id"], "status": False}
                wait_for(lambda: not watch.running(markers[1]), timeout_s=15, what="toggled off")
                assert state(toggled["id"]) == "idle"
                time.sleep(2)  # off for a while, the other destination watched all along

                on = api.call("PUT", f"/restreams/{toggled['id']}/toggle")
                assert on == {"id": toggled["id"], "status": True}
                wait_for(lambda: state(toggled["id"]) == "running", timeout_s=30, what="back on")
                with FrameCounter(f"{platform_url}/toggled") as again:
                    wait_for(lambda: again.frames > 10, timeout_s=20, what="toggled frames")
                time.sleep(1)  # and a moment after: a late gap would show in the samples

                # The other destination never noticed: same FFmpeg, same player, no gap.
                assert player.alive
                assert player.longest_stall_s(since) < 1.5, player.samples[-20:]
                assert [s.pid for s in watch.running(markers[0])] == [kept_pid]
                assert [s.pid for s in watch.running(markers[2])] == [ingest_pid]
                assert len(watch.processes[markers[0]]) == 1
                assert len(watch.processes[markers[2]]) == 1
    api.call("DELETE", f"/live-videos/{video['id']}")  # and its destinations; the port is free


def test_a_publisher_with_the_wrong_key_is_refused(farm: Farm, tmp_path: Path) -> None:
    api = Gjirafa(farm, "private tv")
    video = api.call("POST", "/live-videos", {"title": "Private"})
    wait_for(lambda: bound(INGEST_PORT, udp=False), timeout_s=20, what="the ingest")
    wrong = ["-f", "flv", f"rtmp://127.0.0.1:{INGEST_PORT}/live/not-the-key-at-all"]
    with running(publisher(wrong, size="160x90", rate=10), tmp_path / "intruder.log"):
        shown = wait_for(
            lambda: (v := api.call("GET", f"/live-videos/{video['id']}"))["lastError"] and v,
            timeout_s=20,
            what="the refusal",
        )
        assert "wrong stream key 'not-the-key-at-all'" in shown["lastError"]
        assert shown["state"] != "running" and shown["bitrate"] == 0
    api.call("DELETE", f"/live-videos/{video['id']}")
