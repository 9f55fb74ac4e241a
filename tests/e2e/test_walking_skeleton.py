"""End to end: `streamfleet up`, the Callaba API, a Celery worker and a real FFmpeg."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from common.ffmpeg.binary import resolve_ffmpeg
from common.ffmpeg.probe import parse_version
from tests.api.test_metrics import sample
from tests.support.farm import ADMIN_EMAIL, ADMIN_PASSWORD, Farm, running_farm
from tests.support.media import free_port, probe, rtmp_listener, stream_of
from tests.support.peers import http_status
from tests.support.processes import alive
from tests.support.services import sqlalchemy_url
from tests.support.wait import wait_for
from tests.support.webhooks import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("farm")]


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Farm]:
    with running_farm(tmp_path_factory.mktemp("farm"), pg_server_url) as started:
        yield started


def test_test_video_to_rtmp_transcoded_to_640x360_at_800k(farm: Farm, tmp_path: Path) -> None:
    port = free_port()
    recording = tmp_path / "received.flv"
    listener = rtmp_listener(port, recording)
    try:
        created = farm.post(
            "/api/restream/create",
            {
                "restream_name": "skeleton",
                "input": {
                    "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
                    "resolution_width": 640,
                    "resolution_height": 360,
                    "encoding_rate": 25,
                },
                "transcoding": {
                    "video_transcoding": "libx264",
                    "output_video_bitrate": 800,
                    "frame_width": 640,
                    "frame_height": 360,
                    "preset": "veryfast",
                    "audio_trancoding": "aac",
                    "output_audio_bitrate": 64,
                },
                "output": {
                    "output_type": "OUTPUT_TYPE_OTHER_RTMP_URL",
                    "output_stream_url": f"rtmp://127.0.0.1:{port}/live",
                    "output_stream_key": "key",
                },
                "active": False,
            },
        )
        restream_id = created["id"]
        assert farm.post("/api/restream/start", {"id": restream_id}) == {
            "success": True,
            "ok": True,
        }

        def steady() -> dict[str, Any] | None:
            details = farm.get_by_id(restream_id)
            stats = details["stats"] or {}
            bitrate = stats.get("bitrate_kbps") or 0
            return details if details["state"] == "running" and 600 <= bitrate <= 1000 else None

        details = wait_for(steady, timeout_s=30, every_s=0.5, what="running at 800 kbit/s ±25%")
        assert details["node"] == farm.node
        pid = details["stats"]["pid"]
        assert alive(pid)
        stat = {s["id"]: s["bitrate"] for s in farm.post("/api/restream/getStat")}
        assert 600 <= stat[restream_id] <= 1000

        assert farm.post("/api/restream/stop", {"id": restream_id}) == {"success": True, "ok": True}
        wait_for(lambda: farm.get_by_id(restream_id)["state"] == "idle", timeout_s=15)
        assert not alive(pid)
        listener.wait(15)  # the publisher left: the listener finishes its recording
        probed = probe(recording)
        video = stream_of(probed, "video")
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", 640, 360)
        assert stream_of(probed, "audio")["codec_name"] == "aac"
        assert float(probed["format"]["duration"]) > 1

        farm.http.request(
            "DELETE", "/api/restream/remove", json={"id": restream_id}, headers=farm.callaba
        ).raise_for_status()
        gone = farm.http.post(
            "/api/restream/getById", json={"id": restream_id}, headers=farm.callaba
        )
        assert gone.status_code == 404
    finally:
        if listener.poll() is None:
            listener.kill()


def test_several_outputs_report_their_bitrate_too(farm: Farm) -> None:
    """FFmpeg reports no size for the tee muxer: the worker's meter measures it instead."""
    outputs = [
        {
            "output_type": "OUTPUT_TYPE_UDP_URL",
            "output_stream_url": f"udp://127.0.0.1:{free_port()}",
        }
        for _ in range(2)
    ]
    created = farm.post(
        "/api/restream/create",
        {
            "restream_name": "two outputs",
            "input": {
                "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
                "resolution_width": 320,
                "resolution_height": 180,
                "encoding_rate": 25,
                "test_video_bitrate": 800,
            },
            "output": outputs,
            "active": True,
        },
    )

    def bitrate() -> float:
        stat = {s["id"]: s["bitrate"] for s in farm.post("/api/restream/getStat")}
        return float(stat[created["id"]])

    # 800 kbit/s of video, with audio and MPEG-TS around it, measured by the loopback meter.
    wait_for(lambda: 600 <= bitrate() <= 1300, timeout_s=30, every_s=0.5, what="~800 kbit/s")
    farm.http.request(
        "DELETE", "/api/restream/remove", json={"id": created["id"]}, headers=farm.callaba
    ).raise_for_status()


