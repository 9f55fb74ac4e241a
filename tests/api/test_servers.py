"""Media server modules through the API: Callaba's `/api/srt-servers/*` and `/api/rtmp-servers/*`,
the native `/v1/servers`, and restreams reading a server's stream. Nodes are simulated (a row
and a lease); the engines themselves are tested in tests/worker and tests/e2e."""

from __future__ import annotations

from typing import Any

import redis
from fastapi.testclient import TestClient

from common import live
from common.config import Settings
from common.db import Database
from common.reconcile.run import reconcile
from tests.support.nodes import Offers, simulate_node

SERVES = Offers(server_kinds=("srt", "rtmp"), address="10.0.0.2")
STUDIO = {
    "server_name": "studio",
    "server_type": "SERVER_TYPE_SRT",
    "server_port": 9000,
    "server_latency": 300,
    "server_maxbw": -1,
    "server_timeout": 10,
    "server_active": True,
}


def post(client: TestClient, path: str, headers: dict[str, str], body: Any) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def srt_count(client: TestClient, headers: dict[str, str]) -> int:
    return int(post(client, "/api/srt-servers/getCount", headers, {})["count"])


def test_an_srt_server_is_created_placed_changed_stopped_and_removed(
    client: TestClient, callaba: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "plain")  # no server engine: never chosen
    simulate_node(db, redis_client, "serves", offers=SERVES)
    created = post(client, "/api/srt-servers/create", callaba, STUDIO)
    assert created["success"] is True and created["ok"] is True
    assert created["_id"] == created["id"]
    assert created["node"] == "serves" and created["state"] == "starting"
    assert created["ingest_url"] == "srt://10.0.0.2:9000?streamid=publisher/studio/<stream>"
    assert created["play_url"] == "srt://10.0.0.2:9000?streamid=receiver/studio/<stream>"
    assert created["server_latency"] == 300 and "moves to another" in created["note"]
    sid = created["id"]

    [listed] = post(client, "/api/srt-servers/getAll", callaba, {})
    assert listed["server_name"] == "studio" and srt_count(client, callaba) == 1
    assert post(client, "/api/rtmp-servers/getCount", callaba, {})["count"] == 0

    updated = post(client, "/api/srt-servers/update", callaba, {"id": sid, "server_latency": 120})
    assert updated["server_latency"] == 120 and updated["server_port"] == 9000
    assert updated["node"] == "serves"  # its port is still free there: it stays

    stopped = post(client, "/api/srt-servers/stop", callaba, {"id": sid})
    assert stopped["state"] == "stopped" and stopped["node"] is None
    assert stopped["ingest_url"] is None
    started = post(client, "/api/srt-servers/start", callaba, {"id": sid})
    assert started["node"] == "serves"
    assert post(client, "/api/srt-servers/getById", callaba, {"id": sid})["server_active"] is True

    response = client.request(
        "DELETE", "/api/srt-servers/remove", json={"id": sid}, headers=callaba
    )
    assert response.json() == {"success": True, "ok": True}
    assert srt_count(client, callaba) == 0


