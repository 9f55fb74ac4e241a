"""Isolation between projects on every surface: another project's restream answers exactly like
a missing one, for every verb; viewers change nothing; revoked keys open nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.accounts import projects
from common.accounts.principal import Principal, Role
from common.accounts.service import create_api_key
from common.db import Database
from common.models import ApiKey, Restream

FARM_ADMIN = Principal("tests", Role.ADMIN, None)
MISSING_ID = "0123456789abcdef01234567"
MISSING_NUMBER = 987654321
PLAIN = {
    "name": "plain",
    "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/a"},
    "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:5"}],
}


@dataclass
class Holdings:
    """What project B holds, and the keys of project A."""

    project_a: str
    project_b: str
    keys: dict[str, str]  # A's keys by role
    restream: str  # B's plain restream
    video: str  # B's live video
    destination: int  # B's destination (its number)


@pytest.fixture
def holdings(client: TestClient, db: Database) -> Holdings:
    with db.transaction() as session:
        a = projects.create(session, FARM_ADMIN, "a")
        b = projects.create(session, FARM_ADMIN, "b")
        keys = {
            role.value: create_api_key(session, role.value, project_id=a.id, role=role)[1]
            for role in Role
        }
        _, b_key = create_api_key(session, "b", project_id=b.id, role=Role.OPERATOR)
    native_b = {"Authorization": f"Bearer {b_key}"}
    restream = client.post("/v1/restreams", json=PLAIN, headers=native_b).json()["id"]
    gjirafa_b = {"Authorization": b_key}
    video = client.post(f"/api/v1/{b.id}/live-videos", json={"title": "v"}, headers=gjirafa_b)
    video_id = video.json()["result"]["id"]
    destination = client.post(
        f"/api/v1/{b.id}/restreams",
        json={"videoId": video_id, "title": "d", "streamUrl": "rtmp://x/live", "status": False},
        headers=gjirafa_b,
    ).json()["result"]["id"]
    return Holdings(a.id, b.id, keys, restream, video_id, destination)


def native(verb: str, path: str, body: dict[str, Any] | None = None) -> Callable[..., Any]:
    def call(client: TestClient, key: str, target: str) -> Any:
        return client.request(
            verb, path.format(id=target), json=body, headers={"Authorization": f"Bearer {key}"}
        )

    return call


def callaba(path: str, **extra: Any) -> Callable[..., Any]:
    def call(client: TestClient, key: str, target: str) -> Any:
        verb = "DELETE" if path.endswith("remove") else "POST"
        return client.request(
            verb, path, json={"id": target, **extra}, headers={"x-access-token": key}
        )

    return call


def gjirafa(
    verb: str, path: str, body: Callable[[str], dict[str, Any]] | None = None
) -> Callable[..., Any]:
    def call(client: TestClient, key: str, target: str, project: str) -> Any:
        return client.request(
            verb,
            f"/api/v1/{project}{path.format(id=target)}",
            json=body(target) if body else None,
            headers={"Authorization": key},
        )

    return call


NATIVE = {
    "get": native("GET", "/v1/restreams/{id}"),
    "patch": native("PATCH", "/v1/restreams/{id}", {"name": "mine now"}),
    "start": native("POST", "/v1/restreams/{id}/start"),
    "stop": native("POST", "/v1/restreams/{id}/stop"),
    "stats": native("GET", "/v1/restreams/{id}/stats"),
    "events": native("GET", "/v1/restreams/{id}/events"),
    "delete": native("DELETE", "/v1/restreams/{id}"),
}
CALLABA = {
    "getById": callaba("/api/restream/getById"),
    "update": callaba("/api/restream/update", restream_name="mine now"),
    "start": callaba("/api/restream/start"),
    "stop": callaba("/api/restream/stop"),
    "remove": callaba("/api/restream/remove"),
}
GJIRAFA_VIDEO = {
    "get video": gjirafa("GET", "/live-videos/{id}"),
    "list destinations": gjirafa("GET", "/live-video/{id}/restreams"),
    "add destination": gjirafa(
        "POST",
        "/restreams",
        lambda video: {"videoId": video, "title": "t", "streamUrl": "rtmp://x/live"},
    ),
    "delete video": gjirafa("DELETE", "/live-videos/{id}"),
}
GJIRAFA_DESTINATION = {
    "get": gjirafa("GET", "/restreams/{id}"),
    "toggle": gjirafa("PUT", "/restreams/{id}/toggle"),
    "delete": gjirafa("DELETE", "/restreams/{id}"),
}


def same_as_missing(other: Any, missing: Any, other_id: str) -> None:
    assert other.status_code == missing.status_code == 404
    assert other.text.replace(other_id, "<id>") == missing.text.replace(MISSING_ID, "<id>").replace(
        str(MISSING_NUMBER), "<id>"
    )


@pytest.mark.parametrize("verb", NATIVE)
def test_native(client: TestClient, holdings: Holdings, verb: str) -> None:
    call, key = NATIVE[verb], holdings.keys["admin"]
    other, missing = call(client, key, holdings.restream), call(client, key, MISSING_ID)
    same_as_missing(other, missing, holdings.restream)


@pytest.mark.parametrize("verb", CALLABA)
def test_callaba(client: TestClient, holdings: Holdings, verb: str) -> None:
    call, key = CALLABA[verb], holdings.keys["admin"]
    other, missing = call(client, key, holdings.restream), call(client, key, MISSING_ID)
    same_as_missing(other, missing, holdings.restream)


@pytest.mark.parametrize("verb", GJIRAFA_VIDEO)
def test_gjirafa_live_videos(client: TestClient, holdings: Holdings, verb: str) -> None:
    call, key, mine = GJIRAFA_VIDEO[verb], holdings.keys["admin"], holdings.project_a
    other = call(client, key, holdings.video, mine)
    missing = call(client, key, MISSING_ID, mine)
    same_as_missing(other, missing, holdings.video)


@pytest.mark.parametrize("verb", GJIRAFA_DESTINATION)
def test_gjirafa_destinations(client: TestClient, holdings: Holdings, verb: str) -> None:
    call, key, mine = GJIRAFA_DESTINATION[verb], holdings.keys["admin"], holdings.project_a
    other = call(client, key, str(holdings.destination), mine)
    missing = call(client, key, str(MISSING_NUMBER), mine)
    same_as_missing(other, missing, str(holdings.destination))


def test_lists_hold_only_the_projects_own(client: TestClient, holdings: Holdings) -> None:
    key = holdings.keys["viewer"]
    assert (
        client.get("/v1/restreams", headers={"Authorization": f"Bearer {key}"}).json()["items"]
        == []
    )
    token = {"x-access-token": key}
    assert client.post("/api/restream/getAll", headers=token).json() == []
    assert client.post("/api/restream/getStat", headers=token).json() == []
    assert client.post("/api/restream/getCount", headers=token).json() == {"count": 0}
    videos = client.get(
        f"/api/v1/{holdings.project_a}/live-videos", headers={"Authorization": key}
    ).json()
    assert videos["result"] == []


def test_nothing_of_the_other_project_changed(
    client: TestClient, holdings: Holdings, db: Database
) -> None:
    key, mine = holdings.keys["admin"], holdings.project_a
    for call in NATIVE.values():
        call(client, key, holdings.restream)
    for call in CALLABA.values():
        call(client, key, holdings.restream)
    for call in GJIRAFA_VIDEO.values():
        call(client, key, holdings.video, mine)
    for call in GJIRAFA_DESTINATION.values():
        call(client, key, str(holdings.destination), mine)
    with db.transaction() as session:
        plain = session.get(Restream, holdings.restream)
        video = session.get(Restream, holdings.video)
        assert plain is not None and (plain.name, plain.active) == ("plain", False)
        assert video is not None and video.active
        assert [r.number for r in session.query(Restream).filter_by(source_id=video.id)] == [
            holdings.destination
        ]


def test_viewers_change_nothing_on_callaba(client: TestClient, holdings: Holdings) -> None:
    own = client.post(
        "/api/restream/create",
        json={**PLAIN, "restream_name": "own", "output": PLAIN["outputs"]},
        headers={"x-access-token": holdings.keys["operator"]},
    )
    assert own.status_code == 200, own.text
    viewer = holdings.keys["viewer"]
    assert (
        client.post(
            "/api/restream/getById",
            json={"id": own.json()["id"]},
            headers={"x-access-token": viewer},
        ).status_code
        == 200
    )
    created = client.post(
        "/api/restream/create",
        json={**PLAIN, "restream_name": "x", "output": PLAIN["outputs"]},
        headers={"x-access-token": viewer},
    )
    assert created.status_code == 403
    for verb in ("update", "start", "stop", "remove"):
        response = CALLABA[verb](client, viewer, own.json()["id"])
        assert response.status_code == 403, (verb, response.text)
        assert response.json()["success"] is False


def test_a_revoked_key_opens_no_surface(
    client: TestClient, holdings: Holdings, db: Database
) -> None:
    key = holdings.keys["operator"]
    with db.transaction() as session:
        row = session.query(ApiKey).filter_by(name="operator", project_id=holdings.project_a).one()
        row.revoked_at = datetime.now(UTC)
    assert client.get("/v1/restreams", headers={"Authorization": f"Bearer {key}"}).status_code == (
        401
    )
    assert client.post("/api/restream/getAll", headers={"x-access-token": key}).status_code == 401
    gjirafa_list = client.get(
        f"/api/v1/{holdings.project_a}/live-videos", headers={"Authorization": key}
    )
    assert gjirafa_list.status_code == 401 and gjirafa_list.json()["errors"] == ["Unauthorized"]