def test_an_unreachable_source_is_waited_for_and_a_refusing_one_fails(farm: Farm) -> None:
    """Nothing listens where the restream pulls from: it waits for its source, trying again
    past the retry budget (3 here), saying why; an origin that refuses its credentials (401)
    is a broken definition, which fails once the budget is spent, with FFmpeg's own error."""
    dead_port = free_port()  # nothing listens here
    unreachable = farm.small_restream(
        "unreachable",
        9,
        input={
            "input_type": "INPUT_TYPE_RTMP_URL",
            "input_stream_url": f"rtmp://127.0.0.1:{dead_port}/live/missing",
        },
    )
    waiting = wait_for(
        lambda: (d := farm.get_by_id(unreachable))["state"] == "waiting" and d,
        timeout_s=10,
        every_s=0.1,
        what="waiting",
    )
    assert "Connection refused" in waiting["last_error"]
    assert waiting["state_reason"].startswith("waiting for its source")
    with http_status(401) as port:
        refusing = farm.small_restream(
            "refusing",
            9,
            input={
                "input_type": "INPUT_TYPE_HTTP_URL",
                "input_stream_url": f"http://127.0.0.1:{port}/live.ts",
            },
        )
        failed = wait_for(
            lambda: (d := farm.get_by_id(refusing))["state"] == "failed" and d,
            timeout_s=30,
            what="failed after the retry budget",
        )
    assert "401 Unauthorized" in failed["last_error"]
    assert failed["state_reason"].startswith("3 failures within")
    assert farm.get_by_id(unreachable)["state"] == "waiting"  # many refusals later


def test_another_worker_joins_through_the_data_dir(farm: Farm) -> None:
    worker = farm.start_worker("second")
    wait_for(lambda: farm.node_live("second"), timeout_s=60, every_s=0.3, what="the second node")
    worker.terminate()
    worker.wait(30)
    assert worker.returncode == 0


def tiny(name: str, **changes: Any) -> dict[str, Any]:
    """A native body of a cheap restream: a 160x90 test signal at 10 fps to a UDP port."""
    return {
        "name": name,
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "resolution_width": 160,
                  "resolution_height": 90, "encoding_rate": 10},
        "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL",
                     "output_stream_url": f"udp://127.0.0.1:{free_port()}"}],
        **changes,
    }  # fmt: skip


def test_check_says_whether_the_farm_answers(farm: Farm) -> None:
    """`streamfleet check`, which the chart's `helm test` runs."""
    said = farm.cli("check", "--api", farm.base_url)
    assert f"ok   API {farm.base_url}/readyz: 200" in said
    assert "live worker(s) (at least 1 wanted): " in said and farm.node in said
    with pytest.raises(subprocess.CalledProcessError) as refused:
        farm.cli("check", "--api", farm.base_url, "--min-workers", "50")
    assert "FAIL " in refused.value.stdout and "(at least 50 wanted)" in refused.value.stdout


