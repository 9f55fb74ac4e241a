"""Media server modules on a real farm: SRT and RTMP servers run by their node's worker, fed by
FFmpeg publishing as OBS does (SRT with a streamid and a passphrase, RTMP with a key), read by
players and by restreams, and moved to another node when their worker is killed."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.farm import Farm, running_farm
from tests.support.media import free_port, probe, stream_of
from tests.support.peers import publisher, running
from tests.support.wait import wait_for
from worker.servers import available_kinds

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("farm"),
    pytest.mark.skipif(
        available_kinds("srt,rtmp") != ["srt", "rtmp"],
        reason="a node's server engines are not installed (Debian: libsrt1.5-openssl, "
        "libnginx-mod-rtmp; .ci/run installs them)",
    ),
]
SERVING = {"STREAMFLEET_SERVER_KINDS": "srt,rtmp"}
SECRET = "streamfleet-secret"


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Farm]:
    # Its own worker runs no servers: those started here do.
    with running_farm(
        tmp_path_factory.mktemp("farm"), pg_server_url, {"STREAMFLEET_SERVER_KINDS": ""}
    ) as started:
        yield started


def shown(farm: Farm, kind: str, server_id: str) -> dict[str, Any]:
    found: dict[str, Any] = farm.post(f"/api/{kind}-servers/getById", {"id": server_id})
    return found


def running_on(farm: Farm, kind: str, server_id: str, not_on: str | None = None) -> str:
    def ready() -> str | None:
        view = shown(farm, kind, server_id)
        ok = view["state"] == "running" and view["node"] != not_on
        return view["node"] if ok else None

    return wait_for(ready, timeout_s=40, every_s=0.2, what=f"{kind} server {server_id} running")


def restream_reading(farm: Farm, input_spec: dict[str, Any], out_port: int) -> str:
    body = {
        "restream_name": f"reads {input_spec['input_stream_id']}",
        "input": input_spec,
        "output": {
            "output_type": "OUTPUT_TYPE_UDP_URL",
            "output_stream_url": f"udp://127.0.0.1:{out_port}?pkt_size=1316",
        },
    }
    restream_id: str = farm.post("/api/restream/create", body)["id"]
    return restream_id


def plays(url: str) -> int:
    return int(stream_of(probe(url, timeout_s=10), "video")["width"])


def test_an_srt_server_routes_by_streamid_feeds_a_restream_and_moves_when_its_node_dies(
    farm: Farm,
) -> None:
    workers = {name: farm.start_worker(name, SERVING) for name in ("srv-a", "srv-b")}
    port = free_port()
    created = farm.post(
        "/api/srt-servers/create",
        {
            "server_name": "studio",
            "server_type": "SERVER_TYPE_SRT",
            "server_port": port,
            "server_latency": 120,
            "server_passphrase": SECRET,
        },
    )
    sid = created["id"]
    node = running_on(farm, "srt", sid)
    assert node in workers
    secret = f"&passphrase={SECRET}"
    publish = f"srt://127.0.0.1:{port}?streamid=publisher/studio/cam1{secret}"
    play = f"srt://127.0.0.1:{port}?streamid=receiver/studio/cam1{secret}"
    out_port = free_port()
    source = {
        "input_type": "INPUT_TYPE_SRT_HARDWARE",
        "input_server_id": sid,
        "input_stream_id": "publisher/studio/cam1",
    }
    with running(publisher(["-f", "mpegts", publish], size="160x90", rate=10)):
        restream_id = restream_reading(farm, source, out_port)
        wait_for(lambda: farm.get_by_id(restream_id)["state"] == "running", timeout_s=30)
        assert farm.get_by_id(restream_id)["node"] == node  # beside its server
        assert wait_for(lambda: plays(play), timeout_s=20, what="a player") == 160
        assert plays(f"udp://127.0.0.1:{out_port}?timeout=10000000") == 160
        # A player without the passphrase is turned away.
        with pytest.raises((subprocess.CalledProcessError, subprocess.TimeoutExpired)):
            probe(play.removesuffix(secret), timeout_s=5)

        def stream() -> dict[str, Any] | None:
            streams = shown(farm, "srt", sid)["active_streams"]
            return next((s for s in streams if s["name"] == "cam1" and s["players"]), None)

        cam1 = wait_for(stream, timeout_s=10, what="the stream's statistics")
        assert cam1["publisher"]["kbps"] > 0 and cam1["players"][0]["kbps"] > 0

    os.kill(workers[node].pid, signal.SIGKILL)
    moved = running_on(farm, "srt", sid, not_on=node)
    assert moved in workers and moved != node
    view = shown(farm, "srt", sid)
    assert view["ingest_url"].startswith(f"srt://127.0.0.1:{port}?")  # its new node's address
    # Publishers reconnect (as OBS does): the restream follows its server and plays again.
    with running(publisher(["-f", "mpegts", publish], size="160x90", rate=10)):
        wait_for(
            lambda: (
                farm.get_by_id(restream_id)["node"] == moved
                and farm.get_by_id(restream_id)["state"] == "running"
            ),
            timeout_s=40,
            what="the restream beside its moved server",
        )
        assert wait_for(lambda: plays(play), timeout_s=20, what="a player") == 160
    for name, worker in workers.items():
        if name != node:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)


def test_an_rtmp_server_takes_a_keyed_publisher_and_feeds_players_and_a_restream(
    farm: Farm,
) -> None:
    worker = farm.start_worker("rtmp-node", SERVING)
    port = free_port()
    sid = farm.post(
        "/api/rtmp-servers/create",
        {"server_name": "ingest", "server_type": "SERVER_TYPE_RTMP", "server_port": port},
    )["id"]
    assert running_on(farm, "rtmp", sid) == "rtmp-node"
    url = f"rtmp://127.0.0.1:{port}/live/key1"
    out_port = free_port()
    source = {"input_type": "INPUT_TYPE_RTMP_SOFTWARE", "input_module_id": sid}
    with running(publisher(["-f", "flv", url], size="160x90", rate=10)):
        assert wait_for(lambda: plays(url), timeout_s=20, what="a player") == 160
        restream_id = restream_reading(farm, {**source, "input_stream_id": "key1"}, out_port)
        wait_for(lambda: farm.get_by_id(restream_id)["state"] == "running", timeout_s=30)
        assert plays(f"udp://127.0.0.1:{out_port}?timeout=10000000") == 160

        def publishing() -> dict[str, Any] | None:
            streams = shown(farm, "rtmp", sid)["active_streams"]
            found = (s for s in streams if s["name"] == "key1" and s["publisher"])
            return next((s for s in found if s["publisher"]["bytes"] > 0), None)

        # nginx-rtmp averages bitrates over 10 s: bytes show first.
        assert wait_for(publishing, timeout_s=20)["publisher"]["bytes"] > 0
    response = farm.http.request(
        "DELETE", "/api/rtmp-servers/remove", json={"id": sid}, headers=farm.callaba
    )
    assert response.json()["ok"] is True
    wait_for(lambda: not plays_quietly(url), timeout_s=15, what="the server gone")
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)


def plays_quietly(url: str) -> bool:
    try:
        return plays(url) > 0
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False