def test_bad_server_definitions_are_refused_naming_the_field_and_nothing_is_written(
    client: TestClient, callaba: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "serves", offers=SERVES)
    post(client, "/api/srt-servers/create", callaba, STUDIO)
    cases = [
        ({**STUDIO, "server_name": "b", "server_latency": 5}, 400, "server_latency"),
        ({**STUDIO, "server_name": "a/b"}, 400, "server_name"),
        ({**STUDIO, "server_name": "c", "server_port": 80}, 400, "server_port"),
        ({**STUDIO, "server_name": "d", "server_type": "SERVER_TYPE_RTMP"}, 400, "server_type"),
        ({**STUDIO, "server_name": "e", "server_passphrase": "short"}, 400, "server_passphrase"),
        ({"server_name": "f"}, 400, "server_port"),
        # Its port is held on the one node that could run it: a taken port.
        ({**STUDIO, "server_name": "g"}, 409, "server_port"),
        ({**STUDIO}, 409, "server_name"),
    ]
    for body, status, field in cases:
        response = client.post("/api/srt-servers/create", json=body, headers=callaba)
        assert response.status_code == status, (body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, (body, response.text)
    assert srt_count(client, callaba) == 1
    # The same port over TCP is another port: an RTMP server takes it.
    rtmp = {**STUDIO, "server_name": "rtmp", "server_type": "SERVER_TYPE_RTMP"}
    assert post(client, "/api/rtmp-servers/create", callaba, rtmp)["node"] == "serves"
    refused = client.post(
        "/api/rtmp-servers/create",
        json={**rtmp, "server_name": "keyed", "server_port": 9100, "publish_key": "k"},
        headers=callaba,
    )
    assert refused.status_code == 422


def test_a_server_no_node_can_run_waits_saying_why(
    client: TestClient, callaba: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "plain")
    created = post(client, "/api/srt-servers/create", callaba, STUDIO)
    assert created["state"] == "pending" and created["node"] is None
    assert "no live node runs SRT servers" in created["state_reason"]
    assert "plain has no server engine" in created["state_reason"]


def restream_from(server_id: str, stream_id: str | None, kind: str = "SRT") -> dict[str, Any]:
    source: dict[str, Any] = {
        "input_type": f"INPUT_TYPE_{kind}_SOFTWARE",
        "input_module_id": server_id,
    }
    if stream_id is not None:
        source["input_stream_id"] = stream_id
    return {
        "restream_name": f"from {stream_id}",
        "input": source,
        "output": {
            "output_type": "OUTPUT_TYPE_UDP_URL",
            "output_stream_url": "udp://127.0.0.1:5000",
        },
    }


def test_a_server_input_runs_beside_its_server_and_follows_it_when_it_moves(
    client: TestClient,
    callaba: dict[str, str],
    db: Database,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    simulate_node(db, redis_client, "a-serves", offers=SERVES)
    simulate_node(db, redis_client, "b-serves", offers=SERVES)
    sid = post(client, "/api/srt-servers/create", callaba, STUDIO)["id"]
    server_node = post(client, "/api/srt-servers/getById", callaba, {"id": sid})["node"]
    for stream_id in ("publisher/studio/cam1", "cam1", "", None):
        rid = post(client, "/api/restream/create", callaba, restream_from(sid, stream_id))["id"]
        shown = post(client, "/api/restream/getById", callaba, {"id": rid})
        assert shown["node"] == server_node, stream_id
    # Its node is lost: the reconciler moves the server, then its readers after it.
    redis_client.delete(f"streamfleet:lease:{server_node}")
    live.remember_since(redis_client, 3600)
    for _ in range(3):
        reconcile(db, redis_client, settings)
    moved = post(client, "/api/srt-servers/getById", callaba, {"id": sid})
    assert moved["node"] not in (None, server_node)
    assert moved["ingest_url"].startswith("srt://10.0.0.2:9000")


def test_server_inputs_are_checked_against_their_server(
    client: TestClient, callaba: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "serves", offers=SERVES)
    sid = post(client, "/api/srt-servers/create", callaba, STUDIO)["id"]
    rtmp = {**STUDIO, "server_name": "rtmp", "server_type": "SERVER_TYPE_RTMP", "server_port": 9100}
    rtmp_id = post(client, "/api/rtmp-servers/create", callaba, rtmp)["id"]
    cases = [
        (restream_from(sid, "publisher/studio/cam1/extra"), "input.input_stream_id"),
        (restream_from(sid, "publisher/other/cam1"), "input.input_stream_id"),
        (restream_from(sid, "cam 1"), "input.input_stream_id"),
        (restream_from("62275f1bccaa650032da2b53", "cam1"), "input.input_server_id"),
        (restream_from(rtmp_id, "cam1"), "input.input_server_id"),  # not an SRT server
        (restream_from(rtmp_id, "", kind="RTMP"), "input.input_stream_id"),
    ]
    for body, field in cases:
        response = client.post("/api/restream/create", json=body, headers=callaba)
        assert response.status_code == 400, (body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, (body, response.text)
    assert post(client, "/api/restream/getCount", callaba, {})["count"] == 0


def test_native_servers(
    client: TestClient, bearer: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "serves", offers=SERVES)
    body = {"kind": "rtmp", "name": "ingest", "port": 1936}
    response = client.post("/v1/servers", json=body, headers=bearer)
    assert response.status_code == 201, response.text
    server = response.json()
    assert server["ingest_url"] == "rtmp://10.0.0.2:1936/live/<stream>"
    assert server["state"] == "starting" and server["node"] == "serves"
    listed = client.get("/v1/servers", params={"kind": "rtmp"}, headers=bearer).json()
    assert [s["id"] for s in listed] == [server["id"]]
    changed = client.put(
        f"/v1/servers/{server['id']}", json={**body, "kind": "srt"}, headers=bearer
    )
    assert changed.status_code == 422
    assert changed.json()["error"]["problems"][0]["field"] == "kind"
    secret = client.post(
        "/v1/servers",
        json={"kind": "srt", "name": "s", "port": 9001, "passphrase": "0123456789ab"},
        headers=bearer,
    ).json()
    assert secret["settings"]["passphrase"] == "***"
    gone = client.delete(f"/v1/servers/{server['id']}", headers=bearer)
    assert gone.status_code == 204
    assert client.get(f"/v1/servers/{server['id']}", headers=bearer).status_code == 404