def test_a_schedule_starts_and_stops_a_restream_on_time(farm: Farm) -> None:
    """Kept in PostgreSQL by the API, carried out by the reconciler (another process) within
    a second of each time: the events' times (PostgreSQL's clock) against the schedule's."""
    start_at = datetime.now(UTC) + timedelta(seconds=3)
    body = tiny("scheduled", schedule={"start_at": start_at.isoformat(), "duration_s": 3})
    made = farm.http.post("/v1/restreams", json=body, headers=farm.bearer)
    assert made.status_code == 201, made.text
    url = f"/v1/restreams/{made.json()['id']}"
    wait_for(
        lambda: farm.http.get(url, headers=farm.bearer).json()["state"] == "running",
        timeout_s=15,
        every_s=0.1,
        what="running from its start time",
    )

    def stopped_by_schedule() -> list[dict[str, Any]]:
        events = farm.http.get(f"{url}/events", headers=farm.bearer).json()
        return [e for e in events if e["reason"].startswith("stopped by its schedule")]

    wait_for(stopped_by_schedule, timeout_s=15, every_s=0.1, what="stopped after 3 s")
    events = farm.http.get(f"{url}/events", headers=farm.bearer).json()
    started = next(e for e in events if e["reason"] == "started by its schedule")
    started_late_s = (datetime.fromisoformat(started["at"]) - start_at).total_seconds()
    stop_at = datetime.fromisoformat(started["at"]) + timedelta(seconds=3)
    stopped_late_s = (
        datetime.fromisoformat(stopped_by_schedule()[0]["at"]) - stop_at
    ).total_seconds()
    assert 0 <= started_late_s < 2.0, started_late_s  # bench/schedules.py measures it
    assert 0 <= stopped_late_s < 2.0, stopped_late_s
    final = farm.http.get(url, headers=farm.bearer).json()
    assert final["active"] is False and final["schedule"] == {
        "start_at": None, "stop_at": None, "duration_s": 3,
    }  # fmt: skip


def test_a_follower_and_a_webhook_see_a_restream_start_and_stop(farm: Farm) -> None:
    """A project's key follows its events as Server-Sent Events while its webhook (a real
    endpoint on loopback that fails its first delivery) is sent them by the worker: both see
    the restream go pending, starting, running, then stop, in that order."""
    admin = farm.bearer
    project = farm.http.post("/v1/projects", json={"name": "followed"}, headers=admin).json()
    key = farm.http.post(
        f"/v1/projects/{project['id']}/keys", json={"name": "k", "role": "admin"}, headers=admin
    ).json()["key"]
    ours = {"Authorization": f"Bearer {key}"}
    receiver = Receiver(failures=1)
    hook = farm.http.post(
        f"/v1/projects/{project['id']}/webhooks",
        json={"url": receiver.url, "events": ["restream.state"]},
        headers=ours,
    ).json()
    receiver.secret = hook["secret"]
    followed: list[dict[str, Any]] = []
    # From the project's first event (cursor 0), however late the stream connects.
    resume = {"Last-Event-ID": "0"}

    def follow() -> None:
        headers = {**ours, "Accept": "text/event-stream", **resume}
        with farm.http.stream("GET", "/v1/events", headers=headers, timeout=60) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    followed.append(json.loads(line.removeprefix("data: ")))
                    if followed[-1]["to_state"] == "idle":
                        return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    body = tiny("followed", active=True)
    try:
        restream_id = farm.http.post("/v1/restreams", json=body, headers=ours).json()["id"]
        url = f"/v1/restreams/{restream_id}"
        wait_for(
            lambda: farm.http.get(url, headers=ours).json()["state"] == "running",
            timeout_s=20,
            every_s=0.1,
            what="running",
        )
        farm.http.post(f"{url}/stop", headers=ours)
        follower.join(20)

        def all_delivered() -> bool:  # idle too, and the one answered 503 again
            tries = [g["delivery"] for g in receiver.got]
            idle = any(g["body"]["to_state"] == "idle" for g in receiver.got)
            return idle and tries.count(tries[0]) == 2

        wait_for(all_delivered, timeout_s=20, every_s=0.1, what="every event delivered")
    finally:
        receiver.close()
    moves = [e["to_state"] for e in followed if e["subject"]["id"] == restream_id]
    assert moves[:3] == ["pending", "starting", "running"] and moves[-1] == "idle", moves
    # Sent side by side, so not in order: in the order of their events' ids, each once.
    signed = sorted({g["body"]["id"]: g["body"] for g in receiver.got if g["signed"]}.values(),
                    key=lambda b: b["id"])  # fmt: skip
    sent = [b["to_state"] for b in signed]
    assert sent[:3] == ["pending", "starting", "running"] and sent[-1] == "idle", sent
    assert all(g["signed"] for g in receiver.got)
    farm.http.delete(url, headers=ours)


