"""The native /v1 surface with API keys."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from api.surfaces import native
from common import live
from common.accounts.principal import Principal, Role
from common.config import Settings
from common.db import Database
from common.lifecycle import service
from tests.support.nodes import simulate_node

FARM_ADMIN = Principal("test", Role.ADMIN, None)

BODY = {
    "name": "r1",
    "input": {
        "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
        "resolution_width": 640,
        "resolution_height": 360,
    },
    "transcoding": {"video_transcoding": "libx264", "output_video_bitrate": 800},
    "outputs": [
        {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:5000"}
    ],
}


def create(client: TestClient, bearer: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/restreams", json={**BODY, **overrides}, headers=bearer)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Authorization: Bearer <api key or login token>"),
        ({"Authorization": "Basic abc"}, "Authorization must be `Bearer <api key or login token>`"),
        ({"Authorization": "Bearer sf_000000000000_nope"}, "unknown or revoked API key"),
        (
            {"Authorization": "Bearer garbage"},
            "invalid or expired token (or revoked): log in again at /api/auth/login",
        ),
    ],
)
def test_credentials_are_required(
    client: TestClient, headers: dict[str, str], message: str
) -> None:
    response = client.get("/v1/restreams", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "not_authenticated",
        "message": message,
        "problems": [],
    }


def test_a_login_token_serves_as_a_bearer_until_logged_out(client: TestClient, token: str) -> None:
    """The administrator's login (what `streamfleet check` and an operator's console hold)
    reaches the native API as a key would, and not after logging out."""
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/nodes", headers=bearer).status_code == 200
    assert client.post("/api/auth/logout", headers={"x-access-token": token}).status_code == 200
    assert client.get("/v1/nodes", headers=bearer).status_code == 401


def test_a_key_from_the_wrong_secret_is_refused(client: TestClient, api_key: str) -> None:
    forged = api_key[: api_key.rindex("_") + 1] + "x" * 32
    assert (
        client.get("/v1/restreams", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )


def test_crud(client: TestClient, bearer: dict[str, str]) -> None:
    created = create(client, bearer)
    assert (created["name"], created["state"], created["active"], created["generation"]) == (
        "r1", "idle", False, 0,
    )  # fmt: skip
    assert created["restream_type"] == "RESTREAM_TYPE_TEST_VIDEO_TO_UDP"
    restream_id = created["id"]
    assert client.get(f"/v1/restreams/{restream_id}", headers=bearer).json() == created

    patched = client.patch(
        f"/v1/restreams/{restream_id}",
        json={"name": "renamed", "transcoding": {"video_transcoding": "libx265"}},
        headers=bearer,
    ).json()
    assert patched["name"] == "renamed"
    assert patched["transcoding"] == {"video_transcoding": "libx265"}
    assert patched["outputs"] == created["outputs"]

    assert client.delete(f"/v1/restreams/{restream_id}", headers=bearer).status_code == 204
    missing = client.get(f"/v1/restreams/{restream_id}", headers=bearer)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"restream {restream_id} not found"


def test_pagination(client: TestClient, bearer: dict[str, str]) -> None:
    ids = [create(client, bearer, name=f"r{i}")["id"] for i in range(5)]
    first = client.get("/v1/restreams?limit=2", headers=bearer).json()
    assert (first["total"], first["limit"], first["offset"]) == (5, 2, 0)
    pages = [
        client.get(f"/v1/restreams?limit=2&offset={offset}", headers=bearer).json()["items"]
        for offset in (0, 2, 4)
    ]
    assert [r["id"] for page in pages for r in page] == ids
    past = client.get("/v1/restreams?limit=2&offset=6", headers=bearer).json()
    assert past == {"items": [], "total": 5, "limit": 2, "offset": 6}
    assert client.get("/v1/restreams?limit=0", headers=bearer).status_code == 422
    assert client.get("/v1/restreams?limit=1000", headers=bearer).json()["total"] == 5
    too_many = client.get("/v1/restreams?limit=1001", headers=bearer)
    assert too_many.status_code == 422 and "limit" in too_many.text


def test_live_gives_every_placed_restream_in_one_read(
    client: TestClient, bearer: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    """`/v1/live` reads the placed restreams themselves (the list's `on_a_node`), not the
    first page of all of them (it gave those placed among the first 500 only)."""
    simulate_node(db, redis_client, "n1")
    idle = [create(client, bearer, name=f"idle{i}")["id"] for i in range(3)]
    placed = [create(client, bearer, name=f"on{i}")["id"] for i in range(5)]
    for restream_id in placed:
        client.post(f"/v1/restreams/{restream_id}/start", headers=bearer).raise_for_status()
    every = client.get("/v1/live", headers=bearer).json()
    assert sorted(s["restream_id"] for s in every) == sorted(placed) and idle


def test_start_stop_stats_and_events(
    client: TestClient, bearer: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "n1")
    restream_id = create(client, bearer)["id"]
    started = client.post(f"/v1/restreams/{restream_id}/start", headers=bearer)
    assert started.status_code == 202
    assert (started.json()["state"], started.json()["node"]) == ("starting", "n1")
    stats = client.get(f"/v1/restreams/{restream_id}/stats", headers=bearer).json()
    assert stats == {"restream_id": restream_id, "state": "starting", "live": None, "playback": {}}
    idle = create(client, bearer, name="idle")["id"]
    every = client.get("/v1/live", headers=bearer).json()
    assert [s["restream_id"] for s in every] == [restream_id] and idle  # the placed ones
    restarted = client.post(f"/v1/restreams/{restream_id}/restart", headers=bearer).json()
    assert restarted["generation"] == 1 and restarted["active"]  # to run anew once gone
    stopped = client.post(f"/v1/restreams/{restream_id}/stop", headers=bearer).json()
    assert (stopped["state"], stopped["active"]) == ("stopping", False)
    events = client.get(f"/v1/restreams/{restream_id}/events", headers=bearer).json()
    assert [(e["from_state"], e["to_state"]) for e in events] == [
        ("idle", "pending"), ("pending", "starting"), ("starting", "stopping"),
    ]  # fmt: skip
    assert events[1]["reason"] == "placed on n1" and events[1]["generation"] == 1


def test_a_list_shows_every_change_at_once(
    client: TestClient, bearer: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    """A list makes again only the items that changed (their rows' versions, what Redis
    adds): each kind of change shows in the next list."""
    simulate_node(db, redis_client, "n1")
    first, second = create(client, bearer)["id"], create(client, bearer, name="r2")["id"]

    def listed() -> dict[str, dict[str, Any]]:
        items = client.get("/v1/restreams", headers=bearer).json()["items"]
        return {item["id"]: item for item in items}

    before = listed()
    renamed = client.patch(f"/v1/restreams/{first}", json={"name": "r1b"}, headers=bearer)
    assert renamed.status_code == 200, renamed.text
    client.post(f"/v1/restreams/{second}/start", headers=bearer)
    after = listed()
    assert (before[first]["name"], after[first]["name"]) == ("r1", "r1b")
    assert (before[second]["state"], after[second]["state"]) == ("idle", "starting")
    assert after[second]["last_error"] is None
    stats = live.RestreamStats(restream_id=second, node="n1", generation=1, state="running",
                               last_error="the source went away")  # fmt: skip
    live.write_stats(redis_client, [stats], 60.0)
    assert listed()[second]["last_error"] == "the source went away"
    assert listed() == {i: client.get(f"/v1/restreams/{i}", headers=bearer).json()
                        for i in (first, second)}  # fmt: skip


def test_one_restream_reads_as_its_model_renders_it(
    client: TestClient,
    bearer: dict[str, str],
    db: Database,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    """GET of one restream is made as a list's item is (kept JSON, no model); it says exactly
    what `RestreamOut` says of it, as a create or a PATCH answers, with its ETag."""
    simulate_node(db, redis_client, "n1")
    ids = [
        create(client, bearer)["id"],
        create(client, bearer, name="backed-up", input=None, inputs=[
            {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://a.example/l/1"},
            {"input_type": "INPUT_TYPE_SRT_URL", "input_stream_url": "srt://b.example:9000"},
        ],
               continuity={"input_loss_ms": 500, "slate_text": "soon"},
               transcoding={"video_transcoding": "libx264", "frame_width": 640,
                            "frame_height": 360, "filter_fps": 25})["id"],
        create(client, bearer, name="later",
               schedule={"start_at": "2999-01-01T00:00:00Z", "duration_s": 600})["id"],
    ]  # fmt: skip
    client.post(f"/v1/restreams/{ids[0]}/start", headers=bearer).raise_for_status()
    stats = live.RestreamStats(restream_id=ids[0], node="n1", generation=1, state="running",
                               last_error="the source went away")  # fmt: skip
    live.write_stats(redis_client, [stats], 60.0)
    farm = service.Farm(redis_client, settings)
    with db.sessions() as session:
        for restream_id in ids:
            answer = client.get(f"/v1/restreams/{restream_id}", headers=bearer)
            restream = service.get(session, FARM_ADMIN, restream_id)
            model = native._one(restream, farm)
            assert answer.json() == model.model_dump(mode="json", by_alias=True)
            assert answer.headers["ETag"] == f'"{model.revision}"'
    assert client.get(f"/v1/restreams/{'f' * 24}", headers=bearer).status_code == 404


def test_nodes_list_shows_liveness(
    client: TestClient, bearer: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "alive")
    simulate_node(db, redis_client, "gone", lease=False)
    nodes = {n["name"]: n for n in client.get("/v1/nodes", headers=bearer).json()}
    assert nodes["alive"]["live"] is True and nodes["gone"]["live"] is False
    assert "libx264" in nodes["alive"]["capabilities"]["ffmpeg"]["encoders"]


def test_nodes_list_shows_reserved_and_free_capacity(
    client: TestClient, bearer: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "n1", millicores=8000, u30_devices=2)
    placed = create(client, bearer, active=True)
    assert placed["node"] == "n1"
    node = client.get("/v1/nodes", headers=bearer).json()[0]
    cpu = node["capacity"]["cpu_millicores"]
    assert cpu["capacity"] == 8000 and 0 < cpu["reserved"] < 8000
    assert cpu["free"] == 8000 - cpu["reserved"]
    assert node["capacity"]["u30"]["1"]["encoder"] == {"reserved": 0, "free": 1_000_000}
    drained = client.post("/v1/nodes/n1/drain", headers=bearer).json()
    assert drained["state"] == "draining" and "capacity" in drained


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**BODY, "outputs": []}, "outputs", "at least 1 item"),
        ({**BODY, "input": {"input_type": "INPUT_TYPE_UDP_URL", "input_stream_url": "subfile:x"}},
         "input", "scheme must be one of rtp, udp"),
        ({**BODY, "transcoding": {"cores": 9}}, "transcoding.cores", "less than or equal to 4"),
        ({**BODY, "surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_invalid_bodies_are_422_with_problems(
    client: TestClient, bearer: dict[str, str], body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/v1/restreams", json=body, headers=bearer)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert any(p["field"].startswith(field) and words in p["message"] for p in error["problems"]), (
        error
    )
    assert client.get("/v1/restreams", headers=bearer).json()["total"] == 0


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/restreams", "/api/restream/create", "/api/auth/login"} <= set(paths)


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_openapi_documents_the_errors_each_surface_answers(client: TestClient) -> None:
    """Each operation lists the error statuses its surface answers, in that surface's shape
    (it used to list FastAPI's 422 only)."""
    spec = client.get("/openapi.json").json()
    expected = {
        "/v1/": ({"401", "403", "404", "409", "413", "422", "503"}, "NativeError"),
        "/api/restream/": ({"400", "401", "404", "409", "413", "503"}, "CallabaError"),
        "/api/v1/": ({"400", "401", "403", "404", "503"}, "GjirafaError"),
        "/v2/": ({"400", "401", "403", "404", "429", "503"}, "CdnError"),
    }
    checked = 0
    for path, operations in spec["paths"].items():
        for prefix, (statuses, schema) in expected.items():
            if not path.startswith(prefix) or (prefix == "/v1/" and path.startswith("/api")):
                continue
            for operation in operations.values():
                responses = operation["responses"]
                assert statuses <= set(responses), (path, sorted(responses))
                for status in statuses:
                    reference = responses[status]["content"]["application/json"]["schema"]
                    assert reference["$ref"].endswith("/" + schema), (path, status)
                checked += 1
            break
    assert checked > 40


def test_if_match_compares_strongly_and_a_stale_revision_is_refused(
    client: TestClient, bearer: dict[str, str]
) -> None:
    made = client.post("/v1/restreams", json=BODY, headers=bearer)
    url, etag = f"/v1/restreams/{made.json()['id']}", made.headers["ETag"]
    assert etag == f'"{made.json()["revision"]}"'

    def patch(if_match: str, name: str) -> Any:
        return client.patch(url, json={"name": name}, headers={**bearer, "If-Match": if_match})

    assert patch(f"W/{etag}", "weak").status_code == 412  # a weak tag matches nothing
    renamed = patch(f'"999", {etag}', "listed")  # one of a list
    assert renamed.status_code == 200 and renamed.headers["ETag"] != etag
    stale = patch(etag, "stale")
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "precondition_failed"
    assert patch("*", "any").status_code == 200
    refused = patch("3", "unquoted")
    assert (
        refused.status_code == 422 and refused.json()["error"]["problems"][0]["field"] == "If-Match"
    )
    before = client.get(url, headers=bearer).headers["ETag"]
    client.post(f"{url}/restart", headers=bearer)  # a start, a stop, a restart: changes too
    assert patch(before, "after a restart").status_code == 412
    assert client.get(url, headers=bearer).json()["name"] == "any"


def test_an_idempotency_key_makes_one_restream(client: TestClient, bearer: dict[str, str]) -> None:
    keyed = {**bearer, "Idempotency-Key": "create-lobby-1"}
    first = client.post("/v1/restreams", json=BODY, headers=keyed)
    again = client.post("/v1/restreams", json=BODY, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert (
        first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    )
    assert "Idempotent-Replayed" not in first.headers
    assert client.get("/v1/restreams", headers=bearer).json()["total"] == 1
    other = client.post("/v1/restreams", json={**BODY, "name": "other"}, headers=keyed)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["error"]["message"]
    client.delete(f"/v1/restreams/{first.json()['id']}", headers=bearer)
    gone = client.post("/v1/restreams", json=BODY, headers=keyed)
    assert gone.status_code == 404  # what the key made was removed: not made again
    bad = client.post("/v1/restreams", json=BODY, headers={**bearer, "Idempotency-Key": "a\x7fb"})
    assert bad.status_code == 422
