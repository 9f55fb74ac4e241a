"""Holds are the core's: a restream a surface holds (a 5centsCDN draft, a disabled or deleted
stream, a platform of a disabled stream) is refused a start with 409 naming the hold, whichever
surface asks. It used to be a JSON attribute only 5centsCDN read: the native API started a
stream 5centsCDN showed as deleted, and a Gjirafa toggle switched on a platform of a disabled
stream."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from common.accounts import projects
from common.accounts.principal import Principal, Role
from common.accounts.service import create_api_key
from common.db import Database
from common.models import Restream
from tests.support.nodes import simulate_node

FARM_ADMIN = Principal("tests", Role.ADMIN, None)
STREAM = {"name": "show/main", "url[mediaserver][]": "rtmp://src.example.com/live/in"}


@pytest.fixture
def keys(db: Database, redis_client: redis.Redis) -> tuple[str, str]:
    """A project, an admin key of it, and a live node to run on."""
    simulate_node(db, redis_client, "n1")
    with db.transaction() as session:
        project = projects.create(session, FARM_ADMIN, "held")
        _, key = create_api_key(session, "k", project_id=project.id, role=Role.ADMIN)
    return project.id, key


def cdn(client: TestClient, key: str, path: str, **body: Any) -> dict[str, Any]:
    answer = client.post(f"/v2/streams/restream{path}", json=body, headers={"X-API-Key": key})
    assert answer.status_code == 200, answer.text
    stream: dict[str, Any] = answer.json()["stream"]
    return stream


def restream_id(db: Database, number: int) -> str:
    with db.transaction() as session:
        return session.query(Restream).filter_by(number=number).one().id


def starts(client: TestClient, key: str, project_id: str, rid: str) -> list[Any]:
    """A start of `rid` on the native and the Callaba surface."""
    native = client.post(f"/v1/restreams/{rid}/start", headers={"Authorization": f"Bearer {key}"})
    callaba = client.post("/api/restream/start", json={"id": rid}, headers={"x-access-token": key})
    return [native, callaba]


def test_a_draft_or_deleted_stream_starts_on_no_surface(
    client: TestClient, keys: tuple[str, str], db: Database
) -> None:
    project_id, key = keys
    draft = cdn(client, key, "/new", draft="1", **STREAM)
    rid = restream_id(db, draft["id"])
    native, callaba = starts(client, key, project_id, rid)
    assert native.status_code == 409 and native.json()["error"]["code"] == "held"
    assert f"restream {rid} is draft (on the fivecents surface" in native.text
    assert callaba.status_code == 409 and "is draft" in callaba.json()["message"]

    cdn(client, key, f"/{draft['id']}", draft="0")  # published: it runs
    deleted = client.delete(f"/v2/streams/restream/{draft['id']}", headers={"X-API-Key": key})
    assert deleted.status_code == 200 and deleted.json()["stream"]["status"] == "Deleted"
    native, callaba = starts(client, key, project_id, rid)
    assert native.status_code == 409 and "is deleted" in native.text
    assert callaba.status_code == 409
    with db.transaction() as session:
        row = session.get(Restream, rid)
        assert row is not None and row.active is False  # nothing was started

    restored = client.get(f"/v2/streams/restream/{draft['id']}/restore", headers={"X-API-Key": key})
    assert restored.status_code == 200
    native, _ = starts(client, key, project_id, rid)
    assert native.status_code == 202  # lifted where it was put: it starts again


def test_a_platform_of_a_disabled_stream_is_not_switched_on_by_gjirafa(
    client: TestClient, keys: tuple[str, str], db: Database
) -> None:
    project_id, key = keys
    stream = cdn(client, key, "/new", **STREAM)
    platform = client.post(
        f"/v2/streams/restream/{stream['id']}/platforms",
        json={"platform[name]": "yt", "platform[rtmp]": "rtmp://a.rtmp.example.com/live2",
              "platform[key]": "abc"},
        headers={"X-API-Key": key},
    ).json()["stream"]["platforms"][0]  # fmt: skip
    disabled = client.post(
        f"/v2/streams/restream/{stream['id']}/status", json={"disabled": 1},
        headers={"X-API-Key": key},
    )  # fmt: skip
    assert disabled.status_code == 200
    toggled = client.put(
        f"/api/v1/{project_id}/restreams/{platform['id']}/toggle", headers={"Authorization": key}
    )
    assert toggled.status_code == 409, toggled.text
    answer = toggled.json()
    assert answer["statusCode"] == 409 and "is disabled" in answer["messages"][0]
    with db.transaction() as session:
        row = session.query(Restream).filter_by(number=platform["id"]).one()
        assert row.active is False


def test_every_restream_records_the_surface_that_created_it(
    client: TestClient, keys: tuple[str, str], db: Database
) -> None:
    project_id, key = keys
    native = client.post(
        "/v1/restreams",
        json={"name": "n", "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
              "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL",
                           "output_stream_url": "udp://127.0.0.1:9"}]},
        headers={"Authorization": f"Bearer {key}"},
    ).json()["id"]  # fmt: skip
    video = client.post(
        f"/api/v1/{project_id}/live-videos", json={"title": "v"}, headers={"Authorization": key}
    ).json()["result"]["id"]
    stream = cdn(client, key, "/new", draft="1", **STREAM)
    with db.transaction() as session:
        surfaces = {
            session.get(Restream, native).surface,  # type: ignore[union-attr]
            session.get(Restream, video).surface,  # type: ignore[union-attr]
            session.query(Restream).filter_by(number=stream["id"]).one().surface,
        }
    assert surfaces == {"native", "gjirafa", "fivecents"}