def test_sigterm_stops_the_farm_and_leaves_no_ffmpeg(tmp_path: Path, pg_server_url: str) -> None:
    with running_farm(tmp_path, pg_server_url) as farm:
        created = farm.post(
            "/api/restream/create",
            {
                "restream_name": "left running",
                "input": {
                    "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
                    "resolution_width": 160,
                    "resolution_height": 90,
                    "encoding_rate": 10,
                },
                "output": {
                    "output_type": "OUTPUT_TYPE_UDP_URL",
                    "output_stream_url": "udp://127.0.0.1:9",
                },
            },
        )
        details = wait_for(
            lambda: (d := farm.get_by_id(created["id"]))["state"] == "running" and d["stats"] and d,
            timeout_s=20,
        )
        pid = details["stats"]["pid"]
        children = subprocess.run(
            ["pgrep", "-P", str(farm.process.pid if farm.process else 0)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert len(children) >= 3  # api, worker, beat
    # running_farm asserted `up` exited 0 on SIGTERM
    assert not alive(pid)
    assert not any(alive(int(child)) for child in children)


def test_flower_shows_capabilities_capacity_and_running_restreams(farm: Farm) -> None:
    port = free_port()
    flower = farm.start_command(["flower", "--port", str(port)], "flower")
    try:
        auth = (ADMIN_EMAIL, ADMIN_PASSWORD)
        restream = farm.small_restream("seen by flower", free_port())
        wait_for(lambda: farm.get_by_id(restream)["state"] == "running", timeout_s=20)

        def page() -> dict[str, Any] | None:
            workers = httpx.get(
                f"http://127.0.0.1:{port}/api/workers?refresh=1", auth=auth, timeout=10
            ).json()
            mine = next((w for name, w in workers.items() if name.startswith(farm.node)), None)
            stats = (mine or {}).get("stats", {}).get("streamfleet")
            return stats if stats and restream in stats["running"] else None

        shown = wait_for(page, timeout_s=30, every_s=0.5, what="the worker in Flower")
        assert shown["node"] == farm.node
        assert "libx264" in shown["capabilities"]["ffmpeg"]["encoders"]
        capacity = shown["capacity"]
        assert capacity["cpu_used_millicores"] > 0
        assert (
            capacity["cpu_free_millicores"]
            == capacity["cpu_millicores"] - capacity["cpu_used_millicores"]
        )
        assert shown["running"][restream]["state"] == "running"
        assert httpx.get(f"http://127.0.0.1:{port}/api/workers").status_code == 401  # auth required
    finally:
        flower.terminate()
        flower.wait(20)


def test_a_worker_serves_health_and_metrics(farm: Farm) -> None:
    port = free_port()
    worker = farm.start_worker("observed", {"STREAMFLEET_WORKER_HTTP_PORT": str(port)})
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200
        assert health.json() == {"node": "observed", "lease_valid": True}
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401  # the farm has a metrics token
        secrets = json.loads((farm.data_dir / "secrets.json").read_text())
        token = {"Authorization": f"Bearer {secrets['STREAMFLEET_METRICS_TOKEN']}"}
        metrics = httpx.get(url, headers=token, timeout=5).text
        assert 'streamfleet_node_lease_valid{node="observed"} 1.0' in metrics
        assert farm.http.get("/metrics", headers=token).status_code == 200
        assert 'streamfleet_node_cpu_capacity_cores{node="observed"}' in metrics
        # The farm's figures: on the reconciler's port, which `up` announces.
        announced = re.findall(r"curl -s (http://\S+/metrics)", farm.log.read_text())
        (reconciler,) = [url for url in announced if not url.startswith(farm.base_url)]
        farm_wide = httpx.get(reconciler, headers=token, timeout=5).text
        active = sample(farm_wide, "streamfleet_nodes", state="active")
        assert active is not None and active >= 2  # the farm's node and this one
        assert sample(farm_wide, "streamfleet_reconcile_rounds_total", outcome="ran")
    finally:
        worker.terminate()
        worker.wait(30)


def test_a_callaba_start_writes_the_restream_row_in_two_transactions(farm: Farm) -> None:
    """From `POST /api/restream/start` to its FFmpeg running, the restream's row is written
    by the API's transaction (wanted, placed) and by the worker's `running`: a trigger of
    the test records the transaction of every write of the row."""
    engine = create_engine(sqlalchemy_url(farm.env["DATABASE_URL"]))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS row_writes (id text, tx bigint)"))
        connection.execute(
            text(
                "CREATE OR REPLACE FUNCTION record_row_write() RETURNS trigger AS $$ BEGIN "
                "INSERT INTO row_writes VALUES (NEW.id, txid_current()); RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text(
                "CREATE OR REPLACE TRIGGER record_row_writes AFTER UPDATE ON restreams "
                "FOR EACH ROW EXECUTE FUNCTION record_row_write()"
            )
        )
    try:
        created = farm.post(
            "/api/restream/create",
            {
                "restream_name": "two-transactions",
                "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
                          "resolution_width": 160, "resolution_height": 90, "encoding_rate": 10},
                "output": {"output_type": "OUTPUT_TYPE_UDP_URL",
                           "output_stream_url": f"udp://127.0.0.1:{free_port()}"},
                "active": False,
            },
        )  # fmt: skip
        restream_id = created["id"]
        farm.post("/api/restream/start", {"id": restream_id})
        wait_for(
            lambda: farm.get_by_id(restream_id)["state"] == "running",
            timeout_s=30,
            every_s=0.1,
            what="running",
        )
        with engine.connect() as connection:
            writes = connection.execute(
                text("SELECT count(DISTINCT tx) FROM row_writes WHERE id = :id"),
                {"id": restream_id},
            ).scalar_one()
        assert writes == 2
    finally:
        farm.remove_all()
        with engine.begin() as connection:
            connection.execute(text("DROP TRIGGER IF EXISTS record_row_writes ON restreams"))
        engine.dispose()


def test_up_says_which_ffmpeg_its_node_runs(farm: Farm) -> None:
    binary = resolve_ffmpeg(farm.env.get("FFMPEG_BINARY"))
    version = subprocess.run([binary, "-version"], capture_output=True, text=True, check=True)
    expected = f"node {farm.node} runs FFmpeg {parse_version(version.stdout)[0]} ({binary})"
    assert expected in farm.log.read_text()


def test_up_says_what_it_does_and_is_up_only_once_the_worker_holds_its_lease(farm: Farm) -> None:
    said = farm.log.read_text().splitlines()
    steps = [line.removesuffix(" ...") for line in said if line.endswith(" ...")]
    if "REDIS_URL" not in farm.env:  # an embedded Redis (this farm's PostgreSQL is the tests')
        assert "starting the embedded Redis" in steps
    assert "migrating the database" in steps
    done = [line for line in said if ": done in " in line]
    waited = next(
        i
        for i, line in enumerate(said)
        if line.startswith(f"waiting for node {farm.node}'s worker: done")
    )
    up = next(i for i, line in enumerate(said) if line.startswith("streamfleet is up: "))
    assert waited < up and any(line.startswith("waiting for the API") for line in done)
    children = {line.split(" | ", 1)[0].strip() for line in said if " | " in line}
    assert {"worker", "beat", "api"} <= children  # each child's lines after its name
